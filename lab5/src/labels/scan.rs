//! The photos of a folder to label, flat or nested: every JPEG, PNG or WebP file (by its
//! extension, any case) under it, read and hashed (SHA-256, the key of the backbone
//! cache). Hidden files and folders (name starting with `.`), linked folders (a link loop
//! would never end) and the labelling's own output folder are not searched; other files
//! are listed, and a file that cannot be read is listed with the reason and skipped.

use super::features::{ImageFile, Unreadable};
use crate::data::images::sha256_hex;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Extensions of the files taken as photos (compared in lower case).
pub const PHOTO_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// A photo found in the folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Path relative to the folder, with `/` separators (stable across machines).
    pub rel: String,
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
}

impl Found {
    /// The file as the backbone pass takes it.
    pub(crate) fn image_file(&self) -> ImageFile {
        ImageFile::new(&self.sha256, self.path.clone())
    }
}

/// What a folder holds.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The photos, sorted by relative path.
    pub photos: Vec<Found>,
    /// Photo files that could not be read, with the reason.
    pub unreadable: Vec<Unreadable>,
    /// Files that are not photos (by extension), relative paths, sorted.
    pub other_files: Vec<String>,
    /// Folders not searched (hidden, linked, or the labelling's output), relative, sorted.
    pub skipped_dirs: Vec<String>,
}

/// Lists and hashes the photos under `dir`, not searching the folders of `skip`.
///
/// # Errors
/// `dir` is not a readable folder (a sub-folder that cannot be read is listed in
/// `unreadable` instead).
pub fn scan(dir: &Path, skip: &[PathBuf]) -> Result<Scan> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the folder to label {}", dir.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "{} is not a folder: give the folder that holds the photos to label",
        dir.display()
    );
    let skip: Vec<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut out = Scan::default();
    let mut candidates = Vec::new();
    walk(dir, "", &skip, &mut candidates, &mut out)?;
    let hashed: Vec<Result<Found, Unreadable>> = candidates.par_iter().map(hash).collect();
    for h in hashed {
        match h {
            Ok(f) => out.photos.push(f),
            Err(u) => out.unreadable.push(u),
        }
    }
    out.photos.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.other_files.sort();
    out.skipped_dirs.sort();
    Ok(out)
}

/// A candidate photo: relative and full path.
type Candidate = (String, PathBuf);

/// Collects the candidates under `dir` (relative prefix `rel`), recursively.
fn walk(
    dir: &Path,
    rel: &str,
    skip: &[PathBuf],
    found: &mut Vec<Candidate>,
    out: &mut Scan,
) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if !rel.is_empty() => {
            out.unreadable.push(Unreadable {
                path: dir.to_path_buf(),
                reason: format!("cannot read this folder: {e}"),
            });
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries.flatten() {
        visit(&entry, rel, skip, found, out)?;
    }
    Ok(())
}

/// One entry of a folder: a folder to search or skip, a candidate photo, another file.
fn visit(
    entry: &std::fs::DirEntry,
    rel: &str,
    skip: &[PathBuf],
    found: &mut Vec<Candidate>,
    out: &mut Scan,
) -> Result<()> {
    let name = entry.file_name().to_string_lossy().into_owned();
    let child_rel = match rel.is_empty() {
        true => name.clone(),
        false => format!("{rel}/{name}"),
    };
    let path = entry.path();
    let linked = entry.file_type().is_ok_and(|t| t.is_symlink());
    if path.is_dir() {
        if name.starts_with('.') || linked || is_skipped(&path, skip) {
            out.skipped_dirs.push(child_rel);
        } else {
            walk(&path, &child_rel, skip, found, out)?;
        }
    } else if !name.starts_with('.') {
        match is_photo_name(&name) {
            true => found.push((child_rel, path)),
            false => out.other_files.push(child_rel),
        }
    }
    Ok(())
}

fn is_skipped(path: &Path, skip: &[PathBuf]) -> bool {
    path.canonicalize().is_ok_and(|c| skip.contains(&c))
}

/// True for a file name whose extension is one of [`PHOTO_EXTENSIONS`].
pub(crate) fn is_photo_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.as_str()))
}

fn hash((rel, path): &Candidate) -> Result<Found, Unreadable> {
    let unreadable = |reason: String| Unreadable {
        path: path.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        let broken = path.is_symlink() && !path.exists();
        unreadable(match broken {
            true => "broken link (its target is missing)".into(),
            false => format!("cannot read: {e}"),
        })
    })?;
    if bytes.is_empty() {
        return Err(unreadable("empty file".into()));
    }
    Ok(Found {
        rel: rel.clone(),
        path: path.clone(),
        sha256: sha256_hex(&bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_names_go_by_extension_in_any_case() {
        for yes in ["a.jpg", "b.JPEG", "c.Png", "d.webp"] {
            assert!(is_photo_name(yes), "{yes}");
        }
        for no in ["labels.csv", "README", "x.gif", "jpg"] {
            assert!(!is_photo_name(no), "{no}");
        }
    }

    #[test]
    fn nested_folders_are_searched_and_the_rest_listed() {
        let dir = std::env::temp_dir().join(format!("lab5-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["a/b", ".hidden", "out/rounds"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let files = [
            ("x.jpg", "1"),
            ("a/b/y.PNG", "2"),
            ("notes.txt", "3"),
            (".DS_Store", "4"),
            (".hidden/z.jpg", "5"),
            ("out/rounds/round-001.png", "6"),
            ("empty.jpg", ""),
        ];
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        let s = scan(&dir, &[dir.join("out/rounds")]).unwrap();
        let rels: Vec<&str> = s.photos.iter().map(|p| p.rel.as_str()).collect();
        assert_eq!(rels, ["a/b/y.PNG", "x.jpg"]);
        assert_eq!(s.photos[1].sha256, sha256_hex(b"1"));
        assert_eq!(s.other_files, ["notes.txt"]);
        assert_eq!(s.skipped_dirs, [".hidden", "out/rounds"]);
        assert_eq!(s.unreadable.len(), 1);
        assert!(s.unreadable[0].path.ends_with("empty.jpg"));
        assert_eq!(s.unreadable[0].reason, "empty file");
        let err = scan(&dir.join("x.jpg"), &[]).unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

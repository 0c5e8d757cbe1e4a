//! ImageFolder directories (`DIR/cat/*`, `DIR/dog/*`, as torchvision's `ImageFolder`):
//! one listing for import and for evaluation, so both take the same files and both name
//! what they leave out (other folders, folders inside a class folder, hidden files).

use crate::data::Class;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The layout an ImageFolder must have, for error messages.
const LAYOUT: &str = "expected DIR/cat/*.jpg and DIR/dog/*.jpg";

/// A file of a class folder: its class, path and file stem (the id on import).
pub(crate) struct Candidate {
    pub(crate) class: Class,
    pub(crate) path: PathBuf,
    pub(crate) stem: String,
}

impl Listing {
    /// Everything not taken, as one list: folders (`name/`) and hidden files.
    pub(crate) fn left_out(&self) -> Vec<String> {
        let dirs = self.ignored_dirs.iter().map(|d| format!("{d}/"));
        dirs.chain(self.hidden_files.iter().cloned()).collect()
    }
}

/// What an ImageFolder holds: the files to read, and what is not taken.
#[derive(Default)]
pub(crate) struct Listing {
    /// The files of every class folder, sorted.
    pub(crate) files: Vec<Candidate>,
    /// Sub-folders that are no class, and folders inside a class folder, sorted.
    pub(crate) ignored_dirs: Vec<String>,
    /// Hidden files of the class folders (`.DS_Store`, `._x.jpg`), as
    /// `<class folder>/<name>`, sorted.
    pub(crate) hidden_files: Vec<String>,
}

/// Lists the ImageFolder `dir`: the files of its class folders (`cat`, `cats`, `dog`,
/// `dogs`, any case), sorted, and what is not taken: other folders, folders inside a class
/// folder, hidden files.
///
/// # Errors
/// `dir` cannot be read, or its class folders hold no file.
pub(crate) fn list_files(dir: &Path) -> Result<Listing> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {} ({LAYOUT})", dir.display()))?;
    let mut l = Listing {
        files: Vec::new(),
        ignored_dirs: Vec::new(),
        hidden_files: Vec::new(),
    };
    for e in entries.flatten().filter(|e| e.path().is_dir()) {
        let name = e.file_name().to_string_lossy().into_owned();
        match Class::parse(&name) {
            Some(class) => {
                let (files, hidden) = class_files(class, &e.path())?;
                l.files.extend(files);
                l.hidden_files
                    .extend(hidden.into_iter().map(|h| format!("{name}/{h}")));
                l.ignored_dirs.extend(sub_folders(&e.path(), &name));
            }
            None => l.ignored_dirs.push(name),
        }
    }
    if l.files.is_empty() {
        bail!(
            "{} has no images in class folders ({LAYOUT})",
            dir.display()
        );
    }
    l.files
        .sort_by(|a, b| (a.class, &a.path).cmp(&(b.class, &b.path)));
    l.ignored_dirs.sort();
    l.hidden_files.sort();
    Ok(l)
}

/// The files of one class folder, and the names of its hidden files (not imported).
fn class_files(class: Class, dir: &Path) -> Result<(Vec<Candidate>, Vec<String>)> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let (mut out, mut hidden) = (Vec::new(), Vec::new());
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            continue; // listed by list_files
        }
        if name.starts_with('.') {
            hidden.push(name);
            continue;
        }
        let stem = Path::new(&name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned());
        out.push(Candidate {
            class,
            path: e.path(),
            stem: stem.unwrap_or(name),
        });
    }
    Ok((out, hidden))
}

/// Folders inside a class folder (not searched), as `<class folder>/<name>`.
fn sub_folders(dir: &Path, class_dir: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| format!("{class_dir}/{}", e.file_name().to_string_lossy()))
        .collect()
}

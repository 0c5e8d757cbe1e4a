//! Small shared helpers: atomic file writes, progress bars, the CSV files
//! ([`csv_io`]) and nearest neighbours ([`knn`]).

pub mod csv_io;
pub(crate) mod knn;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A temporary sibling of `path` (same folder, so the rename is atomic).
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_else(|| "file".into());
    let unique = format!(".{name}.{}.{}.tmp", std::process::id(), next_id());
    path.with_file_name(unique)
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Writes `bytes` to `path` through a temp file and a rename: readers see either the old
/// file or the whole new one, never a partial write.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })
}

/// `path` with `/` separators on every system, as the lab's files and reports write paths.
pub(crate) fn slash_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Lets `write` fill a temp file, then renames it onto `path`; the temp file is removed
/// when `write` or the rename fails.
pub(crate) fn with_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = temp_sibling(path);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot rename onto {}", path.display()))
    })
}

/// A progress bar for `len` items, hidden when stderr is not a terminal (notebooks, CI).
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("lab5-util-{}", std::process::id()));
        let p = dir.join("x.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let failed = with_atomic(&p, |_| anyhow::bail!("boom"));
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // A rename that fails (a folder in the way) leaves no temp file either.
        std::fs::create_dir_all(dir.join("busy/inside")).unwrap();
        let err = write_atomic(&dir.join("busy"), b"three").unwrap_err();
        assert!(format!("{err:#}").contains("cannot rename onto"), "{err:#}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

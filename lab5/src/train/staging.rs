//! A run is written into a hidden temporary folder next to its final place
//! (`runs/.<name>.tmp-<pid>`) and renamed into place only when everything is written, so an
//! interrupted or failed training never leaves a half-written run and never damages the
//! previous one. Temporary folders of processes that died are cleaned up on the next run.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A run folder being written.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
    committed: bool,
}

fn temp_name(name: &str, tag: &str, pid: u32) -> String {
    format!(".{name}.{tag}-{pid}")
}

/// True when `pid` is known to be gone (only decidable where `/proc` exists).
fn process_gone(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    proc_dir.is_dir() && !proc_dir.join(pid.to_string()).exists()
}

/// Removes `.<name>.tmp-<pid>` / `.<name>.old-<pid>` folders left by dead processes.
fn remove_leftovers(runs_dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = ["tmp", "old"].iter().find_map(|tag| {
            let prefix = format!(".{name}.{tag}-");
            file.strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok())
        });
        if pid.is_some_and(process_gone) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Staging {
    /// Creates an empty `runs_dir/.<name>.tmp-<pid>` (the run name must be a safe id).
    pub(crate) fn create(runs_dir: &Path, name: &str) -> Result<Self> {
        if !crate::data::is_safe_id(name) {
            bail!("run name {name:?} must be 1-128 characters of [A-Za-z0-9_-]");
        }
        std::fs::create_dir_all(runs_dir)
            .with_context(|| format!("cannot create the runs folder {}", runs_dir.display()))?;
        remove_leftovers(runs_dir, name);
        let dir = runs_dir.join(temp_name(name, "tmp", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Staging {
            dir,
            committed: false,
        })
    }

    /// The temporary folder to write into.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the finished folder onto `target`, replacing a previous run there.
    pub(crate) fn commit(mut self, target: &Path) -> Result<()> {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
        let old = target.with_file_name(temp_name(
            &name.unwrap_or_default(),
            "old",
            std::process::id(),
        ));
        let had_old = target.exists();
        if had_old {
            std::fs::rename(target, &old).with_context(|| {
                format!("cannot move the previous run {} aside", target.display())
            })?;
        }
        if let Err(e) = std::fs::rename(&self.dir, target) {
            if had_old {
                let _ = std::fs::rename(&old, target);
            }
            return Err(e)
                .with_context(|| format!("cannot move the new run into {}", target.display()));
        }
        self.committed = true;
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_failure_keeps_the_old_run() {
        let runs = std::env::temp_dir().join(format!("lab5-staging-{}", std::process::id()));
        let target = runs.join("cnn");
        let s = Staging::create(&runs, "cnn").unwrap();
        std::fs::write(s.dir().join("a.txt"), "first").unwrap();
        s.commit(&target).unwrap();
        let s = Staging::create(&runs, "cnn").unwrap();
        std::fs::write(s.dir().join("a.txt"), "second").unwrap();
        drop(s);
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "first"
        );
        let s = Staging::create(&runs, "cnn").unwrap();
        std::fs::write(s.dir().join("b.txt"), "third").unwrap();
        s.commit(&target).unwrap();
        assert!(!target.join("a.txt").exists() && target.join("b.txt").exists());
        assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1);
        assert!(Staging::create(&runs, "../x").is_err());
        std::fs::remove_dir_all(&runs).unwrap();
    }
}

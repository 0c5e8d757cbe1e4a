//! What `lab5 run` remembers between runs, in `runs/pipeline.json`: per step the key of
//! its inputs (the config it depends on and the stamps of the steps before it) and the
//! stamp of its outputs (a SHA-256 of the files it wrote). A step is up to date when its
//! key is unchanged and its outputs still hash to the recorded stamp, so deleting or
//! editing an output, changing a setting, or a changed upstream output all redo it.

use crate::data::images::sha256_hex;
use crate::util::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the state inside the runs folder.
pub(crate) const STATE_FILE: &str = "pipeline.json";

/// One finished step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// SHA-256 of the step's inputs.
    pub key: String,
    /// SHA-256 of its outputs when it finished.
    pub stamp: String,
    /// The main output file, where its name varies (the dated report).
    pub output: Option<PathBuf>,
    /// Seconds the step took when it last ran.
    pub secs: f64,
}

/// Every step's entry, by step name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Entries by step name.
    pub steps: BTreeMap<String, Entry>,
}

impl State {
    /// Reads the state; a missing or unreadable file is an empty state (every step is
    /// then checked from scratch, and the training steps still reuse matching runs).
    pub(crate) fn load(path: &Path) -> State {
        let Ok(text) = std::fs::read_to_string(path) else {
            return State::default();
        };
        serde_json::from_str(&text).unwrap_or_else(|e| {
            eprintln!("lab5 run: ignoring unreadable {} ({e})", path.display());
            State::default()
        })
    }

    /// Writes the state atomically.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).context("cannot serialise the pipeline state")?;
        write_atomic(path, &json)
    }
}

/// Incremental SHA-256 over labelled parts.
#[derive(Default)]
pub(crate) struct Hasher(Vec<u8>);

impl Hasher {
    /// Adds a labelled text part.
    pub(crate) fn text(mut self, label: &str, text: &str) -> Hasher {
        for part in [label, text] {
            self.0.extend((part.len() as u64).to_le_bytes());
            self.0.extend(part.as_bytes());
        }
        self
    }

    /// Adds a value as JSON.
    pub(crate) fn json<T: Serialize>(self, label: &str, v: &T) -> Result<Hasher> {
        let text = serde_json::to_string(v).context("cannot serialise a pipeline key")?;
        Ok(self.text(label, &text))
    }

    /// Adds a file's SHA-256; `None` when the file cannot be read.
    pub(crate) fn file(self, path: &Path) -> Option<Hasher> {
        let bytes = std::fs::read(path).ok()?;
        Some(self.text(&path.to_string_lossy(), &sha256_hex(&bytes)))
    }

    /// The digest (hex).
    pub(crate) fn finish(self) -> String {
        sha256_hex(&self.0)
    }
}

/// Name, size and modification time of every file under `dir` (two levels: the class
/// folders and `labels.csv`), sorted: what an import of `dir` depends on.
pub(crate) fn folder_listing(dir: &Path) -> Result<Vec<(String, u64, u128)>> {
    let mut out = Vec::new();
    list_into(dir, dir, 2, &mut out)
        .with_context(|| format!("cannot list the image folder {}", dir.display()))?;
    out.sort();
    Ok(out)
}

fn list_into(root: &Path, dir: &Path, depth: u8, out: &mut Vec<(String, u64, u128)>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() && depth > 1 {
            list_into(root, &path, depth - 1, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?;
            out.push((
                rel.to_string_lossy().into_owned(),
                meta.len(),
                mtime.as_nanos(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_broken_file_reads_as_empty() {
        let dir = std::env::temp_dir().join(format!("lab5-pipeline-state-{}", std::process::id()));
        let path = dir.join(STATE_FILE);
        assert_eq!(State::load(&path), State::default());
        let mut s = State::default();
        let e = Entry {
            key: "k".into(),
            stamp: "s".into(),
            output: None,
            secs: 1.5,
        };
        s.steps.insert("audit".into(), e);
        s.save(&path).unwrap();
        assert_eq!(State::load(&path), s);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(State::load(&path), State::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes_change_with_any_part_and_label() {
        let a = Hasher::default().text("a", "1").finish();
        assert_eq!(a, Hasher::default().text("a", "1").finish());
        assert_ne!(a, Hasher::default().text("a", "2").finish());
        assert_ne!(a, Hasher::default().text("b", "1").finish());
        assert_ne!(a, Hasher::default().text("a1", "").finish());
        assert!(Hasher::default().file(Path::new("/no/such/file")).is_none());
    }

    #[test]
    fn folder_listing_sees_new_and_changed_files() {
        let dir = std::env::temp_dir().join(format!("lab5-pipeline-list-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cat")).unwrap();
        std::fs::write(dir.join("cat/a.jpg"), b"x").unwrap();
        let one = folder_listing(&dir).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, "cat/a.jpg");
        std::fs::write(dir.join("labels.csv"), b"id").unwrap();
        std::fs::write(dir.join("cat/a.jpg"), b"xy").unwrap();
        let two = folder_listing(&dir).unwrap();
        assert_eq!(two.len(), 2);
        assert_ne!(two.iter().find(|e| e.0 == "cat/a.jpg"), one.first());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

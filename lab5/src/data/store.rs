//! The data folder as collect and import see it: the manifest plus the sets of ids and
//! content hashes already present, with the housekeeping that keeps the manifest and the
//! files in `data/raw` in agreement.

use crate::config::{Config, Images};
use crate::data::conflicts::{self, Conflict};
use crate::data::holdout;
use crate::data::images::{self, class_dir};
use crate::data::{Class, Manifest, Origin, Record};
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What [`Store::open`] and [`Store::remove_orphans`] cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Housekeeping {
    /// Temp files of an interrupted write, removed.
    pub temp_files: usize,
    /// Manifest rows whose image file was gone, dropped.
    pub missing_files: usize,
    /// Image files in `data/raw` without a manifest row, removed.
    pub orphans: usize,
}

impl std::fmt::Display for Housekeeping {
    /// One line when anything was cleaned up, nothing otherwise.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, m, o) = (self.temp_files, self.missing_files, self.orphans);
        if t + m + o == 0 {
            return Ok(());
        }
        writeln!(
            f,
            "cleaned up: {t} temp files, {m} rows whose file was gone, {o} unrecorded files"
        )
    }
}

/// The manifest being extended, with the ids and the (SHA-256, label) pairs it already
/// holds: the same content under one label is a duplicate, under the other label a
/// second row (a label conflict, see [`crate::data::conflicts`]).
pub(crate) struct Store {
    data_dir: PathBuf,
    /// The rows.
    pub manifest: Manifest,
    ids: HashMap<String, Origin>,
    shas: Mutex<HashSet<(String, Class)>>,
}

/// What [`Store::settle`] did to the manifest.
#[derive(Debug)]
pub struct Settled {
    /// Contents under both labels: both rows are kept out of training.
    pub label_conflicts: Vec<Conflict>,
    /// Rows that got a split in this run.
    pub newly_split: usize,
    /// Rows that had a split and moved to the split of their near-copies.
    pub near_copies_moved: usize,
}

/// The report lines of the label conflicts and of the hashes added to an older manifest,
/// each line starting with `indent` (collect and import print them alike).
pub fn write_conflicts_and_hashes(
    f: &mut std::fmt::Formatter<'_>,
    indent: &str,
    label_conflicts: &[Conflict],
    hashes_added: usize,
) -> std::fmt::Result {
    for c in label_conflicts {
        writeln!(f, "{indent}label conflict, kept out of training: {c}")?;
    }
    if hashes_added > 0 {
        writeln!(
            f,
            "{indent}perceptual hashes added to {hashes_added} rows of an older manifest"
        )?;
    }
    Ok(())
}

/// The report line of the split: new rows assigned and near-copies moved.
pub fn write_split(
    f: &mut std::fmt::Formatter<'_>,
    indent: &str,
    newly_split: usize,
    near_copies_moved: usize,
) -> std::fmt::Result {
    write!(f, "{indent}split: {newly_split} new rows assigned")?;
    match near_copies_moved {
        0 => writeln!(f),
        n => writeln!(f, ", {n} near-copies moved to the split of their group"),
    }
}

impl Store {
    /// After rows were added: marks label conflicts, assigns splits (near-copies kept
    /// together, held-out breeds), saves the manifest (also when the split fails, so
    /// nothing collected or imported is lost) and records the held-out breeds.
    ///
    /// # Errors
    /// The split cannot be made (unknown breed, ...) or a file cannot be written.
    pub fn settle(&mut self, cfg: &Config) -> Result<Settled> {
        let label_conflicts =
            conflicts::mark(&mut self.manifest, cfg.data.near_duplicate_distance).conflicts;
        let assigned = holdout::assign(cfg, &mut self.manifest, &cfg.data_dir());
        self.save()?;
        let assigned = assigned?;
        assigned.commit(self.data_dir())?;
        Ok(Settled {
            label_conflicts,
            newly_split: assigned.newly_split,
            near_copies_moved: assigned.near_copies_moved,
        })
    }

    /// Loads `data_dir/manifest.csv` (or starts empty), removes temp files left by an
    /// interrupted run and drops rows whose file is missing.
    pub(crate) fn open(data_dir: &Path) -> Result<(Store, Housekeeping)> {
        let mut manifest = Manifest::load_or_empty(data_dir)?;
        let mut hk = Housekeeping::default();
        for class in Class::ALL {
            hk.temp_files += images::remove_temp_files(data_dir, class)?;
        }
        let before = manifest.records.len();
        manifest
            .records
            .retain(|r| data_dir.join(&r.path).is_file());
        hk.missing_files = before - manifest.records.len();
        let ids = manifest
            .records
            .iter()
            .map(|r| (r.id.clone(), r.source))
            .collect();
        let shas = manifest
            .records
            .iter()
            .map(|r| (r.sha256.clone(), r.label))
            .collect();
        let store = Store {
            data_dir: data_dir.to_path_buf(),
            manifest,
            ids,
            shas: Mutex::new(shas),
        };
        Ok((store, hk))
    }

    /// The data folder.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// True when a row already has this id.
    pub(crate) fn has_id(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The source of the row with this id, if any.
    pub(crate) fn source_of(&self, id: &str) -> Option<Origin> {
        self.ids.get(id).copied()
    }

    /// True when a row of `class` already has this content.
    pub(crate) fn has_sha(&self, sha: &str, class: Class) -> bool {
        let key = (sha.to_string(), class);
        self.shas.lock().is_ok_and(|s| s.contains(&key))
    }

    /// Reserves `sha` for a new image of `class`; false when the data set already has
    /// that content under that label. Safe to call from worker threads.
    pub(crate) fn claim_sha(&self, sha: &str, class: Class) -> bool {
        match self.shas.lock() {
            Ok(mut s) => s.insert((sha.to_string(), class)),
            Err(_) => false,
        }
    }

    /// Rows of `class`.
    pub(crate) fn count(&self, class: Class) -> usize {
        self.manifest.count(class)
    }

    /// Adds a row (its sha must have been claimed).
    pub(crate) fn add(&mut self, record: Record) {
        self.ids.insert(record.id.clone(), record.source);
        self.manifest.records.push(record);
    }

    /// Gives the rows of an older manifest, written before lab5 stored perceptual hashes,
    /// their hash (and their size as seen), decoding their files in parallel; returns how
    /// many rows got one. A file that no longer decodes keeps no hash (and so no group).
    pub fn add_missing_hashes(&mut self) -> usize {
        let data_dir = self.data_dir.clone();
        let infos: Vec<(usize, images::ImageInfo)> = self
            .manifest
            .records
            .par_iter()
            .enumerate()
            .filter(|(_, r)| r.phash.is_none())
            .filter_map(|(i, r)| {
                let bytes = std::fs::read(data_dir.join(&r.path)).ok()?;
                Some((i, images::inspect(&bytes, &Images::display()).ok()?))
            })
            .collect();
        for (i, info) in &infos {
            let r = &mut self.manifest.records[*i];
            (r.phash, r.width, r.height) = (Some(info.phash), info.width, info.height);
        }
        infos.len()
    }

    /// Sorts and writes the manifest atomically.
    pub(crate) fn save(&mut self) -> Result<()> {
        self.manifest.sort();
        self.manifest.save(&Manifest::path_in(&self.data_dir))
    }

    /// Removes image files in `data/raw/<class>` that no row points to (left by an
    /// interrupted run and not offered again); returns how many.
    pub(crate) fn remove_orphans(&self, class: Class) -> Result<usize> {
        let known: HashSet<&Path> = self
            .manifest
            .records
            .iter()
            .map(|r| r.path.as_path())
            .collect();
        let dir = class_dir(class);
        let Ok(entries) = std::fs::read_dir(self.data_dir.join(&dir)) else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let rel = dir.join(e.file_name());
            if e.path().is_file() && !known.contains(rel.as_path()) && is_image_name(&rel) {
                std::fs::remove_file(e.path())
                    .with_context(|| format!("cannot remove {}", e.path().display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn is_image_name(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    images::FORMATS.iter().any(|(_, e)| *e == ext)
}

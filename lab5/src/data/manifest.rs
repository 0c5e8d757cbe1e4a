//! The manifest: one row per image of the data set, stored as `data/manifest.csv`
//! (one [`Record`] per line, through [`crate::util::csv_io`]). It is the contract between
//! collection/import and every later step.

use crate::util::csv_io;
use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// The two classes. Index 0 is cat, 1 is dog (the network's output order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A cat.
    Cat,
    /// A dog.
    Dog,
}

impl Class {
    /// Both classes in index order.
    pub const ALL: [Class; 2] = [Class::Cat, Class::Dog];

    /// Class index used as the training target.
    pub fn index(self) -> i64 {
        self as i64
    }

    /// The class of an index (0 cat, anything else dog).
    pub(crate) fn from_index(i: i64) -> Class {
        if i == 0 {
            Class::Cat
        } else {
            Class::Dog
        }
    }

    /// `cat` or `dog`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Cat => "cat",
            Class::Dog => "dog",
        }
    }

    /// Parses `cat`/`dog` (also `cats`/`dogs`, any case).
    pub fn parse(s: &str) -> Option<Class> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cat" | "cats" => Some(Class::Cat),
            "dog" | "dogs" => Some(Class::Dog),
            _ => None,
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which split an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// Training set.
    Train,
    /// Validation set (early stopping).
    Val,
    /// Held-out test set.
    Test,
}

impl SplitName {
    /// All splits in order.
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Val, SplitName::Test];

    /// `train`, `val` or `test`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }

    /// Parses a split name.
    pub(crate) fn parse(s: &str) -> Option<SplitName> {
        SplitName::ALL.into_iter().find(|x| x.name() == s)
    }
}

impl std::fmt::Display for SplitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// The Cat API.
    #[serde(rename = "cat-api")]
    CatApi,
    /// The Dog API.
    #[serde(rename = "dog-api")]
    DogApi,
    /// An imported ImageFolder directory.
    #[serde(rename = "folder")]
    Folder,
}

impl Origin {
    /// `cat-api`, `dog-api` or `folder`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Origin::CatApi => "cat-api",
            Origin::DogApi => "dog-api",
            Origin::Folder => "folder",
        }
    }
}

/// One image of the data set: one line of `manifest.csv`, whose columns are these
/// fields in this order. Reading checks the id and the path (see [`Manifest::load`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique id, safe as a file name (`[A-Za-z0-9_-]+`).
    #[serde(deserialize_with = "safe_id")]
    pub id: String,
    /// The class label.
    pub label: Class,
    /// Breed id from the API or `labels.csv` (cat ids are strings, dog ids integers).
    pub breed_id: Option<String>,
    /// Breed name.
    pub breed_name: Option<String>,
    /// Where it came from.
    pub source: Origin,
    /// Original URL (API) or original path (folder).
    pub url: String,
    /// Path of the image file relative to the data folder, e.g. `raw/cat/abc.jpg`.
    #[serde(serialize_with = "slash_path", deserialize_with = "inside_path")]
    pub path: PathBuf,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes (hex).
    pub sha256: String,
    /// Split, once assigned.
    pub split: Option<SplitName>,
    /// Excluded from training by the label check (reversible).
    pub excluded: bool,
}

/// All rows of the data set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The rows, in a stable order (by class, then id).
    pub records: Vec<Record>,
}

impl Manifest {
    /// `<data_dir>/manifest.csv`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("manifest.csv")
    }

    /// Sorts rows by class, then id, so files and splits are reproducible.
    pub(crate) fn sort(&mut self) {
        self.records
            .sort_by(|a, b| (a.label, &a.id).cmp(&(b.label, &b.id)));
    }

    /// Writes the manifest atomically as CSV.
    pub fn save(&self, path: &Path) -> Result<()> {
        csv_io::write_rows(path, &self.records)
    }

    /// Reads `manifest.csv`. Every row is checked (known label, source and split, an id
    /// made of `[A-Za-z0-9_-]`, a path inside the data folder); the error of a bad one
    /// names its line and column.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Manifest {
            records: csv_io::read_rows(path)?,
        })
    }

    /// Loads the manifest of a data folder, or an empty one when there is none yet.
    pub fn load_or_empty(data_dir: &Path) -> Result<Self> {
        let p = Self::path_in(data_dir);
        if p.exists() {
            Self::load(&p)
        } else {
            Ok(Self::default())
        }
    }

    /// The manifest in `data_dir`, which must hold at least one image; otherwise fails with
    /// "no data set yet in <dir>: " followed by `what_to_run`.
    pub(crate) fn load_required(data_dir: &Path, what_to_run: &str) -> Result<Self> {
        let m = Self::load_or_empty(data_dir)?;
        if m.records.is_empty() {
            bail!("no data set yet in {}: {what_to_run}", data_dir.display());
        }
        Ok(m)
    }

    /// Rows of one split, skipping excluded ones.
    pub fn split(&self, split: SplitName) -> Vec<&Record> {
        self.records
            .iter()
            .filter(|r| r.split == Some(split) && !r.excluded)
            .collect()
    }

    /// Number of rows with a given label.
    pub fn count(&self, label: Class) -> usize {
        self.records.iter().filter(|r| r.label == label).count()
    }
}

/// Reads an id, refusing one that is not safe as a file name. (The `csv` crate gives no
/// column for errors of `deserialize_with` functions, so the message names it.)
fn safe_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if !crate::data::is_safe_id(&id) {
        let msg = format!("column `id`: {id:?} is not made of [A-Za-z0-9_-]");
        return Err(serde::de::Error::custom(msg));
    }
    Ok(id)
}

/// Reads a path, refusing one that leaves the data folder (absolute or with `..`).
fn inside_path<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<PathBuf, D::Error> {
    let path = PathBuf::deserialize(d)?;
    if path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
        let msg = format!(
            "column `path`: {:?} leaves the data folder",
            path.display().to_string()
        );
        return Err(serde::de::Error::custom(msg));
    }
    Ok(path)
}

/// Writes a path with `/` separators on every system.
fn slash_path<S: Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy().replace('\\', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, label: Class) -> Record {
        Record {
            id: id.into(),
            label,
            breed_id: Some("235".into()),
            breed_name: Some("Siberian, \"Husky\"".into()),
            source: Origin::DogApi,
            url: "https://example.org/a.jpg".into(),
            path: PathBuf::from(format!("raw/{label}/{id}.jpg")),
            width: 10,
            height: 20,
            bytes: 300,
            sha256: "ab".repeat(32),
            split: Some(SplitName::Val),
            excluded: true,
        }
    }

    #[test]
    fn csv_round_trip_keeps_every_field() {
        let dir = std::env::temp_dir().join(format!("lab5-man-{}", std::process::id()));
        let m = Manifest {
            records: vec![rec("a1", Class::Dog), rec("b_2-x", Class::Cat)],
        };
        let p = Manifest::path_in(&dir);
        m.save(&p).unwrap();
        assert_eq!(Manifest::load(&p).unwrap(), m);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_rows_are_named() {
        let mut bad = rec("../x", Class::Cat);
        bad.split = None;
        let dir = std::env::temp_dir().join(format!("lab5-man-bad-{}", std::process::id()));
        let p = Manifest::path_in(&dir);
        Manifest { records: vec![bad] }.save(&p).unwrap();
        let err = format!("{:#}", Manifest::load(&p).unwrap_err());
        assert!(
            err.contains("manifest.csv: line 2, column `id`: \"../x\" is not made of"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The manifest: one row per image of the data set, stored as `data/manifest.csv`
//! (one [`Record`] per line, through [`crate::util::csv_io`]). It is the contract between
//! collection/import and every later step.

use crate::data::phash::PHash;
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

/// Why a row is kept out of training (and out of validation and test). Reversible:
/// nothing is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Exclusion {
    /// Flagged by the label check and excluded with `lab5 audit --apply` (`--undo`
    /// clears it).
    #[serde(rename = "label-check")]
    LabelCheck,
    /// The same bytes are in the data set under the other label too; lifted when the
    /// conflict is resolved (one of the copies removed) and the data set imported again.
    #[serde(rename = "label-conflict")]
    LabelConflict,
}

/// One image of the data set: one line of `manifest.csv` (see [`Manifest::load`] for
/// the columns and the checks).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Unique id, safe as a file name (`[A-Za-z0-9_-]+`).
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
    pub path: PathBuf,
    /// Width in pixels, as the photo is seen (EXIF orientation applied).
    pub width: u32,
    /// Height in pixels, as the photo is seen.
    pub height: u32,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes (hex).
    pub sha256: String,
    /// Split, once assigned.
    pub split: Option<SplitName>,
    /// Kept out of training, validation and test, and why (reversible).
    pub excluded: Option<Exclusion>,
    /// Perceptual hash of the photo as seen (`None` in a manifest written before lab5
    /// stored them; the next import or collect adds it).
    pub phash: Option<PHash>,
}

/// One line of `manifest.csv`: the columns of a [`Record`] in file order, with the
/// exclusion as two columns (`excluded`, `excluded_reason`). The last two columns came
/// later: a manifest without them reads them as empty.
#[derive(Serialize, Deserialize)]
struct Row {
    #[serde(deserialize_with = "safe_id")]
    id: String,
    #[serde(deserialize_with = "label_column")]
    label: Class,
    breed_id: Option<String>,
    breed_name: Option<String>,
    #[serde(deserialize_with = "source_column")]
    source: Origin,
    url: String,
    #[serde(serialize_with = "slash_path", deserialize_with = "inside_path")]
    path: PathBuf,
    width: u32,
    height: u32,
    bytes: u64,
    sha256: String,
    #[serde(deserialize_with = "split_column")]
    split: Option<SplitName>,
    excluded: bool,
    #[serde(default, deserialize_with = "phash_column")]
    phash: Option<PHash>,
    #[serde(default, deserialize_with = "reason_column")]
    excluded_reason: Option<Exclusion>,
}

impl From<&Record> for Row {
    fn from(r: &Record) -> Row {
        Row {
            id: r.id.clone(),
            label: r.label,
            breed_id: r.breed_id.clone(),
            breed_name: r.breed_name.clone(),
            source: r.source,
            url: r.url.clone(),
            path: r.path.clone(),
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            sha256: r.sha256.clone(),
            split: r.split,
            excluded: r.excluded.is_some(),
            phash: r.phash,
            excluded_reason: r.excluded,
        }
    }
}

impl From<Row> for Record {
    /// A row excluded without a reason comes from a manifest written before the reason
    /// was recorded, when only the label check excluded rows.
    fn from(r: Row) -> Record {
        let excluded = r
            .excluded
            .then(|| r.excluded_reason.unwrap_or(Exclusion::LabelCheck));
        Record {
            id: r.id,
            label: r.label,
            breed_id: r.breed_id,
            breed_name: r.breed_name,
            source: r.source,
            url: r.url,
            path: r.path,
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            sha256: r.sha256,
            split: r.split,
            excluded,
            phash: r.phash,
        }
    }
}

impl Record {
    /// True when the row is kept out of training (and evaluation).
    pub fn is_excluded(&self) -> bool {
        self.excluded.is_some()
    }
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
        let rows: Vec<Row> = self.records.iter().map(Row::from).collect();
        csv_io::write_rows(path, &rows)
    }

    /// Reads `manifest.csv`: columns `id, label, breed_id, breed_name, source, url, path,
    /// width, height, bytes, sha256, split, excluded, phash, excluded_reason` (a manifest
    /// written before the last two still loads). Every row is checked (known label, source,
    /// split and exclusion reason, an id made of `[A-Za-z0-9_-]`, a path inside the data
    /// folder, a 64-hex-digit phash); the error of a bad one names its line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let rows: Vec<Row> = csv_io::read_rows(path)?;
        Ok(Manifest {
            records: rows.into_iter().map(Record::from).collect(),
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
            .filter(|r| r.split == Some(split) && !r.is_excluded())
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

/// Reads a column's text as `T`; an empty cell is `None`. The error names the column and
/// the value (the `csv` crate names no column for an unknown enum variant).
fn column<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
    name: &str,
) -> std::result::Result<Option<T>, D::Error> {
    use serde::de::{value::Error, value::StrDeserializer, Error as _};
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    T::deserialize(StrDeserializer::<Error>::new(&text))
        .map(Some)
        .map_err(|e| D::Error::custom(format!("column `{name}`: {text:?}: {e}")))
}

/// [`column`] for a cell that must not be empty.
fn required<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
    name: &str,
) -> std::result::Result<T, D::Error> {
    column(d, name)?.ok_or_else(|| serde::de::Error::custom(format!("column `{name}` is empty")))
}

fn label_column<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Class, D::Error> {
    required(d, "label")
}

fn source_column<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Origin, D::Error> {
    required(d, "source")
}

fn split_column<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<SplitName>, D::Error> {
    column(d, "split")
}

fn phash_column<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<PHash>, D::Error> {
    column(d, "phash")
}

fn reason_column<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Exclusion>, D::Error> {
    column(d, "excluded_reason")
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
    s.serialize_str(&crate::util::slash_path(p))
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
            excluded: Some(Exclusion::LabelConflict),
            phash: PHash::from_hex(&"0f".repeat(32)),
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

    /// A manifest written before the perceptual hash and the exclusion reason: it loads,
    /// without hashes, and its exclusions are the label check's.
    #[test]
    fn a_manifest_without_the_newer_columns_still_loads() {
        let dir = std::env::temp_dir().join(format!("lab5-man-old-{}", std::process::id()));
        let p = Manifest::path_in(&dir);
        let m = Manifest {
            records: vec![rec("a1", Class::Dog)],
        };
        m.save(&p).unwrap();
        let mut r = csv::Reader::from_path(&p).unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = r.headers().unwrap().clone();
        let newer: Vec<&str> = header.iter().skip(13).collect();
        assert_eq!(newer, ["phash", "excluded_reason"]);
        w.write_record(header.iter().take(13)).unwrap();
        for row in r.records() {
            w.write_record(row.unwrap().iter().take(13)).unwrap();
        }
        std::fs::write(&p, w.into_inner().unwrap()).unwrap();
        let old = Manifest::load(&p).unwrap();
        assert_eq!(old.records[0].phash, None);
        assert_eq!(old.records[0].excluded, Some(Exclusion::LabelCheck));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A bad label, source, split, phash or exclusion reason is named by its column and
    /// value (and the line), and a manifest written by the older polars code, with `""`
    /// for empty text, reads the same.
    #[test]
    fn bad_cells_name_their_column_and_polars_quoting_reads_the_same() {
        let dir = std::env::temp_dir().join(format!("lab5-man-cells-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = Manifest::path_in(&dir);
        let header = "id,label,breed_id,breed_name,source,url,path,width,height,bytes,sha256,split,excluded,phash,excluded_reason";
        let row = |label: &str,
                   source: &str,
                   split: &str,
                   phash: &str,
                   excl: &str,
                   reason: &str| {
            format!("a1,{label},\"\",\"\",{source},u,raw/cat/a1.jpg,1,2,3,ab,{split},{excl},{phash},{reason}")
        };
        let write = |line: String| std::fs::write(&p, format!("{header}\n{line}\n")).unwrap();
        let err = |line: String| {
            write(line);
            format!("{:#}", Manifest::load(&p).unwrap_err())
        };
        let e = err(row("bird", "folder", "train", "", "false", "\"\""));
        assert!(
            e.contains("line 2") && e.contains("column `label`: \"bird\""),
            "{e}"
        );
        let e = err(row("cat", "web", "train", "", "false", "\"\""));
        assert!(e.contains("column `source`: \"web\""), "{e}");
        let e = err(row("cat", "folder", "dev", "", "false", "\"\""));
        assert!(e.contains("column `split`: \"dev\""), "{e}");
        let e = err(row("cat", "folder", "train", "xyz", "false", "\"\""));
        assert!(e.contains("column `phash`: \"xyz\""), "{e}");
        let e = err(row("cat", "folder", "train", "", "true", "typo"));
        assert!(e.contains("column `excluded_reason`: \"typo\""), "{e}");
        write(row("cat", "folder", "\"\"", "\"\"", "true", "\"\""));
        let old = Manifest::load(&p).unwrap();
        let r = &old.records[0];
        assert_eq!(
            (r.breed_id.as_deref(), r.split, r.phash),
            (None, None, None)
        );
        assert_eq!(r.excluded, Some(Exclusion::LabelCheck));
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

//! The manifest: one row per image of the data set, stored as `data/manifest.csv`
//! through polars. It is the contract between collection/import and every later step.

use crate::data::phash::PHash;
use crate::util::with_atomic;
use anyhow::{bail, Context, Result};
use polars::prelude::{df, CsvReadOptions, CsvWriter, DataFrame, SerReader, SerWriter};
use serde::{Deserialize, Serialize};
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
    pub fn from_index(i: i64) -> Class {
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
    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }

    /// Parses a split name.
    pub fn parse(s: &str) -> Option<SplitName> {
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
    pub fn name(self) -> &'static str {
        match self {
            Origin::CatApi => "cat-api",
            Origin::DogApi => "dog-api",
            Origin::Folder => "folder",
        }
    }

    /// Parses an origin name.
    pub fn parse(s: &str) -> Option<Origin> {
        [Origin::CatApi, Origin::DogApi, Origin::Folder]
            .into_iter()
            .find(|x| x.name() == s)
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

impl Exclusion {
    /// `label-check` or `label-conflict`, as in the manifest's `excluded_reason` column.
    pub fn name(self) -> &'static str {
        match self {
            Exclusion::LabelCheck => "label-check",
            Exclusion::LabelConflict => "label-conflict",
        }
    }

    /// Parses [`Exclusion::name`].
    pub fn parse(s: &str) -> Option<Exclusion> {
        [Exclusion::LabelCheck, Exclusion::LabelConflict]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// One image of the data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The columns every manifest has (the first 13) and those added later, which an older
/// manifest may lack ([`OPTIONAL_FROM`] on): they are read as empty.
const COLUMNS: [&str; 15] = [
    "id",
    "label",
    "breed_id",
    "breed_name",
    "source",
    "url",
    "path",
    "width",
    "height",
    "bytes",
    "sha256",
    "split",
    "excluded",
    "phash",
    "excluded_reason",
];
/// Index of the first column an older manifest may lack.
const OPTIONAL_FROM: usize = 13;

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

impl Manifest {
    /// `<data_dir>/manifest.csv`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("manifest.csv")
    }

    /// Sorts rows by class, then id, so files and splits are reproducible.
    pub fn sort(&mut self) {
        self.records
            .sort_by(|a, b| (a.label, &a.id).cmp(&(b.label, &b.id)));
    }

    /// The manifest as a polars table (all columns; numbers as integers).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let r = &self.records;
        let s = |f: &dyn Fn(&Record) -> String| r.iter().map(f).collect::<Vec<String>>();
        let u = |f: &dyn Fn(&Record) -> u64| r.iter().map(f).collect::<Vec<u64>>();
        let df = df!(
            "id" => s(&|x| x.id.clone()),
            "label" => s(&|x| x.label.name().into()),
            "breed_id" => s(&|x| opt(&x.breed_id)),
            "breed_name" => s(&|x| opt(&x.breed_name)),
            "source" => s(&|x| x.source.name().into()),
            "url" => s(&|x| x.url.clone()),
            "path" => s(&|x| x.path.to_string_lossy().replace('\\', "/")),
            "width" => u(&|x| x.width as u64),
            "height" => u(&|x| x.height as u64),
            "bytes" => u(&|x| x.bytes),
            "sha256" => s(&|x| x.sha256.clone()),
            "split" => s(&|x| x.split.map(|p| p.name().to_string()).unwrap_or_default()),
            "excluded" => r.iter().map(Record::is_excluded).collect::<Vec<bool>>(),
            "phash" => s(&|x| x.phash.map(|h| h.to_hex()).unwrap_or_default()),
            "excluded_reason" => s(&|x| x.excluded.map(|e| e.name().to_string()).unwrap_or_default()),
        )?;
        Ok(df)
    }

    /// Writes the manifest atomically as CSV.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut df = self.to_frame()?;
        with_atomic(path, |tmp| {
            let mut f = std::fs::File::create(tmp)?;
            CsvWriter::new(&mut f)
                .include_header(true)
                .finish(&mut df)?;
            f.sync_all()?;
            Ok(())
        })
    }

    /// Reads `manifest.csv`; every row is validated and a bad one is named by line.
    pub fn load(path: &Path) -> Result<Self> {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::from_frame(&df).with_context(|| format!("bad manifest {}", path.display()))
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
    pub fn load_required(data_dir: &Path, what_to_run: &str) -> Result<Self> {
        let m = Self::load_or_empty(data_dir)?;
        if m.records.is_empty() {
            bail!("no data set yet in {}: {what_to_run}", data_dir.display());
        }
        Ok(m)
    }

    fn from_frame(df: &DataFrame) -> Result<Self> {
        let mut cols = Vec::new();
        for (k, name) in COLUMNS.iter().enumerate() {
            match df.column(name) {
                Ok(c) => cols.push(Some(c.str()?.clone())),
                Err(_) if k >= OPTIONAL_FROM => cols.push(None),
                Err(_) => bail!(
                    "missing column `{name}`: not a lab5 manifest; delete it and run `lab5 import` \
                     (or `lab5 collect`) again"
                ),
            }
        }
        let mut records = Vec::with_capacity(df.height());
        for i in 0..df.height() {
            let cell = |c: usize| {
                let col = cols[c].as_ref();
                col.and_then(|col| col.get(i)).unwrap_or("").to_string()
            };
            let row: Vec<String> = (0..COLUMNS.len()).map(cell).collect();
            records.push(parse_row(&row).with_context(|| format!("row {}", i + 2))?);
        }
        Ok(Manifest { records })
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

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse_row(v: &[String]) -> Result<Record> {
    let num = |i: usize| -> Result<u64> {
        v[i].parse()
            .with_context(|| format!("column `{}`: {:?} is not a number", COLUMNS[i], v[i]))
    };
    let Some(label) = Class::parse(&v[1]) else {
        bail!("column `label`: {:?} is not cat or dog", v[1]);
    };
    let Some(source) = Origin::parse(&v[4]) else {
        bail!(
            "column `source`: {:?} is not cat-api, dog-api or folder",
            v[4]
        );
    };
    if !crate::data::is_safe_id(&v[0]) {
        bail!("column `id`: {:?} is not made of [A-Za-z0-9_-]", v[0]);
    }
    let path = PathBuf::from(&v[6]);
    if path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
        bail!("column `path`: {:?} leaves the data folder", v[6]);
    }
    let split = match v[11].as_str() {
        "" => None,
        s => Some(SplitName::parse(s).with_context(|| format!("column `split`: {s:?}"))?),
    };
    let phash = match v[13].as_str() {
        "" => None,
        s => Some(
            PHash::from_hex(s)
                .with_context(|| format!("column `phash`: {s:?} is not 64 hex digits"))?,
        ),
    };
    Ok(Record {
        id: v[0].clone(),
        label,
        breed_id: non_empty(&v[2]),
        breed_name: non_empty(&v[3]),
        source,
        url: v[5].clone(),
        path,
        width: num(7)? as u32,
        height: num(8)? as u32,
        bytes: num(9)?,
        sha256: v[10].clone(),
        split,
        excluded: exclusion(&v[12], &v[14])?,
        phash,
    })
}

/// The `excluded` and `excluded_reason` cells: a manifest written before the reason was
/// recorded says only `true`, which then was always the label check.
fn exclusion(excluded: &str, reason: &str) -> Result<Option<Exclusion>> {
    match (excluded, reason) {
        ("true", "") => Ok(Some(Exclusion::LabelCheck)),
        ("true", r) => Exclusion::parse(r).map(Some).with_context(|| {
            format!("column `excluded_reason`: {r:?} is not label-check or label-conflict")
        }),
        _ => Ok(None),
    }
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
        let mut df = CsvReadOptions::default()
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(p.clone()))
            .and_then(|r| r.finish())
            .unwrap();
        df = df.drop_many(["phash", "excluded_reason"]);
        let mut f = std::fs::File::create(&p).unwrap();
        CsvWriter::new(&mut f).finish(&mut df).unwrap();
        let old = Manifest::load(&p).unwrap();
        assert_eq!(old.records[0].phash, None);
        assert_eq!(old.records[0].excluded, Some(Exclusion::LabelCheck));
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
            err.contains("row 2") && err.contains("column `id`"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

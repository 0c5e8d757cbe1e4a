//! `lab5 import DIR`: brings an ImageFolder directory (`DIR/<class>/*`, optional
//! `DIR/labels.csv` with `id,species,breed,...`), or a folder labelled by `lab5 label`
//! (`DIR/labels.csv` with a `path` column naming each photo), into the data set with the
//! same checks as collect: decode check, SHA-256 de-duplication, atomic copies into `data/raw/<class>/`,
//! manifest rows with source `folder`, and splits. Importing again changes nothing.

use crate::config::{Config, Images};
use crate::data::collect::{human_bytes, reasons_line};
use crate::data::conflicts::Conflict;
use crate::data::folder::{list_files, Candidate, Listing};
use crate::data::images::{self, ImageInfo, Reason, RejectedItem, Rejection};
use crate::data::store::{write_conflicts_and_hashes, write_split, Housekeeping, Store};
use crate::data::{Class, Origin, Record};
use crate::util::{csv_io, with_atomic};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Name of the optional labels file in the imported folder.
pub(crate) const LABELS_FILE: &str = "labels.csv";
/// The folder layout import expects, for error messages.
/// Hex digits of the content hash appended to an id that is already taken.
const ID_SUFFIX_HEX: usize = 8;

/// Options of [`import_folder_with`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Draw a progress bar on stderr (the CLI does; notebooks do not).
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// The imported folder.
    pub dir: PathBuf,
    /// Files found in the class folders.
    pub files: usize,
    /// New rows per class.
    pub imported: BTreeMap<Class, usize>,
    /// Bytes copied.
    pub imported_bytes: u64,
    /// Files already in the data set under the same id (a re-import).
    pub already_present: usize,
    /// Files whose content is already in the data set under another id.
    pub duplicates: usize,
    /// Rejections by reason.
    pub rejected: BTreeMap<Reason, usize>,
    /// Every rejected file in detail (also written to `data/rejected.csv`).
    pub rejections: Vec<RejectedItem>,
    /// `data/rejected.csv`: every refused file of this run.
    pub rejected_file: PathBuf,
    /// New rows that got a breed from `labels.csv`.
    pub with_breed: usize,
    /// `labels.csv` rows whose species disagrees with the folder (folder wins).
    pub labels_csv_conflicts: usize,
    /// Duplicates of this run, each as `<file> = <the file or row with the same bytes>`.
    pub duplicate_files: Vec<String>,
    /// Files stored under another id because theirs was taken (`cat/ok.jpg` and
    /// `dog/ok.jpg`), each with both ids: `labels.csv` lines name the file stem.
    pub renamed: Vec<String>,
    /// `labels.csv` lines not used, each with its line and why (no id, a species that is
    /// not cat or dog, an id given twice, an id that matches no file), and the rows that
    /// disagree with their folder.
    pub labels_csv_notes: Vec<String>,
    /// Rows imported from a `labels.csv` of `lab5 label` whose label no person checked
    /// (provenance `zero-shot` or `model`).
    pub unchecked_labels: usize,
    /// Contents under both labels in the data set (both rows kept out of training).
    pub label_conflicts: Vec<Conflict>,
    /// Rows of an older manifest that got their perceptual hash in this run.
    pub hashes_added: usize,
    /// Rows that had a split and moved to the split of their near-copies.
    pub near_copies_moved: usize,
    /// Sub-folders that are not a class (`cat`, `cats`, `dog`, `dogs`), and folders inside
    /// a class folder (`cat/more`), ignored and listed.
    pub ignored_dirs: Vec<String>,
    /// Hidden files in a class folder (name starting with `.`: `.DS_Store`, macOS `._x.jpg`
    /// resource forks, editor leftovers), as `<class folder>/<name>`: not imported, listed.
    pub hidden_files: Vec<String>,
    /// Leftovers of earlier runs that were cleaned up.
    pub housekeeping: Housekeeping,
    /// Rows that got a split in this run.
    pub newly_split: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// One line of `labels.csv` as written (other columns, such as the pets folder's
/// `width,height,bytes,source`, are ignored; `species` may be missing).
#[derive(Debug, Clone, Deserialize)]
struct LabelLine {
    id: String,
    species: Option<String>,
    breed: String,
}

/// What import keeps of a `labels.csv` line.
#[derive(Debug, Clone, PartialEq)]
struct Label {
    species: Option<Class>,
    breed: Option<String>,
}

/// What the parallel check learned about a file; `info` is `None` for content already in
/// the data set (not decoded again: a re-import only reads and hashes).
struct Checked {
    info: Option<ImageInfo>,
    sha: String,
    bytes: u64,
}

/// A new row and the file to copy for it.
struct Planned {
    source: PathBuf,
    record: Record,
}

/// Imports `dir` into the data folder of `cfg` (see [`import_folder_with`]).
pub fn import_folder(cfg: &Config, dir: &Path) -> Result<ImportReport> {
    import_folder_with(cfg, dir, &ImportOptions::default())
}

/// Imports `dir`: checks every file in parallel, adds the new ones to the manifest,
/// copies them into `data/raw/<class>/`, assigns splits and saves the manifest.
pub fn import_folder_with(cfg: &Config, dir: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    let start = Instant::now();
    let (listing, labels, labels_notes, unchecked) = match listed_in_labels(dir)? {
        Some(listed) => listed,
        None => {
            let listing = list_files(dir)?;
            let (labels, notes) = read_labels(&dir.join(LABELS_FILE))?;
            (listing, labels, notes, HashSet::new())
        }
    };
    let Listing {
        files: candidates,
        ignored_dirs,
        hidden_files,
    } = listing;
    let (mut store, housekeeping) = Store::open(&cfg.data_dir())?;
    let mut rep = ImportReport::new(dir, candidates.len(), ignored_dirs, housekeeping);
    rep.hidden_files = hidden_files;
    rep.labels_csv_notes = labels_notes;
    let stems: HashSet<&str> = candidates.iter().map(|c| c.stem.as_str()).collect();
    let mut unmatched: Vec<&String> = labels
        .keys()
        .filter(|id| !stems.contains(id.as_str()))
        .collect();
    unmatched.sort();
    rep.labels_csv_notes.extend(
        unmatched
            .into_iter()
            .map(|id| format!("id {id:?} matches no file of a class folder (ignored)")),
    );
    rep.hashes_added = store.add_missing_hashes();
    let checked = check_all(&store, &candidates, &cfg.images, opts.progress);
    let plans = plan(&mut store, &candidates, checked, &labels, &mut rep);
    images::write_rejected(store.data_dir(), &rep.rejections)?;
    rep.rejected_file = store.data_dir().join(images::REJECTED_FILE);
    copy_all(store.data_dir(), &plans)?;
    for p in plans {
        rep.unchecked_labels += usize::from(unchecked.contains(&p.record.id));
        *rep.imported.entry(p.record.label).or_default() += 1;
        rep.imported_bytes += p.record.bytes;
        store.add(p.record);
    }
    let settled = store.settle(cfg)?;
    rep.label_conflicts = settled.label_conflicts;
    (rep.newly_split, rep.near_copies_moved) = (settled.newly_split, settled.near_copies_moved);
    for class in Class::ALL {
        rep.housekeeping.orphans += store.remove_orphans(class)?;
    }
    rep.seconds = start.elapsed().as_secs_f64();
    Ok(rep)
}

/// `labels.csv` as id -> label; an absent file gives an empty map. Values are trimmed,
/// lines without an id skipped, and a species that is not cat(s)/dog(s) is ignored.
fn read_labels(path: &Path) -> Result<(HashMap<String, Label>, Vec<String>)> {
    if !path.is_file() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let lines: Vec<LabelLine> = csv_io::read_rows(path)
        .context("expected the columns id,species,breed (as in the pets folder)")?;
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (mut out, mut notes) = (HashMap::new(), Vec::new());
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (k, line) in lines.into_iter().enumerate() {
        let n = k + 2; // line 1 is the header
        let Some(id) = non_empty(&line.id) else {
            notes.push(format!("line {n}: no id (ignored)"));
            continue;
        };
        let written = line.species.as_deref().map(str::trim).unwrap_or("");
        let species = Class::parse(written);
        if species.is_none() && !written.is_empty() {
            notes.push(format!(
                "line {n}: species {written:?} is not cat or dog (ignored)"
            ));
        }
        if let Some(m) = first_line.insert(id.clone(), n) {
            notes.push(format!(
                "line {n}: id {id:?} again (line {m}); the later line is used"
            ));
        }
        let breed = non_empty(&line.breed);
        out.insert(id, Label { species, breed });
    }
    Ok((out, notes))
}

/// The files of a `labels.csv` of `lab5 label`, their labels, the notes, and the ids whose
/// label no person checked.
type Listed = (
    Listing,
    HashMap<String, Label>,
    Vec<String>,
    HashSet<String>,
);

/// One line of a `labels.csv` that lists its photos (as `lab5 label` writes it).
#[derive(Debug, Clone, Deserialize)]
struct PathLine {
    id: String,
    species: Option<String>,
    #[serde(default)]
    breed: Option<String>,
    #[serde(default)]
    provenance: Option<String>,
    path: String,
}

/// True when the CSV file's header has a `path` column.
fn has_path_column(path: &Path) -> Result<bool> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("{}: no header line", path.display()))?;
    Ok(headers.iter().any(|h| h == "path"))
}

/// The photos of `dir/labels.csv` when it has a `path` column (the labels of `lab5
/// label`): each cat or dog line is a file to import under its id (a relative path is
/// relative to `dir`); other lines are named in the notes, and so are the labels no
/// person checked (provenance `zero-shot` or `model`). `None` without such a file.
fn listed_in_labels(dir: &Path) -> Result<Option<Listed>> {
    let file = dir.join(LABELS_FILE);
    if !file.is_file() || !has_path_column(&file)? {
        return Ok(None);
    }
    let lines: Vec<PathLine> = csv_io::read_rows(&file).context(
        "expected the columns id,species,breed,provenance,p,path (as `lab5 label` writes them)",
    )?;
    let mut listed: Listed = Default::default();
    for (k, line) in lines.into_iter().enumerate() {
        take_line(dir, k + 2, line, &mut listed); // line 1 is the header
    }
    anyhow::ensure!(
        !listed.0.files.is_empty(),
        "{} lists no cat or dog photo: nothing to import",
        file.display()
    );
    Ok(Some(listed))
}

/// Adds line `n` of a `labels.csv` of `lab5 label` to `listed`: a file to import for a
/// cat or dog, a note otherwise.
fn take_line(dir: &Path, n: usize, line: PathLine, listed: &mut Listed) {
    let (listing, labels, notes, unchecked) = listed;
    let (id, written) = (line.id.trim(), line.species.as_deref().unwrap_or("").trim());
    let Some(class) = Class::parse(written).filter(|_| !id.is_empty()) else {
        notes.push(format!(
            "line {n}: id {id:?}, species {written:?}: not a cat or dog photo (not imported)"
        ));
        return;
    };
    if labels.contains_key(id) {
        notes.push(format!("line {n}: id {id:?} again (not imported twice)"));
        return;
    }
    if line.provenance.as_deref().is_some_and(|p| p != "human") {
        unchecked.insert(images::file_id(id));
    }
    let breed = line.breed.filter(|b| !b.trim().is_empty());
    labels.insert(
        id.to_string(),
        Label {
            species: Some(class),
            breed,
        },
    );
    let path = dir.join(line.path.trim()); // an absolute path replaces dir
    let stem = id.to_string();
    listing.files.push(Candidate { class, path, stem });
}

/// Reads and hashes every file, and decodes those whose content is new, in parallel.
fn check_all(
    store: &Store,
    files: &[Candidate],
    policy: &Images,
    progress: bool,
) -> Vec<Result<Checked, Rejection>> {
    let bar = if progress {
        crate::util::progress(files.len() as u64, "checking")
    } else {
        ProgressBar::hidden()
    };
    let out = files
        .par_iter()
        .map(|c| {
            let r = check_file(store, c, policy);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    out
}

fn check_file(store: &Store, c: &Candidate, policy: &Images) -> Result<Checked, Rejection> {
    let bytes = std::fs::read(&c.path).map_err(|e| {
        let broken = c.path.is_symlink() && !c.path.exists();
        let msg = match broken {
            true => "broken link (its target is missing)".to_string(),
            false => e.to_string(),
        };
        Rejection::new(Reason::Unreadable, msg)
    })?;
    let sha = images::sha256_hex(&bytes);
    let info = if store.has_sha(&sha, c.class) {
        None
    } else {
        Some(images::inspect(&bytes, policy)?)
    };
    Ok(Checked {
        info,
        sha,
        bytes: bytes.len() as u64,
    })
}

/// Decides, in file order, which files become new rows.
fn plan(
    store: &mut Store,
    files: &[Candidate],
    checked: Vec<Result<Checked, Rejection>>,
    labels: &HashMap<String, Label>,
    rep: &mut ImportReport,
) -> Vec<Planned> {
    let mut plans: Vec<Planned> = Vec::new();
    let mut planned_ids = HashSet::new();
    for (c, result) in files.iter().zip(checked) {
        let ck = match result {
            Ok(ck) => ck,
            Err(r) => {
                rep.reject(&r, c);
                continue;
            }
        };
        let id = images::file_id(&c.stem);
        let Some(info) = ck.info.filter(|_| store.claim_sha(&ck.sha, c.class)) else {
            let same_id = store.has_id(&id);
            rep.count_known(same_id);
            if !same_id {
                let of = holder(store, &plans, &ck.sha, c.class);
                rep.duplicate_files
                    .push(format!("{} = {of}", c.path.display()));
            }
            continue;
        };
        let unique = unique_id(store, &planned_ids, id.clone(), &ck.sha);
        if unique != id {
            let path = c.path.display();
            rep.renamed
                .push(format!("{path}: id {id:?} is taken, stored as {unique:?}"));
        }
        let id = unique;
        planned_ids.insert(id.clone());
        let breed = breed_of(c, labels.get(&c.stem), rep);
        plans.push(Planned {
            source: c.path.clone(),
            record: folder_record(c, id, info, ck, breed),
        });
    }
    plans
}

/// Where the data set (or this import) already has the bytes `sha` under `class`: the
/// row's path in the data folder, or the file planned earlier in this import.
fn holder(store: &Store, plans: &[Planned], sha: &str, class: Class) -> String {
    let same = |r: &Record| r.sha256 == sha && r.label == class;
    if let Some(r) = store.manifest.records.iter().find(|r| same(r)) {
        return format!("data/{}", crate::util::slash_path(&r.path));
    }
    plans.iter().find(|p| same(&p.record)).map_or_else(
        || "an earlier file".into(),
        |p| p.source.display().to_string(),
    )
}

/// `id`, or `id_<hash prefix>` when a row (or an earlier file of this import) has it.
fn unique_id(store: &Store, planned: &HashSet<String>, id: String, sha: &str) -> String {
    if store.has_id(&id) || planned.contains(&id) {
        format!("{id}_{}", &sha[..ID_SUFFIX_HEX])
    } else {
        id
    }
}

/// The breed from `labels.csv`, unless its species contradicts the folder.
fn breed_of(c: &Candidate, label: Option<&Label>, rep: &mut ImportReport) -> Option<String> {
    let conflict = label.is_some_and(|l| l.species.is_some_and(|s| s != c.class));
    rep.labels_csv_conflicts += usize::from(conflict);
    if let Some(said) = label.and_then(|l| l.species).filter(|_| conflict) {
        let (path, class) = (c.path.display(), c.class);
        let note = format!(
            "id {:?} says {said}, but {path} is in the {class} folder (folder kept)",
            c.stem
        );
        rep.labels_csv_notes.push(note);
    }
    let breed = label.filter(|_| !conflict).and_then(|l| l.breed.clone());
    rep.with_breed += usize::from(breed.is_some());
    breed
}

fn folder_record(
    c: &Candidate,
    id: String,
    info: ImageInfo,
    ck: Checked,
    breed: Option<String>,
) -> Record {
    let ext = images::extension(info.format).unwrap_or("img");
    Record {
        path: images::class_dir(c.class).join(format!("{id}.{ext}")),
        id,
        label: c.class,
        breed_id: None,
        breed_name: breed,
        source: Origin::Folder,
        // absolute: a path relative to where `lab5 import` ran means nothing later
        url: std::path::absolute(&c.path)
            .unwrap_or_else(|_| c.path.clone())
            .to_string_lossy()
            .into_owned(),
        width: info.width,
        height: info.height,
        bytes: ck.bytes,
        sha256: ck.sha,
        split: None,
        excluded: None,
        phash: Some(info.phash),
    }
}

/// Copies the planned files into the data folder (temp name + rename), in parallel;
/// a file already there with the right size is kept.
fn copy_all(data_dir: &Path, plans: &[Planned]) -> Result<()> {
    plans.par_iter().try_for_each(|p| {
        let dest = data_dir.join(&p.record.path);
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == p.record.bytes) {
            return Ok(());
        }
        with_atomic(&dest, |tmp| {
            std::fs::copy(&p.source, tmp)?;
            Ok(())
        })
        .with_context(|| format!("cannot copy {}", p.source.display()))
    })
}

impl ImportReport {
    fn new(dir: &Path, files: usize, ignored_dirs: Vec<String>, hk: Housekeeping) -> Self {
        ImportReport {
            dir: dir.to_path_buf(),
            files,
            ignored_dirs,
            housekeeping: hk,
            ..ImportReport::default()
        }
    }

    /// Counts a file whose content is already in the data set: under the same id (a
    /// re-import) or under another (a duplicate).
    fn count_known(&mut self, same_id: bool) {
        if same_id {
            self.already_present += 1;
        } else {
            self.duplicates += 1;
        }
    }

    fn reject(&mut self, r: &Rejection, c: &Candidate) {
        *self.rejected.entry(r.reason).or_default() += 1;
        self.rejections.push(RejectedItem {
            label: c.class,
            item: c.path.display().to_string(),
            reason: r.reason,
            detail: r.detail.clone(),
        });
    }

    /// New rows of all classes.
    pub fn imported_total(&self) -> usize {
        self.imported.values().sum()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (dir, secs) = (self.dir.display(), self.seconds);
        writeln!(f, "import {dir}: {} files in {secs:.1} s", self.files)?;
        let per: Vec<String> = self
            .imported
            .iter()
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        let per = if per.is_empty() {
            "0".to_string()
        } else {
            per.join(", ")
        };
        let size = human_bytes(self.imported_bytes);
        writeln!(
            f,
            "  imported {per} ({size}), {} with a breed",
            self.with_breed
        )?;
        let (present, dups) = (self.already_present, self.duplicates);
        writeln!(f, "  already present {present}, duplicates {dups}")?;
        let total: usize = self.rejected.values().sum();
        writeln!(f, "  rejected {total}: {}", reasons_line(&self.rejected))?;
        images::write_examples(f, "    ", &self.rejections)?;
        if !self.rejections.is_empty() {
            writeln!(f, "  every refused file: {}", self.rejected_file.display())?;
        }
        self.fmt_notes(f)
    }
}

impl ImportReport {
    fn fmt_notes(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unchecked_labels > 0 {
            let n = self.unchecked_labels;
            writeln!(f, "  {n} imported label(s) were proposed by the pretrained network or the classifier of `lab5 label`, not checked by a person (provenance zero-shot or model in labels.csv)")?;
        }
        if self.labels_csv_conflicts > 0 {
            let n = self.labels_csv_conflicts;
            writeln!(
                f,
                "  {n} labels.csv rows disagree with their folder (folder kept)"
            )?;
        }
        write_list(f, "duplicates (same bytes)", &self.duplicate_files)?;
        write_list(f, "stored under another id", &self.renamed)?;
        write_list(
            f,
            "labels.csv lines not used as written",
            &self.labels_csv_notes,
        )?;
        if !self.ignored_dirs.is_empty() {
            let dirs = self.ignored_dirs.join(", ");
            writeln!(f, "  ignored folders (not cat/dog, or inside one): {dirs}")?;
        }
        if !self.hidden_files.is_empty() {
            let n = self.hidden_files.len();
            let shown = self.hidden_files.iter().take(images::MAX_EXAMPLES);
            let mut line = shown.cloned().collect::<Vec<_>>().join(", ");
            if n > images::MAX_EXAMPLES {
                line += &format!(" and {} more", n - images::MAX_EXAMPLES);
            }
            writeln!(f, "  ignored hidden files ({n}): {line}")?;
        }
        write_conflicts_and_hashes(f, "  ", &self.label_conflicts, self.hashes_added)?;
        write!(f, "{}", self.housekeeping)?;
        write_split(f, "  ", self.newly_split, self.near_copies_moved)
    }
}

/// `  <what> (<n>):` and the first [`images::MAX_EXAMPLES`] entries, one a line (nothing
/// when `items` is empty).
fn write_list(f: &mut std::fmt::Formatter<'_>, what: &str, items: &[String]) -> std::fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "  {what} ({}):", items.len())?;
    images::write_first(f, "    ", items, items.len())
}

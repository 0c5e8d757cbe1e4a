//! `lab5 label DIR`: labels a folder of photos that has no labels, in rounds.
//!
//! Each call is one step:
//! 1. the photos of `DIR` (flat or nested, [`super::scan`]) get stable ids, and the frozen
//!    EfficientNet-Lite0's features and zero-shot probabilities ([`super::features`],
//!    cached in `OUT/.lab5-cache/`, rows borrowed from the data set's cache when it has
//!    them); files that cannot be read are listed and skipped;
//! 2. when a round is waiting, the person's answers are read from its file
//!    (`OUT/rounds/round-NNN.csv`, or the file given) and checked line by line
//!    ([`super::answers`]); a round file nobody has filled in yet leaves everything as it
//!    is;
//! 3. the classifier ([`super::classifier`], starting from the zero-shot rule) is fitted
//!    on the human cat/dog labels and proposes a label for every other photo;
//! 4. the next round picks `label.k` unlabelled photos ([`super::select`]) and writes its
//!    file and a photo grid with their ids (`rounds/round-NNN.png`);
//! 5. `OUT/labels.csv` (`id,species,breed,provenance,p,path`, which `lab5 import OUT`
//!    reads), `OUT/rounds.csv` (one line per answered round) and `OUT/state.json` are
//!    written, each through a temp file and a rename, `state.json` last: a step that dies
//!    half-way leaves the previous state and the round file with the answers in place,
//!    and running it again finishes it. Nothing a person answered is ever lost.
//!
//! `OUT` is `label.out_dir`, else `DIR` itself. A `labels.csv` in `OUT` that lab5 did not
//! write (no `state.json` beside it) is never overwritten.

use super::answers::{self, Answer, Answers, RoundLine, Species};
use super::classifier::{Design, LogisticRegression, Prior};
use super::features::{self, BackbonePass, Compute, Unreadable};
use super::scan::{self, Found};
use super::select::{self, Pool, Strategy};
use crate::config::Config;
use crate::data::images::file_id;
use crate::plot::{image_grid, Figure, Photo};
use crate::util::{csv_io, write_atomic};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The labels of every photo (read by `lab5 import`).
pub const LABELS_FILE: &str = "labels.csv";
/// One line per answered round.
pub const ROUNDS_FILE: &str = "rounds.csv";
/// Ids, human answers, rounds and the waiting round.
pub const STATE_FILE: &str = "state.json";
/// Folder of the round files and grids.
pub const ROUNDS_DIR: &str = "rounds";
/// Folder of the backbone cache (hidden: never searched for photos).
pub const CACHE_DIR: &str = ".lab5-cache";
/// Version of `state.json`.
const STATE_VERSION: u32 = 1;
/// Hex digits of the content hash added to an id that is taken.
const ID_SUFFIX_HEX: usize = 8;

/// Where a label of `labels.csv` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    /// The ImageNet head alone (no human cat/dog label yet).
    ZeroShot,
    /// A person's answer.
    Human,
    /// The classifier trained on the human labels.
    Model,
}

impl Provenance {
    /// `zero-shot`, `human` or `model`.
    pub fn name(self) -> &'static str {
        match self {
            Provenance::ZeroShot => "zero-shot",
            Provenance::Human => "human",
            Provenance::Model => "model",
        }
    }
}

/// One line of `labels.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    /// The photo's id (stable across calls; the file stem when that is free and safe).
    pub id: String,
    /// `cat`, `dog` or `neither`.
    pub species: Species,
    /// The breed a person gave (empty otherwise).
    pub breed: String,
    /// Who said so.
    pub provenance: Provenance,
    /// Probability of `species` (1 for a human label; `p_neither` for a proposed neither).
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    pub p: f64,
    /// The photo, relative to the folder of `labels.csv` when inside it, else absolute.
    pub path: String,
}

/// A person's label kept in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Human {
    /// What they said.
    pub species: Species,
    /// The breed, when given.
    pub breed: Option<String>,
    /// SHA-256 of the photo they saw (a changed file loses the label).
    pub sha256: String,
    /// The round of the answer.
    pub round: usize,
}

/// The round waiting for answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Its number (1, 2, ...).
    pub round: usize,
    /// How its photos were picked.
    pub strategy: Strategy,
    /// The photos asked about.
    pub ids: Vec<String>,
    /// What was proposed for each when it was asked.
    pub proposed: Vec<Species>,
}

/// One line of `rounds.csv`: an answered round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundLog {
    /// The round.
    pub round: usize,
    /// How its photos were picked.
    pub strategy: Strategy,
    /// Photos asked about.
    pub asked: usize,
    /// Answers taken (more than asked when the file labelled other photos too).
    pub answered: usize,
    /// Answers cat / dog / neither.
    pub cat: usize,
    /// Dog answers.
    pub dog: usize,
    /// Neither answers.
    pub neither: usize,
    /// Photos of the round whose answer equals what was proposed when asked.
    pub agreed: usize,
    /// Other photos whose proposal changed when the classifier was retrained.
    pub changed: usize,
    /// Human labels in all after the round.
    pub human_labels: usize,
}

/// Everything `lab5 label` remembers between calls (`OUT/state.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// File format version.
    pub version: u32,
    /// The labelled folder.
    pub folder: PathBuf,
    /// Photo id of each relative path ever seen.
    pub ids: BTreeMap<String, String>,
    /// Human labels by id.
    pub human: BTreeMap<String, Human>,
    /// Answered rounds.
    pub rounds: Vec<RoundLog>,
    /// The round waiting for answers.
    pub pending: Option<Pending>,
}

/// Settings of one call that may differ from the config.
#[derive(Debug, Clone, Default)]
pub struct LabelOptions {
    /// Output folder (default `label.out_dir`, else the folder itself).
    pub out: Option<PathBuf>,
    /// Photos of the next round (default `label.k`).
    pub k: Option<usize>,
    /// Strategy of the next round (default `label.strategy`).
    pub strategy: Option<Strategy>,
    /// Read the answers from this file instead of the waiting round's file.
    pub answers: Option<PathBuf>,
}

/// A photo of the folder with its id.
#[derive(Debug, Clone)]
pub struct FolderPhoto {
    /// Its id.
    pub id: String,
    /// Where it is.
    pub found: Found,
}

/// What one call did.
#[derive(Debug, Clone, Default)]
pub struct LabelReport {
    /// The labelled folder.
    pub dir: PathBuf,
    /// Where the files are.
    pub out: PathBuf,
    /// Photos labelled (readable ones).
    pub photos: usize,
    /// Photo files that could not be read (skipped).
    pub unreadable: Vec<Unreadable>,
    /// Files that are not photos.
    pub other_files: Vec<String>,
    /// The round answered in this call.
    pub answered: Option<RoundLog>,
    /// The round file still waiting for answers (nothing was changed).
    pub waiting: Option<PathBuf>,
    /// Human labels that no longer apply (the photo changed or is gone).
    pub dropped: Vec<String>,
    /// Human labels in all.
    pub human: usize,
    /// Photos per (provenance, species) in `labels.csv`.
    pub counts: BTreeMap<(Provenance, Species), usize>,
    /// The new round: number, ids and its files (answers, grid).
    pub new_round: Option<(usize, Vec<String>, PathBuf, PathBuf)>,
    /// `labels.csv`.
    pub labels_file: PathBuf,
}

/// The output folder for labelling `dir`: the option, else `label.out_dir`, else `dir`.
pub fn out_dir(cfg: &Config, dir: &Path, opts: &LabelOptions) -> PathBuf {
    let configured = cfg.label.out_dir.as_ref().map(|p| cfg.resolve(p));
    opts.out
        .clone()
        .or(configured)
        .unwrap_or_else(|| dir.to_path_buf())
}

/// One labelling step on `dir` (see the module doc): reads the waiting round's answers,
/// retrains, proposes, starts the next round, writes `labels.csv`, `rounds.csv` and
/// `state.json`.
///
/// # Errors
/// `dir` holds no readable photo; the output folder holds a `labels.csv` lab5 did not
/// write, or the labelling of another folder; an answer file has problems (each line
/// named; nothing changes); a file cannot be written (the previous state stays).
pub fn label_folder(
    cfg: &Config,
    dir: &Path,
    opts: &LabelOptions,
    device: Device,
) -> Result<LabelReport> {
    let out = out_dir(cfg, dir, opts);
    let mut state = load_state(&out, dir)?;
    // The labelling's own folders are never photos: in the output folder, and in `dir` when
    // an earlier labelling wrote there (its state file says so).
    let mut skip = vec![out.join(ROUNDS_DIR), out.join(CACHE_DIR)];
    if dir.join(STATE_FILE).is_file() {
        skip.extend([dir.join(ROUNDS_DIR), dir.join(CACHE_DIR)]);
    }
    let scanned = scan::scan(dir, &skip)?;
    let listed = assign_ids(&mut state, &scanned.photos);
    let (pass, unreadable) = backbone(cfg, &out, &listed, device)?;
    let mut report = LabelReport {
        dir: dir.to_path_buf(),
        out: out.clone(),
        other_files: others(dir, &out, &scanned.other_files),
        unreadable: [scanned.unreadable.clone(), unreadable].concat(),
        labels_file: out.join(LABELS_FILE),
        ..LabelReport::default()
    };
    let photos: Vec<FolderPhoto> = listed
        .into_iter()
        .filter(|p| pass.row_of(&p.found.sha256).is_some())
        .collect();
    ensure_photos(dir, &photos, &scanned, &report.unreadable)?;
    report.photos = photos.len();
    report.dropped = drop_stale(&mut state, &photos);
    let session = Session::new(cfg, photos, &pass)?;
    step(&session, &mut state, opts, &mut report)?;
    Ok(report)
}

/// Steps 2 to 5 of the module doc on the photos of `session`.
fn step(
    session: &Session,
    state: &mut State,
    opts: &LabelOptions,
    report: &mut LabelReport,
) -> Result<()> {
    let before = session.propose(state)?;
    let taken = take_answers(session, state, opts, &report.out)?;
    let after = session.propose(state)?;
    if let Some(mut log) = taken.answered {
        log.changed = changed(&before, &after, session, state);
        state.rounds.push(log.clone());
        state.pending = None;
        report.answered = Some(log);
    }
    report.waiting = taken.waiting;
    let new_round = match report.waiting {
        Some(_) => None,
        None if state.pending.is_some() => None,
        None => plan_round(session, state, &after, opts),
    };
    if let Some(p) = &new_round {
        report.new_round = Some(write_round(session, &report.out, p, &after)?);
        state.pending = Some(p.clone());
    }
    report.human = state.human.len();
    let rows = session.label_rows(state, &after, &report.out);
    for r in &rows {
        *report.counts.entry((r.provenance, r.species)).or_default() += 1;
    }
    write_outputs(&report.out, &rows, state)
}

/// The other files of the folder, without the labelling's own files (when `out` is it).
fn others(dir: &Path, out: &Path, files: &[String]) -> Vec<String> {
    let own = [LABELS_FILE, ROUNDS_FILE, STATE_FILE].map(|f| out.join(f));
    files
        .iter()
        .filter(|f| !own.contains(&dir.join(f)))
        .cloned()
        .collect()
}

/// `OUT/state.json`, or a fresh state for `dir`.
///
/// # Errors
/// The file is not a labelling state, belongs to another folder, or `OUT/labels.csv`
/// exists without it (a file lab5 did not write).
fn load_state(out: &Path, dir: &Path) -> Result<State> {
    let path = out.join(STATE_FILE);
    let folder = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !path.is_file() {
        let labels = out.join(LABELS_FILE);
        if labels.exists() {
            bail!("{} exists but was not written by `lab5 label` (no {STATE_FILE} beside it): give another output folder (label.out_dir or --out); nothing was changed", labels.display());
        }
        return Ok(State {
            version: STATE_VERSION,
            folder,
            ..State::default()
        });
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let state: State = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a lab5 labelling state: move it away to start over",
            path.display()
        )
    })?;
    if state.version != STATE_VERSION {
        bail!(
            "{}: version {} (this lab5 reads {STATE_VERSION})",
            path.display(),
            state.version
        );
    }
    if state.folder != folder {
        bail!("{} holds the labelling of {}, not of {}: give another output folder (label.out_dir or --out)", out.display(), state.folder.display(), folder.display());
    }
    Ok(state)
}

/// The photos with their ids: the id a relative path had before, else the file stem
/// (made safe, [`file_id`]), with a hash suffix when another photo has it.
fn assign_ids(state: &mut State, found: &[Found]) -> Vec<FolderPhoto> {
    let mut taken: HashSet<String> = state.ids.values().cloned().collect();
    found
        .iter()
        .map(|f| {
            let id = match state.ids.get(&f.rel) {
                Some(id) => id.clone(),
                None => {
                    let id = new_id(f, &taken);
                    taken.insert(id.clone());
                    state.ids.insert(f.rel.clone(), id.clone());
                    id
                }
            };
            FolderPhoto {
                id,
                found: f.clone(),
            }
        })
        .collect()
}

fn new_id(f: &Found, taken: &HashSet<String>) -> String {
    let stem = Path::new(&f.rel)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = file_id(&stem);
    if !taken.contains(&base) {
        return base;
    }
    let hashed = format!("{base}_{}", &f.sha256[..ID_SUFFIX_HEX]);
    (1..)
        .map(|n| match n {
            1 => hashed.clone(),
            n => format!("{hashed}_{n}"),
        })
        .find(|id| !taken.contains(id))
        .unwrap_or(hashed)
}

/// The backbone pass over the photos: cached in `OUT/.lab5-cache/`, rows of the data
/// set's cache reused, unreadable photos returned.
fn backbone(
    cfg: &Config,
    out: &Path,
    photos: &[FolderPhoto],
    device: Device,
) -> Result<(BackbonePass, Vec<Unreadable>)> {
    let shared = features::pass_path(cfg)?;
    let name = shared
        .file_name()
        .context("backbone cache without a name")?;
    let cache = out.join(CACHE_DIR).join(name);
    let files: Vec<_> = photos.iter().map(|p| p.found.image_file()).collect();
    let how = Compute {
        kind: crate::models::backbone::Kind::EfficientNetLite0,
        policy: cfg.images.clone(),
        strict: false,
        speed: features::PassSpeed::for_kind(
            cfg,
            crate::models::backbone::Kind::EfficientNetLite0,
        )?,
    };
    features::load_or_compute_files(cfg, &files, (&cache, &[shared]), device, &how)
}

/// Fails when no photo can be labelled, saying why.
fn ensure_photos(
    dir: &Path,
    photos: &[FolderPhoto],
    scanned: &scan::Scan,
    unreadable: &[Unreadable],
) -> Result<()> {
    if !photos.is_empty() {
        return Ok(());
    }
    if unreadable.is_empty() {
        let others = match scanned.other_files.len() {
            0 => String::new(),
            n => format!(
                "; it has {n} other file(s), e.g. {}",
                scanned.other_files[0]
            ),
        };
        bail!(
            "{} holds no photos (JPEG, PNG or WebP files, searched in every sub-folder){others}",
            dir.display()
        );
    }
    bail!(
        "none of the {} photo file(s) of {} can be read:\n{}",
        unreadable.len(),
        dir.display(),
        unreadable_lines(unreadable)
    )
}

fn unreadable_lines(unreadable: &[Unreadable]) -> String {
    let lines: Vec<String> = unreadable
        .iter()
        .map(|u| format!("  {}: {}", u.path.display(), u.reason))
        .collect();
    lines.join("\n")
}

/// Drops the human labels of photos that changed (another SHA-256 under the same id; a
/// photo that left the folder keeps its label, it may come back). Returns their ids.
fn drop_stale(state: &mut State, photos: &[FolderPhoto]) -> Vec<String> {
    let now: BTreeMap<&str, &str> = photos
        .iter()
        .map(|p| (p.id.as_str(), p.found.sha256.as_str()))
        .collect();
    let stale: Vec<String> = state
        .human
        .iter()
        .filter(|(id, h)| now.get(id.as_str()).is_some_and(|sha| *sha != h.sha256))
        .map(|(id, _)| id.clone())
        .collect();
    for id in &stale {
        state.human.remove(id);
    }
    stale
}

/// The photos of one step, their backbone numbers and the classifier's design.
struct Session<'a> {
    cfg: &'a Config,
    photos: Vec<FolderPhoto>,
    /// Row of each id.
    index: BTreeMap<String, usize>,
    /// `(N, 1280)` features (for the `diverse` strategy).
    features: Tensor,
    /// Zero-shot `p_neither` of each photo.
    p_neither: Vec<f64>,
    design: Design,
}

/// What the classifier proposes for every photo (row order of the session).
struct Proposals {
    p_dog: Vec<f64>,
    species: Vec<Species>,
    /// Probability of the proposed species.
    p: Vec<f64>,
    provenance: Provenance,
}

impl<'a> Session<'a> {
    fn new(cfg: &'a Config, photos: Vec<FolderPhoto>, pass: &BackbonePass) -> Result<Self> {
        let rows: Vec<i64> = photos
            .iter()
            .filter_map(|p| pass.row_of(&p.found.sha256))
            .collect();
        anyhow::ensure!(
            rows.len() == photos.len(),
            "a photo is missing from the backbone pass"
        );
        let rows = Tensor::from_slice(&rows);
        let features = pass.features.index_select(0, &rows);
        let probs = pass.probs.index_select(0, &rows);
        let p_neither = Vec::<f64>::try_from(probs.select(1, 2).to_kind(tch::Kind::Double))?;
        let design = Design::new(&features, &probs, Prior::ZeroShot)?;
        let index = photos
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        Ok(Session {
            cfg,
            photos,
            index,
            features,
            p_neither,
            design,
        })
    }

    /// Fits on the human cat/dog labels of `state` and proposes a label for every photo.
    fn propose(&self, state: &State) -> Result<Proposals> {
        let (mut rows, mut dog) = (Vec::new(), Vec::new());
        for (id, h) in &state.human {
            if let (Some(&row), Some(class)) = (self.index.get(id), h.species.class()) {
                rows.push(row as i64);
                dog.push(class == crate::data::Class::Dog);
            }
        }
        let fit = LogisticRegression::fit(&self.design, &rows, &dog, self.cfg.label.c)?;
        let p_dog = fit.predict(&self.design);
        let neither = self.cfg.audit.neither_threshold;
        let (species, p) = p_dog
            .iter()
            .zip(&self.p_neither)
            .map(|(&pd, &pn)| match () {
                _ if pn >= neither => (Species::Neither, pn),
                _ if pd >= 0.5 => (Species::Dog, pd),
                _ => (Species::Cat, 1.0 - pd),
            })
            .unzip();
        let provenance = match rows.is_empty() {
            true => Provenance::ZeroShot,
            false => Provenance::Model,
        };
        Ok(Proposals {
            p_dog,
            species,
            p,
            provenance,
        })
    }

    /// The lines of `labels.csv`: human labels as given, proposals for the rest.
    fn label_rows(&self, state: &State, prop: &Proposals, out: &Path) -> Vec<LabelRow> {
        self.photos
            .iter()
            .enumerate()
            .map(|(i, photo)| {
                let path = shown_path(out, &photo.found.path);
                match state.human.get(&photo.id) {
                    Some(h) => LabelRow {
                        id: photo.id.clone(),
                        species: h.species,
                        breed: h.breed.clone().unwrap_or_default(),
                        provenance: Provenance::Human,
                        p: 1.0,
                        path,
                    },
                    None => LabelRow {
                        id: photo.id.clone(),
                        species: prop.species[i],
                        breed: String::new(),
                        provenance: prop.provenance,
                        p: prop.p[i],
                        path,
                    },
                }
            })
            .collect()
    }
}

/// `path` relative to `out` (with `/`) when inside it, else absolute.
fn shown_path(out: &Path, path: &Path) -> String {
    match path.strip_prefix(out) {
        Ok(rel) => crate::util::slash_path(rel),
        Err(_) => {
            let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
            crate::util::slash_path(&abs)
        }
    }
}

/// Proposals of photos still without a human label that differ between two fits.
fn changed(before: &Proposals, after: &Proposals, session: &Session, state: &State) -> usize {
    session
        .photos
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            !state.human.contains_key(&p.id) && before.species[*i] != after.species[*i]
        })
        .count()
}

/// What [`take_answers`] found.
#[derive(Default)]
struct Taken {
    answered: Option<RoundLog>,
    waiting: Option<PathBuf>,
}

/// `OUT/rounds/round-NNN.<ext>`.
pub fn round_file(out: &Path, round: usize, ext: &str) -> PathBuf {
    out.join(ROUNDS_DIR).join(format!("round-{round:03}.{ext}"))
}

/// Reads the waiting round's answers into `state` (nothing when nobody answered yet).
fn take_answers(
    session: &Session,
    state: &mut State,
    opts: &LabelOptions,
    out: &Path,
) -> Result<Taken> {
    let Some(pending) = state.pending.clone() else {
        if let Some(f) = &opts.answers {
            bail!("no round is waiting for answers, so {} was not read: run `lab5 label DIR` without answers to start one", f.display());
        }
        return Ok(Taken::default());
    };
    let file = opts
        .answers
        .clone()
        .unwrap_or_else(|| round_file(out, pending.round, "csv"));
    let known: HashSet<&str> = session.index.keys().map(String::as_str).collect();
    let asked: Vec<String> = pending
        .ids
        .iter()
        .filter(|id| known.contains(id.as_str()))
        .cloned()
        .collect();
    match answers::read_answers(&file, &asked, &known)? {
        Answers::Waiting if opts.answers.is_some() => bail!(
            "{}: every species is empty: write cat, dog or neither on each line",
            file.display()
        ),
        Answers::Waiting => Ok(Taken {
            waiting: Some(file),
            ..Taken::default()
        }),
        Answers::Given(list) => Ok(Taken {
            answered: Some(apply(session, state, &pending, &list)),
            ..Taken::default()
        }),
    }
}

/// Records `answers` as human labels; the round's log line (without `changed`).
fn apply(session: &Session, state: &mut State, pending: &Pending, answers: &[Answer]) -> RoundLog {
    let count = |s: Species| answers.iter().filter(|a| a.species == s).count();
    let said = |id: &str| answers.iter().find(|a| a.id == id).map(|a| a.species);
    let agreed = pending
        .ids
        .iter()
        .zip(&pending.proposed)
        .filter(|(id, p)| said(id) == Some(**p))
        .count();
    for a in answers {
        let sha = session
            .index
            .get(&a.id)
            .map(|&i| session.photos[i].found.sha256.clone());
        let human = Human {
            species: a.species,
            breed: a.breed.clone(),
            sha256: sha.unwrap_or_default(),
            round: pending.round,
        };
        state.human.insert(a.id.clone(), human);
    }
    RoundLog {
        round: pending.round,
        strategy: pending.strategy,
        asked: pending.ids.len(),
        answered: answers.len(),
        cat: count(Species::Cat),
        dog: count(Species::Dog),
        neither: count(Species::Neither),
        agreed,
        changed: 0,
        human_labels: state.human.len(),
    }
}

/// The next round: `k` photos without a human label, picked by the strategy.
fn plan_round(
    session: &Session,
    state: &State,
    after: &Proposals,
    opts: &LabelOptions,
) -> Option<Pending> {
    let l = &session.cfg.label;
    let k = opts.k.unwrap_or(l.k);
    let configured = Strategy::parse(&l.strategy).unwrap_or(Strategy::Uncertainty);
    let strategy = opts.strategy.unwrap_or(configured);
    let candidates: Vec<usize> = (0..session.photos.len())
        .filter(|&i| !state.human.contains_key(&session.photos[i].id))
        .collect();
    if candidates.is_empty() || k == 0 {
        return None;
    }
    let round = state.rounds.last().map_or(1, |r| r.round + 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(l.seed.wrapping_add(round as u64));
    let pool = Pool {
        candidates: &candidates,
        p_dog: &after.p_dog,
        features: &session.features,
    };
    let picks = select::pick(strategy, &pool, k, l.diverse_pool, &mut rng);
    Some(Pending {
        round,
        strategy,
        ids: picks
            .iter()
            .map(|&i| session.photos[i].id.clone())
            .collect(),
        proposed: picks.iter().map(|&i| after.species[i]).collect(),
    })
}

/// Writes the round's answer file and photo grid; returns (round, ids, file, grid).
fn write_round(
    session: &Session,
    out: &Path,
    pending: &Pending,
    after: &Proposals,
) -> Result<(usize, Vec<String>, PathBuf, PathBuf)> {
    let rows: Vec<usize> = pending.ids.iter().map(|id| session.index[id]).collect();
    let lines: Vec<RoundLine> = rows
        .iter()
        .map(|&i| RoundLine {
            id: session.photos[i].id.clone(),
            species: String::new(),
            breed: String::new(),
            proposed: after.species[i],
            p: after.p[i],
            path: shown_path(out, &session.photos[i].found.path),
        })
        .collect();
    let (file, grid) = (
        round_file(out, pending.round, "csv"),
        round_file(out, pending.round, "png"),
    );
    answers::write_round(&file, &lines)?;
    let figure = round_grid(out, pending.round, &lines, session.cfg.label.grid_cols)?;
    write_atomic(&grid, &figure.png()?)?;
    Ok((pending.round, pending.ids.clone(), file, grid))
}

/// The photos of a round with their ids and proposals, `cols` to a row.
fn round_grid(out: &Path, round: usize, lines: &[RoundLine], cols: usize) -> Result<Figure> {
    let items: Vec<(Photo, String)> = lines
        .iter()
        .map(|l| {
            let caption = format!("{}\nproposed {} {:.2}", l.id, l.proposed, l.p);
            (Photo::File(out.join(&l.path)), caption)
        })
        .collect();
    let title = format!("Round {round}: cat, dog or neither?");
    image_grid(&title, &items, cols)
}

/// The round of the labelling in `out` that waits for answers: its number, its file and
/// its photo grid (drawn again from the file); `None` when no round waits.
///
/// # Errors
/// `out` holds no labelling state, or the round file cannot be read.
pub fn waiting_round(cfg: &Config, out: &Path) -> Result<Option<(usize, PathBuf, Figure)>> {
    let path = out.join(STATE_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}: run `lab5 label DIR` first", path.display()))?;
    let state: State = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a lab5 labelling state", path.display()))?;
    let Some(p) = state.pending else {
        return Ok(None);
    };
    let file = round_file(out, p.round, "csv");
    let lines: Vec<RoundLine> = csv_io::read_rows(&file)?;
    let grid = round_grid(out, p.round, &lines, cfg.label.grid_cols)?;
    Ok(Some((p.round, file, grid)))
}

/// `labels.csv`, `rounds.csv`, then `state.json` (the commit point), each atomically.
fn write_outputs(out: &Path, rows: &[LabelRow], state: &State) -> Result<()> {
    csv_io::write_rows(&out.join(LABELS_FILE), rows)?;
    csv_io::write_rows(&out.join(ROUNDS_FILE), &state.rounds)?;
    let json = serde_json::to_vec_pretty(state)?;
    write_atomic(&out.join(STATE_FILE), &json)
}

/// Reads `labels.csv` (as written by [`label_folder`]).
///
/// # Errors
/// The file cannot be read or a line does not parse (file, line and column named).
pub fn read_labels(path: &Path) -> Result<Vec<LabelRow>> {
    csv_io::read_rows(path)
}

impl std::fmt::Display for LabelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "label {}: {} photos", self.dir.display(), self.photos)?;
        if !self.unreadable.is_empty() {
            let n = self.unreadable.len();
            writeln!(f, "  {n} photo file(s) could not be read (skipped):")?;
            writeln!(f, "{}", unreadable_lines(&self.unreadable))?;
        }
        if !self.other_files.is_empty() {
            let n = self.other_files.len();
            let first: Vec<&str> = self
                .other_files
                .iter()
                .take(5)
                .map(String::as_str)
                .collect();
            writeln!(f, "  {n} other file(s), not photos: {}", first.join(", "))?;
        }
        for id in &self.dropped {
            writeln!(
                f,
                "  the photo {id} changed since it was labelled: its human label was dropped"
            )?;
        }
        if let Some(r) = &self.answered {
            writeln!(f, "  round {} answered: {} answers ({} cat, {} dog, {} neither); {} of {} agreed with the proposal; {} other proposal(s) changed", r.round, r.answered, r.cat, r.dog, r.neither, r.agreed, r.asked, r.changed)?;
        }
        self.fmt_counts(f)?;
        self.fmt_next(f)
    }
}

impl LabelReport {
    fn fmt_counts(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|((p, s), n)| format!("{n} {s} ({})", p.name()))
            .collect();
        writeln!(
            f,
            "  human labels {}; labels.csv: {}",
            self.human,
            parts.join(", ")
        )
    }

    fn fmt_next(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let out = self.out.display();
        // The command to run again, with the output folder when it is not the labelled one.
        let again = match self.out == self.dir {
            true => format!("lab5 label {}", self.dir.display()),
            false => format!("lab5 label {} --out {out}", self.dir.display()),
        };
        if let Some(file) = &self.waiting {
            writeln!(f, "  the round in {} is waiting for answers: write cat, dog or neither in its species column, then run `{again}` again (nothing changed)", file.display())?;
        }
        if let Some((round, ids, file, grid)) = &self.new_round {
            writeln!(f, "  round {round}: {} photos to label in {} (species: cat, dog or neither; the photos with their ids: {}), then run `{again}` again", ids.len(), file.display(), grid.display())?;
        } else if self.waiting.is_none() {
            writeln!(f, "  every photo has a human label")?;
        }
        writeln!(
            f,
            "  wrote {} (import it with `lab5 import {out}`)",
            self.labels_file.display()
        )
    }
}

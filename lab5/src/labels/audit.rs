//! The automatic label check, with EfficientNet-Lite0 (numbers from the shared
//! [backbone pass](super::features)): its ImageNet head, zero-shot, on every image of the
//! manifest, corroborated by the labels of each image's nearest neighbours in the
//! backbone's feature space.
//!
//! Each image gets `p_cat` (ImageNet classes 281-285), `p_dog` (151-268), `p_neither`
//! (the rest), the share of its `audit.neighbours` nearest images (cosine similarity of
//! the 1280-d features) that carry the other label, and one verdict:
//! - `neither`: `p_neither >= audit.neither_threshold` — the head sees no domestic cat or
//!   dog breed at all (on the pets photos: dholes, dingoes, African wild dogs, a chicken
//!   yard; and a few black cats in the dark);
//! - `suspected-mislabel`: the head favours the other class by more than
//!   `audit.min_margin` AND at least `audit.min_neighbour_share` of the neighbours carry
//!   the other label: two independent views of the pretrained network agree;
//! - `agrees`: the head's class (`p_cat > p_dog`) is the label;
//! - `unsure`: the head disagrees, but the neighbours do not back it (not flagged).
//!
//! Why two views: zero-shot agreement on the pets photos is ~94 % and almost every
//! disagreement is the head's error (black or tortoiseshell cats called dogs), so the
//! head alone flags correct photos by the dozen (34 at a 0.5 margin). Neighbours alone
//! flag dogs of rare breeds the head is sure about. Requiring both, a label swapped on
//! purpose is still caught ~90 % of the time while only ~2 correct photos out of 2,100
//! are flagged. `lab5 audit --apply` marks flagged images `excluded` in the manifest
//! (training skips them); `--undo` clears those exclusions. Nothing is ever deleted.

use super::features::{BackbonePass, ZeroShot};
use crate::config::{self, Config};
use crate::data::{Class, Exclusion, Manifest, Record};
use crate::plot::{image_grid, Figure, Photo};
use crate::util::csv_io;
use crate::util::knn::{self, Points};
use anyhow::{Context, Result};
use polars::prelude::{df, DataFrame};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// File name of the per-image table inside the data folder.
pub const CSV_FILE: &str = "audit.csv";

/// What the zero-shot check says about one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The label's class has the larger probability.
    Agrees,
    /// The head favours the other class but the neighbours do not back it (not flagged).
    Unsure,
    /// The head and the neighbours both point to the other class (flagged).
    SuspectedMislabel,
    /// Neither a domestic cat nor a dog, by the ImageNet head (flagged).
    Neither,
}

impl Verdict {
    /// `agrees`, `unsure`, `suspected-mislabel` or `neither`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Agrees => "agrees",
            Verdict::Unsure => "unsure",
            Verdict::SuspectedMislabel => "suspected-mislabel",
            Verdict::Neither => "neither",
        }
    }

    /// True for the verdicts a person should look at (and `--apply` excludes).
    pub fn is_flagged(self) -> bool {
        matches!(self, Verdict::SuspectedMislabel | Verdict::Neither)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The flagging rule (from `config.audit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// The head must favour the other class by more than this probability margin.
    pub min_margin: f64,
    /// Smallest share of neighbours with the other label for a suspected mislabel.
    pub min_neighbour_share: f64,
    /// Neighbours consulted per image.
    pub neighbours: usize,
    /// Smallest `p_neither` that flags an image as neither cat nor dog.
    pub neither_threshold: f64,
}

impl Rule {
    /// The rule of a config.
    pub(crate) fn from_config(a: &config::Audit) -> Self {
        Rule {
            min_margin: a.min_margin,
            min_neighbour_share: a.min_neighbour_share,
            neighbours: a.neighbours,
            neither_threshold: a.neither_threshold,
        }
    }

    /// The verdict for an image labelled `label` whose neighbours carry the other label
    /// in the share `neighbour_share`.
    pub fn verdict(&self, label: Class, z: ZeroShot, neighbour_share: f64) -> Verdict {
        let (p_label, p_other) = match label {
            Class::Cat => (z.p_cat, z.p_dog),
            Class::Dog => (z.p_dog, z.p_cat),
        };
        if z.p_neither >= self.neither_threshold {
            Verdict::Neither
        } else if p_label >= p_other {
            Verdict::Agrees
        } else if p_other - p_label > self.min_margin && neighbour_share >= self.min_neighbour_share
        {
            Verdict::SuspectedMislabel
        } else {
            Verdict::Unsure
        }
    }
}

/// For every row of `features` `(N, D)`, the share of its `k` nearest other rows (cosine
/// similarity, ties broken by index) whose label (`labels`, `(N,)` int64) differs from
/// its own; `(N,)` float64, 0 for a row without neighbours. The neighbours come from
/// [`knn::neighbours`] on the unit-length rows.
pub fn other_label_share(features: &Tensor, labels: &Tensor, k: usize) -> Result<Vec<f64>> {
    let labels = Vec::<i64>::try_from(labels)?;
    let rows = Vec::<Vec<f32>>::try_from(features.to_kind(Kind::Float))?;
    anyhow::ensure!(
        labels.len() == rows.len(),
        "{} labels for {} feature rows; give one label per row",
        labels.len(),
        rows.len()
    );
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let points = Points::from_vectors(&rows)?.unit();
    let share = |(i, near): (usize, Vec<(usize, f64)>)| {
        let other = near.iter().filter(|(j, _)| labels[*j] != labels[i]).count();
        if near.is_empty() {
            0.0
        } else {
            other as f64 / near.len() as f64
        }
    };
    Ok(knn::neighbours(&points, k)
        .into_iter()
        .enumerate()
        .map(share)
        .collect())
}

impl Rule {
    /// The rule in words, as `(name, description)` rows.
    pub(crate) fn describe(&self) -> Vec<(String, String)> {
        let share = 100.0 * self.min_neighbour_share;
        let (m, k) = (self.min_margin, self.neighbours);
        let mislabel = format!("head margin > {m}, >= {share:.0} % of {k} neighbours");
        let neither = format!("p_neither >= {}", self.neither_threshold);
        vec![
            ("mislabel rule".into(), mislabel),
            ("neither rule".into(), neither),
        ]
    }
}

/// The zero-shot rule's class: cat when `p_cat > p_dog`.
pub(crate) fn zero_shot_class(z: ZeroShot) -> Class {
    if z.p_cat > z.p_dog {
        Class::Cat
    } else {
        Class::Dog
    }
}

/// One image of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Manifest id.
    pub id: String,
    /// Its label.
    pub label: Class,
    /// The image file (data folder joined with the manifest path).
    pub path: PathBuf,
    /// Zero-shot probabilities.
    pub zero_shot: ZeroShot,
    /// Share of its nearest neighbours (backbone features) labelled the other class.
    pub neighbour_share: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the manifest currently excludes it.
    pub excluded: bool,
}

impl AuditRow {
    /// True when the zero-shot class equals the label.
    pub fn agrees(&self) -> bool {
        zero_shot_class(self.zero_shot) == self.label
    }
}

/// The label check of a whole manifest.
#[derive(Debug, Clone)]
pub struct Audit {
    /// One row per manifest record, in manifest order.
    pub rows: Vec<AuditRow>,
    /// The rule the verdicts come from.
    pub rule: Rule,
}

impl Audit {
    /// Checks every record of `manifest` with the numbers of `pass`.
    pub fn new(cfg: &Config, manifest: &Manifest, pass: &BackbonePass) -> Result<Audit> {
        let rule = Rule::from_config(&cfg.audit);
        let records: Vec<&Record> = manifest.records.iter().collect();
        let labels: Vec<i64> = records.iter().map(|r| r.label.index()).collect();
        let features = pass.features_of(&records)?;
        let shares = other_label_share(&features, &Tensor::from_slice(&labels), rule.neighbours)?;
        let data_dir = cfg.data_dir();
        let row = |(r, share): (&&Record, f64)| -> Result<AuditRow> {
            let z = pass
                .zero_shot(r)
                .with_context(|| format!("image {} is missing from the backbone pass", r.id))?;
            let verdict = rule.verdict(r.label, z, share);
            let (id, label, excluded) = (r.id.clone(), r.label, r.is_excluded());
            Ok(AuditRow {
                id,
                label,
                path: data_dir.join(&r.path),
                zero_shot: z,
                neighbour_share: share,
                verdict,
                excluded,
            })
        };
        let rows = records.iter().zip(shares).map(row).collect::<Result<_>>()?;
        Ok(Audit { rows, rule })
    }

    /// Runs (or reuses) the backbone pass, then checks every record.
    pub fn run(cfg: &Config, manifest: &Manifest, device: tch::Device) -> Result<Audit> {
        let pass = super::features::load_or_compute(cfg, manifest, device)?;
        Audit::new(cfg, manifest, &pass)
    }

    /// The flagged rows, most confident first (mislabels by margin, then neither).
    pub fn flagged(&self) -> Vec<&AuditRow> {
        let mut v: Vec<&AuditRow> = self
            .rows
            .iter()
            .filter(|r| r.verdict.is_flagged())
            .collect();
        v.sort_by(|a, b| severity(b).total_cmp(&severity(a)));
        v
    }

    /// Image files of the flagged rows (most confident first), for a photo grid.
    pub fn flagged_paths(&self) -> Vec<PathBuf> {
        self.flagged().into_iter().map(|r| r.path.clone()).collect()
    }

    /// The counts.
    pub fn summary(&self) -> AuditSummary {
        let per_class = Class::ALL.map(|c| {
            let rows: Vec<&AuditRow> = self.rows.iter().filter(|r| r.label == c).collect();
            (c, rows.len(), rows.iter().filter(|r| r.agrees()).count())
        });
        let count = |v: Verdict| self.rows.iter().filter(|r| r.verdict == v).count();
        AuditSummary {
            images: self.rows.len(),
            per_class,
            suspected_mislabels: count(Verdict::SuspectedMislabel),
            neither: count(Verdict::Neither),
            unsure: count(Verdict::Unsure),
            excluded: self.rows.iter().filter(|r| r.excluded).count(),
            rule: self.rule,
        }
    }
}

/// How strongly a flagged row is flagged (for ordering).
fn severity(r: &AuditRow) -> f64 {
    let z = r.zero_shot;
    match r.verdict {
        Verdict::SuspectedMislabel => 1.0 + r.neighbour_share + (z.p_cat - z.p_dog).abs(),
        _ => z.p_neither,
    }
}

/// The counts of a label check.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSummary {
    /// Images checked.
    pub images: usize,
    /// Per class: (class, images, zero-shot agreements).
    pub per_class: [(Class, usize, usize); 2],
    /// Images flagged as suspected mislabels.
    pub suspected_mislabels: usize,
    /// Images flagged as neither cat nor dog.
    pub neither: usize,
    /// Disagreements below the margin (not flagged).
    pub unsure: usize,
    /// Images the manifest currently excludes.
    pub excluded: usize,
    /// The rule used.
    pub rule: Rule,
}

impl AuditSummary {
    /// Zero-shot agreements over all images.
    pub(crate) fn agreements(&self) -> usize {
        self.per_class.iter().map(|c| c.2).sum()
    }

    /// Share of images whose zero-shot class equals the label (0..=1).
    pub fn agreement_rate(&self) -> f64 {
        ratio(self.agreements(), self.images)
    }

    /// Flagged images (mislabels + neither).
    pub(crate) fn flagged(&self) -> usize {
        self.suspected_mislabels + self.neither
    }

    /// The summary as a table (`measure`, `value`).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let rows = self.rows();
        let df = df!(
            "measure" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            "value" => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        )?;
        Ok(df)
    }

    fn rows(&self) -> Vec<(String, String)> {
        let row = |k: &str, v: String| (k.to_string(), v);
        let mut rows = vec![row("images", self.images.to_string())];
        rows.push(row(
            "zero-shot agreement",
            pct(self.agreements(), self.images),
        ));
        for (c, n, agree) in self.per_class {
            rows.push((format!("agreement on {c}s"), pct(agree, n)));
        }
        rows.push(row(
            "suspected mislabels",
            self.suspected_mislabels.to_string(),
        ));
        rows.push(row("looks like neither", self.neither.to_string()));
        rows.push(row("flagged", pct(self.flagged(), self.images)));
        rows.push(row("unsure (not flagged)", self.unsure.to_string()));
        rows.push(row("excluded in manifest", self.excluded.to_string()));
        rows.extend(self.rule.describe());
        rows
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn pct(a: usize, b: usize) -> String {
    format!("{a} / {b} ({:.1} %)", 100.0 * ratio(a, b))
}

impl fmt::Display for AuditSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "label check (EfficientNet-Lite0 ImageNet head, zero-shot)"
        )?;
        for (k, v) in self.rows() {
            writeln!(f, "  {k:<22} {v}")?;
        }
        Ok(())
    }
}

impl Audit {
    /// Writes the per-image table atomically as CSV (the columns of [`AuditLine`]).
    pub fn save_csv(&self, path: &Path) -> Result<()> {
        let lines: Vec<AuditLine> = self.rows.iter().map(AuditLine::from).collect();
        csv_io::write_rows(path, &lines)
    }

    /// The flagged photos (at most `max`, most confident first) in a grid, captioned
    /// with label, zero-shot probabilities and verdict.
    pub fn flagged_grid(&self, max: usize, cols: usize) -> Result<Figure> {
        let items: Vec<(Photo, String)> = self
            .flagged()
            .into_iter()
            .take(max)
            .map(|r| (Photo::File(r.path.clone()), caption(r)))
            .collect();
        anyhow::ensure!(
            !items.is_empty(),
            "the label check flagged no image: nothing to show"
        );
        image_grid("Label check: flagged photos", &items, cols)
    }
}

fn caption(r: &AuditRow) -> String {
    let z = r.zero_shot;
    let verdict = match r.verdict {
        Verdict::SuspectedMislabel => "mislabel?",
        v => v.name(),
    };
    format!(
        "{verdict}, label {}\ncat {:.2} dog {:.2}\n{}",
        r.label, z.p_cat, z.p_dog, r.id
    )
}

/// One line of `audit.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditLine {
    /// Manifest id.
    pub id: String,
    /// Its label.
    pub label: Class,
    /// Zero-shot probability of a domestic cat (ImageNet classes 281-285).
    pub p_cat: f64,
    /// Zero-shot probability of a dog (ImageNet classes 151-268).
    pub p_dog: f64,
    /// Zero-shot probability of anything else.
    pub p_neither: f64,
    /// Share of its nearest neighbours labelled the other class.
    pub other_label_neighbours: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the manifest excluded it when the check ran.
    pub excluded: bool,
    /// The image file.
    pub path: String,
}

impl From<&AuditRow> for AuditLine {
    fn from(r: &AuditRow) -> Self {
        let z = r.zero_shot;
        AuditLine {
            id: r.id.clone(),
            label: r.label,
            p_cat: z.p_cat,
            p_dog: z.p_dog,
            p_neither: z.p_neither,
            other_label_neighbours: r.neighbour_share,
            verdict: r.verdict,
            excluded: r.excluded,
            path: r.path.to_string_lossy().into_owned(),
        }
    }
}

/// `<data_dir>/audit.csv`.
pub fn csv_path(cfg: &Config) -> PathBuf {
    cfg.data_dir().join(CSV_FILE)
}

/// Marks every flagged image as excluded; returns how many were newly excluded.
pub fn apply(manifest: &mut Manifest, audit: &Audit) -> usize {
    let flagged: std::collections::HashSet<&str> =
        audit.flagged().iter().map(|r| r.id.as_str()).collect();
    let mut changed = 0;
    for rec in manifest
        .records
        .iter_mut()
        .filter(|r| flagged.contains(r.id.as_str()))
    {
        changed += usize::from(!rec.is_excluded());
        rec.excluded = rec.excluded.or(Some(Exclusion::LabelCheck));
    }
    changed
}

/// Clears every exclusion made by [`apply`] (label conflicts stay excluded until they
/// are resolved, see [`crate::data::conflicts`]); returns how many were cleared.
pub fn undo(manifest: &mut Manifest) -> usize {
    let mut changed = 0;
    let by_check = |r: &&mut Record| r.excluded == Some(Exclusion::LabelCheck);
    for rec in manifest.records.iter_mut().filter(by_check) {
        rec.excluded = None;
        changed += 1;
    }
    changed
}

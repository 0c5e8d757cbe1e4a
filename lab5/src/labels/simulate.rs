//! How many human labels does the pretrained network save? `lab5 label --simulate`
//! labels the data set as if it had no labels: its labels are hidden, and the "person"
//! answering each round answers from them.
//!
//! For each of `label.simulation.seeds` repetitions, a pool of `pool_fraction` of the data
//! set's photos is drawn; for each strategy and each starting point (`prior`), rounds of
//! `label.k` photos are asked (the last round shortened so that every budget of
//! `label.simulation.budgets` is hit exactly) up to the largest budget, the classifier of
//! the labelling ([`super::classifier`], `C = label.c`) is refitted after every round, and
//! the accuracy of the labels against the hidden ones is recorded:
//!
//! - `accuracy`: of the whole pool as `labels.csv` would hold it (the human labels, which
//!   are right by construction, and the classifier's cat/dog proposal for the rest);
//! - `rest_accuracy`: of the proposals alone, on the photos without a human label;
//! - `fit_accuracy`: of the classifier on the photos it was trained on.
//!
//! The cat/dog proposal is `p(dog) >= 0.5` (the "neither" flag of `labels.csv` is not
//! counted: the data set has no such truth). The features are those of the label check's
//! backbone pass (`data/cache/backbone-*`), so after `lab5 audit` the simulation only
//! fits classifiers. The result goes to `runs/label-simulation/` (`simulation.json`,
//! `simulation.csv`, `accuracy.{svg,png}`) with a key of everything it depends on; a
//! current result is read back instead of computed again.

use super::classifier::{Design, LogisticRegression, Prior};
use super::features::{self, BackbonePass};
use super::select::{self, Pool, Strategy};
use crate::config::{Config, LabelSimulation};
use crate::data::images::sha256_hex;
use crate::data::{Class, Exclusion, Manifest, Record};
use crate::plot::{line_panels, Figure, Line};
use crate::util::csv_io;
use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

/// Folder of the results inside the runs folder.
pub const SIM_DIR: &str = "label-simulation";
/// The result with every curve.
pub const JSON_FILE: &str = "simulation.json";
/// The table (mean, sd, min, max over seeds per strategy, prior and budget).
pub const CSV_FILE: &str = "simulation.csv";
/// Stem of the chart (`.svg`, `.png`).
pub const CHART_STEM: &str = "accuracy";
/// Version of what the simulation computes (part of its key).
const SIM_VERSION: &str = "label-simulation-v1";
/// Lower edge of the chart's zoomed panel (accuracy, %).
const ZOOM_FROM: f64 = 90.0;

/// The accuracy after some human labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Human labels given.
    pub labels: usize,
    /// Accuracy of the whole pool's labels (human + proposed), 0..=1.
    pub accuracy: f64,
    /// Accuracy of the proposals on the photos without a human label.
    pub rest_accuracy: Option<f64>,
    /// Accuracy of the classifier on the photos it was trained on.
    pub fit_accuracy: Option<f64>,
}

/// One repetition of one strategy from one starting point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// How rounds pick photos.
    pub strategy: Strategy,
    /// Where the classifier starts.
    pub prior: Prior,
    /// The repetition's seed (pool and random picks).
    pub seed: u64,
    /// One point per round, from 0 labels.
    pub points: Vec<Point>,
}

/// The whole simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// SHA-256 of everything the result depends on (settings, data, backbone pass).
    pub key: String,
    /// Photos of the data set used (distinct contents).
    pub photos: usize,
    /// Photos of each repetition's pool.
    pub pool: usize,
    /// Photos per round.
    pub k: usize,
    /// Inverse L2 strength of the classifier.
    pub c: f64,
    /// The simulation's settings.
    pub settings: LabelSimulation,
    /// Zero-shot agreement on the whole data set (the label check's rule), 0..=1.
    pub zero_shot_all: f64,
    /// Every curve.
    pub curves: Vec<Curve>,
    /// Wall-clock seconds of the fits (the backbone pass not included).
    pub seconds: f64,
}

/// One line of `simulation.csv`: a strategy and prior after some labels, over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Strategy.
    pub strategy: Strategy,
    /// Starting point.
    pub prior: Prior,
    /// Human labels.
    pub labels: usize,
    /// Repetitions that reached this many labels.
    pub seeds: usize,
    /// Mean accuracy of the pool's labels (%).
    #[serde(serialize_with = "csv_io::fixed::<2, _>")]
    pub mean: f64,
    /// Standard deviation over the seeds (percentage points).
    #[serde(serialize_with = "csv_io::fixed::<2, _>")]
    pub sd: f64,
    /// Lowest accuracy over the seeds (%).
    #[serde(serialize_with = "csv_io::fixed::<2, _>")]
    pub min: f64,
    /// Highest (%).
    #[serde(serialize_with = "csv_io::fixed::<2, _>")]
    pub max: f64,
    /// Mean accuracy of the proposals on the unlabelled photos (%).
    #[serde(serialize_with = "csv_io::fixed::<2, _>")]
    pub rest_mean: f64,
}

/// `<runs_dir>/label-simulation`.
pub fn dir(cfg: &Config) -> PathBuf {
    cfg.runs_dir().join(SIM_DIR)
}

/// The data set as the simulation sees it: one record per distinct content, label
/// conflicts left out (their truth is unknown).
fn truth_records(manifest: &Manifest) -> Vec<&Record> {
    let mut seen = HashSet::new();
    manifest
        .records
        .iter()
        .filter(|r| r.excluded != Some(Exclusion::LabelConflict))
        .filter(|r| seen.insert(r.sha256.as_str()))
        .collect()
}

/// The simulation of the data set in `cfg`: read from `runs/label-simulation/` when it is
/// current (same settings, data and backbone) and not `force`, else computed (the backbone
/// pass reused from the label check's cache) and saved. Returns it and whether it was
/// read back.
///
/// # Errors
/// No data set, fewer than 2 photos of each class, or files that cannot be written.
pub fn run(cfg: &Config, force: bool, device: Device) -> Result<(Simulation, bool)> {
    let manifest = Manifest::load_required(
        &cfg.data_dir(),
        "run `lab5 import` (or `lab5 collect`) first: the simulation labels the data set",
    )?;
    let key = key(cfg, &manifest)?;
    let path = dir(cfg).join(JSON_FILE);
    if !force {
        if let Some(saved) = load(&path).filter(|s| s.key == key) {
            return Ok((saved, true));
        }
    }
    let pass = features::load_or_compute(cfg, &manifest, device)?;
    let sim = simulate(cfg, &manifest, &pass, key)?;
    sim.save(&dir(cfg))?;
    Ok((sim, false))
}

/// The saved simulation at `path`, if it can be read.
pub fn load(path: &Path) -> Option<Simulation> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// SHA-256 of the settings, the data (contents and labels) and the backbone cache's name
/// (which carries the pass's own key).
fn key(cfg: &Config, manifest: &Manifest) -> Result<String> {
    let l = &cfg.label;
    let settings = serde_json::to_string(&(&l.simulation, l.k, l.c, l.seed, l.diverse_pool))?;
    let pass = features::pass_path(cfg)?;
    let mut text = format!("{SIM_VERSION}\n{settings}\n{}\n", pass.display());
    for r in truth_records(manifest) {
        text.push_str(&format!("{} {}\n", r.sha256, r.label));
    }
    Ok(sha256_hex(text.as_bytes()))
}

/// Runs every repetition, strategy and prior on the photos of `manifest` with the
/// numbers of `pass`.
///
/// # Errors
/// Fewer than 2 photos of a class, a photo missing from the pass, an unknown strategy or
/// prior name in the settings.
pub fn simulate(
    cfg: &Config,
    manifest: &Manifest,
    pass: &BackbonePass,
    key: String,
) -> Result<Simulation> {
    let started = Instant::now();
    let records = truth_records(manifest);
    for c in Class::ALL {
        let n = records.iter().filter(|r| r.label == c).count();
        anyhow::ensure!(
            n >= 2,
            "the data set has {n} {c} photo(s): the simulation needs at least 2 of each class"
        );
    }
    let data = Data::new(&records, pass)?;
    let s = &cfg.label.simulation;
    let pool = ((records.len() as f64 * s.pool_fraction).round() as usize).clamp(2, records.len());
    let (strategies, priors) = compared(s)?;
    let mut curves = Vec::new();
    for i in 0..s.seeds {
        let seed = cfg.label.seed.wrapping_add(i as u64);
        let rows = data.draw_pool(pool, seed);
        for &prior in &priors {
            let run = PoolRun::new(cfg, &data, &rows, prior)?;
            for &strategy in &strategies {
                curves.push(run.curve(strategy, seed)?);
            }
        }
    }
    Ok(Simulation {
        key,
        photos: records.len(),
        pool,
        k: cfg.label.k,
        c: cfg.label.c,
        settings: s.clone(),
        zero_shot_all: data.zero_shot_accuracy(),
        curves,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The strategies and priors of the settings.
fn compared(s: &LabelSimulation) -> Result<(Vec<Strategy>, Vec<Prior>)> {
    let strategies = s.strategies.iter().map(|x| Strategy::parse(x));
    let priors = s
        .priors
        .iter()
        .map(|p| Prior::parse(p).with_context(|| format!("prior {p:?} is not zero-shot or none")));
    Ok((
        strategies.collect::<Result<_>>()?,
        priors.collect::<Result<_>>()?,
    ))
}

/// The photos' numbers and hidden labels.
struct Data {
    features: Tensor,
    probs: Tensor,
    dog: Vec<bool>,
}

impl Data {
    fn new(records: &[&Record], pass: &BackbonePass) -> Result<Self> {
        let rows = records
            .iter()
            .map(|r| {
                pass.row(r)
                    .with_context(|| format!("photo {} is not in the backbone pass", r.id))
            })
            .collect::<Result<Vec<i64>>>()?;
        let rows = Tensor::from_slice(&rows);
        Ok(Data {
            features: pass.features.index_select(0, &rows),
            probs: pass.probs.index_select(0, &rows),
            dog: records.iter().map(|r| r.label == Class::Dog).collect(),
        })
    }

    /// `n` photos drawn with `seed`, both classes present.
    fn draw_pool(&self, n: usize, seed: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut all: Vec<usize> = (0..self.dog.len()).collect();
        loop {
            all.shuffle(&mut rng);
            let pool = &all[..n];
            let dogs = pool.iter().filter(|&&i| self.dog[i]).count();
            if dogs > 0 && dogs < n {
                return pool.to_vec();
            }
        }
    }

    /// The label check's zero-shot rule (`p_cat > p_dog` is a cat) on every photo.
    fn zero_shot_accuracy(&self) -> f64 {
        let p_cat = Vec::<f64>::try_from(self.probs.select(1, 0).to_kind(tch::Kind::Double))
            .unwrap_or_default();
        let p_dog = Vec::<f64>::try_from(self.probs.select(1, 1).to_kind(tch::Kind::Double))
            .unwrap_or_default();
        let right = (0..self.dog.len())
            .filter(|&i| (p_cat[i] <= p_dog[i]) == self.dog[i])
            .count();
        right as f64 / self.dog.len().max(1) as f64
    }
}

/// One pool and one prior: the design, fitted again after every round.
struct PoolRun<'a> {
    cfg: &'a Config,
    prior: Prior,
    design: Design,
    features: Tensor,
    dog: Vec<bool>,
}

impl<'a> PoolRun<'a> {
    fn new(cfg: &'a Config, data: &Data, rows: &[usize], prior: Prior) -> Result<Self> {
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let features = data.features.index_select(0, &index);
        let design = Design::new(&features, &data.probs.index_select(0, &index), prior)?;
        let dog = rows.iter().map(|&r| data.dog[r]).collect();
        Ok(PoolRun {
            cfg,
            prior,
            design,
            features,
            dog,
        })
    }

    /// Rounds of `strategy` until the largest budget (or the whole pool).
    fn curve(&self, strategy: Strategy, seed: u64) -> Result<Curve> {
        let l = &self.cfg.label;
        let n = self.dog.len();
        let last = l.simulation.budgets.last().copied().unwrap_or(0).min(n);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let (mut labelled, mut is_labelled) = (Vec::new(), vec![false; n]);
        let mut points = Vec::new();
        loop {
            let y: Vec<bool> = labelled.iter().map(|&i: &usize| self.dog[i]).collect();
            let rows: Vec<i64> = labelled.iter().map(|&i| i as i64).collect();
            let p_dog =
                LogisticRegression::fit(&self.design, &rows, &y, l.c)?.predict(&self.design);
            points.push(self.point(&p_dog, &is_labelled, labelled.len()));
            if labelled.len() >= last {
                break;
            }
            let step =
                next_step(labelled.len(), l.k, &l.simulation.budgets).min(last - labelled.len());
            let candidates: Vec<usize> = (0..n).filter(|&i| !is_labelled[i]).collect();
            let pool = Pool {
                candidates: &candidates,
                p_dog: &p_dog,
                features: &self.features,
            };
            for i in select::pick(strategy, &pool, step, l.diverse_pool, &mut rng) {
                is_labelled[i] = true;
                labelled.push(i);
            }
        }
        Ok(Curve {
            strategy,
            prior: self.prior,
            seed,
            points,
        })
    }

    fn point(&self, p_dog: &[f64], is_labelled: &[bool], labels: usize) -> Point {
        let right = |i: usize| (p_dog[i] >= 0.5) == self.dog[i];
        let share = |rows: Vec<usize>| {
            let n = rows.len();
            (n > 0).then(|| rows.into_iter().filter(|&i| right(i)).count() as f64 / n as f64)
        };
        let n = self.dog.len();
        let rest: Vec<usize> = (0..n).filter(|&i| !is_labelled[i]).collect();
        let fit: Vec<usize> = (0..n).filter(|&i| is_labelled[i]).collect();
        let rest_right = rest.iter().filter(|&&i| right(i)).count();
        Point {
            labels,
            accuracy: (labels + rest_right) as f64 / n as f64,
            rest_accuracy: share(rest),
            fit_accuracy: share(fit),
        }
    }
}

/// Photos of the next round: `k`, or fewer to land exactly on the next budget.
fn next_step(labelled: usize, k: usize, budgets: &[usize]) -> usize {
    let to_budget = budgets
        .iter()
        .find(|&&b| b > labelled)
        .map(|b| b - labelled);
    to_budget.map_or(k, |d| d.min(k)).max(1)
}

/// Mean, standard deviation, min and max of `v` (in the same unit).
fn stats(v: &[f64]) -> (f64, f64, f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

impl Simulation {
    /// The (strategy, prior) pairs in the order of the settings.
    pub fn variants(&self) -> Vec<(Strategy, Prior)> {
        let mut out: Vec<(Strategy, Prior)> = Vec::new();
        for c in &self.curves {
            if !out.contains(&(c.strategy, c.prior)) {
                out.push((c.strategy, c.prior));
            }
        }
        out
    }

    /// The points of every seed of one variant at `labels` human labels.
    fn points_at(&self, v: (Strategy, Prior), labels: usize) -> Vec<&Point> {
        self.curves
            .iter()
            .filter(|c| (c.strategy, c.prior) == v)
            .filter_map(|c| c.points.iter().find(|p| p.labels == labels))
            .collect()
    }

    /// Every number of labels some curve of `v` has, in order.
    fn label_counts(&self, v: (Strategy, Prior)) -> Vec<usize> {
        let mut all: Vec<usize> = self
            .curves
            .iter()
            .filter(|c| (c.strategy, c.prior) == v)
            .flat_map(|c| c.points.iter().map(|p| p.labels))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The summary of `v` at `labels` (accuracies in %), `None` when no seed got there.
    pub fn row(&self, v: (Strategy, Prior), labels: usize) -> Option<SummaryRow> {
        let points = self.points_at(v, labels);
        if points.is_empty() {
            return None;
        }
        let acc: Vec<f64> = points.iter().map(|p| 100.0 * p.accuracy).collect();
        let rest: Vec<f64> = points
            .iter()
            .filter_map(|p| p.rest_accuracy)
            .map(|a| 100.0 * a)
            .collect();
        let (mean, sd, min, max) = stats(&acc);
        Some(SummaryRow {
            strategy: v.0,
            prior: v.1,
            labels,
            seeds: points.len(),
            mean,
            sd,
            min,
            max,
            rest_mean: if rest.is_empty() {
                f64::NAN
            } else {
                stats(&rest).0
            },
        })
    }

    /// The table: every variant at every budget it reached.
    pub fn summary(&self) -> Vec<SummaryRow> {
        let budgets = &self.settings.budgets;
        self.variants()
            .into_iter()
            .flat_map(|v| budgets.iter().filter_map(move |&b| self.row(v, b)))
            .collect()
    }

    /// Mean accuracy of the zero-shot rule on the pools (the zero-shot prior at 0
    /// labels), 0..=1; `None` when that prior was not simulated.
    pub fn zero_shot_accuracy(&self) -> Option<f64> {
        let v = self
            .variants()
            .into_iter()
            .find(|v| v.1 == Prior::ZeroShot)?;
        Some(self.row(v, 0)?.mean / 100.0)
    }

    /// The fewest human labels (any round, not only the budgets) with which the mean
    /// accuracy of `v` over the seeds reaches `target` (0..=1).
    pub fn labels_to_reach(&self, v: (Strategy, Prior), target: f64) -> Option<usize> {
        self.label_counts(v).into_iter().find(|&n| {
            self.row(v, n)
                .is_some_and(|r| r.mean >= 100.0 * target - 1e-9)
        })
    }

    /// Writes `simulation.json`, `simulation.csv` and the chart into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::util::write_atomic(&dir.join(JSON_FILE), &serde_json::to_vec_pretty(self)?)?;
        csv_io::write_rows(&dir.join(CSV_FILE), &self.summary())?;
        self.chart()?.save(&dir.join(CHART_STEM))?;
        Ok(())
    }

    /// Mean accuracy against human labels, one line per strategy and prior, with the
    /// zero-shot accuracy and the target as dashed guides; the right panel zooms in above
    /// 90 %.
    pub fn chart(&self) -> Result<Figure> {
        let lines = self.mean_lines();
        let max_x = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(0.0, f64::max);
        let guides = self.guides(max_x);
        let zoom = |l: &Line| {
            Line::new(
                &l.name,
                l.points
                    .iter()
                    .map(|&(x, y)| (x, if y >= ZOOM_FROM { y } else { f64::NAN }))
                    .collect(),
            )
        };
        let panels = vec![
            ("all".to_string(), lines.clone(), guides.clone()),
            (
                format!("above {ZOOM_FROM:.0} %"),
                lines.iter().map(zoom).collect(),
                guides,
            ),
        ];
        let title = format!("Labelling the data set: accuracy of the labels vs human labels (mean of {} seeds, pools of {} photos)", self.settings.seeds, self.pool);
        line_panels(
            &title,
            ("human labels", "accuracy of the labels (%)"),
            panels,
        )
    }

    /// Mean accuracy (%) against human labels, one line per variant.
    fn mean_lines(&self) -> Vec<Line> {
        let line = |v: (Strategy, Prior)| {
            let pts = self
                .label_counts(v)
                .into_iter()
                .filter_map(|n| self.row(v, n))
                .map(|r| (r.labels as f64, r.mean))
                .collect();
            Line::new(&format!("{}, start {}", v.0.name(), v.1.name()), pts)
        };
        self.variants().into_iter().map(line).collect()
    }

    /// The target and the zero-shot accuracy as levels from 0 to `max_x` labels.
    fn guides(&self, max_x: f64) -> Vec<Line> {
        let level = |name: String, y: f64| Line::new(&name, vec![(0.0, y), (max_x, y)]);
        let target = 100.0 * self.settings.target_accuracy;
        let mut guides = vec![level(format!("target {target:.0} %"), target)];
        if let Some(z) = self.zero_shot_accuracy() {
            guides.push(level(format!("zero-shot {:.1} %", 100.0 * z), 100.0 * z));
        }
        guides
    }

    /// The two answers in words: how many human labels reach the zero-shot rule's
    /// accuracy without the head, and how many reach the target, per variant.
    pub fn answers(&self) -> Vec<String> {
        let target = self.settings.target_accuracy;
        let last = self
            .settings
            .budgets
            .last()
            .copied()
            .unwrap_or(0)
            .min(self.pool);
        let reach = |v, t| match self.labels_to_reach(v, t) {
            Some(n) => format!("{n}"),
            None => format!("not within {last}"),
        };
        let mut out = Vec::new();
        if let Some(z) = self.zero_shot_accuracy() {
            out.push(format!(
                "zero-shot rule (0 human labels): {:.1} % on the pools ({:.1} % on all {} photos)",
                100.0 * z,
                100.0 * self.zero_shot_all,
                self.photos
            ));
            let without_head = self.variants().into_iter().filter(|v| v.1 == Prior::None);
            out.extend(without_head.map(|v| {
                let n = reach(v, z);
                format!(
                    "human labels to reach the zero-shot accuracy without the head ({}): {n}",
                    v.0.name()
                )
            }));
        }
        for v in self.variants() {
            out.push(format!(
                "human labels to reach {:.0} % ({}, start {}): {}",
                100.0 * target,
                v.0.name(),
                v.1.name(),
                reach(v, target)
            ));
        }
        out
    }

    /// The table as Markdown (accuracy of the labels, mean ± sd over the seeds, %).
    pub fn to_markdown(&self) -> String {
        let budgets = &self.settings.budgets;
        let mut md = String::from("| strategy | start |");
        for b in budgets {
            md.push_str(&format!(" {b} |"));
        }
        md.push_str("\n|---|---|");
        md.push_str(&"---|".repeat(budgets.len()));
        for v in self.variants() {
            md.push_str(&format!("\n| {} | {} |", v.0.name(), v.1.name()));
            for &b in budgets {
                let cell = self
                    .row(v, b)
                    .map_or("–".into(), |r| format!("{:.1} ± {:.1}", r.mean, r.sd));
                md.push_str(&format!(" {cell} |"));
            }
        }
        md.push('\n');
        md
    }
}

impl std::fmt::Display for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "label simulation: {} photos, {} seeds, pools of {}, rounds of {}, C = {} ({:.1} s of fits)", self.photos, self.settings.seeds, self.pool, self.k, self.c, self.seconds)?;
        writeln!(
            f,
            "accuracy of the labels (%, mean ± sd over the seeds) after N human labels:"
        )?;
        write!(f, "{}", self.to_markdown())?;
        for a in self.answers() {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}

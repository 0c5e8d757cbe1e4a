//! The degradation problem, tried on the lab's photos: a shallow and a deep stack, plain and
//! residual, all with batch norm and He initialisation (so no gradient vanishes at the
//! start), trained on the same small batch of real photos with SGD and momentum (the ResNet
//! paper's optimiser) for a fixed number of steps, once per seed of [`SEEDS`].
//!
//! He et al. 2016 (§4.1, Fig. 4) saw a 34-layer plain net reach a *higher training error*
//! than an 18-layer one on ImageNet, and on CIFAR-10 (§4.2, Fig. 1 and 6) a 56-layer plain
//! net above a 20-layer one; the residual versions reverse that. Whether (and how much of)
//! that appears at this scale is what the table measures: per stack the mean ± standard
//! deviation over the seeds, and for each deep stack how its final loss compares with the
//! shallow stack of its kind. One training of a single seed decides nothing here: the
//! final loss of a deep stack varies by orders of magnitude from seed to seed.
//!
//! The result is saved in `runs/theory/degradation.json` (with the settings and a SHA-256
//! of the photo batch it was computed from) and read back by the next call that asks for
//! the same experiment: the table and the chart cells then show one training, and a notebook
//! run after the first costs nothing. Delete the file to train again.

use super::photo;
use super::resnet::{network, redraw, rng, Init, Stack, Threads, Variant};
use crate::plot::{self, Figure, Line, Table};
use crate::Config;
use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Photos per class in the training batch.
pub(crate) const PHOTOS_PER_CLASS: usize = 24;
/// Side the photos are shrunk to.
pub(crate) const SIDE: i64 = 24;
/// Convolutions in the body of the shallow and the deep stacks.
pub const DEPTHS: [usize; 2] = [4, 32];
/// Full-batch SGD steps.
pub const STEPS: usize = 150;
/// Learning rate and momentum of SGD.
const LR: f64 = 0.05;
const MOMENTUM: f64 = 0.9;
/// Seeds of the initialisation: every stack is trained once per seed.
pub const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
/// Where the result is kept, under `paths.runs_dir`.
const SAVED: &str = "theory/degradation.json";

/// One stack trained from one seed: its training loss after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Plain or residual.
    pub residual: bool,
    /// Convolutions in the body.
    pub depth: usize,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Training loss before the first step and after each step (`STEPS + 1` values).
    pub loss: Vec<f64>,
    /// Training accuracy after the last step (0..1).
    pub accuracy: f64,
}

impl Curve {
    /// The loss after the last step.
    pub fn final_loss(&self) -> f64 {
        self.loss.last().copied().unwrap_or(f64::NAN)
    }
}

/// What the experiment was computed from; a saved result is reused only when it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    photos_per_class: usize,
    side: i64,
    depths: Vec<usize>,
    steps: usize,
    lr: f64,
    momentum: f64,
    seeds: Vec<u64>,
    /// SHA-256 of the batch's float values and labels.
    batch: String,
}

/// Every stack trained from every seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    settings: Settings,
    /// One curve per (stack, seed): plain before residual, shallow before deep, seeds in order.
    pub curves: Vec<Curve>,
}

/// The stacks in table order: (residual, depth).
fn stacks() -> Vec<(bool, usize)> {
    [false, true]
        .into_iter()
        .flat_map(|r| DEPTHS.map(|d| (r, d)))
        .collect()
}

/// `plain, 32 convs`.
fn stack_name(residual: bool, depth: usize) -> String {
    let kind = if residual { "residual" } else { "plain" };
    format!("{kind}, {depth} convs")
}

fn variant(residual: bool) -> Variant {
    let (name, stack) = match residual {
        false => ("plain", Stack::Plain),
        true => ("residual", Stack::Residual),
    };
    Variant {
        name,
        stack,
        batch_norm: true,
        init: Init::He,
    }
}

/// Trains one stack from `seed` on `(x, y)` and records its loss, on one thread (tiny
/// convolutions run faster without thread hand-offs; the thread count is held for this one
/// training only, so other measurements of the process can take turns in between).
fn train(x: &Tensor, y: &Tensor, (residual, depth): (bool, usize), seed: u64) -> Result<Curve> {
    let _one = Threads::set(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let v = variant(residual);
    let net = network(&vs.root(), v, depth);
    redraw(&vs, v.init, &mut rng(seed));
    let mut opt = nn::Sgd {
        momentum: MOMENTUM,
        ..Default::default()
    }
    .build(&vs, LR)?;
    let mut loss = Vec::with_capacity(STEPS + 1);
    for _ in 0..STEPS {
        let l = net.forward_t(x, true).cross_entropy_for_logits(y);
        loss.push(super::scalar(&l)?);
        opt.backward_step(&l);
    }
    let logits = net.forward_t(x, true);
    loss.push(super::scalar(&logits.cross_entropy_for_logits(y))?);
    let accuracy = super::scalar(&logits.accuracy_for_logits(y))?;
    Ok(Curve {
        residual,
        depth,
        seed,
        loss,
        accuracy,
    })
}

/// The training batch: [`PHOTOS_PER_CLASS`] cats and dogs of `data.folder`, loaded at
/// [`photo::EXPERIMENT_PHOTOS`] whatever the configured input size, shrunk to
/// [`SIDE`] px, `(N, 3, SIDE, SIDE)` floats and `(N,)` labels.
fn training_batch(cfg: &Config) -> Result<(Tensor, Tensor)> {
    let (images, labels) = photo::batch_sized(cfg, PHOTOS_PER_CLASS, photo::EXPERIMENT_PHOTOS)?;
    let x = images
        .adaptive_avg_pool2d([SIDE, SIDE])
        .to_kind(Kind::Float);
    Ok((x, labels))
}

impl Settings {
    /// The constants of this module and the fingerprint of the batch `(x, y)`.
    fn of(x: &Tensor, y: &Tensor) -> Result<Settings> {
        let mut hash = Sha256::new();
        for v in super::values(x)?.into_iter().chain(super::values(y)?) {
            hash.update(v.to_le_bytes());
        }
        Ok(Settings {
            photos_per_class: PHOTOS_PER_CLASS,
            side: SIDE,
            depths: DEPTHS.to_vec(),
            steps: STEPS,
            lr: LR,
            momentum: MOMENTUM,
            seeds: SEEDS.to_vec(),
            batch: hex::encode(hash.finalize()),
        })
    }
}

/// Trains every stack of [`DEPTHS`], plain and residual, from every seed of [`SEEDS`] on
/// `(x, y)`. Training-mode forward passes throughout: the question is how well each stack
/// *fits* the batch (training error), not how it generalises.
fn train_all(x: &Tensor, y: &Tensor) -> Result<Degradation> {
    let mut curves = Vec::new();
    for stack in stacks() {
        for seed in SEEDS {
            curves.push(train(x, y, stack, seed)?);
        }
    }
    Ok(Degradation {
        settings: Settings::of(x, y)?,
        curves,
    })
}

/// The saved result at `path` when it was computed with `settings`; `None` when there is
/// none, it cannot be read, or it belongs to other settings.
fn saved(path: &Path, settings: &Settings) -> Option<Degradation> {
    let text = std::fs::read_to_string(path).ok()?;
    let d: Degradation = serde_json::from_str(&text).ok()?;
    (d.settings == *settings).then_some(d)
}

/// Where [`degradation`] keeps its result.
pub fn saved_path(cfg: &Config) -> PathBuf {
    cfg.runs_dir().join(SAVED)
}

/// The experiment on the photos of `data.folder`: read from [`saved_path`] when it holds
/// this experiment on this batch, trained (about 20 trainings of at most 32 layers, a few
/// minutes on two cores) and saved there otherwise.
pub fn degradation(cfg: &Config) -> Result<Degradation> {
    let (x, y) = training_batch(cfg)?;
    let path = saved_path(cfg);
    if let Some(d) = saved(&path, &Settings::of(&x, &y)?) {
        return Ok(d);
    }
    let d = train_all(&x, &y)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::util::write_atomic(&path, serde_json::to_string(&d)?.as_bytes())
        .with_context(|| format!("saving {}", path.display()))?;
    Ok(d)
}

/// [`degradation`] as a table, for a notebook cell of its own (a cell shows one output).
pub fn table(cfg: &Config) -> Result<Table> {
    degradation(cfg)?.table()
}

/// [`degradation`] as a chart, for a notebook cell of its own; it reads the result the table
/// cell saved (or trains, when this cell runs first).
pub fn chart(cfg: &Config) -> Result<Figure> {
    degradation(cfg)?.figure()
}

/// Mean and sample standard deviation (`n - 1`); sd is 0 for one value.
pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
    (mean, (ss / (n - 1.0).max(1.0)).sqrt())
}

/// One stack over all seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSummary {
    /// e.g. `plain, 32 convs`.
    pub name: String,
    /// Plain or residual.
    pub residual: bool,
    /// Convolutions in the body.
    pub depth: usize,
    /// Loss at the start, one value per seed.
    pub start: Vec<f64>,
    /// Loss after a third of the steps, per seed.
    pub third: Vec<f64>,
    /// Loss at the end, per seed.
    pub end: Vec<f64>,
    /// Training accuracy at the end, per seed.
    pub accuracy: Vec<f64>,
}

impl StackSummary {
    /// log10 of the final loss, per seed.
    pub fn log_end(&self) -> Vec<f64> {
        self.end.iter().map(|l| l.max(1e-12).log10()).collect()
    }

    /// Seeds that classify every photo of the batch right at the end.
    pub fn fitted(&self) -> usize {
        self.accuracy.iter().filter(|&&a| a >= 1.0).count()
    }
}

/// A deep stack against the shallow stack of its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Versus {
    /// Seeds in which the deep stack ends with the higher training loss.
    pub higher: usize,
    /// mean log10 final loss, deep minus shallow.
    pub difference: f64,
    /// Its standard error, `sqrt(sd_deep² / n + sd_shallow² / n)`.
    pub standard_error: f64,
}

impl Degradation {
    /// The curves of one stack, one per seed.
    fn curves_of(&self, residual: bool, depth: usize) -> Vec<&Curve> {
        self.curves
            .iter()
            .filter(|c| c.residual == residual && c.depth == depth)
            .collect()
    }

    /// Per stack, the values of all seeds.
    pub fn summaries(&self) -> Vec<StackSummary> {
        stacks()
            .into_iter()
            .map(|(residual, depth)| {
                let cs = self.curves_of(residual, depth);
                let at = |i: usize| cs.iter().map(|c| c.loss[i]).collect();
                StackSummary {
                    name: stack_name(residual, depth),
                    residual,
                    depth,
                    start: at(0),
                    third: at(STEPS / 3),
                    end: cs.iter().map(|c| c.final_loss()).collect(),
                    accuracy: cs.iter().map(|c| c.accuracy).collect(),
                }
            })
            .collect()
    }

    /// The deepest stack of a kind against the shallowest of the same kind (same seeds).
    pub fn versus(&self, residual: bool) -> Option<Versus> {
        let s = self.summaries();
        let kind: Vec<&StackSummary> = s.iter().filter(|s| s.residual == residual).collect();
        let (shallow, deep) = (kind.first()?, kind.last()?);
        let higher = deep
            .end
            .iter()
            .zip(&shallow.end)
            .filter(|(d, s)| d > s)
            .count();
        let ((md, sd), (ms, ss)) = (mean_sd(&deep.log_end()), mean_sd(&shallow.log_end()));
        let n = deep.end.len() as f64;
        Some(Versus {
            higher,
            difference: md - ms,
            standard_error: (sd * sd / n + ss * ss / n).sqrt(),
        })
    }

    /// The geometric mean over the seeds of each stack's loss per step, one line per stack.
    pub fn figure(&self) -> Result<Figure> {
        let lines: Vec<Line> = stacks()
            .into_iter()
            .map(|(residual, depth)| {
                let cs = self.curves_of(residual, depth);
                let points = (0..=STEPS)
                    .map(|i| {
                        let logs: Vec<f64> =
                            cs.iter().map(|c| c.loss[i].max(1e-12).log10()).collect();
                        (i as f64, mean_sd(&logs).0)
                    })
                    .collect();
                Line::new(&stack_name(residual, depth), points)
            })
            .collect();
        plot::line_chart(
            &format!(
                "Training loss, plain and residual stacks (BN, He init): mean of log10 over {} seeds",
                SEEDS.len()
            ),
            "SGD step (full batch)",
            "log10 training loss",
            &lines,
        )
    }
}

/// `mean ± sd` with 4 decimals.
fn pm(v: &[f64]) -> String {
    let (m, s) = mean_sd(v);
    format!("{m:.4} ± {s:.4}")
}

/// `min – max` in scientific notation.
fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.1e} – {hi:.1e}")
}

impl Degradation {
    /// The deep stack of each kind against its shallow one, as text for the table.
    fn versus_column(&self, s: &StackSummary) -> String {
        if s.depth == DEPTHS[0] {
            return "—".into();
        }
        match self.versus(s.residual) {
            Some(v) => format!(
                "higher in {} of {} seeds; Δ log10 loss {:+.2} ± {:.2} (s.e.)",
                v.higher,
                s.end.len(),
                v.difference,
                v.standard_error
            ),
            None => "—".into(),
        }
    }

    /// Per stack over the seeds: loss at the start, after a third of the steps and at the
    /// end (mean ± sd, and the range of the final loss), log10 of the final loss (mean ±
    /// sd), final training accuracy, the seeds that fit the whole batch, and for a deep
    /// stack the comparison with the shallow stack of its kind.
    pub fn table(&self) -> Result<Table> {
        let s = self.summaries();
        let col = |f: &dyn Fn(&StackSummary) -> String| s.iter().map(f).collect::<Vec<_>>();
        let n = SEEDS.len();
        let df = df!(
            "stack" => col(&|s| s.name.clone()),
            "loss at step 0" => col(&|s| pm(&s.start)),
            format!("loss at step {}", STEPS / 3).as_str() => col(&|s| pm(&s.third)),
            format!("loss at step {STEPS}").as_str() => col(&|s| pm(&s.end)),
            format!("loss at step {STEPS}, lowest – highest seed").as_str() => col(&|s| range(&s.end)),
            format!("log10 loss at step {STEPS}").as_str() => col(&|s| {
                let (m, sd) = mean_sd(&s.log_end());
                format!("{m:.2} ± {sd:.2}")
            }),
            "training accuracy at the end" => col(&|s| {
                let (m, sd) = mean_sd(&s.accuracy);
                format!("{m:.3} ± {sd:.3}")
            }),
            "seeds that fit all photos" => col(&|s| format!("{} of {n}", s.fitted())),
            "final loss vs the shallow stack of its kind" => col(&|s| self.versus_column(s)),
        )?;
        Ok(Table(df))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12 && (s - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(mean_sd(&[7.0]), (7.0, 0.0));
    }

    #[test]
    fn every_stack_trains_from_every_seed_and_the_result_is_saved() {
        let mut cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let runs = std::env::temp_dir().join(format!("lab5-degradation-{}", std::process::id()));
        cfg.paths.runs_dir = runs.clone();
        // The notebook's two cells: the table trains and saves, the chart reads it back.
        assert_eq!(table(&cfg).unwrap().0.height(), 4);
        let path = saved_path(&cfg);
        let d: Degradation =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(chart(&cfg).unwrap().svg().contains("residual, 32 convs"));
        assert_eq!(degradation(&cfg).unwrap(), d);
        let mut other = d.settings.clone();
        other.batch = "another batch".into();
        assert!(saved(&path, &other).is_none());
        assert!(saved(&path, &d.settings).is_some());
        std::fs::remove_dir_all(&runs).unwrap();

        assert_eq!(d.curves.len(), 4 * SEEDS.len());
        for c in &d.curves {
            assert_eq!(c.loss.len(), STEPS + 1);
            assert!(c.loss.iter().all(|l| l.is_finite()), "{c:?}");
        }
        // What the notebook's text says about the result.
        let s = d.summaries();
        let (plain4, plain32, res4, res32) = (&s[0], &s[1], &s[2], &s[3]);
        let sd = |x: &StackSummary| mean_sd(&x.log_end()).1;
        // The shallow stacks fit every photo from every seed, with similar final losses.
        for x in [plain4, res4] {
            assert_eq!(x.fitted(), SEEDS.len(), "{x:?}");
            assert!(sd(x) < 0.5, "{x:?}");
        }
        // The deep stacks are erratic: their final losses vary far more between seeds, and
        // in some seeds a deep stack does not fit all photos.
        for x in [plain32, res32] {
            assert!(sd(x) > 2.0 * sd(plain4).max(sd(res4)), "{x:?}");
        }
        assert!(plain32.fitted() + res32.fitted() < 2 * SEEDS.len(), "{s:?}");
        // Neither deep stack differs from its shallow one by twice the standard error.
        for residual in [false, true] {
            let v = d.versus(residual).unwrap();
            assert!(v.difference.abs() < 2.0 * v.standard_error, "{v:?}");
        }
        // The deep plain stack trains (its loss falls far below the start in every seed).
        assert!(
            plain32
                .end
                .iter()
                .zip(&plain32.start)
                .all(|(e, s)| *e < 0.2 * s),
            "{plain32:?}"
        );
        // The deep residual stack starts from a much larger loss (its blocks add variance).
        assert!(
            mean_sd(&res32.start).0 > 1.5 * mean_sd(&plain32.start).0,
            "{s:?}"
        );
    }
}

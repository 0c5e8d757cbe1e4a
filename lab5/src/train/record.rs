//! The record of a finished run, as files in `runs/<name>/`:
//! - `run.json`: the [`ModelSpec`] (kind, input size, normalisation, config snapshot), all
//!   that is needed to rebuild the network for evaluation, prediction and embeddings;
//! - `metrics.json`: config, per-epoch history, durations, final metrics on train, val and
//!   test, and the train-minus-test accuracy gap stated explicitly;
//! - `best.safetensors` / `last.safetensors`: weights of the best and of the last epoch;
//! - `predictions.csv`: `id, split, label, p_dog` for every image (charts, error analysis);
//! - `tb/`: TensorBoard events.

use super::metrics::Metrics;
use super::monitor::EpochStats;
use crate::config::Config;
use crate::data::{Class, SplitName};
use crate::models::ModelSpec;
use crate::util::{csv_io, write_atomic};
use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Model description file of a run.
pub(crate) const RUN_FILE: &str = "run.json";
/// Metrics file of a run.
pub const METRICS_FILE: &str = "metrics.json";
/// Weights of the epoch with the best validation loss.
pub const BEST_WEIGHTS: &str = "best.safetensors";
/// Weights after the last epoch.
pub(crate) const LAST_WEIGHTS: &str = "last.safetensors";
/// Per-image probabilities of the final (best) model.
pub(crate) const PREDICTIONS_FILE: &str = "predictions.csv";
/// Evaluations on other folders (`lab5 evaluate`).
pub(crate) const EVALUATIONS_DIR: &str = "evaluations";

/// One image's prediction by the best weights: one line of `predictions.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Manifest id.
    pub id: String,
    /// Its split.
    pub split: SplitName,
    /// True class.
    pub label: Class,
    /// Predicted probability of dog (written with six decimals).
    #[serde(serialize_with = "csv_io::fixed::<6, _>")]
    pub p_dog: f64,
}

/// How long each part took, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Loading or building the preprocessing cache (or the feature cache).
    pub preprocess_secs: f64,
    /// The training loop.
    pub train_secs: f64,
    /// From the start of training to the end of the best epoch.
    pub to_best_secs: f64,
    /// Final scoring of train, val and test and writing the files.
    pub eval_secs: f64,
    /// Everything, from preprocessing to the finished run folder.
    pub total_secs: f64,
    /// Seconds the data costs from the raw photos with nothing cached: the recorded time
    /// of the preprocessing cache's build, or of the backbone pass over every photo the
    /// features come from, whether this run or an earlier command did that work. `None` in
    /// runs recorded before lab5 counted it.
    #[serde(default)]
    pub cold_data_secs: Option<f64>,
    /// The part of that work this run did itself (0 when it all came from caches).
    #[serde(default)]
    pub data_computed_secs: f64,
    /// The other step that needs the same data work ("the label check" for the backbone
    /// pass), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_shared_with: Option<String>,
}

impl Durations {
    /// Seconds from raw photos to the finished run: this run's total with its own data work
    /// replaced by the whole recorded cost of the data ([`Durations::cold_data_secs`]).
    /// `None` for runs recorded before lab5 counted it.
    pub fn cold_total_secs(&self) -> Option<f64> {
        self.cold_data_secs
            .map(|cold| self.total_secs - self.data_computed_secs + cold)
    }

    /// Seconds a re-run costs with every cache warm: this run's total without the data
    /// work it did itself (reading the caches, training, evaluation, writing the run).
    pub fn warm_total_secs(&self) -> f64 {
        (self.total_secs - self.data_computed_secs).max(0.0)
    }
}

/// Final metrics of the best weights on each split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Training split (evaluation mode: no augmentation, no dropout).
    pub train: Metrics,
    /// Validation split.
    pub val: Metrics,
    /// Test split.
    pub test: Metrics,
}

/// The over-fitting evidence: train accuracy minus test accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// `train_accuracy - test_accuracy` (a fraction; 0.04 = 4 points).
    pub train_minus_test: f64,
}

impl Gap {
    /// The gap of these final metrics.
    pub(crate) fn of(m: &SplitMetrics) -> Self {
        Gap {
            train_accuracy: m.train.accuracy,
            test_accuracy: m.test.accuracy,
            train_minus_test: m.train.accuracy - m.test.accuracy,
        }
    }
}

/// Number of examples per split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Training examples.
    pub train: usize,
    /// Validation examples.
    pub val: usize,
    /// Test examples.
    pub test: usize,
}

/// Contents of `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Run name (folder name).
    pub name: String,
    /// Model kind.
    pub kind: String,
    /// Parameters of the model.
    pub params: i64,
    /// Parameters that were trained.
    pub trainable_params: i64,
    /// Key of the data the run was trained on (manifest rows and preprocessing).
    pub data_key: String,
    /// Examples per split.
    pub sizes: SplitSizes,
    /// The configuration used.
    pub config: Config,
    /// One entry per epoch.
    pub history: Vec<EpochStats>,
    /// Epoch (from 1) whose weights were kept.
    pub best_epoch: usize,
    /// True when early stopping ended training.
    pub stopped_early: bool,
    /// Timings.
    pub durations: Durations,
    /// Final metrics on each split (best weights).
    pub metrics: SplitMetrics,
    /// Train minus test accuracy.
    pub gap: Gap,
    /// Training arithmetic (`fp32`, or `bf16` mixed precision; runs recorded before
    /// the setting existed were fp32).
    #[serde(default = "fp32")]
    pub precision: String,
    /// Test accuracy on seen and on held-out breeds, when the data set holds breeds out
    /// (`data.unseen_breeds`; absent in other runs and in runs recorded before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_breeds: Option<super::breeds::BreedReport>,
}

fn fp32() -> String {
    "fp32".to_string()
}

/// A finished run, as loaded from its folder.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run folder.
    pub dir: PathBuf,
    /// How to rebuild the model.
    pub model: ModelSpec,
    /// What training measured.
    pub metrics: RunMetrics,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: is this a finished run folder? (train it with `lab5 train`)",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run file", path.display()))
}

/// Writes `value` as pretty JSON, atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

impl RunRecord {
    /// Loads `run.json` and `metrics.json` of a run folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let model = read_json(&dir.join(RUN_FILE))?;
        let metrics = read_json(&dir.join(METRICS_FILE))?;
        Ok(RunRecord {
            dir: dir.to_path_buf(),
            model,
            metrics,
        })
    }

    /// Writes `run.json` and `metrics.json` into `dir`.
    pub(crate) fn save_to(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(RUN_FILE), &self.model)?;
        write_json(&dir.join(METRICS_FILE), &self.metrics)
    }

    /// Weights of the best epoch.
    pub fn best_weights(&self) -> PathBuf {
        self.dir.join(BEST_WEIGHTS)
    }

    /// The TensorBoard folder.
    pub fn tensorboard_dir(&self) -> PathBuf {
        self.dir.join(&self.metrics.config.tensorboard.subdir)
    }

    /// The rows of `predictions.csv` (id, split, label, p_dog), in file order.
    pub fn predictions(&self) -> Result<Vec<Scored>> {
        csv_io::read_rows(&self.dir.join(PREDICTIONS_FILE))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

impl fmt::Display for RunRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.metrics;
        let d = &r.durations;
        writeln!(
            f,
            "run {} ({}, {} parameters, trained in {}) in {}",
            r.name,
            r.kind,
            r.params,
            r.precision,
            self.dir.display()
        )?;
        writeln!(
            f,
            "best epoch {} of {}{}",
            r.best_epoch,
            r.history.len(),
            if r.stopped_early { " (early stop)" } else { "" }
        )?;
        writeln!(
            f,
            "{:<6} {:>6} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8}",
            "split", "n", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"
        )?;
        for (name, m) in [
            ("train", &r.metrics.train),
            ("val", &r.metrics.val),
            ("test", &r.metrics.test),
        ] {
            writeln!(
                f,
                "{name:<6} {:>6} {:>9} {:>9} {:>7} {:>7.3} {:>8.4} {:>8.4}",
                m.n,
                pct(m.accuracy),
                pct(m.precision),
                pct(m.recall),
                m.f1,
                m.roc_auc,
                m.log_loss
            )?;
        }
        let g = &r.gap;
        writeln!(
            f,
            "gap: train {} - test {} = {:+.1} points",
            pct(g.train_accuracy),
            pct(g.test_accuracy),
            100.0 * g.train_minus_test
        )?;
        if let Some(b) = &r.unseen_breeds {
            writeln!(f, "{b}")?;
        }
        write!(f, "time: {:.0} s total (preprocess {:.1} s, training {:.0} s, best epoch reached after {:.0} s, evaluation {:.1} s)", d.total_secs, d.preprocess_secs, d.train_secs, d.to_best_secs, d.eval_secs)?;
        if let (Some(cold), Some(data)) = (d.cold_total_secs(), d.cold_data_secs) {
            let shared = match &d.data_shared_with {
                Some(other) => format!(", shared with {other}"),
                None => String::new(),
            };
            write!(f, "\ncost from raw photos: {cold:.0} s (data preparation {data:.1} s{shared}); a re-run with warm caches: {:.0} s", d.warm_total_secs())?;
        }
        Ok(())
    }
}

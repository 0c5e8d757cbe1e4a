//! [`ModelSummary`]: what the comparison needs from one finished run, gathered from its
//! `metrics.json` plus a fresh inference timing.

use super::inference::Inference;
use crate::train::record::SplitMetrics;
use crate::train::RunRecord;
use serde::{Deserialize, Serialize};

/// One model's side of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Run name (`cnn`, `transfer`).
    pub model: String,
    /// Model kind recorded by the run.
    pub kind: String,
    /// All parameters.
    pub params: i64,
    /// Parameters the optimiser updated.
    pub trainable_params: i64,
    /// Epochs trained (early stopping may end before the configured maximum).
    pub epochs_run: usize,
    /// Epoch (from 1) whose weights were kept: the lowest validation loss.
    pub best_epoch: usize,
    /// Whether early stopping ended training.
    pub stopped_early: bool,
    /// Seconds preparing the data (tensor cache or backbone features).
    pub preprocess_secs: f64,
    /// Seconds of the training loop.
    pub train_secs: f64,
    /// Seconds from preprocessing to the finished run folder, as this run went (with the
    /// caches as they were).
    pub total_secs: f64,
    /// Seconds preparing the data from the raw photos with nothing cached (CNN: the
    /// preprocessing cache's build; transfer: the backbone pass over every photo), as
    /// recorded when that work was done; `None` for runs recorded before lab5 counted it.
    #[serde(default)]
    pub cold_data_secs: Option<f64>,
    /// Seconds from raw photos to the trained model ([`Durations::cold_total_secs`]).
    ///
    /// [`Durations::cold_total_secs`]: crate::train::record::Durations::cold_total_secs
    #[serde(default)]
    pub cold_total_secs: Option<f64>,
    /// Seconds of a re-run with every cache warm; `None` for runs recorded before lab5
    /// counted data preparation (their own total may include work a cache would save).
    #[serde(default)]
    pub warm_total_secs: Option<f64>,
    /// The other step that needs the same data work ("the label check"), if any.
    #[serde(default)]
    pub data_shared_with: Option<String>,
    /// `train_secs / epochs_run`.
    pub secs_per_epoch: f64,
    /// Seconds from the start of training to the end of the best epoch.
    pub to_best_secs: f64,
    /// Inference speed measured by the comparison.
    pub inference: Inference,
    /// Final metrics of the best weights on train, validation and test.
    pub metrics: SplitMetrics,
    /// Train minus test accuracy (fraction).
    pub gap: f64,
}

impl ModelSummary {
    /// The summary of a finished run with its measured inference speed.
    pub(crate) fn of(record: &RunRecord, inference: Inference) -> ModelSummary {
        let m = &record.metrics;
        let d = &m.durations;
        let epochs = m.history.len();
        ModelSummary {
            model: m.name.clone(),
            kind: m.kind.clone(),
            params: m.params,
            trainable_params: m.trainable_params,
            epochs_run: epochs,
            best_epoch: m.best_epoch,
            stopped_early: m.stopped_early,
            preprocess_secs: d.preprocess_secs,
            train_secs: d.train_secs,
            total_secs: d.total_secs,
            cold_data_secs: d.cold_data_secs,
            cold_total_secs: d.cold_total_secs(),
            warm_total_secs: d.cold_data_secs.map(|_| d.warm_total_secs()),
            data_shared_with: d.data_shared_with.clone(),
            secs_per_epoch: d.train_secs / epochs.max(1) as f64,
            to_best_secs: d.to_best_secs,
            inference,
            metrics: m.metrics.clone(),
            gap: m.gap.train_minus_test,
        }
    }

    /// Name used in sentences and legends.
    pub(crate) fn title(&self) -> &str {
        match self.model.as_str() {
            "cnn" => "CNN",
            "transfer" => "transfer model",
            other => other,
        }
    }
}

//! What a training run shows while it runs: a progress bar over the optimiser steps on a
//! terminal (hidden in notebooks and logs), one readable line per epoch (plain `println`,
//! so it reads well inside a notebook), and in TensorBoard the scalars of every epoch,
//! the first augmented training batch as an image, and every epoch the histograms of each
//! layer's weights and gradients (PyTorch's `add_scalar`, `add_image`, `add_histogram`).

use super::dataset::Dataset;
use super::tensorboard::{histogram::histogram, images, EventWriter};
use crate::config;
use anyhow::Result;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use tch::nn::VarStore;
use tch::Tensor;

/// TensorBoard tags written each epoch.
pub const TAGS: [&str; 5] = [
    "loss/train",
    "loss/val",
    "accuracy/train",
    "accuracy/val",
    "lr",
];

/// The figures of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss (plain cross-entropy, with dropout and augmentation on; for
    /// batches mixed by mixup or CutMix, against their blended targets, so it stays above
    /// the validation loss's floor).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches (a mixed photo counts as its dominant
    /// label).
    pub train_acc: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_acc: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub secs: f64,
    /// Seconds of the training pass alone (what images/s are measured on).
    pub train_secs: f64,
    /// Seconds spent making batches (loading, augmenting), outside the model.
    pub data_secs: f64,
}

impl EpochStats {
    /// One line for the log, e.g.
    /// `epoch  3/30  train loss 0.6012 acc 67.1 %  val loss 0.5843 acc 70.2 %  lr 1.2e-3  14.2 s *`
    /// (`*` marks a new best validation loss).
    pub(crate) fn line(&self, epochs: usize, best: bool) -> String {
        let w = epochs.to_string().len();
        format!(
            "epoch {:>w$}/{epochs}  train loss {:.4} acc {:5.1} %  val loss {:.4} acc {:5.1} %  lr {:.2e}  {:5.1} s{}",
            self.epoch,
            self.train_loss,
            100.0 * self.train_acc,
            self.val_loss,
            100.0 * self.val_acc,
            self.lr,
            self.secs,
            if best { " *" } else { "" }
        )
    }
}

/// Tag of the grid of the first augmented training batch.
pub const BATCH_TAG: &str = "train/augmented_batch";
/// Prefix of the weight histograms' tags (`weights/<variable>`).
pub const WEIGHTS_PREFIX: &str = "weights/";
/// Prefix of the gradient histograms' tags (`gradients/<variable>`).
pub const GRADIENTS_PREFIX: &str = "gradients/";
/// Batch-norm statistics kept next to a layer's weight (logged with it, no gradient).
const BN_BUFFERS: [&str; 2] = ["running_mean", "running_var"];

/// Progress bar, epoch log and TensorBoard writer of one run.
///
/// TensorBoard is best-effort: when a write fails, the monitor prints a warning, stops
/// writing events for the rest of the run and training goes on (a full disk or an
/// unreadable tensor never costs a trained model).
pub struct Monitor {
    bar: ProgressBar,
    /// The event writer with what to write besides the scalars; `None` without
    /// TensorBoard or after a failed write.
    tb: Option<(EventWriter, config::TensorBoard)>,
    epochs: usize,
    batch_shown: bool,
    logging_secs: f64,
}

impl Monitor {
    /// A monitor for `epochs` epochs of `steps_per_epoch` steps; TensorBoard events go to
    /// `tb_dir` when given, with what `settings` asks for besides the scalars.
    ///
    /// # Errors
    /// The TensorBoard folder or its event file cannot be created (before any training).
    pub(crate) fn new(
        epochs: usize,
        steps_per_epoch: usize,
        tb_dir: Option<&Path>,
        settings: &config::TensorBoard,
    ) -> Result<Self> {
        let bar = crate::util::progress((epochs * steps_per_epoch) as u64, "train");
        let tb = tb_dir.map(EventWriter::create).transpose()?;
        Ok(Monitor {
            bar,
            tb: tb.map(|w| (w, settings.clone())),
            epochs,
            batch_shown: false,
            logging_secs: 0.0,
        })
    }

    /// A monitor that only prints the epoch lines (no bar, no TensorBoard).
    pub fn quiet(epochs: usize) -> Self {
        Monitor {
            bar: ProgressBar::hidden(),
            tb: None,
            epochs,
            batch_shown: false,
            logging_secs: 0.0,
        }
    }

    /// Seconds spent writing the batch image and the histograms so far (not the scalars:
    /// one record each).
    pub fn logging_secs(&self) -> f64 {
        self.logging_secs
    }

    /// The event writer, for what is logged after training; `None` without TensorBoard
    /// or after a failed write.
    pub(crate) fn writer(&mut self) -> Option<&mut EventWriter> {
        self.tb.as_mut().map(|(w, _)| w)
    }

    /// Runs `write` on the event writer (with the settings) when there is one, adding its
    /// time to [`Self::logging_secs`] when `timed`; on failure prints a warning naming
    /// `what` and drops the writer.
    fn best_effort(
        &mut self,
        what: &str,
        timed: bool,
        write: impl FnOnce(&mut EventWriter, &config::TensorBoard) -> Result<()>,
    ) {
        let Some((w, s)) = &mut self.tb else {
            return;
        };
        let started = Instant::now();
        let result = write(w, s);
        if timed {
            self.logging_secs += started.elapsed().as_secs_f64();
        }
        if let Err(e) = result {
            let path = w.path().display().to_string();
            self.tb = None;
            self.bar.suspend(|| {
                super::board::warn_skipped(
                    &format!("{what} (and the rest of this run's events in {path})"),
                    &e,
                )
            });
        }
    }

    /// Shows the first training batch `x` of `set` as one image (step 0), once: the
    /// photos as the model sees them, augmented (`tensorboard.batch_images` of them).
    /// Nothing for sets of feature vectors. Best-effort (see [`Monitor`]).
    pub(crate) fn first_batch(&mut self, set: &dyn Dataset, x: &Tensor) {
        if self.batch_shown {
            return;
        }
        self.batch_shown = true;
        self.best_effort("the augmented batch image", true, |tb, s| {
            let n = x
                .size()
                .first()
                .copied()
                .unwrap_or(0)
                .min(s.batch_images as i64);
            if n == 0 {
                return Ok(());
            }
            let Some(pixels) = set.pixels(&x.narrow(0, 0, n)) else {
                return Ok(());
            };
            let cols = (n as f64).sqrt().ceil() as usize;
            tb.image(BATCH_TAG, &images::grid(&pixels, cols)?, 0)
        });
    }

    /// Histograms of every trained layer's weights (with the running statistics of its
    /// batch-norm layers) and of their gradients of the epoch's last step, at step `epoch`
    /// (`tensorboard.histogram_bins` buckets; none when 0). Frozen variables (a
    /// pretrained backbone) are left out. Best-effort (see [`Monitor`]).
    pub(crate) fn parameters(&mut self, vs: &VarStore, epoch: usize) {
        self.best_effort("the weight and gradient histograms", true, |tb, s| {
            if s.histogram_bins == 0 {
                return Ok(());
            }
            let step = epoch as i64;
            for (name, t) in logged_variables(vs) {
                if let Some(h) = histogram(&t, s.histogram_bins)? {
                    tb.histogram(&format!("{WEIGHTS_PREFIX}{name}"), h, step)?;
                }
                let grad = t.grad();
                if grad.defined() {
                    if let Some(h) = histogram(&grad, s.histogram_bins)? {
                        tb.histogram(&format!("{GRADIENTS_PREFIX}{name}"), h, step)?;
                    }
                }
            }
            Ok(())
        });
    }

    /// One optimiser step done.
    pub(crate) fn step(&self) {
        self.bar.inc(1);
    }

    /// Prints a line above the bar (or plainly when the bar is hidden).
    pub(crate) fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Logs an epoch: its line and its TensorBoard scalars (step = epoch number;
    /// best-effort, see [`Monitor`]).
    pub(crate) fn epoch(&mut self, s: &EpochStats, best: bool) {
        self.say(&s.line(self.epochs, best));
        self.best_effort("the epoch's scalars", false, |tb, _| {
            let values = [s.train_loss, s.val_loss, s.train_acc, s.val_acc, s.lr];
            for (tag, v) in TAGS.iter().zip(values) {
                tb.scalar(tag, v, s.epoch as i64)?;
            }
            tb.flush()
        });
    }

    /// Removes the bar and flushes the event file (best-effort, see [`Monitor`]).
    pub(crate) fn finish(&mut self) {
        self.bar.finish_and_clear();
        self.best_effort("the last events", false, |tb, _| tb.flush());
    }
}

/// The variables a run's histograms show, sorted by name: every variable the optimiser
/// trains, and the batch-norm running statistics (`<layer>.running_mean`,
/// `<layer>.running_var`) of layers whose weight it trains.
fn logged_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let vars = vs.variables();
    let trained = |name: &str| vars.get(name).is_some_and(Tensor::requires_grad);
    let mut out: Vec<(String, Tensor)> = vars
        .iter()
        .filter(|(name, t)| {
            t.requires_grad()
                || BN_BUFFERS.iter().any(|b| {
                    name.strip_suffix(b)
                        .is_some_and(|layer| trained(&format!("{layer}weight")))
                })
        })
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: 0.5,
            train_acc: 0.7,
            val_loss: 0.6,
            val_acc: 0.65,
            lr: 1e-3,
            secs: 1.0,
            train_secs: 0.8,
            data_secs: 0.1,
        }
    }

    #[test]
    fn a_failed_tensorboard_write_stops_the_events_not_the_run() {
        let dir = std::env::temp_dir().join(format!("lab5-monitor-{}", std::process::id()));
        let cfg = crate::config::Config::from_json(include_str!("../../../config.json")).unwrap();
        let settings = cfg.tensorboard;
        let mut m = Monitor::new(2, 1, Some(&dir), &settings).unwrap();
        m.epoch(&stats(1), true);
        let file = m.writer().unwrap().path().to_path_buf();
        let written = std::fs::metadata(&file).unwrap().len();
        m.best_effort("a summary", true, |_, _| anyhow::bail!("disk full"));
        assert!(
            m.writer().is_none(),
            "the writer is dropped after a failure"
        );
        // the rest of the run goes on without events, and without panicking
        m.epoch(&stats(2), false);
        m.finish();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), written);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

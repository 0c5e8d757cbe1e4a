//! What a training run shows while it runs: a progress bar over the optimiser steps on a
//! terminal (hidden in notebooks and logs), one readable line per epoch (plain `println`,
//! so it reads well inside a notebook), and TensorBoard scalars per epoch.

use super::tensorboard::EventWriter;
use anyhow::Result;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// Mean training loss (cross-entropy, with dropout and augmentation on).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
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

/// Progress bar, epoch log and TensorBoard writer of one run.
pub struct Monitor {
    bar: ProgressBar,
    tb: Option<EventWriter>,
    epochs: usize,
}

impl Monitor {
    /// A monitor for `epochs` epochs of `steps_per_epoch` steps; TensorBoard events go to
    /// `tb_dir` when given.
    pub(crate) fn new(
        epochs: usize,
        steps_per_epoch: usize,
        tb_dir: Option<&Path>,
    ) -> Result<Self> {
        let bar = crate::util::progress((epochs * steps_per_epoch) as u64, "train");
        let tb = tb_dir.map(EventWriter::create).transpose()?;
        Ok(Monitor { bar, tb, epochs })
    }

    /// A monitor that only prints the epoch lines (no bar, no TensorBoard).
    pub fn quiet(epochs: usize) -> Self {
        Monitor {
            bar: ProgressBar::hidden(),
            tb: None,
            epochs,
        }
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

    /// Logs an epoch: its line and its TensorBoard scalars (step = epoch number).
    pub(crate) fn epoch(&mut self, s: &EpochStats, best: bool) -> Result<()> {
        self.say(&s.line(self.epochs, best));
        if let Some(tb) = &mut self.tb {
            let values = [s.train_loss, s.val_loss, s.train_acc, s.val_acc, s.lr];
            for (tag, v) in TAGS.iter().zip(values) {
                tb.scalar(tag, v, s.epoch as i64)?;
            }
            tb.flush()?;
        }
        Ok(())
    }

    /// Removes the bar and flushes the event file.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.bar.finish_and_clear();
        if let Some(tb) = &mut self.tb {
            tb.flush()?;
        }
        Ok(())
    }
}

//! Notebooks `03_cnn` and `05_transfer`: the model's layer table, training (or reusing
//! the finished run), TensorBoard, learning curves, metrics on train/val/test with the
//! gap, confusion matrix, ROC curves and the most confident mistakes. Everything after
//! the training cell reads the run folder `runs/<model>/`, so any cell can be re-run on
//! its own.

use super::current::what_changed;
use super::data::manifest;
use super::{Note, Shown};
use crate::config::Config;
use crate::data::SplitName;
use crate::models::{transfer::Transfer, Cnn, Net};
use crate::plot::{self, Curves, Figure, Table};
use crate::train::metrics::Metrics;
use crate::train::monitor::EpochStats;
pub(crate) use crate::train::record::Scored;
use crate::train::record::{METRICS_FILE, RUN_FILE};
use crate::train::{board, run::CNN_RUN, transfer::TRANSFER_RUN, RunRecord};
use anyhow::{bail, Result};
use polars::prelude::df;

/// The two models of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// The CNN trained from scratch (`runs/cnn/`).
    Cnn,
    /// The frozen pretrained backbone with our head (`runs/transfer/`).
    Transfer,
}

impl Model {
    /// The run folder name.
    pub fn run_name(self) -> &'static str {
        match self {
            Model::Cnn => CNN_RUN,
            Model::Transfer => TRANSFER_RUN,
        }
    }

    /// Name used in titles.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Model::Cnn => "CNN from scratch",
            Model::Transfer => "Transfer (frozen backbone + head)",
        }
    }

    fn train_command(self) -> &'static str {
        match self {
            Model::Cnn => "lab5 train cnn",
            Model::Transfer => "lab5 train transfer",
        }
    }

    /// The notebook whose training cell trains it.
    fn notebook(self) -> &'static str {
        match self {
            Model::Cnn => "03_cnn",
            Model::Transfer => "05_transfer",
        }
    }

    /// The notebook whose embedding cell maps its embeddings.
    fn embed_notebook(self) -> &'static str {
        match self {
            Model::Cnn => "04_embeddings",
            Model::Transfer => "05_transfer",
        }
    }

    /// Where to map its embeddings, as the end of a sentence: the notebook's embedding
    /// cell and the command.
    pub(crate) fn how_to_embed(self) -> String {
        format!(
            "the embedding cell of notebook {} (embed(&cfg, Model::{self:?}, false)) or `lab5 embed --run runs/{}`",
            self.embed_notebook(),
            self.run_name()
        )
    }

    /// Where to train it, as the end of a sentence: the notebook's training cell and the
    /// command.
    fn how_to_train(self) -> String {
        format!(
            "the training cell of notebook {} (train(&cfg, Model::{self:?}, false)) or `{}`",
            self.notebook(),
            self.train_command()
        )
    }
}

/// The finished run of `model`, trained with the settings of `cfg` on the data set now in
/// the data folder; else an error saying which cell or command to run.
pub(crate) fn run_record(cfg: &Config, model: Model) -> Result<RunRecord> {
    let dir = cfg.runs_dir().join(model.run_name());
    if !dir.join(RUN_FILE).is_file() || !dir.join(METRICS_FILE).is_file() {
        bail!(
            "no finished {} run in {} yet: run {} first",
            model.title(),
            dir.display(),
            model.how_to_train()
        );
    }
    let rec = RunRecord::load(&dir)?;
    if let Some(change) = what_changed(cfg, model, &rec, &manifest(cfg)?) {
        bail!(
            "{} was trained {change}: run {} again",
            dir.display(),
            model.how_to_train()
        );
    }
    Ok(rec)
}

/// The layer table of `model` as `cfg` builds it (output shape and parameters per layer,
/// trainable or frozen); prints the totals.
pub fn layers(cfg: &Config, model: Model) -> Result<Table> {
    let device = tch::Device::Cpu;
    let summary = match model {
        Model::Cnn => Cnn::new(&cfg.cnn, cfg.preprocess.image_size, device)?.summary()?,
        Model::Transfer => Transfer::new(cfg, device)?.summary()?,
    };
    let (total, trainable) = (summary.total_params(), summary.trainable_params());
    println!(
        "{}: {total} parameters, {trainable} trainable, {} frozen (input {:?})",
        summary.model,
        total - trainable,
        summary.input_shape
    );
    Ok(Table(summary.to_frame()?))
}

/// Trains `model` (one line per epoch, TensorBoard events, checkpoints) and records it in
/// `runs/<model>/`; without `force`, a finished run with the same settings and data is
/// reused instead. A new run replaces the old one only once it has succeeded. Fails with
/// what to run when there is no data set yet.
pub fn train(cfg: &Config, model: Model, force: bool) -> Result<()> {
    manifest(cfg)?;
    match model {
        Model::Cnn => crate::train::train_cnn(cfg, force)?,
        Model::Transfer => crate::train::train_transfer(cfg, force)?,
    };
    Ok(())
}

/// How to open the runs in TensorBoard (`make tensorboard` or `lab5 tensorboard`), what
/// each tab shows, and the runs there are now with what they hold.
pub fn tensorboard(cfg: &Config) -> Result<Note> {
    use crate::train::tensorboard::server;
    let runs = server::runs_found(cfg);
    let found = if runs.is_empty() {
        format!(
            "No run has TensorBoard events in `{}` yet: run the training cell first.",
            cfg.runs_dir().display()
        )
    } else {
        let lines: Vec<String> = runs.iter().map(|r| format!("- `{r}`")).collect();
        format!("Runs now:\n\n{}", lines.join("\n"))
    };
    Ok(Note(format!(
        "In a terminal, from the project folder:\n\n```sh\nmake tensorboard     # or: lab5 tensorboard\n```\n\n\
         It starts TensorBoard from the setup's venv on `{}` and prints its address, \
         {} (the next free port when that one is taken). Tabs: *Scalars* (`loss/train`, \
         `loss/val`, `accuracy/train`, `accuracy/val`, `lr` per epoch; `final/...` of the kept \
         weights), *Images* (the first augmented batch; confusion matrix, ROC curves, most \
         confident test mistakes), *Histograms* and *Distributions* (`weights/...`, \
         `gradients/...` per layer and epoch), *HParams* (every run's settings and final \
         metrics side by side), *Projector* (every photo's embedding with its thumbnail; \
         colour by `label`, `predicted` or `correct`).\n\n{found}",
        cfg.runs_dir().display(),
        server::address(cfg.tensorboard.port),
    )))
}

/// Learning curves of the run: loss and accuracy per epoch, train vs validation, with
/// the epoch whose weights were kept.
pub fn learning_curves(cfg: &Config, model: Model) -> Result<Figure> {
    let r = run_record(cfg, model)?;
    let h = &r.metrics.history;
    let col = |f: fn(&EpochStats) -> f64| h.iter().map(f).collect();
    let curves = Curves {
        train_loss: col(|s| s.train_loss),
        val_loss: col(|s| s.val_loss),
        train_acc: col(|s| s.train_acc),
        val_acc: col(|s| s.val_acc),
        best_epoch: Some(r.metrics.best_epoch),
    };
    plot::learning_curves(&format!("{}: learning curves", model.title()), &curves)
}

/// The per-epoch history of the run as a table (rounded).
pub fn history_table(cfg: &Config, model: Model) -> Result<Table> {
    let r = run_record(cfg, model)?;
    let h = &r.metrics.history;
    let col = |f: fn(&EpochStats) -> String| h.iter().map(f).collect::<Vec<_>>();
    let best = r.metrics.best_epoch;
    Ok(Table(df!(
        "epoch" => h.iter().map(|s| s.epoch as u32).collect::<Vec<_>>(),
        "train loss" => col(|s| format!("{:.4}", s.train_loss)),
        "train acc" => col(|s| pct(s.train_acc)),
        "val loss" => col(|s| format!("{:.4}", s.val_loss)),
        "val acc" => col(|s| pct(s.val_acc)),
        "lr" => col(|s| format!("{:.2e}", s.lr)),
        "seconds" => col(|s| format!("{:.1}", s.secs)),
        "kept" => h.iter().map(|s| if s.epoch == best { "best" } else { "" }).collect::<Vec<_>>(),
    )?))
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// Accuracy (with its 95 % Wilson interval), precision, recall, F1, ROC-AUC and log loss
/// of the best weights on train, validation and test.
pub fn metrics_table(cfg: &Config, model: Model) -> Result<Table> {
    let r = run_record(cfg, model)?;
    let m = &r.metrics.metrics;
    let rows: [(&str, &Metrics); 3] = [("train", &m.train), ("val", &m.val), ("test", &m.test)];
    let col = |f: fn(&Metrics) -> String| rows.iter().map(|(_, x)| f(x)).collect::<Vec<_>>();
    let df = df!(
        "split" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "images" => rows.iter().map(|r| r.1.n as u64).collect::<Vec<_>>(),
        "accuracy" => col(|x| pct(x.accuracy)),
        "95 % Wilson interval" => col(|x| {
            let (lo, hi) = x.accuracy_interval();
            format!("{:.1} – {:.1} %", 100.0 * lo, 100.0 * hi)
        }),
        "precision" => col(|x| pct(x.precision)),
        "recall" => col(|x| pct(x.recall)),
        "f1" => col(|x| format!("{:.3}", x.f1)),
        "roc_auc" => col(|x| format!("{:.4}", x.roc_auc)),
        "log_loss" => col(|x| format!("{:.4}", x.log_loss)),
    )?;
    Ok(Table(df))
}

/// The train-minus-test accuracy gap, with the validation accuracy and the epochs.
pub fn gap(cfg: &Config, model: Model) -> Result<Note> {
    let r = run_record(cfg, model)?;
    let (g, m) = (&r.metrics.gap, &r.metrics);
    let stop = if m.stopped_early {
        "stopped early"
    } else {
        "ran all epochs"
    };
    Ok(Note(format!(
        "**Gap: train {} − test {} = {:+.1} points** (validation {}). Best epoch {} of {} ({stop}).",
        pct(g.train_accuracy),
        pct(g.test_accuracy),
        100.0 * g.train_minus_test,
        pct(m.metrics.val.accuracy),
        m.best_epoch,
        m.history.len()
    )))
}

/// Confusion matrix of the best weights on `split`.
pub fn confusion(cfg: &Config, model: Model, split: SplitName) -> Result<Figure> {
    let r = run_record(cfg, model)?;
    let m = &r.metrics.metrics;
    let metrics = match split {
        SplitName::Train => &m.train,
        SplitName::Val => &m.val,
        SplitName::Test => &m.test,
    };
    let title = format!(
        "{}: confusion matrix, {} split",
        model.title(),
        split.name()
    );
    plot::confusion_matrix(&title, &metrics.confusion, &["cat", "dog"])
}

/// The run's per-image predictions (best weights), from `predictions.csv`.
pub(crate) fn predictions(cfg: &Config, model: Model) -> Result<Vec<Scored>> {
    run_record(cfg, model)?.predictions()
}

/// ROC curves of the best weights on train, validation and test.
pub fn roc(cfg: &Config, model: Model) -> Result<Figure> {
    let scored = predictions(cfg, model)?;
    board::roc_figure(&format!("{}: ROC curves", model.title()), &scored)
}

/// The `n` most confident mistakes on the test split, as photos with their probability,
/// or a note when the model made none.
pub fn mistakes(cfg: &Config, model: Model, n: usize, cols: usize) -> Result<Shown> {
    let scored = predictions(cfg, model)?;
    let paths = board::photo_paths(cfg)?;
    Ok(
        match board::mistakes_figure(model.title(), &scored, &paths, n, cols)? {
            Some(fig) => Shown::Figure(fig),
            None => {
                let msg = format!("No mistakes: {} got every test photo right.", model.title());
                Shown::Note(Note(msg))
            }
        },
    )
}

/// How to make a run that holds breeds out, for [`unseen_breeds`].
const UNSEEN_HOWTO: &str =
    "This run holds no breed out of training, so every test photo is of a breed the \
     training split also has. To measure accuracy on breeds the model has never seen, train with \
     `config.unseen.json` (a share of the breeds of each class kept out of train and val; its own \
     `data-unseen/` and `runs-unseen/` folders): `lab5 --config config.unseen.json run`, or open \
     the notebooks with `LAB5_CONFIG=config.unseen.json make lab`.";

/// Test accuracy on seen breeds, on the breeds held out of train and val, per class and
/// per held-out breed (see [`crate::train::breeds`]); a note saying how to make such a
/// run when this one holds no breed out.
pub fn unseen_breeds(cfg: &Config, model: Model) -> Result<Shown> {
    let r = run_record(cfg, model)?;
    Ok(match &r.metrics.unseen_breeds {
        Some(b) => Shown::Table(Table(b.to_frame()?)),
        None => Shown::Note(Note(UNSEEN_HOWTO.into())),
    })
}

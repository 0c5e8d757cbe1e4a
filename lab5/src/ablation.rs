//! `lab5 ablate`: the ablation study of the CNN recipe. The config's recipe is trained
//! once as it is and once per variant that takes one ingredient out (batch-norm, dropout,
//! augmentation, ...), each as its own run in `runs/ablation/<variant>/` (checkpoint,
//! `metrics.json`, TensorBoard: `tensorboard --logdir runs/ablation` overlays them), on the
//! same split with the same seed. The summary answers "what does batch-norm / dropout /
//! augmentation buy?" with the lab's own data: train, validation and test accuracy, the
//! train - test gap, the best epoch and the learning curves of each variant, in
//! `runs/ablation/ablation.json` (+ `.csv`, `.md` and charts).
//!
//! The budget is `ablation.epochs` (and `ablation.image_size`, 0 = the CNN's own) for
//! every variant, recipe included, so the comparison is like for like; a variant whose
//! run is current for its settings and data is reused (like `lab5 train`).
//!
//! [`label_check`] (`lab5 ablate --label-check`) takes out a data ingredient instead: the
//! photos the label check flags, for the transfer head (and, slowly, the CNN).

pub mod label_check;

use crate::config::{Augment, Config};
use crate::plot::{self, Figure, Line};
use crate::train::monitor::EpochStats;
use crate::train::run::train_cnn_named;
use crate::train::RunRecord;
use crate::util::csv_io;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Folder of the study under the runs folder.
pub(crate) const DIR: &str = "ablation";
/// The summary file in [`DIR`].
pub(crate) const JSON_FILE: &str = "ablation.json";
/// The same table as CSV.
pub(crate) const CSV_FILE: &str = "ablation.csv";
/// The same table as Markdown.
pub(crate) const MARKDOWN_FILE: &str = "ablation.md";
/// The reference variant: the config's recipe unchanged.
pub(crate) const RECIPE: &str = "recipe";

/// The variants `ablation.variants` may name, and what each one takes out.
pub(crate) const VARIANTS: [(&str, &str); 7] = [
    (
        "no_batch_norm",
        "convolutions with a bias instead of batch-norm (cnn.batch_norm = false)",
    ),
    ("no_dropout", "no dropout (cnn.dropout = 0)"),
    (
        "no_augment",
        "no augmentation at all (every augment key off)",
    ),
    (
        "no_crop",
        "no random resized crop (augment.crop_scale_min = 1)",
    ),
    (
        "no_label_smoothing",
        "plain cross-entropy (cnn.label_smoothing = 0)",
    ),
    (
        "no_ema",
        "last weights instead of their moving average (cnn.ema_decay = 0)",
    ),
    (
        "no_tta",
        "no flip test-time augmentation (cnn.tta_hflip = false)",
    ),
];

/// The config of `variant` (the recipe with one ingredient taken out), with the study's
/// budget applied. Fails on an unknown variant name.
pub(crate) fn variant_config(cfg: &Config, variant: &str) -> Result<Config> {
    let mut c = cfg.clone();
    c.cnn.train.epochs = cfg.ablation.epochs;
    if cfg.ablation.image_size > 0 {
        c.preprocess.image_size = cfg.ablation.image_size;
        c.preprocess.resize_shorter = cfg.ablation.image_size * 8 / 7;
    }
    // relative to the config's folder, like every path of the config
    c.paths.runs_dir = cfg.paths.runs_dir.join(DIR);
    match variant {
        RECIPE => {}
        "no_batch_norm" => c.cnn.batch_norm = false,
        "no_dropout" => c.cnn.dropout = 0.0,
        "no_augment" => c.augment = no_augment(&c.augment),
        "no_crop" => c.augment.crop_scale_min = 1.0,
        "no_label_smoothing" => c.cnn.train.label_smoothing = 0.0,
        "no_ema" => c.cnn.train.ema_decay = 0.0,
        "no_tta" => c.cnn.tta_hflip = false,
        other => bail!(
            "unknown ablation variant {other:?} in ablation.variants; known: {}",
            VARIANTS.map(|(n, _)| n).join(", ")
        ),
    }
    Ok(c)
}

/// Every augmentation switched off.
fn no_augment(a: &Augment) -> Augment {
    Augment {
        hflip: false,
        shift: 0.0,
        crop_scale_min: 1.0,
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
        rotate: 0.0,
        grayscale: 0.0,
        blur: 0.0,
        noise: 0.0,
        downscale: 0.0,
        mix_prob: 0.0,
        mixup_alpha: 0.0,
        cutmix_alpha: 0.0,
        ..a.clone()
    }
}

/// What taking `variant` out means, for the table.
fn change_of(variant: &str) -> &'static str {
    VARIANTS
        .iter()
        .find(|(n, _)| *n == variant)
        .map_or("the config's recipe", |(_, what)| what)
}

/// One variant's results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    /// `recipe` or one of [`VARIANTS`].
    pub name: String,
    /// What was taken out.
    pub change: String,
    /// Accuracy on the training split (best weights, no augmentation), 0..1.
    pub train_accuracy: f64,
    /// Accuracy on the validation split, 0..1.
    pub val_accuracy: f64,
    /// Accuracy on the test split, 0..1.
    pub test_accuracy: f64,
    /// Train - test accuracy (the over-fitting gap), in accuracy units.
    pub gap: f64,
    /// Test log loss.
    pub test_log_loss: f64,
    /// Epoch (from 1) with the lowest validation loss.
    pub best_epoch: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Seconds of training.
    pub train_secs: f64,
    /// Per-epoch figures (the learning curves).
    pub history: Vec<EpochStats>,
}

/// One line of `ablation.csv`: accuracies, gap and log loss with four decimals, seconds
/// with one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CsvLine {
    variant: String,
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    train_accuracy: f64,
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    val_accuracy: f64,
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    test_accuracy: f64,
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    gap: f64,
    #[serde(serialize_with = "csv_io::fixed::<4, _>")]
    test_log_loss: f64,
    best_epoch: usize,
    epochs: usize,
    #[serde(serialize_with = "csv_io::fixed::<1, _>")]
    train_secs: f64,
}

impl From<&Variant> for CsvLine {
    fn from(v: &Variant) -> Self {
        CsvLine {
            variant: v.name.clone(),
            train_accuracy: v.train_accuracy,
            val_accuracy: v.val_accuracy,
            test_accuracy: v.test_accuracy,
            gap: v.gap,
            test_log_loss: v.test_log_loss,
            best_epoch: v.best_epoch,
            epochs: v.epochs,
            train_secs: v.train_secs,
        }
    }
}

impl Variant {
    fn of(name: &str, rec: &RunRecord) -> Variant {
        let m = &rec.metrics;
        Variant {
            name: name.to_string(),
            change: change_of(name).to_string(),
            train_accuracy: m.metrics.train.accuracy,
            val_accuracy: m.metrics.val.accuracy,
            test_accuracy: m.metrics.test.accuracy,
            gap: m.gap.train_minus_test,
            test_log_loss: m.metrics.test.log_loss,
            best_epoch: m.best_epoch,
            epochs: m.history.len(),
            train_secs: m.durations.train_secs,
            history: m.history.clone(),
        }
    }
}

/// The whole study.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ablation {
    /// Epochs every variant trained for (at most; early stopping may end sooner).
    pub epochs: usize,
    /// Input side in pixels.
    pub image_size: i64,
    /// `runtime.seed` of every variant.
    pub seed: u64,
    /// The recipe first, then the variants in config order.
    pub variants: Vec<Variant>,
}

/// The study's folder, `runs/ablation/`.
pub fn dir(cfg: &Config) -> PathBuf {
    cfg.runs_dir().join(DIR)
}

/// Trains (or reuses) the recipe and every variant of `ablation.variants`, then writes
/// `runs/ablation/ablation.{json,csv,md}` and the charts. `force` retrains every variant.
pub fn run(cfg: &Config, force: bool) -> Result<Ablation> {
    let names: Vec<&str> = std::iter::once(RECIPE)
        .chain(cfg.ablation.variants.iter().map(String::as_str))
        .collect();
    let configs: Vec<Config> = names
        .iter()
        .map(|n| variant_config(cfg, n))
        .collect::<Result<_>>()?;
    let mut variants = Vec::new();
    for (i, (name, c)) in names.iter().zip(&configs).enumerate() {
        println!(
            "ablation {}/{}: {name} ({})",
            i + 1,
            names.len(),
            change_of(name)
        );
        let rec =
            train_cnn_named(c, name, force).with_context(|| format!("ablation variant {name}"))?;
        variants.push(Variant::of(name, &rec));
    }
    let study = Ablation {
        epochs: cfg.ablation.epochs,
        image_size: configs[0].preprocess.image_size,
        seed: cfg.runtime.seed,
        variants,
    };
    study.save(&dir(cfg))?;
    Ok(study)
}

/// The study written by [`run`], if there is one.
pub(crate) fn load(cfg: &Config) -> Result<Ablation> {
    let path = dir(cfg).join(JSON_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no ablation study at {}: run `lab5 ablate`", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not an ablation study", path.display()))
}

impl Ablation {
    /// Writes JSON, CSV, Markdown and the two charts into `dir`.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self)?;
        crate::util::write_atomic(&dir.join(JSON_FILE), json.as_bytes())?;
        let lines: Vec<CsvLine> = self.variants.iter().map(CsvLine::from).collect();
        csv_io::write_rows(&dir.join(CSV_FILE), &lines)?;
        crate::util::write_atomic(&dir.join(MARKDOWN_FILE), self.to_markdown().as_bytes())?;
        self.accuracy_chart()?.save(&dir.join("accuracy"))?;
        self.curves_chart()?.save(&dir.join("val_loss"))?;
        Ok(())
    }

    /// The table in Markdown, accuracies in percent, with the change from the recipe.
    pub fn to_markdown(&self) -> String {
        let recipe_test = self.variants.first().map_or(0.0, |v| v.test_accuracy);
        let mut out = format!(
            "Ablation of the CNN recipe ({} epochs at most, {} px, seed {})\n\n\
             | variant | what is taken out | train % | val % | test % | test vs recipe | gap (points) | best epoch | train s |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            self.epochs, self.image_size, self.seed
        );
        for v in &self.variants {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:+.1} | {:+.1} | {} | {:.0} |",
                v.name,
                v.change,
                100.0 * v.train_accuracy,
                100.0 * v.val_accuracy,
                100.0 * v.test_accuracy,
                100.0 * (v.test_accuracy - recipe_test),
                100.0 * v.gap,
                v.best_epoch,
                v.train_secs
            );
        }
        out
    }

    /// Train, validation and test accuracy per variant, as grouped bars (percent).
    pub(crate) fn accuracy_chart(&self) -> Result<Figure> {
        let names: Vec<String> = self.variants.iter().map(|v| v.name.clone()).collect();
        let pick = |f: fn(&Variant) -> f64| self.variants.iter().map(|v| 100.0 * f(v)).collect();
        let series = [
            ("train".to_string(), pick(|v| v.train_accuracy)),
            ("val".to_string(), pick(|v| v.val_accuracy)),
            ("test".to_string(), pick(|v| v.test_accuracy)),
        ];
        plot::bar_chart(
            "Ablation: accuracy per variant",
            "accuracy (%)",
            &names,
            &series,
        )
    }

    /// Validation loss per epoch, one line per variant.
    pub(crate) fn curves_chart(&self) -> Result<Figure> {
        let lines: Vec<Line> = self
            .variants
            .iter()
            .map(|v| {
                let losses: Vec<f64> = v.history.iter().map(|s| s.val_loss).collect();
                Line::per_epoch(&v.name, &losses)
            })
            .collect();
        plot::line_chart(
            "Ablation: validation loss",
            "epoch",
            "validation loss",
            &lines,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_the_recipe_and_every_variant_flatten_into_hyper_parameters() {
        let cfg = Config::from_json(include_str!("../../config.json")).unwrap();
        let names = std::iter::once(RECIPE).chain(VARIANTS.map(|(name, _)| name));
        for v in names {
            let c = variant_config(&cfg, v).unwrap();
            let settings = crate::train::run::cnn_settings(&c);
            crate::train::board::tests::assert_flattens(&settings, "cnn");
        }
    }

    #[test]
    fn csv_has_one_line_per_variant_with_four_decimals_and_seconds_with_one() {
        let variant = |name: &str, acc: f64| Variant {
            name: name.into(),
            change: change_of(name).into(),
            train_accuracy: acc,
            val_accuracy: 0.9,
            test_accuracy: 0.8812,
            gap: acc - 0.8812,
            test_log_loss: 0.30119,
            best_epoch: 5,
            epochs: 8,
            train_secs: 12.34,
            history: Vec::new(),
        };
        let rows = [variant(RECIPE, 0.95), variant("no_dropout", 0.99)];
        let lines: Vec<CsvLine> = rows.iter().map(CsvLine::from).collect();
        let text = String::from_utf8(csv_io::to_csv(&lines).unwrap()).unwrap();
        assert_eq!(
            text,
            "variant,train_accuracy,val_accuracy,test_accuracy,gap,test_log_loss,best_epoch,epochs,train_secs\n\
             recipe,0.9500,0.9000,0.8812,0.0688,0.3012,5,8,12.3\n\
             no_dropout,0.9900,0.9000,0.8812,0.1088,0.3012,5,8,12.3\n"
        );
    }
}

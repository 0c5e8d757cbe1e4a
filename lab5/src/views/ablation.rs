//! Notebook `03_cnn`, section "Ablation": what batch-norm, dropout and augmentation buy,
//! from `runs/ablation/` (made by `lab5 ablate`, see [`crate::ablation`]).

use crate::ablation;
use crate::config::Config;
use crate::plot::{Note, Shown, Table};
use anyhow::Result;
use polars::prelude::*;

/// How to make the study, shown while there is none.
const HOWTO: &str = "No ablation study yet. `lab5 ablate` (or `make ablate`) trains the recipe \
     of config.json and, per entry of `ablation.variants`, the same recipe without one \
     ingredient (batch-norm, dropout, augmentation, ...), each for `ablation.epochs` epochs at \
     `ablation.image_size` px, into runs/ablation/; then re-run this cell.";

/// The study as a table (accuracies in percent, gap in points), or a note saying how to
/// make it.
pub fn ablation_table(cfg: &Config) -> Result<Shown> {
    let Ok(study) = ablation::load(cfg) else {
        return Ok(Shown::Note(Note(HOWTO.into())));
    };
    let v = &study.variants;
    let pct = |f: fn(&ablation::Variant) -> f64| -> Vec<f64> {
        v.iter().map(|x| (1000.0 * f(x)).round() / 10.0).collect()
    };
    let df = df!(
        "variant" => v.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
        "train %" => pct(|x| x.train_accuracy),
        "val %" => pct(|x| x.val_accuracy),
        "test %" => pct(|x| x.test_accuracy),
        "gap (points)" => pct(|x| x.gap),
        "best epoch" => v.iter().map(|x| x.best_epoch as u32).collect::<Vec<_>>(),
        "train s" => v.iter().map(|x| x.train_secs.round()).collect::<Vec<_>>(),
    )?;
    Ok(Shown::Table(Table(df)))
}

/// Validation loss per epoch of every variant, or the note saying how to make the study.
pub fn ablation_curves(cfg: &Config) -> Result<Shown> {
    match ablation::load(cfg) {
        Ok(study) => Ok(Shown::Figure(study.curves_chart()?)),
        Err(_) => Ok(Shown::Note(Note(HOWTO.into()))),
    }
}

/// Train, validation and test accuracy per variant (bars), or the note.
pub fn ablation_accuracy(cfg: &Config) -> Result<Shown> {
    match ablation::load(cfg) {
        Ok(study) => Ok(Shown::Figure(study.accuracy_chart()?)),
        Err(_) => Ok(Shown::Note(Note(HOWTO.into()))),
    }
}

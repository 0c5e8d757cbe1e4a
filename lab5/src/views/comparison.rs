//! Notebook `06_comparison`: the two models side by side, through [`crate::compare`]; the
//! comparison is measured once and reloaded from `runs/compare/` while both runs are
//! unchanged.

use super::maps::separation_scores;
use super::runs::{predictions, run_record, Model};
use super::{Note, Shown};
use crate::compare::{self, BreedErrors, Comparison, JSON_FILE};
use crate::config::Config;
use crate::data::SplitName;
use crate::plot::{roc_curves, Figure, RocCurve, Table};
use crate::train::metrics::{roc_auc, roc_curve};
use crate::train::record::METRICS_FILE;
use anyhow::Result;
use polars::prelude::df;
use std::path::Path;
use std::time::SystemTime;

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `runs/compare/` holds a comparison made after both runs were recorded.
fn comparison_is_current(cfg: &Config) -> bool {
    let Some(saved) = modified(&compare::dir(cfg).join(JSON_FILE)) else {
        return false;
    };
    [Model::Cnn, Model::Transfer].iter().all(|m| {
        let metrics = cfg.runs_dir().join(m.run_name()).join(METRICS_FILE);
        modified(&metrics).is_some_and(|t| t <= saved)
    })
}

/// The comparison of the CNN and transfer runs: loaded from `runs/compare/` when it is
/// newer than both runs and holds the paired test, the reliability diagrams and the
/// per-breed scores, else (or with `force`) measured now (inference speed of both
/// models) and saved. Shows the table and the verdict. Fails with what to run when a run
/// is missing or was trained with other settings or data.
pub fn comparison(cfg: &Config, force: bool) -> Result<Comparison> {
    run_record(cfg, Model::Cnn)?;
    run_record(cfg, Model::Transfer)?;
    if !force && comparison_is_current(cfg) {
        // A comparison saved by an older lab5 (before the paired test, the reliability
        // diagrams, the per-breed scores, or the rows of today's table) is measured again.
        let complete = |c: &Comparison| {
            c.paired.is_some()
                && c.calibration.is_some()
                && c.breeds.is_some()
                && c.has_current_rows()
        };
        if let Some(c) = compare::load(cfg).ok().filter(complete) {
            return Ok(c);
        }
    }
    compare::compare(cfg)
}

/// Both models' test accuracy per breed with 95 % Wilson intervals, after the breeds
/// each calls the other species most often ([`crate::compare::BreedErrors`], from
/// [`comparison`]); `.chart()` draws the breeds with the most mistakes.
pub fn breed_errors(cfg: &Config) -> Result<BreedErrors> {
    Ok(comparison(cfg, false)?.breeds()?.clone())
}

/// ROC curves of both models on the test split.
pub fn test_roc(cfg: &Config) -> Result<Figure> {
    let curve = |model: Model| -> Result<RocCurve> {
        let test: Vec<_> = predictions(cfg, model)?
            .into_iter()
            .filter(|s| s.split == SplitName::Test)
            .collect();
        let p: Vec<f64> = test.iter().map(|s| s.p_dog).collect();
        let y: Vec<i64> = test.iter().map(|s| s.label.index()).collect();
        Ok(RocCurve {
            name: model.title().to_string(),
            points: roc_curve(&p, &y),
            auc: roc_auc(&p, &y),
        })
    };
    let curves = [curve(Model::Cnn)?, curve(Model::Transfer)?];
    roc_curves("Test split: ROC curves of both models", &curves)
}

/// k-NN accuracy and silhouette of both models' embeddings, per space; a note saying
/// which notebook computes them when one is missing.
pub fn separation_comparison(cfg: &Config) -> Result<Shown> {
    let (Ok(cnn), Ok(transfer)) = (
        separation_scores(cfg, Model::Cnn),
        separation_scores(cfg, Model::Transfer),
    ) else {
        let msg = "The embedding maps of both models are needed: run notebooks `04_embeddings` \
                   and `05_transfer` (or `lab5 run`) first.";
        return Ok(Shown::Note(Note(msg.into())));
    };
    let rows: Vec<(&str, &crate::embed::SpaceScore)> = cnn
        .iter()
        .map(|s| (Model::Cnn.title(), s))
        .chain(transfer.iter().map(|s| (Model::Transfer.title(), s)))
        .collect();
    let f3 = |x: f64| format!("{x:.3}");
    Ok(Shown::Table(Table(df!(
        "model" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "space" => rows.iter().map(|r| r.1.space.clone()).collect::<Vec<_>>(),
        "k-NN accuracy" => rows.iter().map(|r| f3(r.1.scores.knn_accuracy)).collect::<Vec<_>>(),
        "silhouette" => rows.iter().map(|r| f3(r.1.scores.silhouette)).collect::<Vec<_>>(),
    )?)))
}

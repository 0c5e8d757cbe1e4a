//! Notebook `02_labels`: the automatic label check ([`crate::labels::audit`]): zero-shot
//! agreement of the pretrained ImageNet head with our labels, the flagged photos, the
//! rule that flags them, the optional (reversible) exclusion from training, and whether
//! that exclusion changes anything ([`label_check_ablation`]).
//!
//! The backbone pass behind the check is cached in `data/cache/`, so after the first run
//! (about a minute and a half for 2,100 photos on 2 cores) every cell here takes seconds.

use super::data::manifest;
use super::{Note, Shown};
use crate::config::Config;
use crate::data::Manifest;
use crate::labels::audit::{self, Audit, AuditRow};
use crate::plot::{scatter_with_axes, Table};
use anyhow::Result;
use polars::prelude::df;

/// Runs the label check on the data set (reusing the cached backbone pass) and writes
/// `data/audit.csv`.
pub(crate) fn label_check(cfg: &Config) -> Result<Audit> {
    let m = manifest(cfg)?;
    let device = crate::runtime::init(cfg)?;
    let report = Audit::run(cfg, &m, device)?;
    report.save_csv(&audit::csv_path(cfg))?;
    Ok(report)
}

/// The check's summary: agreement overall and per class, flagged counts, the rule.
pub fn label_check_table(cfg: &Config) -> Result<Table> {
    Ok(Table(label_check(cfg)?.summary().to_frame()?))
}

/// The flagged photos (at most `max`, most confident first), or a note when none is.
pub fn flagged_photos(cfg: &Config, max: usize, cols: usize) -> Result<Shown> {
    let report = label_check(cfg)?;
    if report.flagged().is_empty() {
        let n = report.rows.len();
        return Ok(Shown::Note(Note(format!(
            "The label check flagged none of the {n} photos."
        ))));
    }
    Ok(Shown::Figure(report.flagged_grid(max, cols)?))
}

/// The flagged images as a table: id, label, zero-shot probabilities, neighbours, verdict.
pub fn flagged_table(cfg: &Config) -> Result<Table> {
    let report = label_check(cfg)?;
    let rows = report.flagged();
    let p = |f: fn(&AuditRow) -> f64| rows.iter().map(|r| round3(f(r))).collect::<Vec<_>>();
    let df = df!(
        "id" => rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        "label" => rows.iter().map(|r| r.label.name()).collect::<Vec<_>>(),
        "p_cat" => p(|r| r.zero_shot.p_cat),
        "p_dog" => p(|r| r.zero_shot.p_dog),
        "p_neither" => p(|r| r.zero_shot.p_neither),
        "other_label_neighbours" => p(|r| r.neighbour_share),
        "verdict" => rows.iter().map(|r| r.verdict.name()).collect::<Vec<_>>(),
        "excluded" => rows.iter().map(|r| r.excluded).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The rule at work: every photo at (the head's probability for the other class minus
/// the one for its label, share of its nearest neighbours labelled the other class),
/// coloured by verdict. Suspected mislabels sit top right; `neither` anywhere.
pub fn rule_scatter(cfg: &Config) -> Result<Shown> {
    let report = label_check(cfg)?;
    let point = |r: &AuditRow| {
        let z = r.zero_shot;
        let (own, other) = match r.label {
            crate::data::Class::Cat => (z.p_cat, z.p_dog),
            crate::data::Class::Dog => (z.p_dog, z.p_cat),
        };
        (other - own, r.neighbour_share)
    };
    let points: Vec<(f64, f64)> = report.rows.iter().map(point).collect();
    let groups: Vec<String> = report
        .rows
        .iter()
        .map(|r| r.verdict.name().into())
        .collect();
    let axes = (
        "p(other class) - p(its label), zero-shot",
        "share of the nearest photos labelled the other class",
    );
    let title = "Label check: every photo by the two views of the pretrained network";
    Ok(Shown::Figure(scatter_with_axes(
        &points, &groups, title, axes,
    )?))
}

/// With `apply`, marks the flagged images as excluded from training in the manifest
/// (reversible with `undo`); with `undo`, clears every exclusion; otherwise only says
/// how many are excluded. Nothing is ever deleted.
pub fn exclude_flagged(cfg: &Config, apply: bool, undo: bool) -> Result<Note> {
    let path = Manifest::path_in(&cfg.data_dir());
    let mut m = manifest(cfg)?;
    let msg = if undo {
        format!("cleared {} exclusion(s)", audit::undo(&mut m))
    } else if apply {
        let report = label_check(cfg)?;
        format!("excluded {} more image(s)", audit::apply(&mut m, &report))
    } else {
        String::from("nothing changed (set apply = true to exclude the flagged images)")
    };
    if apply || undo {
        m.save(&path)?;
    }
    let excluded = m.records.iter().filter(|r| r.is_excluded()).count();
    Ok(Note(format!(
        "{msg}; {excluded} of {} images are now excluded from training.",
        m.records.len()
    )))
}

/// Does the label check matter? The transfer head trained on every photo and without the
/// photos the check flags, both scored on the same test photos
/// ([`crate::ablation::label_check`]; `lab5 ablate --label-check`): two trainings of the
/// head on the cached backbone features (seconds on a free CPU), reused while current;
/// CNN arms made by `lab5 ablate --label-check --cnn` are shown too. `.chart()` draws
/// the test accuracies.
pub fn label_check_ablation(
    cfg: &Config,
) -> Result<crate::ablation::label_check::LabelCheckAblation> {
    crate::ablation::label_check::run(cfg, false, false)
}

/// The chart of the label check's ablation saved by [`label_check_ablation`] (or `lab5
/// ablate --label-check`): test accuracy on the unflagged test photos, per model, trained
/// on every photo and without the flagged ones.
pub fn label_check_ablation_chart(cfg: &Config) -> Result<crate::plot::Figure> {
    crate::ablation::label_check::load(cfg)?.chart()
}

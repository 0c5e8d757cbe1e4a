//! The robustness check (`lab5 robustness --run runs/<run>`): a trained run scored on
//! its test split under a fixed, seeded suite of common corruptions in the spirit of
//! ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
//! Corruptions and Perturbations", ICLR 2019): brightness, contrast, Gaussian noise,
//! Gaussian blur, JPEG compression, pixelation, zoom, rotation and greyscale, three
//! severities each ([`suite`]).
//!
//! Why: a test accuracy says how the model does on photos like its training photos. The
//! photos a user brings are darker, blurrier, tilted, compressed, framed differently; the
//! accuracy under corruptions, and its drop from clean, says how much of the model's
//! skill survives that. As in ImageNet-C, the corruptions are applied to the model's
//! input image (after resize and centre crop, before normalisation), and the same
//! corrupted images are used for every model of the same input size.
//!
//! Writes `runs/<run>/robustness.json` ([`Robustness`]), the chart
//! `runs/<run>/figures/robustness.{svg,png}` and the headline figures into the run's
//! TensorBoard folder.

pub(crate) mod corrupt;
mod examples;
mod measure;
mod result;
pub(crate) mod suite;

pub use examples::examples;
pub use measure::measure;
pub use result::Robustness;
pub(crate) use suite::SuiteSettings;
pub use suite::{Corruption, SEVERITIES, SUITE};

use crate::config::Config;
use crate::train::run::load_manifest;
use crate::train::RunRecord;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The result file inside the run folder.
pub const ROBUSTNESS_FILE: &str = "robustness.json";
/// The chart's file stem inside the run folder (`.svg` and `.png` are added).
pub(crate) const CHART_STEM: &str = "figures/robustness";

/// `runs/<run>/robustness.json`.
pub fn result_path(run_dir: &Path) -> PathBuf {
    run_dir.join(ROBUSTNESS_FILE)
}

/// `runs/<run>/figures/robustness` (add `.svg` or `.png`).
pub fn chart_stem(run_dir: &Path) -> PathBuf {
    run_dir.join(CHART_STEM)
}

/// Tags of the results in the run's TensorBoard folder (metrics of its HParams row).
pub const TENSORBOARD_TAGS: [&str; 3] = [
    "final/robustness_clean_accuracy",
    "final/robustness_mean_corrupted_accuracy",
    "final/robustness_drop_from_clean",
];

/// The event file holding [`TENSORBOARD_TAGS`] in a run's TensorBoard folder: one per
/// run, replaced by each new measurement (so re-measuring does not pile up points).
pub const TENSORBOARD_FILE: &str = "events.out.tfevents.robustness.lab5";

/// Measures the run in `run_dir` ([`measure`]) and writes `robustness.json` and the
/// chart into it (each file atomically), and the clean and mean corrupted accuracy and
/// their difference into its TensorBoard folder ([`TENSORBOARD_TAGS`] at the run's last
/// epoch, in [`TENSORBOARD_FILE`]; best-effort: a failure there is a warning).
pub fn check(cfg: &Config, run_dir: &Path) -> Result<Robustness> {
    let r = measure(cfg, run_dir)?;
    r.chart()?.save(&chart_stem(run_dir))?;
    r.save(&result_path(run_dir))?;
    let rec = RunRecord::load(run_dir)?;
    let values = [
        r.clean_accuracy,
        r.mean_corrupted_accuracy,
        r.drop_from_clean,
    ];
    let tagged: Vec<(&str, f64)> = TENSORBOARD_TAGS.into_iter().zip(values).collect();
    let step = rec.metrics.history.len() as i64;
    let dir = rec.tensorboard_dir();
    if let Err(e) = crate::train::board::replace_events(&dir, TENSORBOARD_FILE, step, &tagged) {
        crate::train::board::warn_skipped("the robustness results", &e);
    }
    Ok(r)
}

/// The saved result of the run in `run_dir`.
pub(crate) fn load(run_dir: &Path) -> Result<Robustness> {
    Robustness::load(&result_path(run_dir))
}

/// The saved result when it was measured with this suite and seed on the run's current
/// weights and on the current data, and its chart is there; else `None`.
pub fn current(cfg: &Config, run_dir: &Path) -> Option<Robustness> {
    let saved = load(run_dir).ok()?;
    let record = RunRecord::load(run_dir).ok()?;
    let manifest = load_manifest(cfg).ok()?;
    let now = measure::identity(cfg, &record, &manifest).ok()?;
    let chart = chart_stem(run_dir).with_extension("svg");
    (saved.identity == now && chart.is_file()).then_some(saved)
}

/// The result of the run in `run_dir`: the saved one when it is [`current`] and not
/// `force`, else measured and written ([`check`]). The flag says whether it was reused.
pub fn check_or_reuse(cfg: &Config, run_dir: &Path, force: bool) -> Result<(Robustness, bool)> {
    if !force {
        if let Some(r) = current(cfg, run_dir) {
            return Ok((r, true));
        }
    }
    Ok((check(cfg, run_dir)?, false))
}

//! The nine steps of `lab5 run`: what each depends on (its key), what it leaves on disk
//! (its stamp), and how it runs. Each step calls the same library function as its own
//! command (`lab5 import`, `audit`, `train`, `robustness`, `embed`, `compare`).

use super::state::{folder_listing, Entry, Hasher};
use super::Step;
use crate::config::Config;
use crate::data::collect::{collect_with, CollectOptions};
use crate::data::import::{import_folder_with, ImportOptions};
use crate::data::Manifest;
use crate::embed::SEPARATION_FILE;
use crate::embed::{
    embed_run, has_projector, write_projector, Projections, EMBEDDINGS_FILE, FIGURES_DIR,
    PROJECTIONS_FILE,
};
use crate::labels::audit::{self, Audit};
use crate::models::backbone;
use crate::robustness::{self, SuiteSettings};
use crate::train::record::{BEST_WEIGHTS, METRICS_FILE};
use crate::train::run::{load_manifest, CNN_RUN};
use crate::train::transfer::TRANSFER_RUN;
use crate::train::{train_cnn, train_transfer, RunRecord};
use crate::views::{self, DataSource, Model};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File stem of the label check's photo grid inside the data folder (as `lab5 audit`).
const FLAGGED_STEM: &str = "audit-flagged";

/// What a step that ran reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Done {
    /// One short line: what it produced.
    pub note: String,
    /// The main output file, where its name varies.
    pub output: Option<PathBuf>,
}

/// The key of `step`'s inputs: the settings it reads and the stamps of its inputs.
pub(crate) fn key(cfg: &Config, step: Step, stamps: &HashMap<Step, String>) -> Result<String> {
    let mut h = Hasher::default()
        .text("step", step.name())
        .json("config", &settings(cfg, step)?)?;
    for dep in step.deps() {
        h = h.text(dep.name(), stamps.get(dep).map_or("", String::as_str));
    }
    Ok(h.finish())
}

/// The settings `step` depends on.
fn settings(cfg: &Config, step: Step) -> Result<Value> {
    let t = &cfg.transfer;
    Ok(match step {
        Step::Data => data_settings(cfg)?,
        Step::Audit => json!({
            "audit": cfg.audit, "size": t.image_size, "resize": t.resize_shorter,
            "weights": backbone::Kind::EfficientNetLite0.weights_path(cfg),
        }),
        Step::TrainCnn => crate::train::run::cnn_settings(cfg),
        Step::TrainTransfer => crate::train::transfer::settings(cfg),
        Step::RobustnessCnn => json!(SuiteSettings::new(
            cfg.preprocess.image_size,
            cfg.runtime.seed
        )),
        Step::EmbedCnn | Step::EmbedTransfer => json!(cfg.embed),
        Step::Compare | Step::Report => json!(cfg.report),
    })
}

/// The manifest's format: part of the data step's settings, so a data folder written by
/// an older lab5 (without perceptual hashes) is imported or collected again by `lab5 run`.
const MANIFEST_FORMAT: &str = "phash-v1";

/// Where the images come from and, for a folder, a fingerprint of its files.
fn data_settings(cfg: &Config) -> Result<Value> {
    let d = &cfg.data;
    let common = json!({
        "split": d.split, "seed": d.seed, "per_class": d.per_class,
        "unseen_breeds": d.unseen_breeds, "unseen_breed_share": d.unseen_breed_share,
        "near_duplicate_distance": d.near_duplicate_distance, "manifest": MANIFEST_FORMAT,
    });
    Ok(match views::data_source(cfg)? {
        DataSource::Api => json!({"source": "api", "data": common}),
        DataSource::Folder(_) => {
            let dir = cfg.resolve(&d.folder);
            let listing = Hasher::default().json("files", &folder_listing(&dir)?)?;
            json!({"source": dir, "files": listing.finish(), "data": common})
        }
    })
}

/// The stamp of `step`'s outputs, or `None` when one is missing.
pub(crate) fn stamp(cfg: &Config, step: Step, entry: Option<&Entry>) -> Option<String> {
    let h = Hasher::default();
    let h = match step {
        Step::Data => h.file(&Manifest::path_in(&cfg.data_dir())),
        Step::Audit => h.file(&audit::csv_path(cfg)),
        Step::TrainCnn => run_stamp(cfg, CNN_RUN),
        Step::RobustnessCnn => robustness_stamp(cfg, CNN_RUN),
        Step::TrainTransfer => run_stamp(cfg, TRANSFER_RUN),
        Step::EmbedCnn => embed_stamp(cfg, CNN_RUN),
        Step::EmbedTransfer => embed_stamp(cfg, TRANSFER_RUN),
        Step::Compare => compare_stamp(cfg),
        Step::Report => h.file(entry?.output.as_deref()?),
    };
    h.map(Hasher::finish)
}

fn run_stamp(cfg: &Config, name: &str) -> Option<Hasher> {
    let dir = cfg.runs_dir().join(name);
    dir.join(BEST_WEIGHTS).is_file().then_some(())?;
    Hasher::default().file(&dir.join(METRICS_FILE))
}

/// Embeddings, scores and the maps' coordinates (not their timings), with the charts.
fn embed_stamp(cfg: &Config, name: &str) -> Option<Hasher> {
    let dir = cfg.runs_dir().join(name);
    let chart = dir.join(FIGURES_DIR).join("umap_class.svg");
    (chart.is_file() && has_projector(&dir)).then_some(())?;
    let maps = Projections::load(&dir.join(PROJECTIONS_FILE)).ok()?;
    let h = Hasher::default().file(&dir.join(EMBEDDINGS_FILE))?;
    let h = h.file(&dir.join(SEPARATION_FILE))?;
    h.json("maps", &(&maps.tsne, &maps.umap)).ok()
}

/// The robustness results (not their timings), with the chart.
fn robustness_stamp(cfg: &Config, name: &str) -> Option<Hasher> {
    let dir = cfg.runs_dir().join(name);
    let chart = robustness::chart_stem(&dir).with_extension("svg");
    chart.is_file().then_some(())?;
    let r = robustness::load(&dir).ok()?;
    let results = (&r.identity, r.clean_accuracy, &r.results);
    Hasher::default().json("robustness", &results).ok()
}

fn compare_stamp(cfg: &Config) -> Option<Hasher> {
    let dir = crate::compare::dir(cfg);
    let others = [crate::compare::CSV_FILE, crate::compare::MARKDOWN_FILE];
    others.iter().all(|f| dir.join(f).is_file()).then_some(())?;
    Hasher::default().file(&dir.join(crate::compare::JSON_FILE))
}

/// Runs `step`; `forced` retrains even when a matching run exists.
pub(crate) fn execute(cfg: &Config, step: Step, forced: bool) -> Result<Done> {
    match step {
        Step::Data => get_data(cfg),
        Step::Audit => label_check(cfg),
        Step::TrainCnn => trained(&train_cnn(cfg, forced)?),
        Step::RobustnessCnn => robust(cfg, Model::Cnn, forced),
        Step::TrainTransfer => trained(&train_transfer(cfg, forced)?),
        Step::EmbedCnn => embed(cfg, Model::Cnn),
        Step::EmbedTransfer => embed(cfg, Model::Transfer),
        Step::Compare => compared(cfg),
        Step::Report => report(cfg),
    }
}

fn get_data(cfg: &Config) -> Result<Done> {
    let how = match views::data_source(cfg)? {
        DataSource::Api => {
            let opts = CollectOptions {
                progress: true,
                ..Default::default()
            };
            collect_with(cfg, &opts)?;
            "collected from The Cat API / The Dog API".to_string()
        }
        DataSource::Folder(why) => {
            let dir = cfg.resolve(&cfg.data.folder);
            let r = import_folder_with(cfg, &dir, &ImportOptions { progress: true })?;
            format!("{} new from {} ({why})", r.imported_total(), dir.display())
        }
    };
    let n = load_manifest(cfg)?.records.len();
    Ok(Done {
        note: format!("{n} images; {how}"),
        output: None,
    })
}

fn label_check(cfg: &Config) -> Result<Done> {
    let manifest = load_manifest(cfg)?;
    let device = crate::runtime::init(cfg)?;
    let report = Audit::run(cfg, &manifest, device)?;
    report.save_csv(&audit::csv_path(cfg))?;
    let (max, cols) = (cfg.report.flagged_photos, cfg.report.grid_cols);
    if !report.flagged().is_empty() && max > 0 {
        let stem = cfg.data_dir().join(FLAGGED_STEM);
        report.flagged_grid(max, cols)?.save(&stem)?;
    }
    let s = report.summary();
    let note = format!(
        "zero-shot agreement {:.1} %, {} flagged (`lab5 audit --apply` excludes them)",
        100.0 * s.agreement_rate(),
        s.flagged()
    );
    Ok(Done { note, output: None })
}

fn trained(rec: &RunRecord) -> Result<Done> {
    let m = &rec.metrics;
    let note = format!(
        "test accuracy {:.1} %, gap {:+.1} points, {} epochs",
        100.0 * m.metrics.test.accuracy,
        100.0 * m.gap.train_minus_test,
        m.history.len()
    );
    Ok(Done { note, output: None })
}

fn robust(cfg: &Config, model: Model, forced: bool) -> Result<Done> {
    let dir = cfg.runs_dir().join(model.run_name());
    let (r, _) = robustness::check_or_reuse(cfg, &dir, forced)?;
    let note = format!(
        "accuracy clean {:.1} %, under corruptions {:.1} % (drop {:.1} points)",
        100.0 * r.clean_accuracy,
        100.0 * r.mean_corrupted_accuracy,
        100.0 * r.drop_from_clean
    );
    Ok(Done { note, output: None })
}

fn embed(cfg: &Config, model: Model) -> Result<Done> {
    let dir = cfg.runs_dir().join(model.run_name());
    views::compute_embeddings(cfg, model)?;
    let out = embed_run(&dir, &cfg.embed)?;
    let projector = write_projector(cfg, &dir, &out.set)?;
    let scores: Vec<String> = out
        .scores
        .iter()
        .map(|s| format!("{} {:.3}", s.space, s.scores.knn_accuracy))
        .collect();
    let note = format!(
        "{} vectors; k-NN accuracy {}; t-SNE {:.1} s, UMAP {:.1} s; TensorBoard projector {:.1} s",
        out.set.len(),
        scores.join(", "),
        out.maps.tsne_secs,
        out.maps.umap_secs,
        projector.secs
    );
    Ok(Done { note, output: None })
}

fn compared(cfg: &Config) -> Result<Done> {
    let c = crate::compare::compare(cfg)?;
    let speed = |m: &crate::compare::ModelSummary| m.inference.images_per_sec;
    let note = format!(
        "test accuracy CNN {:.1} % vs transfer {:.1} %; inference {:.0} vs {:.0} photos/s",
        100.0 * c.cnn.metrics.test.accuracy,
        100.0 * c.transfer.metrics.test.accuracy,
        speed(&c.cnn),
        speed(&c.transfer)
    );
    Ok(Done { note, output: None })
}

fn report(cfg: &Config) -> Result<Done> {
    let path = crate::report::write(cfg)?;
    Ok(Done {
        note: path.display().to_string(),
        output: Some(path),
    })
}

/// The report file a previous run recorded, if it still exists.
pub(crate) fn recorded_output(entry: Option<&Entry>) -> Option<&Path> {
    entry?.output.as_deref().filter(|p| p.is_file())
}

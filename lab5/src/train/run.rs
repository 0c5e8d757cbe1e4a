//! One-call training for notebooks and the CLI: [`train_cnn`] loads the manifest and the
//! preprocessing cache, builds the CNN, trains it and records the run in `runs/cnn/`; a
//! finished run trained with the same settings on the same data is reused instead (unless
//! `force`). [`train_and_record`] is the model-independent part (the transfer model uses
//! it too): staging folder, training, checkpoints, final metrics, predictions, commit.

use super::board;
use super::checkpoint;
use super::dataset::{ImageSet, Splits};
use super::metrics;
use super::monitor::Monitor;
use super::record::*;
use super::staging::Staging;
use super::tensorboard::EventWriter;
use super::trainer::{fit, score, Fitted, Hyper};
use crate::config::Config;
use crate::data::cache::{self, Cached, DataCost};
use crate::data::loader::{Normalize, IMAGENET};
use crate::data::Manifest;
use crate::models::{Cnn, ModelSpec, Net, NormSpec, Summary};
use anyhow::{bail, Result};
use std::path::Path;
use std::time::Instant;
use tch::Device;

/// Default run name of the CNN.
pub(crate) const CNN_RUN: &str = "cnn";

/// What a training run needs besides the model and the data.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Run name: the folder `runs/<name>/`.
    pub name: String,
    /// How to rebuild the model later.
    pub model: ModelSpec,
    /// Hyper-parameters.
    pub hyper: Hyper,
    /// Key of the data (see [`crate::data::cache::cache_key`]).
    pub data_key: String,
    /// Seconds already spent preparing the data.
    pub preprocess_secs: f64,
    /// What the data costs from the raw photos, and what of it this run computed.
    pub data_cost: DataCost,
    /// The other step that needs the same data work, if any (recorded, and said in the
    /// comparison's time table).
    pub data_shared_with: Option<String>,
    /// The settings the run depends on (what run reuse compares), shown as its
    /// hyper-parameters in TensorBoard.
    pub settings: serde_json::Value,
}

/// Trains `net` on `data` as described by `plan` and records the run in
/// `runs/<plan.name>/`, replacing a previous run of that name only when everything
/// succeeded. Returns the loaded record.
pub(crate) fn train_and_record(
    cfg: &Config,
    plan: &Plan,
    net: &dyn Net,
    data: &Splits,
    device: Device,
) -> Result<RunRecord> {
    let started = Instant::now();
    let holdout = super::breeds::Holdout::of(cfg)?;
    let staging = Staging::create(&cfg.runs_dir(), &plan.name)?;
    let summary = net.summary()?;
    println!("{summary}");
    println!("training on {device:?} in {}", net.precision());
    let tb = staging.dir().join(&cfg.tensorboard.subdir);
    let (fitted, mut monitor) = train_with_monitor(cfg, plan, net, data, device, &tb)?;
    let eval_started = Instant::now();
    let (final_metrics, scored) = save_results(staging.dir(), net, data, &fitted, plan, device)?;
    let trained = Trained {
        summary: &summary,
        precision: net.precision(),
        fitted: &fitted,
    };
    let mut record = assemble(plan, &trained, data, final_metrics);
    record.metrics.unseen_breeds = holdout.report_run(staging.dir())?;
    record.metrics.durations.eval_secs = eval_started.elapsed().as_secs_f64();
    if let Some(w) = monitor.writer() {
        log_end(w, cfg, &record, &scored);
    }
    record.metrics.durations.total_secs = plan.preprocess_secs + started.elapsed().as_secs_f64();
    record.save_to(staging.dir())?;
    drop(monitor); // closes the event file before the folder moves
    record.dir = cfg.runs_dir().join(&plan.name);
    staging.commit(&record.dir)?;
    println!("{record}");
    Ok(record)
}

/// Runs the training loop with a progress bar, epoch lines and TensorBoard in `tb` (the
/// run's hyper-parameters first); returns the monitor, whose writer the run's final
/// summaries go to.
fn train_with_monitor(
    cfg: &Config,
    plan: &Plan,
    net: &dyn Net,
    data: &Splits,
    device: Device,
    tb: &Path,
) -> Result<(Fitted, Monitor)> {
    let steps = data
        .train
        .len()
        .div_ceil(plan.hyper.train.batch_size.max(1));
    let mut monitor = Monitor::new(plan.hyper.train.epochs, steps, Some(tb), &cfg.tensorboard)?;
    if let Some(w) = monitor.writer() {
        let start = board::hyper_parameters(&plan.settings, &plan.model.kind, &plan.name)
            .and_then(|h| board::log_start(w, h, &plan.name));
        if let Err(e) = start {
            board::warn_skipped("the run's hyper-parameters (HParams tab)", &e);
        }
    }
    let fitted = fit(net, data, &plan.hyper, device, &mut monitor)?;
    let (log, train) = (monitor.logging_secs(), fitted.train_secs);
    println!(
        "TensorBoard images and histograms: {log:.2} s of the {train:.1} s training loop ({:.2} %)",
        100.0 * log / train.max(1e-9)
    );
    Ok((fitted, monitor))
}

/// Writes the end-of-run TensorBoard summaries ([`board::log_end`]: final metrics,
/// confusion matrix, ROC curves, mistakes, HParams session end) and prints the seconds
/// they took; they are timed apart from the evaluation (`durations.eval_secs`) and from
/// the training loop's logging, and counted in `durations.total_secs`. Best-effort: a
/// failure is printed as a warning and the trained run is kept.
fn log_end(w: &mut EventWriter, cfg: &Config, record: &RunRecord, scored: &[Scored]) {
    let started = Instant::now();
    match board::log_end(w, cfg, record, scored) {
        Ok(()) => println!(
            "TensorBoard final metrics and images: {:.2} s after evaluation",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => board::warn_skipped("the final metrics and images", &e),
    }
}

/// Saves last and best weights, then scores every split with the best weights, writes
/// `predictions.csv` and returns the final metrics with those rows.
fn save_results(
    dir: &Path,
    net: &dyn Net,
    data: &Splits,
    fitted: &Fitted,
    plan: &Plan,
    device: Device,
) -> Result<(SplitMetrics, Vec<Scored>)> {
    checkpoint::save(net.var_store(), &dir.join(LAST_WEIGHTS))?;
    fitted.restore_best(net)?;
    if plan.hyper.precise_bn {
        let started = Instant::now();
        let layers = super::precise_bn::recompute(net, data.train.as_ref(), device)?;
        let secs = started.elapsed().as_secs_f64();
        println!("precise BN: statistics of {layers} batch-norm layers recomputed on the training photos in {secs:.1} s");
    }
    checkpoint::save(net.var_store(), &dir.join(BEST_WEIGHTS))?;
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for (name, set) in data.named() {
        let s = score(net, set, plan.hyper.train.batch_size, device)?;
        let labels = set.labels();
        rows.extend(scored_rows(name, set.ids(), &labels, &s.p_dog)?);
        all.push(metrics::compute(&s.p_dog, &labels));
    }
    crate::util::csv_io::write_rows(&dir.join(PREDICTIONS_FILE), &rows)?;
    let [train, val, test]: [metrics::Metrics; 3] = all
        .try_into()
        .map_err(|_| anyhow::anyhow!("three splits expected"))?;
    Ok((SplitMetrics { train, val, test }, rows))
}

/// The `predictions.csv` rows of one split.
fn scored_rows(split: &str, ids: &[String], labels: &[i64], p: &[f64]) -> Result<Vec<Scored>> {
    let split = crate::data::SplitName::parse(split)
        .ok_or_else(|| anyhow::anyhow!("unknown split {split:?}"))?;
    let row = |((id, y), p): ((&String, &i64), &f64)| Scored {
        id: id.clone(),
        split,
        label: crate::data::Class::from_index(*y),
        p_dog: *p,
    };
    Ok(ids.iter().zip(labels).zip(p).map(row).collect())
}

fn durations(plan: &Plan, fitted: &Fitted) -> Durations {
    Durations {
        preprocess_secs: plan.preprocess_secs,
        train_secs: fitted.train_secs,
        to_best_secs: fitted.secs_to_best,
        eval_secs: 0.0,
        total_secs: 0.0,
        cold_data_secs: Some(plan.data_cost.cold_secs),
        data_computed_secs: plan.data_cost.computed_secs,
        data_shared_with: plan.data_shared_with.clone(),
    }
}

fn sizes(data: &Splits) -> SplitSizes {
    let [train, val, test] = data.named().map(|(_, set)| set.len());
    SplitSizes { train, val, test }
}

/// What the training loop produced, for the run record.
struct Trained<'a> {
    summary: &'a Summary,
    precision: &'static str,
    fitted: &'a Fitted,
}

/// The run record from its parts (durations of evaluation and total filled in later).
fn assemble(plan: &Plan, t: &Trained, data: &Splits, m: SplitMetrics) -> RunRecord {
    let (summary, fitted) = (t.summary, t.fitted);
    let metrics = RunMetrics {
        name: plan.name.clone(),
        kind: plan.model.kind.clone(),
        params: summary.total_params(),
        trainable_params: summary.trainable_params(),
        data_key: plan.data_key.clone(),
        sizes: sizes(data),
        config: plan.model.config.clone(),
        history: fitted.history.clone(),
        best_epoch: fitted.best_epoch,
        stopped_early: fitted.stopped_early,
        durations: durations(plan, fitted),
        gap: Gap::of(&m),
        metrics: m,
        precision: t.precision.to_string(),
        unseen_breeds: None,
    };
    let model = plan.model.clone();
    RunRecord {
        dir: Default::default(),
        model,
        metrics,
    }
}

/// The normalisation the CNN uses.
pub fn cnn_norm() -> Normalize {
    IMAGENET
}

/// The CNN's model description for this config.
pub(crate) fn cnn_spec(cfg: &Config) -> ModelSpec {
    let n = cnn_norm();
    ModelSpec {
        kind: crate::models::cnn::KIND.to_string(),
        image_size: cfg.preprocess.image_size,
        resize_shorter: cfg.preprocess.resize_shorter,
        normalize: NormSpec {
            mean: n.mean,
            std: n.std,
        },
        config: cfg.clone(),
    }
}

/// The manifest of the data folder; fails with what to run when there is none.
pub fn load_manifest(cfg: &Config) -> Result<Manifest> {
    Manifest::load_required(
        &cfg.data_dir(),
        "run `lab5 import` (or `lab5 collect`) first",
    )
}

/// Key of the data a CNN trained with `cfg` on `manifest` would see.
pub(crate) fn cnn_data_key(cfg: &Config, manifest: &Manifest) -> String {
    let p = &cfg.preprocess;
    cache::cache_key(manifest, p.image_size as u32, p.resize_shorter as u32)
}

/// The settings a CNN run depends on: the `cnn` section, preprocessing, augmentation and
/// the seed. Run reuse ([`train_cnn`]) and the pipeline's `train-cnn` key both use this.
pub(crate) fn cnn_settings(cfg: &Config) -> serde_json::Value {
    serde_json::json!({
        "cnn": cfg.cnn, "preprocess": cfg.preprocess, "augment": cfg.augment,
        "seed": cfg.runtime.seed,
    })
}

/// The finished run `runs/<name>/` when `same(recorded config, recorded data key)` says
/// it was trained with the settings and data `cfg` would use now; else `None` (with a
/// note saying why, when a run exists).
pub(crate) fn reusable_run(
    cfg: &Config,
    name: &str,
    same: impl Fn(&Config, &str) -> bool,
) -> Option<RunRecord> {
    let dir = cfg.runs_dir().join(name);
    let rec = RunRecord::load(&dir).ok()?;
    if !same(&rec.metrics.config, &rec.metrics.data_key) || !rec.best_weights().is_file() {
        println!(
            "{} was trained with other settings or data: training again",
            dir.display()
        );
        return None;
    }
    println!(
        "reusing the finished run {} (to train again: `force = true` in a notebook, `lab5 train` without --reuse)",
        dir.display()
    );
    Some(rec)
}

/// The finished CNN run `runs/<name>/` when it matches `cfg` and the data.
fn reusable_cnn(cfg: &Config, name: &str, manifest: &Manifest) -> Option<RunRecord> {
    let key = cnn_data_key(cfg, manifest);
    let settings = cnn_settings(cfg);
    reusable_run(cfg, name, |old, old_key| {
        cnn_settings(old) == settings && old_key == key
    })
}

/// Trains the CNN of `cfg` on the manifest's splits and records it in `runs/cnn/`; with
/// `force == false` a finished run with the same settings and data is loaded instead.
pub fn train_cnn(cfg: &Config, force: bool) -> Result<RunRecord> {
    train_cnn_named(cfg, CNN_RUN, force)
}

/// The photos at `augment.crop_source` pixels that training crops are cut from (a second
/// preprocessing cache: shorter side resized to that size, centre-cropped to it), or
/// `None` when the option is off.
///
/// # Errors
/// Decoding fails, or the two caches disagree about the train split's photos.
/// The second cache training crops are cut from (`augment.crop_source`), if configured,
/// with what it costs (zero when there is none).
fn crop_source(
    cfg: &Config,
    manifest: &Manifest,
    cached: &Cached,
) -> Result<(Option<Cached>, DataCost)> {
    let side = cfg.augment.crop_source;
    if side == 0 {
        return Ok((None, DataCost::default()));
    }
    let (source, cost) = cache::load_or_build_costed(cfg, manifest, side, side)?;
    if source.train.ids != cached.train.ids {
        bail!("the {side}-pixel crop source and the evaluation cache list different training photos: delete data/cache and retrain");
    }
    Ok((Some(source), cost))
}

/// [`train_cnn`] recording the run as `runs/<name>/` (the ablation study's variants).
pub(crate) fn train_cnn_named(cfg: &Config, name: &str, force: bool) -> Result<RunRecord> {
    let manifest = load_manifest(cfg)?;
    train_cnn_on(cfg, (&manifest, &manifest), name, force)
}

/// [`train_cnn`] on the splits of `kept`, a copy of the manifest `source` with more
/// exclusions (the label check's ablation), recorded as `runs/<name>/`. The tensor cache
/// is `source`'s, narrowed to `kept`'s rows in memory, so no other cache is written.
pub(crate) fn train_cnn_on(
    cfg: &Config,
    (source, kept): (&Manifest, &Manifest),
    name: &str,
    force: bool,
) -> Result<RunRecord> {
    if !force {
        if let Some(rec) = reusable_cnn(cfg, name, kept) {
            println!("{rec}");
            return Ok(rec);
        }
    }
    let device = crate::runtime::init(cfg)?;
    let started = Instant::now();
    let p = &cfg.preprocess;
    let (cached, eval_cost) =
        cache::load_or_build_costed(cfg, source, p.image_size, p.resize_shorter)?;
    let (source_crops, crops_cost) = crop_source(cfg, source, &cached)?;
    let data_cost = DataCost {
        cold_secs: eval_cost.cold_secs + crops_cost.cold_secs,
        computed_secs: eval_cost.computed_secs + crops_cost.computed_secs,
    };
    let cached = cached.restricted_to(kept)?;
    let source_crops = source_crops.map(|c| c.restricted_to(kept)).transpose()?;
    let data = ImageSet::splits_with_source(cached, source_crops, &cfg.augment, cnn_norm());
    tch::manual_seed(cfg.runtime.seed as i64);
    let net = Cnn::new(&cfg.cnn, p.image_size, device)?;
    let plan = Plan {
        name: name.to_string(),
        model: cnn_spec(cfg),
        hyper: Hyper::cnn(cfg),
        data_key: cnn_data_key(cfg, kept),
        preprocess_secs: started.elapsed().as_secs_f64(),
        data_cost,
        data_shared_with: None,
        settings: cnn_settings(cfg),
    };
    train_and_record(cfg, &plan, &net, &data, device)
}

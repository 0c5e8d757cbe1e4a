//! One-call training of the transfer model ([`crate::models::transfer`]) for notebooks
//! and `lab5 train transfer`: the backbone's features come from the shared backbone pass
//! (computed once per image, cached on disk; the label check reads the same pass), the
//! head trains on them with the CNN's trainer (AdamW, one-cycle, early stopping,
//! TensorBoard, checkpoints, `metrics.json`), and the run is recorded in
//! `runs/transfer/`. With `transfer.unfreeze_blocks > 0` or `transfer.augment` the model
//! trains on augmented images through the backbone instead (much slower on a CPU).

use super::dataset::{Dataset, FeatureSet, ImageSet, Splits};
use super::record::RunRecord;
use super::run::{load_manifest, train_and_record, Plan};
use super::trainer::Hyper;
use crate::config::Config;
use crate::data::cache::DataCost;
use crate::data::loader::IMAGENET;
use crate::data::{cache, Manifest, SplitName};
use crate::labels::features;
use crate::models::backbone;
use crate::models::transfer::{Input, Transfer, KIND};
use crate::models::{ModelSpec, NormSpec};
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Tensor};

/// Default run name of the transfer model.
pub(crate) const TRANSFER_RUN: &str = "transfer";

/// The transfer model's description for this config (what a run records to rebuild it).
pub(crate) fn transfer_spec(cfg: &Config) -> ModelSpec {
    let t = &cfg.transfer;
    ModelSpec {
        kind: KIND.to_string(),
        image_size: t.image_size,
        resize_shorter: t.resize_shorter,
        normalize: NormSpec {
            mean: IMAGENET.mean,
            std: IMAGENET.std,
        },
        config: cfg.clone(),
    }
}

/// Key of the data a transfer model trained with `cfg` on `manifest` would see (split
/// rows and preprocessing settings).
pub(crate) fn data_key(cfg: &Config, manifest: &Manifest) -> String {
    let t = &cfg.transfer;
    cache::cache_key(manifest, t.image_size as u32, t.resize_shorter as u32)
}

/// The settings a transfer run depends on: the `transfer` section, the seed, and the
/// augmentation only when the model trains on images (`transfer.augment` or unfrozen
/// blocks; on cached features nothing is augmented). Run reuse ([`train_transfer`]) and
/// the pipeline's `train-transfer` key both use this.
pub(crate) fn settings(cfg: &Config) -> serde_json::Value {
    let mut t = cfg.transfer.clone();
    // Speed only: the features do not depend on the backbone pass's batch size.
    t.backbone_batch_size = 0;
    let images = t.augment || t.unfreeze_blocks > 0;
    serde_json::json!({
        "transfer": t, "augment": images.then_some(&cfg.augment), "seed": cfg.runtime.seed,
    })
}

/// The finished run `runs/<name>/` when it matches `cfg` and the data.
fn reusable(cfg: &Config, manifest: &Manifest, name: &str) -> Option<RunRecord> {
    let key = data_key(cfg, manifest);
    let now = settings(cfg);
    let run = super::run::reusable_run(cfg, name, |old, old_key| {
        settings(old) == now && old_key == key
    })?;
    // A run recorded before lab5 counted the cost from raw photos is trained again (the
    // head takes seconds), so that the comparison can count its backbone pass.
    run.metrics
        .durations
        .cold_data_secs
        .is_some()
        .then_some(run)
}

/// Trains the transfer model of `cfg` on the manifest's splits and records it in
/// `runs/transfer/`; with `force == false` a finished run with the same settings and data
/// is loaded instead.
pub fn train_transfer(cfg: &Config, force: bool) -> Result<RunRecord> {
    let manifest = load_manifest(cfg)?;
    train_transfer_on(cfg, &manifest, TRANSFER_RUN, force)
}

/// [`train_transfer`] on the splits of `manifest` (the data folder's, or a copy with
/// other exclusions: the label check's ablation), recorded as `runs/<name>/`. On cached
/// features only `manifest`'s exclusions matter; a model that trains on images reads the
/// tensor cache of `manifest`'s rows.
pub(crate) fn train_transfer_on(
    cfg: &Config,
    manifest: &Manifest,
    name: &str,
    force: bool,
) -> Result<RunRecord> {
    if !force {
        if let Some(rec) = reusable(cfg, manifest, name) {
            println!("{rec}");
            return Ok(rec);
        }
    }
    let device = crate::runtime::init(cfg)?;
    let started = Instant::now();
    tch::manual_seed(cfg.runtime.seed as i64);
    let net = Transfer::new(cfg, device)?;
    let (data, data_cost, shared) = match net.input() {
        Input::Features => {
            let (splits, cost) = feature_splits(cfg, manifest, device)?;
            (splits, cost, shared_pass(cfg)?)
        }
        Input::Images => {
            let (splits, cost) = image_splits(cfg, manifest)?;
            (splits, cost, None)
        }
    };
    let plan = Plan {
        name: name.to_string(),
        model: transfer_spec(cfg),
        hyper: Hyper::transfer(cfg),
        data_key: data_key(cfg, manifest),
        preprocess_secs: started.elapsed().as_secs_f64(),
        data_cost,
        data_shared_with: shared,
        settings: settings(cfg),
    };
    train_and_record(cfg, &plan, &net, &data, device)
}

/// The step that needs the same backbone pass as the transfer model: the label check reads
/// EfficientNet-Lite0's pass (its ImageNet head), not ResNet-18's.
fn shared_pass(cfg: &Config) -> Result<Option<String>> {
    Ok(
        (backbone::Kind::of(cfg)? == backbone::Kind::EfficientNetLite0)
            .then(|| "the label check (`lab5 audit`)".to_string()),
    )
}

/// Train/val/test sets of backbone features (excluded images left out), with what the
/// features cost: the backbone pass over every photo of
/// the manifest (the pass covers them all, excluded ones too, so that the label check can
/// undo an exclusion), as recorded when each photo was computed, and what this call
/// computed.
pub(crate) fn feature_splits(
    cfg: &Config,
    manifest: &Manifest,
    device: Device,
) -> Result<(Splits, DataCost)> {
    let kind = backbone::Kind::of(cfg)?;
    let pass = features::load_or_compute_for(cfg, manifest, device, kind)?;
    let cost = DataCost {
        cold_secs: pass.cold_secs(),
        computed_secs: pass.stats.seconds,
    };
    let set = |s: SplitName| -> Result<Box<dyn Dataset>> {
        let records = manifest.split(s);
        let labels: Vec<i64> = records.iter().map(|r| r.label.index()).collect();
        let ids = records.iter().map(|r| r.id.clone()).collect();
        let x = pass.features_of(&records)?;
        Ok(Box::new(FeatureSet::new(
            x,
            Tensor::from_slice(&labels),
            ids,
        )?))
    };
    let splits = Splits {
        train: set(SplitName::Train)?,
        val: set(SplitName::Val)?,
        test: set(SplitName::Test)?,
    };
    splits.check_not_empty()?;
    Ok((splits, cost))
}

/// Train/val/test sets of images at the backbone's input size (training set augmented),
/// with what preparing them cost.
fn image_splits(cfg: &Config, manifest: &Manifest) -> Result<(Splits, DataCost)> {
    let t = &cfg.transfer;
    let (cached, cost) =
        cache::load_or_build_costed(cfg, manifest, t.image_size, t.resize_shorter)?;
    Ok((ImageSet::splits(cached, &cfg.augment, IMAGENET), cost))
}

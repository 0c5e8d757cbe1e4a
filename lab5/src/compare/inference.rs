//! Inference speed of a trained run: photos decoded and resized once (not timed), then
//! the model's whole forward pass from uint8 pixels to `p(dog)` timed on the configured
//! threads. For the transfer model this includes the frozen backbone, so the figure is
//! what classifying a new photo costs, not what training the head on cached features did.

use crate::config::Config;
use crate::data::cache::preprocess_file;
use crate::data::{Manifest, Record, SplitName};
use crate::train::LoadedRun;
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use tch::Tensor;

/// Photos run once before timing (libtorch and oneDNN set up their kernels on first use).
const WARMUP_IMAGES: i64 = 8;

/// How fast a run classifies photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inference {
    /// Photos timed.
    pub images: usize,
    /// Side of the model's input in pixels.
    pub image_size: i64,
    /// Seconds of the timed forward passes.
    pub secs: f64,
    /// `images / secs`.
    pub images_per_sec: f64,
    /// libtorch intra-op threads during the measurement.
    pub threads: usize,
    /// Device the model ran on.
    pub device: String,
}

/// Times the run in `run_dir` on up to `report.inference_images` photos of the data set
/// (test split first, then validation and training).
pub(crate) fn measure_inference(cfg: &Config, run_dir: &Path) -> Result<Inference> {
    let run = LoadedRun::open(run_dir)?;
    let (size, shorter) = run.sizes();
    let images = sample_images(cfg, cfg.report.inference_images, size, shorter)?;
    let secs = time_forward(&run, &images)?;
    let n = images.size()[0];
    Ok(Inference {
        images: n as usize,
        image_size: size,
        secs,
        images_per_sec: n as f64 / secs.max(f64::EPSILON),
        threads: tch::get_num_threads().max(1) as usize,
        device: format!("{:?}", run.device),
    })
}

/// Seconds the run takes to score `images`, after a warm-up pass on a few of them.
fn time_forward(run: &LoadedRun, images: &Tensor) -> Result<f64> {
    let n = images.size()[0];
    run.p_dog(&images.narrow(0, 0, n.min(WARMUP_IMAGES)))?;
    let start = Instant::now();
    let p = run.p_dog(images)?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        p.len() as i64 == n,
        "{} predictions for {n} photos",
        p.len()
    );
    Ok(secs)
}

/// Up to `n` photos of the manifest as one `(n, 3, size, size)` uint8 tensor.
fn sample_images(cfg: &Config, n: usize, size: i64, shorter: i64) -> Result<Tensor> {
    let manifest = crate::train::run::load_manifest(cfg)?;
    let picked = pick(&manifest, n);
    ensure!(
        !picked.is_empty(),
        "no photo with a split in {}: run `lab5 import` or `lab5 collect` first",
        cfg.data_dir().display()
    );
    let data_dir = cfg.data_dir();
    let tensors: Vec<Tensor> = picked
        .par_iter()
        .map(|r| preprocess_file(&data_dir.join(&r.path), size, shorter))
        .collect::<Result<_>>()
        .context("cannot read the photos for the inference timing")?;
    Ok(Tensor::f_stack(&tensors, 0)?)
}

/// The first `n` usable records: test split, then validation, then training.
fn pick(manifest: &Manifest, n: usize) -> Vec<&Record> {
    [SplitName::Test, SplitName::Val, SplitName::Train]
        .into_iter()
        .flat_map(|s| manifest.split(s))
        .take(n)
        .collect()
}

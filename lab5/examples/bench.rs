//! The lab5 half of `make bench` (scripts/bench.sh runs it, then scripts/bench.py):
//! trains the configured CNN for a few epochs on the cached training tensors with the
//! lab5 trainer and loader (augmentation on), in fp32 and, on CPUs with native bfloat16
//! (or when `cnn.precision` is `bf16`), again in bf16 mixed precision; and writes for the
//! PyTorch side the same tensors (`train.safetensors`), the training files
//! (`train_files.csv`) and its own figures (`lab5.json`). The first epoch of each is a
//! warm-up and is not timed.
//!
//! Run: `cargo run --release -p lab5 --example bench -- OUT_DIR [EPOCHS]` after
//! `lab5 import` (threads, batch size, image size and model from `config.json`).

use anyhow::{bail, Context, Result};
use lab5::config::Precision;
use lab5::data::cache::{self, Cached};
use lab5::data::{Manifest, SplitName};
use lab5::models::{Cnn, Net};
use lab5::train::dataset::ImageSet;
use lab5::train::dataset::Splits;
use lab5::train::monitor::{EpochStats, Monitor};
use lab5::train::run::{cnn_norm, load_manifest};
use lab5::train::trainer::{fit, Hyper};
use lab5::util::csv_io;
use lab5::Config;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Epochs trained when none is given (the first one is not timed).
const DEFAULT_EPOCHS: usize = 3;

fn args() -> Result<(PathBuf, usize)> {
    let mut a = std::env::args().skip(1);
    let out = a.next().context("usage: bench OUT_DIR [EPOCHS]")?;
    let epochs = match a.next() {
        Some(e) => e
            .parse()
            .with_context(|| format!("EPOCHS must be a number, not {e:?}"))?,
        None => DEFAULT_EPOCHS,
    };
    if epochs < 2 {
        bail!("EPOCHS must be at least 2 (the first epoch is a warm-up)");
    }
    Ok((PathBuf::from(out), epochs))
}

/// Writes the training images and labels, and the list of training files.
fn export(out: &Path, cached: &Cached, manifest: &Manifest, cfg: &Config) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let t = &cached.train;
    let tensors = [
        ("images", t.images.shallow_clone()),
        ("labels", t.labels.shallow_clone()),
    ];
    Tensor::write_safetensors(&tensors, out.join("train.safetensors"))?;
    let files = manifest
        .split(SplitName::Train)
        .into_iter()
        .map(|r| {
            let path = cfg.data_dir().join(&r.path).canonicalize()?;
            Ok(TrainFile {
                path: path.display().to_string(),
                label: r.label.index(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    csv_io::write_rows(&out.join("train_files.csv"), &files)
}

/// One row of `train_files.csv`: an image's absolute path and its class index.
#[derive(Serialize, Deserialize)]
struct TrainFile {
    path: String,
    label: i64,
}

/// The training precisions to measure: fp32, and bf16 where it is native or configured.
fn precisions(cfg: &Config, device: Device) -> Vec<Precision> {
    let bf16 = lab5::runtime::training_kind(Precision::Auto, device) == Kind::BFloat16
        || cfg.cnn.precision == Precision::Bf16;
    let mut all = vec![Precision::Fp32];
    if bf16 {
        all.push(Precision::Bf16);
    }
    all
}

/// Trains for `epochs` epochs in `precision` on `device` and returns its figures.
fn train(
    cfg: &Config,
    data: &Splits,
    (precision, device): (Precision, Device),
    epochs: usize,
) -> Result<Value> {
    let mut cnn = cfg.cnn.clone();
    cnn.precision = precision;
    tch::manual_seed(cfg.runtime.seed as i64);
    let net = Cnn::new(&cnn, cfg.preprocess.image_size, device)?;
    let name = net.precision();
    println!("lab5, {name}: {epochs} epochs (first one not timed)");
    let mut hyper = Hyper::cnn(cfg);
    (hyper.train.epochs, hyper.train.patience) = (epochs, epochs);
    let fitted = fit(&net, data, &hyper, device, &mut Monitor::quiet(epochs))?;
    Ok(figures(data.train.len(), &fitted.history, name))
}

/// Mean epoch time, throughput and loader share of the timed epochs.
fn figures(n: usize, history: &[EpochStats], precision: &str) -> Value {
    let timed = &history[1..];
    let secs: f64 = timed.iter().map(|s| s.train_secs).sum::<f64>() / timed.len() as f64;
    let data: f64 = timed.iter().map(|s| s.data_secs).sum::<f64>() / timed.len() as f64;
    serde_json::json!({
        "precision": precision,
        "epoch_secs": secs,
        "images_per_sec": n as f64 / secs,
        "loader_share": data / secs,
    })
}

/// The settings PyTorch needs to train the same network, and lab5's figures.
fn settings(cfg: &Config, n: usize, runs: Vec<Value>) -> Value {
    serde_json::json!({
        "images": n,
        "runs": runs,
        "threads": cfg.runtime.threads,
        "batch_size": cfg.cnn.train.batch_size,
        "image_size": cfg.preprocess.image_size,
        "resize_shorter": cfg.preprocess.resize_shorter,
        "channels": cfg.cnn.channels,
        "embedding_dim": cfg.cnn.embedding_dim,
        "dropout": cfg.cnn.dropout,
        "max_lr": cfg.cnn.train.max_lr,
        "weight_decay": cfg.cnn.train.weight_decay,
        "data_dir": cfg.data_dir(),
    })
}

/// The manifest; when there is no data yet, imports `data.folder` first.
fn manifest_or_import(cfg: &Config) -> Result<Manifest> {
    if Manifest::load_or_empty(&cfg.data_dir())?.records.is_empty() {
        let folder = cfg.resolve(&cfg.data.folder);
        println!("no data yet: importing {}", folder.display());
        lab5::data::import::import_folder(cfg, &folder)?;
    }
    load_manifest(cfg)
}

fn main() -> Result<()> {
    let (out, epochs) = args()?;
    let cfg = Config::load(Config::locate(None))?;
    let device = lab5::runtime::init(&cfg)?;
    let manifest = manifest_or_import(&cfg)?;
    let p = &cfg.preprocess;
    let cached = cache::load_or_build(&cfg, &manifest, p.image_size, p.resize_shorter)?;
    export(&out, &cached, &manifest, &cfg)?;
    let n = cached.train.len();
    println!("lab5: {n} training images");
    let data = ImageSet::splits(cached, &cfg.augment, cnn_norm());
    let runs = precisions(&cfg, device)
        .into_iter()
        .map(|p| train(&cfg, &data, (p, device), epochs))
        .collect::<Result<Vec<_>>>()?;
    let json = serde_json::to_string_pretty(&settings(&cfg, n, runs))?;
    std::fs::write(out.join("lab5.json"), json)?;
    Ok(())
}

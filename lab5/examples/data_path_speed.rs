//! Measures the data path on the 2,100 pets photos and prints the figures:
//! 1. preprocessing every photo into the uint8 cache (cold build, then a warm reload);
//! 2. the loader's time per augmented batch against one training step (forward, backward,
//!    AdamW) of a small 4-block CNN (32-64-128-256 channels) at the configured size.
//!
//! Run: `cargo run --release -p lab5 --example data_path_speed [PETS_DIR]`
//! (default `../shared/data/pets`; threads, sizes and augmentation from `config.json`).

use anyhow::{Context, Result};
use lab5::data::cache::{self, SplitTensors};
use lab5::data::loader::{self, IMAGENET};
use lab5::data::{Class, Manifest, Origin, Record, SplitName};
use lab5::Config;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Training batches timed for the model step (after one warm-up batch).
const MODEL_BATCHES: usize = 8;
/// Every `SPLIT_EVERY` photos: 14 train, 3 val, 3 test (70/15/15).
const SPLIT_EVERY: usize = 20;
const TRAIN_PER_20: usize = 14;
const VAL_PER_20: usize = 3;

fn main() -> Result<()> {
    let pets = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "../shared/data/pets".into());
    let mut cfg = Config::load(Config::locate(None))?;
    let device = lab5::runtime::init(&cfg)?;
    let data_dir = std::env::temp_dir().join(format!("lab5-speed-{}", std::process::id()));
    let manifest = link_photos(&pets, &data_dir)?;
    cfg.paths.data_dir = data_dir.clone();
    println!(
        "{} photos, {} threads, {} px (shorter side {})",
        manifest.records.len(),
        cfg.runtime.threads,
        cfg.preprocess.image_size,
        cfg.preprocess.resize_shorter
    );
    let cached = time_preprocessing(&cfg, &manifest)?;
    time_loader_vs_model(&cfg, &cached.train, device);
    std::fs::remove_dir_all(&data_dir).ok();
    Ok(())
}

/// A data folder of symlinks to the photos and a manifest with fixed 70/15/15 splits.
fn link_photos(pets: &Path, data_dir: &Path) -> Result<Manifest> {
    let mut records = Vec::new();
    for class in Class::ALL {
        let dir = pets.join(class.name());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| dir.display().to_string())?
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        std::fs::create_dir_all(data_dir.join("raw").join(class.name()))?;
        for (i, f) in files.iter().enumerate() {
            records.push(link_one(data_dir, class, f, i)?);
        }
    }
    Ok(Manifest { records })
}

fn link_one(data_dir: &Path, class: Class, file: &Path, i: usize) -> Result<Record> {
    let name = file
        .file_name()
        .context("file name")?
        .to_string_lossy()
        .into_owned();
    let rel = PathBuf::from("raw").join(class.name()).join(&name);
    std::os::unix::fs::symlink(std::fs::canonicalize(file)?, data_dir.join(&rel))?;
    let bytes = std::fs::read(file)?;
    let k = i % SPLIT_EVERY;
    let split = if k < TRAIN_PER_20 {
        SplitName::Train
    } else if k < TRAIN_PER_20 + VAL_PER_20 {
        SplitName::Val
    } else {
        SplitName::Test
    };
    Ok(Record {
        id: name.trim_end_matches(".jpg").to_string(),
        label: class,
        breed_id: None,
        breed_name: None,
        source: Origin::Folder,
        url: file.display().to_string(),
        path: rel,
        width: 0,
        height: 0,
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        split: Some(split),
        excluded: None,
        phash: None,
    })
}

/// Cold build (decode + resize + crop + SHA-256 check + write) and warm reload.
fn time_preprocessing(cfg: &Config, manifest: &Manifest) -> Result<cache::Cached> {
    let (s, r) = (cfg.preprocess.image_size, cfg.preprocess.resize_shorter);
    let t = Instant::now();
    cache::load_or_build(cfg, manifest, s, r)?;
    println!(
        "preprocess, cold (decode+resize+crop+hash check+write): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let cached = cache::load_or_build(cfg, manifest, s, r)?;
    println!(
        "preprocess, warm (read cache file):                     {:.3} s",
        t.elapsed().as_secs_f64()
    );
    Ok(cached)
}

/// Loader alone (one augmented epoch, then one plain epoch) vs the model's step.
fn time_loader_vs_model(cfg: &Config, train: &SplitTensors, device: Device) {
    let bs = cfg.cnn.train.batch_size;
    let side = cfg.preprocess.image_size;
    let t = Instant::now();
    let n = loader::batches(train, bs, Some(&cfg.augment), side, &IMAGENET, 1, device).count();
    let aug_ms = 1e3 * t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    let n_plain = loader::batches(train, bs, None, side, &IMAGENET, 1, device).count();
    let plain_ms = 1e3 * t.elapsed().as_secs_f64() / n_plain as f64;
    let step_ms = model_step_ms(cfg, train, device);
    println!("loader, augmented: {aug_ms:.2} ms/batch of {bs}; plain: {plain_ms:.2} ms/batch");
    println!("model step (fwd+bwd+AdamW, 4-block CNN): {step_ms:.1} ms/batch");
    println!(
        "loader share of a training step: {:.1} %",
        100.0 * aug_ms / (aug_ms + step_ms)
    );
}

fn model_step_ms(cfg: &Config, train: &SplitTensors, device: Device) -> f64 {
    let vs = nn::VarStore::new(device);
    let net = small_cnn(&vs.root());
    let Ok(mut opt) = nn::AdamW::default().build(&vs, 1e-3) else {
        return f64::NAN;
    };
    let mut batches = loader::batches(
        train,
        cfg.cnn.train.batch_size,
        Some(&cfg.augment),
        cfg.preprocess.image_size,
        &IMAGENET,
        2,
        device,
    );
    let mut step = |x: &Tensor, y: &Tensor| {
        opt.backward_step(&net.forward_t(x, true).cross_entropy_for_logits(y))
    };
    let Some((x, y)) = batches.next() else {
        return f64::NAN;
    };
    step(&x, &y);
    let data: Vec<(Tensor, Tensor)> = batches.take(MODEL_BATCHES).collect();
    let t = Instant::now();
    data.iter().for_each(|(x, y)| step(x, y));
    1e3 * t.elapsed().as_secs_f64() / data.len() as f64
}

/// 4 x [conv3x3, batch-norm, ReLU, max-pool 2], global average pool, 256-128-2 head.
fn small_cnn(p: &nn::Path) -> nn::SequentialT {
    let mut seq = nn::seq_t();
    let mut c_in = 3;
    for (i, c) in [32i64, 64, 128, 256].into_iter().enumerate() {
        let conv = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        seq = seq
            .add(nn::conv2d(p / format!("conv{i}"), c_in, c, 3, conv))
            .add(nn::batch_norm2d(
                p / format!("bn{i}"),
                c,
                Default::default(),
            ))
            .add_fn(|x| x.relu().max_pool2d_default(2));
        c_in = c;
    }
    seq.add_fn(|x| x.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
        .add(nn::linear(p / "fc1", 256, 128, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 128, 2, Default::default()))
}

//! The backbone pass: EfficientNet-Lite0 run once over every image of the manifest,
//! keeping per image the pooled 1280-d features (what the transfer head trains on) and the
//! zero-shot cat/dog/neither probabilities of the ImageNet head (what the label check
//! reads). Both consumers share one pass.
//!
//! The result lives in `<data_dir>/cache/backbone-<S>-<R>-<key16>.safetensors`, written
//! atomically. The key is a SHA-256 of the settings the numbers depend on (pass version,
//! input size, resize, weights file hash); inside, rows are keyed by the SHA-256 of each
//! image's bytes. So new or changed images are computed on the next run and the rest are
//! reused, while labels, splits and exclusions never invalidate anything (they are not
//! inputs of the backbone). Excluded images are included: the label check must still see
//! them to undo an exclusion.

use crate::config::Config;
use crate::data::images::sha256_hex;
use crate::data::preprocess::preprocess_bytes;
use crate::data::{cache, loader, Manifest, Record};
use crate::models::backbone::{self, Backbone};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Bumped whenever the pass computes something different, so old files are ignored.
const PASS_VERSION: &str = "backbone-pass-v1 imagenet-norm preprocess-v2";
/// Hex digits of the key used in the file name.
const KEY_IN_NAME: usize = 16;
/// Columns of the probability table: cat, dog, neither.
const PROB_COLUMNS: i64 = 3;
/// Bytes of a SHA-256 digest.
const SHA_BYTES: i64 = 32;
/// Prefix of the cache file names.
const FILE_PREFIX: &str = "backbone-";
/// Images per forward pass. Inference results do not depend on it; 32 keeps the peak
/// memory near 1 GB at 224 px (64 needs ~2 GB) at the same speed on 2 cores.
const PASS_BATCH: usize = 32;

/// Zero-shot probabilities of one image from the ImageNet head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZeroShot {
    /// Probability summed over the ImageNet domestic-cat classes (281-285).
    pub p_cat: f64,
    /// Probability summed over the ImageNet dog-breed classes (151-268).
    pub p_dog: f64,
    /// Everything else.
    pub p_neither: f64,
}

/// How much of the pass was computed now and how long that took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassStats {
    /// Images run through the backbone in this call.
    pub computed: usize,
    /// Images whose numbers came from the cache file.
    pub reused: usize,
    /// Wall-clock seconds spent decoding and running the backbone.
    pub seconds: f64,
}

/// Features and zero-shot probabilities of every distinct image of a manifest.
#[derive(Debug)]
pub struct BackbonePass {
    /// SHA-256 (hex) of each row's image bytes.
    pub shas: Vec<String>,
    /// `(N, 1280)` float32 pooled features, on the CPU.
    pub features: Tensor,
    /// `(N, 3)` float32 zero-shot probabilities (cat, dog, neither), on the CPU.
    pub probs: Tensor,
    /// What this call computed and reused.
    pub stats: PassStats,
    index: HashMap<String, i64>,
}

impl BackbonePass {
    fn new(shas: Vec<String>, features: Tensor, probs: Tensor, stats: PassStats) -> Self {
        let index = shas
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as i64))
            .collect();
        BackbonePass {
            shas,
            features,
            probs,
            stats,
            index,
        }
    }

    /// Number of rows (distinct images).
    pub fn len(&self) -> usize {
        self.shas.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.shas.is_empty()
    }

    /// Row of a manifest record (by the hash of its bytes).
    pub fn row(&self, rec: &Record) -> Option<i64> {
        self.index.get(&rec.sha256).copied()
    }

    /// Zero-shot probabilities of a record.
    pub(crate) fn zero_shot(&self, rec: &Record) -> Option<ZeroShot> {
        let row = self.probs.get(self.row(rec)?);
        let p = |c: i64| row.double_value(&[c]);
        let z = ZeroShot {
            p_cat: p(0),
            p_dog: p(1),
            p_neither: p(2),
        };
        (!z.p_cat.is_nan()).then_some(z)
    }

    /// Features `(len, 1280)` of records, in the order given.
    pub(crate) fn features_of(&self, records: &[&Record]) -> Result<Tensor> {
        let rows: Vec<i64> = records
            .iter()
            .map(|r| self.row_or_fail(r))
            .collect::<Result<_>>()?;
        Ok(self.features.index_select(0, &Tensor::from_slice(&rows)))
    }

    fn row_or_fail(&self, rec: &Record) -> Result<i64> {
        self.row(rec).with_context(|| {
            format!(
                "image {} is not in the backbone pass: run the pass again with this manifest",
                rec.id
            )
        })
    }
}

/// The EfficientNet-Lite0 pass (features and zero-shot probabilities) over every image
/// of `manifest`: what the label check reads, and the transfer model's training data
/// when `transfer.backbone` is `efficientnet_lite0`. Images the cache file does not hold
/// yet are computed on `device`, and the file is updated.
pub fn load_or_compute(cfg: &Config, manifest: &Manifest, device: Device) -> Result<BackbonePass> {
    load_or_compute_for(cfg, manifest, device, backbone::Kind::EfficientNetLite0)
}

/// The pass of backbone `kind` (for ResNet-18 the probabilities are NaN: it has no
/// ImageNet classifier here).
pub(crate) fn load_or_compute_for(
    cfg: &Config,
    manifest: &Manifest,
    device: Device,
    kind: backbone::Kind,
) -> Result<BackbonePass> {
    let path = pass_path_for(cfg, kind)?;
    let cached = read_pass(&path).unwrap_or_else(|e| {
        eprintln!("lab5: ignoring unreadable backbone cache ({e:#}); recomputing it");
        None
    });
    let cached = cached.unwrap_or_else(|| empty_pass(kind.feature_dim()));
    let wanted = distinct_records(manifest);
    let missing: Vec<&Record> = wanted
        .iter()
        .copied()
        .filter(|r| cached.row(r).is_none())
        .collect();
    let fresh = compute(cfg, &missing, device, kind)?;
    let cached_len = cached.len();
    let pass = assemble(&wanted, cached, fresh)?;
    if pass.stats.computed > 0 || cached_len != pass.len() {
        write_pass(&path, &pass)?;
        remove_stale(&path, kind);
    }
    Ok(pass)
}

fn empty_pass(dim: i64) -> BackbonePass {
    let empty = |w: i64| Tensor::zeros([0, w], (Kind::Float, Device::Cpu));
    BackbonePass::new(
        vec![],
        empty(dim),
        empty(PROB_COLUMNS),
        PassStats::default(),
    )
}

/// The manifest's records with distinct image hashes, in manifest order.
fn distinct_records(manifest: &Manifest) -> Vec<&Record> {
    let mut seen = std::collections::HashSet::new();
    manifest
        .records
        .iter()
        .filter(|r| seen.insert(r.sha256.as_str()))
        .collect()
}

/// The EfficientNet-Lite0 cache file of the current settings.
pub fn pass_path(cfg: &Config) -> Result<PathBuf> {
    pass_path_for(cfg, backbone::Kind::EfficientNetLite0)
}

/// The cache file of backbone `kind`:
/// `<data_dir>/cache/backbone-<kind>-<S>-<R>-<key16>.safetensors`.
pub(crate) fn pass_path_for(cfg: &Config, kind: backbone::Kind) -> Result<PathBuf> {
    let key = pass_key(cfg, kind)?;
    let t = &cfg.transfer;
    let (s, r, short) = (t.image_size, t.resize_shorter, &key[..KEY_IN_NAME]);
    let name = format!("{}{s}-{r}-{short}.safetensors", file_prefix(kind));
    Ok(cfg.data_dir().join(cache::CACHE_DIR).join(name))
}

fn file_prefix(kind: backbone::Kind) -> String {
    format!("{FILE_PREFIX}{}-", kind.name())
}

/// SHA-256 (hex) of everything the pass's numbers depend on.
fn pass_key(cfg: &Config, kind: backbone::Kind) -> Result<String> {
    let weights = kind.weights_path(cfg);
    let bytes = std::fs::read(&weights).with_context(|| {
        format!(
            "cannot read the {} weights {}: run `scripts/setup.sh` or set transfer.weights",
            kind.name(),
            weights.display()
        )
    })?;
    let t = &cfg.transfer;
    let (s, r, name, hash) = (
        t.image_size,
        t.resize_shorter,
        kind.name(),
        sha256_hex(&bytes),
    );
    Ok(sha256_hex(
        format!("{PASS_VERSION}\n{name}\n{s}\n{r}\n{hash}\n").as_bytes(),
    ))
}

/// Runs the backbone over `records` (decoding in parallel on `runtime.threads`).
fn compute(
    cfg: &Config,
    records: &[&Record],
    device: Device,
    kind: backbone::Kind,
) -> Result<BackbonePass> {
    if records.is_empty() {
        return Ok(empty_pass(kind.feature_dim()));
    }
    let started = Instant::now();
    let net = Backbone::load_kind(kind, cfg, device, 0)?;
    let (features, probs) = run_chunks(cfg, &net, records, device)?;
    let seconds = started.elapsed().as_secs_f64();
    report_speed(records.len(), seconds);
    let shas = records.iter().map(|r| r.sha256.clone()).collect();
    let stats = PassStats {
        computed: records.len(),
        reused: 0,
        seconds,
    };
    Ok(BackbonePass::new(shas, features, probs, stats))
}

/// Features and probabilities of `records`, [`PASS_BATCH`] images at a time.
fn run_chunks(
    cfg: &Config,
    net: &Backbone,
    records: &[&Record],
    device: Device,
) -> Result<(Tensor, Tensor)> {
    let bar = crate::util::progress(records.len() as u64, "backbone");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.runtime.threads)
        .build()?;
    let (mut feats, mut probs) = (Vec::new(), Vec::new());
    for chunk in records.chunks(PASS_BATCH) {
        let images = pool.install(|| decode_chunk(cfg, chunk))?;
        let (f, p) = run_backbone(net, &images, device);
        feats.push(f);
        probs.push(p);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok((Tensor::cat(&feats, 0), Tensor::cat(&probs, 0)))
}

fn report_speed(n: usize, seconds: f64) {
    let rate = n as f64 / seconds.max(f64::EPSILON);
    eprintln!("lab5: backbone pass over {n} images in {seconds:.1} s ({rate:.1} images/s)");
}

/// Pooled features and zero-shot probabilities of a uint8 batch, back on the CPU.
fn run_backbone(net: &Backbone, images_u8: &Tensor, device: Device) -> (Tensor, Tensor) {
    tch::no_grad(|| {
        let x = loader::normalize(images_u8, &loader::IMAGENET, device);
        let features = net.features(&x);
        let n = features.size()[0];
        let nan = || {
            Tensor::full(
                [n, PROB_COLUMNS],
                f64::NAN,
                (Kind::Float, features.device()),
            )
        };
        let probs = net.zero_shot(&features).unwrap_or_else(nan);
        (
            features.to_device(Device::Cpu),
            probs.to_device(Device::Cpu),
        )
    })
}

/// Decodes a chunk of records in parallel into a `(B, 3, S, S)` uint8 tensor; fails
/// naming every image that could not be read.
fn decode_chunk(cfg: &Config, records: &[&Record]) -> Result<Tensor> {
    let t = &cfg.transfer;
    let (size, shorter) = (t.image_size as u32, t.resize_shorter as u32);
    let data_dir = cfg.data_dir();
    let results: Vec<Result<Vec<u8>>> = records
        .par_iter()
        .map(|r| decode_record(&data_dir, r, size, shorter))
        .collect();
    let mut pixels = Vec::with_capacity(records.len() * 3 * (size * size) as usize);
    let mut errors = Vec::new();
    for res in results {
        match res {
            Ok(p) => pixels.extend_from_slice(&p),
            Err(e) => errors.push(format!("  {e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("{} image(s) could not be read for the backbone pass:\n{}\nfix or remove them, then re-run `lab5 import`", errors.len(), errors.join("\n"));
    }
    let side = t.image_size;
    Ok(Tensor::f_from_slice(&pixels)?.f_view([records.len() as i64, 3, side, side])?)
}

fn decode_record(data_dir: &Path, rec: &Record, size: u32, shorter: u32) -> Result<Vec<u8>> {
    let path = data_dir.join(&rec.path);
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    if sha256_hex(&bytes) != rec.sha256 {
        bail!("{}: the file changed since it was imported (SHA-256 differs from the manifest); re-run `lab5 import`", path.display());
    }
    preprocess_bytes(&bytes, size, shorter).with_context(|| path.display().to_string())
}

/// The pass for `wanted`, rows taken from the cache or from the fresh computation.
fn assemble(wanted: &[&Record], cached: BackbonePass, fresh: BackbonePass) -> Result<BackbonePass> {
    let offset = cached.len() as i64;
    let row = |r: &&Record| match cached.row(r) {
        Some(i) => Ok(i),
        None => fresh.row_or_fail(r).map(|i| i + offset),
    };
    let rows: Vec<i64> = wanted.iter().map(row).collect::<Result<_>>()?;
    let rows = Tensor::from_slice(&rows);
    let pick = |a: &Tensor, b: &Tensor| Tensor::cat(&[a, b], 0).index_select(0, &rows);
    let features = pick(&cached.features, &fresh.features);
    let probs = pick(&cached.probs, &fresh.probs);
    let shas = wanted.iter().map(|r| r.sha256.clone()).collect();
    let stats = PassStats {
        reused: wanted.len() - fresh.len(),
        ..fresh.stats
    };
    Ok(BackbonePass::new(shas, features, probs, stats))
}

fn write_pass(path: &Path, pass: &BackbonePass) -> Result<()> {
    let shas = sha_table(&pass.shas)?;
    crate::util::with_atomic(path, |tmp| {
        let named = [
            ("sha256", &shas),
            ("features", &pass.features),
            ("probs", &pass.probs),
        ];
        Tensor::write_safetensors(&named, tmp)?;
        Ok(())
    })
}

/// Hex hashes as an `(N, 32)` uint8 table.
fn sha_table(shas: &[String]) -> Result<Tensor> {
    let mut bytes = Vec::with_capacity(shas.len() * SHA_BYTES as usize);
    for s in shas {
        let raw = hex::decode(s).with_context(|| format!("bad SHA-256 {s:?} in the manifest"))?;
        if raw.len() != SHA_BYTES as usize {
            bail!("bad SHA-256 {s:?} in the manifest: re-run `lab5 import`");
        }
        bytes.extend_from_slice(&raw);
    }
    Ok(Tensor::f_from_slice(&bytes)?.f_view([shas.len() as i64, SHA_BYTES])?)
}

/// The cached pass at `path`, `None` when there is no file; an error when it is corrupt.
fn read_pass(path: &Path) -> Result<Option<BackbonePass>> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut named: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
    let mut take = |n: &str| {
        named
            .remove(n)
            .with_context(|| format!("{}: no `{n}` tensor", path.display()))
    };
    let (shas, features, probs) = (take("sha256")?, take("features")?, take("probs")?);
    check_shapes(&shas, &features, &probs).with_context(|| path.display().to_string())?;
    let raw = Vec::<u8>::try_from(shas.reshape([-1]))?;
    let hexes = raw.chunks(SHA_BYTES as usize).map(hex::encode).collect();
    Ok(Some(BackbonePass::new(
        hexes,
        features,
        probs,
        PassStats::default(),
    )))
}

fn check_shapes(shas: &Tensor, features: &Tensor, probs: &Tensor) -> Result<()> {
    let n = shas.size().first().copied().unwrap_or(-1);
    let shapes_ok = shas.size() == [n, SHA_BYTES]
        && features.dim() == 2
        && features.size()[0] == n
        && probs.size() == [n, PROB_COLUMNS];
    let kinds_ok =
        shas.kind() == Kind::Uint8 && features.kind() == Kind::Float && probs.kind() == Kind::Float;
    if !(shapes_ok && kinds_ok) {
        bail!("tensors have unexpected shapes or types (not a lab5 backbone cache)");
    }
    Ok(())
}

/// Removes backbone caches of other settings; failures are harmless.
fn remove_stale(current: &Path, kind: backbone::Kind) {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name().to_string_lossy().into_owned();
        if other != name.to_string_lossy()
            && other.starts_with(&file_prefix(kind))
            && other.ends_with(".safetensors")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

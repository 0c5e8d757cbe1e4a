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
use crate::config::Images;
use crate::data::images::sha256_hex;
use crate::data::preprocess::preprocess_bytes_with;
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
        self.row_of(&rec.sha256)
    }

    /// Row of the image whose bytes have the SHA-256 `sha` (hex).
    pub fn row_of(&self, sha: &str) -> Option<i64> {
        self.index.get(sha).copied()
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
    let data_dir = cfg.data_dir();
    let wanted: Vec<ImageFile> = distinct_records(manifest)
        .into_iter()
        .map(|r| ImageFile::new(&r.sha256, data_dir.join(&r.path)))
        .collect();
    let how = Compute {
        kind,
        policy: Images::display(),
        strict: true,
    };
    let (pass, _) = load_or_compute_files(cfg, &wanted, (&path, &[]), device, &how)?;
    Ok(pass)
}

/// An image file for the pass: the SHA-256 (hex) of its bytes, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageFile {
    /// SHA-256 of the bytes, hex; the row key of the cache.
    pub sha256: String,
    /// The file.
    pub path: PathBuf,
}

impl ImageFile {
    pub(crate) fn new(sha256: &str, path: PathBuf) -> Self {
        ImageFile {
            sha256: sha256.to_string(),
            path,
        }
    }
}

/// An image the pass could not read, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// How the pass computes what no cache holds.
pub(crate) struct Compute {
    /// The backbone.
    pub kind: backbone::Kind,
    /// The decoding policy ([`Images::display`] for photos already in the data set).
    pub policy: Images,
    /// Fail at the first chunk with an unreadable image (the data set's photos were all
    /// readable when they came in); otherwise such images are returned and left out.
    pub strict: bool,
}

/// The pass over `wanted`, with rows from the cache file `cache` (updated), from the
/// cache files `borrowed` (read only; missing ones are skipped), and computed for the
/// rest. Returns the pass (rows in the order of `wanted`, unreadable images left out)
/// and the unreadable images.
pub(crate) fn load_or_compute_files(
    cfg: &Config,
    wanted: &[ImageFile],
    (cache, borrowed): (&Path, &[PathBuf]),
    device: Device,
    how: &Compute,
) -> Result<(BackbonePass, Vec<Unreadable>)> {
    let own = read_or_warn(cache).unwrap_or_else(|| empty_pass(how.kind.feature_dim()));
    let mut sources = vec![own];
    sources.extend(borrowed.iter().filter_map(|p| read_or_warn(p)));
    let known = |f: &&ImageFile| sources.iter().any(|s| s.row_of(&f.sha256).is_some());
    let missing: Vec<&ImageFile> = wanted.iter().filter(|f| !known(f)).collect();
    let (fresh, unreadable) = compute(cfg, &missing, device, how)?;
    let own_len = sources[0].len();
    sources.push(fresh);
    let pass = assemble(wanted, &sources)?;
    if pass.stats.computed > 0 || own_len != pass.len() {
        write_pass(cache, &pass)?;
        remove_stale(cache, how.kind);
    }
    Ok((pass, unreadable))
}

/// The cached pass at `path`, or `None` (no file, or a file that cannot be read: said
/// on stderr, and recomputed).
fn read_or_warn(path: &Path) -> Option<BackbonePass> {
    read_pass(path).unwrap_or_else(|e| {
        eprintln!("lab5: ignoring unreadable backbone cache ({e:#}); recomputing it");
        None
    })
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

/// Runs the backbone over `files` (decoding in parallel on `runtime.threads`); returns
/// the pass of the readable ones and the others.
fn compute(
    cfg: &Config,
    files: &[&ImageFile],
    device: Device,
    how: &Compute,
) -> Result<(BackbonePass, Vec<Unreadable>)> {
    if files.is_empty() {
        return Ok((empty_pass(how.kind.feature_dim()), Vec::new()));
    }
    let started = Instant::now();
    let net = Backbone::load_kind(how.kind, cfg, device, 0)?;
    let done = run_chunks(cfg, &net, files, device, how)?;
    let seconds = started.elapsed().as_secs_f64();
    if !done.shas.is_empty() {
        report_speed(done.shas.len(), seconds);
    }
    let stats = PassStats {
        computed: done.shas.len(),
        reused: 0,
        seconds,
    };
    let pass = BackbonePass::new(done.shas, done.features, done.probs, stats);
    Ok((pass, done.unreadable))
}

/// What [`run_chunks`] computed.
struct Chunks {
    shas: Vec<String>,
    features: Tensor,
    probs: Tensor,
    unreadable: Vec<Unreadable>,
}

/// Features and probabilities of `files`, [`PASS_BATCH`] images at a time.
fn run_chunks(
    cfg: &Config,
    net: &Backbone,
    files: &[&ImageFile],
    device: Device,
    how: &Compute,
) -> Result<Chunks> {
    let bar = crate::util::progress(files.len() as u64, "backbone");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.runtime.threads)
        .build()?;
    let dim = how.kind.feature_dim();
    let mut done = Chunks {
        shas: Vec::new(),
        features: Tensor::zeros([0, dim], (Kind::Float, Device::Cpu)),
        probs: Tensor::zeros([0, PROB_COLUMNS], (Kind::Float, Device::Cpu)),
        unreadable: Vec::new(),
    };
    let (mut feats, mut probs) = (vec![done.features.shallow_clone()], vec![]);
    probs.push(done.probs.shallow_clone());
    for chunk in files.chunks(PASS_BATCH) {
        let (images, read, bad) = pool.install(|| decode_chunk(cfg, chunk, &how.policy))?;
        if how.strict && !bad.is_empty() {
            bail!(unreadable_message(&bad));
        }
        done.unreadable.extend(bad);
        if !read.is_empty() {
            let (f, p) = run_backbone(net, &images, device);
            feats.push(f);
            probs.push(p);
            done.shas.extend(read);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    (done.features, done.probs) = (Tensor::cat(&feats, 0), Tensor::cat(&probs, 0));
    Ok(done)
}

/// The error of a strict pass: every unreadable image of the chunk, and what to do.
fn unreadable_message(bad: &[Unreadable]) -> String {
    let lines: Vec<String> = bad
        .iter()
        .map(|u| format!("  {}: {}", u.path.display(), u.reason))
        .collect();
    format!(
        "{} image(s) could not be read for the backbone pass:\n{}\nfix or remove them, then re-run `lab5 import`",
        bad.len(),
        lines.join("\n")
    )
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

/// Decodes a chunk of files in parallel into a `(B, 3, S, S)` uint8 tensor of those that
/// could be read, with their hashes, and the others with the reason.
fn decode_chunk(
    cfg: &Config,
    files: &[&ImageFile],
    policy: &Images,
) -> Result<(Tensor, Vec<String>, Vec<Unreadable>)> {
    let t = &cfg.transfer;
    let (size, shorter) = (t.image_size as u32, t.resize_shorter as u32);
    let results: Vec<Result<Vec<u8>>> = files
        .par_iter()
        .map(|f| decode_file(f, size, shorter, policy))
        .collect();
    let mut pixels = Vec::with_capacity(files.len() * 3 * (size * size) as usize);
    let (mut read, mut bad) = (Vec::new(), Vec::new());
    for (f, res) in files.iter().zip(results) {
        match res {
            Ok(p) => {
                pixels.extend_from_slice(&p);
                read.push(f.sha256.clone());
            }
            Err(e) => bad.push(Unreadable {
                path: f.path.clone(),
                reason: format!("{e:#}"),
            }),
        }
    }
    let side = t.image_size;
    let images = Tensor::f_from_slice(&pixels)?.f_view([read.len() as i64, 3, side, side])?;
    Ok((images, read, bad))
}

fn decode_file(f: &ImageFile, size: u32, shorter: u32, policy: &Images) -> Result<Vec<u8>> {
    let bytes = std::fs::read(&f.path).context("cannot read")?;
    if sha256_hex(&bytes) != f.sha256 {
        bail!("the file changed since it was listed (SHA-256 differs)");
    }
    preprocess_bytes_with(&bytes, size, shorter, policy)
}

/// The pass for `wanted`, each row taken from the first of `sources` that has it; images
/// that no source has (unreadable ones) are left out.
fn assemble(wanted: &[ImageFile], sources: &[BackbonePass]) -> Result<BackbonePass> {
    let mut offsets = Vec::with_capacity(sources.len());
    let mut offset = 0i64;
    for s in sources {
        offsets.push(offset);
        offset += s.len() as i64;
    }
    let find = |sha: &str| {
        sources
            .iter()
            .zip(&offsets)
            .find_map(|(s, o)| s.row_of(sha).map(|r| r + o))
    };
    let mut seen = std::collections::HashSet::new();
    let (mut rows, mut shas) = (Vec::new(), Vec::new());
    for f in wanted.iter().filter(|f| seen.insert(f.sha256.as_str())) {
        if let Some(r) = find(&f.sha256) {
            rows.push(r);
            shas.push(f.sha256.clone());
        }
    }
    let rows = Tensor::from_slice(&rows);
    let all = |get: fn(&BackbonePass) -> &Tensor| {
        let parts: Vec<&Tensor> = sources.iter().map(get).collect();
        Tensor::cat(&parts, 0).index_select(0, &rows)
    };
    let (features, probs) = (all(|s| &s.features), all(|s| &s.probs));
    let fresh = sources.last().map(|s| s.stats).unwrap_or_default();
    let stats = PassStats {
        reused: shas.len().saturating_sub(fresh.computed),
        ..fresh
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

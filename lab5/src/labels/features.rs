//! The backbone pass: EfficientNet-Lite0 run once over every image of the manifest,
//! keeping per image the pooled 1280-d features (what the transfer head trains on) and the
//! zero-shot cat/dog/neither probabilities of the ImageNet head (what the label check
//! reads). Both consumers share one pass.
//!
//! The result lives in `<data_dir>/cache/backbone-<S>-<R>-<key16>.safetensors`, written
//! atomically. The key is a SHA-256 of the settings the numbers depend on (pass version,
//! input size, resize, weights file hash, the arithmetic: folded fp32, or folded bf16 with
//! the label-check thresholds its fp32 recheck used; `auto` resolves per machine, so a data
//! folder moved to a machine without native bf16 gets its pass computed again); inside, rows are keyed by the SHA-256 of each
//! image's bytes. So new or changed images are computed on the next run and the rest are
//! reused, while labels, splits and exclusions never invalidate anything (they are not
//! inputs of the backbone). Excluded images are included: the label check must still see
//! them to undo an exclusion.

use super::pass_net::PassNet;
use crate::config::Config;
use crate::config::Images;
use crate::data::images::sha256_hex;
use crate::data::preprocess::preprocess_bytes_with;
use crate::data::{cache, loader, Manifest, Record};
use crate::models::backbone;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Bumped whenever the pass computes something different, so old files are ignored.
/// (v2: batch-norm folded into the convolutions, channels-last; per-row seconds stored.)
const PASS_VERSION: &str = "backbone-pass-v2 imagenet-norm preprocess-v2";
/// Hex digits of the key used in the file name.
const KEY_IN_NAME: usize = 16;
/// Columns of the probability table: cat, dog, neither.
const PROB_COLUMNS: i64 = 3;
/// Bytes of a SHA-256 digest.
const SHA_BYTES: i64 = 32;
/// Prefix of the cache file names.
const FILE_PREFIX: &str = "backbone-";
/// Images per forward pass of [`PassSpeed::plain`] (the pass as lab5 ran it until the
/// fast pass: 32 kept the peak memory near 1 GB at 224 px).
const PLAIN_BATCH: usize = 32;

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
    /// `(N,)` float64: seconds each row cost when it was computed (its equal share of the
    /// wall-clock time of the call that computed it, decoding and loading the network
    /// included), kept in the cache file so that a reused row still counts its cost.
    pub row_secs: Tensor,
    /// What this call computed and reused.
    pub stats: PassStats,
    index: HashMap<String, i64>,
}

impl BackbonePass {
    fn new(
        shas: Vec<String>,
        features: Tensor,
        probs: Tensor,
        row_secs: Tensor,
        stats: PassStats,
    ) -> Self {
        let index = shas
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as i64))
            .collect();
        BackbonePass {
            shas,
            features,
            probs,
            row_secs,
            stats,
            index,
        }
    }

    /// Seconds the pass over all its rows costs from the photos, cache or not: the sum of
    /// [`BackbonePass::row_secs`]. What a model trained on these features must count as
    /// its data preparation from raw photos.
    pub fn cold_secs(&self) -> f64 {
        match self.is_empty() {
            true => 0.0,
            false => self.row_secs.sum(Kind::Double).double_value(&[]),
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
        speed: PassSpeed::for_kind(cfg, kind)?,
    };
    let (pass, _) = load_or_compute_files(cfg, &wanted, (&path, &[]), device, &how)?;
    Ok(pass)
}

/// The pass of the configured backbone over every distinct image of `manifest`, all
/// computed now with `speed`, reading and writing no cache file: what
/// `make bench-backbone` times.
///
/// # Errors
/// The weights cannot be loaded, or an image cannot be read.
pub fn compute_uncached(
    cfg: &Config,
    manifest: &Manifest,
    device: Device,
    speed: PassSpeed,
) -> Result<BackbonePass> {
    let data_dir = cfg.data_dir();
    let files: Vec<ImageFile> = distinct_records(manifest)
        .into_iter()
        .map(|r| ImageFile::new(&r.sha256, data_dir.join(&r.path)))
        .collect();
    let refs: Vec<&ImageFile> = files.iter().collect();
    let how = Compute {
        kind: backbone::Kind::of(cfg)?,
        policy: Images::display(),
        strict: true,
        speed,
    };
    Ok(compute(cfg, &refs, device, &how)?.0)
}

/// How the backbone pass is run: what makes it fast. Folding changes the numbers only by
/// rounding; bf16 changes them by up to about a tenth in probability (see
/// [`super::pass_net`]), so the arithmetic is part of the cache key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassSpeed {
    /// Arithmetic of the network: `Kind::Float` or `Kind::BFloat16`
    /// (`transfer.backbone_precision`).
    pub kind: Kind,
    /// Photos per forward pass (`transfer.backbone_batch_size`).
    pub batch_size: usize,
    /// EfficientNet-Lite0 with batch-norm folded into the convolutions, channels-last
    /// ([`FoldedLite0`]); otherwise the training network as it is (NCHW, fp32).
    pub folded: bool,
    /// Decode and resize the next batch of photos on a thread of its own while the network
    /// runs on this one (a prefetching loader).
    pub overlap: bool,
    /// Threads decoding photos: with `overlap`, the cores `runtime.threads` leaves free;
    /// otherwise `runtime.threads`.
    pub decode_threads: usize,
}

impl PassSpeed {
    /// The configured pass: folded network, the configured precision (`auto`: bf16 on a CPU
    /// with native bfloat16) and batch size, decoding overlapped with the network when the
    /// machine has more cores than `runtime.threads`. ResNet-18 always runs as it is, in
    /// fp32.
    ///
    /// # Errors
    /// `runtime.device` cannot be parsed or names a missing GPU; `transfer.backbone` is
    /// unknown.
    pub fn of(cfg: &Config) -> Result<Self> {
        Self::for_kind(cfg, backbone::Kind::of(cfg)?)
    }

    /// [`PassSpeed::of`] for backbone `kind` rather than the configured one.
    pub(crate) fn for_kind(cfg: &Config, kind: backbone::Kind) -> Result<Self> {
        let device = crate::runtime::parse_device(&cfg.runtime.device)?;
        let lite0 = kind == backbone::Kind::EfficientNetLite0;
        let t = &cfg.transfer;
        let kind = match lite0 {
            true => crate::runtime::training_kind(t.backbone_precision, device),
            false => Kind::Float,
        };
        // Decoding beside the network pays only where a core is free for it: measured on 2
        // cores with `runtime.threads` 2, it bought nothing (README, "The backbone pass").
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let spare = cores.saturating_sub(cfg.runtime.threads);
        Ok(PassSpeed {
            kind,
            batch_size: t.backbone_batch_size,
            folded: lite0,
            overlap: spare > 0,
            decode_threads: if spare > 0 {
                spare
            } else {
                cfg.runtime.threads
            },
        })
    }

    /// The pass as lab5 ran it before it was made fast: the training network (NCHW,
    /// fp32, unfolded batch-norm), 32 photos a batch, decoding then computing in turn.
    pub fn plain(cfg: &Config) -> Self {
        PassSpeed {
            kind: Kind::Float,
            batch_size: PLAIN_BATCH,
            folded: false,
            overlap: false,
            decode_threads: cfg.runtime.threads,
        }
    }

    /// What the numbers depend on, for the cache key and the progress line: `folded fp32`,
    /// `folded bf16`, `plain`.
    fn key(&self) -> String {
        match self.folded {
            true => format!("folded {}", crate::runtime::kind_name(self.kind)),
            false => "plain".to_string(),
        }
    }

    /// [`PassSpeed::key`] plus, for a bf16 pass, the label check's thresholds its fp32
    /// recheck used ([`super::pass_net`]): other thresholds recheck other photos.
    fn cache_key(&self, audit: &crate::config::Audit) -> String {
        match self.folded && self.kind == Kind::BFloat16 {
            true => format!(
                "{} recheck {} margin {} neither {}",
                self.key(),
                super::pass_net::RECHECK_MARGIN,
                audit.min_margin,
                audit.neither_threshold
            ),
            false => self.key(),
        }
    }
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
    /// How fast, and in which arithmetic.
    pub speed: PassSpeed,
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
        Tensor::zeros([0], (Kind::Double, Device::Cpu)),
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
    let how = PassSpeed::for_kind(cfg, kind)?.cache_key(&cfg.audit);
    Ok(sha256_hex(
        format!("{PASS_VERSION}\n{name}\n{s}\n{r}\n{hash}\n{how}\n").as_bytes(),
    ))
}

/// Runs the backbone over `files` (decoding in parallel, see [`PassSpeed`]); returns the
/// pass of the readable ones (each row charged an equal share of the call's seconds,
/// loading the network included) and the others.
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
    let net = PassNet::load(cfg, device, how)?;
    let done = run_chunks(cfg, &net, files, device, how)?;
    let seconds = started.elapsed().as_secs_f64();
    let n = done.shas.len();
    if n > 0 {
        report_speed(n, seconds, &how.speed, net.rechecked());
    }
    let stats = PassStats {
        computed: n,
        reused: 0,
        seconds,
    };
    let share = seconds / n.max(1) as f64;
    let secs = Tensor::full([n as i64], share, (Kind::Double, Device::Cpu));
    let pass = BackbonePass::new(done.shas, done.features, done.probs, secs, stats);
    Ok((pass, done.unreadable))
}

/// What [`run_chunks`] computed.
struct Chunks {
    shas: Vec<String>,
    features: Tensor,
    probs: Tensor,
    unreadable: Vec<Unreadable>,
}

/// One decoded batch: `(B, 3, S, S)` uint8 images, their hashes, the unreadable files,
/// and how many files it covered.
type Decoded = (Tensor, Vec<String>, Vec<Unreadable>, usize);

/// Features and probabilities of `files`, `speed.batch_size` images at a time; with
/// `speed.overlap` the next batch is decoded on a thread of its own meanwhile.
fn run_chunks(
    cfg: &Config,
    net: &PassNet,
    files: &[&ImageFile],
    device: Device,
    how: &Compute,
) -> Result<Chunks> {
    let bar = crate::util::progress(files.len() as u64, "backbone");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(how.speed.decode_threads.max(1))
        .build()?;
    let decode = |chunk: &[&ImageFile]| -> Result<Decoded> {
        let (images, read, bad) = pool.install(|| decode_chunk(cfg, chunk, &how.policy))?;
        Ok((images, read, bad, chunk.len()))
    };
    let mut acc = Accumulated::default();
    let mut take = |decoded: Result<Decoded>| -> Result<()> {
        let n = acc.take(decoded?, net, device, how.strict)?;
        bar.inc(n as u64);
        Ok(())
    };
    let batches = files.chunks(how.speed.batch_size.max(1));
    if how.speed.overlap {
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Decoded>>(1);
            scope.spawn(move || {
                for chunk in batches {
                    if tx.send(decode(chunk)).is_err() {
                        break;
                    }
                }
            });
            rx.into_iter().try_for_each(&mut take)
        })?;
    } else {
        batches.map(decode).try_for_each(&mut take)?;
    }
    bar.finish_and_clear();
    Ok(acc.finish(how.kind.feature_dim()))
}

/// The batches computed so far.
#[derive(Default)]
struct Accumulated {
    shas: Vec<String>,
    features: Vec<Tensor>,
    probs: Vec<Tensor>,
    unreadable: Vec<Unreadable>,
}

impl Accumulated {
    /// Runs the network on one decoded batch; returns how many files it covered. A strict
    /// pass fails on the first unreadable image.
    fn take(
        &mut self,
        decoded: Decoded,
        net: &PassNet,
        device: Device,
        strict: bool,
    ) -> Result<usize> {
        let (images, read, bad, n) = decoded;
        if strict && !bad.is_empty() {
            bail!(unreadable_message(&bad));
        }
        self.unreadable.extend(bad);
        if !read.is_empty() {
            let (f, p) = run_backbone(net, &images, device);
            self.features.push(f);
            self.probs.push(p);
            self.shas.extend(read);
        }
        Ok(n)
    }

    fn finish(self, dim: i64) -> Chunks {
        let empty = |w: i64| Tensor::zeros([0, w], (Kind::Float, Device::Cpu));
        let cat = |parts: Vec<Tensor>, w: i64| match parts.is_empty() {
            true => empty(w),
            false => Tensor::cat(&parts, 0),
        };
        Chunks {
            shas: self.shas,
            features: cat(self.features, dim),
            probs: cat(self.probs, PROB_COLUMNS),
            unreadable: self.unreadable,
        }
    }
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

fn report_speed(n: usize, seconds: f64, speed: &PassSpeed, rechecked: usize) {
    let rate = n as f64 / seconds.max(f64::EPSILON);
    let how = speed.key();
    let exact = match speed.kind == Kind::BFloat16 && speed.folded {
        true => format!(", {rechecked} near a label-check boundary recomputed in fp32"),
        false => String::new(),
    };
    eprintln!(
        "lab5: backbone pass over {n} images in {seconds:.1} s ({rate:.1} images/s, {how}{exact})"
    );
}

/// Pooled features and zero-shot probabilities of a uint8 batch, back on the CPU.
fn run_backbone(net: &PassNet, images_u8: &Tensor, device: Device) -> (Tensor, Tensor) {
    tch::no_grad(|| {
        let x = loader::normalize(images_u8, &loader::IMAGENET, device);
        let (features, probs) = net.forward(&x);
        let n = features.size()[0];
        let probs = probs.unwrap_or_else(|| {
            Tensor::full(
                [n, PROB_COLUMNS],
                f64::NAN,
                (Kind::Float, features.device()),
            )
        });
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
    let row_secs = all(|s| &s.row_secs);
    let fresh = sources.last().map(|s| s.stats).unwrap_or_default();
    let stats = PassStats {
        reused: shas.len().saturating_sub(fresh.computed),
        ..fresh
    };
    Ok(BackbonePass::new(shas, features, probs, row_secs, stats))
}

fn write_pass(path: &Path, pass: &BackbonePass) -> Result<()> {
    let shas = sha_table(&pass.shas)?;
    crate::util::with_atomic(path, |tmp| {
        let named = [
            ("sha256", &shas),
            ("features", &pass.features),
            ("probs", &pass.probs),
            ("row_secs", &pass.row_secs),
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
    let row_secs = take("row_secs")?;
    check_shapes(&shas, (&features, &probs), &row_secs)
        .with_context(|| path.display().to_string())?;
    let raw = Vec::<u8>::try_from(shas.reshape([-1]))?;
    let hexes = raw.chunks(SHA_BYTES as usize).map(hex::encode).collect();
    Ok(Some(BackbonePass::new(
        hexes,
        features,
        probs,
        row_secs,
        PassStats::default(),
    )))
}

fn check_shapes(shas: &Tensor, (features, probs): (&Tensor, &Tensor), secs: &Tensor) -> Result<()> {
    let n = shas.size().first().copied().unwrap_or(-1);
    let shapes_ok = shas.size() == [n, SHA_BYTES]
        && features.dim() == 2
        && features.size()[0] == n
        && probs.size() == [n, PROB_COLUMNS]
        && secs.size() == [n];
    let kinds_ok = shas.kind() == Kind::Uint8
        && features.kind() == Kind::Float
        && probs.kind() == Kind::Float
        && secs.kind() == Kind::Double;
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

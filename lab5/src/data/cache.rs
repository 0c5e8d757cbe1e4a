//! Preprocess once: every image of the manifest's splits decoded, resized and cropped into
//! uint8 tensors, kept in one file under `<data_dir>/cache/` so that later epochs and later
//! runs never decode a JPEG again.
//!
//! The file name and header carry a SHA-256 key of everything the pixels depend on: the
//! manifest rows used (id, label, split, path, file hash; excluded rows are left out) and
//! the preprocessing settings. Any change gives a new key, so a stale cache is never
//! read; it is rebuilt and written atomically. Layout: magic, header length (u64 LE),
//! JSON header (key, sizes, ids and labels per split), then each split's `N x 3 x S x S`
//! bytes.

pub(crate) use super::preprocess::{preprocess_bytes, preprocess_bytes_with};
use super::{Class, Manifest, Record, SplitName};
use crate::config::{Config, Images};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// First bytes of a cache file (the digit is the layout version).
const MAGIC: &[u8; 8] = b"LAB5IMG1";
/// Bumped whenever decoding or resizing changes, so old caches are rebuilt.
const PIPELINE_VERSION: &str =
    "preprocess-v2 exif-orientation jpeg-dct-scale catmull-rom centre-crop";
/// Hex digits of the key used in the file name.
const KEY_IN_NAME: usize = 16;
/// Errors listed by name when some images fail.
const ERRORS_SHOWN: usize = 5;
/// Sub-folder of the data folder holding caches.
pub const CACHE_DIR: &str = "cache";

/// The images of one split as tensors, in manifest order.
#[derive(Debug)]
pub struct SplitTensors {
    /// `(N, 3, S, S)` uint8, on the CPU.
    pub images: Tensor,
    /// `(N,)` int64: 0 cat, 1 dog.
    pub labels: Tensor,
    /// Image ids (manifest ids, or relative paths for a folder), one per row.
    pub ids: Vec<String>,
}

impl SplitTensors {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the split has no image.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Labels as a vector (0 cat, 1 dog).
    pub fn label_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels).unwrap_or_default()
    }

    /// The split with only the rows whose id `keep` accepts, in their order.
    pub(crate) fn retain(self, keep: impl Fn(&str) -> bool) -> Result<Self> {
        let rows: Vec<i64> = (0..self.ids.len() as i64)
            .filter(|&i| keep(&self.ids[i as usize]))
            .collect();
        if rows.len() == self.ids.len() {
            return Ok(self);
        }
        let index = Tensor::f_from_slice(&rows)?;
        Ok(SplitTensors {
            images: self.images.f_index_select(0, &index)?,
            labels: self.labels.f_index_select(0, &index)?,
            ids: rows.iter().map(|&i| self.ids[i as usize].clone()).collect(),
        })
    }

    fn from_parts(pixels: &[u8], labels: Vec<i64>, ids: Vec<String>, size: i64) -> Result<Self> {
        let n = ids.len() as i64;
        let images = Tensor::f_from_slice(pixels)?.f_view([n, 3, size, size])?;
        Ok(SplitTensors {
            images,
            labels: Tensor::f_from_slice(&labels)?,
            ids,
        })
    }
}

/// The three splits, preprocessed.
#[derive(Debug)]
pub struct Cached {
    /// Training split.
    pub train: SplitTensors,
    /// Validation split.
    pub val: SplitTensors,
    /// Test split.
    pub test: SplitTensors,
}

impl Cached {
    /// The three splits with only the rows of each split that `kept` has in it (a copy of
    /// the cached manifest with more exclusions), so that a variant of the split reuses
    /// the cache of the whole one.
    pub(crate) fn restricted_to(self, kept: &Manifest) -> Result<Cached> {
        let ids = |s: SplitName| -> std::collections::HashSet<String> {
            kept.split(s).iter().map(|r| r.id.clone()).collect()
        };
        let (train, val, test) = (
            ids(SplitName::Train),
            ids(SplitName::Val),
            ids(SplitName::Test),
        );
        Ok(Cached {
            train: self.train.retain(|id| train.contains(id))?,
            val: self.val.retain(|id| val.contains(id))?,
            test: self.test.retain(|id| test.contains(id))?,
        })
    }

    /// One split by name.
    pub(crate) fn get(&self, s: SplitName) -> &SplitTensors {
        match s {
            SplitName::Train => &self.train,
            SplitName::Val => &self.val,
            SplitName::Test => &self.test,
        }
    }
}

/// Reads one image file and preprocesses it to a `(3, size, size)` uint8 tensor. A
/// missing, empty, truncated or non-image file gets an error naming the file and the
/// problem.
pub fn preprocess_file(path: &Path, size: i64, resize_shorter: i64) -> Result<Tensor> {
    preprocess_file_with(path, size, resize_shorter, &Images::display())
}

/// [`preprocess_file`] under the decoding policy `policy`: for images from outside the
/// data set (predict), refused for the same reasons as at import.
pub fn preprocess_file_with(
    path: &Path,
    size: i64,
    resize_shorter: i64,
    policy: &Images,
) -> Result<Tensor> {
    let (s, r) = sizes(size, resize_shorter)?;
    let pixels = read_and_preprocess(path, s, r, policy)?;
    Ok(Tensor::f_from_slice(&pixels)?.f_view([3, size, size])?)
}

fn sizes(size: i64, resize_shorter: i64) -> Result<(u32, u32)> {
    let s = u32::try_from(size).with_context(|| format!("bad image size {size}"))?;
    let r = u32::try_from(resize_shorter)
        .with_context(|| format!("bad resize_shorter {resize_shorter}"))?;
    Ok((s, r))
}

fn read_and_preprocess(path: &Path, size: u32, shorter: u32, policy: &Images) -> Result<Vec<u8>> {
    let bytes = read_image_file(path)?;
    preprocess_bytes_with(&bytes, size, shorter, policy).with_context(|| path.display().to_string())
}

fn read_image_file(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.is_symlink() => {
            bail!("{}: broken link (its target is missing)", path.display())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no such file", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

/// What preparing a model's data costs, in wall-clock seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DataCost {
    /// From the raw photos with nothing cached: the recorded time of the work the data
    /// comes from (the preprocessing cache's build; the backbone pass over each photo),
    /// whether it was done now or by an earlier command.
    pub cold_secs: f64,
    /// The part of that work this call did (0 when everything came from caches).
    pub computed_secs: f64,
}

/// Loads the cache for these manifest rows and settings, or builds it (decoding in
/// parallel on `runtime.threads` threads) and writes it atomically.
pub fn load_or_build(
    cfg: &Config,
    manifest: &Manifest,
    size: i64,
    resize_shorter: i64,
) -> Result<Cached> {
    Ok(load_or_build_costed(cfg, manifest, size, resize_shorter)?.0)
}

/// [`load_or_build`] with what the cache costs: its build time (recorded in the file when
/// it was built) and how much of it this call spent. A cache written before lab5 recorded
/// build times is rebuilt once, so that the cost is measured rather than guessed.
pub fn load_or_build_costed(
    cfg: &Config,
    manifest: &Manifest,
    size: i64,
    resize_shorter: i64,
) -> Result<(Cached, DataCost)> {
    let (s, r) = sizes(size, resize_shorter)?;
    let key = cache_key(manifest, s, r);
    let path = cache_path(&cfg.data_dir(), s, r, &key);
    if path.is_file() {
        match read_cache(&path, &key) {
            Ok((c, Some(secs))) => return Ok((c, DataCost { cold_secs: secs, computed_secs: 0.0 })),
            Ok((_, None)) => eprintln!("lab5: the cache {} has no recorded build time (written by an older lab5); rebuilding it to measure it", path.display()),
            Err(e) => eprintln!("lab5: ignoring unreadable cache ({e:#}); rebuilding it"),
        }
    }
    let (header, pixels) = build(cfg, manifest, s, r)?;
    write_cache(&path, &header, &pixels)?;
    remove_stale(&path, s, r);
    let secs = header.build_secs.unwrap_or_default();
    let cost = DataCost {
        cold_secs: secs,
        computed_secs: secs,
    };
    Ok((from_header(&header, &pixels)?, cost))
}

/// Path of the cache file for a key: `<data_dir>/cache/images-<S>-<R>-<key16>.bin`.
pub(crate) fn cache_path(data_dir: &Path, size: u32, resize_shorter: u32, key: &str) -> PathBuf {
    let short = &key[..key.len().min(KEY_IN_NAME)];
    data_dir
        .join(CACHE_DIR)
        .join(format!("images-{size}-{resize_shorter}-{short}.bin"))
}

/// SHA-256 (hex) of the preprocessing settings and of every manifest row the cache uses.
pub(crate) fn cache_key(manifest: &Manifest, size: u32, resize_shorter: u32) -> String {
    let mut h = Sha256::new();
    h.update(format!("{PIPELINE_VERSION}\n{size}\n{resize_shorter}\n"));
    for split in SplitName::ALL {
        for r in manifest.split(split) {
            let path = r.path.to_string_lossy();
            let row = format!("{split}\t{}\t{}\t{path}\t{}\n", r.id, r.label, r.sha256);
            h.update(row);
        }
    }
    hex::encode(h.finalize())
}

/// What the JSON header of a cache file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    key: String,
    size: u32,
    resize_shorter: u32,
    splits: Vec<SplitHeader>,
    /// Seconds decoding and resizing every image when the file was built (absent in
    /// files of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_secs: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SplitHeader {
    split: SplitName,
    ids: Vec<String>,
    labels: Vec<i64>,
}

impl Header {
    fn image_bytes(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }
}

fn build(cfg: &Config, manifest: &Manifest, size: u32, r: u32) -> Result<(Header, Vec<u8>)> {
    let rows: Vec<&Record> = SplitName::ALL
        .iter()
        .flat_map(|s| manifest.split(*s))
        .collect();
    if rows.is_empty() {
        bail!("no image of the manifest is in a split: run `lab5 import` or `lab5 collect` first");
    }
    let started = Instant::now();
    let pixels = decode_all(cfg, &rows, size, r)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "lab5: preprocessed {} images to {size} px in {secs:.1} s",
        rows.len()
    );
    let mut header = header(manifest, size, r);
    header.build_secs = Some(secs);
    Ok((header, pixels))
}

fn header(manifest: &Manifest, size: u32, resize_shorter: u32) -> Header {
    Header {
        key: cache_key(manifest, size, resize_shorter),
        size,
        resize_shorter,
        build_secs: None,
        splits: SplitName::ALL
            .iter()
            .map(|s| split_header(manifest, *s))
            .collect(),
    }
}

fn split_header(manifest: &Manifest, split: SplitName) -> SplitHeader {
    let rows = manifest.split(split);
    SplitHeader {
        split,
        ids: rows.iter().map(|r| r.id.clone()).collect(),
        labels: rows.iter().map(|r| r.label.index()).collect(),
    }
}

/// Decodes every row in parallel; fails listing the images that could not be read.
fn decode_all(cfg: &Config, rows: &[&Record], size: u32, r: u32) -> Result<Vec<u8>> {
    let data_dir = cfg.data_dir();
    let bar = crate::util::progress(rows.len() as u64, "preprocess");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.runtime.threads)
        .build()?;
    let results: Vec<Result<Vec<u8>>> = pool.install(|| {
        let one = |rec: &&Record| {
            let out = preprocess_record(&data_dir, rec, size, r);
            bar.inc(1);
            out
        };
        rows.par_iter().map(one).collect()
    });
    bar.finish_and_clear();
    concat_or_fail(results)
}

/// All pixels one after the other, or an error listing every image that failed.
fn concat_or_fail(results: Vec<Result<Vec<u8>>>) -> Result<Vec<u8>> {
    let total = results.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
    let mut pixels = Vec::with_capacity(total);
    let mut errors = Vec::new();
    for res in results {
        match res {
            Ok(p) => pixels.extend_from_slice(&p),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        bail!(errors_message(errors));
    }
    Ok(pixels)
}

fn preprocess_record(data_dir: &Path, rec: &Record, size: u32, r: u32) -> Result<Vec<u8>> {
    let path = data_dir.join(&rec.path);
    let bytes = read_image_file(&path)?;
    if !rec.sha256.is_empty() && hex::encode(Sha256::digest(&bytes)) != rec.sha256 {
        bail!("{}: the file changed since it was imported (SHA-256 differs from the manifest); re-run `lab5 import`", path.display());
    }
    preprocess_bytes(&bytes, size, r).with_context(|| path.display().to_string())
}

fn errors_message(errors: Vec<anyhow::Error>) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(ERRORS_SHOWN)
        .map(|e| format!("  {e:#}"))
        .collect();
    let more = errors.len().saturating_sub(ERRORS_SHOWN);
    let tail = if more > 0 {
        format!("\n  ... and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} image(s) could not be preprocessed:\n{}{tail}\nfix or remove those files, then re-run `lab5 import`",
        errors.len(),
        shown.join("\n")
    )
}

fn write_cache(path: &Path, header: &Header, pixels: &[u8]) -> Result<()> {
    let json = serde_json::to_vec(header)?;
    let mut bytes = Vec::with_capacity(16 + json.len() + pixels.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(pixels);
    crate::util::write_atomic(path, &bytes)
}

/// The cache at `path` and its recorded build time.
fn read_cache(path: &Path, key: &str) -> Result<(Cached, Option<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (header, pixels) = parse_cache(&bytes).with_context(|| path.display().to_string())?;
    if header.key != key {
        bail!(
            "{}: key in the header does not match the file name",
            path.display()
        );
    }
    Ok((from_header(&header, pixels)?, header.build_secs))
}

fn parse_cache(bytes: &[u8]) -> Result<(Header, &[u8])> {
    let (magic, rest) = bytes
        .split_at_checked(MAGIC.len())
        .context("file too short")?;
    if magic != MAGIC {
        bail!("not a lab5 image cache (bad magic)");
    }
    let (len, rest) = rest.split_at_checked(8).context("file too short")?;
    let len = u64::from_le_bytes(len.try_into()?) as usize;
    let (json, pixels) = rest.split_at_checked(len).context("header cut short")?;
    let header: Header = serde_json::from_slice(json).context("bad header")?;
    let expected: usize =
        header.splits.iter().map(|s| s.ids.len()).sum::<usize>() * header.image_bytes();
    if pixels.len() != expected {
        bail!(
            "holds {} pixel bytes, the header promises {expected}",
            pixels.len()
        );
    }
    Ok((header, pixels))
}

fn from_header(header: &Header, pixels: &[u8]) -> Result<Cached> {
    let mut offset = 0;
    let mut parts = Vec::new();
    for (s, split) in SplitName::ALL.iter().zip(&header.splits) {
        if split.split != *s || split.ids.len() != split.labels.len() {
            bail!("cache header is inconsistent for split {s}");
        }
        let len = split.ids.len() * header.image_bytes();
        let (ids, labels) = (split.ids.clone(), split.labels.clone());
        let size = header.size as i64;
        parts.push(SplitTensors::from_parts(
            &pixels[offset..offset + len],
            labels,
            ids,
            size,
        )?);
        offset += len;
    }
    let [train, val, test]: [SplitTensors; 3] = parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("cache header lacks a split"))?;
    Ok(Cached { train, val, test })
}

/// Removes older caches of the same settings (other keys); failures are harmless.
fn remove_stale(current: &Path, size: u32, r: u32) {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else {
        return;
    };
    let prefix = format!("images-{size}-{r}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let stale = other != name && other.to_string_lossy().starts_with(&prefix);
        if stale && other.to_string_lossy().ends_with(".bin") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An ImageFolder directory preprocessed for evaluation.
pub struct FolderTensors {
    /// The images that could be read; ids are the paths relative to the folder.
    pub split: SplitTensors,
    /// Files that failed, with their error.
    pub failed: Vec<(PathBuf, String)>,
    /// What the listing did not take: other folders (`name/`) and hidden files.
    pub left_out: Vec<String>,
}

/// Preprocesses an ImageFolder directory (`dir/cat/*`, `dir/dog/*`; `cats`/`dogs` also
/// accepted; listed as on import, [`crate::data::folder::list_files`]) for evaluation.
/// Files that fail are left out and returned with their error.
pub fn preprocess_folder(
    dir: &Path,
    size: i64,
    resize_shorter: i64,
    policy: &Images,
) -> Result<FolderTensors> {
    preprocess_folder_except(dir, (size, resize_shorter), policy, &Default::default())
}

/// [`preprocess_folder`] leaving out the files in `except` (paths as the listing gives
/// them: `dir` joined with the class folder and the file name).
pub(crate) fn preprocess_folder_except(
    dir: &Path,
    (size, resize_shorter): (i64, i64),
    policy: &Images,
    except: &std::collections::HashSet<PathBuf>,
) -> Result<FolderTensors> {
    let (s, r) = sizes(size, resize_shorter)?;
    let listing = crate::data::folder::list_files(dir)?;
    let left_out = listing.left_out();
    let files: Vec<(PathBuf, Class)> = listing
        .files
        .into_iter()
        .filter(|c| !except.contains(&c.path))
        .map(|c| (c.path, c.class))
        .collect();
    let results: Vec<Result<Vec<u8>>> = files
        .par_iter()
        .map(|(p, _)| read_and_preprocess(p, s, r, policy))
        .collect();
    let (mut pixels, mut ids, mut labels, mut errors) = (vec![], vec![], vec![], vec![]);
    for ((path, class), res) in files.into_iter().zip(results) {
        let Ok(p) = res.map_err(|e| errors.push((path.clone(), format!("{e:#}")))) else {
            continue;
        };
        pixels.extend_from_slice(&p);
        ids.push(relative_id(dir, &path));
        labels.push(class.index());
    }
    Ok(FolderTensors {
        split: SplitTensors::from_parts(&pixels, labels, ids, size)?,
        failed: errors,
        left_out,
    })
}

fn relative_id(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    crate::util::slash_path(rel)
}

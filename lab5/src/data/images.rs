//! Image bytes: validation by a full decode under the decoding policy, SHA-256,
//! safe file names, and atomic storage under `data/raw/<class>/`.
//!
//! Everything that lands in `data/raw` passes through [`inspect`] (a decodable JPEG, PNG
//! or WebP) and [`store`] (a safe name, a temp file and a rename).

use crate::config::Images;
use crate::data::phash::PHash;
use crate::data::{is_safe_id, Class};
use crate::decode::{self, Refusal, Refused};
use crate::util::with_atomic;
use anyhow::{bail, Context, Result};
use image::ImageFormat;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Formats the data set accepts, with the file extension each is stored under.
pub(crate) use crate::decode::FORMATS;
/// Length of the hex digest used when an id is replaced by its hash.
const HASHED_ID_HEX: usize = 24;
/// Prefix of ids made from a hash (so they never look like an API id).
const HASHED_ID_PREFIX: &str = "h_";

/// Why an image (or an API item) was not taken into the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The API item had no usable id or url.
    BadItem,
    /// The url is not http(s).
    BadUrl,
    /// The server answered with an error status (after retries for 429/5xx).
    HttpStatus,
    /// The body is larger than `api.max_image_bytes`.
    TooLarge,
    /// The download took longer than `api.timeout_secs` on every try.
    Timeout,
    /// The connection failed or the body ended early on every try.
    Network,
    /// The bytes are an image format the lab does not use (e.g. GIF, HEIC).
    Unsupported,
    /// The bytes are not a decodable image (HTML, truncated file, ...).
    NotImage,
    /// A decodable image outside the decoding policy's limits (`images.max_pixels`,
    /// `images.min_side`, `images.max_aspect_ratio`).
    OutsideLimits,
    /// A file could not be read (import).
    Unreadable,
}

impl Reason {
    /// A short human description, used in reports.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Reason::BadItem => "API item without id or url",
            Reason::BadUrl => "url is not http(s)",
            Reason::HttpStatus => "HTTP error status",
            Reason::TooLarge => "larger than api.max_image_bytes",
            Reason::Timeout => "timed out",
            Reason::Network => "network error or body cut short",
            Reason::Unsupported => "not JPEG, PNG or WebP",
            Reason::NotImage => "not a decodable image",
            Reason::OutsideLimits => "outside the decoding limits (images.* in the config)",
            Reason::Unreadable => "file could not be read",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// How many refused items a report prints (all of them are in [`REJECTED_FILE`]).
pub(crate) const MAX_EXAMPLES: usize = 8;
/// The file, in the data folder, that lists every item the last import or collect refused.
pub(crate) const REJECTED_FILE: &str = "rejected.csv";

/// One refused file or API item: a line of `data/rejected.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedItem {
    /// The class it was meant for (its folder, or the API it came from).
    pub label: Class,
    /// The file's path (import) or the API item's id (collect).
    pub item: String,
    /// The category.
    pub reason: Reason,
    /// What exactly was wrong.
    pub detail: String,
}

/// Writes `items` to `data_dir/rejected.csv` (replacing the last run's list; only the
/// header when nothing was refused), through a temp file and a rename.
///
/// # Errors
/// The file cannot be written.
pub(crate) fn write_rejected(data_dir: &Path, items: &[RejectedItem]) -> Result<()> {
    crate::util::csv_io::write_rows(&data_dir.join(REJECTED_FILE), items)
}

/// The report lines of refused items, each starting with `indent`: the first
/// [`MAX_EXAMPLES`], then how many more (the report names `rejected.csv`, which lists
/// them all).
pub(crate) fn write_examples(
    f: &mut std::fmt::Formatter<'_>,
    indent: &str,
    items: &[RejectedItem],
) -> std::fmt::Result {
    let lines: Vec<String> = items
        .iter()
        .take(MAX_EXAMPLES)
        .map(|r| format!("{:?}: {}", r.item, r.detail))
        .collect();
    write_first(f, indent, &lines, items.len())
}

/// `lines` (at most [`MAX_EXAMPLES`] are written) one a line after `indent`, then
/// `... and N more` when `total` is larger than that.
pub(crate) fn write_first(
    f: &mut std::fmt::Formatter<'_>,
    indent: &str,
    lines: &[String],
    total: usize,
) -> std::fmt::Result {
    for line in lines.iter().take(MAX_EXAMPLES) {
        writeln!(f, "{indent}{line}")?;
    }
    if total > MAX_EXAMPLES {
        writeln!(f, "{indent}... and {} more", total - MAX_EXAMPLES)?;
    }
    Ok(())
}

/// A rejection: the reason and a one-line detail (never containing a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The category.
    pub reason: Reason,
    /// What exactly was wrong.
    pub detail: String,
}

impl Rejection {
    /// A rejection with a detail message.
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// What [`inspect`] learned from valid image bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format detected from the bytes.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Perceptual hash of the decoded image.
    pub phash: PHash,
}

/// The file extension for an accepted format.
pub(crate) fn extension(format: ImageFormat) -> Option<&'static str> {
    crate::decode::extension(format)
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decodes the whole image under the decoding policy ([`crate::decode`]: format from the
/// bytes, limits, EXIF orientation) and hashes it; any failure is a [`Rejection`] saying
/// why. The size is the one a person sees.
pub fn inspect(bytes: &[u8], policy: &Images) -> Result<ImageInfo, Rejection> {
    let header = decode::header(bytes, policy).map_err(rejection)?;
    let img = decode::decode(bytes, policy).map_err(rejection)?;
    Ok(ImageInfo {
        format: header.format,
        width: img.width(),
        height: img.height(),
        phash: PHash::of(&img),
    })
}

fn rejection(r: Refused) -> Rejection {
    let reason = match r.kind {
        Refusal::Unsupported => Reason::Unsupported,
        Refusal::TooLarge | Refusal::TooSmall | Refusal::TooThin => Reason::OutsideLimits,
        Refusal::Empty | Refusal::NotImage | Refusal::Truncated | Refusal::Corrupt => {
            Reason::NotImage
        }
    };
    Rejection::new(reason, r.detail)
}

/// The id used for the file name: `raw` itself when it is safe (`[A-Za-z0-9_-]`, see
/// [`is_safe_id`]), else `h_` and a hash of it, so nothing can escape `data/raw/<class>`.
pub fn file_id(raw: &str) -> String {
    if is_safe_id(raw) {
        raw.to_string()
    } else {
        let h = sha256_hex(raw.as_bytes());
        format!("{HASHED_ID_PREFIX}{}", &h[..HASHED_ID_HEX])
    }
}

/// `raw/<class>` relative to the data folder.
pub(crate) fn class_dir(class: Class) -> PathBuf {
    Path::new("raw").join(class.name())
}

/// The path, relative to the data folder, of image `id` of `class` in `format`.
pub(crate) fn relative_path(class: Class, id: &str, format: ImageFormat) -> Result<PathBuf> {
    if !is_safe_id(id) {
        bail!("refusing unsafe file id {id:?}");
    }
    let Some(ext) = extension(format) else {
        bail!("refusing image format {format:?}");
    };
    Ok(class_dir(class).join(format!("{id}.{ext}")))
}

/// Writes validated image bytes to `data_dir/raw/<class>/<id>.<ext>` through a temp file
/// and a rename; returns the path relative to `data_dir`.
pub(crate) fn store(
    data_dir: &Path,
    class: Class,
    id: &str,
    info: &ImageInfo,
    bytes: &[u8],
) -> Result<PathBuf> {
    let rel = relative_path(class, id, info.format)?;
    with_atomic(&data_dir.join(&rel), |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })?;
    Ok(rel)
}

/// An image of `class` named `id` already in `data_dir` (any accepted extension), as a
/// path relative to `data_dir`.
pub(crate) fn find_stored(data_dir: &Path, class: Class, id: &str) -> Option<PathBuf> {
    if !is_safe_id(id) {
        return None;
    }
    FORMATS
        .iter()
        .map(|(_, ext)| class_dir(class).join(format!("{id}.{ext}")))
        .find(|rel| data_dir.join(rel).is_file())
}

/// True for names written by `util::with_atomic` while a write is in progress.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Removes temp files an interrupted run left in `data_dir/raw/<class>/`; returns how many.
pub(crate) fn remove_temp_files(data_dir: &Path, class: Class) -> Result<usize> {
    let dir = data_dir.join(class_dir(class));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries.flatten() {
        if is_temp_name(&e.file_name().to_string_lossy()) {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report prints the first few refused items and says where the rest are; the file
    /// lists every one and reads back.
    #[test]
    fn every_refused_item_is_listed_in_the_file_and_the_report_says_so() {
        let items: Vec<RejectedItem> = (0..11)
            .map(|i| RejectedItem {
                label: Class::Cat,
                item: format!("in/cat/{i}.heic"),
                reason: Reason::Unsupported,
                detail: "HEIF, convert it to JPEG".into(),
            })
            .collect();
        struct Shown<'a>(&'a [RejectedItem]);
        impl std::fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_examples(f, "  ", self.0)
            }
        }
        let text = Shown(&items).to_string();
        assert_eq!(text.lines().count(), MAX_EXAMPLES + 1, "{text}");
        assert!(text.ends_with("  ... and 3 more\n"), "{text}");
        let dir = std::env::temp_dir().join(format!("lab5-rejected-{}", std::process::id()));
        write_rejected(&dir, &items).unwrap();
        let back: Vec<RejectedItem> =
            crate::util::csv_io::read_rows(&dir.join(REJECTED_FILE)).unwrap();
        assert_eq!(back, items);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn pets_photo() -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pets/cat");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        files.sort_by_key(|e| e.file_name());
        std::fs::read(files[0].path()).unwrap()
    }

    #[test]
    fn real_photo_passes_and_damage_is_rejected_with_reason() {
        let bytes = pets_photo();
        let p = Images::default();
        let info = inspect(&bytes, &p).unwrap();
        assert_eq!(info.format, ImageFormat::Jpeg);
        assert!(info.width > 0 && info.height > 0);
        let cut = inspect(&bytes[..bytes.len() / 2], &p).unwrap_err();
        assert_eq!(cut.reason, Reason::NotImage, "{cut:?}");
        let html = inspect(b"<html><body>not found</body></html>", &p).unwrap_err();
        assert_eq!(html.reason, Reason::NotImage);
        let gif = inspect(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &p).unwrap_err();
        assert_eq!(gif.reason, Reason::Unsupported);
    }

    /// A photo whose header (an APP13 segment) holds the bytes `FF D9`, cut a little
    /// after the header: the end marker seen in the header must not count.
    #[test]
    fn a_cut_jpeg_is_rejected_even_with_an_end_marker_in_its_header() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/pets/cat/9d071f6e06df.jpg"
        );
        let bytes = std::fs::read(path).unwrap();
        assert!(inspect(&bytes, &Images::default()).is_ok());
        let header_marker = bytes[..4400].windows(2).any(|w| w == [0xFF, 0xD9]);
        assert!(header_marker, "the fixture must carry FF D9 in its header");
        let cut = inspect(&bytes[..6000], &Images::default()).unwrap_err();
        assert_eq!(cut.reason, Reason::NotImage, "{cut:?}");
    }

    #[test]
    fn unsafe_ids_become_hashes() {
        assert_eq!(file_id("abc_1-X"), "abc_1-X");
        let h = file_id("../../etc/passwd");
        assert!(is_safe_id(&h) && h.starts_with(HASHED_ID_PREFIX), "{h}");
        assert_eq!(h, file_id("../../etc/passwd"));
        assert!(relative_path(Class::Cat, "../x", ImageFormat::Png).is_err());
    }
}

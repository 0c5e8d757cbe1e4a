//! One decoding policy: what lab5 can read, in one place. Every image lab5 looks at
//! (import and collect, the tensor cache, the label check, predict, evaluate, the photo
//! grids) is decoded by [`decode`], so an image accepted at the door is readable everywhere
//! and one that is refused is refused, with the same reason, everywhere:
//! - **formats**: JPEG, PNG and WebP, recognised by their bytes (never by the file name);
//!   GIF, BMP, TIFF, AVIF, HEIC, ... are named as such, with what to do;
//! - **complete**: a JPEG must carry its end marker (the decoder would fill a cut-off image
//!   with grey and carry on);
//! - **size**: at most `images.max_pixels` pixels and no side over [`MAX_SIDE`], read from
//!   the header before any pixel is decoded, so a small file that declares a huge image
//!   never costs its decoded size; the decoder may allocate at most [`MAX_DECODED_BYTES`];
//! - **shape**: the shorter side at least `images.min_side`, the longer side at most
//!   `images.max_aspect_ratio` times the shorter (a 1x3000 strip is no photo);
//! - **orientation**: the EXIF orientation (how phones store photos taken sideways) is
//!   applied, so width, height and pixels are those a person sees.

use crate::config::Images;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest image side in pixels, whatever the config.
pub const MAX_SIDE: u32 = 20_000;
/// Largest decoded image in bytes the decoder may allocate, whatever the config.
pub const MAX_DECODED_BYTES: u64 = 512 << 20;
/// The formats lab5 reads, with the file extension each is stored under.
pub const FORMATS: [(ImageFormat, &str); 3] = [
    (ImageFormat::Jpeg, "jpg"),
    (ImageFormat::Png, "png"),
    (ImageFormat::WebP, "webp"),
];
/// What to do with a photo in another format.
const CONVERT: &str = "convert it to JPEG or PNG (any image viewer can export one)";
/// Length of the JPEG start-of-image marker (`FF D8`).
const SOI_LEN: usize = 2;
/// JPEG start-of-scan marker (after `FF`).
const MARKER_SOS: u8 = 0xDA;
/// JPEG end-of-image marker (after `FF`).
const MARKER_EOI: u8 = 0xD9;

/// Why an image is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Zero bytes.
    Empty,
    /// The bytes are no image format at all (HTML, text, ...).
    NotImage,
    /// An image format lab5 does not read (GIF, HEIC, ...).
    Unsupported,
    /// A JPEG cut off before its end.
    Truncated,
    /// The header or the data is damaged.
    Corrupt,
    /// More pixels than `images.max_pixels` (or than the hard limits).
    TooLarge,
    /// The shorter side is under `images.min_side`.
    TooSmall,
    /// The sides' ratio is over `images.max_aspect_ratio`.
    TooThin,
}

/// A refusal with a one-line detail that names the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The category.
    pub kind: Refusal,
    /// What exactly is wrong.
    pub detail: String,
}

impl Refused {
    fn new(kind: Refusal, detail: impl Into<String>) -> Self {
        Refused {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Refused {}

/// What the header says, as a person sees the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format, from the bytes.
    pub format: ImageFormat,
    /// Width in pixels, orientation applied.
    pub width: u32,
    /// Height in pixels, orientation applied.
    pub height: u32,
    /// The EXIF orientation (none when absent).
    pub orientation: Orientation,
}

/// Reads and checks the header only (no pixel is decoded).
pub fn header(bytes: &[u8], policy: &Images) -> Result<Header, Refused> {
    open(bytes, policy).map(|(_, header)| header)
}

/// The decoder of `bytes` and its header, checked against `policy` (no pixel decoded).
fn open<'a>(bytes: &'a [u8], policy: &Images) -> Result<(impl ImageDecoder + 'a, Header), Refused> {
    let format = format_of(bytes)?;
    let mut decoder = reader(bytes, format)
        .into_decoder()
        .map_err(|e| from_image_error(e, "header"))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let (width, height) = seen(decoder.dimensions(), orientation);
    check_shape(width, height, policy)?;
    let header = Header {
        format,
        width,
        height,
        orientation,
    };
    Ok((decoder, header))
}

/// Decodes image bytes under `policy`, orientation applied; a refusal says why.
pub fn decode(bytes: &[u8], policy: &Images) -> Result<DynamicImage, Refused> {
    let (decoder, header) = open(bytes, policy)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| from_image_error(e, "data"))?;
    img.apply_orientation(header.orientation);
    Ok(img)
}

/// The file extension of a format lab5 reads.
pub fn extension(format: ImageFormat) -> Option<&'static str> {
    FORMATS.iter().find(|(f, _)| *f == format).map(|(_, e)| *e)
}

fn reader(bytes: &[u8], format: ImageFormat) -> ImageReader<Cursor<&[u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), format);
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_DECODED_BYTES);
    r.limits(l);
    r
}

/// The format from the bytes; empty, unknown, unsupported and cut-off JPEG bytes refused.
fn format_of(bytes: &[u8]) -> Result<ImageFormat, Refused> {
    if bytes.is_empty() {
        return Err(Refused::new(Refusal::Empty, "the file is empty (0 bytes)"));
    }
    let Ok(format) = image::guess_format(bytes) else {
        return Err(unknown_bytes(bytes));
    };
    if extension(format).is_none() {
        let name = format!("{format:?}").to_uppercase();
        let msg = format!("{name} is not read by lab5 (JPEG, PNG, WebP): {CONVERT}");
        return Err(Refused::new(Refusal::Unsupported, msg));
    }
    if format == ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        let msg = "truncated JPEG: the data stops before the end-of-image marker";
        return Err(Refused::new(Refusal::Truncated, msg));
    }
    Ok(format)
}

/// HEIC/HEIF (what iPhones save) is named; anything else is not an image.
fn unknown_bytes(bytes: &[u8]) -> Refused {
    let brand = bytes.get(4..12).unwrap_or_default();
    let heif = [
        b"ftypheic",
        b"ftypheix",
        b"ftypmif1",
        b"ftyphevc",
        b"ftypmsf1",
    ];
    if heif.iter().any(|b| brand == *b) {
        let msg = format!("HEIC/HEIF is not read by lab5 (JPEG, PNG, WebP): {CONVERT}");
        return Refused::new(Refusal::Unsupported, msg);
    }
    let start = &bytes[..bytes.len().min(4)];
    let msg =
        format!("not an image: the bytes are not JPEG, PNG or WebP (they start with {start:02x?})");
    Refused::new(Refusal::NotImage, msg)
}

/// Width and height as seen: swapped by a quarter turn.
fn seen((w, h): (u32, u32), o: Orientation) -> (u32, u32) {
    use Orientation::{Rotate270, Rotate270FlipH, Rotate90, Rotate90FlipH};
    match o {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (h, w),
        _ => (w, h),
    }
}

/// The policy's size and shape limits, from the header's size.
pub fn check_shape(w: u32, h: u32, p: &Images) -> Result<(), Refused> {
    let pixels = w as u64 * h as u64;
    if pixels > p.max_pixels {
        let msg = format!(
            "{w}x{h} pixels ({:.0} megapixels) is more than images.max_pixels ({})",
            pixels as f64 / 1e6,
            p.max_pixels
        );
        return Err(Refused::new(Refusal::TooLarge, msg));
    }
    let (short, long) = (w.min(h), w.max(h));
    if short < p.min_side {
        let msg = format!(
            "{w}x{h} pixels: the shorter side is under images.min_side ({} pixels)",
            p.min_side
        );
        return Err(Refused::new(Refusal::TooSmall, msg));
    }
    let ratio = long as f64 / short as f64;
    if ratio > p.max_aspect_ratio {
        let msg = format!(
            "{w}x{h} pixels: the longer side is {ratio:.1} times the shorter, more than \
             images.max_aspect_ratio ({})",
            p.max_aspect_ratio
        );
        return Err(Refused::new(Refusal::TooThin, msg));
    }
    Ok(())
}

fn from_image_error(e: ImageError, part: &str) -> Refused {
    match e {
        ImageError::Limits(l) => {
            let msg = format!(
                "the image is too large to decode ({l}; at most {MAX_SIDE} pixels a side and \
                 {} MiB decoded)",
                MAX_DECODED_BYTES >> 20
            );
            Refused::new(Refusal::TooLarge, msg)
        }
        ImageError::Unsupported(u) => Refused::new(
            Refusal::Unsupported,
            format!("unsupported variant: {u}: {CONVERT}"),
        ),
        e => Refused::new(Refusal::Corrupt, format!("corrupt image {part}: {e}")),
    }
}

/// True when the JPEG's compressed data is followed by an end-of-image marker: the
/// header segments are skipped by their lengths (so an embedded thumbnail's marker does
/// not count) up to the first start-of-scan; after it, `FF D9` can only be the real end,
/// because entropy-coded data escapes every `FF` byte. Searched from the end, where it
/// normally is.
pub fn jpeg_has_end(b: &[u8]) -> bool {
    let mut i = SOI_LEN;
    while i + 4 <= b.len() {
        if b[i] != 0xFF || b[i + 1] == 0xFF {
            i += 1; // fill bytes or stray data between segments: tolerated
            continue;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if b[i + 1] == MARKER_SOS {
            let scan = b.get(i + 2 + len..).unwrap_or_default();
            return scan.windows(2).rev().any(|w| w == [0xFF, MARKER_EOI]);
        }
        i += 2 + len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A 40x20 image, red on the left half, blue on the right.
    fn halves() -> RgbImage {
        RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                Rgb([250, 0, 0])
            } else {
                Rgb([0, 0, 250])
            }
        })
    }

    /// A JPEG with an EXIF APP1 segment holding only the Orientation tag.
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
        tiff.extend([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01]);
        tiff.extend(orientation.to_be_bytes());
        tiff.extend([0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend(tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(len.to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied_to_size_and_pixels() {
        let jpeg = encode(&halves(), ImageFormat::Jpeg);
        // A 40x20 test image is under the shipped `images.min_side`: only the orientation
        // is tested here.
        let p = Images::display();
        let plain = decode(&jpeg, &p).unwrap();
        assert_eq!((plain.width(), plain.height()), (40, 20));
        // Orientation 6: the viewer turns the stored image a quarter clockwise, so the
        // red left half ends up on top.
        let sideways = with_orientation(&jpeg, 6);
        let h = header(&sideways, &p).unwrap();
        assert_eq!((h.width, h.height), (20, 40));
        let img = decode(&sideways, &p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (20, 40));
        assert!(img.get_pixel(10, 5)[0] > 200 && img.get_pixel(10, 35)[2] > 200);
    }

    #[test]
    fn limits_and_shapes_are_refused_with_the_limit_named() {
        let p = Images::default();
        let png = |w: u32, h: u32| encode(&RgbImage::new(w, h), ImageFormat::Png);
        let tiny = decode(&png(1, 1), &p).unwrap_err();
        assert_eq!(tiny.kind, Refusal::TooSmall);
        assert!(tiny.detail.contains("images.min_side"), "{tiny}");
        let strip = decode(&png(3000, 40), &p).unwrap_err();
        assert_eq!(strip.kind, Refusal::TooThin);
        assert!(strip.detail.contains("images.max_aspect_ratio"), "{strip}");
        let small = Images {
            max_pixels: 10_000,
            ..Images::default()
        };
        let big = decode(&png(200, 100), &small).unwrap_err();
        assert_eq!(big.kind, Refusal::TooLarge);
        assert!(big.detail.contains("images.max_pixels"), "{big}");
        assert!(decode(&png(200, 100), &p).is_ok());
    }

    /// A PNG header declaring 100000x100000 (and 20000x4500) pixels in a few bytes: refused
    /// from the header, before any allocation of its decoded size.
    #[test]
    fn a_small_file_declaring_a_huge_image_is_refused_from_its_header() {
        let mut png = encode(&RgbImage::new(8, 8), ImageFormat::Png);
        for (w, h) in [(100_000u32, 100_000u32), (20_000, 4_500)] {
            png[16..20].copy_from_slice(&w.to_be_bytes());
            png[20..24].copy_from_slice(&h.to_be_bytes());
            let crc = crc32fast::hash(&png[12..29]);
            png[29..33].copy_from_slice(&crc.to_be_bytes());
            let e = decode(&png, &Images::default()).unwrap_err();
            assert_eq!(e.kind, Refusal::TooLarge, "{w}x{h}: {e}");
            assert_eq!(
                header(&png, &Images::default()).unwrap_err().kind,
                Refusal::TooLarge
            );
        }
    }

    #[test]
    fn other_formats_are_named_with_a_hint() {
        let p = Images::default();
        let gif = decode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &p).unwrap_err();
        assert_eq!(gif.kind, Refusal::Unsupported);
        assert!(
            gif.detail.contains("GIF") && gif.detail.contains("convert"),
            "{gif}"
        );
        let heic = decode(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", &p).unwrap_err();
        assert_eq!(heic.kind, Refusal::Unsupported);
        assert!(heic.detail.contains("HEIC"), "{heic}");
        assert_eq!(decode(b"", &p).unwrap_err().kind, Refusal::Empty);
        assert_eq!(decode(b"<html>", &p).unwrap_err().kind, Refusal::NotImage);
    }

    #[test]
    fn an_end_marker_inside_a_header_segment_does_not_count() {
        // SOI, APP1 (length 6) holding FF D9 (like an EXIF thumbnail), SOS (length 2), data.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        b.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34]);
        assert!(!jpeg_has_end(&b));
        b.extend([0xFF, 0xD9]);
        assert!(jpeg_has_end(&b));
    }
}

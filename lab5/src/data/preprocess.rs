//! One image, bytes to network input: decode (format taken from the bytes, never from the
//! file name), resize the shorter side keeping the aspect ratio, centre-crop a square, and
//! lay the pixels out channel-first (`3 x S x S`, uint8).
//!
//! Speed matters here (2,100 photos must take seconds, not minutes):
//! - decoding goes through `image` (its JPEG decoder is `zune-jpeg`, SIMD; measured faster
//!   here than `jpeg-decoder` even with that one's DCT downscaling);
//! - `fast_image_resize` (SIMD) resizes only the source box that ends up in the centre
//!   crop, straight to the final square, with an antialiasing filter.

use crate::config::Images;
use anyhow::{anyhow, bail, Result};
use fast_image_resize as fir;

/// Resampling filter: Catmull-Rom (bicubic, like Pillow's default), antialiased when
/// shrinking.
const FILTER: fir::FilterType = fir::FilterType::CatmullRom;

/// A decoded image: 3 bytes (R, G, B) per pixel, row after row.
#[derive(Debug, Clone)]
pub(crate) struct Rgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decodes, resizes (shorter side to `resize_shorter`), centre-crops to `size` and returns
/// the `3 * size * size` bytes channel-first. Errors say what is wrong with the bytes. For
/// photos of the data set, which passed the decoding policy when they came in: only the
/// hard limits apply ([`Images::display`]), so a photo accepted then is readable now.
pub(crate) fn preprocess_bytes(bytes: &[u8], size: u32, resize_shorter: u32) -> Result<Vec<u8>> {
    preprocess_bytes_with(bytes, size, resize_shorter, &Images::display())
}

/// [`preprocess_bytes`] under `policy` (for images from outside the data set: predict,
/// evaluate).
pub(crate) fn preprocess_bytes_with(
    bytes: &[u8],
    size: u32,
    resize_shorter: u32,
    policy: &Images,
) -> Result<Vec<u8>> {
    if size == 0 || resize_shorter < size {
        bail!("bad preprocessing settings: size {size}, resize_shorter {resize_shorter} (need 0 < size <= resize_shorter)");
    }
    let rgb = decode(bytes, policy)?;
    let square = resize_centre_crop(&rgb, size, resize_shorter)?;
    Ok(to_channels_first(&square, size as usize))
}

/// Decodes image bytes to RGB (8 bits per channel) under the decoding policy
/// ([`crate::decode`]: format from the bytes, limits, a JPEG must be complete, EXIF
/// orientation applied).
pub(crate) fn decode(bytes: &[u8], policy: &Images) -> Result<Rgb> {
    let img = crate::decode::decode(bytes, policy)?.into_rgb8();
    rgb(img.width(), img.height(), img.into_raw())
}

fn rgb(width: u32, height: u32, pixels: Vec<u8>) -> Result<Rgb> {
    if pixels.len() != width as usize * height as usize * 3 {
        bail!(
            "decoder returned {} bytes for {width}x{height} RGB",
            pixels.len()
        );
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

/// The centre `size x size` square of the image once its shorter side is scaled to
/// `resize_shorter`, computed by resizing only the source box that lands in the crop.
/// Returns interleaved RGB (`size * size * 3` bytes).
pub(crate) fn resize_centre_crop(img: &Rgb, size: u32, resize_shorter: u32) -> Result<Vec<u8>> {
    let (w, h) = (img.width as f64, img.height as f64);
    let side = w.min(h) * size as f64 / resize_shorter as f64;
    let src = fir::images::ImageRef::new(img.width, img.height, &img.pixels, fir::PixelType::U8x3)
        .map_err(|e| anyhow!("cannot view decoded image: {e}"))?;
    let mut dst = fir::images::Image::new(size, size, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(FILTER))
        .crop((w - side) / 2.0, (h - side) / 2.0, side, side);
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| anyhow!("cannot resize image: {e}"))?;
    Ok(dst.into_vec())
}

/// Interleaved RGB (`H x W x 3`) to planar (`3 x H x W`), for a square of side `size`.
pub(crate) fn to_channels_first(rgb: &[u8], size: usize) -> Vec<u8> {
    let plane = size * size;
    let mut out = vec![0u8; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
        out[i] = px[0];
        out[plane + i] = px[1];
        out[2 * plane + i] = px[2];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn striped(width: u32, height: u32) -> Rgb {
        let mut pixels = Vec::new();
        for _y in 0..height {
            for x in 0..width {
                let v = if x < width / 2 { 0 } else { 255 };
                pixels.extend([v, 100, 255 - v]);
            }
        }
        Rgb {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn centre_crop_of_a_wide_image_keeps_the_middle() {
        // 400x100: shorter side 100 -> 40, long side 160; the 40-square centre crop
        // covers source x in 150..250, half black (left) and half white (right).
        let out = resize_centre_crop(&striped(400, 100), 40, 40).unwrap();
        let chw = to_channels_first(&out, 40);
        let red = &chw[..1600];
        assert!(red[0] < 10 && red[39] > 245, "{} {}", red[0], red[39]);
        assert!(chw[1600..3200].iter().all(|&g| g == 100));
        assert_eq!(chw[3200], 255 - red[0]);
    }

    #[test]
    fn bad_bytes_get_clear_errors() {
        let p = Images::default();
        let empty = decode(&[], &p).unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
        let text = decode(b"hello, not an image", &p).unwrap_err().to_string();
        assert!(text.contains("not an image"), "{text}");
    }

    fn jpeg_bytes() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_jpeg_cut_short_is_rejected_as_truncated() {
        let full = jpeg_bytes();
        assert!(crate::decode::jpeg_has_end(&full));
        assert_eq!(preprocess_bytes(&full, 32, 40).unwrap().len(), 3 * 32 * 32);
        let cut = &full[..full.len() - 40];
        let err = decode(cut, &Images::default()).unwrap_err().to_string();
        assert!(err.contains("truncated JPEG"), "{err}");
    }

    #[test]
    fn settings_are_checked() {
        let err = preprocess_bytes(b"x", 128, 112).unwrap_err().to_string();
        assert!(err.contains("resize_shorter"), "{err}");
    }
}

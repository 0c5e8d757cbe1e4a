//! The pixel operations of the suite, one per [`Corruption`], on an 8-bit RGB image (the
//! model's input: resized, centre-cropped, not yet normalised), computed in `f32` on the
//! 0..1 scale like ImageNet-C and rounded back to 8 bits.
//!
//! Library code does the work where it fits: `image` for the Gaussian blur (separable,
//! edges clamped like ImageNet-C's `skimage` call; kernel size from OpenCV's rule, about
//! ±2.3 sigma instead of skimage's ±4, which drops under 2 % of the weight) and for
//! JPEG (libjpeg's quality scaling of the standard tables, as PIL; `image` keeps full
//! chroma resolution where PIL subsamples it, so the same quality is a little milder),
//! `fast_image_resize` for pixelation (box filter, as PIL's `BOX`) and zoom (bilinear),
//! libtorch's `grid_sample` for rotation (bilinear, reflection padding), `rand_distr`
//! for the noise. Differences from ImageNet-C's files: pixels are rounded instead of
//! truncated, and not stored as JPEG (quality 85) afterwards.

use super::suite::Corruption;
use anyhow::{anyhow, Context, Result};
use fast_image_resize as fir;
use image::{ImageFormat, RgbImage};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

/// ITU-R BT.601 luma weights (PIL's `convert("L")`, torchvision's `rgb_to_grayscale`).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];
/// `grid_sample` modes: bilinear interpolation, reflection padding.
const BILINEAR: i64 = 0;
const REFLECTION: i64 = 2;

impl Corruption {
    /// The image corrupted with parameter `c` (see [`Corruption::levels`] for the
    /// suite's values and [`Corruption::identity`] for the one that changes nothing);
    /// `rng` drives the random parts (noise, rotation direction). Errors only when a
    /// library call fails (a bad parameter such as a negative noise level).
    pub(crate) fn apply(self, img: &RgbImage, c: f64, rng: &mut StdRng) -> Result<RgbImage> {
        let c32 = c as f32;
        match self {
            Corruption::Brightness => Ok(map_pixels(img, |p| brighter(p, c32))),
            Corruption::Contrast => Ok(contrast(img, c32)),
            Corruption::GaussianNoise => noise(img, c32, rng),
            Corruption::GaussianBlur => Ok(blur(img, c32)),
            Corruption::Jpeg => jpeg(img, c),
            Corruption::Pixelate => pixelate(img, c),
            Corruption::Zoom => zoom(img, c),
            Corruption::Rotation => rotate(img, c * sign(rng)),
            Corruption::Greyscale => Ok(map_pixels(img, |p| towards_luma(p, c32))),
        }
    }
}

/// A 0..1 value back to 8 bits, rounded and clipped.
fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Applies `f` to every pixel, given and returned on the 0..1 scale.
fn map_pixels(img: &RgbImage, f: impl Fn([f32; 3]) -> [f32; 3]) -> RgbImage {
    let mut out = img.clone();
    for px in out.pixels_mut() {
        let v = f(px.0.map(|x| f32::from(x) / 255.0));
        px.0 = v.map(to_u8);
    }
    out
}

/// ImageNet-C's brightness: HSV value `v` raised to `min(v + c, 1)`, hue and saturation
/// kept. With hue and saturation fixed every channel is proportional to `v`, so the
/// HSV round trip is a scaling of the pixel (black has no hue: it becomes grey `c`).
fn brighter(p: [f32; 3], c: f32) -> [f32; 3] {
    let v = p[0].max(p[1]).max(p[2]);
    if v <= 0.0 {
        return [c.min(1.0); 3];
    }
    let scale = (v + c).min(1.0) / v;
    p.map(|x| x * scale)
}

/// ImageNet-C's contrast: `(x - mean) * c + mean`, with the mean of each channel over
/// the image.
fn contrast(img: &RgbImage, c: f32) -> RgbImage {
    let mut sums = [0f64; 3];
    for px in img.pixels() {
        for (s, &x) in sums.iter_mut().zip(&px.0) {
            *s += f64::from(x) / 255.0;
        }
    }
    let n = f64::from(img.width() * img.height()).max(1.0);
    let means = sums.map(|s| (s / n) as f32);
    map_pixels(img, |p| [0, 1, 2].map(|i| (p[i] - means[i]) * c + means[i]))
}

/// ImageNet-C's gaussian_noise: `clip(x + N(0, c))` per pixel and channel, in row order.
fn noise(img: &RgbImage, c: f32, rng: &mut StdRng) -> Result<RgbImage> {
    let normal = Normal::new(0.0f32, c).map_err(|e| anyhow!("noise level {c}: {e}"))?;
    let mut out = img.clone();
    for x in out.iter_mut() {
        *x = to_u8(f32::from(*x) / 255.0 + normal.sample(rng));
    }
    Ok(out)
}

/// Gaussian blur of `sigma` pixels (none for `sigma <= 0`).
fn blur(img: &RgbImage, sigma: f32) -> RgbImage {
    if sigma <= 0.0 {
        return img.clone();
    }
    image::imageops::blur(img, sigma)
}

/// Encoded as JPEG at `quality` (1..=100) and decoded again.
fn jpeg(img: &RgbImage, quality: f64) -> Result<RgbImage> {
    let q = quality.round().clamp(1.0, 100.0) as u8;
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q)
        .encode_image(img)
        .with_context(|| format!("JPEG encoding at quality {q}"))?;
    let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)
        .with_context(|| format!("JPEG decoding at quality {q}"))?;
    Ok(decoded.into_rgb8())
}

/// ImageNet-C's pixelate: box-resized to `floor(side * c)` pixels, then back.
fn pixelate(img: &RgbImage, c: f64) -> Result<RgbImage> {
    let side = img.width();
    let small = ((f64::from(side) * c) as u32).clamp(1, side);
    let alg = fir::ResizeAlg::Convolution(fir::FilterType::Box);
    let down = resize(img, small, alg, None)?;
    resize(&down, side, alg, None)
}

/// ImageNet-C's clipped zoom (one factor): the central `ceil(side / z)` square, resized
/// back to the full side, bilinear.
fn zoom(img: &RgbImage, z: f64) -> Result<RgbImage> {
    let side = f64::from(img.width());
    let crop = (side / z.max(1.0)).ceil();
    let top = ((side - crop) / 2.0).floor();
    let alg = fir::ResizeAlg::Convolution(fir::FilterType::Bilinear);
    resize(img, img.width(), alg, Some((top, crop)))
}

/// `img` (square) resized to `side x side` with `alg`, from the square crop
/// `(offset, crop side)` when given.
fn resize(
    img: &RgbImage,
    side: u32,
    alg: fir::ResizeAlg,
    crop: Option<(f64, f64)>,
) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    let src = fir::images::ImageRef::new(w, h, img.as_raw(), fir::PixelType::U8x3)
        .map_err(|e| anyhow!("cannot view the image for resizing: {e}"))?;
    let mut dst = fir::images::Image::new(side, side, fir::PixelType::U8x3);
    let mut options = fir::ResizeOptions::new().resize_alg(alg);
    if let Some((at, s)) = crop {
        options = options.crop(at, at, s, s);
    }
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| anyhow!("cannot resize the image: {e}"))?;
    RgbImage::from_raw(side, side, dst.into_vec()).context("resized image has a wrong size")
}

/// +1 or -1, evenly.
fn sign(rng: &mut StdRng) -> f64 {
    if rng.random_bool(0.5) {
        1.0
    } else {
        -1.0
    }
}

/// Rotated by `degrees` about the centre, bilinear, borders filled by reflection
/// (libtorch's `affine_grid` + `grid_sample`).
fn rotate(img: &RgbImage, degrees: f64) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    let (w, h) = (i64::from(w), i64::from(h));
    let x = Tensor::f_from_slice(img.as_raw())?
        .f_view([1, h, w, 3])?
        .f_permute([0, 3, 1, 2])?
        .f_to_kind(Kind::Float)?;
    let (s, c) = degrees.to_radians().sin_cos();
    let theta = Tensor::f_from_slice(&[c as f32, -s as f32, 0.0, s as f32, c as f32, 0.0])?
        .f_view([1, 2, 3])?;
    let grid = Tensor::f_affine_grid_generator(&theta, [1, 3, h, w], false)?;
    let y = x.f_grid_sampler(&grid, BILINEAR, REFLECTION, false)?;
    let y = y.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)?;
    let hwc = y.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_view([-1])?;
    let raw = Vec::<u8>::try_from(&hwc)?;
    RgbImage::from_raw(w as u32, h as u32, raw).context("rotated image has a wrong size")
}

/// The pixel blended towards its luma by the share `a` (1 = grey).
fn towards_luma(p: [f32; 3], a: f32) -> [f32; 3] {
    let y = LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2];
    p.map(|x| x + a * (y - x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robustness::suite::SEVERITIES;
    use rand::SeedableRng;

    /// A smooth colourful test picture with edges (gradients and a disc).
    fn picture(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let (fx, fy) = (x as f32 / side as f32, y as f32 / side as f32);
            let disc = (fx - 0.6).powi(2) + (fy - 0.4).powi(2) < 0.04;
            let r = if disc { 230.0 } else { 40.0 + 180.0 * fx };
            image::Rgb([
                r as u8,
                (30.0 + 200.0 * fy) as u8,
                (200.0 - 150.0 * fx * fy) as u8,
            ])
        })
    }

    /// Mean absolute difference of two images, in 8-bit levels.
    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        let sum: u64 = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    fn corrupted(c: Corruption, img: &RgbImage, p: f64) -> RgbImage {
        c.apply(img, p, &mut StdRng::seed_from_u64(7)).unwrap()
    }

    #[test]
    fn the_identity_parameter_leaves_the_image_as_it_is() {
        let img = picture(64);
        for c in Corruption::ALL {
            let d = mean_abs_diff(&img, &corrupted(c, &img, c.identity()));
            let allowed = if c == Corruption::Jpeg { 2.0 } else { 0.0 };
            assert!(d <= allowed, "{c}: {d}");
        }
    }

    #[test]
    fn each_corruption_is_mild_at_first_and_grows_with_severity() {
        let img = picture(112);
        for c in Corruption::ALL {
            let d: Vec<f64> = c
                .levels(112)
                .iter()
                .map(|&p| mean_abs_diff(&img, &corrupted(c, &img, p)))
                .collect();
            assert_eq!(d.len(), SEVERITIES);
            assert!(d[0] > 0.0 && d[0] < 0.15 * 255.0, "{c} mildest: {d:?}");
            assert!(d[0] < d[1] && d[1] < d[2], "{c} not growing: {d:?}");
        }
    }

    #[test]
    fn random_corruptions_repeat_with_the_same_seed_only() {
        let img = picture(48);
        for c in [Corruption::GaussianNoise, Corruption::Rotation] {
            let p = c.levels(48)[1];
            let with = |seed| c.apply(&img, p, &mut StdRng::seed_from_u64(seed)).unwrap();
            assert_eq!(with(1), with(1), "{c}");
        }
        let noisy = |seed| {
            Corruption::GaussianNoise
                .apply(&img, 0.1, &mut StdRng::seed_from_u64(seed))
                .unwrap()
        };
        assert_ne!(noisy(1), noisy(2));
    }

    #[test]
    fn known_values() {
        // brightness: HSV value 0.5 -> 0.8 scales the pixel by 1.6; black becomes grey.
        let b = brighter([0.5, 0.25, 0.0], 0.3);
        assert!((b[0] - 0.8).abs() < 1e-6 && (b[1] - 0.4).abs() < 1e-6 && b[2] == 0.0);
        assert_eq!(brighter([0.0; 3], 0.3), [0.3; 3]);
        // greyscale at 1: every channel is the luma.
        let g = towards_luma([1.0, 0.0, 0.0], 1.0);
        assert!(g.iter().all(|&x| (x - 0.299).abs() < 1e-6));
        // contrast 0: every pixel is the channel mean.
        let flat = contrast(&picture(16), 0.0);
        assert!(flat.pixels().all(|p| p == flat.get_pixel(0, 0)));
        // rotation by 180 degrees turns the picture upside down (exact on the grid).
        let img = picture(16);
        let r = rotate(&img, 180.0).unwrap();
        assert_eq!(r.get_pixel(0, 0), img.get_pixel(15, 15));
    }
}

//! Batches from the uint8 tensor cache: shuffling, augmentation and normalisation, all on
//! whole batches of tensors (no per-image Rust loops over pixels), so the model, not the
//! loader, takes the epoch's time.
//!
//! Augmentation (training only, every part configurable in `config.augment`):
//! - random resized crop (area fraction in `[crop_scale_min, 1]`, aspect ratio in
//!   `[crop_ratio_min, crop_ratio_max]`, log-uniform) and horizontal flip, done together
//!   as one bilinear resampling of the batch (`grid_sampler` on a separable sampling
//!   grid built by broadcasting): each image gets its own crop box and flip;
//! - colour jitter: brightness, contrast and saturation factors drawn per image in
//!   `[1 - s, 1 + s]`. Brightness and contrast are one affine map per image (torchvision's
//!   clamp between the two is skipped), saturation blends with the grey image; values are
//!   clamped to the pixel range.
//!
//! - photo quality (each off by default): low-resolution copies, Gaussian blur and
//!   Gaussian pixel noise, each on a random share of the images.
//!
//! Pixels stay in `[0, 255]` until the end, where `/255`, mean and std become one fused
//! multiply-add. Every random draw comes from a `StdRng` seeded by the caller (use a
//! different seed per epoch, e.g. `seed + epoch`), except the values of the pixel noise,
//! which come from libtorch's generator (`tch::manual_seed`, set once per training from
//! `runtime.seed`); runs are reproducible.

use super::cache::SplitTensors;
use crate::config::Augment;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// Per-channel mean and standard deviation used to normalise inputs in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    /// Mean of R, G, B.
    pub mean: [f64; 3],
    /// Standard deviation of R, G, B.
    pub std: [f64; 3],
}

/// The ImageNet statistics (what pretrained backbones expect; fine for scratch CNNs too).
pub const IMAGENET: Normalize = Normalize {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

/// Weights of R, G, B in the grey value (ITU-R 601 luma, as torchvision uses).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];
/// Attempts at drawing a crop box that fits before falling back to the whole image
/// (torchvision's `RandomResizedCrop` does the same).
const CROP_ATTEMPTS: usize = 10;
/// `grid_sampler` interpolation mode 0: bilinear.
const BILINEAR: i64 = 0;
/// `grid_sampler` padding mode 2: reflection (a shifted image is padded with its mirror,
/// as a reflect-padded random crop does).
const REFLECTION: i64 = 2;
/// Largest value of a uint8 pixel.
pub(crate) const PIXEL_MAX: f64 = 255.0;

/// uint8 images (`(B,3,S,S)` or `(3,S,S)`) to normalised float32 on `device`.
pub fn normalize(images_u8: &Tensor, norm: &Normalize, device: Device) -> Tensor {
    normalize_float(&to_float(images_u8, device), norm)
}

/// The inverse of [`normalize`]: normalised float images `(B,3,S,S)` back to uint8 pixels
/// `(B,3,S,S)` on the CPU (rounded, clamped to `0..=255`), e.g. to look at an augmented
/// batch.
pub fn denormalize(x: &Tensor, norm: &Normalize) -> Tensor {
    let _guard = tch::no_grad_guard();
    let x = x.to_device(Device::Cpu).to_kind(Kind::Float);
    let scale: [f32; 3] = std::array::from_fn(|c| (PIXEL_MAX * norm.std[c]) as f32);
    let shift: [f32; 3] = std::array::from_fn(|c| (PIXEL_MAX * norm.mean[c]) as f32);
    let as_channels = |v: &[f32; 3]| Tensor::from_slice(v).view([3, 1, 1]);
    as_channels(&shift)
        .addcmul(&x, &as_channels(&scale))
        .round()
        .clamp(0.0, PIXEL_MAX)
        .to_kind(Kind::Uint8)
}

/// uint8 to float32 (still `0..=255`) on `device`; the bytes move first (4x less to copy).
fn to_float(images_u8: &Tensor, device: Device) -> Tensor {
    images_u8.to_device(device).to_kind(Kind::Float)
}

/// `(x / 255 - mean) / std` per channel as one fused multiply-add, for `x` in `[0, 255]`.
fn normalize_float(x: &Tensor, norm: &Normalize) -> Tensor {
    let scale: [f32; 3] = std::array::from_fn(|c| (1.0 / (PIXEL_MAX * norm.std[c])) as f32);
    let shift: [f32; 3] = std::array::from_fn(|c| (-norm.mean[c] / norm.std[c]) as f32);
    let as_channels = |v: &[f32; 3]| Tensor::from_slice(v).view([3, 1, 1]).to_device(x.device());
    as_channels(&shift).addcmul(x, &as_channels(&scale))
}

/// An iterator over `(images, labels)` batches: images `(B,3,S,S)` float32 normalised,
/// labels `(B,)` int64, both on the device. The last batch may be smaller.
pub struct Batches {
    images: Tensor,
    labels: Tensor,
    order: Vec<i64>,
    pos: usize,
    batch_size: usize,
    augment: Option<Augment>,
    out_size: i64,
    norm: Normalize,
    rng: StdRng,
    device: Device,
}

/// Batches of a split. With `augment`, the order is shuffled and every batch augmented
/// (training); without, batches come in order, unchanged (evaluation). `seed` drives the
/// shuffle and the augmentation. Augmented batches are `out_size` pixels square (the
/// crops are resampled from the split's larger images when `out_size` is smaller: see
/// `augment.crop_source`); unaugmented ones keep the split's size.
pub fn batches(
    split: &SplitTensors,
    batch_size: usize,
    augment: Option<&Augment>,
    out_size: i64,
    norm: &Normalize,
    seed: u64,
    device: Device,
) -> Batches {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<i64> = (0..split.len() as i64).collect();
    if augment.is_some() {
        order.shuffle(&mut rng);
    }
    Batches {
        images: split.images.shallow_clone(),
        labels: split.labels.shallow_clone(),
        order,
        pos: 0,
        batch_size: batch_size.max(1),
        augment: augment.cloned(),
        out_size,
        norm: *norm,
        rng,
        device,
    }
}

impl Iterator for Batches {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let idx = Tensor::from_slice(&self.order[self.pos..end]);
        self.pos = end;
        let x = to_float(&self.images.index_select(0, &idx), self.device);
        let y = self.labels.index_select(0, &idx).to_device(self.device);
        let x = match &self.augment {
            Some(a) => augment_batch(&x, a, self.out_size, &mut self.rng),
            None => x,
        };
        Some((normalize_float(&x, &self.norm), y))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.order.len() - self.pos;
        let n = left.div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches {}

/// Crop + flip (+ rotation), then colour jitter, then random greyscale, then random
/// low resolution, then random blur, then random noise (optics before the sensor), on a
/// float batch with pixels in `[0, 255]`.
///
/// `x` is `(B, 3, H, W)`; the result `(B, 3, out_size, out_size)`. With `out_size` below
/// the input's side the crops are resampled to it (a crop box of the whole input is then
/// the whole photo shrunk; one of `out_size / H` of the side is a 1:1 crop).
pub(crate) fn augment_batch(x: &Tensor, a: &Augment, out_size: i64, rng: &mut StdRng) -> Tensor {
    let mut x = crop_and_flip(x, a, out_size, rng);
    x = color_jitter(&x, a, rng);
    if a.grayscale > 0.0 {
        x = random_grayscale(&x, a.grayscale, rng);
    }
    if a.downscale > 0.0 {
        x = random_downscale(&x, a.downscale, a.downscale_min, rng);
    }
    if a.blur > 0.0 {
        x = random_blur(&x, a.blur, a.blur_sigma, rng);
    }
    if a.noise > 0.0 {
        x = random_noise(&x, a.noise, a.noise_std, rng);
    }
    x
}

/// Each image blurred with probability `p` by a Gaussian of its own sigma, drawn in
/// `[0.1, sigma_max]` pixels (torchvision's `GaussianBlur(sigma=(0.1, sigma_max))`,
/// reflected borders). The chosen images are blurred together: one separable pass per
/// axis as a grouped convolution with one kernel per image and channel, every kernel
/// `2 ceil(3 sigma_max) + 1` taps long.
fn random_blur(x: &Tensor, p: f64, sigma_max: f64, rng: &mut StdRng) -> Tensor {
    let n = x.size()[0];
    let mut sigmas: Vec<(i64, f64)> = Vec::new();
    for i in 0..n {
        if rng.random::<f64>() < p {
            sigmas.push((i, uniform(rng, 0.1, sigma_max)));
        }
    }
    if sigmas.is_empty() {
        return x.shallow_clone();
    }
    let radius = (3.0 * sigma_max).ceil() as i64;
    let taps: Vec<f32> = sigmas
        .iter()
        .flat_map(|&(_, s)| gaussian_taps(s, radius).repeat(3))
        .collect();
    let (k, c) = (2 * radius + 1, 3 * sigmas.len() as i64);
    let kernel = Tensor::from_slice(&taps)
        .view([c, 1, 1, k])
        .to_device(x.device());
    let picked: Vec<i64> = sigmas.iter().map(|&(i, _)| i).collect();
    let picked = Tensor::from_slice(&picked).to_device(x.device());
    let (h, w) = (x.size()[2], x.size()[3]);
    let chosen = x.index_select(0, &picked).reshape([1, c, h, w]);
    let padded = chosen.pad([radius, radius, radius, radius], "reflect", None);
    let rows = padded.conv2d(&kernel, None::<Tensor>, [1, 1], [0, 0], [1, 1], c);
    let both = rows.conv2d(
        &kernel.transpose(2, 3),
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        c,
    );
    x.index_copy(0, &picked, &both.reshape([-1, 3, h, w]))
}

/// Each image replaced with probability `p` by a low-resolution copy: shrunk by area
/// averaging to a side drawn in `[min_fraction, 1]` of its own, then enlarged back, with
/// nearest neighbours (the blocks of ImageNet-C's `pixelate`) or bilinear (a small photo
/// upscaled), one of the two at random.
fn random_downscale(x: &Tensor, p: f64, min_fraction: f64, rng: &mut StdRng) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let out = x.copy();
    for i in 0..n {
        if rng.random::<f64>() >= p {
            continue;
        }
        let f = uniform(rng, min_fraction, 1.0);
        let small_side = |len: i64| ((len as f64 * f).round() as i64).clamp(1, len);
        let small = x
            .narrow(0, i, 1)
            .adaptive_avg_pool2d([small_side(h), small_side(w)]);
        let back = if rng.random::<bool>() {
            small.upsample_nearest2d([h, w], None, None)
        } else {
            small.upsample_bilinear2d([h, w], false, None, None)
        };
        out.narrow(0, i, 1).copy_(&back);
    }
    out
}

/// The `2 radius + 1` taps of a normalised 1-D Gaussian of standard deviation `sigma`.
fn gaussian_taps(sigma: f64, radius: i64) -> Vec<f32> {
    let raw: Vec<f64> = (-radius..=radius)
        .map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / total) as f32).collect()
}

/// Zero-mean Gaussian noise added to each image with probability `p`, its standard
/// deviation drawn per image in `[0, std_max]` on the 0..1 scale (ImageNet-C's
/// `gaussian_noise` at a random level); the noise itself comes from libtorch's seeded
/// generator (`tch::manual_seed`), values clamped to the pixel range.
fn random_noise(x: &Tensor, p: f64, std_max: f64, rng: &mut StdRng) -> Tensor {
    let n = x.size()[0] as usize;
    let std: Vec<f32> = (0..n)
        .map(|_| {
            let on = rng.random::<f64>() < p;
            let s = uniform(rng, 0.0, std_max);
            if on {
                (s * PIXEL_MAX) as f32
            } else {
                0.0
            }
        })
        .collect();
    if std.iter().all(|s| *s == 0.0) {
        return x.shallow_clone();
    }
    (x + x.randn_like() * per_image(&std, x.device())).clamp(0.0, PIXEL_MAX)
}

/// Each image turned grey (the luma in all three channels) with probability `p`.
fn random_grayscale(x: &Tensor, p: f64, rng: &mut StdRng) -> Tensor {
    let n = x.size()[0] as usize;
    let pick: Vec<f32> = (0..n)
        .map(|_| f32::from(u8::from(rng.random::<f64>() < p)))
        .collect();
    let pick = per_image(&pick, x.device());
    let g = grey(x).expand_as(x);
    x + (g - x) * pick
}

/// Random resized crop and horizontal flip as one bilinear resampling of the batch, to
/// `out` pixels square.
fn crop_and_flip(x: &Tensor, a: &Augment, out: i64, rng: &mut StdRng) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let same_size = out == h && out == w;
    if same_size && a.crop_scale_min >= 1.0 && !a.hflip && a.shift <= 0.0 && a.rotate <= 0.0 {
        return x.shallow_clone();
    }
    let boxes: Vec<f32> = (0..n)
        .flat_map(|_| crop_affine(a, (h, w), same_size, rng))
        .collect();
    let (h, w) = (out, out);
    let boxes = Tensor::from_slice(&boxes)
        .view([n, 4])
        .to_device(x.device());
    let grid = if a.rotate > 0.0 {
        let angles: Vec<f32> = (0..n)
            .map(|_| uniform(rng, -a.rotate, a.rotate).to_radians() as f32)
            .collect();
        rotated_grid(
            &boxes,
            &Tensor::from_slice(&angles).to_device(x.device()),
            h,
            w,
        )
    } else {
        sampling_grid(&boxes, h, w)
    };
    x.grid_sampler(&grid, BILINEAR, REFLECTION, false)
}

/// Per image `[scale_x, centre_x, scale_y, centre_y]` in normalised coordinates
/// (`[-1, 1]`): a random crop box, moved by up to `shift` of the side (normalised
/// coordinates span 2 per side), mirrored half of the time when `hflip` is on.
///
/// When the output has the input's size, a box of the full size is moved by whole
/// pixels: bilinear sampling then reads pixel centres exactly, so shifted images stay as
/// sharp as the unshifted ones the model is evaluated on (a sub-pixel shift would blur
/// every training image).
fn crop_affine(a: &Augment, (h, w): (i64, i64), same_size: bool, rng: &mut StdRng) -> [f32; 4] {
    let (bw, bh) = crop_box(a, rng);
    let d = 2.0 * a.shift;
    let mut cx = uniform(rng, -(1.0 - bw), 1.0 - bw) + uniform(rng, -d, d);
    let mut cy = uniform(rng, -(1.0 - bh), 1.0 - bh) + uniform(rng, -d, d);
    if same_size && bw >= 1.0 && bh >= 1.0 {
        (cx, cy) = (whole_pixels(cx, w), whole_pixels(cy, h));
    }
    let flip = if a.hflip && rng.random::<bool>() {
        -1.0
    } else {
        1.0
    };
    [(bw * flip) as f32, cx as f32, bh as f32, cy as f32]
}

/// A normalised offset rounded to whole pixels of an axis of `len` pixels.
fn whole_pixels(offset: f64, len: i64) -> f64 {
    let px = 2.0 / len as f64;
    (offset / px).round() * px
}

/// The `(N, H, W, 2)` grid of source positions for `grid_sampler`: output pixel centre
/// `u` (normalised, `align_corners = false`) reads input `scale * u + centre`, per axis.
fn sampling_grid(boxes: &Tensor, h: i64, w: i64) -> Tensor {
    let n = boxes.size()[0];
    let col = |i: i64| boxes.select(1, i).view([n, 1, 1]);
    let gx = pixel_centres(w, boxes.device()).view([1, 1, w]) * col(0) + col(1);
    let gy = pixel_centres(h, boxes.device()).view([1, h, 1]) * col(2) + col(3);
    Tensor::stack(
        &[gx.expand([n, h, w], false), gy.expand([n, h, w], false)],
        3,
    )
}

/// As [`sampling_grid`], with the crop box also rotated by `angles` (radians, one per
/// image): output pixel `u` reads `R(angle) (scale * u) + centre`.
fn rotated_grid(boxes: &Tensor, angles: &Tensor, h: i64, w: i64) -> Tensor {
    let n = boxes.size()[0];
    let col = |i: i64| boxes.select(1, i).view([n, 1, 1]);
    let ux = pixel_centres(w, boxes.device()).view([1, 1, w]) * col(0);
    let uy = pixel_centres(h, boxes.device()).view([1, h, 1]) * col(2);
    let (cos, sin) = (angles.cos().view([n, 1, 1]), angles.sin().view([n, 1, 1]));
    let gx = &ux * &cos - &uy * &sin + col(1);
    let gy = &ux * &sin + &uy * &cos + col(3);
    Tensor::stack(
        &[gx.expand([n, h, w], false), gy.expand([n, h, w], false)],
        3,
    )
}

/// Normalised coordinates of the `len` pixel centres of an axis: `(2i + 1) / len - 1`.
fn pixel_centres(len: i64, device: Device) -> Tensor {
    (Tensor::arange(len, (Kind::Float, device)) * 2.0 + 1.0) / len as f64 - 1.0
}

/// Width and height of a crop box as fractions of the image's sides: area fraction in
/// `[crop_scale_min, 1]`, aspect ratio log-uniform in the configured range.
fn crop_box(a: &Augment, rng: &mut StdRng) -> (f64, f64) {
    if a.crop_scale_min >= 1.0 {
        return (1.0, 1.0);
    }
    let (lo, hi) = (a.crop_ratio_min.ln(), a.crop_ratio_max.ln());
    for _ in 0..CROP_ATTEMPTS {
        let area = uniform(rng, a.crop_scale_min, 1.0);
        let ratio = uniform(rng, lo, hi).exp();
        let (w, h) = ((area * ratio).sqrt(), (area / ratio).sqrt());
        if w <= 1.0 && h <= 1.0 {
            return (w, h);
        }
    }
    (1.0, 1.0)
}

/// Brightness and contrast (one affine map), then saturation, with per-image factors.
fn color_jitter(x: &Tensor, a: &Augment, rng: &mut StdRng) -> Tensor {
    let mut x = x.shallow_clone();
    if a.brightness > 0.0 || a.contrast > 0.0 {
        x = brightness_contrast(&x, a, rng);
    }
    if a.saturation > 0.0 {
        x = saturation(&x, a.saturation, rng);
    }
    x
}

/// Brightness `b` then contrast `c` around the image's mean grey `m`:
/// `c * (b x - b m) + b m = (b c) x + b m (1 - c)`, one fused multiply-add per pixel.
fn brightness_contrast(x: &Tensor, a: &Augment, rng: &mut StdRng) -> Tensor {
    let n = x.size()[0] as usize;
    let b = factors(n, a.brightness, rng);
    let c = factors(n, a.contrast, rng);
    let scale: Vec<f32> = b.iter().zip(&c).map(|(b, c)| b * c).collect();
    let offset: Vec<f32> = b.iter().zip(&c).map(|(b, c)| b * (1.0 - c)).collect();
    let shift = mean_grey(x) * per_image(&offset, x.device());
    shift
        .addcmul(x, &per_image(&scale, x.device()))
        .clamp_(0.0, PIXEL_MAX)
}

/// One value per image, shaped `(B,1,1,1)` to broadcast over a batch.
fn per_image(v: &[f32], device: Device) -> Tensor {
    Tensor::from_slice(v)
        .view([v.len() as i64, 1, 1, 1])
        .to_device(device)
}

/// Blend of each image with its grey version: `s x + (1 - s) grey`.
fn saturation(x: &Tensor, strength: f64, rng: &mut StdRng) -> Tensor {
    let keep = factors(x.size()[0] as usize, strength, rng);
    let rest: Vec<f32> = keep.iter().map(|s| 1.0 - s).collect();
    let grey_part = grey(x) * per_image(&rest, x.device());
    grey_part
        .addcmul(x, &per_image(&keep, x.device()))
        .clamp_(0.0, PIXEL_MAX)
}

/// Grey value of each pixel, `(B,1,H,W)`, as one batched `(1,3) x (3,H*W)` product
/// (much faster on the CPU than a 1x1 convolution or a multiply-and-sum).
fn grey(x: &Tensor) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let luma = Tensor::from_slice(&LUMA).view([1, 3]).to_device(x.device());
    luma.matmul(&x.reshape([n, 3, h * w])).view([n, 1, h, w])
}

/// Mean grey value of each image, `(B,1,1,1)` (from the per-channel means).
fn mean_grey(x: &Tensor) -> Tensor {
    let w = Tensor::from_slice(&LUMA)
        .view([1, 3, 1, 1])
        .to_device(x.device());
    let channel_means = x.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    (channel_means * w).sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
}

/// One factor per image in `[1 - s, 1 + s]` (never negative).
fn factors(n: usize, strength: f64, rng: &mut StdRng) -> Vec<f32> {
    let lo = (1.0 - strength).max(0.0);
    (0..n)
        .map(|_| uniform(rng, lo, 1.0 + strength) as f32)
        .collect()
}

/// Uniform in `[lo, hi]` (also when `lo == hi`, where `random_range` would panic).
fn uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn augment(hflip: bool, crop_scale_min: f64, jitter: f64) -> Augment {
        Augment {
            hflip,
            shift: 0.0,
            crop_scale_min,
            crop_ratio_min: 0.8,
            crop_ratio_max: 1.25,
            brightness: jitter,
            contrast: jitter,
            saturation: jitter,
            rotate: 0.0,
            grayscale: 0.0,
            blur: 0.0,
            blur_sigma: 1.5,
            noise: 0.0,
            noise_std: 0.1,
            downscale: 0.0,
            downscale_min: 0.4,
            crop_source: 0,
            train_size: 0,
            mix_prob: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
        }
    }

    fn batch() -> Tensor {
        tch::manual_seed(3);
        Tensor::rand([8, 3, 16, 16], (Kind::Float, Device::Cpu)) * PIXEL_MAX
    }

    #[test]
    fn flips_mirror_whole_images_and_nothing_else() {
        let x = batch();
        let mut rng = StdRng::seed_from_u64(1);
        let y = augment_batch(&x, &augment(true, 1.0, 0.0), 16, &mut rng);
        let mut flipped = 0;
        for i in 0..8 {
            let (xi, yi) = (x.get(i), y.get(i));
            let mirrored = xi.flip([2]);
            assert!(
                yi.allclose(&xi, 1e-4, 1e-3, false) || yi.allclose(&mirrored, 1e-4, 1e-3, false)
            );
            flipped += yi.allclose(&mirrored, 1e-4, 1e-3, false) as i32;
        }
        assert!(flipped > 0 && flipped < 8, "{flipped} of 8 flipped");
    }

    #[test]
    fn nothing_enabled_changes_nothing() {
        let x = batch();
        let y = augment_batch(
            &x,
            &augment(false, 1.0, 0.0),
            16,
            &mut StdRng::seed_from_u64(1),
        );
        assert!(y.equal(&x));
    }

    #[test]
    fn crops_and_jitter_keep_shape_and_range() {
        let x = batch();
        let y = augment_batch(
            &x,
            &augment(true, 0.3, 0.5),
            16,
            &mut StdRng::seed_from_u64(2),
        );
        assert_eq!(y.size(), x.size());
        assert!(!y.allclose(&x, 1e-3, 1e-3, false));
        let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
        assert!(lo >= 0.0 && hi <= PIXEL_MAX, "{lo} {hi}");
    }

    #[test]
    fn grey_values_follow_the_luma_weights() {
        let x = Tensor::from_slice(&[100f32, 200.0, 10.0, 30.0, 40.0, 50.0]).view([1, 3, 1, 2]);
        let g = Vec::<f32>::try_from(grey(&x).flatten(0, -1)).unwrap();
        let want = [
            0.299 * 100.0 + 0.587 * 10.0 + 0.114 * 40.0,
            0.299 * 200.0 + 0.587 * 30.0 + 0.114 * 50.0,
        ];
        assert!(
            (g[0] - want[0]).abs() < 1e-3 && (g[1] - want[1]).abs() < 1e-3,
            "{g:?}"
        );
        let m = mean_grey(&x).double_value(&[0, 0, 0, 0]);
        assert!((m - f64::from(want[0] + want[1]) / 2.0).abs() < 1e-3, "{m}");
    }

    #[test]
    fn contrast_and_saturation_leave_a_flat_grey_image_alone() {
        let x = Tensor::full([4, 3, 8, 8], 90.0, (Kind::Float, Device::Cpu));
        let mut a = augment(false, 1.0, 0.8);
        a.brightness = 0.0;
        let y = augment_batch(&x, &a, 8, &mut StdRng::seed_from_u64(5));
        assert!(y.allclose(&x, 1e-5, 1e-3, false));
    }

    #[test]
    fn shifts_move_images_by_at_most_the_configured_share() {
        // A horizontal ramp (value = 10 x column): bilinear sampling of it is exact, so
        // the centre pixel tells how far each image moved.
        let ramp = Tensor::arange(16, (Kind::Float, Device::Cpu)) * 10.0;
        let x = ramp
            .view([1, 1, 1, 16])
            .expand([8, 3, 16, 16], false)
            .contiguous();
        let mut a = augment(false, 1.0, 0.0);
        a.shift = 0.125;
        let y = augment_batch(&x, &a, 16, &mut StdRng::seed_from_u64(6));
        let moved: Vec<f64> = (0..8)
            .map(|i| y.double_value(&[i, 0, 8, 8]) / 10.0 - 8.0)
            .collect();
        assert!(moved.iter().all(|d| d.abs() <= 2.0 + 1e-3), "{moved:?}");
        assert!(moved.iter().any(|d| d.abs() > 0.1), "{moved:?}");
        let whole = |d: &f64| (d - d.round()).abs() < 1e-3;
        assert!(
            moved.iter().all(whole),
            "shifts are whole pixels: {moved:?}"
        );
        let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
        assert!(
            lo >= 0.0 && hi <= 150.0 + 1e-3,
            "reflection stays in range: {lo} {hi}"
        );
    }

    #[test]
    fn crop_boxes_respect_scale_and_ratio() {
        let a = augment(false, 0.5, 0.0);
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..200 {
            let (w, h) = crop_box(&a, &mut rng);
            let (area, ratio) = (w * h, w / h);
            assert!(w <= 1.0 && h <= 1.0 && area >= 0.5 - 1e-9, "{w} {h}");
            assert!((0.8 - 1e-9..=1.25 + 1e-9).contains(&ratio), "{ratio}");
        }
    }

    #[test]
    fn denormalize_undoes_normalize() {
        let px = Tensor::from_slice(&[0u8, 17, 128, 200, 255, 3])
            .view([1, 3, 1, 2])
            .repeat([2, 1, 1, 1]);
        let x = normalize(&px, &IMAGENET, Device::Cpu);
        assert_eq!(denormalize(&x, &IMAGENET), px);
    }

    #[test]
    fn normalize_applies_mean_and_std_per_channel() {
        let img = Tensor::from_slice(&[0u8, 255, 51]).view([3, 1, 1]);
        let out =
            Vec::<f32>::try_from(normalize(&img, &IMAGENET, Device::Cpu).flatten(0, -1)).unwrap();
        let want = [
            (0.0 - 0.485) / 0.229,
            (1.0 - 0.456) / 0.224,
            (0.2 - 0.406) / 0.225,
        ];
        for (o, w) in out.iter().zip(want) {
            assert!((*o as f64 - w).abs() < 1e-5, "{o} vs {w}");
        }
    }

    #[test]
    fn rotation_by_a_quarter_turn_rotates_the_image() {
        // The rotated grid at exactly 90 degrees (the random angle is drawn elsewhere).
        let x = batch().narrow(0, 0, 1);
        let boxes = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0]).view([1, 4]);
        let angle = Tensor::from_slice(&[std::f32::consts::FRAC_PI_2]);
        let grid = rotated_grid(&boxes, &angle, 16, 16);
        let y = x.grid_sampler(&grid, BILINEAR, REFLECTION, false);
        // output (row r, col c) reads input (row c, col W-1-r): a mirror, then a transpose.
        let want = x.flip([3]).transpose(2, 3);
        let diff = f64::try_from((&y - &want).abs().max()).unwrap();
        assert!(diff < 1e-2, "max difference {diff}");
        let zero = Tensor::from_slice(&[0.0f32]);
        let same = x.grid_sampler(
            &rotated_grid(&boxes, &zero, 16, 16),
            BILINEAR,
            REFLECTION,
            false,
        );
        assert!(f64::try_from((same - &x).abs().max()).unwrap() < 1e-3);
    }

    #[test]
    fn random_grayscale_turns_whole_images_grey_at_the_given_rate() {
        let x = Tensor::rand([400, 3, 4, 4], (Kind::Float, Device::Cpu)) * PIXEL_MAX;
        let mut rng = StdRng::seed_from_u64(5);
        let y = random_grayscale(&x, 0.25, &mut rng);
        let spread =
            (y.max_dim(1, false).0 - y.min_dim(1, false).0).amax([1i64, 2].as_slice(), false);
        let grey = Vec::<f32>::try_from(spread.lt(1e-3).to_kind(Kind::Float)).unwrap();
        let n_grey = grey.iter().filter(|g| **g > 0.0).count();
        assert!((70..=130).contains(&n_grey), "{n_grey} of 400 grey");
        let kept = y.get(grey.iter().position(|g| *g == 0.0).unwrap() as i64);
        let orig = x.get(grey.iter().position(|g| *g == 0.0).unwrap() as i64);
        assert_eq!(f64::try_from((kept - orig).abs().max()).unwrap(), 0.0);
    }

    #[test]
    fn blur_smooths_chosen_images_and_keeps_their_mean() {
        let x = batch();
        let mut a = augment(false, 1.0, 0.0);
        a.blur = 1.0;
        a.blur_sigma = 2.0;
        let y = augment_batch(&x, &a, 16, &mut StdRng::seed_from_u64(7));
        assert_eq!(y.size(), x.size());
        let mean = |t: &Tensor| t.mean(Kind::Float).double_value(&[]);
        let spread = |t: &Tensor| t.std(true).double_value(&[]);
        assert!(
            (mean(&y) - mean(&x)).abs() < 0.02 * mean(&x),
            "blur moved the mean"
        );
        assert!(
            spread(&y) < 0.8 * spread(&x),
            "{} vs {}",
            spread(&y),
            spread(&x)
        );
        a.blur = 0.0;
        let same = augment_batch(&x, &a, 16, &mut StdRng::seed_from_u64(7));
        assert!(same.equal(&x));
    }

    #[test]
    fn blur_of_a_flat_image_is_the_same_flat_image() {
        let x = Tensor::full([2, 3, 16, 16], 100.0, (Kind::Float, Device::Cpu));
        let y = random_blur(&x, 1.0, 1.5, &mut StdRng::seed_from_u64(1));
        let err = (&y - &x).abs().max().double_value(&[]);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn gaussian_taps_sum_to_one_and_are_symmetric() {
        let t = gaussian_taps(1.0, 3);
        assert_eq!(t.len(), 7);
        assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(t[0], t[6]);
        assert!(t[3] > t[2] && t[2] > t[1]);
    }

    #[test]
    fn noise_changes_only_chosen_images_and_stays_in_range() {
        tch::manual_seed(11);
        let x = Tensor::full([64, 3, 8, 8], 128.0, (Kind::Float, Device::Cpu));
        let y = random_noise(&x, 0.5, 0.1, &mut StdRng::seed_from_u64(3));
        let changed = (&y - &x)
            .abs()
            .amax([1i64, 2, 3].as_slice(), false)
            .gt(0.0)
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert!((16..=48).contains(&changed), "{changed} of 64 images noisy");
        assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= PIXEL_MAX);
        let none = random_noise(&x, 0.0, 0.1, &mut StdRng::seed_from_u64(3));
        assert!(none.equal(&x));
    }

    #[test]
    fn crops_from_a_larger_source_come_out_at_the_output_size() {
        let x = batch();
        let mut a = augment(true, 0.5, 0.2);
        a.crop_source = 16;
        let y = augment_batch(&x, &a, 12, &mut StdRng::seed_from_u64(9));
        assert_eq!(y.size(), [8, 3, 12, 12]);
        // Without any augmentation the whole 16-pixel ramp is shrunk to 8 pixels: every
        // output pixel centre reads the ramp at the matching place.
        let ramp = Tensor::arange(16, (Kind::Float, Device::Cpu)) * 10.0;
        let r = ramp
            .view([1, 1, 1, 16])
            .expand([2, 3, 16, 16], false)
            .contiguous();
        let plain = augment(false, 1.0, 0.0);
        let small = augment_batch(&r, &plain, 8, &mut StdRng::seed_from_u64(1));
        assert_eq!(small.size(), [2, 3, 8, 8]);
        let row: Vec<f64> = (0..8).map(|i| small.double_value(&[0, 0, 3, i])).collect();
        let expected: Vec<f64> = (0..8).map(|i| 5.0 + 20.0 * i as f64).collect();
        assert!(
            row.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-3),
            "{row:?}"
        );
    }

    #[test]
    fn downscale_keeps_shape_and_mean_and_loses_detail() {
        let x = batch();
        let y = random_downscale(&x, 1.0, 0.25, &mut StdRng::seed_from_u64(4));
        assert_eq!(y.size(), x.size());
        let mean = |t: &Tensor| t.mean(Kind::Float).double_value(&[]);
        let spread = |t: &Tensor| t.std(true).double_value(&[]);
        assert!((mean(&y) - mean(&x)).abs() < 0.03 * mean(&x));
        assert!(
            spread(&y) < 0.9 * spread(&x),
            "{} vs {}",
            spread(&y),
            spread(&x)
        );
        let none = random_downscale(&x, 0.0, 0.25, &mut StdRng::seed_from_u64(4));
        assert!(none.equal(&x));
    }
}

//! Real photos for the illustrations: the n-th photo (by file name) of a class in the
//! ImageFolder named by `data.folder`, preprocessed like the network's input, as tensors;
//! and feature maps turned back into pictures.

use crate::data::preprocess::preprocess_bytes;
use crate::data::Class;
use crate::Config;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use std::path::PathBuf;
use tch::{Kind, Tensor};

/// ITU-R BT.601 luma weights of R, G and B (what "greyscale" means here).
const LUMA: [f64; 3] = [0.299, 0.587, 0.114];

/// The photo files of `class` in `data.folder`, sorted by name.
pub(crate) fn files(cfg: &Config, class: Class) -> Result<Vec<PathBuf>> {
    let dir = cfg.resolve(&cfg.data.folder).join(class.name());
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot list {}: set data.folder in config.json to an ImageFolder with cat/ and dog/",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Photo number `index` of `class` as a `(3, S, S)` float tensor in 0..1, where `S` is
/// `preprocess.image_size` (decoded from the bytes, resized and centre-cropped like the
/// network's input).
pub fn photo(cfg: &Config, class: Class, index: usize) -> Result<Tensor> {
    let (size, shorter) = (cfg.preprocess.image_size, cfg.preprocess.resize_shorter);
    Ok(photo_u8(cfg, class, index, size, shorter)?.to_kind(Kind::Float) / 255.0)
}

/// Photo number `index` of `class`, resized (shorter side `shorter`) and centre-cropped to
/// `size`, as a `(3, size, size)` uint8 tensor.
pub(crate) fn photo_u8(
    cfg: &Config,
    class: Class,
    index: usize,
    size: i64,
    shorter: i64,
) -> Result<Tensor> {
    let files = files(cfg, class)?;
    let Some(path) = files.get(index) else {
        bail!(
            "{} has {} {} photos; photo #{index} does not exist",
            cfg.data.folder.display(),
            files.len(),
            class
        );
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let planar = preprocess_bytes(&bytes, size as u32, shorter as u32)
        .with_context(|| format!("photo {}", path.display()))?;
    Ok(Tensor::from_slice(&planar).view([3, size, size]))
}

/// The first `per_class` photos of each class as one batch `(N, 3, S, S)` with labels `(N,)`
/// (0 cat, 1 dog), `S` = `preprocess.image_size`.
pub(crate) fn batch(cfg: &Config, per_class: usize) -> Result<(Tensor, Tensor)> {
    let p = &cfg.preprocess;
    batch_sized(cfg, per_class, (p.image_size, p.resize_shorter))
}

/// Size and shorter side the gradient and training experiments of section 10 load their
/// photos at, before shrinking them: the lab's default input (`preprocess.image_size` 112,
/// `resize_shorter` 128), fixed so that their results, and the statements the notebook makes
/// about them, do not change with the configured input size (the CI config uses 48 px).
pub(crate) const EXPERIMENT_PHOTOS: (i64, i64) = (112, 128);

/// [`batch`] at `(size, shorter)` instead of the configured input size, values in 0..1.
pub(crate) fn batch_sized(
    cfg: &Config,
    per_class: usize,
    (size, shorter): (i64, i64),
) -> Result<(Tensor, Tensor)> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for class in Class::ALL {
        for i in 0..per_class {
            let img = photo_u8(cfg, class, i, size, shorter)?;
            images.push(img.to_kind(Kind::Float) / 255.0);
            labels.push(class.index());
        }
    }
    Ok((Tensor::stack(&images, 0), Tensor::from_slice(&labels)))
}

/// Greyscale `(1, S, S)` of an RGB `(3, S, S)` image.
pub(crate) fn grey(rgb: &Tensor) -> Tensor {
    let w = Tensor::from_slice(&LUMA)
        .to_kind(Kind::Float)
        .view([3, 1, 1]);
    (rgb * w).sum_dim_intlist(0, true, Kind::Float)
}

/// An RGB `(3, H, W)` tensor in 0..1 as a picture.
pub(crate) fn to_rgb_image(t: &Tensor) -> Result<RgbImage> {
    let (h, w) = match t.size().as_slice() {
        [3, h, w] => (*h, *w),
        other => bail!("expected an RGB tensor (3, H, W), got shape {other:?}"),
    };
    let bytes = (t.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0]);
    let raw = Vec::<u8>::try_from(bytes.contiguous().flatten(0, -1))?;
    RgbImage::from_raw(w as u32, h as u32, raw).context("pixel buffer has the wrong size")
}

/// A single map `(H, W)` (any range) as a grey picture: its minimum black, maximum white.
pub(crate) fn map_to_image(map: &Tensor) -> Result<RgbImage> {
    let [h, w] = map
        .size()
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected one map (H, W), got shape {:?}", map.size()))?;
    let m = map.detach().to_kind(Kind::Float);
    let (lo, hi) = (m.min(), m.max());
    let span = (&hi - &lo).clamp_min(f64::from(f32::EPSILON));
    let unit = ((m - lo) / span).view([1, h, w]).expand([3, h, w], false);
    to_rgb_image(&unit)
}

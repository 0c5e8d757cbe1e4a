//! Grad-CAM for photo files with a trained run: the photo as the model sees it (its
//! centre crop, decoded again at `explain.overlay_size` pixels), the "dog" and "cat" maps
//! upsampled to it, and their overlays; [`write_overlays`] is `lab5 explain`.

use super::gradcam::{grad_cam, upsample, Cam};
use crate::config::{Explain, Images};
use crate::data::{cache, Class};
use crate::plot::{self, Photo};
use crate::train::infer::LoadedRun;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// A run ready to explain photos: its model with the best weights, and how to draw.
pub struct Explainer {
    run: LoadedRun,
    dir: PathBuf,
    side: u32,
    opacity: f64,
}

impl std::fmt::Debug for Explainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Explainer({}, {} px)", self.dir.display(), self.side)
    }
}

/// One photo explained by one model.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The photo file.
    pub path: PathBuf,
    /// The layer the maps come from (`block5.relu`, `_bn1`).
    pub layer: String,
    /// `p(dog)` as the run answers (`lab5 predict`: with the CNN's test-time flip when
    /// its config has `cnn.tta_hflip`).
    pub p_dog: f64,
    /// The model's centre crop of the photo, `side x side` pixels.
    pub photo: RgbImage,
    /// The "dog" map upsampled to the photo, row-major, in `0..=1`.
    pub dog: Vec<f32>,
    /// The "cat" map, on the same scale as `dog` (both divided by the larger of the two
    /// maps' maxima, so a weak map looks weak).
    pub cat: Vec<f32>,
    /// That larger maximum: `dog` and `cat` times `scale` are the maps in their own units
    /// (log-odds per unit of activation, summed over channels).
    pub scale: f64,
    opacity: f64,
}

impl Explained {
    /// The class the model answers (`dog` when `p_dog > 0.5`).
    pub fn predicted(&self) -> Class {
        match self.p_dog > crate::train::metrics::THRESHOLD {
            true => Class::Dog,
            false => Class::Cat,
        }
    }

    /// The probability the model gives its answer.
    pub fn confidence(&self) -> f64 {
        self.p_dog.max(1.0 - self.p_dog)
    }

    /// The map of `class`: `side * side` values in `0..=1`, row-major.
    pub fn heat(&self, class: Class) -> &[f32] {
        match class {
            Class::Dog => &self.dog,
            Class::Cat => &self.cat,
        }
    }

    /// Share of the map of `class` on the columns `from..to` (fractions of the width,
    /// `0.5..1.0` is the right half); 0 for an empty map.
    pub fn share_in_columns(&self, class: Class, from: f64, to: f64) -> f64 {
        let w = self.photo.width() as usize;
        let (a, b) = (
            (from * w as f64).round() as usize,
            (to * w as f64).round() as usize,
        );
        let heat = self.heat(class);
        let total: f64 = heat.iter().map(|&v| f64::from(v)).sum();
        let part: f64 = heat
            .chunks(w)
            .flat_map(|row| &row[a.min(w)..b.min(w)])
            .map(|&v| f64::from(v))
            .sum();
        if total > 0.0 {
            part / total
        } else {
            0.0
        }
    }

    /// The mass of the map of `class` on the columns `from..to` (fractions of the width) in
    /// the map's own units ([`Explained::scale`]), per pixel of the whole photo: comparable
    /// between photos, unlike the shares.
    pub fn mass_in_columns(&self, class: Class, from: f64, to: f64) -> f64 {
        let heat = self.heat(class);
        let total: f64 = heat.iter().map(|&v| f64::from(v)).sum();
        let pixels = heat.len().max(1) as f64;
        self.share_in_columns(class, from, to) * total * self.scale / pixels
    }

    /// The photo with the map of `class` drawn over it in jet colours.
    ///
    /// # Errors
    /// Never for an [`Explained`] made by [`Explainer::explain`] (sizes agree).
    pub fn overlay(&self, class: Class) -> Result<RgbImage> {
        plot::heat_overlay(&self.photo, self.heat(class), self.opacity)
    }
}

impl Explainer {
    /// Loads the run in `run_dir` (its best weights) to explain photos drawn as `e` says.
    ///
    /// # Errors
    /// No finished run there (a missing `run.json` or weights), or the model cannot be
    /// rebuilt.
    pub fn open(run_dir: &Path, e: &Explain) -> Result<Explainer> {
        if !run_dir.join(crate::train::record::RUN_FILE).is_file() {
            bail!(
                "no finished run in {}: train one first (`lab5 train cnn` or `lab5 train transfer`)",
                run_dir.display()
            );
        }
        let run = LoadedRun::open(run_dir)
            .with_context(|| format!("cannot load the run in {}", run_dir.display()))?;
        Ok(Explainer {
            run,
            dir: run_dir.to_path_buf(),
            side: e.overlay_size,
            opacity: e.opacity,
        })
    }

    /// The model kind (`cnn`, `transfer`).
    pub fn kind(&self) -> &'static str {
        self.run.net.kind()
    }

    /// Both maps of one photo file, read under the decoding policy the run was trained
    /// with.
    ///
    /// # Errors
    /// A missing, empty, truncated or non-image file (named), or a model without a
    /// reachable feature map (ResNet-18).
    pub fn explain(&self, path: &Path) -> Result<Explained> {
        let (size, shorter) = self.run.sizes();
        let policy = &self.run.record.model.config.images;
        let input = cache::preprocess_file_with(path, size, shorter, policy)?.unsqueeze(0);
        let x = self.run.normalized(&input);
        let net = &*self.run.net;
        let (dog, cat) = (
            grad_cam(net, &x, Class::Dog)?,
            grad_cam(net, &x, Class::Cat)?,
        );
        let top = max_of(&dog).max(max_of(&cat));
        let heat = |c: &Cam| -> Result<Vec<f32>> {
            let up = upsample(&c.maps, i64::from(self.side), &[top]);
            Ok(Vec::<f32>::try_from(up.flatten(0, -1))?)
        };
        Ok(Explained {
            path: path.to_path_buf(),
            layer: dog.layer.clone(),
            p_dog: self.run.p_dog(&input)?[0],
            photo: self.display_crop(path, (size, shorter), policy)?,
            dog: heat(&dog)?,
            cat: heat(&cat)?,
            scale: top,
            opacity: self.opacity,
        })
    }

    /// The model's centre crop of the photo at `side` pixels: the shorter side resized to
    /// `side * resize_shorter / image_size`, then the centre `side x side`.
    fn display_crop(
        &self,
        path: &Path,
        (size, shorter): (i64, i64),
        policy: &Images,
    ) -> Result<RgbImage> {
        let side = i64::from(self.side);
        let resize = (side as f64 * shorter as f64 / size as f64).round() as i64;
        rgb_of(&cache::preprocess_file_with(
            path,
            side,
            resize.max(side),
            policy,
        )?)
    }
}

/// A uint8 image `(3, H, W)` as a picture.
///
/// # Errors
/// Another shape or kind.
pub(crate) fn rgb_of(t: &Tensor) -> Result<RgbImage> {
    let (h, w) = match t.size().as_slice() {
        [3, h, w] if t.kind() == Kind::Uint8 => (*h, *w),
        other => bail!(
            "expected a uint8 RGB image (3, H, W), got {:?} {other:?}",
            t.kind()
        ),
    };
    let hwc = Vec::<u8>::try_from(t.permute([1, 2, 0]).contiguous().flatten(0, -1))?;
    RgbImage::from_raw(w as u32, h as u32, hwc).context("pixel buffer has the wrong size")
}

/// The largest value of a batch of maps (0 for an empty one).
fn max_of(c: &Cam) -> f64 {
    f64::try_from(c.maps.max().to_kind(Kind::Double)).unwrap_or(0.0)
}

/// Photo, "dog" map and "cat" map side by side, captioned, as one figure.
pub(crate) fn figure_of(e: &Explained, model: &str) -> Result<plot::Figure> {
    let name = e
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let model = match model {
        "cnn" => "CNN",
        "transfer" => "transfer model",
        other => other,
    };
    let answer = format!(
        "{model}: {}, {:.1} %",
        e.predicted(),
        100.0 * e.confidence()
    );
    let items = vec![
        (Photo::Image(e.photo.clone()), format!("{name}\n{answer}")),
        (
            Photo::Image(e.overlay(Class::Dog)?),
            format!("Grad-CAM \"dog\"\n{}", e.layer),
        ),
        (
            Photo::Image(e.overlay(Class::Cat)?),
            format!("Grad-CAM \"cat\"\n{}", e.layer),
        ),
    ];
    plot::image_grid_px(
        &format!("Where the {model} looks"),
        &items,
        3,
        e.photo.width(),
    )
}

/// `lab5 explain`: for each file, the photo, its "dog" and "cat" Grad-CAM maps as one PNG
/// `<out>/<file name>.gradcam.png` (a second file of the same name gets `-2`, ...). The
/// outer error is about the run; each file gets its own result (the PNG's path, or why
/// the photo could not be read), so one bad file does not stop the others.
///
/// # Errors
/// No finished run in `run_dir`, or `out` cannot be created.
pub fn write_overlays(
    run_dir: &Path,
    files: &[PathBuf],
    out: &Path,
    e: &Explain,
) -> Result<Vec<Result<PathBuf>>> {
    let explainer = Explainer::open(run_dir, e)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut used = std::collections::HashSet::new();
    let mut results = Vec::new();
    for f in files {
        let target = unique_name(out, f, &mut used);
        let done = explainer.explain(f).and_then(|x| {
            let png = figure_of(&x, explainer.kind())?.png()?;
            crate::util::write_atomic(&target, &png)?;
            Ok(target)
        });
        results.push(done);
    }
    Ok(results)
}

/// `<out>/<file name>.gradcam.png`, numbered when an earlier file had the same name.
fn unique_name(out: &Path, file: &Path, used: &mut std::collections::HashSet<PathBuf>) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    (1..)
        .map(|k| match k {
            1 => out.join(format!("{name}.gradcam.png")),
            k => out.join(format!("{name}-{k}.gradcam.png")),
        })
        .find(|p| used.insert(p.clone()))
        .unwrap_or_else(|| out.join("photo.gradcam.png"))
}

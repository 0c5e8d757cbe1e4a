//! TensorBoard's Embedding Projector for a run: its embeddings (the penultimate-layer
//! vector of every photo) with one metadata row and one thumbnail per photo, written
//! into the run's TensorBoard folder, where the projector plugin looks for them
//! (`tensorboard/plugins/projector/projector_plugin.py`: `projector_config.pbtxt` in a
//! folder that holds event files, every asset path relative to that file and inside its
//! folder):
//!
//! - `tensors.tsv`: one line per photo, the vector's values separated by tabs;
//! - `metadata.tsv`: a header row, then per photo `label, breed, split, predicted,
//!   correct, p_dog, id` (prediction of the run's kept weights, from `predictions.csv`);
//! - `sprite.png`: the photos' thumbnails in the same order, row-major on a square grid
//!   (the projector shows them in place of points), each framed in its class's colour
//!   (cat blue, dog orange: the colours of the lab's charts);
//! - `projector_config.pbtxt`: the `ProjectorConfig` text naming the three files
//!   (`tensorboard/plugins/projector/projector_config.proto`).
//!
//! The thumbnails are cut from the CNN's preprocessing cache (`preprocess.image_size`,
//! the centre crop every model sees), shrunk by area averaging (`interpolate(mode="area")`).

use super::set::EmbeddingSet;
use crate::config::Config;
use crate::data::{cache, SplitName};
use crate::train::RunRecord;
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The projector's configuration file (the name the plugin looks for).
pub use crate::train::tensorboard::PROJECTOR_CONFIG as CONFIG_FILE;
/// The vectors, one photo a line.
pub const TENSORS_FILE: &str = "tensors.tsv";
/// The metadata, a header row then one photo a line.
pub const METADATA_FILE: &str = "metadata.tsv";
/// The thumbnails.
pub const SPRITE_FILE: &str = "sprite.png";
/// Columns of `metadata.tsv`.
pub const METADATA_COLUMNS: [&str; 7] = [
    "label",
    "breed",
    "split",
    "predicted",
    "correct",
    "p_dog",
    "id",
];
/// Largest side of a sprite image the projector loads (its WebGL texture limit).
pub const MAX_SPRITE_PX: u32 = 8192;
/// Frame colour of cat and dog thumbnails (Okabe-Ito blue and orange, as in the charts),
/// by class index.
pub const CLASS_RGB: [[u8; 3]; 2] = [[0, 114, 178], [230, 159, 0]];
/// Smallest thumbnail side: a framed thumbnail needs a pixel inside its frame of one on
/// each side.
const MIN_THUMBNAIL: u32 = 3;
/// Background of the sprite's empty cells.
const BACKGROUND: u8 = 255;
/// Breed written for photos without one.
const NO_BREED: &str = "unknown";

/// What [`write_projector`] wrote.
#[derive(Debug, Clone)]
pub struct ProjectorFiles {
    /// The run's TensorBoard folder holding the four files.
    pub dir: PathBuf,
    /// Photos (rows of the tensor).
    pub points: usize,
    /// Values per vector.
    pub dim: usize,
    /// Side of each thumbnail, pixels.
    pub thumbnail: u32,
    /// Side of the sprite, pixels.
    pub sprite_px: u32,
    /// Seconds the whole step took.
    pub secs: f64,
}

/// Writes the projector's four files for the run in `run_dir` from its embeddings `set`
/// into the run's TensorBoard folder (`tensorboard.subdir`), the configuration last.
///
/// # Errors
/// The run has no record or `predictions.csv`, a photo of `set` has no prediction or is
/// not in `cfg`'s data set (its thumbnail comes from there), or a file cannot be written.
pub fn write_projector(cfg: &Config, run_dir: &Path, set: &EmbeddingSet) -> Result<ProjectorFiles> {
    let started = Instant::now();
    let rec = RunRecord::load(run_dir).with_context(|| {
        format!(
            "the projector needs the finished run in {}",
            run_dir.display()
        )
    })?;
    let p_dog = predictions(&rec)?;
    let dir = rec.tensorboard_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join(TENSORS_FILE), tensors_tsv(set).as_bytes())?;
    write_atomic(
        &dir.join(METADATA_FILE),
        metadata_tsv(set, &p_dog)?.as_bytes(),
    )?;
    let n = set.len();
    let side = grid_side(n);
    let thumb = cfg.tensorboard.thumbnail.min(MAX_SPRITE_PX / side);
    if thumb < MIN_THUMBNAIL {
        bail!("{n} photos do not fit one {MAX_SPRITE_PX}-pixel sprite image with thumbnails of at least {MIN_THUMBNAIL} pixels");
    }
    let sprite = sprite(&thumbnails(cfg, set, thumb)?, side)?;
    let sprite_px = sprite.width();
    write_atomic(&dir.join(SPRITE_FILE), &crate::plot::encode_png(&sprite)?)?;
    let config = config_pbtxt(&format!("{} embeddings", set.model), n, set.dim, thumb);
    write_atomic(&dir.join(CONFIG_FILE), config.as_bytes())?;
    Ok(ProjectorFiles {
        dir,
        points: n,
        dim: set.dim,
        thumbnail: thumb,
        sprite_px,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// True when the run folder's TensorBoard folder has a projector configuration.
pub fn has_projector(run_dir: &Path) -> bool {
    RunRecord::load(run_dir).is_ok_and(|r| r.tensorboard_dir().join(CONFIG_FILE).is_file())
}

impl std::fmt::Display for ProjectorFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "projector: {} photos x {} values, sprite {s}x{s} px of {t}-px thumbnails, {:.1} s, in {}",
            self.points,
            self.dim,
            self.secs,
            self.dir.display(),
            s = self.sprite_px,
            t = self.thumbnail
        )
    }
}

/// p(dog) of every photo the run scored.
fn predictions(rec: &RunRecord) -> Result<HashMap<String, f64>> {
    let rows = rec.predictions().with_context(|| {
        format!(
            "the projector's metadata needs {}'s predictions.csv",
            rec.dir.display()
        )
    })?;
    Ok(rows.into_iter().map(|s| (s.id, s.p_dog)).collect())
}

/// Photos a row (and rows) of the square sprite holding `n` thumbnails.
fn grid_side(n: usize) -> u32 {
    (n as f64).sqrt().ceil().max(1.0) as u32
}

/// `tensors.tsv`: each vector on a line, values separated by tabs (shortest text that
/// reads back as the same `f32`).
fn tensors_tsv(set: &EmbeddingSet) -> String {
    let mut out = String::with_capacity(set.len() * set.dim * 12);
    for r in &set.records {
        for (i, v) in r.vector.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            let _ = write!(out, "{v}");
        }
        out.push('\n');
    }
    out
}

/// `metadata.tsv`: the header, then one row per photo in the set's order.
fn metadata_tsv(set: &EmbeddingSet, p_dog: &HashMap<String, f64>) -> Result<String> {
    let mut out = METADATA_COLUMNS.join("\t");
    out.push('\n');
    for r in &set.records {
        let Some(&p) = p_dog.get(&r.id) else {
            bail!(
                "photo {} has an embedding but no prediction: embed the run again (its embeddings are older than its predictions)",
                r.id
            );
        };
        let predicted = crate::train::board::prediction(p).0.name();
        let breed = cell(&r.breed);
        let breed = if breed.is_empty() { NO_BREED } else { &breed };
        let _ = writeln!(
            out,
            "{}\t{breed}\t{}\t{predicted}\t{}\t{p:.4}\t{}",
            r.label.name(),
            r.split.name(),
            predicted == r.label.name(),
            r.id
        );
    }
    Ok(out)
}

/// A metadata cell: tabs and line breaks (the TSV's separators) become spaces.
fn cell(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The photos of `set` as `thumb`-pixel thumbnails `(N, 3, thumb, thumb)` uint8, in the
/// set's order, framed in their class's colour.
fn thumbnails(cfg: &Config, set: &EmbeddingSet, thumb: u32) -> Result<Tensor> {
    let manifest = crate::train::run::load_manifest(cfg)?;
    let p = &cfg.preprocess;
    let cached = cache::load_or_build(cfg, &manifest, p.image_size, p.resize_shorter)?;
    let mut at: HashMap<&str, (SplitName, i64)> = HashMap::new();
    for split in SplitName::ALL {
        for (i, id) in cached.get(split).ids.iter().enumerate() {
            at.insert(id.as_str(), (split, i as i64));
        }
    }
    let mut photos = Vec::with_capacity(set.len());
    for r in &set.records {
        let Some(&(split, i)) = at.get(r.id.as_str()) else {
            bail!(
                "photo {} of the embeddings is not in the data set of this config ({}): the projector's sprite needs its thumbnail",
                r.id,
                cfg.data_dir().display()
            );
        };
        photos.push(cached.get(split).images.get(i));
    }
    let _guard = tch::no_grad_guard();
    let t = i64::from(thumb);
    let small = Tensor::stack(&photos, 0)
        .to_kind(Kind::Float)
        .adaptive_avg_pool2d([t, t])
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8);
    let labels: Vec<i64> = set.records.iter().map(|r| r.label.index()).collect();
    Ok(framed(&small, &labels))
}

/// Paints a frame of `max(1, side / 32)` pixels in the class colour around each image of
/// `images` `(N, 3, S, S)` (uint8, `S >= 3`); `labels` gives each image's class index.
fn framed(images: &Tensor, labels: &[i64]) -> Tensor {
    let side = images.size()[3];
    let w = (side / 32).max(1).min((side - 1) / 2);
    let colours = Tensor::from_slice(&CLASS_RGB.concat())
        .view([2, 3])
        .index_select(0, &Tensor::from_slice(labels))
        .view([-1, 3, 1, 1])
        .expand_as(images);
    let ring = Tensor::ones([side, side], (Kind::Bool, Device::Cpu));
    let _ = ring
        .narrow(0, w, side - 2 * w)
        .narrow(1, w, side - 2 * w)
        .fill_(0);
    colours.where_self(&ring, images)
}

/// The thumbnails `(N, 3, T, T)` on a `side` x `side` grid, row-major, empty cells white.
fn sprite(thumbs: &Tensor, side: u32) -> Result<RgbImage> {
    let [n, _, t, _] = thumbs.size()[..] else {
        bail!("thumbnails must be (N, 3, T, T), got {:?}", thumbs.size());
    };
    let g = i64::from(side);
    if g * g < n {
        bail!("{n} thumbnails do not fit a {side} x {side} grid");
    }
    let blank = Tensor::full(
        [g * g - n, 3, t, t],
        i64::from(BACKGROUND),
        (Kind::Uint8, Device::Cpu),
    );
    let px = Tensor::cat(&[thumbs.shallow_clone(), blank], 0)
        .view([g, g, 3, t, t])
        .permute([0, 3, 1, 4, 2])
        .reshape([-1])
        .contiguous();
    let bytes = Vec::<u8>::try_from(px)?;
    let px = (g * t) as u32;
    RgbImage::from_raw(px, px, bytes).context("sprite buffer has the wrong size")
}

/// The `ProjectorConfig` in protobuf text format: one embedding named `name`, `n` x `dim`,
/// with metadata and a sprite of `thumb`-pixel images, all paths next to the file.
fn config_pbtxt(name: &str, n: usize, dim: usize, thumb: u32) -> String {
    format!(
        "embeddings {{\n  tensor_name: {}\n  tensor_path: {}\n  metadata_path: {}\n  tensor_shape: {n}\n  tensor_shape: {dim}\n  sprite {{\n    image_path: {}\n    single_image_dim: {thumb}\n    single_image_dim: {thumb}\n  }}\n}}\n",
        quoted(name),
        quoted(TENSORS_FILE),
        quoted(METADATA_FILE),
        quoted(SPRITE_FILE),
    )
}

/// A protobuf text-format string literal (C escapes for quotes, backslashes and control
/// characters).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Class;
    use crate::embed::set::EmbeddingRecord;

    fn set() -> EmbeddingSet {
        let rec = |id: &str, label, breed: &str, v: [f32; 2]| EmbeddingRecord {
            id: id.into(),
            label,
            split: SplitName::Test,
            breed: breed.into(),
            vector: v.to_vec(),
        };
        EmbeddingSet::new(
            "cnn",
            vec![
                rec("a", Class::Cat, "Sphynx\tcat", [0.5, -1.25]),
                rec("b", Class::Dog, "", [1e-7, 3.0]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn tsv_files_hold_one_line_per_photo_in_order() {
        let s = set();
        assert_eq!(tensors_tsv(&s), "0.5\t-1.25\n0.0000001\t3\n");
        let p: HashMap<String, f64> = [("a".into(), 0.9), ("b".into(), 0.8)].into();
        let meta = metadata_tsv(&s, &p).unwrap();
        let lines: Vec<&str> = meta.lines().collect();
        assert_eq!(
            lines[0],
            "label\tbreed\tsplit\tpredicted\tcorrect\tp_dog\tid"
        );
        assert_eq!(lines[1], "cat\tSphynx cat\ttest\tdog\tfalse\t0.9000\ta");
        assert_eq!(lines[2], "dog\tunknown\ttest\tdog\ttrue\t0.8000\tb");
        let missing: HashMap<String, f64> = [("a".into(), 0.9)].into();
        assert!(metadata_tsv(&s, &missing)
            .unwrap_err()
            .to_string()
            .contains("photo b"));
    }

    #[test]
    fn sprite_is_a_square_grid_of_framed_thumbnails() {
        let imgs = Tensor::full([3, 3, 64, 64], 100, (Kind::Uint8, Device::Cpu));
        let f = framed(&imgs, &[0, 1, 0]);
        let s = sprite(&f, grid_side(3)).unwrap();
        assert_eq!(s.dimensions(), (128, 128));
        assert_eq!(s.get_pixel(0, 0).0, CLASS_RGB[0]); // frame of the first (cat)
        assert_eq!(s.get_pixel(32, 32).0, [100; 3]); // inside it
        assert_eq!(s.get_pixel(64, 0).0, CLASS_RGB[1]); // frame of the second (dog)
        assert_eq!(s.get_pixel(1, 64).0, CLASS_RGB[0]); // third, second row
        assert_eq!(s.get_pixel(100, 100).0, [BACKGROUND; 3]); // empty fourth cell
        assert!(sprite(&f, 1).is_err(), "three thumbnails on a 1 x 1 grid");
        let tiny = framed(
            &Tensor::zeros([1, 3, 3, 3], (Kind::Uint8, Device::Cpu)),
            &[1],
        );
        assert_eq!(
            tiny.int64_value(&[0, 0, 1, 1]),
            0,
            "a 3-px thumbnail keeps its centre"
        );
    }

    #[test]
    fn config_names_every_file_relative_to_itself() {
        let c = config_pbtxt("cnn \"x\"", 2100, 128, 64);
        for want in [
            "tensor_name: \"cnn \\\"x\\\"\"",
            "tensor_path: \"tensors.tsv\"",
            "metadata_path: \"metadata.tsv\"",
            "tensor_shape: 2100\n  tensor_shape: 128",
            "image_path: \"sprite.png\"",
            "single_image_dim: 64\n    single_image_dim: 64",
        ] {
            assert!(c.contains(want), "{want} not in\n{c}");
        }
        assert_eq!(grid_side(2100), 46);
        assert_eq!(grid_side(1), 1);
    }
}

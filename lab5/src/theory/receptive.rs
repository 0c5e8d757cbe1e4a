//! Receptive fields of the CNN (`models/cnn.rs`): which input pixels can influence one unit
//! of each block's output. Computed twice: by the recursion over the layers
//! (`r_out = r_in + (k - 1) j_in`, `j_out = j_in s`, with `j` the distance in input pixels
//! between neighbouring units; Araujo, Norris & Sim, "Computing Receptive Fields of
//! Convolutional Neural Networks", Distill 2019), and measured by back-propagation: the input
//! pixels whose gradient is non-zero for the centre unit of a stack with the same geometry.
//! Drawn on a photo as squares.

use super::photo::to_rgb_image;
use crate::plot::{self, Figure, Photo, Table};
use crate::Config;
use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

/// One layer's geometry: square kernel, stride and zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Kernel (window) side k.
    pub kernel: i64,
    /// Stride s.
    pub stride: i64,
    /// Zero padding p on each side.
    pub padding: i64,
}

/// The CNN block's conv: 3x3, stride 1, padding 1 (`models/cnn.rs`, `speed::conv3x3`).
pub(crate) const CONV: Geometry = Geometry {
    kernel: 3,
    stride: 1,
    padding: 1,
};
/// The first block's conv with `cnn.stem_stride` 2: 3x3, stride 2, padding 1.
pub(crate) const STEM: Geometry = Geometry {
    kernel: 3,
    stride: 2,
    padding: 1,
};
/// The CNN block's max pool: 2x2, stride 2, no padding.
pub(crate) const POOL: Geometry = Geometry {
    kernel: 2,
    stride: 2,
    padding: 0,
};

/// One named layer of the CNN as the windows its input passes through: one conv or pool,
/// or a residual block's two convs (its skip path sees a subset of their field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    /// Name as in the CNN's summary.
    pub name: String,
    /// The windows in order, each with whether it is a pool.
    pub steps: Vec<(Geometry, bool)>,
}

/// The blocks of the CNN the receptive fields are computed for (`cnn.channels.len()`,
/// `cnn.stem_stride`, `cnn.residual_after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Number of conv blocks.
    pub blocks: usize,
    /// Stride of block 1's conv (2: no max-pool in block 1).
    pub stem_stride: i64,
    /// Blocks followed by a residual basic block.
    pub residual_after: Vec<usize>,
}

impl Shape {
    /// The plain chain of `blocks` conv + pool blocks.
    pub fn plain(blocks: usize) -> Shape {
        Shape {
            blocks,
            stem_stride: 1,
            residual_after: Vec::new(),
        }
    }

    /// The configured CNN's blocks.
    pub fn of(cfg: &crate::config::Cnn) -> Shape {
        Shape {
            blocks: cfg.channels.len(),
            stem_stride: cfg.stem_stride,
            residual_after: cfg.residual_after.clone(),
        }
    }
}

/// The receptive field of one layer's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Layer name as in the CNN's summary (`block3.relu` = the conv's output after
    /// batch norm and ReLU, which keep the geometry; `block3.pool`).
    pub layer: String,
    /// Side of the layer's output map.
    pub side: i64,
    /// Jump: input pixels between two neighbouring units (the product of the strides).
    pub jump: i64,
    /// Receptive-field side in input pixels, from the recursion (may exceed the image).
    pub size: i64,
    /// Input row (and column) of the first pixel of unit 0's field (negative: in the padding).
    pub start: i64,
}

impl Field {
    /// The input pixels `[first, last]` (clipped to the image of side `n`) seen by unit `i`.
    pub(crate) fn span(&self, i: i64, n: i64) -> (i64, i64) {
        let first = self.start + i * self.jump;
        (first.max(0), (first + self.size - 1).min(n - 1))
    }
}

/// The layers of a CNN of `shape`: per block a conv (`blockK.relu`: batch-norm and ReLU
/// keep the geometry), then a pool unless the conv is strided, then the residual block
/// if there is one.
fn layers(shape: &Shape) -> Vec<Layer> {
    let layer = |name: String, steps: Vec<(Geometry, bool)>| Layer { name, steps };
    (1..=shape.blocks)
        .flat_map(|b| {
            let strided = b == 1 && shape.stem_stride > 1;
            let conv = if strided { STEM } else { CONV };
            let mut out = vec![layer(format!("block{b}.relu"), vec![(conv, false)])];
            if !strided {
                out.push(layer(format!("block{b}.pool"), vec![(POOL, true)]));
            }
            if shape.residual_after.contains(&b) {
                let two = vec![(CONV, false), (CONV, false)];
                out.push(layer(format!("block{b}.res"), two));
            }
            out
        })
        .collect()
}

/// The recursion over the layers of a CNN of `shape` on an input of side `n`.
pub fn fields(shape: &Shape, n: i64) -> Vec<Field> {
    let (mut size, mut jump, mut start, mut side) = (1, 1, 0, n);
    let mut out = Vec::new();
    for layer in layers(shape) {
        for (g, _) in &layer.steps {
            size += (g.kernel - 1) * jump;
            start -= g.padding * jump;
            jump *= g.stride;
            side = (side + 2 * g.padding - g.kernel) / g.stride + 1;
        }
        out.push(Field {
            layer: layer.name,
            side,
            jump,
            size,
            start,
        });
    }
    out
}

/// One layer applied to `(1, 1, S, S)` with all-ones weights: a conv (sum) or an average
/// pool. Ones and averages make the gradient positive on the whole field, where the
/// CNN's max pool would pass it only to each window's maximum (same field, sparser gradient).
fn ones_layer(x: &Tensor, g: Geometry, pool: bool) -> Tensor {
    let k = [g.kernel, g.kernel];
    if pool {
        x.avg_pool2d(k, [g.stride; 2], [g.padding; 2], false, true, None)
    } else {
        let w = Tensor::ones([1, 1, g.kernel, g.kernel], (Kind::Double, Device::Cpu));
        x.conv2d(&w, None::<Tensor>, [g.stride], [g.padding], [1], 1)
    }
}

/// Measured field of layer `index` of [`layers`]: the rows whose input gradient is non-zero
/// for the centre unit, as `(first, last)`.
pub(crate) fn measured_span(shape: &Shape, n: i64, index: usize) -> Result<(i64, i64)> {
    let x = Tensor::ones([1, 1, n, n], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let mut y = x.shallow_clone();
    for layer in layers(shape).into_iter().take(index + 1) {
        let input = y.shallow_clone();
        for (g, pool) in layer.steps.iter().copied() {
            y = ones_layer(&y, g, pool);
        }
        if layer.name.ends_with(".res") {
            y = y.f_add(&input)?; // the skip connection (out of place: autograd needs y)
        }
    }
    let c = (y.size()[2] - 1) / 2;
    y.get(0).get(0).get(c).get(c).backward();
    let grad = x.grad().get(0).get(0);
    let rows = grad.abs().sum_dim_intlist(1, false, Kind::Double).gt(0.0);
    let hit = Vec::<bool>::try_from(&rows)?;
    let first = hit
        .iter()
        .position(|&h| h)
        .context("no input pixel has a gradient")?;
    let last = hit
        .iter()
        .rposition(|&h| h)
        .context("no input pixel has a gradient")?;
    Ok((first as i64, last as i64))
}

/// Blocks and input side of the configured CNN.
fn cnn_geometry(cfg: &Config) -> (Shape, i64) {
    (Shape::of(&cfg.cnn), cfg.preprocess.image_size)
}

/// The table: per layer of the configured CNN its output side, jump, receptive field from
/// the recursion, and the field of its centre unit from the recursion and from the gradient
/// (clipped to the image); the call fails if the two disagree.
pub fn table(cfg: &Config) -> Result<Table> {
    let (shape, n) = cnn_geometry(cfg);
    let fs = fields(&shape, n);
    let mut computed = Vec::new();
    let mut measured = Vec::new();
    for (i, f) in fs.iter().enumerate() {
        let want = f.span((f.side - 1) / 2, n);
        let got = measured_span(&shape, n, i)?;
        anyhow::ensure!(
            want == got,
            "{}: recursion gives rows {want:?}, the gradient {got:?}",
            f.layer
        );
        computed.push(format!("{}..={}", want.0, want.1));
        measured.push(format!("{}..={}", got.0, got.1));
    }
    let df = df!(
        "layer" => fs.iter().map(|f| f.layer.clone()).collect::<Vec<_>>(),
        "output side" => fs.iter().map(|f| f.side).collect::<Vec<_>>(),
        "jump (px)" => fs.iter().map(|f| f.jump).collect::<Vec<_>>(),
        "receptive field (px)" => fs.iter().map(|f| f.size).collect::<Vec<_>>(),
        "centre unit: rows (recursion)" => computed,
        "centre unit: rows (gradient)" => measured,
    )?;
    Ok(Table(df))
}

/// Colour of the squares drawn on the photo.
const INK: Rgb<u8> = Rgb([255, 40, 40]);
/// Each photo is enlarged this many times before drawing, so the squares stay visible.
const ZOOM: u32 = 3;

/// `img` with the outline of rows/cols `[a, b]` (in photo pixels) drawn, two pixels wide.
fn draw_square(img: &mut RgbImage, (a, b): (i64, i64)) {
    let (a, b) = ((a as u32) * ZOOM, (b as u32 + 1) * ZOOM - 1);
    for t in a..=b {
        for w in 0..2 {
            for (x, y) in [(t, a + w), (t, b - w), (a + w, t), (b - w, t)] {
                img.put_pixel(x, y, INK);
            }
        }
    }
}

/// The photo `(3, S, S)` enlarged [`ZOOM`] times, with the field of the centre unit of each
/// conv output (`blockN.relu`) of the configured CNN drawn on its own copy.
pub fn figure(cfg: &Config, rgb: &Tensor) -> Result<Figure> {
    let (shape, n) = cnn_geometry(cfg);
    let base = to_rgb_image(rgb)?;
    let big = image::imageops::resize(
        &base,
        base.width() * ZOOM,
        base.height() * ZOOM,
        image::imageops::FilterType::Nearest,
    );
    let items: Vec<(Photo, String)> = fields(&shape, n)
        .iter()
        .filter(|f| f.layer.ends_with(".relu"))
        .map(|f| {
            let mut img = big.clone();
            draw_square(&mut img, f.span((f.side - 1) / 2, n));
            let caption = format!("{}: {0}x{0} px", f.size);
            (Photo::Image(img), format!("{}\n{caption}", f.layer))
        })
        .collect();
    let title = format!("Receptive field of the centre unit of each block (on the {n}-px input)");
    plot::image_grid(&title, &items, items.len().min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursion_gives_the_fields_of_the_five_block_cnn() {
        let fs = fields(&Shape::plain(5), 112);
        let relu: Vec<i64> = fs.iter().step_by(2).map(|f| f.size).collect();
        assert_eq!(relu, vec![3, 8, 18, 38, 78]);
        let pool: Vec<i64> = fs.iter().skip(1).step_by(2).map(|f| f.size).collect();
        assert_eq!(pool, vec![4, 10, 22, 46, 94]);
        let sides: Vec<i64> = fs.iter().map(|f| f.side).collect();
        assert_eq!(sides, vec![112, 56, 56, 28, 28, 14, 14, 7, 7, 3]);
        assert_eq!(fs[9].jump, 32);
    }

    #[test]
    fn gradient_support_is_the_computed_field() {
        let plain = Shape::plain(5);
        let resnet = Shape {
            blocks: 5,
            stem_stride: 2,
            residual_after: vec![2, 4],
        };
        for shape in [plain, resnet] {
            for (i, f) in fields(&shape, 112).iter().enumerate() {
                let want = f.span((f.side - 1) / 2, 112);
                let got = measured_span(&shape, 112, i).unwrap();
                assert_eq!(got, want, "{}", f.layer);
            }
        }
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        assert_eq!(table(&cfg).unwrap().0.height(), 2 * cfg.cnn.channels.len());
        let cat = super::super::photo::photo(&cfg, crate::data::Class::Cat, 0).unwrap();
        let fig = figure(&cfg, &cat).unwrap();
        assert!(fig.svg().contains("78x78"), "block5's field is 78 px");
    }

    #[test]
    fn sides_match_the_real_cnn() {
        use crate::models::Net;
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let mut cfg = cfg;
        for (stem_stride, residual_after) in [(1, vec![]), (2, vec![2, 4])] {
            (cfg.cnn.stem_stride, cfg.cnn.residual_after) = (stem_stride, residual_after);
            let net = super::super::shapes::cnn(&cfg).unwrap();
            let rows = net.summary().unwrap().rows;
            let fs = fields(&Shape::of(&cfg.cnn), cfg.preprocess.image_size);
            for f in &fs {
                let row = rows.iter().find(|r| r.name == f.layer).unwrap();
                assert_eq!(row.output_shape[2..], [f.side, f.side], "{}", f.layer);
            }
            let summarised = rows.iter().filter(|r| {
                r.name.starts_with("block")
                    && [".relu", ".pool", ".res"]
                        .iter()
                        .any(|e| r.name.ends_with(e))
            });
            assert_eq!(summarised.count(), fs.len());
        }
    }
}

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
/// The CNN block's max pool: 2x2, stride 2, no padding.
pub(crate) const POOL: Geometry = Geometry {
    kernel: 2,
    stride: 2,
    padding: 0,
};

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

/// The layers of a CNN with `blocks` blocks, each a conv then a pool.
fn layers(blocks: usize) -> Vec<(String, Geometry)> {
    (1..=blocks)
        .flat_map(|b| {
            [
                (format!("block{b}.relu"), CONV),
                (format!("block{b}.pool"), POOL),
            ]
        })
        .collect()
}

/// The recursion over the layers of a CNN with `blocks` blocks on an input of side `n`.
pub fn fields(blocks: usize, n: i64) -> Vec<Field> {
    let (mut size, mut jump, mut start, mut side) = (1, 1, 0, n);
    let mut out = Vec::new();
    for (layer, g) in layers(blocks) {
        size += (g.kernel - 1) * jump;
        start -= g.padding * jump;
        jump *= g.stride;
        side = (side + 2 * g.padding - g.kernel) / g.stride + 1;
        out.push(Field {
            layer,
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
pub(crate) fn measured_span(blocks: usize, n: i64, index: usize) -> Result<(i64, i64)> {
    let x = Tensor::ones([1, 1, n, n], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let mut y = x.shallow_clone();
    for (i, (_, g)) in layers(blocks).into_iter().take(index + 1).enumerate() {
        y = ones_layer(&y, g, i % 2 == 1);
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
fn cnn_geometry(cfg: &Config) -> (usize, i64) {
    (cfg.cnn.channels.len(), cfg.preprocess.image_size)
}

/// The table: per layer of the configured CNN its output side, jump, receptive field from
/// the recursion, and the field of its centre unit from the recursion and from the gradient
/// (clipped to the image); the call fails if the two disagree.
pub fn table(cfg: &Config) -> Result<Table> {
    let (blocks, n) = cnn_geometry(cfg);
    let fs = fields(blocks, n);
    let mut computed = Vec::new();
    let mut measured = Vec::new();
    for (i, f) in fs.iter().enumerate() {
        let want = f.span((f.side - 1) / 2, n);
        let got = measured_span(blocks, n, i)?;
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
    let (blocks, n) = cnn_geometry(cfg);
    let base = to_rgb_image(rgb)?;
    let big = image::imageops::resize(
        &base,
        base.width() * ZOOM,
        base.height() * ZOOM,
        image::imageops::FilterType::Nearest,
    );
    let items: Vec<(Photo, String)> = fields(blocks, n)
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
        let fs = fields(5, 112);
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
        let fs = fields(5, 112);
        for (i, f) in fs.iter().enumerate() {
            let want = f.span((f.side - 1) / 2, 112);
            assert_eq!(measured_span(5, 112, i).unwrap(), want, "{}", f.layer);
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
        let net = super::super::shapes::cnn(&cfg).unwrap();
        let rows = net.summary().unwrap().rows;
        for f in fields(cfg.cnn.channels.len(), cfg.preprocess.image_size) {
            let row = rows.iter().find(|r| r.name == f.layer).unwrap();
            assert_eq!(row.output_shape[2..], [f.side, f.side], "{}", f.layer);
        }
    }
}

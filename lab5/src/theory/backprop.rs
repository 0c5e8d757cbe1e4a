//! How a conv layer is trained: back-propagation through one `conv2d`, written out by hand and
//! checked against libtorch's autograd on real photos.
//!
//! For `Y = X ⋆ K` (cross-correlation, stride 1, zero padding p) and a loss `L` whose
//! gradient at the output is `G = ∂L/∂Y` (Goodfellow, Bengio & Courville, *Deep Learning*,
//! 2016, §9.5):
//! - `∂L/∂K[o,c,u,v] = Σ_n Σ_(i,j) G[n,o,i,j] · X_pad[n,c,i+u,j+v]`: every kernel weight is
//!   shared by all output positions and all images, so its gradient is the **sum** of their
//!   contributions (a cross-correlation of the input with G);
//! - `∂L/∂X = G` convolved "fully" with `K` (`G` padded by `k - 1 - p`, cross-correlated with
//!   the kernel flipped and its channels swapped; libtorch computes the same as a transposed
//!   convolution): every input pixel collects the gradient of each output its kernel windows
//!   touched;
//! - `∂L/∂b[o] = Σ_n Σ_(i,j) G[n,o,i,j]`.
//!
//! The optimiser (AdamW in this lab) then moves each weight against its summed gradient.

use super::photo;
use crate::plot::Table;
use crate::Config;
use anyhow::Result;
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

/// Output channels of the layer checked.
pub(crate) const OUT_CHANNELS: i64 = 4;
/// Kernel side.
pub(crate) const KERNEL: i64 = 3;
/// Zero padding ("same" for a 3x3 kernel).
pub(crate) const PADDING: i64 = 1;
/// Photos per class in the batch.
pub(crate) const PHOTOS_PER_CLASS: usize = 2;
/// Side the photos are shrunk to (keeps the hand-written sums small).
pub(crate) const SIDE: i64 = 32;
/// Seed of the random kernel, bias and output gradient.
const SEED: i64 = 7;

/// The gradients of one conv layer, by hand and by autograd.
#[derive(Debug)]
pub struct ConvGradients {
    /// `(name, by hand, by autograd)` for the kernel, the bias and the input.
    pub pairs: Vec<(&'static str, Tensor, Tensor)>,
    /// Output positions times images: how many terms each kernel weight's gradient sums.
    pub terms_per_weight: i64,
    /// Outputs whose windows cover one interior input pixel (`C_out · k · k`): how many terms
    /// its gradient sums.
    pub terms_per_pixel: i64,
}

/// `∂L/∂K` by hand: the input cut into its `k x k` patches (im2col), each patch weighted by
/// the output gradient at its position, summed over positions and images.
pub(crate) fn kernel_gradient(x: &Tensor, g: &Tensor) -> Tensor {
    let (n, c, o) = (x.size()[0], x.size()[1], g.size()[1]);
    let patches = x.im2col([KERNEL, KERNEL], [1, 1], [PADDING, PADDING], [1, 1]); // (N, C*k*k, P)
    let g = g.view([n, o, -1]); // (N, O, P)
    g.matmul(&patches.transpose(1, 2)) // (N, O, C*k*k): one sum over the P positions
        .sum_dim_intlist(0, false, Kind::Double) // and over the images
        .view([o, c, KERNEL, KERNEL])
}

/// `∂L/∂X` by hand: the output gradient spread back through the kernel, the "full"
/// convolution of `G` with `K`. Written as a plain forward `conv2d`, not as libtorch's
/// transposed convolution (which is the very operator its autograd uses): `G` padded by
/// `k - 1 - p` on each side, cross-correlated with the kernel flipped in both spatial axes
/// and with its input and output channels swapped, `K'[c, o, u, v] = K[o, c, k-1-u, k-1-v]`.
pub(crate) fn input_gradient(g: &Tensor, w: &Tensor) -> Tensor {
    let flipped = w.flip([2, 3]).transpose(0, 1); // (C, O, k, k)
    let pad = KERNEL - 1 - PADDING;
    g.conv2d(&flipped, None::<Tensor>, [1], [pad], [1], 1)
}

/// Runs the check on `x` `(N, C, S, S)`: a random conv layer, `L = Σ Y·G` for a random `G`
/// (so that `∂L/∂Y = G`), autograd's gradients next to the hand-written ones.
pub(crate) fn check(x: &Tensor) -> ConvGradients {
    tch::manual_seed(SEED);
    let opts = (Kind::Double, Device::Cpu);
    let c = x.size()[1];
    let x = x.to_kind(Kind::Double).set_requires_grad(true);
    let w = Tensor::randn([OUT_CHANNELS, c, KERNEL, KERNEL], opts).set_requires_grad(true);
    let b = Tensor::randn([OUT_CHANNELS], opts).set_requires_grad(true);
    let y = x.conv2d(&w, Some(&b), [1], [PADDING], [1], 1);
    let g = Tensor::randn(y.size(), opts);
    (&y * &g).sum(Kind::Double).backward();
    let bias = g.sum_dim_intlist([0i64, 2, 3].as_slice(), false, Kind::Double);
    let terms = y.size()[0] * y.size()[2] * y.size()[3];
    ConvGradients {
        pairs: vec![
            ("∂L/∂K (kernel)", kernel_gradient(&x.detach(), &g), w.grad()),
            ("∂L/∂b (bias)", bias, b.grad()),
            ("∂L/∂X (input)", input_gradient(&g, &w.detach()), x.grad()),
        ],
        terms_per_weight: terms,
        terms_per_pixel: OUT_CHANNELS * KERNEL * KERNEL,
    }
}

/// The check on [`PHOTOS_PER_CLASS`] cats and dogs of `data.folder`, shrunk to [`SIDE`] px.
pub fn conv_gradients(cfg: &Config) -> Result<ConvGradients> {
    let (images, _) = photo::batch(cfg, PHOTOS_PER_CLASS)?;
    Ok(check(&images.adaptive_avg_pool2d([SIDE, SIDE])))
}

/// [`conv_gradients`] as its table (the notebook cell).
pub fn gradient_table(cfg: &Config) -> Result<Table> {
    conv_gradients(cfg)?.table()
}

impl ConvGradients {
    /// Largest `|by hand - autograd|` over every pair.
    pub fn max_abs_difference(&self) -> Result<f64> {
        let diffs = self
            .pairs
            .iter()
            .map(|(_, a, b)| super::scalar(&(a - b).abs().max()))
            .collect::<Result<Vec<_>>>()?;
        Ok(diffs.into_iter().fold(0.0, f64::max))
    }

    /// One row per gradient: its shape, its norm, and the largest difference between the
    /// hand-written formula and autograd.
    pub fn table(&self) -> Result<Table> {
        let mut diff = Vec::new();
        let mut norm = Vec::new();
        for (_, a, b) in &self.pairs {
            diff.push(format!("{:.1e}", super::scalar(&(a - b).abs().max())?));
            norm.push(format!("{:.4}", super::scalar(&b.norm())?));
        }
        let df = df!(
            "gradient" => self.pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
            "shape" => self.pairs.iter().map(|p| format!("{:?}", p.2.size())).collect::<Vec<_>>(),
            "norm (autograd)" => norm,
            "max |by hand - autograd|" => diff,
            "terms summed per element" => [self.terms_per_weight, self.terms_per_weight, self.terms_per_pixel],
        )?;
        Ok(Table(df))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_gradients_match_autograd_on_photos() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let g = conv_gradients(&cfg).unwrap();
        assert!(
            g.max_abs_difference().unwrap() < 1e-9,
            "{}",
            g.table().unwrap()
        );
        assert_eq!(
            g.terms_per_weight,
            2 * PHOTOS_PER_CLASS as i64 * SIDE * SIDE
        );
        for (name, _, auto) in &g.pairs {
            assert!(super::super::scalar(&auto.norm()).unwrap() > 0.0, "{name}");
        }
    }
}

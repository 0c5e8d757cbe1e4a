//! ResNet's idea, measured. A residual block computes `y = relu(x + F(x))`; its Jacobian is
//! `∂y/∂x = D (I + ∂F/∂x)` with `D = diag(1[x + F(x) > 0])` (the ReLU after the sum gates the
//! identity path; the clean `I + ∂F/∂x` belongs to the pre-activation ResNet, He et al.,
//! "Identity Mappings in Deep Residual Networks", ECCV 2016). We build stacks of the same
//! depth with and without skip connections, with and without batch norm, with PyTorch's
//! default initialisation and with He initialisation (He et al., "Delving Deep into
//! Rectifiers", ICCV 2015), run one cat/dog batch of real photos through them and measure the
//! gradient norm at the first convolution, at initialisation, for growing depth.
//!
//! What this does and does not show: with PyTorch's default init (`Var(w) = 1/(3 fan_in)`,
//! a sixth of He's `2/fan_in`) each plain ReLU layer shrinks the backward signal, so the plain
//! stack's first-layer gradient vanishes; with He init it does not. He et al. 2016 (§4.1)
//! state that the degradation of deep plain nets they saw (higher *training* error) is
//! "unlikely to be caused by vanishing gradients" (their nets had BN and healthy gradient
//! norms): see [`super::degradation`] for a short training comparison.

use super::photo;
use crate::config::Config;
use crate::plot::{self, Figure, Line, Table};
use anyhow::{Context, Result};
use polars::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::sync::{Mutex, MutexGuard};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// Channels of every convolution in the stacks.
pub(crate) const CHANNELS: i64 = 8;
/// Side the photos are shrunk to (keeps the 30-layer stacks fast on a laptop CPU).
pub(crate) const INPUT_SIDE: i64 = 24;
/// Photos per class in the batch.
pub(crate) const PHOTOS_PER_CLASS: usize = 4;
/// Convolutions in the stack body (even: a residual block holds two).
pub const DEPTHS: [usize; 6] = [2, 4, 8, 16, 24, 32];
/// Initialisations averaged (geometric mean) per depth.
pub(crate) const SEEDS: [u64; 3] = [11, 12, 13];
/// PyTorch's default conv init, `kaiming_uniform_(a = sqrt(5))`: U(-1/sqrt(fan_in), +).
const PYTORCH_DEFAULT_GAIN: f64 = 0.577_350_269_189_625_8; // 1 / sqrt(3)
/// He init for ReLU layers: gain sqrt(2), so `Var(w) = 2 / fan_in`.
const HE_GAIN: f64 = std::f64::consts::SQRT_2;

/// How the convolutions' weights are drawn (uniform, scaled by fan-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    /// PyTorch's `nn.Conv2d` default: `Var(w) = 1 / (3 fan_in)`.
    PyTorch,
    /// He et al. 2015: `Var(w) = 2 / fan_in`, keeps the signal's scale through ReLU layers.
    He,
}
/// Names of the first convolution and of the linear head in the var store.
const STEM: &str = "stem";
const HEAD: &str = "head";

/// With or without skip connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    /// `x -> relu(conv(x))`, repeated.
    Plain,
    /// `x -> relu(x + conv(relu(conv(x))))`, repeated (two convolutions per block).
    Residual,
}

/// The gain of `init`: `Var(w) = gain² / fan_in`.
fn gain(init: Init) -> f64 {
    match init {
        Init::PyTorch => PYTORCH_DEFAULT_GAIN,
        Init::He => HE_GAIN,
    }
}

/// A 3x3 "same" convolution without bias, initialised by `init`.
pub(crate) fn conv(p: nn::Path, c_in: i64, c_out: i64, init: Init) -> nn::Conv2D {
    let ws_init = nn::Init::Kaiming {
        dist: nn::init::NormalOrUniform::Uniform,
        fan: nn::init::FanInOut::FanIn,
        non_linearity: nn::init::NonLinearity::ExplicitGain(gain(init)),
    };
    nn::conv2d(
        p,
        c_in,
        c_out,
        3,
        nn::ConvConfig {
            padding: 1,
            bias: false,
            ws_init,
            ..Default::default()
        },
    )
}

/// How a stack is built: skips or not, batch norm or not, which initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Variant {
    /// Name shown in tables and charts.
    pub name: &'static str,
    /// Plain or residual.
    pub stack: Stack,
    /// Batch norm after every convolution.
    pub batch_norm: bool,
    /// Weight initialisation.
    pub init: Init,
}

/// conv, then batch norm when asked.
fn conv_norm(p: &nn::Path, c: i64, v: Variant) -> nn::SequentialT {
    let s = nn::seq_t().add(conv(p / "conv", c, c, v.init));
    if v.batch_norm {
        let cfg = nn::BatchNormConfig {
            ws_init: nn::Init::Const(1.0),
            ..Default::default()
        };
        s.add(nn::batch_norm2d(p / "bn", c, cfg))
    } else {
        s
    }
}

/// A residual block: `relu(x + F(x))` with `F = conv-(bn)-relu-conv-(bn)`.
#[derive(Debug)]
pub(crate) struct ResidualBlock {
    first: nn::SequentialT,
    second: nn::SequentialT,
}

impl ResidualBlock {
    /// A block of `channels` channels under `p`.
    pub(crate) fn new(p: &nn::Path, channels: i64, v: Variant) -> ResidualBlock {
        let first = conv_norm(&(p / "a"), channels, v).add_fn(|x| x.relu());
        ResidualBlock {
            first,
            second: conv_norm(&(p / "b"), channels, v),
        }
    }
}

impl ResidualBlock {
    /// The residual branch `F(x)` alone.
    pub(crate) fn branch(&self, xs: &Tensor, train: bool) -> Tensor {
        self.second
            .forward_t(&self.first.forward_t(xs, train), train)
    }
}

impl ModuleT for ResidualBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        (xs + self.branch(xs, train)).relu()
    }
}

/// Stem conv (3 -> [`CHANNELS`]), `depth` body convolutions, global average pool, 2-way linear.
pub(crate) fn network(root: &nn::Path, v: Variant, depth: usize) -> nn::SequentialT {
    let mut s = nn::seq_t()
        .add(conv(root / STEM, 3, CHANNELS, v.init))
        .add_fn(|x| x.relu());
    for i in 0..depth {
        s = match v.stack {
            Stack::Plain => s
                .add(conv_norm(&(root / format!("l{i}")), CHANNELS, v))
                .add_fn(|x| x.relu()),
            Stack::Residual if i % 2 == 0 => {
                s.add(ResidualBlock::new(&(root / format!("b{i}")), CHANNELS, v))
            }
            Stack::Residual => s,
        };
    }
    let head = nn::linear(root / HEAD, CHANNELS, 2, Default::default());
    s.add_fn(|x| x.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float))
        .add(head)
}

/// The L2 norm of the loss gradient at the stem's weights, for one fresh initialisation.
pub(crate) fn first_layer_gradient(
    x: &Tensor,
    y: &Tensor,
    v: Variant,
    depth: usize,
    seed: u64,
) -> Result<f64> {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = network(&vs.root(), v, depth);
    redraw(&vs, v.init, &mut rng(seed));
    net.forward_t(x, true)
        .cross_entropy_for_logits(y)
        .backward();
    let w = vs
        .variables()
        .remove(&format!("{STEM}.weight"))
        .context("stem weight missing")?;
    super::scalar(&w.grad().norm())
}

/// Geometric mean over [`SEEDS`] of [`first_layer_gradient`].
fn mean_gradient(x: &Tensor, y: &Tensor, v: Variant, depth: usize) -> Result<f64> {
    let logs = SEEDS
        .iter()
        .map(|&s| first_layer_gradient(x, y, v, depth, s).map(f64::log10))
        .collect::<Result<Vec<_>>>()?;
    Ok(10f64.powf(logs.iter().sum::<f64>() / logs.len() as f64))
}

const fn variant(name: &'static str, stack: Stack, batch_norm: bool, init: Init) -> Variant {
    Variant {
        name,
        stack,
        batch_norm,
        init,
    }
}

/// The eight variants measured: plain and residual, each with PyTorch's default and with He
/// init, without and with batch norm. The lab's CNN is a plain stack with He init and batch
/// norm; none of the lab's networks uses PyTorch's default init.
pub(crate) const VARIANTS: [Variant; 8] = [
    variant("plain", Stack::Plain, false, Init::PyTorch),
    variant("residual", Stack::Residual, false, Init::PyTorch),
    variant("plain + batch norm", Stack::Plain, true, Init::PyTorch),
    variant(
        "residual + batch norm",
        Stack::Residual,
        true,
        Init::PyTorch,
    ),
    variant("plain, He init", Stack::Plain, false, Init::He),
    variant("residual, He init", Stack::Residual, false, Init::He),
    variant("plain + batch norm, He init", Stack::Plain, true, Init::He),
    variant(
        "residual + batch norm, He init",
        Stack::Residual,
        true,
        Init::He,
    ),
];

/// Gradient norms at the first layer: `norms[v][d]` for variant `VARIANTS[v]`, depth `depths[d]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientNorms {
    /// Body depths (convolutions).
    pub depths: Vec<usize>,
    /// One row per variant, one value per depth.
    pub norms: Vec<Vec<f64>>,
}

/// Taken by every [`Threads`]: the thread count is global to the process, and the crate's
/// tests run in parallel threads, so two measurements must not change it under each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Sets libtorch's intra-op threads for as long as it lives, then restores them; while it
/// lives, no other `Threads` can be made (the next one waits).
pub(crate) struct Threads {
    old: i32,
    _turn: MutexGuard<'static, ()>,
}

impl Threads {
    /// Sets `n` threads; the old number comes back when the value is dropped.
    pub(crate) fn set(n: i32) -> Threads {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let old = tch::get_num_threads();
        tch::set_num_threads(n);
        Threads { old, _turn: turn }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        tch::set_num_threads(self.old);
    }
}

/// A private random generator for `seed`: libtorch's global one is shared with everything
/// else the process runs (parallel tests, other cells' networks), so seeding it would not
/// make these measurements repeatable.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A tensor of `shape` with values uniform on `[-bound, bound)` drawn from `rng`.
pub(crate) fn uniform(rng: &mut StdRng, shape: &[i64], bound: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    let b = bound as f32;
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-b..b)).collect();
    Tensor::from_slice(&v).view(shape)
}

/// A tensor of `shape` with standard normal values drawn from `rng`.
pub(crate) fn normal(rng: &mut StdRng, shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_slice(&v).view(shape)
}

/// Redraws the random variables of `vs` from `rng`, in name order, with the distributions
/// they were built with: convolutions uniform by `init` and fan-in, the linear head tch's
/// default (uniform on `±sqrt(6 / fan_in)`, bias `±1 / sqrt(fan_in)`); batch-norm
/// parameters and buffers are constants and stay.
pub(crate) fn redraw(vs: &nn::VarStore, init: Init, rng: &mut StdRng) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let head_fan_in = (CHANNELS as f64).sqrt();
    tch::no_grad(|| {
        for (name, mut t) in vars {
            let size = t.size();
            let bound = match size.len() {
                4 => gain(init) * (3.0 / (size[1] * size[2] * size[3]) as f64).sqrt(),
                2 => (6.0 / size[1] as f64).sqrt(),
                1 if name == format!("{HEAD}.bias") => 1.0 / head_fan_in,
                _ => continue,
            };
            t.copy_(&uniform(rng, &size, bound));
        }
    });
}

/// Runs the experiment on `PHOTOS_PER_CLASS` cats and dogs from `data.folder`, on one
/// thread (these tiny convolutions run several times faster without thread hand-offs).
pub fn gradient_norms(cfg: &Config, depths: &[usize]) -> Result<GradientNorms> {
    let _one = Threads::set(1);
    let (images, labels) = photo::batch_sized(cfg, PHOTOS_PER_CLASS, photo::EXPERIMENT_PHOTOS)?;
    let x = images.adaptive_avg_pool2d([INPUT_SIDE, INPUT_SIDE]);
    let norms = VARIANTS
        .iter()
        .map(|&v| {
            depths
                .iter()
                .map(|&d| mean_gradient(&x, &labels, v, d))
                .collect()
        })
        .collect::<Result<Vec<Vec<f64>>>>()?;
    Ok(GradientNorms {
        depths: depths.to_vec(),
        norms,
    })
}

/// [`gradient_norms`] at [`DEPTHS`] as a table, for a notebook cell of its own: evcxr
/// merges everything one cell displays into one output, of which frontends show only one
/// form, so the table and the chart ([`gradient_chart`]) each need a cell.
pub fn gradient_table(cfg: &Config) -> Result<Table> {
    gradient_norms(cfg, &DEPTHS)?.table()
}

/// [`gradient_norms`] at [`DEPTHS`] as a chart, for a notebook cell of its own (see
/// [`gradient_table`]). It measures again, so that the cell also runs on its own or out of
/// order; the measurement is repeatable (fixed photos and [`SEEDS`]), so the chart
/// shows the table's numbers (up to floating-point rounding).
pub fn gradient_chart(cfg: &Config) -> Result<Figure> {
    gradient_norms(cfg, &DEPTHS)?.figure()
}

impl GradientNorms {
    /// One row per depth, one column per variant, in scientific notation.
    pub fn table(&self) -> Result<Table> {
        let mut cols = vec![Column::new(
            "body depth (convs)".into(),
            self.depths.iter().map(|&d| d as u32).collect::<Vec<_>>(),
        )];
        for (v, norms) in VARIANTS.iter().zip(&self.norms) {
            let text: Vec<String> = norms.iter().map(|v| format!("{v:.2e}")).collect();
            cols.push(Column::new(PlSmallStr::from_str(v.name), text));
        }
        Ok(Table(DataFrame::new_infer_height(cols)?))
    }

    /// log10 of the gradient norm against depth, one line per variant.
    pub fn figure(&self) -> Result<Figure> {
        let series: Vec<Line> = VARIANTS
            .iter()
            .zip(&self.norms)
            .map(|(v, norms)| {
                let pts = self
                    .depths
                    .iter()
                    .zip(norms)
                    .map(|(&d, &v)| (d as f64, v.log10()))
                    .collect();
                Line::new(v.name, pts)
            })
            .collect();
        plot::line_chart(
            "Gradient at the first layer vs depth",
            "convolutions in the body",
            "log10 ||dL/dW1||",
            &series,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_connections_keep_the_first_layer_gradient() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let g = gradient_norms(&cfg, &[2, 24]).unwrap();
        // Growth factor from 2 to 24 convolutions of variant v.
        let growth = |v: usize| g.norms[v][1] / g.norms[v][0];
        let within = |v: usize, lo: f64, hi: f64| {
            assert!(
                (lo..hi).contains(&growth(v)),
                "{}: x{} from 2 to 24 convs, {g:?}",
                VARIANTS[v].name,
                growth(v)
            )
        };
        // PyTorch's default init: the plain stack's gradient collapses by orders of magnitude;
        // the residual one stays at the same scale.
        assert!(growth(0) < 1e-4, "{g:?}");
        within(1, 0.1, 10.0);
        assert!(g.norms[1][1] > g.norms[0][1] * 1e4, "{g:?}");
        // With batch norm the plain stack's gradient grows; the residual one stays within a
        // small factor.
        within(2, 2.0, 1e3);
        within(3, 0.2, 5.0);
        // He init: the plain stack loses about an order of magnitude, not many; the residual
        // stack without batch norm grows (each block adds its branch's variance).
        within(4, 1.0 / 30.0, 0.5);
        assert!(g.norms[4][1] > g.norms[0][1] * 1e4, "{g:?}");
        within(5, 5.0, 1e4);
        // He init and batch norm, the lab CNN's setting: plain grows, residual within a small factor.
        within(6, 2.0, 1e3);
        within(7, 0.2, 5.0);
        assert_eq!(g.table().unwrap().0.height(), 2);
        assert!(g.figure().unwrap().svg().contains("residual"));
        // gradient_table and gradient_chart measure separately: they must show the same values.
        let again = gradient_norms(&cfg, &[2, 24]).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(b.abs());
        let pairs = again.norms.iter().flatten().zip(g.norms.iter().flatten());
        assert!(
            pairs.into_iter().all(|(a, b)| close(*a, *b)),
            "{again:?} vs {g:?}"
        );
    }
}

//! Why the gradient flows through a residual block, computed on the block itself.
//!
//! The original (post-activation) basic block of He et al. 2016 computes
//! `x_{l+1} = ReLU(x_l + F(x_l))` with `F = conv-BN-ReLU-conv-BN`. Back-propagation gives
//! `∂L/∂x_l = ∂L/∂x_{l+1} · D_l (I + ∂F/∂x_l)` with `D_l = diag(1[x_l + F(x_l) > 0])`, the
//! ReLU after the sum: an identity path `D_l g` and a branch path `(∂F/∂x_l)ᵀ D_l g` for
//! `g = ∂L/∂x_{l+1}`, and the identity path is gated by `D_l`.
//!
//! The pre-activation block (He et al., "Identity Mappings in Deep Residual Networks", ECCV
//! 2016, eq. 4–5) moves the ReLU into the branch, `x_{l+1} = x_l + F(x_l)` with
//! `F = BN-ReLU-conv-BN-ReLU-conv`; then `x_L = x_l + Σ_{i=l}^{L-1} F(x_i)` and
//! `∂L/∂x_l = ∂L/∂x_L (I + ∂/∂x_l Σ F(x_i))`: `∂L/∂x_L` reaches every earlier block
//! unchanged, whatever the weights.
//!
//! Measured here, all with He initialisation and batch norm in training mode (the paper's
//! setting) on real photos: `x_0` is a batch of [`PHOTOS_PER_CLASS`] cats and dogs at
//! [`INPUT_SIDE`] px through a 3 → [`CHANNELS`] stem conv and a ReLU; a random upstream
//! gradient `g` (standard normal, the shape of the last block's output) is sent back through
//! 1, 4 or 16 blocks and the table gives `‖∂L/∂x_0‖ / ‖g‖`, geometric mean over [`SEEDS`];
//! for one block also the norms of the identity and the branch paths, and how far their sum
//! is from autograd's whole gradient.

use super::photo;
use super::resnet::{conv, normal, redraw, rng, Init, ResidualBlock, Stack, Threads, Variant};
use super::resnet::{CHANNELS, INPUT_SIDE, PHOTOS_PER_CLASS};
use crate::plot::Table;
use crate::Config;
use anyhow::Result;
use polars::prelude::*;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Numbers of stacked blocks the gradient is sent back through.
pub const BLOCKS: [usize; 3] = [1, 4, 16];
/// Seeds of the weights and of `g` (geometric mean over them).
pub const SEEDS: [u64; 3] = [21, 22, 23];

/// The three blocks compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `ReLU(x + F(x))`, `F = conv-BN-ReLU-conv-BN` (He et al. 2016, Fig. 2).
    Original,
    /// The same layers without the skip: `ReLU(F(x))`.
    NoSkip,
    /// `x + F(x)`, `F = BN-ReLU-conv-BN-ReLU-conv` (He et al. 2016b).
    PreActivation,
}

impl Block {
    /// All three, in table order.
    pub const ALL: [Block; 3] = [Block::Original, Block::NoSkip, Block::PreActivation];

    /// Name and formula for the table.
    pub fn name(self) -> &'static str {
        match self {
            Block::Original => "original: ReLU(x + F(x)), F = conv-BN-ReLU-conv-BN",
            Block::NoSkip => "no skip: ReLU(F(x)), same layers",
            Block::PreActivation => "pre-activation: x + F(x), F = BN-ReLU-conv-BN-ReLU-conv",
        }
    }
}

/// He initialisation and batch norm: the ResNet paper's setting.
const VARIANT: Variant = Variant {
    name: "residual",
    stack: Stack::Residual,
    batch_norm: true,
    init: Init::He,
};

/// Batch norm with γ = 1, β = 0 (PyTorch's init).
fn batch_norm(p: nn::Path) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, CHANNELS, cfg)
}

/// The branch of a pre-activation block, `BN-ReLU-conv-BN-ReLU-conv`.
fn pre_activation_branch(p: &nn::Path) -> nn::SequentialT {
    nn::seq_t()
        .add(batch_norm(p / "bn_a"))
        .add_fn(|x| x.relu())
        .add(conv(p / "conv_a", CHANNELS, CHANNELS, Init::He))
        .add(batch_norm(p / "bn_b"))
        .add_fn(|x| x.relu())
        .add(conv(p / "conv_b", CHANNELS, CHANNELS, Init::He))
}

/// One block's layers.
enum Layers {
    PostActivation(ResidualBlock),
    PreActivation(nn::SequentialT),
}

impl Layers {
    fn new(p: &nn::Path, kind: Block) -> Layers {
        match kind {
            Block::PreActivation => Layers::PreActivation(pre_activation_branch(p)),
            _ => Layers::PostActivation(ResidualBlock::new(p, CHANNELS, VARIANT)),
        }
    }

    /// `F(x)`, training mode.
    fn branch(&self, x: &Tensor) -> Tensor {
        match self {
            Layers::PostActivation(b) => b.branch(x, true),
            Layers::PreActivation(f) => f.forward_t(x, true),
        }
    }

    /// The block's output for `kind`.
    fn forward(&self, x: &Tensor, kind: Block) -> Tensor {
        let f = self.branch(x);
        match kind {
            Block::Original => (x + f).relu(),
            Block::NoSkip => f.relu(),
            Block::PreActivation => x + f,
        }
    }
}

/// The blocks' input `x_0`: the photos through a He-initialised 3 → [`CHANNELS`] stem conv
/// and a ReLU, `(2 · PHOTOS_PER_CLASS, CHANNELS, INPUT_SIDE, INPUT_SIDE)`, no gradient.
fn block_input(cfg: &Config) -> Result<Tensor> {
    let (images, _) = photo::batch_sized(cfg, PHOTOS_PER_CLASS, photo::EXPERIMENT_PHOTOS)?;
    let x = images
        .adaptive_avg_pool2d([INPUT_SIDE, INPUT_SIDE])
        .to_kind(Kind::Float);
    let vs = nn::VarStore::new(Device::Cpu);
    let stem = conv(vs.root() / "stem", 3, CHANNELS, Init::He);
    redraw(&vs, Init::He, &mut rng(SEEDS[0]));
    Ok(tch::no_grad(|| x.apply(&stem).relu()))
}

/// `∂⟨out, g⟩/∂x` for an `x` that requires grad (keeps the graph for a second call).
fn vjp(out: &Tensor, g: &Tensor, x: &Tensor) -> Tensor {
    let l = (out * g).sum(Kind::Float);
    Tensor::run_backward(&[l], &[x], true, false).remove(0)
}

fn norm(t: &Tensor) -> Result<f64> {
    super::scalar(&t.norm())
}

/// `‖∂L/∂x_0‖ / ‖g‖` through `n` fresh blocks of `kind`, for one seed.
fn ratio(x0: &Tensor, kind: Block, n: usize, seed: u64) -> Result<f64> {
    let vs = nn::VarStore::new(Device::Cpu);
    let blocks: Vec<Layers> = (0..n)
        .map(|i| Layers::new(&(vs.root() / format!("b{i:02}")), kind))
        .collect();
    let mut rng = rng(seed);
    redraw(&vs, Init::He, &mut rng);
    let x = x0.detach().set_requires_grad(true);
    let out = blocks
        .iter()
        .fold(x.shallow_clone(), |h, b| b.forward(&h, kind));
    let g = normal(&mut rng, &out.size());
    Ok(norm(&vjp(&out, &g, &x))? / norm(&g)?)
}

/// One block, one seed: the gradient split into its two paths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paths {
    /// `‖identity path‖ / ‖g‖`: `‖D g‖` (original), 0 (no skip), `‖g‖` (pre-activation).
    pub identity: f64,
    /// `‖(∂F/∂x)ᵀ (D g)‖ / ‖g‖` (`D = I` for the pre-activation block).
    pub branch: f64,
    /// `‖∂L/∂x‖ / ‖g‖`, autograd through the whole block.
    pub whole: f64,
    /// Largest `|identity + branch − whole|`, elementwise.
    pub mismatch: f64,
}

/// The two paths of one block of `kind` at `x0`, weights and `g` from `seed`.
pub(crate) fn paths(x0: &Tensor, kind: Block, seed: u64) -> Result<Paths> {
    let vs = nn::VarStore::new(Device::Cpu);
    let layers = Layers::new(&(vs.root() / "b00"), kind);
    let mut rng = rng(seed);
    redraw(&vs, Init::He, &mut rng);
    let x = x0.detach().set_requires_grad(true);
    let f = layers.branch(&x);
    let out = match kind {
        Block::Original => (&x + &f).relu(),
        Block::NoSkip => f.relu(),
        Block::PreActivation => &x + &f,
    };
    let g = normal(&mut rng, &out.size());
    // The gradient arriving at the sum x + F(x) (or at F(x) alone): D g, or g.
    let gate = match kind {
        Block::Original => (&x + &f).gt(0.0).to_kind(Kind::Float),
        Block::NoSkip => f.gt(0.0).to_kind(Kind::Float),
        Block::PreActivation => Tensor::ones_like(&g),
    };
    let at_sum = &gate * &g;
    let identity = match kind {
        Block::NoSkip => Tensor::zeros_like(&g),
        _ => at_sum.shallow_clone(),
    };
    let branch = vjp(&f, &at_sum, &x);
    let whole = vjp(&out, &g, &x);
    let g_norm = norm(&g)?;
    Ok(Paths {
        identity: norm(&identity)? / g_norm,
        branch: norm(&branch)? / g_norm,
        whole: norm(&whole)? / g_norm,
        mismatch: super::scalar(&(identity + branch - &whole).abs().max())?,
    })
}

/// Geometric mean of `f(seed)` over [`SEEDS`].
fn geometric_mean(f: impl Fn(u64) -> Result<f64>) -> Result<f64> {
    let logs = SEEDS
        .iter()
        .map(|&s| f(s).map(f64::ln))
        .collect::<Result<Vec<_>>>()?;
    Ok((logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

/// The measurements for one kind of block.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Which block.
    pub block: Block,
    /// One block: the paths, geometric mean over [`SEEDS`] (mismatch: the largest).
    pub one: Paths,
    /// `‖∂L/∂x_0‖ / ‖g‖` through each number of [`BLOCKS`].
    pub through: Vec<f64>,
}

/// Measures the three blocks on the photos of `data.folder`, on one thread.
pub fn flows(cfg: &Config) -> Result<Vec<Flow>> {
    let _one = Threads::set(1);
    let x0 = block_input(cfg)?;
    Block::ALL
        .iter()
        .map(|&block| {
            let all = SEEDS
                .iter()
                .map(|&s| paths(&x0, block, s))
                .collect::<Result<Vec<_>>>()?;
            let mean = |f: fn(&Paths) -> f64| {
                let logs: Vec<f64> = all.iter().map(|p| f(p).max(1e-300).ln()).collect();
                (logs.iter().sum::<f64>() / logs.len() as f64).exp()
            };
            let one = Paths {
                identity: if block == Block::NoSkip {
                    0.0
                } else {
                    mean(|p| p.identity)
                },
                branch: mean(|p| p.branch),
                whole: mean(|p| p.whole),
                mismatch: all.iter().map(|p| p.mismatch).fold(0.0, f64::max),
            };
            let through = BLOCKS
                .iter()
                .map(|&n| geometric_mean(|s| ratio(&x0, block, n, s)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Flow {
                block,
                one,
                through,
            })
        })
        .collect()
}

/// [`flows`] as a table: one row per block.
pub fn table(cfg: &Config) -> Result<Table> {
    let f = flows(cfg)?;
    let col = |g: &dyn Fn(&Flow) -> String| f.iter().map(g).collect::<Vec<_>>();
    let mut cols = vec![
        Column::new("block".into(), col(&|f| f.block.name().to_string())),
        Column::new(
            "1 block: identity path ‖·‖/‖g‖".into(),
            col(&|f| format!("{:.3}", f.one.identity)),
        ),
        Column::new(
            "1 block: branch path ‖·‖/‖g‖".into(),
            col(&|f| format!("{:.3}", f.one.branch)),
        ),
        Column::new(
            "identity + branch vs autograd (max |diff|)".into(),
            col(&|f| format!("{:.1e}", f.one.mismatch)),
        ),
    ];
    for (i, n) in BLOCKS.iter().enumerate() {
        let name = format!(
            "‖∂L/∂x_0‖/‖g‖ through {n} block{}",
            if *n == 1 { "" } else { "s" }
        );
        cols.push(Column::new(
            PlSmallStr::from_str(&name),
            col(&|f| format!("{:.3}", f.through[i])),
        ));
    }
    Ok(Table(DataFrame::new_infer_height(cols)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skip_carries_the_gradient_and_the_paths_add_up() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let f = flows(&cfg).unwrap();
        let [original, no_skip, pre] = [&f[0], &f[1], &f[2]];
        for f in &f {
            // identity path + branch path = autograd's gradient of the whole block.
            assert!(f.one.mismatch < 1e-5, "{f:?}");
            // He init and batch norm: nothing vanishes, the gradient grows with depth.
            assert!(f.through.windows(2).all(|w| w[1] > w[0]), "{f:?}");
            assert!(
                (f.one.whole - f.through[0]).abs() < 1e-9 * f.one.whole,
                "{f:?}"
            );
        }
        // Pre-activation: g passes unchanged; original: gated by the ReLU after the sum.
        assert!((pre.one.identity - 1.0).abs() < 1e-6, "{pre:?}");
        assert!(
            original.one.identity > 0.0 && original.one.identity < 1.0,
            "{original:?}"
        );
        assert_eq!(no_skip.one.identity, 0.0);
        // At initialisation the branch path is several times larger than the identity path.
        for f in [original, pre] {
            assert!(f.one.branch > 2.0 * f.one.identity, "{f:?}");
        }
        // Through 16 blocks, without skips the gradient grows an order of magnitude more.
        let last = BLOCKS.len() - 1;
        let with_skip = original.through[last].max(pre.through[last]);
        assert!(no_skip.through[last] > 5.0 * with_skip, "{f:?}");
        assert_eq!(table(&cfg).unwrap().0.height(), 3);
    }
}

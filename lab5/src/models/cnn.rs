//! The CNN trained from scratch, built with `tch::nn::seq_t()`:
//! `[conv3x3 -> batch-norm -> ReLU -> max-pool 2]` per entry of `cnn.channels`, global
//! average pooling, dropout, a linear embedding layer (+ ReLU, the penultimate layer that
//! [`Net::embed`] returns), dropout and a 2-way linear classifier (cat, dog).

use super::summary::{LayerSpec, Summary};
use super::Net;
use crate::config;
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Model kind stored in run records.
pub const KIND: &str = "cnn";
/// Fewest parameters the lab accepts for this model.
pub const MIN_PARAMS: i64 = 300_000;
/// Most parameters the lab accepts for this model.
pub const MAX_PARAMS: i64 = 100_000_000;
/// Convolution kernel side.
const KERNEL: i64 = 3;
/// Zero padding that keeps the spatial size of a 3x3 convolution.
const PADDING: i64 = 1;
/// Max-pool window and stride (halves height and width).
const POOL: i64 = 2;
/// Colour channels of the input.
const IN_CHANNELS: i64 = 3;
/// Output classes (cat, dog).
const CLASSES: i64 = 2;
/// `(N, C, H, W)` viewed as `(N, H, W, C)` and back: the axis orders that give a tensor
/// channels-last strides.
const TO_NHWC: [i64; 4] = [0, 2, 3, 1];
const TO_NCHW: [i64; 4] = [0, 3, 1, 2];

/// The same images with channels-last strides (`NHWC` in memory, still indexed `NCHW`).
/// libtorch then runs every convolution, batch-norm, ReLU and pooling of the network in
/// oneDNN's channels-last layout: about twice as fast on CPUs as the default layout.
/// Tensors that are not 4-D are returned as they are.
pub fn channels_last(xs: &Tensor) -> Tensor {
    if xs.dim() != 4 {
        return xs.shallow_clone();
    }
    xs.permute(TO_NHWC).contiguous().permute(TO_NCHW)
}

/// A `seq_t` together with the name and type of each of its layers (for the summary).
struct Layers {
    seq: nn::SequentialT,
    specs: Vec<LayerSpec>,
}

impl Layers {
    fn new() -> Self {
        Layers {
            seq: nn::seq_t(),
            specs: Vec::new(),
        }
    }

    fn push<M: ModuleT + 'static>(mut self, name: &str, kind: &'static str, m: M) -> Self {
        self.seq = self.seq.add(m);
        self.specs.push(LayerSpec::new(name, kind));
        self
    }

    fn dropout(self, name: &str, p: f64) -> Self {
        self.push(
            name,
            "Dropout",
            nn::func_t(move |xs, train| xs.dropout(p, train)),
        )
    }

    /// ReLU, in place while training (like PyTorch's `ReLU(inplace=True)`: one less
    /// activation-sized tensor written per layer, ~13 % of a training epoch here; the
    /// result is identical). Out of place in evaluation, so that [`Cnn::activations`]
    /// still returns each batch-norm's own output.
    fn relu(self, name: &str) -> Self {
        self.push(name, "ReLU", nn::func_t(relu_t))
    }
}

/// ReLU of a layer's output: in place while training, out of place in evaluation.
fn relu_t(xs: &Tensor, train: bool) -> Tensor {
    if train {
        xs.shallow_clone().relu_()
    } else {
        xs.relu()
    }
}

/// A 3x3 convolution (no bias) that, while training with a `train_kind` other than fp32,
/// computes in that kind on copies of its input and of its fp32 weights, as
/// `torch.autocast` does: the gradient flows back through the copy into the fp32 weights.
/// The batch-norm after it takes the bf16 output with fp32 statistics and returns bf16,
/// ReLU and pooling follow in bf16, and the global average pool returns fp32 again.
/// In evaluation it is a plain fp32 convolution.
#[derive(Debug)]
struct Conv {
    conv: nn::Conv2D,
    /// The settings `conv` was built with (tch keeps its copy private).
    cfg: nn::ConvConfig,
    train_kind: Kind,
}

impl ModuleT for Conv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train || self.train_kind == Kind::Float {
            return xs.apply(&self.conv);
        }
        let (c, k) = (&self.cfg, self.train_kind);
        let bias = self.conv.bs.as_ref().map(|b| b.to_kind(k));
        let w = self.conv.ws.to_kind(k);
        let (stride, padding, dilation) = ([c.stride; 2], [c.padding; 2], [c.dilation; 2]);
        xs.to_kind(k)
            .conv2d(&w, bias.as_ref(), stride, padding, dilation, c.groups)
    }
}

/// Batch-norm initialised like PyTorch (weight 1, bias 0).
fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let c = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, c)
}

/// Input and output channels of a conv block and the kind it trains in.
struct BlockSpec {
    c_in: i64,
    c_out: i64,
    train_kind: Kind,
}

fn conv_block(layers: Layers, root: &nn::Path, i: usize, b: BlockSpec) -> Layers {
    let name = format!("block{}", i + 1);
    let p = root / name.as_str();
    let conv_cfg = nn::ConvConfig {
        padding: PADDING,
        bias: false,
        ..Default::default()
    };
    let conv = Conv {
        conv: nn::conv2d(&p / "conv", b.c_in, b.c_out, KERNEL, conv_cfg),
        cfg: conv_cfg,
        train_kind: b.train_kind,
    };
    let c_out = b.c_out;
    layers
        .push(&format!("{name}.conv"), "Conv2d", conv)
        .push(
            &format!("{name}.bn"),
            "BatchNorm2d",
            batch_norm(&p / "bn", c_out),
        )
        .relu(&format!("{name}.relu"))
        .push(
            &format!("{name}.pool"),
            "MaxPool2d",
            nn::func(|xs| xs.max_pool2d([POOL, POOL], [POOL, POOL], [0, 0], [1, 1], false)),
        )
}

/// Conv blocks (training in `train_kind`), pooling, dropout, embedding linear + ReLU.
fn trunk(root: &nn::Path, cfg: &config::Cnn, train_kind: Kind) -> Layers {
    let ins = std::iter::once(IN_CHANNELS).chain(cfg.channels.iter().copied());
    let pairs = ins.zip(cfg.channels.iter().copied()).enumerate();
    let layers = pairs.fold(Layers::new(), |l, (i, (c_in, c_out))| {
        let spec = BlockSpec {
            c_in,
            c_out,
            train_kind,
        };
        conv_block(l, root, i, spec)
    });
    let last = cfg.channels.last().copied().unwrap_or(IN_CHANNELS);
    let gap = nn::func(|xs| xs.mean_dim([2i64, 3].as_slice(), false, Kind::Float));
    let embed = nn::linear(root / "embed", last, cfg.embedding_dim, Default::default());
    layers
        .push("gap", "GlobalAvgPool", gap)
        .dropout("dropout1", cfg.dropout)
        .push("embed", "Linear", embed)
        .relu("embed_relu")
}

/// Dropout and the 2-way classifier.
fn head(root: &nn::Path, cfg: &config::Cnn) -> Layers {
    let fc = nn::linear(
        root / "classifier",
        cfg.embedding_dim,
        CLASSES,
        Default::default(),
    );
    Layers::new()
        .dropout("dropout2", cfg.dropout)
        .push("classifier", "Linear", fc)
}

/// The CNN: its var store, the trunk up to the embedding and the classifier head.
pub struct Cnn {
    vs: nn::VarStore,
    trunk: nn::SequentialT,
    head: nn::SequentialT,
    specs: Vec<LayerSpec>,
    image_size: i64,
    train_kind: Kind,
}

impl std::fmt::Debug for Cnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cnn({} layers, input {} px)",
            self.specs.len(),
            self.image_size
        )
    }
}

impl Cnn {
    /// Builds the network for square inputs of `image_size` pixels on `device` (weights
    /// drawn from libtorch's generator: call `tch::manual_seed` first for reproducibility);
    /// it trains in the arithmetic `cfg.precision` resolves to on `device`.
    /// Fails when the image is too small for the number of blocks or when the parameter
    /// count is outside [`MIN_PARAMS`] ..= [`MAX_PARAMS`].
    pub fn new(cfg: &config::Cnn, image_size: i64, device: Device) -> Result<Cnn> {
        let blocks = cfg.channels.len() as u32;
        if image_size >> blocks < 1 {
            bail!(
                "an input of {image_size} px is too small for {blocks} pooling blocks; \
                 raise preprocess.image_size or remove entries from cnn.channels"
            );
        }
        let vs = nn::VarStore::new(device);
        let train_kind = crate::runtime::training_kind(cfg.precision, device);
        let (t, h) = (trunk(&vs.root(), cfg, train_kind), head(&vs.root(), cfg));
        let specs = t.specs.into_iter().chain(h.specs).collect();
        let net = Cnn {
            vs,
            trunk: t.seq,
            head: h.seq,
            specs,
            image_size,
            train_kind,
        };
        let what = "cnn.channels or cnn.embedding_dim in config.json";
        net.summary()?.check_params(MIN_PARAMS, MAX_PARAMS, what)?;
        Ok(net)
    }

    /// Input side in pixels.
    pub fn image_size(&self) -> i64 {
        self.image_size
    }

    /// The output of every trunk layer (evaluation mode, no gradients) for normalised
    /// images `xs`, named like the summary's rows (`block1.conv`, ...): the feature maps
    /// shown in the theory notebook.
    pub fn activations(&self, xs: &Tensor) -> Vec<(String, Tensor)> {
        let _guard = tch::no_grad_guard();
        let outs = self.trunk.forward_all_t(&channels_last(xs), false, None);
        self.specs
            .iter()
            .map(|s| s.name.clone())
            .zip(outs)
            .collect()
    }
}

impl Net for Cnn {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn logits(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head.forward_t(&self.embed(xs, train), train)
    }

    fn embed(&self, xs: &Tensor, train: bool) -> Tensor {
        self.trunk.forward_t(&channels_last(xs), train)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn precision(&self) -> &'static str {
        crate::runtime::kind_name(self.train_kind)
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn summary(&self) -> Result<Summary> {
        let _guard = tch::no_grad_guard();
        let s = self.image_size;
        let opts = (Kind::Float, self.vs.device());
        let x = Tensor::zeros([1, IN_CHANNELS, s, s], opts);
        let mut outs = self.trunk.forward_all_t(&x, false, None);
        let last = outs
            .last()
            .map(|t| t.shallow_clone())
            .unwrap_or(x.shallow_clone());
        outs.extend(self.head.forward_all_t(&last, false, None));
        Summary::build("cnn", &x, &self.specs, &outs, &self.vs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(channels: Vec<i64>) -> config::Cnn {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json"));
        let mut c = crate::Config::from_json(&text.unwrap()).unwrap().cnn;
        c.channels = channels;
        c
    }

    #[test]
    fn shapes_params_and_embedding() {
        tch::manual_seed(1);
        let c = cfg(vec![32, 64, 128, 256]);
        let net = Cnn::new(&c, 64, Device::Cpu).unwrap();
        let s = net.summary().unwrap();
        let expected: i64 = net
            .var_store()
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(s.total_params(), expected);
        assert_eq!(s.trainable_params(), expected);
        let conv1 = &s.rows[0];
        assert_eq!(
            (conv1.output_shape.clone(), conv1.params),
            (vec![-1, 32, 64, 64], 3 * 32 * 9)
        );
        assert_eq!(s.rows.last().unwrap().output_shape, vec![-1, 2]);
        let x = Tensor::rand([3, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(net.embed(&x, false).size(), vec![3, c.embedding_dim]);
        assert_eq!(net.logits(&x, true).size(), vec![3, 2]);
        let cl = channels_last(&x);
        assert_eq!(cl.stride(), vec![3 * 64 * 64, 1, 64 * 3, 3]);
        assert_eq!(f64::try_from((&cl - &x).abs().max()).unwrap(), 0.0);
        assert_eq!(s.to_frame().unwrap().height(), s.rows.len());
        assert!(s.to_string().contains("block4.conv"), "{s}");
    }

    #[test]
    fn in_place_relu_trains_like_relu_and_keeps_batch_norm_outputs() {
        tch::manual_seed(2);
        let net = Cnn::new(&cfg(vec![32, 64, 128, 256]), 32, Device::Cpu).unwrap();
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let acts = net.activations(&x);
        let get = |name: &str| &acts.iter().find(|(n, _)| n == name).unwrap().1;
        let (bn, relu) = (get("block1.bn"), get("block1.relu"));
        assert!(
            f64::try_from(bn.min()).unwrap() < 0.0,
            "batch-norm output was clipped"
        );
        assert_eq!(f64::try_from((bn.relu() - relu).abs().max()).unwrap(), 0.0);
        let y = Tensor::randn([2, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let out = relu_t(&(&y * 1.0), true);
        assert_eq!(f64::try_from((&out - y.relu()).abs().max()).unwrap(), 0.0);
        out.sum(Kind::Float).backward();
        let want = y.gt(0.0).to_kind(Kind::Float);
        assert_eq!(f64::try_from((y.grad() - want).abs().max()).unwrap(), 0.0);
    }

    /// Two nets with the same weights and no dropout, one per precision, and a batch of
    /// images.
    fn twins() -> (Cnn, Cnn, Tensor) {
        let mut c = cfg(vec![32, 64, 128, 256]);
        c.dropout = 0.0;
        c.precision = config::Precision::Fp32;
        let fp32 = Cnn::new(&c, 32, Device::Cpu).unwrap();
        c.precision = config::Precision::Bf16;
        let mut bf16 = Cnn::new(&c, 32, Device::Cpu).unwrap();
        bf16.var_store_mut().copy(fp32.var_store()).unwrap();
        let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
        (fp32, bf16, x)
    }

    #[test]
    fn bf16_training_runs_convolutions_in_bf16_with_fp32_weights_and_logits() {
        let (fp32, bf16, x) = twins();
        assert_eq!(
            (fp32.train_kind, bf16.train_kind),
            (Kind::Float, Kind::BFloat16)
        );
        let outs = bf16.trunk.forward_all_t(&channels_last(&x), true, None);
        let kind_of = |name: &str| {
            let i = bf16.specs.iter().position(|s| s.name == name).unwrap();
            outs[i].kind()
        };
        assert_eq!(kind_of("block1.conv"), Kind::BFloat16);
        assert_eq!(kind_of("block4.pool"), Kind::BFloat16);
        assert_eq!(kind_of("gap"), Kind::Float);
        let (a, b) = (fp32.logits(&x, true), bf16.logits(&x, true));
        assert_eq!(b.kind(), Kind::Float);
        let rel = f64::try_from((&a - &b).abs().max() / a.abs().max()).unwrap();
        assert!(rel > 0.0 && rel < 0.05, "bf16 logits differ by {rel}");
        b.sum(Kind::Float).backward();
        let w = &bf16.var_store().variables()["block1.conv.weight"];
        assert_eq!((w.kind(), w.grad().kind()), (Kind::Float, Kind::Float));
        assert!(f64::try_from(w.grad().abs().sum(Kind::Float)).unwrap() > 0.0);
    }

    #[test]
    fn evaluation_is_fp32_whatever_the_training_precision() {
        let (fp32, bf16, x) = twins();
        let (a, b) = (fp32.logits(&x, false), bf16.logits(&x, false));
        assert_eq!(f64::try_from((a - b).abs().max()).unwrap(), 0.0);
        assert!(bf16
            .activations(&x)
            .iter()
            .all(|(_, t)| t.kind() == Kind::Float));
    }

    #[test]
    fn too_small_or_too_large_models_are_refused() {
        let err = Cnn::new(&cfg(vec![4, 4, 4, 4]), 32, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0.3") && err.contains("cnn.channels"), "{err}");
        let err = Cnn::new(&cfg(vec![8; 8]), 64, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too small"), "{err}");
    }
}

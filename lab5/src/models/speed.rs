//! The CNN's speed machinery, kept out of the model file so that [`super::cnn`] reads like
//! the course's `nn.Sequential`. None of it changes what the network computes in fp32:
//!
//! - [`channels_last`]: images in `NHWC` memory order, so libtorch runs every convolution,
//!   batch-norm, ReLU and pooling in oneDNN's channels-last kernels (about twice as fast on
//!   CPUs; PyTorch's `x.to(memory_format=torch.channels_last)`);
//! - [`relu`]: in place while training (PyTorch's `ReLU(inplace=True)`: one activation-sized
//!   tensor less written per layer, ~13 % of an epoch here, identical results), out of place
//!   in evaluation so that `Cnn::activations` keeps each batch-norm's own output;
//! - [`conv3x3`]: with `cnn.precision` = `bf16` (or `auto` on a CPU with AVX512-BF16) the
//!   convolutions train in bfloat16 on copies of the fp32 weights, like `torch.autocast`.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// `(N, C, H, W)` viewed as `(N, H, W, C)` and back: the axis orders that give a tensor
/// channels-last strides.
const TO_NHWC: [i64; 4] = [0, 2, 3, 1];
const TO_NCHW: [i64; 4] = [0, 3, 1, 2];

/// The same images `[N, C, H, W]` with channels-last strides (`NHWC` in memory, still
/// indexed `NCHW`). Tensors that are not 4-D are returned as they are.
pub(crate) fn channels_last(xs: &Tensor) -> Tensor {
    if xs.dim() != 4 {
        return xs.shallow_clone();
    }
    xs.permute(TO_NHWC).contiguous().permute(TO_NCHW)
}

/// ReLU as a layer: in place while training, out of place in evaluation.
pub(crate) fn relu() -> impl ModuleT {
    nn::func_t(relu_t)
}

/// ReLU of a layer's output: in place while training, out of place in evaluation.
pub(crate) fn relu_t(xs: &Tensor, train: bool) -> Tensor {
    if train {
        xs.shallow_clone().relu_()
    } else {
        xs.relu()
    }
}

/// A 3x3 convolution, padding 1 (keeps height and width), with a bias only when
/// `bias` (a batch-norm after it has its own), training in `train_kind`
/// (`Kind::Float` or `Kind::BFloat16`, see [`Conv`]). Weights: tch's default
/// `DEFAULT_KAIMING_UNIFORM`, uniform on `±sqrt(6 / fan_in)` with `fan_in = c_in · 9`, so
/// `Var(w) = 2 / fan_in` (He et al. 2015). That is not PyTorch's `Conv2d` default
/// (`kaiming_uniform_(a = sqrt(5))`, `Var(w) = 1 / (3 fan_in)`); `theory::init` measures it.
pub(crate) fn conv3x3(p: nn::Path, c_in: i64, c_out: i64, bias: bool, train_kind: Kind) -> Conv {
    conv3x3_strided(p, (c_in, c_out), 1, bias, train_kind)
}

/// [`conv3x3`] with a `stride` (2 halves height and width: `(S + 1) / 2` for a side `S`).
pub(crate) fn conv3x3_strided(
    p: nn::Path,
    (c_in, c_out): (i64, i64),
    stride: i64,
    bias: bool,
    train_kind: Kind,
) -> Conv {
    let cfg = nn::ConvConfig {
        padding: 1,
        stride,
        bias,
        ..Default::default()
    };
    Conv {
        conv: nn::conv2d(p, c_in, c_out, 3, cfg),
        cfg,
        train_kind,
    }
}

/// A convolution that, while training with a `train_kind` other than fp32, computes in
/// that kind on copies of its input and of its fp32 weights, as `torch.autocast` does:
/// the gradient flows back through the copy into the fp32 weights. The batch-norm after
/// it takes the bf16 output with fp32 statistics and returns bf16, ReLU and pooling
/// follow in bf16, and the global average pool returns fp32 again.
/// In evaluation it is a plain fp32 convolution.
#[derive(Debug)]
pub(crate) struct Conv {
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

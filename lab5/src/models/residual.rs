//! The residual basic block that `cnn.residual_after` inserts into the CNN's sequential
//! chain (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; torchvision's
//! `resnet.BasicBlock` without downsampling):
//!
//! ```text
//! y = ReLU(x + BN2(conv3x3(ReLU(BN1(conv3x3(x))))))     [N, C, S, S] -> [N, C, S, S]
//! ```
//!
//! It is one layer of the sequence (one row of the layer table, `blockK.res`): the skip
//! connection lives inside the layer, so the model's top level stays `nn.Sequential`.
//! With `cnn.batch_norm = false` (the ablation) the convolutions have biases and no
//! batch-norm follows them.

use super::speed::{self, Conv};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// `x + F(x)`, then ReLU, with `F` two 3x3 convolutions (see the module docs).
#[derive(Debug)]
pub(crate) struct BasicBlock {
    conv1: Conv,
    bn1: Option<nn::BatchNorm>,
    conv2: Conv,
    bn2: Option<nn::BatchNorm>,
}

/// Batch-norm initialised like PyTorch (weight 1, bias 0); `zero` starts the weight at 0,
/// so that the block starts as the identity (Goyal et al., "Accurate, Large Minibatch SGD",
/// 2017, section 5.1: "zero γ" for the last batch-norm of each residual branch).
pub(super) fn batch_norm(p: nn::Path, channels: i64, zero: bool) -> nn::BatchNorm {
    let c = nn::BatchNormConfig {
        ws_init: nn::Init::Const(if zero { 0.0 } else { 1.0 }),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, c)
}

impl BasicBlock {
    /// A block of `channels` channels under `p` (`p/conv1`, `p/bn1`, `p/conv2`, `p/bn2`),
    /// training its convolutions in `train_kind` (see [`speed::Conv`]).
    pub(crate) fn new(p: nn::Path, channels: i64, batch_norm_on: bool, train_kind: Kind) -> Self {
        let conv =
            |name: &str| speed::conv3x3(&p / name, channels, channels, !batch_norm_on, train_kind);
        let bn =
            |name: &str, zero: bool| batch_norm_on.then(|| batch_norm(&p / name, channels, zero));
        BasicBlock {
            conv1: conv("conv1"),
            bn1: bn("bn1", false),
            conv2: conv("conv2"),
            bn2: bn("bn2", true),
        }
    }
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let norm = |x: Tensor, bn: &Option<nn::BatchNorm>| match bn {
            Some(bn) => x.apply_t(bn, train),
            None => x,
        };
        let h = norm(self.conv1.forward_t(xs, train), &self.bn1);
        let h = speed::relu_t(&h, train);
        let h = norm(self.conv2.forward_t(&h, train), &self.bn2);
        (h + xs).relu()
    }
}

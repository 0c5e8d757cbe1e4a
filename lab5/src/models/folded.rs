//! EfficientNet-Lite0 for inference only: the network of [`super::efficientnet`] with each
//! frozen batch-norm folded into the convolution before it, run in channels-last memory
//! order and, where the CPU has native bfloat16 dot products, in bfloat16. It is what the
//! backbone pass ([`crate::labels::features`]) runs over every photo.
//!
//! Folding (the inference-time fusion of PyTorch's `torch.fx.experimental.optimization.fuse`
//! and of `torch.jit.freeze`; Jacob et al. 2018, section 3.2): batch-norm in evaluation mode
//! is the affine map `y = γ (x − μ) / sqrt(σ² + ε) + β` per output channel, so with
//! `s = γ / sqrt(σ² + ε)` the convolution `W` followed by it equals one convolution with
//! weight `W · s` (each output channel's filter scaled) and bias `β − μ · s`. One pass over
//! each activation tensor less per layer; in fp32 the result equals the unfolded network to
//! rounding (a test checks both precisions against it).
//!
//! Channels-last (`NHWC` strides) lets oneDNN run the depthwise and 1x1 convolutions without
//! reordering every tensor (PyTorch's `model.to(memory_format=torch.channels_last)`).
//! bfloat16 keeps fp32's exponent range with an 8-bit mantissa; the pooled features are
//! averaged and returned in fp32, and the ImageNet classifier runs in fp32.

use super::efficientnet::{self, block_shapes, same_conv2d, BN_EPS, FEATURES, RELU6_MAX};
use super::speed::channels_last;
use anyhow::{Context, Result};
use std::collections::HashMap;
use tch::{nn, Kind, Tensor};

/// Kernel side, stride and groups of the stem and of a 1x1 convolution.
const STEM: (i64, i64, i64) = (efficientnet::STEM_KERNEL, efficientnet::STEM_STRIDE, 1);
const POINTWISE: (i64, i64, i64) = (1, 1, 1);

/// A convolution with its batch-norm folded in: TensorFlow `SAME` padding, a bias.
#[derive(Debug)]
struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    /// `(kernel, stride, groups)`.
    shape: (i64, i64, i64),
}

impl FoldedConv {
    /// Folds the batch-norm `bn` (prefix of `weight`, `bias`, `running_mean`,
    /// `running_var`) into the convolution `conv` (prefix of `weight`), from the variables
    /// `vars` of a loaded EfficientNet-Lite0, computing in f64 and storing in `kind`;
    /// `shape` is `(kernel, stride, groups)`.
    fn new(
        vars: &Vars,
        (conv, bn): (&str, &str),
        shape: (i64, i64, i64),
        kind: Kind,
    ) -> Result<Self> {
        let w = vars.get(&format!("{conv}.weight"))?;
        let [gamma, beta, mean, var] = ["weight", "bias", "running_mean", "running_var"]
            .map(|n| vars.get(&format!("{bn}.{n}")));
        let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
        let scale = &gamma / (var + BN_EPS).sqrt();
        let weight = &w * scale.view([-1, 1, 1, 1]);
        let bias = beta - mean * &scale;
        Ok(FoldedConv {
            weight: channels_last(&weight.to_kind(kind)),
            bias: bias.to_kind(kind),
            shape,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        same_conv2d(x, &self.weight, Some(&self.bias), self.shape)
    }
}

/// The variables of a loaded network by name, as f64 copies on their device.
struct Vars(HashMap<String, Tensor>);

impl Vars {
    fn get(&self, name: &str) -> Result<Tensor> {
        let t = self
            .0
            .get(name)
            .with_context(|| format!("EfficientNet-Lite0 has no variable `{name}`"))?;
        Ok(t.detach().to_kind(Kind::Double))
    }
}

/// One MBConv block with folded batch-norms.
#[derive(Debug)]
struct FoldedBlock {
    expand: Option<FoldedConv>,
    depthwise: FoldedConv,
    project: FoldedConv,
    residual: bool,
}

impl FoldedBlock {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = match &self.expand {
            Some(e) => e.forward(x).clamp_(0.0, RELU6_MAX),
            None => x.shallow_clone(),
        };
        let h = self.depthwise.forward(&h).clamp_(0.0, RELU6_MAX);
        let mut h = self.project.forward(&h);
        if self.residual {
            h.g_add_(x)
        } else {
            h
        }
    }
}

/// EfficientNet-Lite0 with folded batch-norms, channels-last, in `fp32` or `bf16`: the
/// same function as [`efficientnet::EfficientNetLite0::features`] and
/// [`efficientnet::EfficientNetLite0::classify`] for inference (no gradients, nothing to
/// train). Built from a loaded network's variables; owns its own copies.
#[derive(Debug)]
pub struct FoldedLite0 {
    stem: FoldedConv,
    blocks: Vec<FoldedBlock>,
    head: FoldedConv,
    fc_weight: Tensor,
    fc_bias: Tensor,
    kind: Kind,
}

impl FoldedLite0 {
    /// Folds the loaded network `vs` (an [`efficientnet::EfficientNetLite0`]'s variables)
    /// for inference in `kind` (`Kind::Float` or `Kind::BFloat16`).
    ///
    /// # Errors
    /// `kind` is neither `Float` nor `BFloat16`; a variable of the architecture is missing
    /// from `vs`.
    pub fn new(vs: &nn::VarStore, kind: Kind) -> Result<Self> {
        if !matches!(kind, Kind::Float | Kind::BFloat16) {
            anyhow::bail!("the folded EfficientNet-Lite0 runs in fp32 or bf16, not {kind:?}");
        }
        let vars = Vars(vs.variables());
        let stem = FoldedConv::new(&vars, ("_conv_stem", "_bn0"), STEM, kind)?;
        let blocks = block_shapes()
            .into_iter()
            .enumerate()
            .map(|(i, shape)| {
                let at = |n: &str| format!("_blocks.{i}.{n}");
                let expand = match shape.expand {
                    1 => None,
                    _ => Some(FoldedConv::new(
                        &vars,
                        (&at("_expand_conv"), &at("_bn0")),
                        POINTWISE,
                        kind,
                    )?),
                };
                let dw = (shape.kernel, shape.stride, shape.c_in * shape.expand);
                Ok(FoldedBlock {
                    expand,
                    depthwise: FoldedConv::new(
                        &vars,
                        (&at("_depthwise_conv"), &at("_bn1")),
                        dw,
                        kind,
                    )?,
                    project: FoldedConv::new(
                        &vars,
                        (&at("_project_conv"), &at("_bn2")),
                        POINTWISE,
                        kind,
                    )?,
                    residual: shape.stride == 1 && shape.c_in == shape.c_out,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head = FoldedConv::new(&vars, ("_conv_head", "_bn1"), POINTWISE, kind)?;
        let fc = |n: &str| {
            vars.get(&format!("_fc.{n}"))
                .map(|t| t.to_kind(Kind::Float))
        };
        Ok(FoldedLite0 {
            stem,
            blocks,
            head,
            fc_weight: fc("weight")?,
            fc_bias: fc("bias")?,
            kind,
        })
    }

    /// The kind the convolutions compute in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Globally average-pooled features `(N, 1280)` float32 of normalised images
    /// `(N, 3, H, W)` (any float kind; converted to the network's kind and channels-last).
    /// Call under `tch::no_grad`.
    pub fn features(&self, images: &Tensor) -> Tensor {
        let x = channels_last(&images.to_kind(self.kind));
        let x = self.stem.forward(&x).clamp_(0.0, RELU6_MAX);
        let x = self.blocks.iter().fold(x, |x, b| b.forward(&x));
        let x = self.head.forward(&x).clamp_(0.0, RELU6_MAX);
        let pooled = x.mean_dim(&[2i64, 3][..], false, Kind::Float);
        debug_assert_eq!(pooled.size()[1], FEATURES);
        pooled
    }

    /// ImageNet logits `(N, 1000)` float32 from pooled features.
    pub fn classify(&self, features: &Tensor) -> Tensor {
        features.linear(&self.fc_weight, Some(&self.fc_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::efficientnet::EfficientNetLite0;
    use tch::Device;

    /// A Lite0 with random batch-norm statistics and affine parameters (the placeholder
    /// network has identity batch-norms, which would not test the folding).
    fn randomised() -> EfficientNetLite0 {
        tch::manual_seed(3);
        let net = EfficientNetLite0::new(Device::Cpu, 0).unwrap();
        tch::no_grad(|| {
            for (name, mut v) in net.var_store().variables() {
                let r = Tensor::rand_like(&v);
                let fresh = if name.ends_with("running_var") {
                    r * 0.5 + 0.5
                } else if name.ends_with(".weight") && v.dim() == 1 {
                    r * 0.4 + 0.8
                } else if v.dim() == 4 {
                    let fan_in: i64 = v.size()[1..].iter().product();
                    (r - 0.5) * (6.0 / fan_in as f64).sqrt()
                } else {
                    (r - 0.5) * 0.2
                };
                v.copy_(&fresh);
            }
        });
        net
    }

    #[test]
    fn folded_network_computes_the_same_features_and_logits() {
        let net = randomised();
        let x = Tensor::randn([2, 3, 64, 80], (Kind::Float, Device::Cpu));
        let (want, want_logits) = tch::no_grad(|| {
            let f = net.features(&x);
            let l = net.classify(&f);
            (f, l)
        });
        let scale = want.abs().max().double_value(&[]);
        assert!(
            scale > 1e-3,
            "features are all zero: the test network is degenerate"
        );
        for (kind, tol) in [(Kind::Float, 1e-4), (Kind::BFloat16, 0.06)] {
            let folded = FoldedLite0::new(net.var_store(), kind).unwrap();
            let (got, logits) = tch::no_grad(|| {
                let f = folded.features(&x);
                let l = folded.classify(&f);
                (f, l)
            });
            assert_eq!(got.size(), [2, FEATURES]);
            assert_eq!(got.kind(), Kind::Float);
            let err = (&got - &want).abs().max().double_value(&[]) / scale;
            assert!(
                err < tol,
                "{kind:?}: features differ by {err} of their scale"
            );
            let lscale = want_logits.abs().max().double_value(&[]);
            let lerr = (&logits - &want_logits).abs().max().double_value(&[]) / lscale;
            assert!(
                lerr < tol * 2.0,
                "{kind:?}: logits differ by {lerr} of their scale"
            );
        }
    }

    #[test]
    fn other_kinds_are_refused() {
        let net = EfficientNetLite0::new(Device::Cpu, 0).unwrap();
        let err = FoldedLite0::new(net.var_store(), Kind::Half).unwrap_err();
        assert!(format!("{err}").contains("fp32 or bf16"), "{err}");
    }

    #[test]
    fn missing_variable_is_named() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = FoldedLite0::new(&vs, Kind::Float).unwrap_err();
        assert!(
            format!("{err:#}").contains("`_conv_stem.weight`"),
            "{err:#}"
        );
    }
}

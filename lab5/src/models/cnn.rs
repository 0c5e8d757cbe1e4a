//! The CNN trained from scratch: a `features` chain from the image to the embedding and a
//! `classifier` chain from the embedding to the logits (torchvision's VGG layout), each
//! one `nn::seq_t()`:
//!
//! ```text
//! for each entry c of cnn.channels:   conv3x3(c) -> BatchNorm2d -> ReLU -> MaxPool2d(2)
//! AdaptiveAvgPool(1) -> Dropout -> Linear(embedding_dim) -> ReLU      (the embedding)
//! Dropout -> Linear(2)                                                (cat, dog)
//! ```
//!
//! The speed machinery (channels-last memory, in-place ReLU, bf16 training) is in
//! [`super::speed`]; `cnn.precision` switches it.

use super::residual::{batch_norm, BasicBlock};
use super::seq::Seq;
use super::speed::{self, channels_last};
use super::summary::Summary;
use super::{CamForward, Net};
use crate::config;
use anyhow::{bail, Context, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Model kind stored in run records.
pub(crate) const KIND: &str = "cnn";
/// Fewest parameters the lab accepts for this model.
pub(crate) const MIN_PARAMS: i64 = 300_000;
/// Most parameters the lab accepts for this model.
pub(crate) const MAX_PARAMS: i64 = 100_000_000;
/// Colour channels of the input.
const IN_CHANNELS: i64 = 3;
/// Output classes (cat, dog).
const CLASSES: i64 = 2;

/// One conv block, `[N, c_in, S, S] -> [N, c_out, S/2, S/2]`: PyTorch's
/// `Conv2d(c_in, c_out, 3, padding=1, bias=False), BatchNorm2d(c_out), ReLU(), MaxPool2d(2)`
/// (with `cnn.batch_norm = false`: a conv with bias and no batch-norm). With `stride` 2
/// the convolution halves the side itself and there is no max-pool (`cnn.stem_stride`).
fn conv_block(
    seq: Seq,
    p: nn::Path,
    (c_in, c_out, stride): (i64, i64, i64),
    cfg: &config::Cnn,
    kind: Kind,
) -> Seq {
    let bn = cfg.batch_norm;
    let seq = seq.add(
        p.path("conv"),
        "Conv2d",
        speed::conv3x3_strided(&p / "conv", (c_in, c_out), stride, !bn, kind),
    );
    let seq = match bn {
        true => seq.add(
            p.path("bn"),
            "BatchNorm2d",
            batch_norm(&p / "bn", c_out, false),
        ),
        false => seq,
    };
    let seq = seq.add(p.path("relu"), "ReLU", speed::relu());
    if stride > 1 {
        return seq;
    }
    seq.add(
        p.path("pool"),
        "MaxPool2d",
        nn::func(|xs| xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)),
    )
}

/// The image `[N, 3, S, S]` (normalised) to the embedding `[N, embedding_dim]`.
/// Shapes for the default config (S = 112, channels 32, 64, 128, 256, 256) in the comments.
fn features(root: &nn::Path, cfg: &config::Cnn, kind: Kind) -> Seq {
    let ins = std::iter::once(IN_CHANNELS).chain(cfg.channels.iter().copied());
    let pairs = ins.zip(cfg.channels.iter().copied());
    // block1 [N, 32, 56, 56] -> block2 [N, 64, 28, 28] -> block3 [N, 128, 14, 14]
    // -> block4 [N, 256, 7, 7] -> block5 [N, 256, 3, 3]
    let seq = pairs
        .enumerate()
        .fold(Seq::new(), |seq, (i, (c_in, c_out))| {
            let (k, p) = (i + 1, root / format!("block{}", i + 1));
            let stride = if k == 1 { cfg.stem_stride } else { 1 };
            let seq = conv_block(seq, p, (c_in, c_out, stride), cfg, kind);
            match cfg.residual_after.contains(&k) {
                true => {
                    let block = root / format!("block{k}");
                    let res = BasicBlock::new(&block / "res", c_out, cfg.batch_norm, kind);
                    seq.add(block.path("res"), "BasicBlock", res)
                }
                false => seq,
            }
        });
    let last = cfg.channels.last().copied().unwrap_or(IN_CHANNELS);
    let p = cfg.dropout;
    seq.add(
        root.path("gap"),
        "GlobalAvgPool",
        nn::func(|xs| xs.mean_dim([2i64, 3].as_slice(), false, Kind::Float)),
    ) // [N, 256]
    .add(
        root.path("dropout1"),
        "Dropout",
        nn::func_t(move |xs, train| xs.dropout(p, train)),
    ) // [N, 256]
    .add(
        root.path("embed"),
        "Linear",
        nn::linear(root / "embed", last, cfg.embedding_dim, Default::default()),
    ) // [N, 128]
    .add(root.path("embed_relu"), "ReLU", speed::relu()) // [N, 128]: the embedding
}

/// The embedding `[N, embedding_dim]` to the logits `[N, 2]` (cat, dog).
fn classifier(root: &nn::Path, cfg: &config::Cnn) -> Seq {
    let p = cfg.dropout;
    Seq::new()
        .add(
            root.path("dropout2"),
            "Dropout",
            nn::func_t(move |xs, train| xs.dropout(p, train)),
        ) // [N, 128]
        .add(
            root.path("classifier"),
            "Linear",
            nn::linear(
                root / "classifier",
                cfg.embedding_dim,
                CLASSES,
                Default::default(),
            ),
        ) // [N, 2]
}

/// The CNN: its var store, the features up to the embedding and the classifier.
pub struct Cnn {
    vs: nn::VarStore,
    features: nn::SequentialT,
    classifier: nn::SequentialT,
    specs: Vec<super::LayerSpec>,
    image_size: i64,
    train_kind: Kind,
    tta_hflip: bool,
    /// Number of conv blocks (`cnn.channels.len()`).
    blocks: usize,
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
        let (t, h) = (
            features(&vs.root(), cfg, train_kind),
            classifier(&vs.root(), cfg),
        );
        let specs = t.specs.into_iter().chain(h.specs).collect();
        let net = Cnn {
            vs,
            features: t.seq,
            classifier: h.seq,
            specs,
            image_size,
            train_kind,
            tta_hflip: cfg.tta_hflip,
            blocks: cfg.channels.len(),
        };
        let what = "cnn.channels or cnn.embedding_dim in config.json";
        net.summary()?.check_params(MIN_PARAMS, MAX_PARAMS, what)?;
        Ok(net)
    }

    /// The output of every `features` layer (evaluation mode, no gradients) for normalised
    /// images `xs`, named like the summary's rows (`block1.conv`, ...): the feature maps
    /// shown in the theory notebook.
    pub(crate) fn activations(&self, xs: &Tensor) -> Vec<(String, Tensor)> {
        let _guard = tch::no_grad_guard();
        let outs = self.features.forward_all_t(&channels_last(xs), false, None);
        self.specs
            .iter()
            .map(|s| s.name.clone())
            .zip(outs)
            .collect()
    }

    /// Index (into the layer table and `features`' outputs) of the last conv block's
    /// ReLU, Grad-CAM's layer: `block5.relu` with the default five blocks.
    fn last_block_relu(&self) -> Result<usize> {
        let last = format!("block{}.relu", self.blocks);
        match self.specs.iter().position(|s| s.name == last) {
            Some(i) => Ok(i),
            None => bail!("the CNN has no layer {last} for Grad-CAM"),
        }
    }
}

impl Net for Cnn {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// In evaluation with `cnn.tta_hflip`, the log of the mean class probabilities of
    /// `xs` and its mirror image (horizontal-flip test-time augmentation).
    fn logits(&self, xs: &Tensor, train: bool) -> Tensor {
        let forward = |x: &Tensor| self.classifier.forward_t(&self.embed(x, train), train);
        if train || !self.tta_hflip {
            return forward(xs);
        }
        let both = [forward(xs), forward(&xs.flip([3]))].map(|l| l.log_softmax(-1, Kind::Float));
        Tensor::stack(&both, 0).logsumexp([0i64].as_slice(), false) - std::f64::consts::LN_2
    }

    fn embed(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features.forward_t(&channels_last(xs), train)
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

    /// The last conv block's ReLU output `A` (`(N, 256, 7, 7)` for 112-pixel inputs with
    /// the default channels: before that block's max-pool, the finest map of the widest
    /// layer) and the logits from it. No test-time flip: the map explains the photo as
    /// given. The input is made to require gradients so that `A` is in the graph even
    /// when the weights are frozen.
    fn cam_forward(&self, images: &Tensor) -> Result<CamForward> {
        let at = self.last_block_relu()?;
        let x = channels_last(images).detach().set_requires_grad(true);
        let outs = self.features.forward_all_t(&x, false, None);
        let embedding = outs.last().context("the CNN has no layers")?;
        let logits = self.classifier.forward_t(embedding, false);
        Ok(CamForward {
            layer: self.specs[at].name.clone(),
            activations: outs[at].shallow_clone(),
            logits,
        })
    }

    fn summary(&self) -> Result<Summary> {
        let _guard = tch::no_grad_guard();
        let s = self.image_size;
        let opts = (Kind::Float, self.vs.device());
        let x = Tensor::zeros([1, IN_CHANNELS, s, s], opts);
        let mut outs = self.features.forward_all_t(&x, false, None);
        let last = outs
            .last()
            .map(|t| t.shallow_clone())
            .unwrap_or(x.shallow_clone());
        outs.extend(self.classifier.forward_all_t(&last, false, None));
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
    fn the_smallest_side_the_config_accepts_trains() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json"));
        let shipped = crate::Config::from_json(&text.unwrap()).unwrap();
        for (stem_stride, residual_after) in
            [(1, vec![]), (2, vec![]), (1, vec![5]), (2, vec![2, 5])]
        {
            tch::manual_seed(3);
            let mut cfg = shipped.clone();
            (cfg.cnn.stem_stride, cfg.cnn.residual_after) = (stem_stride, residual_after);
            let side = cfg.min_input_side();
            cfg.augment.train_size = side - 1;
            assert!(cfg.validate().is_err(), "{side} - 1 px accepted");
            let net = Cnn::new(&cfg.cnn, side, Device::Cpu).unwrap();
            // a batch of one photo: batch-norm in training mode needs two values per channel
            let x = Tensor::rand([1, 3, side, side], (Kind::Float, Device::Cpu));
            let logits = net.logits(&x, true);
            assert_eq!(logits.size(), vec![1, 2]);
            assert!(
                bool::try_from(logits.isfinite().all()).unwrap(),
                "{side} px"
            );
        }
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
        let out = speed::relu_t(&(&y * 1.0), true);
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
        let outs = bf16.features.forward_all_t(&channels_last(&x), true, None);
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
    fn strided_stem_and_residual_blocks_keep_the_sides_and_start_as_identity() {
        tch::manual_seed(3);
        let mut c = cfg(vec![16, 32, 64, 128, 256]);
        (c.stem_stride, c.residual_after) = (2, vec![2, 4]);
        let net = Cnn::new(&c, 64, Device::Cpu).unwrap();
        let s = net.summary().unwrap();
        let row = |name: &str| s.rows.iter().find(|r| r.name == name).unwrap();
        assert_eq!(row("block1.conv").output_shape, vec![-1, 16, 32, 32]);
        assert!(s.rows.iter().all(|r| r.name != "block1.pool"), "{s}");
        assert_eq!(row("block2.pool").output_shape, vec![-1, 32, 16, 16]);
        let res = row("block2.res");
        assert_eq!(res.output_shape, vec![-1, 32, 16, 16]);
        // two 3x3 convs without bias and two batch-norms (weight, bias)
        assert_eq!(res.params, 2 * (32 * 32 * 9) + 2 * (2 * 32));
        assert_eq!(row("block5.pool").output_shape, vec![-1, 256, 2, 2]);
        assert!(s.rows.iter().all(|r| r.name != "block3.res"));
        // The residual branch's last batch-norm starts at zero: the block is the identity
        // on its (non-negative) input until training moves it.
        let x = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let acts = net.activations(&x);
        let get = |name: &str| &acts.iter().find(|(n, _)| n == name).unwrap().1;
        let diff = (get("block2.res") - get("block2.pool")).abs().max();
        assert_eq!(f64::try_from(diff).unwrap(), 0.0);
        // and it trains: the gradient reaches the branch's zero-initialised scale
        net.logits(&x, true).sum(Kind::Float).backward();
        let g = net.var_store().variables()["block2.res.bn2.weight"].grad();
        assert!(f64::try_from(g.abs().sum(Kind::Float)).unwrap() > 0.0);
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

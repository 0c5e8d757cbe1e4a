//! The pretrained backbones the transfer model can stand on, chosen by
//! `transfer.backbone`:
//! - `efficientnet_lite0` ([`EfficientNetLite0`], 1280-d features): its ImageNet weights
//!   are converted by the setup, so it works offline;
//! - `resnet18` (`tch::vision::resnet`, 512-d features): torchvision's ResNet-18 ImageNet
//!   weights converted to safetensors (names as in torchvision's state dict: `conv1.weight`,
//!   `layer1.0.bn1.running_mean`, ...; the `fc.*` classifier is not needed). They cannot
//!   be downloaded on the lab machines; users with internet can convert them and set
//!   `transfer.weights`.
//!
//! Both are loaded frozen (non-trainable variables, batch-norm in eval mode).

use super::efficientnet::{self, EfficientNetLite0};
use super::summary::{LayerRow, LayerSpec, Summary};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// Width of ResNet-18's pooled features.
pub(crate) const RESNET18_FEATURES: i64 = 512;
/// Default file name of converted ResNet-18 weights inside `weights_dir`.
pub(crate) const RESNET18_WEIGHTS_FILE: &str = "resnet18.safetensors";

/// Which backbone, as named in `transfer.backbone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EfficientNet-Lite0.
    EfficientNetLite0,
    /// torchvision's ResNet-18.
    ResNet18,
}

impl Kind {
    /// The kind named by the config.
    pub(crate) fn of(cfg: &Config) -> Result<Kind> {
        match cfg.transfer.backbone.as_str() {
            "efficientnet_lite0" => Ok(Kind::EfficientNetLite0),
            "resnet18" => Ok(Kind::ResNet18),
            other => bail!("transfer.backbone {other:?} is not efficientnet_lite0 or resnet18"),
        }
    }

    /// `efficientnet_lite0` or `resnet18`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::EfficientNetLite0 => "efficientnet_lite0",
            Kind::ResNet18 => "resnet18",
        }
    }

    /// Width of the pooled features.
    pub(crate) fn feature_dim(self) -> i64 {
        match self {
            Kind::EfficientNetLite0 => efficientnet::FEATURES,
            Kind::ResNet18 => RESNET18_FEATURES,
        }
    }

    /// The weights file: `transfer.weights` when set and this is the configured backbone,
    /// else the default under `weights_dir` (so the label check finds EfficientNet-Lite0
    /// even when the transfer model uses ResNet-18).
    pub(crate) fn weights_path(self, cfg: &Config) -> PathBuf {
        let configured = Kind::of(cfg).ok() == Some(self);
        match (&cfg.transfer.weights, self) {
            (Some(p), _) if configured => cfg.resolve(p),
            (_, Kind::EfficientNetLite0) => cfg.weights_dir().join(efficientnet::WEIGHTS_FILE),
            (_, Kind::ResNet18) => cfg.weights_dir().join(RESNET18_WEIGHTS_FILE),
        }
    }
}

/// torchvision's ResNet-18 without its classifier, frozen.
pub struct ResNet18 {
    vs: nn::VarStore,
    net: nn::FuncT<'static>,
}

impl ResNet18 {
    /// Loads converted torchvision weights (safetensors) and freezes them.
    pub(crate) fn load(path: &Path, device: Device) -> Result<Self> {
        if !path.is_file() {
            bail!("ResNet-18 weights not found at {}: no ImageNet weights can be downloaded here; convert torchvision's resnet18 state dict to safetensors (python: safetensors.torch.save_file(torchvision.models.resnet18(weights=\"IMAGENET1K_V1\").state_dict(), PATH)) and set transfer.weights, or use transfer.backbone = \"efficientnet_lite0\"", path.display());
        }
        let mut vs = nn::VarStore::new(device);
        let net = tch::vision::resnet::resnet18_no_final_layer(&vs.root());
        vs.load(path).with_context(|| {
            format!(
                "{} is not a torchvision ResNet-18 state dict in safetensors",
                path.display()
            )
        })?;
        vs.freeze();
        Ok(ResNet18 { vs, net })
    }

    /// The summary row of the whole (opaque) network.
    fn table_row(&self) -> LayerRow {
        let params = self
            .vs
            .variables()
            .iter()
            .filter(|(n, _)| !n.contains("running_"))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        LayerRow {
            name: "resnet18".into(),
            kind: "ResNet18 (frozen)".into(),
            output_shape: vec![-1, RESNET18_FEATURES],
            params,
            trainable: false,
        }
    }
}

/// A loaded pretrained backbone.
pub enum Backbone {
    /// EfficientNet-Lite0.
    EfficientNet(EfficientNetLite0),
    /// ResNet-18.
    ResNet18(ResNet18),
}

impl Backbone {
    /// Loads the backbone of `cfg` (frozen, except the last `transfer.unfreeze_blocks`
    /// blocks of EfficientNet-Lite0).
    pub fn load(cfg: &Config, device: Device) -> Result<Self> {
        let kind = Kind::of(cfg)?;
        Self::load_kind(kind, cfg, device, cfg.transfer.unfreeze_blocks)
    }

    /// Loads a backbone of `kind` with its weights from `cfg`.
    pub(crate) fn load_kind(
        kind: Kind,
        cfg: &Config,
        device: Device,
        trainable_blocks: usize,
    ) -> Result<Self> {
        let path = kind.weights_path(cfg);
        match kind {
            Kind::EfficientNetLite0 => Ok(Backbone::EfficientNet(EfficientNetLite0::load_with(&path, device, trainable_blocks)?)),
            Kind::ResNet18 if trainable_blocks > 0 => bail!("transfer.unfreeze_blocks is only supported with efficientnet_lite0; set it to 0 for resnet18"),
            Kind::ResNet18 => Ok(Backbone::ResNet18(ResNet18::load(&path, device)?)),
        }
    }

    /// `efficientnet_lite0` or `resnet18`.
    pub(crate) fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Which backbone this is.
    pub fn kind(&self) -> Kind {
        match self {
            Backbone::EfficientNet(_) => Kind::EfficientNetLite0,
            Backbone::ResNet18(_) => Kind::ResNet18,
        }
    }

    /// Width of the pooled features.
    pub fn feature_dim(&self) -> i64 {
        match self {
            Backbone::EfficientNet(_) => efficientnet::FEATURES,
            Backbone::ResNet18(_) => RESNET18_FEATURES,
        }
    }

    /// Pooled features `(N, D)` of normalised images.
    pub fn features(&self, images: &Tensor) -> Tensor {
        match self {
            Backbone::EfficientNet(e) => e.features(images),
            Backbone::ResNet18(r) => r.net.forward_t(images, false),
        }
    }

    /// The last feature map before pooling, `(N, C, h, w)`, for Grad-CAM: EfficientNet-Lite0's
    /// head convolution output (after batch-norm and ReLU6, `(N, 1280, 7, 7)` at 224 px).
    ///
    /// # Errors
    /// ResNet-18 (tch's network is one opaque function: its last map cannot be reached).
    pub(crate) fn feature_map(&self, images: &Tensor) -> Result<Tensor> {
        match self {
            Backbone::EfficientNet(e) => Ok(e.feature_map(images)),
            Backbone::ResNet18(_) => bail!("Grad-CAM needs the backbone's last feature map, which lab5 reaches only for transfer.backbone = \"efficientnet_lite0\", not resnet18"),
        }
    }

    /// Zero-shot cat/dog/neither probabilities `(N, 3)` from features, when the backbone
    /// has its ImageNet classifier (EfficientNet-Lite0).
    pub(crate) fn zero_shot(&self, features: &Tensor) -> Option<Tensor> {
        match self {
            Backbone::EfficientNet(e) => Some(efficientnet::cat_dog_neither(&e.classify(features))),
            Backbone::ResNet18(_) => None,
        }
    }

    /// The variables.
    pub fn var_store(&self) -> &nn::VarStore {
        match self {
            Backbone::EfficientNet(e) => e.var_store(),
            Backbone::ResNet18(r) => &r.vs,
        }
    }

    /// The variables, mutably.
    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        match self {
            Backbone::EfficientNet(e) => e.var_store_mut(),
            Backbone::ResNet18(r) => &mut r.vs,
        }
    }

    /// The backbone's rows of a layer table for `images`, and its pooled output.
    pub(crate) fn table(&self, model: &str, images: &Tensor) -> Result<(Summary, Tensor)> {
        match self {
            Backbone::EfficientNet(e) => {
                let (specs, outs): (Vec<LayerSpec>, Vec<Tensor>) = e.layer_outputs(images);
                let table = Summary::build(model, images, &specs, &outs, e.var_store())?;
                let pooled = outs
                    .last()
                    .map(|t| t.shallow_clone())
                    .context("EfficientNet-Lite0 has no layers")?;
                Ok((table, pooled))
            }
            Backbone::ResNet18(r) => {
                let input_shape = std::iter::once(-1)
                    .chain(images.size().into_iter().skip(1))
                    .collect();
                let table = Summary {
                    model: model.into(),
                    input_shape,
                    rows: vec![r.table_row()],
                };
                Ok((table, r.net.forward_t(images, false)))
            }
        }
    }
}

//! The transfer model: a pretrained backbone, frozen, and a head of our own linear layers:
//! `dropout -> linear(hidden) -> ReLU -> dropout -> linear(embedding) -> ReLU` (the
//! embedding, what [`Net::embed`] returns) `-> dropout -> linear(2)` (cat, dog).
//!
//! Frozen means: the backbone's variables are created non-trainable (no gradients, left
//! out of the optimiser, counted as non-trainable in the layer table) and its batch-norm
//! always uses the ImageNet running statistics. Because nothing in the backbone changes,
//! the head normally trains on the features computed once per image by the
//! [backbone pass](crate::labels::features) ([`Input::Features`]). With
//! `transfer.unfreeze_blocks > 0` (fine-tuning the last blocks) or `transfer.augment`, it
//! trains on augmented images through the backbone instead ([`Input::Images`]). The head
//! lives in a var store of its own, so optimiser, early-stopping snapshots and
//! checkpoints hold the head's weights only, except when fine-tuning: then it shares the
//! backbone's var store so that one optimiser sees the unfrozen blocks too.

use super::backbone::Backbone;
use super::summary::{LayerSpec, Summary};
use super::{CamForward, Net};
use crate::config::Config;
use anyhow::Result;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Model kind stored in run records.
pub(crate) const KIND: &str = "transfer";
/// Output classes (cat, dog).
const CLASSES: i64 = 2;
/// Var-store prefix of the head.
const HEAD: &str = "head";

/// What [`Net::logits`] receives during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Pooled backbone features `(N, D)`, computed once.
    Features,
    /// Normalised images `(N, 3, S, S)`, run through the backbone at every step.
    Images,
}

/// Our head on top of the backbone's features.
#[derive(Debug)]
struct Head {
    hidden: nn::Linear,
    embedding: nn::Linear,
    out: nn::Linear,
    dropout: f64,
}

impl Head {
    fn new(p: &nn::Path, features: i64, t: &crate::config::Transfer) -> Self {
        let c = Default::default();
        Head {
            hidden: nn::linear(p / "hidden", features, t.hidden, c),
            embedding: nn::linear(p / "embedding", t.hidden, t.embedding_dim, c),
            out: nn::linear(p / "out", t.embedding_dim, CLASSES, c),
            dropout: t.dropout,
        }
    }

    fn embed(&self, f: &Tensor, train: bool) -> Tensor {
        let h = self.hidden.forward(&f.dropout(self.dropout, train)).relu();
        self.embedding
            .forward(&h.dropout(self.dropout, train))
            .relu()
    }

    fn logits(&self, f: &Tensor, train: bool) -> Tensor {
        self.out
            .forward(&self.embed(f, train).dropout(self.dropout, train))
    }

    /// Layer names and outputs for the table (evaluation mode).
    fn layer_outputs(&self, f: &Tensor) -> (Vec<LayerSpec>, Vec<Tensor>) {
        let h = self.hidden.forward(f).relu();
        let e = self.embedding.forward(&h).relu();
        let o = self.out.forward(&e);
        let names = ["hidden", "embedding", "out"].map(|n| format!("{HEAD}.{n}"));
        let specs = names
            .into_iter()
            .map(|n| LayerSpec::new(n, "Linear"))
            .collect();
        (specs, vec![h, e, o])
    }
}

/// Pretrained backbone plus our head.
pub struct Transfer {
    backbone: Backbone,
    head_vs: Option<nn::VarStore>,
    head: Head,
    input: Input,
    image_size: i64,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transfer({}, {:?})", self.backbone.name(), self.input)
    }
}

impl Transfer {
    /// Loads the backbone named by `transfer.backbone` with its pretrained weights and
    /// builds a fresh head (initialised from libtorch's current seed).
    pub fn new(cfg: &Config, device: Device) -> Result<Self> {
        let t = &cfg.transfer;
        let backbone = Backbone::load(cfg, device)?;
        let input = if t.unfreeze_blocks > 0 || t.augment {
            Input::Images
        } else {
            Input::Features
        };
        let head_vs = (t.unfreeze_blocks == 0).then(|| nn::VarStore::new(device));
        let head = {
            let vs = head_vs.as_ref().unwrap_or_else(|| backbone.var_store());
            Head::new(&(vs.root() / HEAD), backbone.feature_dim(), t)
        };
        Ok(Transfer {
            backbone,
            head_vs,
            head,
            input,
            image_size: t.image_size,
        })
    }

    /// What the model trains on.
    pub fn input(&self) -> Input {
        self.input
    }

    /// Backbone features of normalised images (gradients only into unfrozen blocks).
    fn features(&self, images: &Tensor) -> Tensor {
        self.backbone.features(images)
    }

    fn head_input(&self, xs: &Tensor) -> Tensor {
        match self.input {
            Input::Features => xs.shallow_clone(),
            Input::Images => self.features(xs),
        }
    }
}

impl Net for Transfer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn logits(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head.logits(&self.head_input(xs), train)
    }

    fn embed(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head.embed(&self.head_input(xs), train)
    }

    fn var_store(&self) -> &nn::VarStore {
        self.head_vs
            .as_ref()
            .unwrap_or_else(|| self.backbone.var_store())
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        match self.head_vs.as_mut() {
            Some(vs) => vs,
            None => self.backbone.var_store_mut(),
        }
    }

    fn summary(&self) -> Result<Summary> {
        let _guard = tch::no_grad_guard();
        let device = self.backbone.var_store().device();
        let x = Tensor::zeros(
            [1, 3, self.image_size, self.image_size],
            (Kind::Float, device),
        );
        let name = format!("Transfer ({} + head)", self.backbone.name());
        let (mut table, pooled) = self.backbone.table(&name, &x)?;
        let (specs, outs) = self.head.layer_outputs(&pooled);
        let head = Summary::build(&name, &pooled, &specs, &outs, self.var_store())?;
        table.rows.extend(head.rows);
        Ok(table)
    }

    fn image_logits(&self, images: &Tensor) -> Tensor {
        self.head.logits(&self.features(images), false)
    }

    fn image_embed(&self, images: &Tensor) -> Tensor {
        self.head.embed(&self.features(images), false)
    }

    /// The backbone's last feature map `A` (EfficientNet-Lite0: the head convolution's
    /// output after batch-norm and ReLU6, `(N, 1280, 7, 7)` at 224 px), computed without
    /// gradients and made a leaf that requires them, then pooled and fed to our head in
    /// evaluation mode: the gradient of a score over `A` costs one backward pass through
    /// the head only.
    fn cam_forward(&self, images: &Tensor) -> Result<CamForward> {
        let map = {
            let _guard = tch::no_grad_guard();
            self.backbone.feature_map(images)?
        };
        let activations = map.detach().set_requires_grad(true);
        let pooled = activations.mean_dim(&[2i64, 3][..], false, Kind::Float);
        Ok(CamForward {
            layer: "_bn1".into(),
            logits: self.head.logits(&pooled, false),
            activations,
        })
    }
}

//! Models: the CNN trained from scratch (and, alongside, the transfer model), both behind
//! the [`Net`] trait the trainer, evaluation and embeddings use; [`ModelSpec`] is what a
//! run records so that [`build`] can rebuild the network later to load its weights.

pub mod backbone;
pub(crate) mod cnn;
pub mod efficientnet;
pub mod folded;
pub(crate) mod residual;
pub(crate) mod seq;
pub(crate) mod speed;
pub(crate) mod summary;
pub mod transfer;

pub use cnn::Cnn;
pub(crate) use summary::{LayerSpec, Summary};

use crate::config::Config;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

/// A trainable classifier with an embedding layer.
///
/// `xs` is whatever the model trains on: normalised images for the CNN, cached backbone
/// features for a transfer head. [`Net::image_logits`] / [`Net::image_embed`] always take
/// normalised images (`(N, 3, S, S)` float), for prediction and embeddings.
pub trait Net {
    /// Model kind as stored in run records (`cnn`, `transfer`).
    fn kind(&self) -> &'static str;
    /// Class scores `(N, 2)` (cat, dog) before the softmax.
    fn logits(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Penultimate-layer activations `(N, embedding_dim)`.
    fn embed(&self, xs: &Tensor, train: bool) -> Tensor;
    /// The variables (trainable ones are what the optimiser updates).
    fn var_store(&self) -> &nn::VarStore;
    /// The variables, mutably (to load weights).
    fn var_store_mut(&mut self) -> &mut nn::VarStore;
    /// The layer table.
    fn summary(&self) -> Result<Summary>;
    /// Arithmetic of training: `fp32`, or `bf16` for mixed precision.
    fn precision(&self) -> &'static str {
        "fp32"
    }
    /// Logits for normalised images (default: the training input is the image).
    fn image_logits(&self, images: &Tensor) -> Tensor {
        self.logits(images, false)
    }
    /// Embeddings for normalised images (default: the training input is the image).
    fn image_embed(&self, images: &Tensor) -> Tensor {
        self.embed(images, false)
    }
    /// The forward pass Grad-CAM needs ([`CamForward`]) for normalised images
    /// `(N, 3, S, S)`, in evaluation mode. Call it with gradients enabled (not under
    /// `tch::no_grad`).
    ///
    /// # Errors
    /// The model has no feature map lab5 can reach (the default; a ResNet-18 backbone).
    fn cam_forward(&self, _images: &Tensor) -> Result<CamForward> {
        bail!(
            "Grad-CAM is not available for the {} model: lab5 cannot reach its last feature map",
            self.kind()
        )
    }
}

/// Grad-CAM's view of a model: the activations `A` of its last convolutional layer
/// `(N, C, h, w)` and the logits `(N, 2)` computed from them, in one autograd graph, so
/// that the gradient of a score over `A` can be taken (Selvaraju et al., 2017).
#[derive(Debug)]
pub struct CamForward {
    /// The layer `A` comes from, as named in the layer table (`block5.relu`, `_bn1`).
    pub layer: String,
    /// The feature maps `A`, `(N, C, h, w)` float, part of the graph of `logits`.
    pub activations: Tensor,
    /// Class scores `(N, 2)` (cat, dog) before the softmax.
    pub logits: Tensor,
}

/// Per-channel normalisation of images, as recorded in a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormSpec {
    /// Channel means (RGB, on the 0..1 scale).
    pub mean: [f64; 3],
    /// Channel standard deviations.
    pub std: [f64; 3],
}

/// Everything needed to rebuild a trained network and feed it images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    /// `cnn` or `transfer`.
    pub kind: String,
    /// Square input side in pixels.
    pub image_size: i64,
    /// Shorter side after resizing, before the centre crop.
    pub resize_shorter: i64,
    /// Normalisation applied to images.
    pub normalize: NormSpec,
    /// The configuration the run was trained with.
    pub config: Config,
}

/// Rebuilds the network described by `spec` on `device` (fresh weights: load the run's
/// checkpoint into its var store afterwards).
pub(crate) fn build(spec: &ModelSpec, device: Device) -> Result<Box<dyn Net>> {
    match spec.kind.as_str() {
        cnn::KIND => Ok(Box::new(Cnn::new(
            &spec.config.cnn,
            spec.image_size,
            device,
        )?)),
        transfer::KIND => Ok(Box::new(transfer::Transfer::new(&spec.config, device)?)),
        other => {
            bail!("unknown model kind {other:?} in the run record (expected `cnn` or `transfer`)")
        }
    }
}

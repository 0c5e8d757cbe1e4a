//! Where a model looks: Grad-CAM heat maps (Selvaraju et al., "Grad-CAM: Visual
//! Explanations from Deep Networks via Gradient-based Localization", ICCV 2017) for both
//! models of the lab, laid over the photo.
//!
//! - [`gradcam`]: the method on tensors, for any [`crate::models::Net`] that exposes its
//!   last feature map ([`crate::models::Net::cam_forward`]): the CNN's last conv block
//!   (`block5.relu`), EfficientNet-Lite0's head convolution for the transfer model;
//! - [`photo`]: a run and photo files in, the maps at the photo's resolution and their
//!   overlays out ([`photo::Explainer`]); [`photo::write_overlays`] is `lab5 explain`.
//!
//! The score explained is the two-class **log-odds** `logit_dog - logit_cat` for "dog" and
//! its negative for "cat": the quantity the softmax turns into `p(dog)`, so the maps of
//! the two classes are the positive and negative parts of one signed map (what speaks for
//! dog is what speaks against cat).

pub mod gradcam;
pub mod photo;

pub use gradcam::{grad_cam, Cam};
pub use photo::{write_overlays, Explained, Explainer};

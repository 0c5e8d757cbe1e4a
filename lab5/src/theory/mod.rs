//! The course's theory questions answered with small computations (notebook `00_theory`).
//!
//! Each sub-module answers one question and returns values that show themselves in a
//! notebook: [`Figure`](crate::plot::Figure)s, [`Table`](crate::plot::Table)s or a [`Note`].
//! Everything runs on the CPU in well under a second per cell, on real photos from the
//! folder named by `data.folder` in `config.json`.
//!
//! - [`signal`]: 1-D convolution of an impulse (the impulse response), and why deep-learning
//!   "convolution" is really cross-correlation;
//! - [`filters`]: a conv layer with hand-set kernels (edges, blur, sharpen) on a photo, and one
//!   kernel over one vs many input channels;
//! - [`shapes`]: the output-size formula checked against libtorch, the CNN's layer shapes up
//!   to the embedding;
//! - [`pooling`]: max and average pooling, with their (zero) parameters;
//! - [`batchnorm`]: batch-norm statistics, train vs eval mode;
//! - [`resnet`]: residual blocks and the gradient that reaches the first layer;
//! - [`trained`]: feature maps of the trained CNN, loaded from `runs/`;
//! - [`transfer`]: a pretrained backbone, frozen, and what it already knows about cats and dogs.

pub mod batchnorm;
pub mod filters;
pub mod photo;
pub mod pooling;
pub mod resnet;
pub mod shapes;
pub mod signal;
pub mod trained;
pub mod transfer;

use std::fmt;

/// A short text shown instead of a result that cannot be computed yet (for example "no
/// trained run"), so that a notebook cell never fails for a missing optional input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(pub String);

impl Note {
    /// Shows the note inline in an evcxr notebook as `text/markdown`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/markdown\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A figure, a table, or a [`Note`] saying why there is none; shows whichever it holds.
#[derive(Debug, Clone)]
pub enum Shown {
    /// A chart.
    Figure(crate::plot::Figure),
    /// A table.
    Table(crate::plot::Table),
    /// Why there is no result, and how to get one.
    Note(Note),
}

impl Shown {
    /// Shows the figure or the note inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        match self {
            Shown::Figure(f) => f.evcxr_display(),
            Shown::Table(t) => t.evcxr_display(),
            Shown::Note(n) => n.evcxr_display(),
        }
    }
}

/// The values of a tensor as `f64`s (any shape, flattened).
pub(crate) fn values(t: &tch::Tensor) -> anyhow::Result<Vec<f64>> {
    let flat = t.detach().to_kind(tch::Kind::Double).flatten(0, -1);
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// A tensor's single value as `f64`.
pub(crate) fn scalar(t: &tch::Tensor) -> anyhow::Result<f64> {
    Ok(f64::try_from(t.detach().to_kind(tch::Kind::Double))?)
}

//! The course's theory questions answered with small computations (notebook `00_theory`).
//!
//! Each sub-module answers one question and returns values that show themselves in a
//! notebook: [`Figure`](crate::plot::Figure)s, [`Table`](crate::plot::Table)s or a
//! [`Note`](crate::plot::Note).
//! Everything runs on the CPU, on real photos from the folder named by `data.folder` in
//! `config.json`; most cells take well under a second, the gradient measurements of
//! [`resnet`] seconds, and [`degradation`] trains for minutes once (its result is saved in
//! `runs/theory/` and read back afterwards).
//!
//! - [`signal`]: 1-D convolution of an impulse (the impulse response), and why deep-learning
//!   "convolution" is really cross-correlation;
//! - [`analysis`]: the convolution integral, the Dirac delta as its identity, commutativity,
//!   and the convolution theorem (FFT), checked numerically;
//! - [`backprop`]: back-propagation through one conv layer by hand, checked against autograd;
//! - [`init`]: the initialisation the lab's CNN really uses (tch's default: He), measured;
//! - [`receptive`]: the receptive field of every block of the CNN, computed, measured by the
//!   gradient, and drawn on a photo;
//! - [`filters`]: a conv layer with hand-set kernels (edges, blur, sharpen) on a photo, and one
//!   kernel over one vs many input channels;
//! - [`shapes`]: the output-size formula checked against libtorch, the CNN's layer shapes up
//!   to the embedding;
//! - [`pooling`]: max and average pooling, with their (zero) parameters;
//! - [`batchnorm`]: batch-norm statistics, train vs eval mode;
//! - [`resnet`]: residual blocks and the gradient that reaches the first layer (PyTorch's
//!   default and He initialisation);
//! - [`gradient_flow`]: the gradient through one residual block split into its identity
//!   and branch paths, and through stacks of original, skip-less and pre-activation blocks;
//! - [`degradation`]: shallow vs deep, plain vs residual stacks trained on the same photos
//!   from several seeds (mean ± sd);
//! - [`resnet18`]: the real ResNet-18 layer table (`tch::vision::resnet`);
//! - [`cards`]: the computed parts of the model cards (the CNN's hyper-parameters from
//!   `config.json`, EfficientNet-Lite0's stages);
//! - [`crib`]: the crib page: every question answered in two sentences, with follow-ups;
//! - [`trained`]: feature maps of the trained CNN, loaded from `runs/`;
//! - [`transfer`]: a pretrained backbone, frozen, and what it already knows about cats and dogs.

pub mod analysis;
pub mod backprop;
pub mod batchnorm;
pub mod cards;
pub mod crib;
pub mod degradation;
pub mod filters;
pub mod gradient_flow;
pub mod init;
pub mod photo;
pub mod pooling;
pub mod receptive;
pub mod resnet;
pub mod resnet18;
pub mod shapes;
pub mod signal;
pub mod trained;
pub mod transfer;

/// The values of a tensor as `f64`s (any shape, flattened).
pub(crate) fn values(t: &tch::Tensor) -> anyhow::Result<Vec<f64>> {
    let flat = t.detach().to_kind(tch::Kind::Double).flatten(0, -1);
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// A tensor's single value as `f64`.
pub(crate) fn scalar(t: &tch::Tensor) -> anyhow::Result<f64> {
    Ok(f64::try_from(t.detach().to_kind(tch::Kind::Double))?)
}

/// The text cells of column `name` of a table (tests).
#[cfg(test)]
pub(crate) fn strings(t: &crate::plot::Table, name: &str) -> Vec<String> {
    let ca = t.0.column(name).unwrap().str().unwrap();
    (0..ca.len())
        .filter_map(|r| ca.get(r))
        .map(String::from)
        .collect()
}

/// The boolean cells of column `name` of a table (tests).
#[cfg(test)]
pub(crate) fn bools(t: &crate::plot::Table, name: &str) -> Vec<bool> {
    let ca = t.0.column(name).unwrap().bool().unwrap();
    (0..ca.len()).filter_map(|r| ca.get(r)).collect()
}

//! Shapes: the output size of a convolution, `floor((n + 2p - d(k-1) - 1) / s) + 1`,
//! checked against libtorch's `conv2d` on several settings; and the shapes through our CNN
//! from a photo to its embedding.

use crate::models::{Cnn, Net};
use crate::plot::Table;
use crate::Config;
use anyhow::{bail, Context, Result};
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

/// One convolution setting (square input and kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSetting {
    /// Input side n.
    pub input: i64,
    /// Kernel side k.
    pub kernel: i64,
    /// Zero padding p on each side.
    pub padding: i64,
    /// Stride s.
    pub stride: i64,
    /// Dilation d (spacing of the kernel taps).
    pub dilation: i64,
}

const fn setting(input: i64, kernel: i64, padding: i64, stride: i64, dilation: i64) -> ConvSetting {
    ConvSetting {
        input,
        kernel,
        padding,
        stride,
        dilation,
    }
}

/// Settings shown in the notebook: "same" padding, "valid" (none), strided downsampling,
/// a stride that does not divide evenly, a patchify stem, LeNet-5's first layer (a 5x5
/// kernel on the 32x32 padded digit: 28x28, LeCun et al. 1998 §II.B), a dilated kernel.
pub const SETTINGS: [ConvSetting; 8] = [
    setting(112, 3, 1, 1, 1),
    setting(112, 3, 0, 1, 1),
    setting(112, 5, 2, 2, 1),
    setting(224, 7, 3, 2, 1),
    setting(112, 3, 0, 2, 1),
    setting(64, 4, 0, 4, 1),
    setting(32, 5, 0, 1, 1),
    setting(32, 3, 2, 1, 2),
];

/// The formula: `floor((n + 2p - d(k-1) - 1) / s) + 1`; `None` when the kernel does not fit.
pub(crate) fn output_size(c: ConvSetting) -> Option<i64> {
    let span = c.input + 2 * c.padding - c.dilation * (c.kernel - 1) - 1;
    (span >= 0 && c.stride > 0).then(|| span / c.stride + 1)
}

/// The output side libtorch's `conv2d` actually produces for `c`.
pub(crate) fn measured_size(c: ConvSetting) -> Result<i64> {
    let opts = (Kind::Float, Device::Cpu);
    let x = Tensor::zeros([1, 1, c.input, c.input], opts);
    let w = Tensor::zeros([1, 1, c.kernel, c.kernel], opts);
    let y = x
        .f_conv2d(&w, None::<Tensor>, [c.stride], [c.padding], [c.dilation], 1)
        .with_context(|| format!("conv2d rejected {c:?}"))?;
    Ok(y.size()[2])
}

/// The table: each setting, the formula's answer, libtorch's answer, and whether they agree.
/// Fails if any row disagrees (the formula would be wrong).
pub fn output_size_table(settings: &[ConvSetting]) -> Result<Table> {
    let col = |f: fn(&ConvSetting) -> i64| settings.iter().map(f).collect::<Vec<_>>();
    let formula: Vec<Option<i64>> = settings.iter().map(|c| output_size(*c)).collect();
    let measured = settings
        .iter()
        .map(|c| measured_size(*c))
        .collect::<Result<Vec<_>>>()?;
    let agree: Vec<bool> = formula
        .iter()
        .zip(&measured)
        .map(|(f, m)| *f == Some(*m))
        .collect();
    if let Some(i) = agree.iter().position(|ok| !ok) {
        bail!(
            "formula and conv2d disagree on {:?}: {:?} vs {}",
            settings[i],
            formula[i],
            measured[i]
        );
    }
    let df = df!(
        "input n" => col(|c| c.input), "kernel k" => col(|c| c.kernel),
        "padding p" => col(|c| c.padding), "stride s" => col(|c| c.stride),
        "dilation d" => col(|c| c.dilation), "formula" => formula,
        "tch conv2d" => measured, "agree" => agree,
    )?;
    Ok(Table(df))
}

/// The CNN of `config.json` (fresh weights) at the configured input size.
pub(crate) fn cnn(cfg: &Config) -> Result<Cnn> {
    Cnn::new(&cfg.cnn, cfg.preprocess.image_size, Device::Cpu)
}

/// The CNN's layers with output shapes and parameters, photo to embedding to class scores.
pub fn cnn_layers(cfg: &Config) -> Result<Table> {
    Ok(Table(cnn(cfg)?.summary()?.to_frame()?))
}

/// The shape of the embedding of one photo `(3, S, S)` under a fresh CNN.
pub fn embedding_shape(cfg: &Config, rgb: &Tensor) -> Result<Vec<i64>> {
    let net = cnn(cfg)?;
    Ok(tch::no_grad(|| net.embed(&rgb.unsqueeze(0), false)).size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_matches_conv2d_and_embedding_has_configured_size() {
        assert_eq!(output_size(setting(112, 3, 0, 2, 1)), Some(55));
        assert_eq!(output_size(setting(4, 7, 0, 1, 1)), None);
        assert_eq!(
            output_size_table(&SETTINGS).unwrap().0.height(),
            SETTINGS.len()
        );
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let rgb = super::super::photo::photo(&cfg, crate::data::Class::Cat, 0).unwrap();
        assert_eq!(
            embedding_shape(&cfg, &rgb).unwrap(),
            vec![1, cfg.cnn.embedding_dim]
        );
        assert!(cnn_layers(&cfg).unwrap().0.height() > cfg.cnn.channels.len() * 4);
    }
}

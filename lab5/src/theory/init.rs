//! Which initialisation the lab's CNN really uses, measured on a freshly built network.
//!
//! The CNN's convolutions and linear layers are built with `tch`'s default configs
//! (`ConvConfig::default()`, `LinearConfig::default()`), whose weight init is
//! `tch::nn::init::DEFAULT_KAIMING_UNIFORM`: uniform on `±gain · sqrt(3 / fan_in)` with the
//! ReLU gain `sqrt(2)`, so `Var(w) = 2 / fan_in` — He et al. 2015 ("Delving Deep into
//! Rectifiers", ICCV), uniform variant, `fan_in = c_in · k · k`. That is **not** PyTorch's
//! own default: `nn.Conv2d` and `nn.Linear` call `kaiming_uniform_(w, a = sqrt(5))`, whose
//! bound `1 / sqrt(fan_in)` gives `Var(w) = 1 / (3 fan_in)`, a sixth of He's. Biases are
//! zero in tch's convolutions (ours have none: batch norm follows) and uniform on
//! `±1 / sqrt(fan_in)` in its linear layers, as in PyTorch; the lab sets batch norm's γ to 1
//! and β to 0, as PyTorch does (tch's own default would draw γ from U(0, 1)).
//!
//! The table measures, per weight tensor, `Var(w) · fan_in` and `max|w| · sqrt(fan_in)`:
//! 2 and `sqrt(6)` ≈ 2.45 for He-uniform, 1/3 and 1 for PyTorch's default.

use crate::models::Net;
use crate::plot::Table;
use crate::Config;
use anyhow::Result;
use polars::prelude::*;

/// `Var(w) · fan_in` of He's initialisation (ReLU gain √2).
pub const HE_VARIANCE: f64 = 2.0;
/// `Var(w) · fan_in` of PyTorch's `Conv2d`/`Linear` default, `kaiming_uniform_(a = √5)`.
pub const PYTORCH_VARIANCE: f64 = 1.0 / 3.0;

/// One weight tensor of the fresh CNN.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightInit {
    /// Variable name, e.g. `features.block1.conv.weight`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Inputs of one output unit: `c_in · k · k` for a conv, `in_features` for a linear layer.
    pub fan_in: i64,
    /// Sample variance of the weights times `fan_in`.
    pub variance_x_fan_in: f64,
    /// Largest `|w|` times `sqrt(fan_in)`.
    pub max_x_sqrt_fan_in: f64,
}

impl WeightInit {
    /// The initialisation whose `Var(w) · fan_in` is nearer (in ratio) to the measured one.
    pub fn nearer(&self) -> &'static str {
        let off = |target: f64| (self.variance_x_fan_in / target).ln().abs();
        if off(HE_VARIANCE) < off(PYTORCH_VARIANCE) {
            "He (tch default)"
        } else {
            "PyTorch default"
        }
    }
}

/// The conv and linear weights (tensors of 2 or more dimensions) of a fresh CNN as
/// configured in `cfg` (`cnn.*`, `preprocess.image_size`), in name order, measured.
pub fn weights(cfg: &Config) -> Result<Vec<WeightInit>> {
    let net = super::shapes::cnn(cfg)?;
    let mut vars: Vec<(String, tch::Tensor)> = net.var_store().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .filter(|(n, t)| n.ends_with("weight") && t.dim() >= 2)
        .map(|(name, t)| {
            let shape = t.size();
            let fan_in: i64 = shape[1..].iter().product();
            let f = fan_in as f64;
            let var = super::scalar(&t.to_kind(tch::Kind::Double).var(true))?;
            let max = super::scalar(&t.abs().max())?;
            Ok(WeightInit {
                name,
                shape,
                fan_in,
                variance_x_fan_in: var * f,
                max_x_sqrt_fan_in: max * f.sqrt(),
            })
        })
        .collect()
}

/// [`weights`] as a table, with the values He and PyTorch's default would give.
pub fn table(cfg: &Config) -> Result<Table> {
    let w = weights(cfg)?;
    let df = df!(
        "weight" => w.iter().map(|w| w.name.clone()).collect::<Vec<_>>(),
        "shape" => w.iter().map(|w| format!("{:?}", w.shape)).collect::<Vec<_>>(),
        "fan_in" => w.iter().map(|w| w.fan_in).collect::<Vec<_>>(),
        "Var(w)·fan_in (He 2, PyTorch 1/3)" => w.iter().map(|w| format!("{:.3}", w.variance_x_fan_in)).collect::<Vec<_>>(),
        "max|w|·√fan_in (He 2.449, PyTorch 1)" => w.iter().map(|w| format!("{:.3}", w.max_x_sqrt_fan_in)).collect::<Vec<_>>(),
        "nearer to" => w.iter().map(|w| w.nearer()).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_cnn_is_he_initialised_not_like_pytorch() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let w = weights(&cfg).unwrap();
        // Five convs and two linear layers.
        assert_eq!(w.len(), cfg.cnn.channels.len() + 2, "{w:?}");
        assert_eq!(w.iter().filter(|w| w.shape.len() == 4).count(), 5);
        for w in &w {
            // The sample variance of n uniform weights has a relative sd of sqrt(0.8 / n)
            // (kurtosis 1.8): allow four of them around He's 2 (PyTorch's 1/3 is far off).
            let n: i64 = w.shape.iter().product();
            let tolerance = 4.0 * (0.8 / n as f64).sqrt();
            assert!(
                (w.variance_x_fan_in / HE_VARIANCE - 1.0).abs() < tolerance,
                "{w:?}"
            );
            // Uniform on ±sqrt(6 / fan_in): the largest weight is just under the bound.
            assert!(
                w.max_x_sqrt_fan_in <= 6f64.sqrt() + 1e-6 && w.max_x_sqrt_fan_in > 2.2,
                "{w:?}"
            );
            assert_eq!(w.nearer(), "He (tch default)");
        }
        assert_eq!(w[0].fan_in, w[0].shape[1] * w[0].shape[2] * w[0].shape[3]);
        assert_eq!(table(&cfg).unwrap().0.height(), w.len());
    }
}

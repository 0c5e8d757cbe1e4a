//! The network the backbone pass runs ([`super::features`]): EfficientNet-Lite0 folded for
//! inference ([`FoldedLite0`]) or a backbone as it is (ResNet-18, or the plain pass of a
//! benchmark).
//!
//! In bfloat16 the zero-shot probabilities move by up to about a tenth (measured on the
//! pets photos: see the README's "The backbone pass"), so a photo whose probabilities lie
//! that close to a boundary the label check decides on could get another verdict than in
//! fp32. Those photos, and only those, are computed again in fp32: the boundaries are
//! `p_dog − p_cat = 0` (which class the head prefers: agreement), `= ±audit.min_margin`
//! (a suspected mislabel) and `p_neither = audit.neither_threshold` ("neither"); "close" is
//! [`RECHECK_MARGIN`]. On the pets photos this leaves every zero-shot decision as the fp32
//! pass makes it, for about 5 % of the photos run twice. It is a measured margin, not a
//! bound: on other photos a bf16 shift larger than the margin could still move a decision,
//! and the label check's neighbour vote reads the bf16 features of the photos not rechecked
//! (`transfer.backbone_precision: "fp32"` gives the fp32 pass everywhere).

use crate::config::{Audit, Config};
use crate::models::backbone::Backbone;
use crate::models::efficientnet;
use crate::models::folded::FoldedLite0;
use anyhow::Result;
use std::cell::Cell;
use tch::{Device, Kind, Tensor};

use super::features::Compute;

/// Distance to a label-check boundary, in probability, under which a bf16 photo is
/// recomputed in fp32: above the largest bf16-vs-fp32 difference of `p_dog − p_cat` or
/// `p_neither` measured on the 2,100 pets photos (0.128 on an AVX512-BF16 AMD EPYC; README,
/// "The backbone pass").
pub const RECHECK_MARGIN: f64 = 0.15;

/// The pass's network.
pub(crate) enum PassNet {
    /// EfficientNet-Lite0 folded, in the pass's kind; with its fp32 twin when that kind is
    /// bf16, and the label check's boundaries.
    Folded {
        net: FoldedLite0,
        exact: Option<(FoldedLite0, Audit)>,
        rechecked: Cell<usize>,
    },
    /// A backbone as it is.
    AsIs(Backbone),
}

impl PassNet {
    /// The network of `how` with the weights of `cfg`.
    pub(crate) fn load(cfg: &Config, device: Device, how: &Compute) -> Result<Self> {
        let net = Backbone::load_kind(how.kind, cfg, device, 0)?;
        let Backbone::EfficientNet(e) = &net else {
            return Ok(PassNet::AsIs(net));
        };
        if !how.speed.folded {
            return Ok(PassNet::AsIs(net));
        }
        let kind = how.speed.kind;
        let exact = match kind {
            Kind::Float => None,
            _ => Some((
                FoldedLite0::new(e.var_store(), Kind::Float)?,
                cfg.audit.clone(),
            )),
        };
        Ok(PassNet::Folded {
            net: FoldedLite0::new(e.var_store(), kind)?,
            exact,
            rechecked: Cell::new(0),
        })
    }

    /// Photos recomputed in fp32 so far.
    pub(crate) fn rechecked(&self) -> usize {
        match self {
            PassNet::Folded { rechecked, .. } => rechecked.get(),
            PassNet::AsIs(_) => 0,
        }
    }

    /// Pooled features `(N, D)` float32 and zero-shot probabilities `(N, 3)` (`None`
    /// without an ImageNet head) of normalised images `(N, 3, S, S)`. Call under
    /// `tch::no_grad`.
    pub(crate) fn forward(&self, x: &Tensor) -> (Tensor, Option<Tensor>) {
        match self {
            PassNet::Folded {
                net,
                exact,
                rechecked,
            } => {
                let (f, p) = folded_forward(net, x);
                let Some((fp32, audit)) = exact else {
                    return (f, Some(p));
                };
                let rows = near_boundary(&p, audit).nonzero().squeeze_dim(1);
                let n = rows.size()[0];
                if n == 0 {
                    return (f, Some(p));
                }
                rechecked.set(rechecked.get() + n as usize);
                let (f2, p2) = folded_forward(fp32, &x.index_select(0, &rows));
                (
                    f.index_copy(0, &rows, &f2),
                    Some(p.index_copy(0, &rows, &p2)),
                )
            }
            PassNet::AsIs(net) => {
                let features = net.features(x);
                let probs = net.zero_shot(&features);
                (features, probs)
            }
        }
    }
}

fn folded_forward(net: &FoldedLite0, x: &Tensor) -> (Tensor, Tensor) {
    let features = net.features(x);
    let probs = efficientnet::cat_dog_neither(&net.classify(&features));
    (features, probs)
}

/// `(N,)` bool: rows of `probs` (cat, dog, neither) within [`RECHECK_MARGIN`] of a
/// boundary of the label check (`p_dog − p_cat` at 0 or ±`min_margin`, `p_neither` at
/// `neither_threshold`).
pub(crate) fn near_boundary(probs: &Tensor, audit: &Audit) -> Tensor {
    let (cat, dog, neither) = (probs.select(1, 0), probs.select(1, 1), probs.select(1, 2));
    let gap = (dog - cat).abs();
    let preference = gap.lt(RECHECK_MARGIN);
    let suspect = (&gap - audit.min_margin).abs().lt(RECHECK_MARGIN);
    let none = (neither - audit.neither_threshold).abs().lt(RECHECK_MARGIN);
    preference.logical_or(&suspect).logical_or(&none)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_near_either_boundary_are_rechecked() {
        let audit = Audit {
            min_margin: 0.0,
            min_neighbour_share: 0.7,
            neighbours: 10,
            neither_threshold: 0.97,
        };
        let probs = Tensor::from_slice(&[
            0.90f32, 0.05, 0.05, // clear cat
            0.48, 0.50, 0.02, // cat vs dog undecided
            0.01, 0.02, 0.97, // on the "neither" threshold
            0.30, 0.10, 0.60, // cat, far from both
            0.005, 0.06, 0.935, // dog preferred, 0.035 below "neither"
        ])
        .view([5, 3]);
        let near = Vec::<bool>::try_from(near_boundary(&probs, &audit)).unwrap();
        assert_eq!(near, [false, true, true, false, true]);
        let audit = Audit {
            min_margin: 0.5,
            ..audit
        };
        let near = Vec::<bool>::try_from(near_boundary(&probs, &audit)).unwrap();
        // |p_dog - p_cat| = 0.85, 0.02, 0.01, 0.2, 0.055: the second, third and fifth are
        // near 0 (which class the head prefers decides agreement whatever the margin), none
        // is near 0.5; the third and fifth are near the "neither" threshold.
        assert_eq!(near, [false, true, true, false, true]);
    }
}

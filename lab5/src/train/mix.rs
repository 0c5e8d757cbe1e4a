//! Batch mixing for the CNN's training: mixup (Zhang et al., *mixup: Beyond Empirical Risk
//! Minimization*, ICLR 2018) and CutMix (Yun et al., *CutMix: Regularization Strategy to
//! Train Strong Classifiers with Localizable Features*, ICCV 2019), drawn per batch like
//! timm's `timm.data.Mixup` (`prob`, `switch_prob` 0.5, one λ per batch, `mode="batch"`),
//! except that each photo's partner comes from a random permutation of the batch, as in
//! the papers' code (timm pairs the batch with its reverse); a photo drawn as its own
//! partner (about one a batch) stays as it was.
//! Config: `augment.mix_prob`, `augment.mixup_alpha`, `augment.cutmix_alpha`.

use crate::config::Augment;
use anyhow::Result;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use tch::Tensor;

/// The mixing settings (all off for the transfer head, whose inputs are features).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Mix {
    /// Probability that a batch is mixed (0 = never).
    pub prob: f64,
    /// α of mixup's Beta(α, α) (0 = no mixup).
    pub mixup_alpha: f64,
    /// α of CutMix's Beta(α, α) (0 = no CutMix).
    pub cutmix_alpha: f64,
}

/// A mixed batch: `x` is `λ`·(the batch) + (1 − `λ`)·(the batch in the order
/// `partner`), pixel by pixel (mixup) or as a pasted box (CutMix).
pub struct Mixed {
    /// The mixed images `[N, 3, H, W]`, same dtype and device as the input.
    pub x: Tensor,
    /// The partners' labels `[N]` (class indices).
    pub y_partner: Tensor,
    /// Weight of each photo's own label, in `[0, 1]`: for CutMix, the share of pixels
    /// that are still its own after the box is pasted.
    pub lambda: f64,
    /// `"mixup"` or `"cutmix"`.
    pub kind: &'static str,
}

impl Mix {
    /// The CNN's settings from `augment`.
    pub fn from_augment(a: &Augment) -> Self {
        Mix {
            prob: a.mix_prob,
            mixup_alpha: a.mixup_alpha,
            cutmix_alpha: a.cutmix_alpha,
        }
    }

    /// Whether any batch can be mixed.
    pub fn is_on(&self) -> bool {
        self.prob > 0.0 && (self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0)
    }

    /// Mixes the batch `x` `[N, C, H, W]` with labels `y` `[N]`, or returns `None` (mixing
    /// off, not drawn this time, or a batch of one photo). Every random draw comes from
    /// `rng`, so a seeded run mixes the same way every time.
    ///
    /// # Errors
    /// `x` not 4-D, a Beta distribution that cannot be built (α not finite), or a tensor
    /// operation that fails (`y` not of length N).
    pub fn apply(&self, x: &Tensor, y: &Tensor, rng: &mut StdRng) -> Result<Option<Mixed>> {
        if !self.is_on() {
            return Ok(None); // before any shape check: the transfer head trains on [N, D]
        }
        let (n, _, _, _) = x.size4()?;
        if n < 2 || rng.random::<f64>() >= self.prob {
            return Ok(None);
        }
        let cutmix = match (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0) {
            (true, true) => rng.random::<f64>() < 0.5,
            (_, cutmix) => cutmix,
        };
        let alpha = if cutmix {
            self.cutmix_alpha
        } else {
            self.mixup_alpha
        };
        let lambda: f64 = Beta::new(alpha, alpha)?.sample(rng);
        let mut order: Vec<i64> = (0..n).collect();
        order.shuffle(rng);
        let partner = Tensor::from_slice(&order);
        let x_partner = x.f_index_select(0, &partner.to_device(x.device()))?;
        let y_partner = y.f_index_select(0, &partner.to_device(y.device()))?;
        let (x, lambda) = if cutmix {
            cut_and_paste(x, &x_partner, lambda, rng)?
        } else {
            (x * lambda + x_partner * (1.0 - lambda), lambda)
        };
        Ok(Some(Mixed {
            x,
            y_partner,
            lambda,
            kind: if cutmix { "cutmix" } else { "mixup" },
        }))
    }
}

/// CutMix's box: side fractions `sqrt(1 − λ)`, centre uniform over the image, clipped at
/// the borders (the reference implementation's `rand_bbox`); pastes that box of
/// `partner` into `x` and returns the mixed batch with λ corrected to the share of the
/// image left unpasted.
fn cut_and_paste(
    x: &Tensor,
    partner: &Tensor,
    lambda: f64,
    rng: &mut StdRng,
) -> Result<(Tensor, f64)> {
    let (_, _, h, w) = x.size4()?;
    let cut = (1.0 - lambda).sqrt();
    let span = |len: i64, centre: i64| -> (i64, i64) {
        let half = ((len as f64 * cut) / 2.0) as i64;
        ((centre - half).clamp(0, len), (centre + half).clamp(0, len))
    };
    let (top, bottom) = span(h, rng.random_range(0..h));
    let (left, right) = span(w, rng.random_range(0..w));
    let mixed = x.copy();
    mixed
        .f_narrow(2, top, bottom - top)?
        .f_narrow(3, left, right - left)?
        .f_copy_(
            &partner
                .f_narrow(2, top, bottom - top)?
                .f_narrow(3, left, right - left)?,
        )?;
    let pasted = ((bottom - top) * (right - left)) as f64 / (h * w) as f64;
    Ok((mixed, 1.0 - pasted))
}

/// The mixed loss: `λ · loss(y) + (1 − λ) · loss(y_partner)` (the papers' and timm's
/// `mixup_criterion`), `loss` being the run's (smoothed) cross-entropy; a scalar tensor.
pub fn mixed_loss(
    logits: &Tensor,
    y: &Tensor,
    m: &Mixed,
    loss: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> Tensor {
    loss(logits, y) * m.lambda + loss(logits, &m.y_partner) * (1.0 - m.lambda)
}

/// The label a mixed photo mostly shows: its own where `λ ≥ 0.5`, else its partner's
/// (for the running training accuracy of mixed batches).
pub fn dominant_labels(y: &Tensor, m: &Mixed) -> Tensor {
    if m.lambda >= 0.5 {
        y.shallow_clone()
    } else {
        m.y_partner.shallow_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tch::{Device, Kind};

    fn batch(n: i64) -> (Tensor, Tensor) {
        // photo i is filled with the value i: the mixed pixels say which photos went in
        let x = Tensor::arange(n, (Kind::Float, Device::Cpu))
            .view([n, 1, 1, 1])
            .expand([n, 3, 8, 8], false)
            .contiguous();
        let y = Tensor::from_slice(&(0..n).map(|i| i % 2).collect::<Vec<i64>>());
        (x, y)
    }

    fn mix(prob: f64, mixup: f64, cutmix: f64) -> Mix {
        Mix {
            prob,
            mixup_alpha: mixup,
            cutmix_alpha: cutmix,
        }
    }

    #[test]
    fn mixup_blends_each_photo_with_its_partner_by_lambda() {
        let (x, y) = batch(6);
        let mut rng = StdRng::seed_from_u64(1);
        let m = mix(1.0, 0.8, 0.0).apply(&x, &y, &mut rng).unwrap().unwrap();
        assert_eq!(m.kind, "mixup");
        assert!((0.0..=1.0).contains(&m.lambda));
        // the partner of photo i is the photo whose label and value went in with 1 - λ
        let partner_values = (&m.x - &x * m.lambda) / (1.0 - m.lambda);
        let partners: Vec<i64> = (0..6)
            .map(|i| {
                let v = partner_values.get(i).mean(Kind::Float).double_value(&[]);
                v.round() as i64
            })
            .collect();
        for (i, j) in partners.iter().enumerate() {
            let label = i64::try_from(m.y_partner.get(i as i64)).unwrap();
            assert_eq!(label, j % 2, "photo {i}");
        }
        // a permutation: every photo is someone's partner once
        let mut seen = partners;
        seen.sort();
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn cutmix_pastes_one_box_and_lambda_is_the_unpasted_share() {
        let (x, y) = batch(4);
        let mut rng = StdRng::seed_from_u64(5);
        let mut checked = 0;
        for _ in 0..20 {
            let m = mix(1.0, 0.0, 1.0).apply(&x, &y, &mut rng).unwrap().unwrap();
            assert_eq!(m.kind, "cutmix");
            for i in 0..4 {
                let own = m.x.get(i).eq(i as f64).to_kind(Kind::Float);
                let kept = own.mean(Kind::Float).double_value(&[]);
                // every pixel is the photo's own or one partner's value
                let values = m.x.get(i).flatten(0, -1);
                let distinct = values.unique_dim(0, true, false, false).0.size()[0];
                assert!(distinct <= 2, "photo {i}: {distinct} values");
                if distinct == 2 {
                    assert!(
                        (kept - m.lambda).abs() < 1e-9,
                        "λ {} vs kept {kept}",
                        m.lambda
                    );
                    // the pasted pixels carry the partner's value, hence its label
                    let (lo, hi) = (
                        values.min().double_value(&[]),
                        values.max().double_value(&[]),
                    );
                    let partner = if lo == i as f64 { hi } else { lo };
                    assert_eq!(
                        i64::try_from(m.y_partner.get(i)).unwrap(),
                        partner as i64 % 2
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "no box was pasted in 20 draws");
    }

    #[test]
    fn off_or_not_drawn_leaves_the_batch_alone_and_draws_follow_the_seed() {
        let (x, y) = batch(4);
        let mut rng = StdRng::seed_from_u64(2);
        assert!(mix(0.0, 1.0, 1.0)
            .apply(&x, &y, &mut rng)
            .unwrap()
            .is_none());
        assert!(mix(1.0, 0.0, 0.0)
            .apply(&x, &y, &mut rng)
            .unwrap()
            .is_none());
        let (one_x, one_y) = batch(1);
        assert!(mix(1.0, 1.0, 1.0)
            .apply(&one_x, &one_y, &mut rng)
            .unwrap()
            .is_none());
        // about half of the batches with prob 0.5, both kinds with both alphas
        let m = mix(0.5, 0.8, 1.0);
        let draws: Vec<Option<&str>> = (0..200)
            .map(|_| m.apply(&x, &y, &mut rng).unwrap().map(|d| d.kind))
            .collect();
        let mixed = draws.iter().flatten().count();
        assert!((70..=130).contains(&mixed), "{mixed} of 200 mixed");
        assert!(draws.contains(&Some("mixup")) && draws.contains(&Some("cutmix")));
        let again = |seed| {
            let mut r = StdRng::seed_from_u64(seed);
            m.apply(&x, &y, &mut r).unwrap().map(|d| (d.lambda, d.kind))
        };
        assert_eq!(again(9), again(9));
    }

    fn fixed(lambda: f64) -> (Tensor, Mixed) {
        let y = Tensor::from_slice(&[0i64, 1, 1, 0]);
        let m = Mixed {
            x: Tensor::zeros([4, 3, 2, 2], (Kind::Float, Device::Cpu)),
            y_partner: Tensor::from_slice(&[1i64, 1, 0, 0]),
            lambda,
            kind: "mixup",
        };
        (y, m)
    }

    /// Cross-entropy against soft targets, `-(soft · log_softmax).sum(1).mean()`: what
    /// timm's `SoftTargetCrossEntropy` computes with `mixup_target(..., smoothing)`.
    fn soft_target_ce(logits: &Tensor, soft: &[[f32; 2]]) -> f64 {
        let flat: Vec<f32> = soft.iter().flatten().copied().collect();
        let soft = Tensor::from_slice(&flat).view([soft.len() as i64, 2]);
        let log_p = logits.log_softmax(-1, Kind::Float);
        -(soft * log_p)
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    }

    #[test]
    fn the_mixed_loss_is_cross_entropy_against_the_blended_soft_targets() {
        let logits =
            Tensor::from_slice(&[2.0f32, -1.0, 0.5, 0.5, -3.0, 1.0, 0.0, 2.0]).view([4, 2]);
        let (y, m) = fixed(0.7);
        for eps in [0.0, 0.1] {
            let smoothed = |l: &Tensor, t: &Tensor| super::super::trainer::cross_entropy(l, t, eps);
            let got = mixed_loss(&logits, &y, &m, smoothed).double_value(&[]);
            // one-hot of y and of the partner, blended by λ, then smoothed (ε/2 per class)
            let target = |own: i64, other: i64| -> [f32; 2] {
                let mut t = [0f32; 2];
                t[own as usize] += 0.7;
                t[other as usize] += 0.3;
                t.map(|v| v * (1.0 - eps as f32) + eps as f32 / 2.0)
            };
            let soft = [target(0, 1), target(1, 1), target(1, 0), target(0, 0)];
            let want = soft_target_ce(&logits, &soft);
            assert!((got - want).abs() < 1e-5, "ε {eps}: {got} vs {want}");
        }
    }

    #[test]
    fn accuracy_on_a_mixed_batch_counts_the_label_it_mostly_shows() {
        let label = |t: Tensor| Vec::<i64>::try_from(t).unwrap();
        let (y, m) = fixed(0.7);
        assert_eq!(label(dominant_labels(&y, &m)), vec![0, 1, 1, 0]);
        let (y, m) = fixed(0.3);
        assert_eq!(label(dominant_labels(&y, &m)), vec![1, 1, 0, 0]);
    }

    #[test]
    fn a_batch_that_is_not_four_dimensional_is_an_error() {
        let mut rng = StdRng::seed_from_u64(1);
        let flat = Tensor::zeros([4, 12], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 0, 1]);
        assert!(mix(1.0, 1.0, 0.0).apply(&flat, &y, &mut rng).is_err());
        // with mixing off, feature vectors (the transfer head's input) pass untouched
        assert!(mix(0.0, 0.0, 0.0)
            .apply(&flat, &y, &mut rng)
            .unwrap()
            .is_none());
    }
}

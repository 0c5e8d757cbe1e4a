//! Grad-CAM (Selvaraju et al., ICCV 2017, eq. 1-2) on tensors.
//!
//! For images `x`, a class score `y` and the activations `A` `(N, C, h, w)` of the last
//! convolutional layer:
//!
//! ```text
//! alpha_k = mean over (i, j) of  d y / d A_k[i, j]          (one weight per channel k)
//! map     = ReLU( sum_k alpha_k A_k )                        (N, h, w)
//! ```
//!
//! The map keeps only what raises the score (the ReLU); it is as coarse as `A` (7x7 for
//! both models of the lab) and is upsampled bilinearly to the photo for display
//! ([`upsample`]). `y` is the log-odds of the class (`logit_dog - logit_cat` for dog, its
//! negative for cat), not its probability: the softmax would flatten the gradient of a
//! confident answer to almost nothing.

use crate::data::Class;
use crate::models::Net;
use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

/// Grad-CAM maps of one class for a batch of images.
#[derive(Debug)]
pub struct Cam {
    /// The layer the maps come from (`block5.relu` for the CNN, `_bn1` for the transfer
    /// model's EfficientNet-Lite0 head convolution).
    pub layer: String,
    /// The maps, `(N, h, w)` float on the CPU, non-negative, in the units of the log-odds
    /// per activation (not scaled).
    pub maps: Tensor,
    /// `p(dog)` of each image from the same forward pass (no test-time flip).
    pub p_dog: Vec<f64>,
}

/// Grad-CAM of `class` for normalised images `(N, 3, S, S)` on the model's device.
///
/// The score is the log-odds of `class` (`logit_dog - logit_cat` for [`Class::Dog`], its
/// negative for [`Class::Cat`]); its gradient over the activations of the model's last
/// convolutional layer ([`Net::cam_forward`]) is averaged over each channel's positions
/// into the channel weights `alpha` `(N, C)`, and the map is `ReLU(sum_k alpha_k A_k)`,
/// `(N, h, w)`. The images of a batch do not interact (evaluation mode), so one backward
/// pass of the summed scores gives every image its own gradient.
///
/// # Errors
/// The model exposes no feature map (a ResNet-18 backbone), or autograd fails.
pub fn grad_cam(net: &dyn Net, images: &Tensor, class: Class) -> Result<Cam> {
    let f = tch::with_grad(|| net.cam_forward(images))?;
    let log_odds = f.logits.select(1, 1) - f.logits.select(1, 0); // (N,)
    let score = match class {
        Class::Dog => log_odds.shallow_clone(),
        Class::Cat => -&log_odds,
    };
    let total = score.sum(Kind::Float);
    let grads = Tensor::f_run_backward(&[&total], &[&f.activations], false, false)
        .context("Grad-CAM: the gradient of the score over the feature maps")?;
    let grad = grads
        .first()
        .context("Grad-CAM: autograd returned no gradient")?;
    let _guard = tch::no_grad_guard();
    let alpha = grad.mean_dim(&[2i64, 3][..], true, Kind::Float); // (N, C, 1, 1)
    let maps = (alpha * f.activations.detach())
        .sum_dim_intlist(&[1i64][..], false, Kind::Float)
        .relu()
        .to_device(Device::Cpu);
    let p_dog = Vec::<f64>::try_from(
        log_odds
            .detach()
            .sigmoid()
            .to_kind(Kind::Double)
            .to_device(Device::Cpu),
    )?;
    Ok(Cam {
        layer: f.layer,
        maps,
        p_dog,
    })
}

/// Maps `(N, h, w)` resized bilinearly to `(N, side, side)` (`align_corners = false`, as
/// `torch.nn.functional.interpolate`), each divided by `scale[n]` and clamped to `0..=1`
/// (a zero scale leaves the map at 0).
pub fn upsample(maps: &Tensor, side: i64, scale: &[f64]) -> Tensor {
    let _guard = tch::no_grad_guard();
    let n = maps.size()[0];
    let up = maps
        .to_kind(Kind::Float)
        .unsqueeze(1)
        .upsample_bilinear2d([side, side], false, None, None)
        .squeeze_dim(1);
    let inv: Vec<f32> = scale
        .iter()
        .map(|&s| if s > 0.0 { (1.0 / s) as f32 } else { 0.0 })
        .collect();
    let inv = Tensor::from_slice(&inv).view([n, 1, 1]);
    (up * inv).clamp(0.0, 1.0)
}

/// Share of each map's total on the columns `from..to` of its width, `(N,)`: where the
/// mass of a heat map lies (0 for an empty map).
pub fn column_share(maps: &Tensor, from: i64, to: i64) -> Vec<f64> {
    let _guard = tch::no_grad_guard();
    let m = maps.to_kind(Kind::Double);
    let total = m.sum_dim_intlist(&[1i64, 2][..], false, Kind::Double);
    let part = m
        .narrow(2, from, to - from)
        .sum_dim_intlist(&[1i64, 2][..], false, Kind::Double);
    let share = part / total.clamp_min(f64::MIN_POSITIVE);
    Vec::<f64>::try_from(share).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{CamForward, Summary};
    use tch::nn;

    /// A network whose "last conv layer" is its input and whose head is a linear layer
    /// on the globally averaged maps: Grad-CAM of it is CAM (Zhou et al., CVPR 2016),
    /// `ReLU(sum_k w_k A_k / (h w))` with `w = W_dog - W_cat`, known in closed form.
    struct GapLinear {
        vs: nn::VarStore,
        weight: Tensor,
        bias: Tensor,
    }

    impl Net for GapLinear {
        fn kind(&self) -> &'static str {
            "gap-linear"
        }
        fn logits(&self, xs: &Tensor, _train: bool) -> Tensor {
            let pooled = xs.mean_dim(&[2i64, 3][..], false, Kind::Float);
            pooled.linear(&self.weight, Some(&self.bias))
        }
        fn embed(&self, xs: &Tensor, _train: bool) -> Tensor {
            xs.mean_dim(&[2i64, 3][..], false, Kind::Float)
        }
        fn var_store(&self) -> &nn::VarStore {
            &self.vs
        }
        fn var_store_mut(&mut self) -> &mut nn::VarStore {
            &mut self.vs
        }
        fn summary(&self) -> Result<Summary> {
            anyhow::bail!("no layer table")
        }
        fn cam_forward(&self, images: &Tensor) -> Result<CamForward> {
            let a = images.detach().set_requires_grad(true);
            Ok(CamForward {
                layer: "input".into(),
                logits: self.logits(&a, false),
                activations: a,
            })
        }
    }

    #[test]
    fn grad_cam_of_a_pooled_linear_head_is_its_class_activation_map() {
        tch::manual_seed(3);
        let opts = (Kind::Float, Device::Cpu);
        let net = GapLinear {
            vs: nn::VarStore::new(Device::Cpu),
            weight: Tensor::randn([2, 4], opts),
            bias: Tensor::randn([2], opts),
        };
        let x = Tensor::randn([3, 4, 5, 6], opts);
        let w = net.weight.get(1) - net.weight.get(0); // (4,)
        let signed = (x.shallow_clone() * w.view([1, 4, 1, 1]) / 30.0).sum_dim_intlist(
            &[1i64][..],
            false,
            Kind::Float,
        );
        let dog = grad_cam(&net, &x, Class::Dog).unwrap();
        let cat = grad_cam(&net, &x, Class::Cat).unwrap();
        let gap = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
        assert_eq!(dog.maps.size(), [3, 5, 6]);
        assert!(
            gap(&dog.maps, &signed.relu()) < 1e-5,
            "the dog map is not ReLU(+CAM)"
        );
        assert!(
            gap(&cat.maps, &(-&signed).relu()) < 1e-5,
            "the cat map is not ReLU(-CAM)"
        );
        assert_eq!(
            f64::try_from((&dog.maps * &cat.maps).abs().max()).unwrap(),
            0.0
        );
        let logits = net.logits(&x, false);
        let p = Vec::<f64>::try_from(logits.softmax(-1, Kind::Double).select(1, 1)).unwrap();
        for (a, b) in p.iter().zip(&dog.p_dog) {
            assert!((a - b).abs() < 1e-6, "p_dog {b} vs the softmax's {a}");
        }
    }

    #[test]
    fn upsampling_keeps_a_map_where_it_was_and_scales_it() {
        let m = Tensor::zeros([1, 2, 2], (Kind::Float, Device::Cpu));
        let _ = m.get(0).get(0).get(1).fill_(4.0); // top right
        let up = upsample(&m, 8, &[4.0]);
        assert_eq!(up.size(), [1, 8, 8]);
        assert!((f64::try_from(up.max()).unwrap() - 1.0).abs() < 1e-6);
        let right = column_share(&up, 4, 8)[0];
        assert!(right > 0.8, "share on the right half {right}");
        let zero = upsample(&m, 8, &[0.0]);
        assert_eq!(f64::try_from(zero.abs().max()).unwrap(), 0.0);
    }
}

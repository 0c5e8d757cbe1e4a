//! Precise batch-norm statistics: after training, every batch-norm layer's running mean
//! and variance are recomputed with the kept weights over the whole training split, as
//! evaluation sees it (clean, whole photos), instead of the exponential moving average of
//! the augmented training batches' statistics.
//!
//! Source: Wu & Johnson, *Rethinking "Batch" in BatchNorm* (2021), section 3 ("precise
//! BN"); reference implementation fvcore's `update_bn_stats`. As there, the population
//! statistics are the batch statistics averaged over all batches (weighted by batch size):
//! the mean is exact, the variance is the mean of the per-batch (unbiased) variances.
//!
//! tch's batch-norm layers keep `momentum` private, so the batch statistics are recovered
//! from each update of the running buffers, `new = (1 - m) old + m batch`, with the
//! momentum the lab's models are built with ([`BN_MOMENTUM`], PyTorch's and tch's default).

use super::dataset::Dataset;
use crate::models::Net;
use anyhow::{bail, Result};
use tch::{Device, Tensor};

/// Momentum of every batch-norm layer of the lab's models (`nn::BatchNormConfig`'s
/// default).
pub(crate) const BN_MOMENTUM: f64 = 0.1;
/// Photos per forward pass.
const BATCH: usize = 64;
/// Names of the running-statistics buffers in a var store.
const BUFFERS: [&str; 2] = [".running_mean", ".running_var"];

/// Recomputes the running statistics of every batch-norm layer of `net` on `data`'s
/// evaluation batches (no augmentation), in training mode without gradients. Returns the
/// number of batch-norm layers updated (0 for a model without batch-norm: nothing changes).
///
/// # Errors
/// `data` is empty.
pub(crate) fn recompute(net: &dyn Net, data: &dyn Dataset, device: Device) -> Result<usize> {
    if data.is_empty() {
        bail!("precise BN needs training photos, and the training split is empty");
    }
    let mut buffers: Vec<(String, Tensor)> = net
        .var_store()
        .variables()
        .into_iter()
        .filter(|(name, _)| BUFFERS.iter().any(|b| name.ends_with(b)))
        .collect();
    if buffers.is_empty() {
        return Ok(0);
    }
    let mut sums: Vec<Tensor> = buffers.iter().map(|(_, t)| t.zeros_like()).collect();
    let mut seen = 0i64;
    tch::no_grad(|| {
        for (x, _) in data.eval_batches(BATCH, device) {
            let n = x.size()[0];
            let before: Vec<Tensor> = buffers.iter().map(|(_, t)| t.copy()).collect();
            let _ = net.logits(&x, true);
            for ((sum, (_, now)), old) in sums.iter_mut().zip(&buffers).zip(&before) {
                let batch = (now - old * (1.0 - BN_MOMENTUM)) / BN_MOMENTUM;
                *sum += batch * n as f64;
            }
            seen += n;
        }
        for ((_, buffer), sum) in buffers.iter_mut().zip(&sums) {
            buffer.copy_(&(sum / seen as f64));
        }
    });
    Ok(buffers.len() / BUFFERS.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::data::cache::SplitTensors;
    use crate::data::loader::IMAGENET;
    use crate::models::cnn::Cnn;
    use crate::train::dataset::ImageSet;
    use tch::Kind;

    /// The shipped config (its CNN at 32 px: five blocks down to 1 pixel).
    fn config() -> Config {
        Config::from_json(include_str!("../../../config.json")).unwrap()
    }

    /// 100 random photos (two batches: 64 + 36) of 32 px.
    fn photos() -> ImageSet {
        tch::manual_seed(3);
        let images = Tensor::randint(256, [100, 3, 32, 32], (Kind::Uint8, Device::Cpu));
        let split = SplitTensors {
            images,
            labels: Tensor::zeros([100], (Kind::Int64, Device::Cpu)),
            ids: (0..100).map(|i| format!("p{i}")).collect(),
        };
        ImageSet::new(split, None, IMAGENET)
    }

    /// The first block's batch-norm statistics end up the mean and (unbiased, per batch,
    /// averaged) variance of its convolution's outputs over all photos, whatever the
    /// running buffers held before.
    #[test]
    fn statistics_are_the_population_statistics_of_the_photos() {
        let cfg = config();
        let net = Cnn::new(&cfg.cnn, 32, Device::Cpu).unwrap();
        let data = photos();
        let layers = recompute(&net, &data, Device::Cpu).unwrap();
        assert_eq!(layers, cfg.cnn.channels.len());
        let vars = net.var_store().variables();
        let conv = &vars["block1.conv.weight"];
        let zeros = || Tensor::zeros([cfg.cnn.channels[0]], (Kind::Float, Device::Cpu));
        let (mut mean_sum, mut var_sum) = (zeros(), zeros());
        for (x, _) in data.eval_batches(BATCH, Device::Cpu) {
            let y = x.conv2d(conv, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
            let n = x.size()[0] as f64;
            mean_sum += y.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float) * n;
            var_sum += y.var_dim([0i64, 2, 3].as_slice(), true, false) * n;
        }
        let close = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
        assert!(close(&vars["block1.bn.running_mean"], &(mean_sum / 100.0)) < 1e-3);
        assert!(close(&vars["block1.bn.running_var"], &(var_sum / 100.0)) < 1e-2);
        let fresh = Tensor::zeros([cfg.cnn.channels[0]], (Kind::Float, Device::Cpu));
        assert!(
            close(&vars["block1.bn.running_mean"], &fresh) > 1e-2,
            "means changed"
        );
    }

    #[test]
    fn a_model_without_batch_norm_is_left_alone() {
        let mut cfg = config();
        cfg.cnn.batch_norm = false;
        let net = Cnn::new(&cfg.cnn, 32, Device::Cpu).unwrap();
        assert_eq!(recompute(&net, &photos(), Device::Cpu).unwrap(), 0);
    }
}

//! Batch normalisation: per-channel statistics of a batch before and after a `BatchNorm2d`
//! layer, in training mode (normalises with the batch's own mean and variance and updates
//! running averages) and in evaluation mode (normalises with the running averages).

use super::values;
use crate::plot::Table;
use anyhow::Result;
use polars::prelude::*;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Mean of each channel of the synthetic activations (deliberately far from 0).
pub(crate) const CHANNEL_MEANS: [f64; 3] = [4.0, -2.0, 0.5];
/// Standard deviation of each channel (deliberately far from 1).
pub(crate) const CHANNEL_STDS: [f64; 3] = [3.0, 0.5, 1.0];
/// Batch of activations: images x channels x height x width.
pub(crate) const BATCH_SHAPE: [i64; 4] = [32, 3, 8, 8];
/// Training-mode batches seen before the second evaluation.
pub(crate) const WARMUP_BATCHES: usize = 100;

/// A batch drawn from the per-channel normal distributions above.
pub(crate) fn activations() -> Tensor {
    let mean = Tensor::from_slice(&CHANNEL_MEANS)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&CHANNEL_STDS)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    Tensor::randn(BATCH_SHAPE, (Kind::Float, Device::Cpu)) * std + mean
}

/// Per-channel mean and standard deviation of `(N, C, H, W)`, as `"m ± s"` strings.
fn stats(xs: &Tensor) -> Result<Vec<String>> {
    let dims = [0i64, 2, 3];
    let m = values(&xs.mean_dim(dims.as_slice(), false, Kind::Float))?;
    let s = values(&xs.std_dim(dims.as_slice(), false, false))?;
    Ok(m.iter()
        .zip(&s)
        .map(|(m, s)| format!("{m:.2} ± {s:.2}"))
        .collect())
}

/// The layer's running mean and variance per channel, as `"m / v"` strings.
fn running(bn: &nn::BatchNorm) -> Result<Vec<String>> {
    let m = values(&bn.running_mean)?;
    let v = values(&bn.running_var)?;
    Ok(m.iter()
        .zip(&v)
        .map(|(m, v)| format!("{m:.2} / {v:.2}"))
        .collect())
}

/// A `BatchNorm2d` for 3 channels initialised like PyTorch (scale 1, shift 0).
pub(crate) fn layer(vs: &nn::VarStore) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(vs.root() / "bn", CHANNEL_MEANS.len() as i64, cfg)
}

/// The experiment as a table, one row per channel: the input; the training-mode output;
/// running statistics and evaluation-mode output after one batch and after
/// [`WARMUP_BATCHES`] batches.
pub fn statistics_table() -> Result<Table> {
    let vs = nn::VarStore::new(Device::Cpu);
    let bn = layer(&vs);
    let x = activations();
    let _guard = tch::no_grad_guard();
    let train_out = stats(&bn.forward_t(&x, true))?;
    let (run1, eval1) = (running(&bn)?, stats(&bn.forward_t(&x, false))?);
    for _ in 0..WARMUP_BATCHES {
        let _ = bn.forward_t(&activations(), true);
    }
    let (run_n, eval_n) = (running(&bn)?, stats(&bn.forward_t(&x, false))?);
    let n = WARMUP_BATCHES + 1;
    let df = df!(
        "channel" => (0..CHANNEL_MEANS.len() as i64).collect::<Vec<_>>(),
        "input mean ± std" => stats(&x)?,
        "train mode: output" => train_out,
        "running mean / var after 1 batch" => run1,
        "eval mode after 1 batch: output" => eval1,
        format!("running mean / var after {n} batches").as_str() => run_n,
        format!("eval mode after {n} batches: output").as_str() => eval_n,
    )?;
    Ok(Table(df))
}

/// What the layer stores: its learnable scale and shift, and its running statistics
/// (buffers: saved with the model but not trained).
pub fn stored_table() -> Result<Table> {
    let vs = nn::VarStore::new(Device::Cpu);
    let _bn = layer(&vs);
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let df = df!(
        "variable" => vars.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "shape" => vars.iter().map(|(_, t)| format!("{:?}", t.size())).collect::<Vec<_>>(),
        "trained by the optimiser" => vars.iter().map(|(_, t)| t.requires_grad()).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(s: &str) -> (f64, f64) {
        let (m, sd) = s.split_once(" ± ").unwrap();
        (m.parse().unwrap(), sd.parse().unwrap())
    }

    #[test]
    fn train_mode_normalises_and_eval_mode_needs_running_stats() {
        let t = statistics_table().unwrap().0;
        let col = |i: usize| -> Vec<(f64, f64)> {
            let ca = t.columns()[i].str().unwrap();
            (0..ca.len())
                .filter_map(|r| ca.get(r))
                .map(mean_std)
                .collect()
        };
        for (m, s) in col(2) {
            assert!(
                m.abs() < 1e-3 && (s - 1.0).abs() < 0.01,
                "train mode: {m} ± {s}"
            );
        }
        let far = col(4)
            .iter()
            .any(|(m, s)| m.abs() > 0.5 || (s - 1.0).abs() > 0.3);
        assert!(
            far,
            "eval after one batch should not be normalised: {:?}",
            col(4)
        );
        for (m, s) in col(6) {
            assert!(
                m.abs() < 0.1 && (s - 1.0).abs() < 0.1,
                "eval after warm-up: {m} ± {s}"
            );
        }
        let stored = stored_table().unwrap().0;
        let ca = stored
            .column("trained by the optimiser")
            .unwrap()
            .bool()
            .unwrap();
        let trained: Vec<bool> = (0..ca.len()).filter_map(|r| ca.get(r)).collect();
        assert_eq!(trained.iter().filter(|t| **t).count(), 2, "{stored}");
    }
}

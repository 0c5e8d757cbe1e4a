//! Batch normalisation: per-channel statistics of a batch before and after a `BatchNorm2d`
//! layer, in training mode (normalises with the batch's own mean and variance and updates
//! running averages) and in evaluation mode (normalises with the running averages); over
//! which axes the statistics are taken, which variance is used where, and what the other
//! images of a batch do to one image's output (Ioffe & Szegedy, ICML 2015, §3 and §3.2;
//! PyTorch's `BatchNorm2d` documentation).

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

/// PyTorch's (and tch's) default `eps` and `momentum` of `BatchNorm2d`.
pub(crate) const EPS: f64 = 1e-5;
pub(crate) const MOMENTUM: f64 = 0.1;
/// Differences below this count as "the same" (float32 rounding).
pub(crate) const SAME: f64 = 1e-4;

/// `(x − mean) / sqrt(var + eps)` with the statistics over `dims`, biased or unbiased variance.
fn normalised(x: &Tensor, dims: &[i64], unbiased: bool) -> Tensor {
    let m = x.mean_dim(dims, true, Kind::Float);
    let v = x.var_dim(dims, unbiased, true);
    (x - m) / (v + EPS).sqrt()
}

/// Largest absolute difference.
fn diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    super::scalar(&(a - b).abs().max())
}

/// Hand-written candidates for the training-mode output, each vs the layer's output.
fn axes_rows(bn: &nn::BatchNorm, x: &Tensor) -> Result<Vec<(String, f64)>> {
    let y = bn.forward_t(x, true);
    Ok(vec![
        (
            "per channel over (N, H, W), biased variance".into(),
            diff(&y, &normalised(x, &[0, 2, 3], false))?,
        ),
        (
            "per channel over (N, H, W), unbiased variance".into(),
            diff(&y, &normalised(x, &[0, 2, 3], true))?,
        ),
        (
            "per channel and position over N only".into(),
            diff(&y, &normalised(x, &[0], false))?,
        ),
        (
            "per image and channel over (H, W) (instance norm)".into(),
            diff(&y, &normalised(x, &[2, 3], false))?,
        ),
        (
            "per image over (C, H, W) (layer norm)".into(),
            diff(&y, &normalised(x, &[1, 2, 3], false))?,
        ),
    ])
}

/// The running variance after one step from 1, with the unbiased and the biased batch variance.
fn running_rows(bn: &nn::BatchNorm, x: &Tensor) -> Result<Vec<(String, f64)>> {
    let dims = [0i64, 2, 3];
    let expect =
        |unbiased: bool| x.var_dim(dims.as_slice(), unbiased, false) * MOMENTUM + (1.0 - MOMENTUM);
    Ok(vec![
        (
            format!(
                "running_var = {:.1}·1 + {MOMENTUM}·(unbiased batch variance)",
                1.0 - MOMENTUM
            ),
            diff(&bn.running_var, &expect(true))?,
        ),
        (
            format!(
                "running_var = {:.1}·1 + {MOMENTUM}·(biased batch variance)",
                1.0 - MOMENTUM
            ),
            diff(&bn.running_var, &expect(false))?,
        ),
    ])
}

/// One image's output in its batch vs in a batch of other images, in train and eval mode.
fn batch_rows(bn: &nn::BatchNorm, x: &Tensor) -> Result<Vec<(String, f64)>> {
    let other = Tensor::cat(&[x.narrow(0, 0, 1), activations().narrow(0, 1, 7) * 2.0], 0);
    let first = |t: Tensor| t.narrow(0, 0, 1);
    Ok(vec![
        (
            "train mode: image 0 with its batch vs with 7 other images".into(),
            diff(
                &first(bn.forward_t(x, true)),
                &first(bn.forward_t(&other, true)),
            )?,
        ),
        (
            "eval mode: image 0 with its batch vs with 7 other images".into(),
            diff(
                &first(bn.forward_t(x, false)),
                &first(bn.forward_t(&other, false)),
            )?,
        ),
    ])
}

/// Which computation a fresh `BatchNorm2d` (eps 1e-5, momentum 0.1, γ = 1, β = 0) performs:
/// each candidate next to the layer's output, with the largest difference; "yes" where they
/// agree to float rounding. Also the running-variance update, and whether one image's output
/// depends on the rest of its batch in training and in evaluation mode.
pub fn axes_table() -> Result<Table> {
    let vs = nn::VarStore::new(Device::Cpu);
    let bn = layer(&vs);
    let x = activations();
    let _guard = tch::no_grad_guard();
    let mut rows = axes_rows(&bn, &x)?; // one training-mode pass: running stats updated once
    rows.extend(running_rows(&bn, &x)?);
    rows.extend(batch_rows(&bn, &x)?);
    let df = df!(
        "computation" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "max |difference|" => rows.iter().map(|r| format!("{:.1e}", r.1)).collect::<Vec<_>>(),
        "same" => rows.iter().map(|r| r.1 < SAME).collect::<Vec<_>>(),
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

    #[test]
    fn statistics_are_per_channel_over_batch_and_space() {
        let table = axes_table().unwrap();
        let same = super::super::bools(&table, "same");
        let t = &table.0;
        // (N,H,W) biased: yes; unbiased, N only, instance, layer: no; running var unbiased:
        // yes, biased: no; train mode depends on the batch, eval mode does not.
        assert_eq!(
            same,
            vec![true, false, false, false, false, true, false, false, true],
            "{t}"
        );
    }
}

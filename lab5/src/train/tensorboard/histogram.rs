//! Histograms of tensors for TensorBoard, as PyTorch's `SummaryWriter.add_histogram(tag,
//! values, bins=N)` makes them (`torch/utils/tensorboard/summary.py`, `make_histogram`):
//! `N` equal-width buckets between the smallest and largest value, with the count, sum
//! and sum of squares. Computed on the tensor's device; only the summary (a few hundred
//! bytes) comes to the CPU.
//!
//! Bucket `i` holds `[lo_i, hi_i)`, the last one closed at the maximum (`torch.histc`).
//! Unlike PyTorch's `make_histogram`, no zero-width bucket is put in front and empty end
//! buckets are kept; TensorBoard's migration of the proto (`data_compat`, which takes the
//! first bucket's left edge from `min`) draws the same histogram either way.

use super::proto::HistogramProto;
use anyhow::Result;
use tch::{Kind, Tensor};

/// The histogram of every value of `t` (any shape, any float kind) in `bins` equal-width
/// buckets from its minimum to its maximum; one bucket when all values are equal.
///
/// Returns `None` for an empty tensor, `bins == 0`, or when a value is NaN or infinite
/// (a diverged run has nothing to show; the training loop reports the divergence).
///
/// # Errors
/// A libtorch call fails (e.g. the device ran out of memory).
pub fn histogram(t: &Tensor, bins: usize) -> Result<Option<HistogramProto>> {
    if t.numel() == 0 || bins == 0 {
        return Ok(None);
    }
    let _guard = tch::no_grad_guard();
    let x = t.f_detach()?.f_flatten(0, -1)?.f_to_kind(Kind::Double)?;
    let stats = Tensor::f_stack(
        &[
            x.f_min()?,
            x.f_max()?,
            x.f_sum(Kind::Double)?,
            x.f_square()?.f_sum(Kind::Double)?,
        ],
        0,
    )?;
    let [min, max, sum, sum_squares]: [f64; 4] =
        Vec::<f64>::try_from(stats.f_to(tch::Device::Cpu)?)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("four statistics expected"))?;
    if ![min, max, sum, sum_squares].iter().all(|v| v.is_finite()) {
        return Ok(None);
    }
    let num = t.numel() as f64;
    let (bucket_limit, bucket) = if min == max {
        (vec![max], vec![num])
    } else {
        let counts = x.f_histc(bins as i64)?; // range [min, max] of the data itself
        let counts = Vec::<f64>::try_from(counts.f_to(tch::Device::Cpu)?)?;
        let width = (max - min) / bins as f64;
        let limits = (1..=bins).map(|i| min + width * i as f64).collect();
        (limits, counts)
    };
    Ok(Some(HistogramProto {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_every_value_between_min_and_max() {
        let t = Tensor::from_slice(&[0.0f32, 0.1, 0.2, 0.9, 1.0, 1.0]).view([2, 3]);
        let h = histogram(&t, 4).unwrap().unwrap();
        assert_eq!((h.min, h.max, h.num), (0.0, 1.0, 6.0));
        assert!((h.sum - 3.2).abs() < 1e-6, "{}", h.sum);
        assert!((h.sum_squares - (0.01 + 0.04 + 0.81 + 2.0)).abs() < 1e-6);
        assert_eq!(h.bucket_limit, vec![0.25, 0.5, 0.75, 1.0]);
        // [0, .25): 0, .1, .2; [.75, 1]: .9, 1, 1 (the last bucket includes the maximum)
        assert_eq!(h.bucket, vec![3.0, 0.0, 0.0, 3.0]);
    }

    #[test]
    fn a_value_on_an_inner_limit_falls_in_the_bucket_it_starts() {
        // [0, .25): 0, .1; [.25, .5): .25; [.5, .75): .5; [.75, 1]: 1 (half-open, last closed)
        let t = Tensor::from_slice(&[0.0f64, 0.1, 0.25, 0.5, 1.0]);
        let h = histogram(&t, 4).unwrap().unwrap();
        assert_eq!(h.bucket_limit, vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!(h.bucket, vec![2.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn equal_values_make_one_bucket_and_bad_values_none() {
        let h = histogram(&Tensor::zeros([5], (Kind::Float, tch::Device::Cpu)), 30)
            .unwrap()
            .unwrap();
        assert_eq!((h.bucket_limit, h.bucket), (vec![0.0], vec![5.0]));
        let nan = Tensor::from_slice(&[1.0f32, f32::NAN]);
        assert_eq!(histogram(&nan, 30).unwrap(), None);
        let empty = Tensor::zeros([0], (Kind::Float, tch::Device::Cpu));
        assert_eq!(histogram(&empty, 30).unwrap(), None);
        assert_eq!(histogram(&Tensor::from_slice(&[1.0f32]), 0).unwrap(), None);
    }
}

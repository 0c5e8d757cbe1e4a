//! Axis ranges that fit the data with a little air around it.

use anyhow::{bail, Result};
use std::ops::Range;

/// Fraction of the data span added on each side of an axis.
const PAD_FRACTION: f64 = 0.05;
/// Half-width of the range around a single repeated value.
const FLAT_HALF_WIDTH: f64 = 0.5;

/// The range covering every finite value in `values`, padded on both sides; fails when
/// there is no finite value (`what` names the data in the message).
pub(crate) fn padded(values: impl IntoIterator<Item = f64>, what: &str) -> Result<Range<f64>> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        bail!("{what} has no finite value to plot");
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        return Ok(lo - FLAT_HALF_WIDTH..hi + FLAT_HALF_WIDTH);
    }
    let pad = (hi - lo) * PAD_FRACTION;
    Ok(lo - pad..hi + pad)
}

/// `range` widened to include zero (for bars and counts).
pub(crate) fn with_zero(range: Range<f64>) -> Range<f64> {
    range.start.min(0.0)..range.end.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_covers_data_and_ignores_nan() {
        let r = padded([1.0, f64::NAN, 3.0], "x").unwrap();
        assert!(r.start < 1.0 && r.end > 3.0 && r.end - r.start < 2.5);
        let flat = padded([2.0, 2.0], "x").unwrap();
        assert!(flat.start < 2.0 && flat.end > 2.0);
        assert!(padded([f64::NAN], "loss")
            .unwrap_err()
            .to_string()
            .contains("loss"));
    }
}

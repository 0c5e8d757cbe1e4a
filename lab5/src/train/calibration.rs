//! Are the probabilities honest? A reliability diagram and its summaries (Guo et al., "On
//! Calibration of Modern Neural Networks", ICML 2017): the predictions binned by their
//! confidence (the probability of the class predicted, `max(p, 1 - p)`, in `0.5..=1` for two
//! classes), and per bin the mean confidence against the share predicted right. A
//! calibrated model is right on 90 % of the photos it is 90 % sure of.
//!
//! - **ECE**, expected calibration error: the photo-weighted mean of `|accuracy - confidence|`
//!   over the bins (Naeini et al., AAAI 2015; Guo et al. eq. 3);
//! - **MCE**, maximum calibration error: the largest such gap over the non-empty bins, the
//!   worst bar of the diagram.

use super::metrics::THRESHOLD;
use serde::{Deserialize, Serialize};

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower end of the bin's confidence range (inclusive).
    pub low: f64,
    /// Upper end (exclusive, except for the last bin).
    pub high: f64,
    /// Predictions in the bin.
    pub count: usize,
    /// Their mean confidence (NaN when empty; `null` in JSON).
    #[serde(with = "super::metrics::nan_as_null")]
    pub confidence: f64,
    /// The share of them predicted right (NaN when empty; `null` in JSON).
    #[serde(with = "super::metrics::nan_as_null")]
    pub accuracy: f64,
}

/// A reliability diagram with its ECE and MCE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Predictions scored.
    pub n: usize,
    /// Equal-width bins of confidence over `0.5..=1`.
    pub bins: Vec<Bin>,
    /// Expected calibration error (0 = calibrated).
    pub ece: f64,
    /// Maximum calibration error over the non-empty bins.
    pub mce: f64,
}

/// The reliability diagram of `p_dog` against `labels` (0 cat, 1 dog) with `bins`
/// equal-width confidence bins over `0.5..=1` (at least one).
pub fn calibration(p_dog: &[f64], labels: &[i64], bins: usize) -> Calibration {
    let k = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); k]; // count, confidence, right
    for (&p, &y) in p_dog.iter().zip(labels) {
        let dog = p > THRESHOLD;
        let confidence = if dog { p } else { 1.0 - p };
        let i = (((confidence - 0.5) * 2.0 * k as f64).floor().max(0.0) as usize).min(k - 1);
        let s = &mut sums[i];
        *s = (
            s.0 + 1,
            s.1 + confidence,
            s.2 + usize::from(dog == (y == 1)),
        );
    }
    let n: usize = sums.iter().map(|s| s.0).sum();
    let bins: Vec<Bin> = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, conf, right))| Bin {
            low: 0.5 + 0.5 * i as f64 / k as f64,
            high: 0.5 + 0.5 * (i + 1) as f64 / k as f64,
            count,
            confidence: conf / count as f64,
            accuracy: right as f64 / count as f64,
        })
        .collect();
    let gaps = bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.count, (b.accuracy - b.confidence).abs()));
    let ece = gaps.clone().map(|(c, g)| c as f64 * g).sum::<f64>() / n.max(1) as f64;
    let mce = gaps.map(|(_, g)| g).fold(0.0, f64::max);
    Calibration { n, bins, ece, mce }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_and_mce_by_hand() {
        // Bin 0.9..1.0 (k = 5): four photos at 0.95 confidence, three right: gap 0.2.
        // Bin 0.5..0.6: two photos at 0.55, one right: gap 0.05.
        let p = [0.95, 0.95, 0.05, 0.05, 0.55, 0.45];
        let y = [1, 1, 0, 1, 1, 1];
        let c = calibration(&p, &y, 5);
        assert_eq!(c.n, 6);
        let full = &c.bins[4];
        assert_eq!(full.count, 4);
        assert!((full.low - 0.9).abs() < 1e-12 && (full.high - 1.0).abs() < 1e-12);
        assert!((full.confidence - 0.95).abs() < 1e-12 && (full.accuracy - 0.75).abs() < 1e-12);
        assert_eq!(c.bins[0].count, 2);
        assert!((c.bins[0].accuracy - 0.5).abs() < 1e-12);
        assert!(
            (c.ece - (4.0 * 0.2 + 2.0 * 0.05) / 6.0).abs() < 1e-12,
            "{}",
            c.ece
        );
        assert!((c.mce - 0.2).abs() < 1e-12);
        assert!(c.bins[1].count == 0 && c.bins[1].accuracy.is_nan());
        let json = serde_json::to_string(&c).unwrap();
        let back: Calibration = serde_json::from_str(&json).expect("empty bins read back");
        assert!(back.bins[1].accuracy.is_nan() && back.bins[4] == c.bins[4]);
    }

    #[test]
    fn a_model_right_as_often_as_it_is_sure_is_calibrated() {
        // 10 photos at 0.8 confidence, 8 right; and certain ones always right.
        let mut p = vec![0.8; 10];
        let mut y = vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        p.extend([1.0, 0.0]);
        y.extend([1, 0]);
        let c = calibration(&p, &y, 10);
        assert!(c.ece < 1e-12 && c.mce < 1e-12, "{c:?}");
        assert_eq!(c.bins[9].count, 2, "confidence 1 falls in the last bin");
    }
}

//! Classification metrics from predicted probabilities (positive class: dog = 1).
//!
//! A prediction is "dog" when `p_dog > 0.5` (the arg-max of the two softmax outputs).
//! ROC-AUC is computed by ranks (Mann-Whitney U, tied scores share their average rank);
//! log loss clips probabilities to `[1e-15, 1 - 1e-15]` like scikit-learn. Undefined values
//! (AUC with one class only, anything on zero samples) are NaN, stored as `null` in JSON.

use serde::{Deserialize, Serialize};

/// Probability above which the prediction is "dog".
pub const THRESHOLD: f64 = 0.5;
/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` in the log loss.
pub(crate) const LOG_LOSS_EPS: f64 = 1e-15;

/// Metrics of one split (or any set of predictions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of samples.
    pub n: usize,
    /// Fraction predicted correctly.
    #[serde(with = "nan_as_null")]
    pub accuracy: f64,
    /// Of the images predicted dog, the fraction that are dogs (0 when none is).
    #[serde(with = "nan_as_null")]
    pub precision: f64,
    /// Of the dogs, the fraction predicted dog (0 when there is no dog).
    #[serde(with = "nan_as_null")]
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    #[serde(with = "nan_as_null")]
    pub f1: f64,
    /// Area under the ROC curve (NaN unless both classes are present).
    #[serde(with = "nan_as_null")]
    pub roc_auc: f64,
    /// Mean binary cross-entropy of `p_dog`.
    #[serde(with = "nan_as_null")]
    pub log_loss: f64,
    /// Counts `[true class][predicted class]`, 0 cat, 1 dog.
    pub confusion: [[u64; 2]; 2],
}

/// Metrics of predictions `p_dog` against `labels` (0 cat, 1 dog). Both slices should
/// have the same length; only the common prefix is scored, and any label other than 1
/// counts as cat.
pub fn compute(p_dog: &[f64], labels: &[i64]) -> Metrics {
    let n = p_dog.len().min(labels.len());
    let (p, y) = (&p_dog[..n], &labels[..n]);
    let confusion = confusion(p, y);
    let [[tn, fp], [fne, tp]] = confusion.map(|r| r.map(|v| v as f64));
    let precision = ratio_or_zero(tp, tp + fp);
    let recall = ratio_or_zero(tp, tp + fne);
    Metrics {
        n,
        accuracy: (tp + tn) / n as f64,
        precision,
        recall,
        f1: ratio_or_zero(2.0 * precision * recall, precision + recall),
        roc_auc: roc_auc(p, y),
        log_loss: log_loss(p, y),
        confusion,
    }
}

/// The standard normal quantile of 97.5 %: a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of a proportion of `k` successes in `n` trials (Wilson,
/// JASA 1927; recommended over the normal approximation by Brown, Cai & DasGupta,
/// Statistical Science 2001): `(low, high)` in `0..=1`, `(0, 1)` when `n` is 0.
pub fn wilson_interval(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z2) = (k.min(n) as f64, n as f64, Z_95 * Z_95);
    let p = k / n;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// McNemar's test of two classifiers on the same photos (McNemar, Psychometrika 1947), in
/// its exact binomial form (recommended for comparing classifiers by Dietterich, Neural
/// Computation 1998): `b` photos only the first gets right, `c` only the second. Under
/// "equally accurate" each of the `b + c` disagreements goes either way with probability
/// 1/2, so the two-sided p-value is `min(1, 2 P(X <= min(b, c)))`, `X ~ Binomial(b + c,
/// 1/2)`; 1 when they never disagree. Photos both get right or both get wrong say nothing
/// about which is better and do not enter.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    let k = b.min(c);
    // log P(X = i), from i = 0 upwards: log C(n, i) - n log 2.
    let mut log_p = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=k {
        tail += log_p.exp();
        log_p += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    (2.0 * tail).min(1.0)
}

impl Metrics {
    /// Number of correct predictions (the confusion matrix's diagonal).
    pub fn correct(&self) -> u64 {
        self.confusion[0][0] + self.confusion[1][1]
    }

    /// The 95 % Wilson interval of the accuracy ([`wilson_interval`]).
    pub fn accuracy_interval(&self) -> (f64, f64) {
        wilson_interval(self.correct(), self.n as u64)
    }
}

fn is_dog(label: i64) -> bool {
    label == 1
}

fn ratio_or_zero(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

fn confusion(p: &[f64], y: &[i64]) -> [[u64; 2]; 2] {
    let mut c = [[0u64; 2]; 2];
    for (&p, &y) in p.iter().zip(y) {
        c[is_dog(y) as usize][(p > THRESHOLD) as usize] += 1;
    }
    c
}

/// Mean binary cross-entropy with clipped probabilities (NaN on no samples).
pub(crate) fn log_loss(p: &[f64], y: &[i64]) -> f64 {
    let total: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -if is_dog(y) { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    total / p.len().min(y.len()) as f64
}

/// ROC-AUC by ranks: the probability that a random dog scores higher than a random cat,
/// ties counting one half. NaN unless both classes are present.
pub(crate) fn roc_auc(p: &[f64], y: &[i64]) -> f64 {
    let ranks = average_ranks(p);
    let pos = y.iter().filter(|&&l| is_dog(l)).count() as f64;
    let neg = ranks.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(y)
        .filter(|(_, &l)| is_dog(l))
        .map(|(r, _)| r)
        .sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// 1-based ranks of `v` in ascending order; equal values get the mean of their ranks.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && v[idx[end]] == v[idx[start]] {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        idx[start..end].iter().for_each(|&i| ranks[i] = mean_rank);
        start = end;
    }
    ranks
}

/// ROC curve points `(false positive rate, true positive rate)` from `(0, 0)` to `(1, 1)`,
/// one point per distinct score (highest first). Empty unless both classes are present.
pub(crate) fn roc_curve(p_dog: &[f64], labels: &[i64]) -> Vec<(f64, f64)> {
    let n = p_dog.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| is_dog(l)).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| p_dog[b].total_cmp(&p_dog[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    for (k, &i) in idx.iter().enumerate() {
        *(if is_dog(labels[i]) { &mut tp } else { &mut fp }) += 1.0;
        // One point per distinct score: after the last sample sharing it.
        if idx.get(k + 1).is_none_or(|&j| p_dog[j] != p_dog[i]) {
            points.push((fp / neg, tp / pos));
        }
    }
    points
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n {}  acc {:.2} %  precision {:.3}  recall {:.3}  F1 {:.3}  ROC-AUC {:.3}  log loss {:.4}",
            self.n,
            100.0 * self.accuracy,
            self.precision,
            self.recall,
            self.f1,
            self.roc_auc,
            self.log_loss
        )
    }
}

/// Serialises NaN as JSON `null` (serde_json cannot read NaN back) and `null` as NaN.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wilson_intervals_match_the_closed_form_by_hand() {
        // The closed form evaluated independently (Python, double precision):
        // 81 of 263 -> 0.2553 .. 0.3662; 0 of 10 -> 0 .. 0.2775; 10 of 10 -> 0.7225 .. 1.
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 5e-4 && (a.1 - b.1).abs() < 5e-4;
        assert!(
            close(super::wilson_interval(81, 263), (0.2553, 0.3662)),
            "{:?}",
            super::wilson_interval(81, 263)
        );
        assert!(close(super::wilson_interval(0, 10), (0.0, 0.2775)));
        assert!(close(super::wilson_interval(10, 10), (0.7225, 1.0)));
        assert_eq!(super::wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn mcnemar_exact_p_values_match_the_binomial_by_hand() {
        // 1 vs 9 disagreements: 2 (C(10,0) + C(10,1)) / 2^10 = 22 / 1024.
        assert!((super::mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert!((super::mcnemar_exact(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        // 0 vs 6: 2 / 64.
        assert!((super::mcnemar_exact(0, 6) - 2.0 / 64.0).abs() < 1e-12);
        // Even splits and no disagreement cannot tell the two apart.
        assert_eq!(super::mcnemar_exact(5, 5), 1.0);
        assert_eq!(super::mcnemar_exact(0, 0), 1.0);
        // Large counts stay finite: 100 vs 150 gives 2 sum_{i<=100} C(250, i) / 2^250
        // = 0.0018833009 (exact integers in Python).
        let p = super::mcnemar_exact(100, 150);
        assert!((p - 0.001_883_300_9).abs() < 1e-9, "{p}");
    }

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn counts_and_rates_by_hand() {
        // y: 1 1 1 0 0 0 ; p: .9 .6 .4 .7 .2 .1
        // predicted dog: .9 .6 .7 -> TP 2, FP 1, FN 1, TN 2.
        let p = [0.9, 0.6, 0.4, 0.7, 0.2, 0.1];
        let y = [1, 1, 1, 0, 0, 0];
        let m = compute(&p, &y);
        assert_eq!(m.confusion, [[2, 1], [1, 2]]);
        assert!(close(m.accuracy, 4.0 / 6.0));
        assert!(close(m.precision, 2.0 / 3.0) && close(m.recall, 2.0 / 3.0));
        assert!(close(m.f1, 2.0 / 3.0));
        // Pairs (dog, cat) with dog scoring higher: .9 beats 3, .6 beats 2, .4 beats 2 -> 7/9.
        assert!(close(m.roc_auc, 7.0 / 9.0), "{}", m.roc_auc);
        let ll =
            -(0.9f64.ln() + 0.6f64.ln() + 0.4f64.ln() + 0.3f64.ln() + 0.8f64.ln() + 0.9f64.ln())
                / 6.0;
        assert!(close(m.log_loss, ll), "{} vs {ll}", m.log_loss);
    }

    #[test]
    fn ties_count_one_half_in_auc() {
        // Every score equal: AUC exactly 0.5. One dog tied with one cat above another cat:
        // pairs: (d, c_tied) = 0.5, (d, c_low) = 1 -> 0.75.
        assert!(close(roc_auc(&[0.3; 4], &[1, 0, 1, 0]), 0.5));
        assert!(close(roc_auc(&[0.8, 0.8, 0.1], &[1, 0, 0]), 0.75));
    }

    #[test]
    fn log_loss_clips_certain_mistakes() {
        let ll = log_loss(&[0.0, 1.0], &[1, 0]);
        // 1 - (1 - eps) is not exactly eps in floating point: clip the same way.
        let want = -(LOG_LOSS_EPS.ln() + (1.0 - (1.0 - LOG_LOSS_EPS)).ln()) / 2.0;
        assert!(ll.is_finite() && close(ll, want), "{ll} vs {want}");
    }

    #[test]
    fn undefined_values_are_nan_and_round_trip_through_json() {
        let m = compute(&[0.9, 0.8], &[1, 1]);
        assert!(m.roc_auc.is_nan() && close(m.accuracy, 1.0));
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"roc_auc\":null"), "{json}");
        let back: Metrics = serde_json::from_str(&json).unwrap();
        assert!(back.roc_auc.is_nan() && back.confusion == m.confusion);
        assert_eq!(compute(&[], &[]).n, 0);
    }

    #[test]
    fn roc_curve_steps_through_distinct_scores() {
        let pts = roc_curve(&[0.9, 0.8, 0.8, 0.1], &[1, 1, 0, 0]);
        assert_eq!(pts, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert!(roc_curve(&[0.5], &[1]).is_empty());
    }
}

//! How well a space separates the classes: leave-one-out k-NN accuracy (each point voted on
//! by its k nearest others) and the mean silhouette, both with Euclidean distances.

use crate::util::knn::{nearest, Points};
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;

/// Separation scores of one space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    /// Share of points whose k nearest others vote for their own class (0..=1).
    pub knn_accuracy: f64,
    /// Mean silhouette (-1..=1; near 1 = tight, well separated classes).
    pub silhouette: f64,
}

/// Scores of `points` labelled by `labels` (one per point, at least two classes).
pub(crate) fn separation<L: Eq + Hash>(
    points: &Points,
    labels: &[L],
    k: usize,
) -> Result<Separation> {
    let codes = encode(labels);
    let classes = codes.iter().max().map_or(0, |m| m + 1);
    let n = points.len();
    if labels.len() != n {
        bail!(
            "{n} points but {} labels; give one label per point",
            labels.len()
        );
    }
    if classes < 2 || k == 0 || k >= n {
        bail!("separation needs two classes and 1 <= k < points ({n} points, {classes} classes, k = {k})");
    }
    let rows: Vec<(bool, f64)> = (0..n)
        .into_par_iter()
        .map(|i| score_point(points, i, &codes, classes, k))
        .collect();
    let hits = rows.iter().filter(|r| r.0).count();
    let silhouette = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
    Ok(Separation {
        knn_accuracy: hits as f64 / n as f64,
        silhouette,
    })
}

/// Whether point `i`'s neighbours vote for its class, and its silhouette.
fn score_point(
    points: &Points,
    i: usize,
    codes: &[usize],
    classes: usize,
    k: usize,
) -> (bool, f64) {
    let d = points.dists_from(i);
    (
        vote(&d, i, codes, k) == codes[i],
        silhouette_of(&d, i, codes, classes),
    )
}

/// Labels as 0-based class codes, in order of first appearance.
fn encode<L: Eq + Hash>(labels: &[L]) -> Vec<usize> {
    let mut codes: HashMap<&L, usize> = HashMap::new();
    labels
        .iter()
        .map(|l| {
            let next = codes.len();
            *codes.entry(l).or_insert(next)
        })
        .collect()
}

/// The majority class among the `k` nearest others of `i`; ties go to the class whose
/// member is nearest.
fn vote(dists: &[f64], i: usize, codes: &[usize], k: usize) -> usize {
    let nn = nearest(dists, i, k);
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for &(j, _) in &nn {
        *counts.entry(codes[j]).or_default() += 1;
    }
    let best = counts.values().copied().max().unwrap_or(0);
    nn.iter()
        .map(|&(j, _)| codes[j])
        .find(|c| counts[c] == best)
        .unwrap_or(codes[i])
}

/// Silhouette of point `i`: (b - a) / max(a, b), a = mean distance to its own class,
/// b = smallest mean distance to another class; 0 for a class of one.
fn silhouette_of(dists: &[f64], i: usize, codes: &[usize], classes: usize) -> f64 {
    let mut sum = vec![0.0; classes];
    let mut count = vec![0usize; classes];
    for (j, &d) in dists.iter().enumerate().filter(|&(j, _)| j != i) {
        sum[codes[j]] += d;
        count[codes[j]] += 1;
    }
    let own = codes[i];
    if count[own] == 0 {
        return 0.0;
    }
    let a = sum[own] / count[own] as f64;
    let others = (0..classes).filter(|&c| c != own && count[c] > 0);
    let b = others
        .map(|c| sum[c] / count[c] as f64)
        .fold(f64::INFINITY, f64::min);
    let scale = a.max(b);
    if scale > 0.0 && b.is_finite() {
        (b - a) / scale
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of a 2-D projection.
    fn separation_2d<L: Eq + Hash>(
        pts: &[(f64, f64)],
        labels: &[L],
        k: usize,
    ) -> Result<Separation> {
        separation(&Points::from_2d(pts)?, labels, k)
    }

    #[test]
    fn perfectly_separated_pairs_score_as_computed_by_hand() {
        // Class A at x = 0 and 1, class B at x = 10 and 11.
        let pts = [(0.0, 0.0), (1.0, 0.0), (10.0, 0.0), (11.0, 0.0)];
        let s = separation_2d(&pts, &["a", "a", "b", "b"], 1).unwrap();
        assert_eq!(s.knn_accuracy, 1.0);
        // Point 0: a = 1, b = (10 + 11) / 2 = 10.5 -> 9.5 / 10.5; point 1: a = 1, b = 9.5 -> 8.5 / 9.5.
        let expected = (9.5 / 10.5 + 8.5 / 9.5) / 2.0;
        assert!((s.silhouette - expected).abs() < 1e-12, "{}", s.silhouette);
    }

    #[test]
    fn interleaved_classes_score_low_and_bad_input_is_refused() {
        let pts: Vec<(f64, f64)> = (0..40).map(|i| (f64::from(i), 0.0)).collect();
        let labels: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
        let s = separation_2d(&pts, &labels, 1).unwrap();
        assert_eq!(s.knn_accuracy, 0.0);
        assert!(s.silhouette < 0.05);
        assert!(separation_2d(&pts, &labels[1..], 1).is_err());
        assert!(separation_2d(&pts, &[0u8; 40], 1).is_err());
        assert!(separation_2d(&pts, &labels, 40).is_err());
    }

    #[test]
    fn original_space_vectors_are_scored_the_same_way() {
        let v: Vec<Vec<f32>> = vec![
            vec![0.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![9.0, 9.0, 9.0],
            vec![9.0, 9.0, 8.0],
        ];
        let points = Points::from_vectors(&v).unwrap();
        let s = separation(&points, &["cat", "cat", "dog", "dog"], 1).unwrap();
        assert_eq!(s.knn_accuracy, 1.0);
        assert!(s.silhouette > 0.8);
    }
}

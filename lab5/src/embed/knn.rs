//! Exact nearest neighbours and pairwise distances on row-major point sets, shared by the
//! projections (their neighbour graphs) and the separation scores.

use anyhow::{bail, Result};
use rayon::prelude::*;

/// Points as rows of equal length, stored flat (f64 for exact, order-stable sums).
#[derive(Debug, Clone)]
pub struct Points {
    data: Vec<f64>,
    dim: usize,
}

impl Points {
    /// Points from vectors, checked: at least one, equal lengths, finite values.
    pub fn from_vectors(vectors: &[Vec<f32>]) -> Result<Points> {
        let dim = vectors.first().map_or(0, Vec::len);
        if dim == 0 {
            bail!("no vectors to project; give at least one non-empty vector");
        }
        if let Some(i) = vectors.iter().position(|v| v.len() != dim) {
            bail!(
                "vector {i} has {} values, vector 0 has {dim}",
                vectors[i].len()
            );
        }
        let data: Vec<f64> = vectors.iter().flatten().map(|&v| f64::from(v)).collect();
        Points::checked(data, dim)
    }

    /// Points from 2-D coordinates.
    pub fn from_2d(points: &[(f64, f64)]) -> Result<Points> {
        if points.is_empty() {
            bail!("no points given");
        }
        Points::checked(points.iter().flat_map(|&(x, y)| [x, y]).collect(), 2)
    }

    fn checked(data: Vec<f64>, dim: usize) -> Result<Points> {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            bail!("point {} holds NaN or infinity", i / dim);
        }
        Ok(Points { data, dim })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there is no point (never true for checked points).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of each point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Euclidean distance between points `i` and `j`.
    pub fn dist(&self, i: usize, j: usize) -> f64 {
        let d2: f64 = self
            .row(i)
            .iter()
            .zip(self.row(j))
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        d2.sqrt()
    }

    /// Distances from point `i` to every point (itself included, at 0).
    pub fn dists_from(&self, i: usize) -> Vec<f64> {
        (0..self.len()).map(|j| self.dist(i, j)).collect()
    }
}

/// The `k` nearest other points of every point: `(index, distance)` by increasing distance,
/// ties broken by index (so results do not depend on thread timing).
pub fn neighbours(points: &Points, k: usize) -> Vec<Vec<(usize, f64)>> {
    (0..points.len())
        .into_par_iter()
        .map(|i| nearest(&points.dists_from(i), i, k))
        .collect()
}

/// The `k` smallest entries of `dists`, skipping `skip`, sorted by (distance, index).
pub fn nearest(dists: &[f64], skip: usize, k: usize) -> Vec<(usize, f64)> {
    let mut all: Vec<(usize, f64)> = dists
        .iter()
        .copied()
        .enumerate()
        .filter(|&(j, _)| j != skip)
        .collect();
    let k = k.min(all.len());
    let by = |a: &(usize, f64), b: &(usize, f64)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
    if k > 0 && k < all.len() {
        all.select_nth_unstable_by(k - 1, by);
    }
    all.truncate(k);
    all.sort_by(by);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_sorted_exclude_self_and_break_ties_by_index() {
        let p = Points::from_2d(&[(0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (5.0, 0.0)]).unwrap();
        let nn = neighbours(&p, 2);
        assert_eq!(nn[0], vec![(1, 1.0), (2, 1.0)]);
        assert_eq!(nn[3][0], (1, 4.0));
        assert!(Points::from_vectors(&[vec![1.0], vec![1.0, 2.0]]).is_err());
        assert!(Points::from_vectors(&[vec![f32::NAN]]).is_err());
    }
}

//! Exact nearest neighbours and pairwise distances on row-major point sets: the one
//! nearest-neighbour routine of the lab. The label check asks it for the cosine
//! neighbours of the backbone features (the Euclidean neighbours of the unit-length rows,
//! [`Points::unit`]); the embeddings ask it for the neighbour graphs of t-SNE and UMAP and
//! for the separation scores.

use anyhow::{bail, Result};
use rayon::prelude::*;

/// Points as rows of equal length, stored flat (f64 for exact, order-stable sums).
#[derive(Debug, Clone)]
pub(crate) struct Points {
    data: Vec<f64>,
    dim: usize,
}

impl Points {
    /// Points from vectors, checked: at least one, equal lengths, finite values.
    pub(crate) fn from_vectors(vectors: &[Vec<f32>]) -> Result<Points> {
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
    pub(crate) fn from_2d(points: &[(f64, f64)]) -> Result<Points> {
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

    /// The points scaled to unit length (a zero point stays zero). Their Euclidean
    /// neighbours are the cosine-similarity neighbours of the original points, since
    /// `|a - b|^2 = 2 - 2 cos(a, b)` for unit vectors.
    pub(crate) fn unit(mut self) -> Points {
        for row in self.data.chunks_mut(self.dim) {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        self
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Dimension of each point.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Point `i`.
    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Euclidean distance between points `i` and `j`.
    pub(crate) fn dist(&self, i: usize, j: usize) -> f64 {
        let d2: f64 = self
            .row(i)
            .iter()
            .zip(self.row(j))
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        d2.sqrt()
    }

    /// Distances from point `i` to every point (itself included, at 0), bit for bit
    /// those of [`Points::dist`]. Point `i` is compared with [`LANES`] points at once:
    /// independent sums keep the processor busy while each one still adds its squares in
    /// dimension order.
    pub(crate) fn dists_from(&self, i: usize) -> Vec<f64> {
        let (a, dim) = (self.row(i), self.dim);
        let mut out = Vec::with_capacity(self.len());
        let blocks = self.data.chunks_exact(dim * LANES);
        let tail = blocks.len() * LANES;
        for block in blocks {
            let rows: [&[f64]; LANES] = std::array::from_fn(|l| &block[l * dim..(l + 1) * dim]);
            let mut sums = [0.0f64; LANES];
            for (d, x) in a.iter().enumerate() {
                for (s, row) in sums.iter_mut().zip(&rows) {
                    let t = x - row[d];
                    *s += t * t;
                }
            }
            out.extend(sums.map(f64::sqrt));
        }
        out.extend((tail..self.len()).map(|j| self.dist(i, j)));
        out
    }
}

/// Points compared with one point at once in [`Points::dists_from`].
const LANES: usize = 8;

/// The `k` nearest other points of every point: `(index, distance)` by increasing distance,
/// ties broken by index (so results do not depend on thread timing).
pub(crate) fn neighbours(points: &Points, k: usize) -> Vec<Vec<(usize, f64)>> {
    (0..points.len())
        .into_par_iter()
        .map(|i| nearest(&points.dists_from(i), i, k))
        .collect()
}

/// The `k` smallest entries of `dists`, skipping `skip`, sorted by (distance, index).
pub(crate) fn nearest(dists: &[f64], skip: usize, k: usize) -> Vec<(usize, f64)> {
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

    /// The label check's neighbours: by cosine similarity, computed here directly.
    fn cosine_neighbours(v: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter()
                .zip(b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum()
        };
        let cos =
            |i: usize, j: usize| dot(&v[i], &v[j]) / (dot(&v[i], &v[i]) * dot(&v[j], &v[j])).sqrt();
        (0..v.len())
            .map(|i| {
                let mut others: Vec<usize> = (0..v.len()).filter(|&j| j != i).collect();
                others.sort_by(|&a, &b| cos(i, b).total_cmp(&cos(i, a)));
                others.truncate(k);
                others
            })
            .collect()
    }

    #[test]
    fn euclidean_neighbours_of_unit_rows_are_the_cosine_neighbours() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        let v: Vec<Vec<f32>> = (0..120)
            .map(|_| (0..24).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        let unit = Points::from_vectors(&v).unwrap().unit();
        let found: Vec<Vec<usize>> = neighbours(&unit, 10)
            .into_iter()
            .map(|nn| nn.into_iter().map(|(j, _)| j).collect())
            .collect();
        assert_eq!(found, cosine_neighbours(&v, 10));
        let zero = Points::from_2d(&[(0.0, 0.0), (3.0, 4.0)]).unwrap().unit();
        assert_eq!(
            (zero.row(0), zero.row(1)),
            (&[0.0, 0.0][..], &[0.6, 0.8][..])
        );
    }

    #[test]
    fn distance_rows_equal_pairwise_distances_bit_for_bit() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(3);
        let v: Vec<Vec<f32>> = (0..2 * LANES + 3)
            .map(|_| (0..13).map(|_| rng.random_range(-5.0f32..5.0)).collect())
            .collect();
        let p = Points::from_vectors(&v).unwrap();
        for i in 0..p.len() {
            let row: Vec<u64> = p.dists_from(i).iter().map(|d| d.to_bits()).collect();
            let pairwise: Vec<u64> = (0..p.len()).map(|j| p.dist(i, j).to_bits()).collect();
            assert_eq!(row, pairwise, "point {i}");
        }
    }
}

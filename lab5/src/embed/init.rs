//! Starting layouts for the projections: the first two principal components (power
//! iteration from a seeded start), which keep the global shape and make runs repeatable.

use crate::util::knn::Points;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Power-iteration steps per component.
const POWER_STEPS: usize = 200;

/// The points projected on their first two principal components, as `(x, y)`.
pub(crate) fn pca_2d(points: &Points, seed: u64) -> Vec<(f64, f64)> {
    let centred = centre(points);
    let cov = covariance(&centred, points.dim());
    let mut rng = StdRng::seed_from_u64(seed);
    let first = top_eigenvector(&cov, points.dim(), &[], &mut rng);
    let second = top_eigenvector(&cov, points.dim(), std::slice::from_ref(&first), &mut rng);
    let project = |row: &[f64], v: &[f64]| row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    centred
        .iter()
        .map(|r| (project(r, &first), project(r, &second)))
        .collect()
}

fn centre(points: &Points) -> Vec<Vec<f64>> {
    let (n, d) = (points.len(), points.dim());
    let mut mean = vec![0.0; d];
    for i in 0..n {
        mean.iter_mut()
            .zip(points.row(i))
            .for_each(|(m, v)| *m += v / n as f64);
    }
    (0..n)
        .map(|i| {
            points
                .row(i)
                .iter()
                .zip(&mean)
                .map(|(v, m)| v - m)
                .collect()
        })
        .collect()
}

/// The `d` x `d` covariance (row-major) of centred rows.
fn covariance(rows: &[Vec<f64>], d: usize) -> Vec<f64> {
    let mut cov = vec![0.0; d * d];
    for r in rows {
        for a in 0..d {
            let ra = r[a];
            cov[a * d..(a + 1) * d]
                .iter_mut()
                .zip(r)
                .for_each(|(c, rb)| *c += ra * rb);
        }
    }
    let n = rows.len().max(1) as f64;
    cov.iter_mut().for_each(|c| *c /= n);
    cov
}

/// The leading eigenvector of `cov` orthogonal to `found`, sign fixed so its largest entry
/// is positive (a zero vector when nothing is left, e.g. 1-D data).
fn top_eigenvector(cov: &[f64], d: usize, found: &[Vec<f64>], rng: &mut StdRng) -> Vec<f64> {
    let mut v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    for _ in 0..POWER_STEPS {
        orthogonalise(&mut v, found);
        let mut next = mat_vec(cov, &v);
        orthogonalise(&mut next, found);
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < f64::EPSILON {
            return vec![0.0; d];
        }
        v = next.into_iter().map(|x| x / norm).collect();
    }
    let biggest = v
        .iter()
        .copied()
        .fold(0.0, |m: f64, x| if x.abs() > m.abs() { x } else { m });
    if biggest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    v
}

/// The square row-major matrix `m` times `v`.
fn mat_vec(m: &[f64], v: &[f64]) -> Vec<f64> {
    m.chunks(v.len())
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn orthogonalise(v: &mut [f64], found: &[Vec<f64>]) {
    for u in found {
        let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
        v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
    }
}

/// `layout` scaled so that its first coordinate has standard deviation `std`.
pub(crate) fn scaled_to_std(layout: &[(f64, f64)], std: f64) -> Vec<(f64, f64)> {
    let n = layout.len().max(1) as f64;
    let mean = layout.iter().map(|p| p.0).sum::<f64>() / n;
    let sd = (layout.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let f = if sd > 0.0 { std / sd } else { 1.0 };
    layout.iter().map(|&(x, y)| (x * f, y * f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_long_axis() {
        let v: Vec<Vec<f32>> = (0..50)
            .map(|i| vec![i as f32, (i % 3) as f32 * 0.1, 1.0])
            .collect();
        let pts = Points::from_vectors(&v).unwrap();
        let l = pca_2d(&pts, 7);
        let spread =
            |f: fn(&(f64, f64)) -> f64| l.iter().map(f).fold(0.0, |m: f64, x| m.max(x.abs()));
        assert!(spread(|p| p.0) > 20.0 && spread(|p| p.1) < 1.0);
        assert_eq!(l, pca_2d(&pts, 7));
    }
}

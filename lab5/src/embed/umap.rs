//! UMAP to 2-D. The fuzzy neighbour graph and the curve parameters come from `umap-rs`;
//! the layout is then optimised here with umap-learn's stochastic gradient descent,
//! single-threaded with a seeded generator: `umap-rs`'s own optimiser samples from an
//! unseeded thread-local generator in parallel, so its maps change from run to run.

use super::init::pca_2d;
use crate::config::Embed;
use crate::util::knn::{neighbours, Points};
use anyhow::{bail, Result};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use umap_rs::{GraphParams, ManifoldParams, Umap, UmapConfig};

/// Fewest points UMAP is run on.
const MIN_POINTS: usize = 5;
/// Side of the box the starting layout is scaled into (as umap-learn does).
const INIT_SPAN: f64 = 10.0;
/// Negative samples per positive one.
const NEGATIVE_RATE: f64 = 5.0;
/// Gradient clip, per coordinate.
const CLIP: f32 = 4.0;
/// Small constant keeping the repulsion finite at distance 0.
const REPULSION_EPS: f32 = 0.001;
/// Spread of the embedded points (umap-learn's default).
const SPREAD: f32 = 1.0;

/// The vectors mapped to 2-D with UMAP (`embed.umap_*` settings, `embed.seed`).
pub(crate) fn umap(vectors: &[Vec<f32>], cfg: &Embed) -> Result<Vec<(f64, f64)>> {
    let points = Points::from_vectors(vectors)?;
    let n = points.len();
    if n < MIN_POINTS {
        bail!("UMAP needs at least {MIN_POINTS} points, got {n}");
    }
    let k = cfg.umap_neighbors.clamp(2, n);
    let graph = Graph::learn(&points, k, cfg.umap_min_dist as f32)?;
    let mut layout = Layout::start(&points, cfg.seed);
    layout.optimise(&graph, cfg.umap_epochs, cfg.seed);
    Ok(layout
        .xy
        .chunks(2)
        .map(|c| (f64::from(c[0]), f64::from(c[1])))
        .collect())
}

/// The weighted edges of the fuzzy graph and the curve `1 / (1 + a d^(2b))`.
struct Graph {
    edges: Vec<(usize, usize, f32)>,
    a: f32,
    b: f32,
}

impl Graph {
    /// Builds the graph with `umap-rs` from exact `k`-neighbourhoods.
    fn learn(points: &Points, k: usize, min_dist: f32) -> Result<Graph> {
        let (idx, dist) = knn_arrays(points, k)?;
        let data = Array2::from_shape_fn((points.len(), points.dim()), |(i, d)| {
            points.row(i)[d] as f32
        });
        let umap = Umap::new(umap_config(k, min_dist));
        let learned = umap.learn_manifold(data.view(), idx.view(), dist.view());
        let (a, b) = learned.curve_params();
        let mut edges = Vec::new();
        for (i, row) in learned.graph().outer_iterator().enumerate() {
            edges.extend(row.iter().map(|(j, &w)| (i, j, w)));
        }
        Ok(Graph { edges, a, b })
    }
}

/// umap-rs settings: 2-D, `k` neighbours, `min_dist`, the rest umap-learn's defaults.
fn umap_config(k: usize, min_dist: f32) -> UmapConfig {
    let manifold = ManifoldParams {
        min_dist,
        spread: SPREAD,
        ..Default::default()
    };
    let graph = GraphParams {
        n_neighbors: k,
        ..Default::default()
    };
    UmapConfig {
        n_components: 2,
        manifold,
        graph,
        ..Default::default()
    }
}

/// Neighbour indices and distances, `(n, k)`, each row starting with the point itself at
/// distance 0 (umap-learn counts it among the `k`).
fn knn_arrays(points: &Points, k: usize) -> Result<(Array2<u32>, Array2<f32>)> {
    let n = points.len();
    let mut idx = Array2::<u32>::zeros((n, k));
    let mut dist = Array2::<f32>::zeros((n, k));
    for (i, row) in neighbours(points, k - 1).into_iter().enumerate() {
        idx[(i, 0)] = u32::try_from(i)?;
        for (c, (j, d)) in row.into_iter().enumerate() {
            idx[(i, c + 1)] = u32::try_from(j)?;
            dist[(i, c + 1)] = d as f32;
        }
    }
    Ok((idx, dist))
}

/// The 2-D layout being optimised, flat `[x0, y0, x1, y1, ...]`.
struct Layout {
    xy: Vec<f32>,
}

impl Layout {
    /// PCA of the points scaled into a `[0, INIT_SPAN]` box, plus seeded jitter that
    /// separates duplicates.
    fn start(points: &Points, seed: u64) -> Layout {
        let pca = pca_2d(points, seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let (xs, ys): (Vec<f64>, Vec<f64>) = pca.into_iter().unzip();
        let (xs, ys) = (to_box(&xs), to_box(&ys));
        let jitter = INIT_SPAN * 1e-5;
        let mut xy = Vec::with_capacity(xs.len() * 2);
        for (x, y) in xs.into_iter().zip(ys) {
            xy.push((x + rng.random_range(-jitter..jitter)) as f32);
            xy.push((y + rng.random_range(-jitter..jitter)) as f32);
        }
        Layout { xy }
    }
}

/// `v` scaled linearly onto `[0, INIT_SPAN]` (constant values go to the middle).
fn to_box(v: &[f64]) -> Vec<f64> {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    v.iter()
        .map(|x| {
            if span > 0.0 {
                INIT_SPAN * (x - lo) / span
            } else {
                INIT_SPAN / 2.0
            }
        })
        .collect()
}

/// When each kept edge is next sampled, and how often (in epochs).
struct Schedule {
    every: Vec<f64>,
    next: Vec<f64>,
    neg_every: Vec<f64>,
    neg_next: Vec<f64>,
}

impl Graph {
    /// Edges of weight at least `max / epochs` (lighter ones would never be sampled),
    /// with their sampling schedule: an edge of weight w is sampled every `max / w` epochs.
    fn schedule(&self, epochs: usize) -> (Vec<(usize, usize)>, Schedule) {
        let max = self.edges.iter().map(|e| e.2).fold(0.0, f32::max);
        let floor = max / epochs as f32;
        let kept: Vec<_> = self
            .edges
            .iter()
            .filter(|e| e.2 > 0.0 && e.2 >= floor)
            .collect();
        let every: Vec<f64> = kept
            .iter()
            .map(|e| f64::from(max) / f64::from(e.2))
            .collect();
        let neg_every: Vec<f64> = every.iter().map(|e| e / NEGATIVE_RATE).collect();
        let pairs = kept.iter().map(|e| (e.0, e.1)).collect();
        let schedule = Schedule {
            next: every.clone(),
            every,
            neg_next: neg_every.clone(),
            neg_every,
        };
        (pairs, schedule)
    }
}

impl Layout {
    /// Runs `epochs` epochs of umap-learn's SGD with a learning rate falling from 1 to 0.
    fn optimise(&mut self, graph: &Graph, epochs: usize, seed: u64) {
        let (pairs, mut s) = graph.schedule(epochs);
        let n = self.xy.len() / 2;
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
        for epoch in 0..epochs {
            let (now, alpha) = (epoch as f64, 1.0 - epoch as f32 / epochs as f32);
            for (i, &(head, tail)) in pairs.iter().enumerate() {
                if s.next[i] > now {
                    continue;
                }
                self.attract(head, tail, graph, alpha);
                s.next[i] += s.every[i];
                let negatives = ((now - s.neg_next[i]) / s.neg_every[i]).max(0.0) as usize;
                for _ in 0..negatives {
                    self.repel(head, rng.random_range(0..n), graph, alpha);
                }
                s.neg_next[i] += negatives as f64 * s.neg_every[i];
            }
        }
    }

    fn diff(&self, i: usize, j: usize) -> [f32; 2] {
        [
            self.xy[2 * i] - self.xy[2 * j],
            self.xy[2 * i + 1] - self.xy[2 * j + 1],
        ]
    }

    /// Pulls `head` and `tail` together along the curve's attractive gradient.
    fn attract(&mut self, head: usize, tail: usize, g: &Graph, alpha: f32) {
        let d = self.diff(head, tail);
        let d2 = d[0] * d[0] + d[1] * d[1];
        if d2 <= 0.0 {
            return;
        }
        let coeff = -2.0 * g.a * g.b * d2.powf(g.b - 1.0) / (g.a * d2.powf(g.b) + 1.0);
        for (c, dc) in d.iter().enumerate() {
            let step = (coeff * dc).clamp(-CLIP, CLIP) * alpha;
            self.xy[2 * head + c] += step;
            self.xy[2 * tail + c] -= step;
        }
    }

    /// Pushes `head` away from `other` (a random point) along the repulsive gradient.
    fn repel(&mut self, head: usize, other: usize, g: &Graph, alpha: f32) {
        if head == other {
            return;
        }
        let d = self.diff(head, other);
        let d2 = d[0] * d[0] + d[1] * d[1];
        if d2 <= 0.0 {
            return;
        }
        let coeff = 2.0 * g.b / ((REPULSION_EPS + d2) * (g.a * d2.powf(g.b) + 1.0));
        for (c, dc) in d.iter().enumerate() {
            self.xy[2 * head + c] += (coeff * dc).clamp(-CLIP, CLIP) * alpha;
        }
    }
}

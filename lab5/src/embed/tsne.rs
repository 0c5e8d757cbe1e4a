//! t-SNE to 2-D with the `bhtsne` crate (Barnes-Hut), fed with exact neighbours and a PCA
//! start so the same vectors and seed give the same map.

use super::init::{pca_2d, scaled_to_std};
use crate::config::Embed;
use crate::util::knn::{neighbours, Points};
use anyhow::{bail, Result};
use bhtsne::{tSNE, Neighbor};

/// Standard deviation of the starting layout (as in openTSNE: tiny, so early
/// exaggeration sorts the clusters out).
const INIT_STD: f64 = 1e-4;
/// Fewest points t-SNE is run on.
const MIN_POINTS: usize = 5;
/// Neighbours per point, in units of the perplexity (the usual 3).
const NEIGHBOURS_PER_PERPLEXITY: f64 = 3.0;

/// The vectors mapped to 2-D with t-SNE (`embed.tsne_*` settings, `embed.seed`).
///
/// The perplexity is lowered to `(n - 1) / 3` when there are too few points for it.
pub(crate) fn tsne(vectors: &[Vec<f32>], cfg: &Embed) -> Result<Vec<(f64, f64)>> {
    let points = Points::from_vectors(vectors)?;
    let n = points.len();
    if n < MIN_POINTS {
        bail!("t-SNE needs at least {MIN_POINTS} points, got {n}");
    }
    let perplexity = cfg
        .tsne_perplexity
        .min((n - 1) as f64 / NEIGHBOURS_PER_PERPLEXITY)
        .floor()
        .max(1.0);
    let graph = neighbour_graph(&points, perplexity);
    let start = scaled_to_std(&pca_2d(&points, cfg.seed), INIT_STD);
    let init: Vec<f64> = start.into_iter().flat_map(|(x, y)| [x, y]).collect();
    // One thread: bhtsne's parallel sums change in the last bits between runs, and the
    // optimisation amplifies that; a single thread makes the map repeat exactly.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let flat = pool.install(|| fit(&points, perplexity, &graph, init, cfg));
    Ok(flat.chunks(2).map(|c| (c[0], c[1])).collect())
}

/// The exact `3 * perplexity` nearest neighbours of every point, as bhtsne takes them.
fn neighbour_graph(points: &Points, perplexity: f64) -> Vec<Vec<Neighbor<f64>>> {
    let k = ((NEIGHBOURS_PER_PERPLEXITY * perplexity) as usize).min(points.len() - 1);
    let to_neighbour = |(index, distance)| Neighbor { index, distance };
    neighbours(points, k)
        .into_iter()
        .map(|row| row.into_iter().map(to_neighbour).collect())
        .collect()
}

/// Runs bhtsne (Barnes-Hut on the given neighbours, or exact when theta is 0).
fn fit(
    points: &Points,
    perplexity: f64,
    graph: &[Vec<Neighbor<f64>>],
    init: Vec<f64>,
    cfg: &Embed,
) -> Vec<f64> {
    let ids: Vec<usize> = (0..points.len()).collect();
    let mut t: tSNE<f64, usize, 2> = tSNE::new(&ids);
    t.perplexity(perplexity)
        .epochs(cfg.tsne_epochs)
        .initial_embedding(init);
    if cfg.tsne_theta > 0.0 {
        t.barnes_hut_with_neighbors(cfg.tsne_theta, graph);
    } else {
        t.exact(|&a, &b| points.dist(a, b));
    }
    t.embedding()
}

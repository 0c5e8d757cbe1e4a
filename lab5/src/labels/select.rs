//! Which photos a labelling round asks about (active learning's query strategies):
//!
//! - `uncertainty`: the photos whose proposal is least sure, `p(dog)` closest to 0.5
//!   (margin sampling; with two classes the same as least confidence and entropy);
//! - `random`: a uniform sample, the baseline every strategy is measured against;
//! - `diverse`: among the `k * label.diverse_pool` most uncertain photos, `k` far apart
//!   in feature space (greedy farthest-point, cosine distance, starting from the most
//!   uncertain), so one round does not spend its questions on ten near-copies.
//!
//! Ties (equal margins, as with the `none` prior before any label, where every photo has
//! p = 0.5) are broken by a seeded shuffle, so a round is random among equals and
//! repeatable.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tch::{Kind, Tensor};

/// A query strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Proposal closest to p = 0.5.
    Uncertainty,
    /// Uniformly at random.
    Random,
    /// Far apart among the most uncertain.
    Diverse,
}

impl Strategy {
    /// `uncertainty`, `random` or `diverse` (the config's names).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Uncertainty => "uncertainty",
            Strategy::Random => "random",
            Strategy::Diverse => "diverse",
        }
    }

    /// Parses a config name.
    ///
    /// # Errors
    /// Not one of the three names.
    pub fn parse(s: &str) -> Result<Strategy> {
        let all = [Strategy::Uncertainty, Strategy::Random, Strategy::Diverse];
        match all.into_iter().find(|x| x.name() == s.trim()) {
            Some(x) => Ok(x),
            None => bail!("strategy {s:?} is not uncertainty, random or diverse"),
        }
    }
}

/// What a round picks from.
pub(crate) struct Pool<'a> {
    /// Rows that may be asked about (not labelled yet).
    pub candidates: &'a [usize],
    /// `p(dog)` of every row.
    pub p_dog: &'a [f64],
    /// `(N, F)` features of every row (for `diverse`).
    pub features: &'a Tensor,
}

/// The `k` rows of `pool` that `strategy` asks about next, in the order picked.
pub(crate) fn pick(
    strategy: Strategy,
    pool: &Pool,
    k: usize,
    diverse_pool: usize,
    rng: &mut StdRng,
) -> Vec<usize> {
    let mut rows = pool.candidates.to_vec();
    rows.shuffle(rng);
    let margin = |r: &usize| (pool.p_dog[*r] - 0.5).abs();
    match strategy {
        Strategy::Random => rows.truncate(k),
        Strategy::Uncertainty => {
            rows.sort_by(|a, b| margin(a).total_cmp(&margin(b)));
            rows.truncate(k);
        }
        Strategy::Diverse => {
            rows.sort_by(|a, b| margin(a).total_cmp(&margin(b)));
            rows.truncate(k.saturating_mul(diverse_pool));
            rows = farthest_first(&rows, pool.features, k);
        }
    }
    rows
}

/// `k` of `rows` by greedy farthest-point selection (cosine distance of `features`),
/// starting from the first.
fn farthest_first(rows: &[usize], features: &Tensor, k: usize) -> Vec<usize> {
    if rows.len() <= k {
        return rows.to_vec();
    }
    let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
    let f = features.index_select(0, &index).to_kind(Kind::Double);
    let unit = &f / f.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    let similarity = unit.mm(&unit.tr());
    let mut nearest: Vec<f64> = vec![f64::INFINITY; rows.len()];
    let mut chosen = vec![0usize];
    while chosen.len() < k {
        let last = *chosen.last().unwrap_or(&0) as i64;
        let sim = Vec::<f64>::try_from(similarity.get(last)).unwrap_or_default();
        for (d, s) in nearest.iter_mut().zip(sim) {
            *d = d.min(1.0 - s);
        }
        let next = (0..rows.len())
            .filter(|i| !chosen.contains(i))
            .max_by(|&a, &b| nearest[a].total_cmp(&nearest[b]).then(b.cmp(&a)));
        match next {
            Some(i) => chosen.push(i),
            None => break,
        }
    }
    chosen.into_iter().map(|i| rows[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn each_strategy_picks_what_it_says() {
        let p_dog = [0.9, 0.53, 0.1, 0.45, 0.5, 0.49, 0.99];
        let candidates: Vec<usize> = vec![0, 1, 2, 3, 5, 6]; // 4 is labelled already
                                                             // Rows 1 and 5 point the same way; row 3 elsewhere.
        let rows: [[f32; 2]; 7] = [
            [1., 0.],
            [1., 0.],
            [0., 1.],
            [0., 1.],
            [1., 1.],
            [1., 0.05],
            [1., 1.],
        ];
        let features = Tensor::from_slice(rows.as_flattened()).view([7, 2]);
        let pool = Pool {
            candidates: &candidates,
            p_dog: &p_dog,
            features: &features,
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick(Strategy::Uncertainty, &pool, 2, 3, &mut rng), [5, 1]);
        let diverse = pick(Strategy::Diverse, &pool, 2, 2, &mut rng);
        assert_eq!(
            diverse,
            [5, 3],
            "the second pick is the far one among 5, 1, 3, 0"
        );
        let random = pick(Strategy::Random, &pool, 3, 3, &mut rng);
        assert_eq!(random.len(), 3);
        assert!(random.iter().all(|r| candidates.contains(r)));
        let again = pick(Strategy::Random, &pool, 3, 3, &mut StdRng::seed_from_u64(1));
        let first = pick(Strategy::Random, &pool, 3, 3, &mut StdRng::seed_from_u64(1));
        assert_eq!(again, first, "seeded");
        assert!(Strategy::parse("smart").is_err());
    }
}

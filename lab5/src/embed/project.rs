//! Both 2-D maps of one embedding set, timed, with the separation scores of every space,
//! saved together so later steps (charts, comparison, report) read them from disk.

use super::separation::{separation, Separation};
use super::{tsne, umap};
use crate::config::Embed;
use crate::plot::Table;
use crate::util::knn::Points;
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use polars::prelude::{DataFrame, NamedFrom, Series};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The t-SNE and UMAP maps of a set of vectors, in the vectors' order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projections {
    /// t-SNE coordinates.
    pub tsne: Vec<(f64, f64)>,
    /// UMAP coordinates.
    pub umap: Vec<(f64, f64)>,
    /// Seconds t-SNE took.
    pub tsne_secs: f64,
    /// Seconds UMAP took.
    pub umap_secs: f64,
}

/// Separation scores of one space ("original 128-d", "t-SNE", "UMAP").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceScore {
    /// Which space.
    pub space: String,
    /// Its scores.
    pub scores: Separation,
}

/// Runs t-SNE, then UMAP, on `vectors` with the `embed` settings.
pub(crate) fn project(vectors: &[Vec<f32>], cfg: &Embed) -> Result<Projections> {
    let start = Instant::now();
    let tsne = tsne(vectors, cfg).context("t-SNE failed")?;
    let tsne_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let umap = umap(vectors, cfg).context("UMAP failed")?;
    Ok(Projections {
        tsne,
        umap,
        tsne_secs,
        umap_secs: start.elapsed().as_secs_f64(),
    })
}

impl Projections {
    /// k-NN accuracy and silhouette of the original vectors and of both maps.
    pub(crate) fn scores(
        &self,
        vectors: &[Vec<f32>],
        labels: &[String],
        k: usize,
    ) -> Result<Vec<SpaceScore>> {
        if self.tsne.len() != vectors.len() || self.umap.len() != vectors.len() {
            let (maps, n) = (self.tsne.len(), vectors.len());
            bail!("the maps have {maps} points for {n} vectors; project these vectors again");
        }
        let original = Points::from_vectors(vectors)?;
        let spaces = [
            (format!("original {}-d", original.dim()), original),
            ("t-SNE 2-d".to_string(), Points::from_2d(&self.tsne)?),
            ("UMAP 2-d".to_string(), Points::from_2d(&self.umap)?),
        ];
        let score = |(space, pts): (String, Points)| {
            Ok(SpaceScore {
                scores: separation(&pts, labels, k)?,
                space,
            })
        };
        spaces.into_iter().map(score).collect()
    }

    /// Writes the maps as JSON (temp file + rename).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        write_atomic(
            path,
            &serde_json::to_vec(self).context("cannot serialise the maps")?,
        )
    }

    /// Reads maps written by [`Projections::save`].
    pub(crate) fn load(path: &Path) -> Result<Projections> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read {}; run `lab5 embed` first", path.display()))?;
        let p: Projections = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a projections file; delete it and embed again",
                path.display()
            )
        })?;
        if p.tsne.len() != p.umap.len() {
            bail!(
                "{} holds maps of different sizes; delete it and embed again",
                path.display()
            );
        }
        Ok(p)
    }
}

/// The scores as a table: space, k-NN accuracy, silhouette.
pub(crate) fn scores_table(scores: &[SpaceScore]) -> Result<Table> {
    let space: Vec<&str> = scores.iter().map(|s| s.space.as_str()).collect();
    let knn: Vec<f64> = scores.iter().map(|s| s.scores.knn_accuracy).collect();
    let sil: Vec<f64> = scores.iter().map(|s| s.scores.silhouette).collect();
    let columns = vec![
        Series::new("space".into(), space).into(),
        Series::new("knn_accuracy".into(), knn).into(),
        Series::new("silhouette".into(), sil).into(),
    ];
    Ok(Table(DataFrame::new_infer_height(columns)?))
}

//! The embed step of one run folder: read `embeddings.json` (written by the trainer's
//! embed step), map it to 2-D, score the separation, and save maps, scores and scatter
//! charts next to it.

use super::project::{project, scores_table, Projections, SpaceScore};
use super::set::EmbeddingSet;
use crate::config::Embed;
use crate::plot::{scatter, Figure, Table};
use crate::util::{csv_io, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The embeddings of a run, inside its folder.
pub const EMBEDDINGS_FILE: &str = "embeddings.json";
/// The t-SNE and UMAP maps, inside the run folder.
pub(crate) const PROJECTIONS_FILE: &str = "projections.json";
/// The separation scores as JSON, inside the run folder.
pub(crate) const SEPARATION_FILE: &str = "separation.json";
/// The separation scores as CSV, inside the run folder.
pub(crate) const SEPARATION_CSV: &str = "separation.csv";
/// Folder of the run's charts.
pub(crate) const FIGURES_DIR: &str = "figures";

/// What the embed step produced for one run.
#[derive(Debug, Clone)]
pub struct RunMaps {
    /// The embeddings read.
    pub set: EmbeddingSet,
    /// Their maps.
    pub maps: Projections,
    /// Separation in the original space and in both maps.
    pub scores: Vec<SpaceScore>,
    /// Stems (no extension) of the charts written.
    pub figures: Vec<PathBuf>,
}

/// Maps the run's embeddings to 2-D, scores them with k = `embed.knn_k`, and writes
/// `projections.json`, `separation.{json,csv}` and `figures/{tsne,umap}_{class,breed}.{svg,png}`.
pub fn embed_run(run_dir: &Path, cfg: &Embed) -> Result<RunMaps> {
    let set = EmbeddingSet::load(&run_dir.join(EMBEDDINGS_FILE))?;
    let vectors = set.vectors();
    let maps = project(&vectors, cfg)?;
    let scores = maps.scores(&vectors, &set.labels(), cfg.knn_k)?;
    maps.save(&run_dir.join(PROJECTIONS_FILE))?;
    save_scores(run_dir, &scores)?;
    let mut figures = Vec::new();
    for (name, fig) in map_figures(&set, &maps)? {
        let stem = run_dir.join(FIGURES_DIR).join(name);
        fig.save(&stem)?;
        figures.push(stem);
    }
    Ok(RunMaps {
        set,
        maps,
        scores,
        figures,
    })
}

fn save_scores(run_dir: &Path, scores: &[SpaceScore]) -> Result<()> {
    let json =
        serde_json::to_vec_pretty(scores).context("cannot serialise the separation scores")?;
    write_atomic(&run_dir.join(SEPARATION_FILE), &json)?;
    let lines: Vec<ScoreLine> = scores.iter().map(ScoreLine::from).collect();
    csv_io::write_rows(&run_dir.join(SEPARATION_CSV), &lines)
}

/// One line of `separation.csv`: a space and its scores, with six decimals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ScoreLine {
    space: String,
    #[serde(serialize_with = "csv_io::fixed::<6, _>")]
    knn_accuracy: f64,
    #[serde(serialize_with = "csv_io::fixed::<6, _>")]
    silhouette: f64,
}

impl From<&SpaceScore> for ScoreLine {
    fn from(s: &SpaceScore) -> Self {
        ScoreLine {
            space: s.space.clone(),
            knn_accuracy: s.scores.knn_accuracy,
            silhouette: s.scores.silhouette,
        }
    }
}

/// The four scatter charts (t-SNE and UMAP, by class and by breed), named by file stem.
pub(crate) fn map_figures(set: &EmbeddingSet, maps: &Projections) -> Result<Vec<(String, Figure)>> {
    let (labels, breeds) = (set.labels(), set.breeds());
    let chart = |points: &[(f64, f64)], groups: &[String], method: &str, by: &str| {
        let title = format!("{}: {method} of the embeddings by {by}", set.model);
        scatter(points, groups, &title)
    };
    Ok(vec![
        (
            "tsne_class".into(),
            chart(&maps.tsne, &labels, "t-SNE", "class")?,
        ),
        (
            "umap_class".into(),
            chart(&maps.umap, &labels, "UMAP", "class")?,
        ),
        (
            "tsne_breed".into(),
            chart(&maps.tsne, &breeds, "t-SNE", "breed")?,
        ),
        (
            "umap_breed".into(),
            chart(&maps.umap, &breeds, "UMAP", "breed")?,
        ),
    ])
}

impl RunMaps {
    /// The separation scores as a table.
    pub fn table(&self) -> Result<Table> {
        scores_table(&self.scores)
    }
}

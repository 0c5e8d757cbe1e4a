//! Embeddings in 2-D: the penultimate-layer vectors of a run ([`EmbeddingSet`]), their
//! t-SNE and UMAP maps, and how well each space separates the classes ([`Separation`]).
//!
//! Everything here takes plain vectors and labels, so it does not depend on the models.

mod init;
mod project;
mod run;
pub mod separation;
mod set;
pub mod tsne;
pub mod umap;

pub use project::{project, scores_table, Projections, SpaceScore};
pub use run::{
    embed_run, map_figures, RunMaps, EMBEDDINGS_FILE, FIGURES_DIR, PROJECTIONS_FILE,
    SEPARATION_CSV, SEPARATION_FILE,
};
pub use separation::{separation_2d, separation_nd, Separation};
pub use set::{EmbeddingRecord, EmbeddingSet};
pub use tsne::tsne;
pub use umap::umap;

#[cfg(test)]
mod tests;

//! Embeddings in 2-D: the penultimate-layer vectors of a run ([`EmbeddingSet`]), their
//! t-SNE and UMAP maps, how well each space separates the classes ([`Separation`]), and
//! the files of TensorBoard's Embedding Projector ([`projector`]).
//!
//! The maps and scores take plain vectors and labels, so nothing here depends on the
//! models.

mod init;
mod project;
pub mod projector;
mod run;
pub(crate) mod separation;
mod set;
pub(crate) mod tsne;
pub(crate) mod umap;

pub(crate) use project::{Projections, SpaceScore};
pub use projector::{has_projector, write_projector, ProjectorFiles};
pub use run::{embed_run, EMBEDDINGS_FILE};
pub(crate) use run::{FIGURES_DIR, PROJECTIONS_FILE, SEPARATION_FILE};
pub(crate) use set::{EmbeddingRecord, EmbeddingSet};
pub(crate) use tsne::tsne;
pub(crate) use umap::umap;

#[cfg(test)]
mod tests;

//! lab5: the "cats vs dogs" deep-learning lab as a library.
//!
//! The notebooks in `notebooks/` and the `lab5` command line are thin layers over this
//! crate. Data flows one way: collect/import -> manifest + splits -> tensor cache ->
//! loader -> model -> trainer -> `runs/<run>/` -> embeddings, charts, comparison.
//!
//! The modules follow the lab, and each imports only modules before it in this order
//! (`tests/layout.rs` checks it): [`util`], [`config`], [`runtime`], [`plot`] -> [`data`]
//! -> [`models`] -> [`labels`] -> [`train`] -> [`theory`] -> [`embed`] -> [`compare`] ->
//! [`views`] (what the notebooks, the report and the pipeline show) -> [`report`] ->
//! [`pipeline`].
#![warn(missing_docs)]

pub mod compare;
pub mod config;
pub mod data;
pub mod embed;
pub mod labels;
pub mod models;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod runtime;
pub mod theory;
pub mod train;
pub mod util;
pub mod views;

pub use config::Config;
/// Re-exported so notebooks reach libtorch without a second `:dep` (same version).
pub use tch;

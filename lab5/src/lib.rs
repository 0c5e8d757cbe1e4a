//! lab5: the "cats vs dogs" deep-learning lab as a library.
//!
//! The notebooks in `notebooks/` and the `lab5` command line are thin layers over this
//! crate. Data flows one way: collect/import -> manifest + splits -> tensor cache ->
//! loader -> model -> trainer -> `runs/<run>/` -> embeddings, charts, comparison.
#![warn(missing_docs)]

pub mod compare;
pub mod config;
pub mod data;
pub mod embed;
pub mod models;
pub mod notebook;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod robustness;
pub mod runtime;
pub mod theory;
pub mod train;
pub mod util;

pub use config::Config;
/// Re-exported so notebooks reach libtorch without a second `:dep` (same version).
pub use tch;

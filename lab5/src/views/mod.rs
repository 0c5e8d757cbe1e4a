//! Views: what the lab shows, shared by the notebooks, the report and the pipeline. Every
//! code cell of `notebooks/01_data` ... `06_comparison` is one call into this module (or
//! into the modules it wraps), so a cell stays one or two lines and can be re-run on its own
//! after the setup cell; [`crate::report`] assembles the same views into one HTML page.
//!
//! Every function here reads what an earlier step wrote to disk (the manifest in `data/`,
//! a run in `runs/<model>/`) instead of relying on variables of other cells, and returns a
//! value that shows itself inline ([`Shown`]: a figure, a table, or a note saying what to
//! run first). The expensive steps ([`get_data`], [`train`], [`embed`]) reuse their results
//! on disk unless their `force` argument is set.
//!
//! - [`data`]: get the data set (API or folder), its summary, sample photos, breeds;
//! - [`labels`]: the zero-shot label check, its flagged photos, optional exclusion;
//! - [`labelling`]: labelling a folder without labels in rounds, and the simulation of
//!   how many human labels that saves;
//! - [`runs`]: layer tables, training, TensorBoard, learning curves, metrics, confusion
//!   matrix, ROC curves, most confident mistakes;
//! - [`maps`]: embeddings of a run in 2-D (t-SNE, UMAP) and how well they separate;
//! - [`comparison`](mod@comparison): both models side by side ([`crate::compare`]), ROC curves, separation;
//! - [`robustness`](mod@robustness): a run's test accuracy under common corruptions
//!   ([`crate::robustness`]), as a table and a chart;
//! - [`explain`](mod@explain): where the models look (Grad-CAM) on test photos, their
//!   mistakes and your own photos; both models on another collection; the augmentation
//!   preview;
//! - [`source`]: code on the page: a named item of lab5's own source (the model, the
//!   training step), shown as it is compiled;
//! - [`inline`]: how a cell shows its result ([`Inline`]): the value, or a failure as a red
//!   error block, since the kernel reports a failed cell as a successful one.

pub mod ablation;
pub mod comparison;
mod current;
pub mod data;
pub mod explain;
pub mod inline;
pub mod labelling;
pub mod labels;
pub mod maps;
pub mod robustness;
pub mod runs;
pub mod source;

pub use crate::plot::{Note, Shown};
pub use ablation::*;
pub use comparison::*;
pub use data::*;
pub use explain::*;
pub use inline::Inline;
pub use labelling::*;
pub use labels::*;
pub use maps::*;
pub use robustness::*;
pub use runs::*;
pub use source::{find_item, source_code, SourceCode, SourceItem};

use crate::config::Config;
use anyhow::{Context, Result};

/// Loads the config the notebook should use (`$LAB5_CONFIG`, else the nearest
/// `config.json` above the notebook), applies its threads and seed, and says which file
/// and folders are in use. In a notebook kernel it also makes panics show an error block
/// ([`inline`]).
pub fn setup() -> Result<Config> {
    inline::show_panics();
    let loaded = load_config();
    if let Err(e) = &loaded {
        // `let cfg = setup()?;` prints only the outermost message on stderr: show the
        // whole error (the failed key, the missing file) as a block too.
        inline::show_error_in_kernel(e);
    }
    loaded
}

/// [`setup`]'s work: the config, the runtime, and the line saying what is in use.
fn load_config() -> Result<Config> {
    let path = Config::locate(None);
    let cfg = Config::load(&path).with_context(|| format!("config {}", path.display()))?;
    let device = crate::runtime::init(&cfg)?;
    println!(
        "config {}\ndata in {}, runs in {}, device {device:?}, {} threads",
        path.display(),
        cfg.data_dir().display(),
        cfg.runs_dir().display(),
        cfg.runtime.threads
    );
    Ok(cfg)
}

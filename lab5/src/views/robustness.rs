//! Notebook `03_cnn` (and the report): the robustness check of a run
//! ([`crate::robustness`]) as one value that shows its table, its chart and one test
//! photo under every corruption inline. Measured once and saved in the run folder;
//! reused while it is current.

use super::runs::{run_record, Model};
use crate::config::Config;
use crate::plot::{Figure, Table};
use crate::robustness::{self, Robustness};
use anyhow::Result;
use std::fmt;
use std::path::Path;

/// The test photo shown under every corruption (the first of the test split).
const EXAMPLE_PHOTO: usize = 0;

/// A robustness result with its table, chart and example photos, shown together in a
/// notebook.
#[derive(Debug, Clone)]
pub struct RobustnessView {
    /// The result.
    pub result: Robustness,
    /// Accuracy per corruption and severity, mean and drop.
    pub table: Table,
    /// Accuracy per corruption at each severity, the clean accuracy dashed.
    pub chart: Figure,
    /// One test photo under every corruption and severity, as the model saw it.
    pub examples: Figure,
}

impl RobustnessView {
    /// The view of the result of the run in `run_dir`.
    pub(crate) fn new(cfg: &Config, run_dir: &Path, result: Robustness) -> Result<Self> {
        Ok(RobustnessView {
            table: result.table()?,
            chart: result.chart()?,
            examples: robustness::examples(cfg, run_dir, EXAMPLE_PHOTO)?,
            result,
        })
    }

    /// One line: clean accuracy, mean corrupted accuracy and the drop.
    pub(crate) fn headline(&self) -> String {
        let r = &self.result;
        format!(
            "Test accuracy {:.1} % clean, {:.1} % on average under {} corrupted versions of the {} test photos: a drop of {:.1} points.",
            100.0 * r.clean_accuracy,
            100.0 * r.mean_corrupted_accuracy,
            r.results.len(),
            r.n,
            100.0 * r.drop_from_clean
        )
    }

    /// The headline, the table, the chart and the examples as one HTML fragment.
    pub(crate) fn to_html(&self) -> String {
        format!(
            "<p>{}</p>\n{}<figure>{}</figure>\n<figure>{}</figure>\n",
            crate::plot::escape(&self.headline()),
            self.table.to_html(),
            self.chart.svg(),
            self.examples.svg()
        )
    }

    /// Shows the headline, the table, the chart and the examples inline in an evcxr
    /// notebook.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl fmt::Display for RobustnessView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.result, f)
    }
}

/// The robustness check of `model`'s run: the saved result when it is current (same
/// suite, seed, weights and data), measured and saved when it is missing, stale, or
/// `force`. Fails with what to run when the model has no finished run.
pub fn robustness_check(cfg: &Config, model: Model, force: bool) -> Result<RobustnessView> {
    let dir = run_record(cfg, model)?.dir;
    let (r, reused) = robustness::check_or_reuse(cfg, &dir, force)?;
    let file = robustness::result_path(&dir);
    if reused {
        println!("reusing {} (force = true measures again)", file.display());
    } else {
        println!(
            "measured in {:.0} s; wrote {}",
            r.secs.total,
            file.display()
        );
    }
    RobustnessView::new(cfg, &dir, r)
}

/// The saved robustness check of `model`'s run, as it is (for the report); fails with
/// what to run when there is none.
pub(crate) fn saved_robustness(cfg: &Config, model: Model) -> Result<RobustnessView> {
    let dir = cfg.runs_dir().join(model.run_name());
    RobustnessView::new(cfg, &dir, robustness::load(&dir)?)
}

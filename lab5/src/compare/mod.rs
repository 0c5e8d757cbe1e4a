//! `lab5 compare`: the CNN trained from scratch against the transfer model in one table:
//! parameters (total, trainable), epochs, training time (total, per epoch, to the best
//! validation loss), inference speed (measured now, see [`measure_inference`]), and
//! accuracy (with its 95 % Wilson interval), F1, ROC-AUC and log loss on train, val and
//! test; McNemar's exact test of the two models on the same test photos ([`Paired`]); a
//! verdict written from those numbers (one model is called more accurate only when the
//! test's p-value is below `report.significance`); both models' test accuracy per breed
//! with the breeds each calls the other species most often ([`BreedErrors`]); and bar
//! charts.
//!
//! Files, in `runs/compare/`: `comparison.json` (everything, re-loadable with [`load`]),
//! `comparison.csv` (full precision), `comparison.md` (rounded, with the verdict) and
//! `figures/<chart>.{svg,png}`. In a notebook:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! # let cfg = lab5::Config::load("config.json")?;
//! let c = lab5::compare::compare(&cfg)?; // shows the table and the verdict
//! c.quality_chart()?;                    // a Figure: shows inline
//! # Ok(()) }
//! ```

mod breeds;
mod charts;
mod inference;
mod paired;
mod summary;
mod table;
mod verdict;

pub use breeds::{BreedErrors, BreedRow, Side};
pub(crate) use inference::measure_inference;
pub use inference::Inference;
pub use paired::Paired;
pub use summary::ModelSummary;
pub use table::Better;
pub(crate) use table::Row;

use crate::config::Config;
use crate::data::SplitName;
use crate::plot::{Figure, Table};
use crate::train::calibration::{calibration, Calibration};
use crate::train::record::write_json;
use crate::train::record::Scored;
use crate::train::{run::CNN_RUN, transfer::TRANSFER_RUN, RunRecord};
use crate::util::{csv_io, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Folder of the comparison inside the runs folder.
pub(crate) const COMPARE_DIR: &str = "compare";
/// Everything, as JSON.
pub const JSON_FILE: &str = "comparison.json";
/// The table, as CSV.
pub const CSV_FILE: &str = "comparison.csv";
/// The table and the verdict, as Markdown.
pub const MARKDOWN_FILE: &str = "comparison.md";
/// Folder of the charts inside [`COMPARE_DIR`].
pub const FIGURES_DIR: &str = "figures";

/// The two models side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The CNN trained from scratch.
    pub cnn: ModelSummary,
    /// The frozen backbone with our head.
    pub transfer: ModelSummary,
    /// The table, one measure per row.
    pub rows: Vec<Row>,
    /// The verdict, one sentence per entry.
    pub verdict: Vec<String>,
    /// Both models' answers on the same test photos and McNemar's test; `None` for a
    /// comparison built from the summaries alone, or saved by an older lab5.
    #[serde(default)]
    pub paired: Option<Paired>,
    /// Both models' reliability diagrams on their test photos; `None` as for `paired`.
    #[serde(default)]
    pub calibration: Option<Calibrations>,
    /// Both models' test accuracy per breed; `None` as for `paired`.
    #[serde(default)]
    pub breeds: Option<BreedErrors>,
}

/// Both models' reliability diagrams (with ECE and MCE) on their test photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrations {
    /// The CNN's.
    pub cnn: Calibration,
    /// The transfer model's.
    pub transfer: Calibration,
}

impl Calibrations {
    /// The diagrams of both runs' test predictions with `bins` confidence bins.
    pub(crate) fn of_test(cnn: &[Scored], transfer: &[Scored], bins: usize) -> Calibrations {
        let of = |scored: &[Scored]| {
            let test: Vec<&Scored> = scored
                .iter()
                .filter(|s| s.split == SplitName::Test)
                .collect();
            let p: Vec<f64> = test.iter().map(|s| s.p_dog).collect();
            let y: Vec<i64> = test.iter().map(|s| s.label.index()).collect();
            calibration(&p, &y, bins)
        };
        Calibrations {
            cnn: of(cnn),
            transfer: of(transfer),
        }
    }
}

/// `runs/compare/` of this config.
pub fn dir(cfg: &Config) -> PathBuf {
    cfg.runs_dir().join(COMPARE_DIR)
}

/// Compares the finished runs `runs/cnn/` and `runs/transfer/`: measures the inference
/// speed of both, writes the table (JSON, CSV, Markdown) and the charts into
/// `runs/compare/`, and returns the comparison.
pub fn compare(cfg: &Config) -> Result<Comparison> {
    crate::runtime::init(cfg)?;
    let (cnn, cnn_scored) = side(cfg, CNN_RUN)?;
    let (transfer, transfer_scored) = side(cfg, TRANSFER_RUN)?;
    let paired = Paired::of_test(&cnn_scored, &transfer_scored);
    let bins = cfg.report.calibration_bins;
    let calibration = Calibrations::of_test(&cnn_scored, &transfer_scored, bins);
    let manifest = crate::train::run::load_manifest(cfg)?;
    let shown = cfg.report.worst_breeds;
    let breeds = BreedErrors::of_test(&manifest, &cnn_scored, &transfer_scored, shown);
    let mut c = Comparison::with_test(cnn, transfer, paired, Some(calibration), &cfg.report);
    c.breeds = Some(breeds);
    c.save(&dir(cfg))?;
    Ok(c)
}

/// The summary of the run `runs/<name>/`, with its inference speed measured now, and its
/// per-photo predictions.
fn side(cfg: &Config, name: &str) -> Result<(ModelSummary, Vec<Scored>)> {
    let run_dir = cfg.runs_dir().join(name);
    let record = RunRecord::load(&run_dir).with_context(|| {
        format!("no finished {name} run to compare: run `lab5 train {name}` first")
    })?;
    let inference = measure_inference(cfg, &run_dir)
        .with_context(|| format!("cannot time the inference of {}", run_dir.display()))?;
    Ok((ModelSummary::of(&record, inference), record.predictions()?))
}

/// The comparison saved by the last [`compare`] (no new measurement).
pub fn load(cfg: &Config) -> Result<Comparison> {
    let path = dir(cfg).join(JSON_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no comparison at {}: run `lab5 compare` first",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a comparison file; run `lab5 compare` again",
            path.display()
        )
    })
}

impl Comparison {
    /// The comparison of two model summaries alone; `overfit_gap` is the train-minus-test
    /// accuracy above which the verdict calls a model over-fitted. Without paired answers
    /// the verdict calls one model more accurate only when the two 95 % Wilson intervals of
    /// the test accuracy do not overlap.
    pub fn new(cnn: ModelSummary, transfer: ModelSummary, overfit_gap: f64) -> Comparison {
        let judge = verdict::Judge {
            paired: None,
            calibration: None,
            overfit_gap,
            significance: 0.0,
        };
        Self::judged(cnn, transfer, judge)
    }

    /// The comparison with both models' paired test answers and, when given, their
    /// reliability diagrams: the verdict calls one model more accurate only when
    /// McNemar's exact p-value is below `report.significance`, and better calibrated only
    /// when its ECE and its diagram's worst bin (MCE) are both lower.
    pub fn with_test(
        cnn: ModelSummary,
        transfer: ModelSummary,
        paired: Paired,
        calibration: Option<Calibrations>,
        report: &crate::config::Report,
    ) -> Comparison {
        let judge = verdict::Judge {
            paired: Some(&paired),
            calibration: calibration.as_ref(),
            overfit_gap: report.overfit_gap,
            significance: report.significance,
        };
        let mut c = Self::judged(cnn, transfer, judge);
        c.paired = Some(paired);
        c.calibration = calibration;
        c
    }

    fn judged(cnn: ModelSummary, transfer: ModelSummary, judge: verdict::Judge) -> Comparison {
        Comparison {
            rows: table::rows(&cnn, &transfer),
            verdict: verdict::verdict(&cnn, &transfer, &judge),
            cnn,
            transfer,
            paired: None,
            calibration: None,
            breeds: None,
        }
    }

    /// True when the saved rows are the rows this lab5 makes from the same summaries (the
    /// same measures in the same order): false for a comparison saved by an older lab5.
    pub(crate) fn has_current_rows(&self) -> bool {
        let now = table::rows(&self.cnn, &self.transfer);
        now.len() == self.rows.len()
            && now
                .iter()
                .zip(&self.rows)
                .all(|(a, b)| a.measure == b.measure)
    }

    /// The table (rounded values) for notebooks.
    pub fn table(&self) -> Result<Table> {
        table::to_table(&self.rows)
    }

    /// The table as CSV text (`measure,cnn,transfer,better`, full precision).
    pub fn to_csv(&self) -> Result<String> {
        let bytes = csv_io::to_csv(&table::csv_lines(&self.rows))?;
        Ok(String::from_utf8(bytes)?)
    }

    /// Title, table and verdict as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let bullets: String = self.verdict.iter().map(|s| format!("- {s}\n")).collect();
        let breeds = self
            .breeds
            .as_ref()
            .map(|b| format!("\n{}", b.to_markdown()));
        format!(
            "# CNN vs transfer learning\n\n{}\n## Verdict\n\n{bullets}{}",
            table::to_markdown(&self.rows),
            breeds.unwrap_or_default()
        )
    }

    /// Table and verdict as HTML (what a notebook cell shows).
    pub fn to_html(&self) -> Result<String> {
        let esc = crate::plot::escape;
        let items: String = self
            .verdict
            .iter()
            .map(|s| format!("<li>{}</li>\n", esc(s)))
            .collect();
        Ok(format!(
            "{}<h4>Verdict</h4>\n<ul class=\"verdict\">\n{items}</ul>\n",
            self.table()?.to_html()
        ))
    }

    /// Every chart with its file stem.
    pub fn charts(&self) -> Result<Vec<(String, Figure)>> {
        charts::all(self)
    }

    /// Test accuracy, F1 and ROC-AUC of both models.
    pub fn quality_chart(&self) -> Result<Figure> {
        charts::quality(self)
    }

    /// Accuracy on train, val and test.
    pub fn accuracy_chart(&self) -> Result<Figure> {
        charts::accuracy(self)
    }

    /// Log loss on train, val and test.
    pub fn log_loss_chart(&self) -> Result<Figure> {
        charts::log_loss(self)
    }

    /// Training time: total, loop, to the best validation loss, per epoch.
    pub fn time_chart(&self) -> Result<Figure> {
        charts::time(self)
    }

    /// Photos classified per second.
    pub fn inference_chart(&self) -> Result<Figure> {
        charts::inference(self)
    }

    /// Parameters, total and trainable.
    pub fn parameters_chart(&self) -> Result<Figure> {
        charts::parameters(self)
    }

    /// Both models' reliability diagrams on the test photos (accuracy against mean
    /// confidence per bin; the diagonal is perfect calibration), ECE and MCE in the legend.
    ///
    /// # Errors
    /// A comparison without diagrams (built from summaries, or saved by an older lab5:
    /// measure it again).
    pub fn calibration_chart(&self) -> Result<Figure> {
        charts::calibration(self)
    }

    /// The per-breed scores.
    ///
    /// # Errors
    /// A comparison without them (built from summaries, or saved by an older lab5:
    /// measure it again).
    pub fn breeds(&self) -> Result<&BreedErrors> {
        self.breeds.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this comparison has no per-breed scores (saved by an older lab5): measure it again (comparison(&cfg, true) or `lab5 compare`)")
        })
    }

    /// Both models' test accuracy on the breeds with the most mistakes
    /// ([`BreedErrors::chart`]).
    ///
    /// # Errors
    /// As [`Comparison::breeds`].
    pub fn breeds_chart(&self) -> Result<Figure> {
        self.breeds()?.chart()
    }

    /// Writes JSON, CSV, Markdown and the charts (SVG and PNG) into `dir`, each
    /// atomically; returns the paths written.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut written = vec![
            dir.join(JSON_FILE),
            dir.join(CSV_FILE),
            dir.join(MARKDOWN_FILE),
        ];
        write_json(&written[0], self)?;
        csv_io::write_rows(&written[1], &table::csv_lines(&self.rows))?;
        write_atomic(&written[2], self.to_markdown().as_bytes())?;
        for (name, fig) in self.charts()? {
            let (svg, png) = fig.save(&dir.join(FIGURES_DIR).join(name))?;
            written.extend([svg, png]);
        }
        Ok(written)
    }

    /// Shows table and verdict inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        crate::plot::show_html(self.to_html(), self);
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_markdown())
    }
}

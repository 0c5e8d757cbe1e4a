//! What the robustness check measured (`runs/<run>/robustness.json`): the clean test
//! accuracy, the accuracy under every corruption and severity, the mean per corruption,
//! the mean over all of them and its drop from clean; as text, as a table and as a bar
//! chart with the clean accuracy as a dashed line.

use super::suite::{format_parameter, Corruption, SEVERITIES};
use crate::plot::{bar_chart_with_reference, Figure, Table};
use anyhow::{Context, Result};
use polars::prelude::df;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Accuracy of the run's model on the test split under one corruption at one severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The corruption.
    pub corruption: Corruption,
    /// 1 (mild) to 3 (strong).
    pub severity: usize,
    /// The ImageNet-C level the parameter comes from (1, 3, 5), or `None` for the
    /// corruptions ImageNet-C does not have.
    pub imagenet_c_level: Option<u8>,
    /// The corruption's parameter (unit: [`Corruption::unit`]).
    pub parameter: f64,
    /// Share of test images classified correctly (0..1).
    pub accuracy: f64,
    /// Test images scored.
    pub n: usize,
}

/// The mean accuracy over the severities of one corruption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionMean {
    /// The corruption.
    pub corruption: Corruption,
    /// Mean accuracy over its severities (0..1).
    pub mean_accuracy: f64,
    /// Clean accuracy minus that mean (a fraction; 0.05 = 5 points).
    pub drop_from_clean: f64,
}

/// What the run and the data were when the check ran: a result is current while these
/// stay the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The suite's name and version ([`super::SUITE`]).
    pub suite: String,
    /// Seed of the random corruptions.
    pub seed: u64,
    /// SHA-256 of the run's best weights.
    pub weights_sha256: String,
    /// Key of the manifest rows and preprocessing the test images came from.
    pub data_key: String,
}

/// Timings, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Everything: loading the run and the images, corrupting, scoring, writing.
    pub total: f64,
    /// Corrupting the images.
    pub corrupt: f64,
    /// The model's forward passes (clean and corrupted).
    pub inference: f64,
}

/// The whole result (`robustness.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    /// The run folder checked.
    pub run: String,
    /// Its model kind (`cnn`, `transfer`).
    pub model: String,
    /// Side of the model's input images, pixels.
    pub image_size: i64,
    /// Suite, seed, weights and data this was measured with.
    pub identity: Identity,
    /// Test images.
    pub n: usize,
    /// Accuracy on the uncorrupted test images, measured now.
    pub clean_accuracy: f64,
    /// The test accuracy the run recorded when it was trained (equal to the clean
    /// accuracy unless the data changed since).
    pub recorded_test_accuracy: f64,
    /// One entry per corruption and severity.
    pub results: Vec<Cell>,
    /// One entry per corruption.
    pub per_corruption: Vec<CorruptionMean>,
    /// Mean accuracy over every corruption and severity.
    pub mean_corrupted_accuracy: f64,
    /// Clean accuracy minus the mean corrupted accuracy (a fraction).
    pub drop_from_clean: f64,
    /// libtorch threads used.
    pub threads: usize,
    /// Device the model ran on.
    pub device: String,
    /// How long it took.
    pub secs: Timings,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The per-corruption means of `cells` and their drops from `clean`, in
/// [`Corruption::ALL`] order (corruptions without a cell left out).
pub(crate) fn per_corruption(cells: &[Cell], clean: f64) -> Vec<CorruptionMean> {
    Corruption::ALL
        .iter()
        .filter(|c| cells.iter().any(|x| x.corruption == **c))
        .map(|&c| {
            let of_c = cells.iter().filter(|x| x.corruption == c);
            let m = mean(of_c.map(|x| x.accuracy));
            CorruptionMean {
                corruption: c,
                mean_accuracy: m,
                drop_from_clean: clean - m,
            }
        })
        .collect()
}

/// Mean accuracy over every cell.
pub(crate) fn mean_accuracy(cells: &[Cell]) -> f64 {
    mean(cells.iter().map(|c| c.accuracy))
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// A fraction as percent (or points) rounded to one decimal; `None` when undefined.
fn pct1(x: f64) -> Option<f64> {
    x.is_finite().then(|| (1000.0 * x).round() / 10.0)
}

/// The numeric columns of [`Robustness::table`]: each severity, mean, drop.
type Columns = [Vec<Option<f64>>; SEVERITIES + 2];

impl Robustness {
    /// Reads `robustness.json`.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {}: run `lab5 robustness --run <run folder>` first",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// Writes it as pretty JSON, atomically.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("cannot serialise the result")?;
        crate::util::write_atomic(path, &json)
    }

    /// The cell of `corruption` at `severity` (1..=3).
    pub fn cell(&self, corruption: Corruption, severity: usize) -> Option<&Cell> {
        self.results
            .iter()
            .find(|c| c.corruption == corruption && c.severity == severity)
    }

    /// Accuracies (0..1) of each severity of `c`, `NaN` where missing.
    fn row(&self, c: Corruption) -> [f64; SEVERITIES] {
        std::array::from_fn(|s| self.cell(c, s + 1).map_or(f64::NAN, |x| x.accuracy))
    }

    /// The parameters of `c`'s severities, as `0.1 / 0.3 / 0.5`.
    fn parameters(&self, c: Corruption) -> String {
        let p: Vec<String> = (1..=SEVERITIES)
            .filter_map(|s| self.cell(c, s))
            .map(|x| format_parameter(x.parameter))
            .collect();
        p.join(" / ")
    }

    /// One row per corruption: its parameters, the accuracy (%) at each severity, the
    /// mean and the drop from clean (points); then the clean and overall rows.
    pub(crate) fn table(&self) -> Result<Table> {
        let mut names: Vec<String> = Vec::new();
        let (mut params, mut units) = (Vec::new(), Vec::new());
        let mut cols: Columns = Default::default();
        for m in &self.per_corruption {
            let c = m.corruption;
            names.push(c.name().into());
            params.push(self.parameters(c));
            units.push(c.unit().to_string());
            for (s, a) in self.row(c).iter().enumerate() {
                cols[s].push(pct1(*a));
            }
            cols[SEVERITIES].push(pct1(m.mean_accuracy));
            cols[SEVERITIES + 1].push(pct1(m.drop_from_clean));
        }
        self.push_summary_rows(&mut names, &mut params, &mut units, &mut cols);
        let [s1, s2, s3, mean, drop] = cols;
        Ok(Table(df!(
            "corruption" => names, "parameter (1 / 2 / 3)" => params, "unit" => units,
            "severity 1 (%)" => s1, "severity 2 (%)" => s2, "severity 3 (%)" => s3,
            "mean (%)" => mean, "drop (points)" => drop,
        )?))
    }

    /// The `clean` and `all corruptions` rows of [`Robustness::table`].
    fn push_summary_rows(
        &self,
        names: &mut Vec<String>,
        params: &mut Vec<String>,
        units: &mut Vec<String>,
        cols: &mut Columns,
    ) {
        let rows = [
            ("clean", self.clean_accuracy, 0.0),
            (
                "all corruptions",
                self.mean_corrupted_accuracy,
                self.drop_from_clean,
            ),
        ];
        for (name, acc, drop) in rows {
            names.push(name.into());
            params.push(String::new());
            units.push(String::new());
            for col in cols.iter_mut().take(SEVERITIES) {
                col.push(None);
            }
            cols[SEVERITIES].push(pct1(acc));
            cols[SEVERITIES + 1].push(pct1(drop));
        }
    }

    /// Accuracy (%) per corruption, one bar per severity, the clean accuracy dashed.
    pub(crate) fn chart(&self) -> Result<Figure> {
        let corruptions: Vec<Corruption> =
            self.per_corruption.iter().map(|m| m.corruption).collect();
        let names: Vec<String> = corruptions
            .iter()
            .map(|c| c.name().replace('_', " "))
            .collect();
        let series: Vec<(String, Vec<f64>)> = (0..SEVERITIES)
            .map(|s| {
                let v = corruptions
                    .iter()
                    .map(|c| 100.0 * self.row(*c)[s])
                    .collect();
                (format!("severity {}", s + 1), v)
            })
            .collect();
        let name = Path::new(&self.run)
            .file_name()
            .map(|n| n.to_string_lossy());
        let title = format!(
            "{}: test accuracy under corruptions (mean {} %, clean {} %)",
            name.unwrap_or_default(),
            pct(self.mean_corrupted_accuracy),
            pct(self.clean_accuracy)
        );
        let clean = format!("clean {} %", pct(self.clean_accuracy));
        let reference = (clean.as_str(), 100.0 * self.clean_accuracy);
        bar_chart_with_reference(&title, "accuracy (%)", &names, &series, reference)
    }
}

impl fmt::Display for Robustness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "robustness of {} ({}, {} px) on {} test images, suite {} (seed {})",
            self.run, self.model, self.image_size, self.n, self.identity.suite, self.identity.seed
        )?;
        writeln!(
            f,
            "{:<16} {:>22}  {:>6} {:>6} {:>6}  {:>6} {:>6}",
            "corruption", "parameter (1 / 2 / 3)", "sev 1", "sev 2", "sev 3", "mean", "drop"
        )?;
        for m in &self.per_corruption {
            let [a, b, c] = self.row(m.corruption).map(pct);
            writeln!(
                f,
                "{:<16} {:>22}  {a:>6} {b:>6} {c:>6}  {:>6} {:>+6.1}",
                m.corruption.name(),
                self.parameters(m.corruption),
                pct(m.mean_accuracy),
                100.0 * m.drop_from_clean
            )?;
        }
        writeln!(
            f,
            "clean accuracy {} % (recorded at training {} %); mean corrupted accuracy {} %, drop {:+.1} points",
            pct(self.clean_accuracy),
            pct(self.recorded_test_accuracy),
            pct(self.mean_corrupted_accuracy),
            100.0 * self.drop_from_clean
        )?;
        write!(
            f,
            "time {:.1} s (corrupting {:.1} s, model {:.1} s) on {} thread(s), {}",
            self.secs.total, self.secs.corrupt, self.secs.inference, self.threads, self.device
        )
    }
}

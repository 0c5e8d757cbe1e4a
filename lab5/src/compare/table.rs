//! The comparison as rows (one measure per row, one column per model) and its three
//! file forms: CSV with full-precision numbers, Markdown with rounded ones, and an HTML
//! table for notebooks and the report. Every form comes from the same rows.

use super::summary::ModelSummary;
use crate::data::SplitName;
use crate::plot::Table;
use crate::train::metrics::Metrics;
use crate::util::csv_io;
use anyhow::Result;
use polars::prelude::df;
use serde::{Deserialize, Serialize};

/// Which direction of a measure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Larger values are better (accuracy, images/s).
    Higher,
    /// Smaller values are better (log loss, seconds, parameters).
    Lower,
    /// Neither (epoch counts).
    Neither,
}

/// One measure of both models. Undefined values (ROC-AUC of a one-class split) are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What is measured, with its unit (`test accuracy, %`).
    pub measure: String,
    /// The CNN's value.
    pub cnn: Option<f64>,
    /// The transfer model's value.
    pub transfer: Option<f64>,
    /// Decimals shown in the Markdown and HTML forms.
    pub decimals: usize,
    /// Which direction is better.
    pub better: Better,
}

impl Row {
    fn new(measure: &str, decimals: usize, better: Better, v: [f64; 2]) -> Row {
        let defined = |x: f64| x.is_finite().then_some(x);
        Row {
            measure: measure.to_string(),
            cnn: defined(v[0]),
            transfer: defined(v[1]),
            decimals,
            better,
        }
    }

    /// A value rounded to the row's decimals, `-` when undefined.
    pub fn shown(&self, v: Option<f64>) -> String {
        v.map_or("-".into(), |x| format!("{x:.*}", self.decimals))
    }

    /// `cnn`, `transfer`, `tie` or empty (no direction, or a value missing), judged on
    /// the rounded values.
    pub fn winner(&self) -> &'static str {
        let (Some(c), Some(t)) = (self.cnn, self.transfer) else {
            return "";
        };
        let (c, t) = (self.shown(Some(c)), self.shown(Some(t)));
        let (c, t) = (c.parse::<f64>().unwrap_or(0.0), t.parse().unwrap_or(0.0));
        match self.better {
            Better::Neither => "",
            _ if c == t => "tie",
            Better::Higher if c > t => "cnn",
            Better::Lower if c < t => "cnn",
            _ => "transfer",
        }
    }
}

type Measure = (&'static str, usize, Better, fn(&ModelSummary) -> f64);

/// A value that may be missing, as a row value (NaN is shown as `-`).
fn known(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// Size, training cost and speed, in table order. The costs from raw photos count the
/// whole data preparation even when an earlier command (the label check's backbone pass)
/// did it and this run read it from a cache; the shared part has its own row.
const COST: [Measure; 13] = [
    ("parameters (total)", 0, Better::Lower, |m| m.params as f64),
    ("parameters (trainable)", 0, Better::Lower, |m| {
        m.trainable_params as f64
    }),
    ("epochs run", 0, Better::Neither, |m| m.epochs_run as f64),
    ("best epoch", 0, Better::Neither, |m| m.best_epoch as f64),
    (
        "cost from raw photos to trained model, s",
        1,
        Better::Lower,
        |m| known(m.cold_total_secs),
    ),
    (
        "data preparation from raw photos (CNN: preprocessing; transfer: backbone pass), s",
        1,
        Better::Lower,
        |m| known(m.cold_data_secs),
    ),
    (
        "of which shared with another step (the label check), s",
        1,
        Better::Neither,
        |m| match m.data_shared_with {
            Some(_) => known(m.cold_data_secs),
            None => 0.0,
        },
    ),
    ("re-run with warm caches, s", 1, Better::Lower, |m| {
        known(m.warm_total_secs)
    }),
    (
        "total of this run (caches as they were), s",
        1,
        Better::Lower,
        |m| m.total_secs,
    ),
    ("training time, s", 1, Better::Lower, |m| m.train_secs),
    ("time per epoch, s", 2, Better::Lower, |m| m.secs_per_epoch),
    ("time to best val loss, s", 1, Better::Lower, |m| {
        m.to_best_secs
    }),
    ("inference, images/s", 1, Better::Higher, |m| {
        m.inference.images_per_sec
    }),
];

type Score = (&'static str, usize, Better, fn(&Metrics) -> f64);

/// Quality measures, repeated for train, val and test.
const SCORES: [Score; 4] = [
    ("accuracy, %", 2, Better::Higher, |m| 100.0 * m.accuracy),
    ("F1", 4, Better::Higher, |m| m.f1),
    ("ROC-AUC", 4, Better::Higher, |m| m.roc_auc),
    ("log loss", 4, Better::Lower, |m| m.log_loss),
];

fn split_metrics(m: &ModelSummary, s: SplitName) -> &Metrics {
    match s {
        SplitName::Train => &m.metrics.train,
        SplitName::Val => &m.metrics.val,
        SplitName::Test => &m.metrics.test,
    }
}

/// Every row of the comparison: cost, then the scores per split, then the gap.
pub(crate) fn rows(cnn: &ModelSummary, transfer: &ModelSummary) -> Vec<Row> {
    let mut rows: Vec<Row> = COST
        .iter()
        .map(|(name, d, b, f)| Row::new(name, *d, *b, [f(cnn), f(transfer)]))
        .collect();
    for split in SplitName::ALL {
        for (name, d, b, f) in SCORES {
            let v = [cnn, transfer].map(|m| f(split_metrics(m, split)));
            rows.push(Row::new(&format!("{} {name}", split.name()), d, b, v));
            if name == SCORES[0].0 {
                rows.extend(interval_rows(split, cnn, transfer));
            }
        }
    }
    let gap = [cnn, transfer].map(|m| 100.0 * m.gap);
    rows.push(Row::new("train-test gap, points", 1, Better::Lower, gap));
    rows
}

/// The ends of the accuracy's 95 % Wilson interval on `split`, in %, as two rows.
fn interval_rows(split: SplitName, cnn: &ModelSummary, transfer: &ModelSummary) -> [Row; 2] {
    let ends = [cnn, transfer].map(|m| split_metrics(m, split).accuracy_interval());
    let name = |end: &str| format!("{} accuracy, 95 % Wilson interval {end}, %", split.name());
    [
        Row::new(&name("low"), 2, Better::Neither, ends.map(|e| 100.0 * e.0)),
        Row::new(&name("high"), 2, Better::Neither, ends.map(|e| 100.0 * e.1)),
    ]
}

/// One line of `comparison.csv`: full-precision numbers (empty when undefined) and the
/// winner on the rounded values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CsvLine {
    /// What is measured, with its unit.
    pub measure: String,
    /// The CNN's value.
    #[serde(serialize_with = "csv_io::plain_float")]
    pub cnn: Option<f64>,
    /// The transfer model's value.
    #[serde(serialize_with = "csv_io::plain_float")]
    pub transfer: Option<f64>,
    /// `cnn`, `transfer`, `tie` or empty (see [`Row::winner`]).
    pub better: String,
}

impl From<&Row> for CsvLine {
    fn from(r: &Row) -> Self {
        CsvLine {
            measure: r.measure.clone(),
            cnn: r.cnn,
            transfer: r.transfer,
            better: r.winner().to_string(),
        }
    }
}

/// The rows as `comparison.csv` lines.
pub(crate) fn csv_lines(rows: &[Row]) -> Vec<CsvLine> {
    rows.iter().map(CsvLine::from).collect()
}

/// The rows as a Markdown table (values rounded to each row's decimals).
pub(crate) fn to_markdown(rows: &[Row]) -> String {
    let mut md = String::from("| measure | cnn | transfer | better |\n|---|---:|---:|---|\n");
    for r in rows {
        let (c, t) = (r.shown(r.cnn), r.shown(r.transfer));
        md.push_str(&format!("| {} | {c} | {t} | {} |\n", r.measure, r.winner()));
    }
    md
}

/// The rows as a table that shows inline in notebooks (rounded values as text).
pub(crate) fn to_table(rows: &[Row]) -> Result<Table> {
    let col = |f: &dyn Fn(&Row) -> String| rows.iter().map(f).collect::<Vec<String>>();
    Ok(Table(df!(
        "measure" => col(&|r| r.measure.clone()),
        "cnn" => col(&|r| r.shown(r.cnn)),
        "transfer" => col(&|r| r.shown(r.transfer)),
        "better" => col(&|r| r.winner().to_string()),
    )?))
}

//! ROC curves: true-positive rate against false-positive rate, with the area under each
//! curve in the legend and the chance diagonal for reference.

use super::figure::Figure;
use super::line::{Line, LineChart, LinePanel};
use anyhow::{bail, Result};

/// Size of the ROC figure (square plot area plus title).
const SIZE: (u32, u32) = (700, 680);

/// One ROC curve: its name (e.g. "test"), `(fpr, tpr)` points and its AUC.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RocCurve {
    /// Legend name.
    pub name: String,
    /// `(false-positive rate, true-positive rate)` points, both in 0..=1.
    pub points: Vec<(f64, f64)>,
    /// Area under the curve, in 0..=1.
    pub auc: f64,
}

/// Several ROC curves on one chart (e.g. CNN vs transfer, or train/val/test).
pub(crate) fn roc_curves(title: &str, curves: &[RocCurve]) -> Result<Figure> {
    curves.iter().try_for_each(check)?;
    let named =
        |c: &RocCurve| Line::new(&format!("{} (AUC {:.3})", c.name, c.auc), c.points.clone());
    let panel = LinePanel {
        title: String::new(),
        x_label: "false-positive rate".into(),
        y_label: "true-positive rate".into(),
        series: curves.iter().map(named).collect(),
        guides: vec![Line::new("chance", vec![(0.0, 0.0), (1.0, 1.0)])],
        marker: None,
        whole_x: false,
        dots: false,
    };
    let chart = LineChart {
        title: title.into(),
        panels: vec![panel],
    };
    Figure::new(title, SIZE, chart)
}

fn check(c: &RocCurve) -> Result<()> {
    if c.points.is_empty() {
        bail!(
            "ROC curve {:?} has no points; compute it from the predictions first",
            c.name
        );
    }
    let in_unit = |v: f64| (0.0..=1.0).contains(&v);
    if let Some(p) = c.points.iter().find(|(x, y)| !in_unit(*x) || !in_unit(*y)) {
        bail!(
            "ROC curve {:?} has point {p:?} outside 0..1; pass (fpr, tpr) rates",
            c.name
        );
    }
    if !in_unit(c.auc) {
        bail!("ROC curve {:?} has AUC {} outside 0..1", c.name, c.auc);
    }
    Ok(())
}

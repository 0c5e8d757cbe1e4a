//! The comparison bars: test quality, accuracy and log loss per split, training time,
//! inference speed and size, one bar per model in each group.

use super::summary::ModelSummary;
use super::Comparison;
use crate::data::SplitName;
use crate::plot::{bar_chart, reliability_diagram, Figure, Line};
use crate::train::calibration::Calibration;
use crate::train::metrics::Metrics;
use anyhow::Result;

/// Undefined values (a one-class split's ROC-AUC) are drawn as 0.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Bars of `value` for both models over `categories` (`value(model, category index)`).
fn bars(
    c: &Comparison,
    title: &str,
    y_label: &str,
    categories: &[&str],
    value: impl Fn(&ModelSummary, usize) -> f64,
) -> Result<Figure> {
    let series: Vec<(String, Vec<f64>)> = [&c.cnn, &c.transfer]
        .iter()
        .map(|m| {
            let v = (0..categories.len()).map(|i| finite(value(m, i))).collect();
            (m.title().to_string(), v)
        })
        .collect();
    bar_chart(title, y_label, &names(categories), &series)
}

fn split_of(m: &ModelSummary, i: usize) -> &Metrics {
    match SplitName::ALL[i] {
        SplitName::Train => &m.metrics.train,
        SplitName::Val => &m.metrics.val,
        SplitName::Test => &m.metrics.test,
    }
}

/// Test accuracy, F1 and ROC-AUC.
pub(crate) fn quality(c: &Comparison) -> Result<Figure> {
    let f = |m: &ModelSummary, i: usize| {
        let t = &m.metrics.test;
        [t.accuracy, t.f1, t.roc_auc][i]
    };
    let cats = ["accuracy", "F1", "ROC-AUC"];
    bars(c, "CNN vs transfer: test quality", "score", &cats, f)
}

/// Accuracy on train, validation and test.
pub(crate) fn accuracy(c: &Comparison) -> Result<Figure> {
    let f = |m: &ModelSummary, i: usize| 100.0 * split_of(m, i).accuracy;
    let cats = ["train", "val", "test"];
    bars(
        c,
        "CNN vs transfer: accuracy per split",
        "accuracy, %",
        &cats,
        f,
    )
}

/// Log loss on train, validation and test.
pub(crate) fn log_loss(c: &Comparison) -> Result<Figure> {
    let f = |m: &ModelSummary, i: usize| split_of(m, i).log_loss;
    let cats = ["train", "val", "test"];
    bars(
        c,
        "CNN vs transfer: log loss per split",
        "log loss",
        &cats,
        f,
    )
}

/// Cost from raw photos, a re-run with warm caches (both left out when a run did not
/// record them), training loop, time to the best validation loss, time per epoch.
pub(crate) fn time(c: &Comparison) -> Result<Figure> {
    let counted = c.cnn.cold_total_secs.is_some() && c.transfer.cold_total_secs.is_some();
    let skip = if counted { 0 } else { 2 };
    let f = |m: &ModelSummary, i: usize| {
        let cold = m.cold_total_secs.unwrap_or(0.0);
        let warm = m.warm_total_secs.unwrap_or(0.0);
        [cold, warm, m.train_secs, m.to_best_secs, m.secs_per_epoch][i + skip]
    };
    let all = [
        "from raw photos",
        "warm re-run",
        "training loop",
        "to best val loss",
        "per epoch",
    ];
    bars(
        c,
        "CNN vs transfer: training time",
        "seconds",
        &all[skip..],
        f,
    )
}

/// Photos classified per second.
pub(crate) fn inference(c: &Comparison) -> Result<Figure> {
    let f = |m: &ModelSummary, _: usize| m.inference.images_per_sec;
    let title = "CNN vs transfer: inference speed";
    bars(c, title, "photos per second", &["inference"], f)
}

/// Parameters, total and trainable, in millions.
pub(crate) fn parameters(c: &Comparison) -> Result<Figure> {
    let f = |m: &ModelSummary, i: usize| [m.params, m.trainable_params][i] as f64 / 1e6;
    let cats = ["total", "trainable"];
    bars(c, "CNN vs transfer: parameters", "millions", &cats, f)
}

/// A function drawing one comparison chart.
type Maker = fn(&Comparison) -> Result<Figure>;

/// Every comparison chart with its file stem.
pub(crate) fn all(c: &Comparison) -> Result<Vec<(String, Figure)>> {
    let makers: [(&str, Maker); 6] = [
        ("quality", quality),
        ("accuracy", accuracy),
        ("log_loss", log_loss),
        ("time", time),
        ("inference", inference),
        ("parameters", parameters),
    ];
    let mut charts: Vec<(String, Figure)> = makers
        .iter()
        .map(|(name, make)| Ok((name.to_string(), make(c)?)))
        .collect::<Result<_>>()?;
    if c.calibration.is_some() {
        charts.push(("calibration".into(), calibration(c)?));
    }
    if let Some(b) = &c.breeds {
        charts.push(("breeds".into(), b.chart()?));
    }
    Ok(charts)
}

/// Both reliability diagrams: per non-empty bin, (mean confidence, accuracy).
pub(crate) fn calibration(c: &Comparison) -> Result<Figure> {
    let Some(cal) = &c.calibration else {
        anyhow::bail!("this comparison has no reliability diagrams (saved by an older lab5): measure it again (comparison(&cfg, true) or `lab5 compare`)");
    };
    let line = |m: &ModelSummary, k: &Calibration| {
        let points = k
            .bins
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.confidence, b.accuracy))
            .collect();
        Line::new(
            &format!("{} (ECE {:.3}, MCE {:.3})", m.title(), k.ece, k.mce),
            points,
        )
    };
    let series = [line(&c.cnn, &cal.cnn), line(&c.transfer, &cal.transfer)];
    let diagonal = Line::new("perfectly calibrated", vec![(0.5, 0.5), (1.0, 1.0)]);
    reliability_diagram("Reliability on the test photos", &series, diagonal)
}

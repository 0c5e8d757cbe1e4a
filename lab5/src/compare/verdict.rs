//! The written verdict: a few sentences generated from the numbers of both models
//! (accuracy with its 95 % Wilson interval and McNemar's test, over-fitting, training
//! cost, inference speed, size), ending with which model to use for what. Nothing in it
//! is fixed text about which model wins, and a difference the test photos cannot show is
//! called within noise.

use super::paired::Paired;
use super::summary::ModelSummary;
use super::Calibrations;
use crate::train::metrics::Metrics;

/// How the verdict judges: the paired test (when there is one) and the limits.
pub(crate) struct Judge<'a> {
    /// Both models' answers on the same test photos, with McNemar's p-value.
    pub paired: Option<&'a Paired>,
    /// Both models' reliability diagrams on their test photos.
    pub calibration: Option<&'a Calibrations>,
    /// Train-minus-test gap above which a model over-fits.
    pub overfit_gap: f64,
    /// p-value below which the accuracy difference counts.
    pub significance: f64,
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn millions(n: i64) -> String {
    format!("{:.2} M", n as f64 / 1e6)
}

/// The sentences of the verdict, in reading order.
pub(crate) fn verdict(cnn: &ModelSummary, transfer: &ModelSummary, judge: &Judge) -> Vec<String> {
    let mut v = vec![quality(cnn, transfer, judge)];
    v.extend(judge.calibration.map(calibrated));
    v.extend([
        fit(cnn, judge.overfit_gap),
        fit(transfer, judge.overfit_gap),
        training_cost(cnn, transfer),
        inference(cnn, transfer),
        size(cnn, transfer),
        overall(cnn, transfer, judge),
    ]);
    v
}

/// Which model the reliability diagrams call better calibrated: only when its expected
/// calibration error (ECE) and its worst bin (MCE) are both lower; else that they
/// disagree or tie.
fn calibrated(c: &Calibrations) -> String {
    let (a, b) = (&c.cnn, &c.transfer);
    let numbers = format!(
        "expected calibration error {:.3} (CNN) vs {:.3} (transfer model), worst bin of the reliability diagram {:.3} vs {:.3}",
        a.ece, b.ece, a.mce, b.mce
    );
    let bins = a.bins.len();
    let better = match (a.ece < b.ece, a.mce < b.mce, a.ece > b.ece, a.mce > b.mce) {
        (true, true, _, _) => Some("CNN"),
        (_, _, true, true) => Some("transfer model"),
        _ => None,
    };
    match better {
        Some(m) => format!("Calibration on the test photos ({bins} bins of confidence): {numbers}: the {m} is better calibrated, by both."),
        None => format!("Calibration on the test photos ({bins} bins of confidence): {numbers}: the two measures do not agree, so neither model is called better calibrated."),
    }
}

/// `90.0 % [83.0, 94.3]`: the accuracy and its 95 % Wilson interval.
fn with_interval(m: &Metrics) -> String {
    let (lo, hi) = m.accuracy_interval();
    format!("{} [{:.1}, {:.1}]", pct(m.accuracy), 100.0 * lo, 100.0 * hi)
}

/// Whether the test photos show a real accuracy difference: McNemar's p-value below the
/// significance level with paired answers, else 95 % intervals that do not overlap.
fn shown_by_the_photos(cnn: &ModelSummary, transfer: &ModelSummary, judge: &Judge) -> bool {
    match judge.paired {
        Some(p) => p.p_value < judge.significance,
        None => {
            let ((a_lo, a_hi), (b_lo, b_hi)) = (
                cnn.metrics.test.accuracy_interval(),
                transfer.metrics.test.accuracy_interval(),
            );
            a_hi < b_lo || b_hi < a_lo
        }
    }
}

/// The more accurate model and the other, when the test photos show a difference
/// ([`shown_by_the_photos`]); `None`: within noise.
fn more_accurate<'a>(
    cnn: &'a ModelSummary,
    transfer: &'a ModelSummary,
    judge: &Judge,
) -> Option<(&'a ModelSummary, &'a ModelSummary)> {
    let (a, b) = (cnn.metrics.test.accuracy, transfer.metrics.test.accuracy);
    if a == b || !shown_by_the_photos(cnn, transfer, judge) {
        return None;
    }
    Some(if a > b {
        (cnn, transfer)
    } else {
        (transfer, cnn)
    })
}

/// What the judgement rests on: McNemar's test on the photos where the models disagree,
/// or the intervals alone.
fn evidence(judge: &Judge) -> String {
    let Some(p) = judge.paired else {
        return "no paired answers to test, so judged by whether the two 95 % intervals overlap"
            .into();
    };
    let side = if p.p_value < judge.significance {
        "<"
    } else {
        "\u{2265}"
    };
    format!(
        "they disagree on {} of the {} photos (only the CNN right on {}, only the transfer model on {}): McNemar's exact test p = {} {side} {}",
        p.disagreements(), p.photos, p.only_cnn, p.only_transfer, p_value(p.p_value), judge.significance
    )
}

/// A p-value with three decimals, or in scientific notation below 0.001 (`3.7e-8`).
pub(crate) fn p_value(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn quality(cnn: &ModelSummary, transfer: &ModelSummary, judge: &Judge) -> String {
    let n = cnn.metrics.test.n.max(transfer.metrics.test.n);
    let Some((w, l)) = more_accurate(cnn, transfer, judge) else {
        let (c, t) = (&cnn.metrics.test, &transfer.metrics.test);
        return format!(
            "On the {n} test photos the two models are equally accurate within noise: CNN {} vs transfer model {} (accuracy with its 95 % Wilson interval); {}; log loss {:.3} vs {:.3}.",
            with_interval(c), with_interval(t), evidence(judge), c.log_loss, t.log_loss
        );
    };
    let (tw, tl) = (&w.metrics.test, &l.metrics.test);
    format!(
        "The {} is more accurate on the {n} test photos: {} vs {} ({:+.1} points; 95 % Wilson intervals); {}; F1 {:.3} vs {:.3}, ROC-AUC {:.3} vs {:.3}, log loss {:.3} vs {:.3}.",
        w.title(), with_interval(tw), with_interval(tl), 100.0 * (tw.accuracy - tl.accuracy),
        evidence(judge), tw.f1, tl.f1, tw.roc_auc, tl.roc_auc, tw.log_loss, tl.log_loss
    )
}

/// How the train-minus-test gap compares with the configured limit: within it, above it but
/// within twice it (mild), or beyond twice it.
fn fit(m: &ModelSummary, limit: f64) -> String {
    let (train, test) = (m.metrics.train.accuracy, m.metrics.test.accuracy);
    let (how, side) = if m.gap <= limit {
        ("does not over-fit", "within the")
    } else if m.gap <= 2.0 * limit {
        ("over-fits mildly", "above, but within twice, the")
    } else {
        ("over-fits", "more than twice the")
    };
    format!(
        "The {} {how}: train accuracy {} vs test {} ({:+.1} points, {side} {:.1}-point limit).",
        m.title(),
        pct(train),
        pct(test),
        100.0 * m.gap,
        100.0 * limit
    )
}

/// `a / b` as "N.Nx", guarding against zero.
fn ratio(a: f64, b: f64) -> String {
    format!("{:.1}x", a / b.max(f64::EPSILON))
}

/// The training-cost sentence: costs from raw photos (every data preparation counted,
/// also work an earlier command did and a cache kept), then a re-run with warm caches.
/// Runs recorded before lab5 counted data preparation get this run's own figures, said
/// as such.
fn training_cost(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let (Some(cold_c), Some(cold_t)) = (cnn.cold_total_secs, transfer.cold_total_secs) else {
        return training_cost_as_run(cnn, transfer);
    };
    let part = |m: &ModelSummary, cold: f64| {
        let data = m.cold_data_secs.unwrap_or_default();
        let shared = match &m.data_shared_with {
            Some(other) => format!(", work it shares with {other}"),
            None => String::new(),
        };
        format!(
            "{cold:.1} s for the {} ({data:.1} s preparing its data from the photos{shared}; {} epochs of {:.2} s, best validation loss after {:.1} s)",
            m.title(), m.epochs_run, m.secs_per_epoch, m.to_best_secs
        )
    };
    let (fast, slow) = faster(cnn, transfer, |m| m.cold_total_secs.unwrap_or_default());
    let warm = |m: &ModelSummary| m.warm_total_secs.unwrap_or_default();
    let (wf, ws) = faster(cnn, transfer, warm);
    format!(
        "From the raw photos to a trained model it took {} and {}: the {} was {} faster to train. A re-run with every cache warm takes {:.1} s and {:.1} s ({} {} faster).",
        part(cnn, cold_c),
        part(transfer, cold_t),
        fast.title(),
        ratio(slow.cold_total_secs.unwrap_or_default(), fast.cold_total_secs.unwrap_or_default()),
        warm(cnn),
        warm(transfer),
        wf.title(),
        ratio(warm(ws), warm(wf)),
    )
}

/// The two models ordered by `secs`, the cheaper first.
fn faster<'a>(
    cnn: &'a ModelSummary,
    transfer: &'a ModelSummary,
    secs: impl Fn(&ModelSummary) -> f64,
) -> (&'a ModelSummary, &'a ModelSummary) {
    match secs(cnn) <= secs(transfer) {
        true => (cnn, transfer),
        false => (transfer, cnn),
    }
}

/// [`training_cost`] for runs without a recorded cost from raw photos: the runs' own
/// totals, with what they leave out said in the sentence.
fn training_cost_as_run(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let part = |m: &ModelSummary| {
        format!(
            "{:.1} s for the {} ({} epochs of {:.2} s, {:.1} s preparing its data)",
            m.total_secs,
            m.title(),
            m.epochs_run,
            m.secs_per_epoch,
            m.preprocess_secs
        )
    };
    let old: Vec<&str> = [cnn, transfer]
        .into_iter()
        .filter(|m| m.cold_total_secs.is_none())
        .map(|m| m.model.as_str())
        .collect();
    format!(
        "As these runs went, training took {} and {}; this counts only the data preparation each run did itself, not what it read from a cache, so no \"faster to train\" ratio is given: the run(s) {} were recorded before lab5 counted costs from raw photos; train them again ({}) for the full cost.",
        part(cnn),
        part(transfer),
        old.join(" and "),
        old.iter().map(|m| format!("`lab5 train {m}`")).collect::<Vec<_>>().join(", "),
    )
}

fn inference(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let (fast, slow) = if cnn.inference.images_per_sec >= transfer.inference.images_per_sec {
        (cnn, transfer)
    } else {
        (transfer, cnn)
    };
    let (f, s) = (&fast.inference, &slow.inference);
    format!(
        "At inference the {} is {} faster: {:.1} vs {:.1} photos/s ({} px vs {} px inputs, {} parameters vs {}, {} thread(s), {} photos timed).",
        fast.title(),
        ratio(f.images_per_sec, s.images_per_sec),
        f.images_per_sec,
        s.images_per_sec,
        f.image_size,
        s.image_size,
        millions(fast.params),
        millions(slow.params),
        f.threads,
        f.images
    )
}

fn size(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let part = |m: &ModelSummary| {
        let frozen = m.params - m.trainable_params;
        format!(
            "the {} has {} parameters, {} trained and {} frozen",
            m.title(),
            millions(m.params),
            millions(m.trainable_params),
            millions(frozen)
        )
    };
    format!("Size: {}; {}.", part(cnn), part(transfer))
}

fn overall(cnn: &ModelSummary, transfer: &ModelSummary, judge: &Judge) -> String {
    let cheap = if cnn.inference.images_per_sec >= transfer.inference.images_per_sec {
        cnn
    } else {
        transfer
    };
    let Some((w, _)) = more_accurate(cnn, transfer, judge) else {
        return format!(
            "Overall: the test photos cannot tell the two models' accuracy apart; the {} is the cheaper one to run.",
            cheap.title()
        );
    };
    if w.model == cheap.model {
        return format!(
            "Overall: the {} is both the better classifier and the faster one to run here.",
            w.title()
        );
    }
    format!(
        "Overall: the {} is the better classifier here; the {} is the cheaper one to run, for when speed matters more than the last points of accuracy.",
        w.title(),
        cheap.title()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_p_values_are_written_in_scientific_notation() {
        assert_eq!(super::p_value(0.0215), "0.021");
        assert_eq!(super::p_value(1.0), "1.000");
        assert_eq!(super::p_value(3.7e-8), "3.7e-8");
    }
}

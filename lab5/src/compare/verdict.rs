//! The written verdict: a few sentences generated from the numbers of both models
//! (accuracy, over-fitting, training cost, inference speed, size), ending with which
//! model to use for what. Nothing in it is fixed text about which model wins.

use super::summary::ModelSummary;

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn millions(n: i64) -> String {
    format!("{:.2} M", n as f64 / 1e6)
}

/// The sentences of the verdict, in reading order.
pub(crate) fn verdict(
    cnn: &ModelSummary,
    transfer: &ModelSummary,
    overfit_gap: f64,
) -> Vec<String> {
    vec![
        quality(cnn, transfer),
        fit(cnn, overfit_gap),
        fit(transfer, overfit_gap),
        training_cost(cnn, transfer),
        inference(cnn, transfer),
        size(cnn, transfer),
        overall(cnn, transfer),
    ]
}

/// Accuracy difference below one test photo counts as a tie.
fn accuracy_tie(a: &ModelSummary, b: &ModelSummary) -> bool {
    let n = a.metrics.test.n.max(b.metrics.test.n).max(1);
    (a.metrics.test.accuracy - b.metrics.test.accuracy).abs() < 1.0 / n as f64
}

/// The better classifier: higher test accuracy, or lower test log loss on a tie.
fn better<'a>(a: &'a ModelSummary, b: &'a ModelSummary) -> (&'a ModelSummary, &'a ModelSummary) {
    let (ta, tb) = (&a.metrics.test, &b.metrics.test);
    let a_wins = if accuracy_tie(a, b) {
        ta.log_loss <= tb.log_loss
    } else {
        ta.accuracy > tb.accuracy
    };
    if a_wins {
        (a, b)
    } else {
        (b, a)
    }
}

fn quality(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let (w, l) = better(cnn, transfer);
    let (tw, tl) = (&w.metrics.test, &l.metrics.test);
    let scores = format!(
        "F1 {:.3} vs {:.3}, ROC-AUC {:.3} vs {:.3}, log loss {:.3} vs {:.3}",
        tw.f1, tl.f1, tw.roc_auc, tl.roc_auc, tw.log_loss, tl.log_loss
    );
    if accuracy_tie(cnn, transfer) {
        return format!(
            "On the {} test photos both models are equally accurate ({} vs {}, less than one photo apart); the {} is better calibrated ({scores}).",
            tw.n, pct(tw.accuracy), pct(tl.accuracy), w.title()
        );
    }
    format!(
        "The {} is more accurate on the {} test photos: {} vs {} ({:+.1} points); {scores}.",
        w.title(),
        tw.n,
        pct(tw.accuracy),
        pct(tl.accuracy),
        100.0 * (tw.accuracy - tl.accuracy)
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

fn training_cost(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let part = |m: &ModelSummary| {
        format!(
            "{:.1} s for the {} ({} epochs of {:.2} s, best validation loss after {:.1} s, {:.1} s preparing its data)",
            m.total_secs, m.title(), m.epochs_run, m.secs_per_epoch, m.to_best_secs, m.preprocess_secs
        )
    };
    let (fast, slow) = if cnn.total_secs <= transfer.total_secs {
        (cnn, transfer)
    } else {
        (transfer, cnn)
    };
    format!(
        "Training took {} and {}: the {} was {} faster to train (data preparation counts only what was not cached yet; the transfer model's features come from the backbone pass it shares with the label check).",
        part(cnn),
        part(transfer),
        fast.title(),
        ratio(slow.total_secs, fast.total_secs)
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

fn overall(cnn: &ModelSummary, transfer: &ModelSummary) -> String {
    let (w, _) = better(cnn, transfer);
    let cheap = if cnn.inference.images_per_sec >= transfer.inference.images_per_sec {
        cnn
    } else {
        transfer
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

//! The comparison's logic on model summaries built from real metric computations
//! (predictions with a chosen number of mistakes): the verdict follows the numbers (swap
//! them and it swaps), every row's "better" follows its direction, the charts render as
//! SVG, and what `save` writes `load` reads back. The whole `lab5 compare` on trained runs
//! is exercised by the pipeline test.

use lab5::compare::{self, Better, Comparison, Inference, ModelSummary};
use lab5::train::metrics;
use lab5::train::record::SplitMetrics;
use lab5::Config;
use std::path::Path;

/// Metrics of `n` alternating cat/dog photos with `wrong` confident mistakes.
fn metrics_with(n: usize, wrong: usize) -> metrics::Metrics {
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let p: Vec<f64> = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let right = if y == 1 { 0.9 } else { 0.1 };
            if i < wrong {
                1.0 - right
            } else {
                right
            }
        })
        .collect();
    metrics::compute(&p, &labels)
}

/// A model summary with `train_wrong` / `test_wrong` mistakes out of 100, the given
/// inference speed (photos/s) and training-loop seconds.
fn summary(
    model: &str,
    train_wrong: usize,
    test_wrong: usize,
    speed: f64,
    secs: f64,
) -> ModelSummary {
    let (train, test) = (
        metrics_with(100, train_wrong),
        metrics_with(100, test_wrong),
    );
    let gap = train.accuracy - test.accuracy;
    let cnn = model == "cnn";
    ModelSummary {
        model: model.into(),
        kind: model.into(),
        params: if cnn { 420_000 } else { 3_700_000 },
        trainable_params: if cnn { 420_000 } else { 360_000 },
        epochs_run: 30,
        best_epoch: 25,
        stopped_early: false,
        preprocess_secs: 2.0,
        train_secs: secs,
        total_secs: secs + 2.0,
        cold_data_secs: Some(2.0),
        cold_total_secs: Some(secs + 2.0),
        warm_total_secs: Some(secs + 1.0),
        data_shared_with: (!cnn).then(|| "the label check (`lab5 audit`)".to_string()),
        secs_per_epoch: secs / 30.0,
        to_best_secs: secs * 0.8,
        inference: Inference {
            images: 128,
            image_size: 112,
            secs: 128.0 / speed,
            images_per_sec: speed,
            threads: 2,
            device: "Cpu".into(),
        },
        metrics: SplitMetrics {
            train,
            val: metrics_with(100, test_wrong),
            test,
        },
        gap,
    }
}

fn contains_all(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing {p:?} in\n{text}");
    }
}

/// The verdict of a comparison with the 5-point over-fitting limit and both models'
/// answers on the same photos counted in `paired` (both right, only the CNN, only the
/// transfer model, both wrong), judged at p < 0.05, as one text.
fn verdict(cnn: ModelSummary, transfer: ModelSummary, paired: [usize; 4]) -> String {
    let [a, b, c, d] = paired;
    let paired = compare::Paired::from_counts(a, b, c, d);
    let report = lab5::config::Report::default();
    Comparison::with_test(cnn, transfer, paired, None, &report)
        .verdict
        .join("\n")
}

/// The reliability diagram (10 bins) of `n` photos predicted dog with probability
/// `p_dog`, `right` of them dogs.
fn diagram(n: usize, p_dog: f64, right: usize) -> lab5::train::calibration::Calibration {
    let labels: Vec<i64> = (0..n).map(|i| i64::from(i < right)).collect();
    lab5::train::calibration::calibration(&vec![p_dog; n], &labels, 10)
}

#[test]
fn better_calibrated_only_when_ece_and_the_worst_bin_agree() {
    let say = |cnn, transfer| {
        let c = Comparison::with_test(
            summary("cnn", 4, 10, 500.0, 400.0),
            summary("transfer", 1, 2, 60.0, 20.0),
            compare::Paired::from_counts(89, 1, 9, 1),
            Some(compare::Calibrations { cnn, transfer }),
            &lab5::config::Report::default(),
        );
        assert!(c.calibration_chart().is_ok());
        c.verdict.join("\n")
    };
    // 90 % right at 99 % confidence vs 90 % right at 90 %: over-confident vs calibrated.
    let v = say(diagram(100, 0.99, 90), diagram(100, 0.9, 90));
    contains_all(
        &v,
        &[
            "expected calibration error 0.090 (CNN) vs 0.000 (transfer model), worst bin of the reliability diagram 0.090 vs 0.000",
            "the transfer model is better calibrated, by both",
        ],
    );
    // The CNN: nearly calibrated but for one confident-looking miss at 55 %; the
    // transfer model: 5 points off everywhere. ECE favours the CNN, the worst bin the other.
    let mut cnn_p = vec![0.9; 99];
    cnn_p.push(0.55);
    let mut cnn_y: Vec<i64> = (0..99).map(|i| i64::from(i < 89)).collect();
    cnn_y.push(0);
    let cnn = lab5::train::calibration::calibration(&cnn_p, &cnn_y, 10);
    let v = say(cnn, diagram(100, 0.9, 85));
    contains_all(
        &v,
        &["the two measures do not agree, so neither model is called better calibrated"],
    );
    assert!(!v.contains("better calibrated, by both"), "{v}");
}

#[test]
fn verdict_follows_the_numbers_and_swaps_with_them() {
    let cnn = summary("cnn", 4, 10, 500.0, 400.0);
    let transfer = summary("transfer", 1, 2, 60.0, 20.0);
    // 90 and 98 right of 100: they disagree on 10 photos, 1 vs 9 (p = 22/1024 = 0.021).
    let v = verdict(cnn, transfer, [89, 1, 9, 1]);
    contains_all(
        &v,
        &[
            "The transfer model is more accurate on the 100 test photos: 98.0 % [93.0, 99.4] vs 90.0 % [82.6, 94.5] (+8.0 points; 95 % Wilson intervals)",
            "they disagree on 10 of the 100 photos (only the CNN right on 1, only the transfer model on 9): McNemar's exact test p = 0.021 < 0.05",
            "The CNN over-fits mildly: train accuracy 96.0 % vs test 90.0 % (+6.0 points, above, but within twice, the 5.0-point limit)",
            "The transfer model does not over-fit: train accuracy 99.0 % vs test 98.0 % (+1.0 points, within",
            "the transfer model was 18.3x faster to train",
            "At inference the CNN is 8.3x faster: 500.0 vs 60.0 photos/s",
            "the transfer model has 3.70 M parameters, 0.36 M trained and 3.34 M frozen",
            "the transfer model is the better classifier here; the CNN is the cheaper one to run",
        ],
    );
    contains_all(
        &verdict(
            summary("cnn", 1, 2, 60.0, 20.0),
            summary("transfer", 4, 10, 500.0, 400.0),
            [89, 9, 1, 1],
        ),
        &[
            "The CNN is more accurate on the 100 test photos: 98.0 % [93.0, 99.4] vs 90.0 %",
            "The transfer model over-fits mildly: train accuracy 96.0 % vs test 90.0 %",
            "The CNN does not over-fit",
            "the CNN was 18.3x faster to train",
            "At inference the transfer model is 8.3x faster",
            "the CNN is the better classifier here; the transfer model is the cheaper one",
        ],
    );
    contains_all(
        &verdict(
            summary("cnn", 0, 14, 500.0, 400.0),
            summary("transfer", 1, 2, 60.0, 20.0),
            [86, 0, 12, 2],
        ),
        &["The CNN over-fits: train accuracy 100.0 % vs test 86.0 % (+14.0 points, more than twice the 5.0-point limit)"],
    );
}

/// The transfer model's run read the backbone pass from the cache the label check wrote
/// (its own data work: 0 s), but its cost from raw photos counts that pass.
#[test]
fn training_cost_counts_the_backbone_pass_a_cache_kept() {
    let cnn = summary("cnn", 4, 10, 500.0, 400.0);
    let mut transfer = summary("transfer", 1, 2, 60.0, 20.0);
    transfer.cold_data_secs = Some(150.0);
    transfer.cold_total_secs = Some(20.0 + 150.0 + 1.0);
    transfer.total_secs = 21.0;
    transfer.warm_total_secs = Some(21.0);
    let v = verdict(cnn.clone(), transfer.clone(), [89, 1, 9, 1]);
    contains_all(
        &v,
        &[
            "From the raw photos to a trained model it took 402.0 s for the CNN (2.0 s preparing its data from the photos; 30 epochs",
            "171.0 s for the transfer model (150.0 s preparing its data from the photos, work it shares with the label check (`lab5 audit`); 30 epochs",
            "the transfer model was 2.4x faster to train",
            "A re-run with every cache warm takes 401.0 s and 21.0 s (transfer model 19.1x faster)",
        ],
    );
    assert!(!v.contains("19.1x faster to train"), "{v}");
    let rows = Comparison::new(cnn.clone(), transfer.clone(), 0.05).rows;
    let row = |m: &str| {
        rows.iter()
            .find(|r| r.measure.starts_with(m))
            .unwrap_or_else(|| panic!("no row {m:?}"))
    };
    assert_eq!(row("cost from raw photos").transfer, Some(171.0));
    assert_eq!(
        row("data preparation from raw photos").transfer,
        Some(150.0)
    );
    assert_eq!(
        row("of which shared with another step").transfer,
        Some(150.0)
    );
    assert_eq!(row("of which shared with another step").cnn, Some(0.0));
    assert_eq!(row("re-run with warm caches").transfer, Some(21.0));
    let chart = Comparison::new(cnn.clone(), transfer.clone(), 0.05)
        .time_chart()
        .unwrap();
    assert!(
        chart.svg().contains("from raw photos"),
        "the cost bars are missing"
    );

    // A run recorded before costs from raw photos were counted: said, not hidden.
    transfer.cold_data_secs = None;
    transfer.cold_total_secs = None;
    transfer.warm_total_secs = None;
    let old = Comparison::new(cnn.clone(), transfer.clone(), 0.05);
    assert!(
        !old.time_chart().unwrap().svg().contains("from raw photos"),
        "a 0 s cost bar"
    );
    assert_eq!(
        old.rows
            .iter()
            .find(|r| r.measure.starts_with("re-run"))
            .unwrap()
            .transfer,
        None
    );
    let v = verdict(cnn, transfer, [89, 1, 9, 1]);
    assert!(
        !v.contains("faster to train") || v.contains("no \"faster to train\" ratio"),
        "{v}"
    );
    contains_all(
        &v,
        &[
            "As these runs went, training took 402.0 s for the CNN",
            "not what it read from a cache, so no \"faster to train\" ratio is given: the run(s) transfer were recorded before lab5 counted costs from raw photos; train them again (`lab5 train transfer`)",
        ],
    );
}

#[test]
fn a_difference_the_photos_cannot_show_is_within_noise_and_one_model_can_win_everything() {
    contains_all(
        &verdict(
            summary("cnn", 2, 3, 900.0, 100.0),
            summary("transfer", 2, 3, 50.0, 10.0),
            [96, 1, 1, 2],
        ),
        &[
            "the two models are equally accurate within noise: CNN 97.0 % [91.5, 99.0] vs transfer model 97.0 % [91.5, 99.0]",
            "McNemar's exact test p = 1.000 \u{2265} 0.05",
            "Overall: the test photos cannot tell the two models' accuracy apart; the CNN is the cheaper one to run.",
        ],
    );
    // 90 vs 95 % right, but they disagree on 15 photos 5 vs 10: p = 0.30, within noise.
    let v = verdict(
        summary("cnn", 4, 10, 500.0, 400.0),
        summary("transfer", 1, 5, 60.0, 20.0),
        [85, 5, 10, 0],
    );
    contains_all(
        &v,
        &["equally accurate within noise", "p = 0.302 \u{2265} 0.05"],
    );
    assert!(!v.contains("more accurate"), "{v}");
    // Without paired answers, overlapping 95 % intervals are within noise too.
    let alone = Comparison::new(
        summary("cnn", 4, 10, 500.0, 400.0),
        summary("transfer", 1, 2, 60.0, 20.0),
        0.05,
    );
    let v = alone.verdict.join("\n");
    contains_all(
        &v,
        &[
            "within noise",
            "judged by whether the two 95 % intervals overlap",
        ],
    );
    contains_all(
        &verdict(
            summary("cnn", 0, 1, 900.0, 100.0),
            summary("transfer", 2, 8, 50.0, 10.0),
            [92, 7, 0, 1],
        ),
        &["Overall: the CNN is both the better classifier and the faster one to run here."],
    );
}

#[test]
fn every_row_names_the_better_model_by_its_direction() {
    let c = Comparison::new(
        summary("cnn", 4, 10, 500.0, 400.0),
        summary("transfer", 1, 2, 60.0, 20.0),
        0.05,
    );
    let row = |m: &str| {
        c.rows
            .iter()
            .find(|r| r.measure == m)
            .unwrap_or_else(|| panic!("{m}"))
    };
    assert_eq!(row("test accuracy, %").winner(), "transfer");
    assert_eq!(row("test log loss").winner(), "transfer");
    assert_eq!(row("inference, images/s").winner(), "cnn");
    assert_eq!(row("parameters (total)").winner(), "cnn");
    assert_eq!(row("training time, s").winner(), "transfer");
    assert_eq!(row("epochs run").winner(), "");
    assert_eq!(row("epochs run").better, Better::Neither);
    let acc = row("test accuracy, %");
    assert_eq!((acc.cnn, acc.transfer), (Some(90.0), Some(98.0)));
    assert_eq!(acc.shown(acc.cnn), "90.00");
    assert_eq!(c.table().unwrap().0.height(), c.rows.len());
    assert_eq!(c.to_csv().unwrap().lines().count(), c.rows.len() + 1);
}

/// Equal up to JSON's float parsing (serde_json may be one unit in the last place off).
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
        (a, b) => a == b,
    }
}

#[test]
fn charts_render_and_save_then_load_round_trips() {
    let c = Comparison::new(
        summary("cnn", 4, 10, 500.0, 400.0),
        summary("transfer", 1, 2, 60.0, 20.0),
        0.05,
    );
    let charts = c.charts().unwrap();
    assert_eq!(charts.len(), 6);
    for (name, fig) in &charts {
        let doc = roxmltree::Document::parse(fig.svg()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(
            texts.contains("CNN") && texts.contains("transfer model"),
            "{name}: legend"
        );
    }
    let html = c.to_html().unwrap();
    assert!(html.contains("<table class=\"lab5\">") && html.contains("<ul class=\"verdict\">"));

    let dir = std::env::temp_dir().join(format!("lab5-compare-{}", std::process::id()));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json");
    let mut cfg = Config::load(shipped).unwrap();
    cfg.paths.runs_dir = dir.clone();
    let written = c.save(&compare::dir(&cfg)).unwrap();
    assert_eq!(written.len(), 3 + 2 * 6);
    assert!(written.iter().all(|p| p.is_file()));
    let back = compare::load(&cfg).unwrap();
    assert_eq!(back.verdict, c.verdict);
    assert_eq!(back.rows.len(), c.rows.len());
    for (a, b) in back.rows.iter().zip(&c.rows) {
        assert_eq!(
            (&a.measure, a.decimals, a.better),
            (&b.measure, b.decimals, b.better)
        );
        assert!(
            close(a.cnn, b.cnn) && close(a.transfer, b.transfer),
            "{a:?} vs {b:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

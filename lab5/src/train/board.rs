//! What TensorBoard shows of a run besides its training curves ([`super::monitor`]): the
//! run's hyper-parameters when training starts (the *HParams* tab), and when it ends the
//! final metrics of the kept weights as `final/...` scalars (the HParams tab's metric
//! columns) with the test confusion matrix, the ROC curves and the most confident test
//! mistakes as images (the *Images* tab). The same charts as the report's.

use super::metrics::{roc_auc, roc_curve, THRESHOLD};
use super::record::{RunRecord, Scored};
use super::tensorboard::{self, hparams, EventWriter};
use crate::config::Config;
use crate::data::{Class, SplitName};
use crate::plot::{self, Figure, Mistake, Photo, RocCurve};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Sections of the run settings whose keys are hyper-parameters without the section
/// name (`cnn.max_lr` and `transfer.max_lr` are both `max_lr`).
const BARE_SECTIONS: [&str; 3] = ["cnn", "transfer", "preprocess"];

/// Tags of the final metrics of the kept weights, written at the run's last epoch.
pub const FINAL_TAGS: [&str; 9] = [
    "final/train_accuracy",
    "final/val_accuracy",
    "final/test_accuracy",
    "final/test_f1",
    "final/test_roc_auc",
    "final/test_log_loss",
    "final/train_minus_test",
    "final/best_epoch",
    "final/train_secs",
];
/// Tag of the test confusion matrix image.
pub const CONFUSION_TAG: &str = "final/confusion_matrix_test";
/// Tag of the ROC curves image.
pub const ROC_TAG: &str = "final/roc";
/// Tag of the image of the most confident test mistakes.
pub const MISTAKES_TAG: &str = "final/confident_mistakes_test";

/// The run's hyper-parameters: its settings (`settings`, e.g. the `cnn`, `preprocess`
/// and `augment` sections and the seed) flattened, with `model` (kind) and `run` (name).
///
/// # Errors
/// Two settings flatten to the same name.
pub(crate) fn hyper_parameters(
    settings: &serde_json::Value,
    kind: &str,
    run: &str,
) -> Result<hparams::HParams> {
    let mut h = hparams::flatten(settings, &BARE_SECTIONS)?;
    h.insert("model".into(), hparams::text(kind));
    h.insert("run".into(), hparams::text(run));
    Ok(h)
}

/// Writes the start of the run's HParams session (step 0) and flushes.
pub(crate) fn log_start(w: &mut EventWriter, h: hparams::HParams, run: &str) -> Result<()> {
    let now = tensorboard::now();
    w.plugin_values(vec![hparams::session_start(h, run, now)], 0)?;
    w.flush()
}

/// Writes the final metrics, the confusion matrix, ROC curves and most confident test
/// mistakes (`cfg.report.mistakes` photos, `cfg.report.grid_cols` a row, read from the
/// data folder of `cfg`) at the run's last epoch, then the end of its HParams session.
///
/// # Errors
/// A chart cannot be drawn, a photo cannot be read, or the event file cannot be written.
pub(crate) fn log_end(
    w: &mut EventWriter,
    cfg: &Config,
    rec: &RunRecord,
    scored: &[Scored],
) -> Result<()> {
    let m = &rec.metrics;
    let step = m.history.len() as i64;
    let s = &m.metrics;
    let values = [
        s.train.accuracy,
        s.val.accuracy,
        s.test.accuracy,
        s.test.f1,
        s.test.roc_auc,
        s.test.log_loss,
        m.gap.train_minus_test,
        m.best_epoch as f64,
        m.durations.train_secs,
    ];
    for (tag, v) in FINAL_TAGS.iter().zip(values) {
        if v.is_finite() {
            w.scalar(tag, v, step)?;
        }
    }
    let title = |what: &str| format!("{}: {what}", m.name);
    let confusion = plot::confusion_matrix(
        &title("confusion matrix, test split"),
        &s.test.confusion,
        &["cat", "dog"],
    )?;
    w.image(CONFUSION_TAG, &confusion.bitmap()?, step)?;
    w.image(
        ROC_TAG,
        &roc_figure(&title("ROC curves"), scored)?.bitmap()?,
        step,
    )?;
    let (n, cols) = (cfg.report.mistakes, cfg.report.grid_cols);
    if n > 0 {
        let paths = photo_paths(cfg)?;
        if let Some(fig) = mistakes_figure(&m.name, scored, &paths, n, cols)? {
            w.image(MISTAKES_TAG, &fig.bitmap()?, step)?;
        }
    }
    w.plugin_values(vec![hparams::session_end(tensorboard::now())], step)?;
    w.flush()
}

/// Writes `values` (tag, value) at step `step` as the event file `file` of the
/// TensorBoard folder `dir` (results measured after training, e.g. the robustness
/// check's), replacing an earlier one of that name: written to a temp file whose name
/// holds no `tfevents` (TensorBoard never reads it half-written), then renamed.
///
/// # Errors
/// The folder or the file cannot be written or renamed (the temp file is removed).
pub(crate) fn replace_events(
    dir: &Path,
    file: &str,
    step: i64,
    values: &[(&str, f64)],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.replace("tfevents", "events"),
        std::process::id()
    ));
    let written = (|| {
        let mut w = EventWriter::create_file(&tmp)?;
        for (tag, v) in values {
            if v.is_finite() {
                w.scalar(tag, *v, step)?;
            }
        }
        w.flush()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let path = dir.join(file);
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename onto {}", path.display()))
}

/// The class predicted for `s` and the probability the model gave it.
pub(crate) fn predicted(s: &Scored) -> (Class, f64) {
    prediction(s.p_dog)
}

/// The class a model predicts when it gives a photo `p_dog` (dog above
/// [`THRESHOLD`]), and the probability of that class.
pub(crate) fn prediction(p_dog: f64) -> (Class, f64) {
    if p_dog > THRESHOLD {
        (Class::Dog, p_dog)
    } else {
        (Class::Cat, 1.0 - p_dog)
    }
}

/// Wrong predictions on `split`, most confident first, with the class predicted and the
/// probability it was given.
pub(crate) fn confident_mistakes(scored: &[Scored], split: SplitName) -> Vec<(Scored, Class, f64)> {
    let mut wrong: Vec<(Scored, Class, f64)> = scored
        .iter()
        .filter(|s| s.split == split)
        .map(|s| {
            let (class, p) = predicted(s);
            (s.clone(), class, p)
        })
        .filter(|(s, class, _)| *class != s.label)
        .collect();
    wrong.sort_by(|a, b| b.2.total_cmp(&a.2));
    wrong
}

/// ROC curves of the predictions on train, validation and test, with their AUC.
pub(crate) fn roc_figure(title: &str, scored: &[Scored]) -> Result<Figure> {
    let curve = |split: SplitName| {
        let rows: Vec<&Scored> = scored.iter().filter(|s| s.split == split).collect();
        let p: Vec<f64> = rows.iter().map(|s| s.p_dog).collect();
        let y: Vec<i64> = rows.iter().map(|s| s.label.index()).collect();
        RocCurve {
            name: split.name().to_string(),
            points: roc_curve(&p, &y),
            auc: roc_auc(&p, &y),
        }
    };
    plot::roc_curves(title, &SplitName::ALL.map(curve))
}

/// The `n` most confident test mistakes as photos (`cols` a row) with the class and
/// probability the model gave, under the title `<title>: most confident test mistakes`;
/// `None` when it made none on the test split.
///
/// # Errors
/// `n` is 0, no mistake's photo is in `paths`, or a photo cannot be read.
pub(crate) fn mistakes_figure(
    title: &str,
    scored: &[Scored],
    paths: &HashMap<String, PathBuf>,
    n: usize,
    cols: usize,
) -> Result<Option<Figure>> {
    let wrong = confident_mistakes(scored, SplitName::Test);
    if wrong.is_empty() {
        return Ok(None);
    }
    let mistake = |(s, class, p): &(Scored, Class, f64)| {
        Some(Mistake {
            photo: Photo::File(paths.get(&s.id)?.clone()),
            truth: s.label.name().into(),
            predicted: class.name().into(),
            probability: *p,
        })
    };
    let items: Vec<Mistake> = wrong.iter().take(n).filter_map(mistake).collect();
    let title = format!(
        "{title}: most confident test mistakes ({} of {})",
        items.len(),
        wrong.len()
    );
    Ok(Some(plot::mistakes_gallery(&title, &items, cols)?))
}

/// Image file of every manifest id of `cfg`'s data set.
pub(crate) fn photo_paths(cfg: &Config) -> Result<HashMap<String, PathBuf>> {
    let data_dir = cfg.data_dir();
    let m = super::run::load_manifest(cfg)?;
    Ok(m.records
        .into_iter()
        .map(|r| (r.id, data_dir.join(r.path)))
        .collect())
}

/// Prints that `what` was not written to TensorBoard and why (on stderr, as lab5's other
/// warnings); the caller goes on: TensorBoard's extras never cost a trained run.
pub(crate) fn warn_skipped(what: &str, e: &anyhow::Error) {
    eprintln!("lab5: TensorBoard: {what} skipped: {e:#}");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scored photo (also the comparison's paired-test fixtures).
    pub(crate) fn row(id: &str, split: SplitName, label: Class, p_dog: f64) -> Scored {
        Scored {
            id: id.into(),
            split,
            label,
            p_dog,
        }
    }

    #[test]
    fn mistakes_are_the_wrong_test_predictions_most_confident_first() {
        let scored = [
            row("a", SplitName::Test, Class::Cat, 0.7),   // wrong, 0.7
            row("b", SplitName::Test, Class::Dog, 0.05),  // wrong, 0.95
            row("c", SplitName::Test, Class::Dog, 0.9),   // right
            row("d", SplitName::Train, Class::Cat, 0.99), // wrong, other split
        ];
        let wrong = confident_mistakes(&scored, SplitName::Test);
        let ids: Vec<&str> = wrong.iter().map(|w| w.0.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(wrong[0].1, Class::Cat);
        assert!((wrong[0].2 - 0.95).abs() < 1e-12);
    }

    #[test]
    fn hyper_parameters_share_training_keys_across_models() {
        let cnn = serde_json::json!({"cnn": {"max_lr": 0.003}, "preprocess": {"image_size": 112}, "seed": 1});
        let tr = serde_json::json!({"transfer": {"max_lr": 0.001, "image_size": 224}, "augment": null, "seed": 1});
        let a = hyper_parameters(&cnn, "cnn", "cnn").unwrap();
        let b = hyper_parameters(&tr, "transfer", "transfer").unwrap();
        for key in ["max_lr", "image_size", "seed", "model", "run"] {
            assert!(a.contains_key(key) && b.contains_key(key), "{key}");
        }
    }

    #[test]
    fn real_settings_of_both_models_flatten() {
        // a clash (two settings named alike once the bare sections lose their prefix)
        // would only warn at a run's start; here it fails before it ships (the ablation
        // variants are checked in `ablation`'s tests, which come after `train`)
        let cfg = Config::from_json(include_str!("../../../config.json")).unwrap();
        let mut on_images = cfg.clone();
        on_images.transfer.augment = true;
        let all = [
            ("cnn", super::super::run::cnn_settings(&cfg)),
            ("transfer", super::super::transfer::settings(&cfg)),
            ("transfer", super::super::transfer::settings(&on_images)),
        ];
        for (kind, settings) in &all {
            assert_flattens(settings, kind);
        }
    }

    /// Panics unless `settings` flatten into hyper-parameters with the shared keys.
    pub(crate) fn assert_flattens(settings: &serde_json::Value, kind: &str) {
        let h = hyper_parameters(settings, kind, "run")
            .unwrap_or_else(|e| panic!("{kind} {settings}: {e:#}"));
        for key in ["model", "run", "seed", "epochs", "max_lr", "image_size"] {
            assert!(h.contains_key(key), "{kind}: no {key} in {:?}", h.keys());
        }
    }

    #[test]
    fn replaced_events_leave_one_file_with_the_last_values() {
        use super::tensorboard::contents::EventReader;
        use super::tensorboard::proto::{event::What, summary_value::Value};
        let dir = std::env::temp_dir().join(format!("lab5-replace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = "events.out.tfevents.robustness.lab5";
        replace_events(&dir, file, 3, &[("final/a", 0.5)]).unwrap();
        replace_events(&dir, file, 3, &[("final/a", 0.75), ("final/b", f64::NAN)]).unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [file]);
        let events: Vec<_> = EventReader::open(&dir.join(file))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let values: Vec<(String, Option<Value>, i64)> = events
            .iter()
            .filter_map(|e| match &e.what {
                Some(What::Summary(s)) => {
                    Some((s.value[0].tag.clone(), s.value[0].value.clone(), e.step))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            values,
            [("final/a".to_string(), Some(Value::SimpleValue(0.75)), 3)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

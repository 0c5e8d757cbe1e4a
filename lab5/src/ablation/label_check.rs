//! `lab5 ablate --label-check`: does the label check matter? The transfer model's head is
//! trained twice on the same split, on the cached backbone features (seconds): once on
//! every photo (*all*: the label check ignored, its exclusions lifted) and once without
//! the training and validation photos the check flags (*checked*). Both are scored on the
//! same test photos: the figure compared is the accuracy on the test photos the check does
//! NOT flag (labels nobody doubts), with its 95 % Wilson interval and McNemar's exact test
//! of the two heads on those photos; the flagged test photos are scored on their own
//! (against their labels, which the check doubts). With `--cnn` the CNN is trained the
//! same way at the ablation study's budget (`ablation.epochs`, `ablation.image_size`):
//! minutes to hours on a CPU, never part of `lab5 run` or of the tests.
//!
//! The flagged photos are those of the label check run now with the config's `audit`
//! rule on the cached backbone pass (the verdicts `lab5 audit` writes to
//! `data/audit.csv`), plus any photo the manifest already excludes as `label-check`.
//! Runs go to `runs/ablation/label_check/<model>-{all,checked}/` (reused while current,
//! like `lab5 train`), the summary to `label_check.{json,md}` and `accuracy.{svg,png}`
//! there.

use super::{variant_config, RECIPE};
use crate::config::Config;
use crate::data::{Exclusion, Manifest, SplitName};
use crate::labels::audit::{self, Audit};
use crate::plot::{bar_chart, show_html, verdict_then_table, Figure, Table};
use crate::train::breeds::GroupAccuracy;
use crate::train::metrics::{mcnemar_exact, THRESHOLD};
use crate::train::record::{write_json, Scored};
use crate::train::run::{cnn_data_key, cnn_settings, load_manifest, train_cnn_on};
use crate::train::transfer::train_transfer_on;
use crate::train::RunRecord;
use anyhow::{Context, Result};
use polars::prelude::df;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Folder of this study inside `runs/ablation/`.
pub(crate) const DIR: &str = "label_check";
/// The summary, as JSON.
pub const JSON_FILE: &str = "label_check.json";
/// The summary, as Markdown.
pub const MARKDOWN_FILE: &str = "label_check.md";

/// One model trained on one version of the training photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// `all` (every photo) or `checked` (flagged training and validation photos left out).
    pub name: String,
    /// The run folder.
    pub run: PathBuf,
    /// Photos it trained on.
    pub train_photos: usize,
    /// Photos it was validated on (early stopping).
    pub val_photos: usize,
    /// Seconds of its training loop.
    pub train_secs: f64,
    /// Its answers on the test photos the check does not flag.
    pub kept: GroupAccuracy,
    /// Its answers on the test photos the check flags (scored against their labels).
    pub flagged: GroupAccuracy,
}

/// One model with and without the label check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArms {
    /// `transfer` or `cnn`.
    pub model: String,
    /// Trained on every photo.
    pub all: Arm,
    /// Trained without the flagged photos.
    pub checked: Arm,
    /// Unflagged test photos only the `all` model classified right.
    pub only_all: usize,
    /// Unflagged test photos only the `checked` model classified right.
    pub only_checked: usize,
    /// McNemar's exact two-sided p-value of `only_all` against `only_checked`.
    pub p_value: f64,
}

/// Photos the label check flags, per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flagged {
    /// In the training split (left out of the `checked` arms).
    pub train: usize,
    /// In the validation split (left out of the `checked` arms).
    pub val: usize,
    /// In the test split (scored on their own by both arms).
    pub test: usize,
}

/// The whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelCheckAblation {
    /// Flagged photos per split.
    pub flagged: Flagged,
    /// `report.significance`: the p-value below which a difference counts.
    pub significance: f64,
    /// The transfer model, then the CNN when it was trained.
    pub models: Vec<ModelArms>,
}

/// `runs/ablation/label_check/`.
pub fn dir(cfg: &Config) -> PathBuf {
    super::dir(cfg).join(DIR)
}

/// The ids the label check flags: its verdicts now, plus the manifest's `label-check`
/// exclusions.
fn flagged_ids(cfg: &Config, manifest: &Manifest) -> Result<HashSet<String>> {
    let device = crate::runtime::init(cfg)?;
    let check = Audit::run(cfg, manifest, device)?;
    let mut ids: HashSet<String> = check.flagged().iter().map(|r| r.id.clone()).collect();
    let excluded = manifest
        .records
        .iter()
        .filter(|r| r.excluded == Some(Exclusion::LabelCheck));
    ids.extend(excluded.map(|r| r.id.clone()));
    Ok(ids)
}

/// The two versions of the split: every photo (the label check's exclusions lifted) and
/// the same without the flagged training and validation photos (test photos stay).
fn arms_of(source: &Manifest, flagged: &HashSet<String>) -> (Manifest, Manifest) {
    let mut all = source.clone();
    audit::undo(&mut all);
    let mut checked = all.clone();
    let fit = [Some(SplitName::Train), Some(SplitName::Val)];
    for r in checked.records.iter_mut() {
        if flagged.contains(&r.id) && fit.contains(&r.split) {
            r.excluded = r.excluded.or(Some(Exclusion::LabelCheck));
        }
    }
    (all, checked)
}

fn count_flagged(m: &Manifest, flagged: &HashSet<String>) -> Flagged {
    let n = |s: SplitName| {
        m.split(s)
            .iter()
            .filter(|r| flagged.contains(&r.id))
            .count()
    };
    Flagged {
        train: n(SplitName::Train),
        val: n(SplitName::Val),
        test: n(SplitName::Test),
    }
}

/// Trains (or reuses) the transfer head with and without the flagged photos, and the CNN
/// too when `cnn` is set (slow: two CNN trainings); without `cnn`, CNN runs already made
/// by an earlier `--cnn` are kept in the summary while they are current. `force` trains
/// every arm again. Writes `runs/ablation/label_check/label_check.{json,md}` and the chart.
///
/// # Errors
/// No data set or no backbone weights, or a training fails.
pub fn run(cfg: &Config, cnn: bool, force: bool) -> Result<LabelCheckAblation> {
    let source = load_manifest(cfg)?;
    let flagged = flagged_ids(cfg, &source)?;
    let (all, checked) = arms_of(&source, &flagged);
    let mut t_cfg = cfg.clone();
    t_cfg.paths.runs_dir = cfg.paths.runs_dir.join(super::DIR).join(DIR);
    let train_t = |m: &Manifest, name: &str| train_transfer_on(&t_cfg, m, name, force);
    let arm = |name: &str| format!("transfer-{name}");
    let transfer = (
        train_t(&all, &arm("all")).context("label-check ablation: transfer, all photos")?,
        train_t(&checked, &arm("checked")).context("label-check ablation: transfer, checked")?,
    );
    let mut models = vec![model_arms("transfer", transfer, &flagged)?];
    if let Some(runs) = cnn_runs(cfg, (&all, &checked), cnn, force)? {
        models.push(model_arms("cnn", runs, &flagged)?);
    }
    let study = LabelCheckAblation {
        flagged: count_flagged(&all, &flagged),
        significance: cfg.report.significance,
        models,
    };
    study.save(cfg)?;
    Ok(study)
}

/// The CNN's two runs: trained now with `train`, else the current ones of an earlier
/// `--cnn`, else `None`.
fn cnn_runs(
    cfg: &Config,
    (all, checked): (&Manifest, &Manifest),
    train: bool,
    force: bool,
) -> Result<Option<(RunRecord, RunRecord)>> {
    let mut c = variant_config(cfg, RECIPE)?;
    c.paths.runs_dir = c.paths.runs_dir.join(DIR);
    if train {
        println!("label-check ablation: the CNN, twice (slow)");
        let a = train_cnn_on(&c, (all, all), "cnn-all", force).context("CNN, all photos")?;
        let b = train_cnn_on(&c, (all, checked), "cnn-checked", force).context("CNN, checked")?;
        return Ok(Some((a, b)));
    }
    let current = |name: &str, kept: &Manifest| {
        RunRecord::load(&c.runs_dir().join(name)).ok().filter(|r| {
            let m = &r.metrics;
            m.data_key == cnn_data_key(&c, kept) && cnn_settings(&m.config) == cnn_settings(&c)
        })
    };
    Ok(current("cnn-all", all).zip(current("cnn-checked", checked)))
}

/// Whether each test photo was classified right, by id.
fn test_answers(rec: &RunRecord) -> Result<HashMap<String, bool>> {
    let rows: Vec<Scored> = rec.predictions()?;
    let right = |s: &Scored| (s.p_dog > THRESHOLD) == (s.label.index() == 1);
    Ok(rows
        .iter()
        .filter(|s| s.split == SplitName::Test)
        .map(|s| (s.id.clone(), right(s)))
        .collect())
}

/// One arm's figures from its run, `answers` its test answers.
fn arm(
    name: &str,
    rec: &RunRecord,
    answers: &HashMap<String, bool>,
    flagged: &HashSet<String>,
) -> Arm {
    let (mut kept, mut doubted) = (GroupAccuracy::default(), GroupAccuracy::default());
    for (id, &right) in answers {
        let g = if flagged.contains(id) {
            &mut doubted
        } else {
            &mut kept
        };
        g.n += 1;
        g.correct += usize::from(right);
    }
    for g in [&mut kept, &mut doubted] {
        g.accuracy = (g.n > 0).then(|| g.correct as f64 / g.n as f64);
    }
    let m = &rec.metrics;
    Arm {
        name: name.to_string(),
        run: rec.dir.clone(),
        train_photos: m.sizes.train,
        val_photos: m.sizes.val,
        train_secs: m.durations.train_secs,
        kept,
        flagged: doubted,
    }
}

/// Both arms of a model, with McNemar's test on the unflagged test photos both scored.
fn model_arms(
    model: &str,
    (all, checked): (RunRecord, RunRecord),
    flagged: &HashSet<String>,
) -> Result<ModelArms> {
    let (a, b) = (test_answers(&all)?, test_answers(&checked)?);
    let (mut only_all, mut only_checked) = (0, 0);
    for (id, &ra) in a.iter().filter(|(id, _)| !flagged.contains(*id)) {
        match b.get(id) {
            Some(&rb) if ra && !rb => only_all += 1,
            Some(&rb) if rb && !ra => only_checked += 1,
            _ => {}
        }
    }
    Ok(ModelArms {
        model: model.to_string(),
        all: arm("all", &all, &a, flagged),
        checked: arm("checked", &checked, &b, flagged),
        only_all,
        only_checked,
        p_value: mcnemar_exact(only_all as u64, only_checked as u64),
    })
}

/// The study written by [`run`].
///
/// # Errors
/// None yet (with what to run), or not a study file.
pub fn load(cfg: &Config) -> Result<LabelCheckAblation> {
    let path = dir(cfg).join(JSON_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no label-check ablation at {}: run `lab5 ablate --label-check`",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a label-check ablation", path.display()))
}

fn pct(g: &GroupAccuracy) -> String {
    match g.accuracy {
        Some(_) => g.shown(),
        None => "no photo".into(),
    }
}

fn title(model: &str) -> &str {
    match model {
        "cnn" => "CNN",
        "transfer" => "transfer model",
        other => other,
    }
}

impl ModelArms {
    /// What the two arms show, in one sentence, judged by McNemar's test at
    /// `significance`.
    pub fn sentence(&self, significance: f64) -> String {
        let (a, c) = (&self.all, &self.checked);
        let left_out = a.train_photos + a.val_photos - c.train_photos - c.val_photos;
        let judged = if self.p_value < significance {
            let better = if c.kept.correct > a.kept.correct {
                "without the flagged photos"
            } else {
                "on every photo"
            };
            format!(
                "the {} trained {better} is more accurate",
                title(&self.model)
            )
        } else {
            "the label check makes no difference these test photos can show".into()
        };
        let name = match self.model.as_str() {
            "transfer" => "The transfer model",
            "cnn" => "The CNN",
            other => other,
        };
        format!(
            "{name}: trained on every photo {}, without the {left_out} flagged training and validation photos {} on the {} test photos the check does not flag (95 % Wilson intervals); they disagree on {} (only the first right on {}, only the second on {}): McNemar's exact test p = {:.3} {} {significance}, so {judged}.",
            pct(&a.kept),
            pct(&c.kept),
            a.kept.n,
            self.only_all + self.only_checked,
            self.only_all,
            self.only_checked,
            self.p_value,
            if self.p_value < significance { "<" } else { "\u{2265}" },
        )
    }
}

impl LabelCheckAblation {
    /// One sentence on the flagged photos, then one per model.
    pub fn sentences(&self) -> Vec<String> {
        let f = self.flagged;
        let mut v = vec![format!(
            "The label check flags {} training, {} validation and {} test photos; the second arm of each model trains without the first two groups, and both arms are scored on the same test photos.",
            f.train, f.val, f.test
        )];
        v.extend(self.models.iter().map(|m| m.sentence(self.significance)));
        v
    }

    /// One row per model and arm: photos trained and validated on, seconds, accuracy on
    /// the unflagged test photos (with its 95 % Wilson interval) and on the flagged ones.
    pub fn table(&self) -> Result<Table> {
        let rows: Vec<(&ModelArms, &Arm)> = self
            .models
            .iter()
            .flat_map(|m| [(m, &m.all), (m, &m.checked)])
            .collect();
        let text = |f: &dyn Fn(&ModelArms, &Arm) -> String| -> Vec<String> {
            rows.iter().map(|(m, a)| f(m, a)).collect()
        };
        let trained_on = |a: &Arm| match a.name.as_str() {
            "all" => "every photo".to_string(),
            _ => "flagged photos left out".to_string(),
        };
        Ok(Table(df!(
            "model" => text(&|m, _| title(&m.model).to_string()),
            "trained on" => text(&|_, a| trained_on(a)),
            "train photos" => text(&|_, a| a.train_photos.to_string()),
            "val photos" => text(&|_, a| a.val_photos.to_string()),
            "training, s" => text(&|_, a| format!("{:.1}", a.train_secs)),
            "test, unflagged [95 % CI]" => text(&|_, a| format!("{} of {}", pct(&a.kept), a.kept.n)),
            "test, flagged: right" => text(&|_, a| format!("{} of {}", a.flagged.correct, a.flagged.n)),
        )?))
    }

    /// The sentences and the table as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# Does the label check matter?\n\n");
        for s in self.sentences() {
            md.push_str(&format!("- {s}\n"));
        }
        md.push_str("\n| model | trained on | train photos | val photos | training, s | test, unflagged | test, flagged: right |\n|---|---|---:|---:|---:|---:|---:|\n");
        for m in &self.models {
            for a in [&m.all, &m.checked] {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {:.1} | {} of {} | {} of {} |\n",
                    title(&m.model),
                    a.name,
                    a.train_photos,
                    a.val_photos,
                    a.train_secs,
                    pct(&a.kept),
                    a.kept.n,
                    a.flagged.correct,
                    a.flagged.n
                ));
            }
        }
        md
    }

    /// Test accuracy on the unflagged test photos (%), one group per model, one bar per
    /// arm.
    pub fn chart(&self) -> Result<Figure> {
        let names: Vec<String> = self.models.iter().map(|m| title(&m.model).into()).collect();
        let bars = |f: fn(&ModelArms) -> &Arm| {
            let v = self
                .models
                .iter()
                .map(|m| 100.0 * f(m).kept.accuracy.unwrap_or(0.0));
            v.collect::<Vec<f64>>()
        };
        let series = [
            ("trained on every photo".to_string(), bars(|m| &m.all)),
            ("flagged photos left out".to_string(), bars(|m| &m.checked)),
        ];
        bar_chart(
            "Does the label check matter? Test accuracy on unflagged photos",
            "accuracy, %",
            &names,
            &series,
        )
    }

    /// Writes JSON, Markdown and the chart (SVG, PNG) into `runs/ablation/label_check/`.
    fn save(&self, cfg: &Config) -> Result<()> {
        let dir = dir(cfg);
        write_json(&dir.join(JSON_FILE), self)?;
        crate::util::write_atomic(&dir.join(MARKDOWN_FILE), self.to_markdown().as_bytes())?;
        self.chart()?.save(&dir.join("accuracy"))?;
        Ok(())
    }

    /// The sentences and the table as HTML (notebook and report).
    pub fn to_html(&self) -> Result<String> {
        Ok(verdict_then_table(&self.sentences(), &self.table()?))
    }

    /// Shows the sentences and the table inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        show_html(self.to_html(), &self.to_markdown());
    }
}

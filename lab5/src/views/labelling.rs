//! Notebook `02_labels`, sections 5 and 6: labelling a folder that has no labels
//! ([`crate::labels::rounds`], what `lab5 label DIR` runs) and the simulation that
//! measures how many human labels it saves ([`crate::labels::simulate`], `lab5 label
//! --simulate`).
//!
//! The folder is `label.folder`; without one, a demo folder of `label.demo_photos` photos
//! of the data set copied without their labels (`data/unlabelled-demo/`), whose answers
//! [`demo_answers`] can give from the data set's labels, as a person would.

use super::data::manifest;
use super::{Note, Shown};
use crate::config::Config;
use crate::data::images::file_id;
use crate::labels::rounds::{self, label_folder, LabelOptions};
use crate::labels::simulate::{self, Simulation};
use crate::plot::Table;
use anyhow::{Context, Result};
use polars::prelude::df;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// Name of the demo folder inside the data folder.
pub const DEMO_DIR: &str = "unlabelled-demo";
/// Name of the file the answers typed in a cell are written to (in `OUT/rounds/`).
const TYPED_ANSWERS: &str = "typed-answers.csv";

/// The folder the notebook labels: `label.folder`, else the demo folder (made on first use
/// from `label.demo_photos` photos of the data set, drawn with `label.seed`, named by
/// their ids, without labels).
///
/// # Errors
/// No data set for the demo folder, or a photo cannot be copied.
pub fn folder_to_label(cfg: &Config) -> Result<PathBuf> {
    if let Some(f) = &cfg.label.folder {
        return Ok(cfg.resolve(f));
    }
    let dir = cfg.data_dir().join(DEMO_DIR);
    let has_photos = std::fs::read_dir(&dir).is_ok_and(|mut e| {
        e.any(|f| {
            f.is_ok_and(|f| crate::labels::scan::is_photo_name(&f.file_name().to_string_lossy()))
        })
    });
    if !has_photos {
        make_demo_folder(cfg, &dir)?;
    }
    Ok(dir)
}

fn make_demo_folder(cfg: &Config, dir: &Path) -> Result<()> {
    let m = manifest(cfg)?;
    let mut records: Vec<_> = m.records.iter().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.label.seed);
    records.shuffle(&mut rng);
    let data_dir = cfg.data_dir();
    for r in records.into_iter().take(cfg.label.demo_photos) {
        let ext = r.path.extension().map(|e| e.to_string_lossy().into_owned());
        let name = format!("{}.{}", file_id(&r.id), ext.unwrap_or_else(|| "jpg".into()));
        let bytes = std::fs::read(data_dir.join(&r.path))
            .with_context(|| format!("cannot read photo {} of the data set", r.id))?;
        crate::util::write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// One labelling step on [`folder_to_label`] (what `lab5 label DIR` does): with
/// `answers` (CSV text, header `id,species[,breed]`, one line per photo of the waiting
/// round) those answers, written to `OUT/rounds/typed-answers.csv` and checked line by
/// line; with `""` the round file as the person edited it. Shows what was done and what
/// to do next.
///
/// # Errors
/// As [`label_folder`]: an answer with a problem (file and line named), no photo.
pub fn label_step(cfg: &Config, answers: &str) -> Result<Note> {
    let dir = folder_to_label(cfg)?;
    let mut opts = LabelOptions::default();
    if !answers.trim().is_empty() {
        let out = rounds::out_dir(cfg, &dir, &opts);
        let file = out.join(rounds::ROUNDS_DIR).join(TYPED_ANSWERS);
        crate::util::write_atomic(&file, answers.trim().as_bytes())?;
        opts.answers = Some(file);
    }
    let device = crate::runtime::init(cfg)?;
    let report = label_folder(cfg, &dir, &opts, device)?;
    Ok(Note(format!("```text\n{report}```")))
}

/// The photos of the round waiting for answers, with their ids and proposals, or a note
/// when none waits.
///
/// # Errors
/// The folder was never labelled ([`label_step`] first).
pub fn label_round_photos(cfg: &Config) -> Result<Shown> {
    let dir = folder_to_label(cfg)?;
    let out = rounds::out_dir(cfg, &dir, &LabelOptions::default());
    Ok(match rounds::waiting_round(cfg, &out)? {
        Some((_, _, grid)) => Shown::Figure(grid),
        None => Shown::Note(Note(
            "No round is waiting for answers: every photo has a human label.".into(),
        )),
    })
}

/// The answers a person would type for the waiting round of the demo folder, taken from
/// the data set's labels (`id,species` lines); empty when no round waits.
///
/// # Errors
/// `label.folder` is set (the demo answers know only the demo folder's photos), or a
/// photo of the round is not in the data set.
pub fn demo_answers(cfg: &Config) -> Result<String> {
    anyhow::ensure!(
        cfg.label.folder.is_none(),
        "demo answers exist only for the demo folder (label.folder is set): type your own answers"
    );
    let dir = folder_to_label(cfg)?;
    let out = rounds::out_dir(cfg, &dir, &LabelOptions::default());
    let Some((_, file, _)) = rounds::waiting_round(cfg, &out)? else {
        return Ok(String::new());
    };
    let asked = crate::labels::answers::round_ids(&file)?;
    let m = manifest(cfg)?;
    let mut text = String::from("id,species\n");
    for id in asked {
        let r = m.records.iter().find(|r| file_id(&r.id) == id);
        let r = r.with_context(|| format!("photo {id} of the round is not in the data set"))?;
        text.push_str(&format!("{id},{}\n", r.label));
    }
    Ok(text)
}

/// The simulation, read from `runs/label-simulation/` when current, else computed (a
/// few minutes the first time on the full data set); `force` computes again.
fn simulation(cfg: &Config, force: bool) -> Result<Simulation> {
    let device = crate::runtime::init(cfg)?;
    let (sim, reused) = simulate::run(cfg, force, device)?;
    let dir = simulate::dir(cfg);
    match reused {
        true => println!("reusing {} (force = true computes again)", dir.display()),
        false => println!("simulated in {:.0} s; wrote {}", sim.seconds, dir.display()),
    }
    Ok(sim)
}

/// The simulation's chart: accuracy of the labels against human labels, per strategy and
/// starting point (mean over the seeds).
pub fn label_simulation_chart(cfg: &Config, force: bool) -> Result<Shown> {
    Ok(Shown::Figure(simulation(cfg, force)?.chart()?))
}

/// The simulation's table at `label.simulation.budgets`: mean ± sd, min and max over
/// the seeds (%), and the proposals' accuracy on the photos without a human label.
pub fn label_simulation_table(cfg: &Config) -> Result<Table> {
    let rows = simulation(cfg, false)?.summary();
    let col = |f: fn(&simulate::SummaryRow) -> f64| {
        rows.iter()
            .map(|r| (100.0 * f(r)).round() / 100.0)
            .collect::<Vec<_>>()
    };
    let df = df!(
        "strategy" => rows.iter().map(|r| r.strategy.name()).collect::<Vec<_>>(),
        "start" => rows.iter().map(|r| r.prior.name()).collect::<Vec<_>>(),
        "human labels" => rows.iter().map(|r| r.labels as u64).collect::<Vec<_>>(),
        "accuracy %" => col(|r| r.mean),
        "sd" => col(|r| r.sd),
        "min" => col(|r| r.min),
        "max" => col(|r| r.max),
        "unlabelled only %" => col(|r| r.rest_mean),
        "seeds" => rows.iter().map(|r| r.seeds as u64).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

/// The two answers: human labels that reach the zero-shot rule's accuracy without the
/// pretrained head, and human labels that reach `label.simulation.target_accuracy`.
pub fn label_simulation_answers(cfg: &Config) -> Result<Note> {
    let lines: Vec<String> = simulation(cfg, false)?
        .answers()
        .into_iter()
        .map(|a| format!("- {a}"))
        .collect();
    Ok(Note(lines.join("\n")))
}

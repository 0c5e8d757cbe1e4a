//! `lab5 run`: every step of the lab in order, each skipped when its outputs are up to
//! date:
//!
//! `data` (collect from the APIs, or import `data.folder`) -> `audit` (zero-shot label
//! check; its backbone pass is cached and is also the transfer model's features) ->
//! `train-cnn` -> `robustness-cnn` (the CNN's test accuracy under corruptions) ->
//! `embed-cnn` -> `train-transfer` -> `embed-transfer` -> `compare` -> `report`
//! (`runs/<date>/report.html`).
//!
//! A step is up to date when the settings it reads and the outputs of the steps it
//! depends on are those of its last run, and its own outputs are still there unchanged
//! (see [`state`]). `force` redoes the named steps; steps after them run again only when
//! their inputs changed. One line per step says whether it ran and how long it took.

pub(crate) mod state;
mod steps;

use crate::config::Config;
use anyhow::{bail, Context, Result};
use state::{Entry, State, STATE_FILE};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// One step of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Collect from the APIs, or import the folder.
    Data,
    /// The zero-shot label check.
    Audit,
    /// Train the CNN.
    TrainCnn,
    /// The CNN's test accuracy under the corruption suite.
    RobustnessCnn,
    /// Embeddings and 2-D maps of the CNN.
    EmbedCnn,
    /// Train the transfer model.
    TrainTransfer,
    /// Embeddings and 2-D maps of the transfer model.
    EmbedTransfer,
    /// The comparison table, verdict and charts.
    Compare,
    /// The HTML report.
    Report,
}

/// Names accepted by `--force` besides the step names, and what they mean.
const ALIASES: [(&str, &[Step]); 7] = [
    ("collect", &[Step::Data]),
    ("import", &[Step::Data]),
    ("cnn", &[Step::TrainCnn]),
    ("transfer", &[Step::TrainTransfer]),
    ("train", &[Step::TrainCnn, Step::TrainTransfer]),
    ("embed", &[Step::EmbedCnn, Step::EmbedTransfer]),
    ("robustness", &[Step::RobustnessCnn]),
];

impl Step {
    /// Every step, in the order they run.
    pub(crate) const ALL: [Step; 9] = [
        Step::Data,
        Step::Audit,
        Step::TrainCnn,
        Step::RobustnessCnn,
        Step::EmbedCnn,
        Step::TrainTransfer,
        Step::EmbedTransfer,
        Step::Compare,
        Step::Report,
    ];

    /// The step's name (as `--force` takes it).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Data => "data",
            Step::Audit => "audit",
            Step::TrainCnn => "train-cnn",
            Step::RobustnessCnn => "robustness-cnn",
            Step::EmbedCnn => "embed-cnn",
            Step::TrainTransfer => "train-transfer",
            Step::EmbedTransfer => "embed-transfer",
            Step::Compare => "compare",
            Step::Report => "report",
        }
    }

    /// The steps whose outputs this one reads.
    pub(crate) fn deps(self) -> &'static [Step] {
        match self {
            Step::Data => &[],
            Step::Audit | Step::TrainCnn | Step::TrainTransfer => &[Step::Data],
            Step::RobustnessCnn | Step::EmbedCnn => &[Step::Data, Step::TrainCnn],
            Step::EmbedTransfer => &[Step::Data, Step::TrainTransfer],
            Step::Compare => &[Step::Data, Step::TrainCnn, Step::TrainTransfer],
            Step::Report => Step::ALL_BUT_REPORT,
        }
    }

    /// Every step before the report (the last one), which reads all of their outputs.
    const ALL_BUT_REPORT: &'static [Step] = match Step::ALL.split_last() {
        Some((_, before)) => before,
        None => &[],
    };

    /// The steps a `--force` value names: a step name, or `collect`/`import` (data),
    /// `cnn`, `transfer`, `train` (both), `embed` (both), `robustness`.
    pub fn parse(s: &str) -> Result<Vec<Step>> {
        if let Some(step) = Step::ALL.into_iter().find(|st| st.name() == s) {
            return Ok(vec![step]);
        }
        if let Some((_, steps)) = ALIASES.iter().find(|(name, _)| *name == s) {
            return Ok(steps.to_vec());
        }
        let mut names: Vec<&str> = Step::ALL.iter().map(|st| st.name()).collect();
        names.extend(ALIASES.iter().map(|(n, _)| *n));
        bail!("unknown step {s:?}: use one of {}", names.join(", "))
    }
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It ran and its outputs are new.
    Ran,
    /// It ran its own check and kept its outputs (a matching run, nothing new to import).
    Reused,
    /// Up to date: not run.
    Skipped,
}

impl Status {
    /// `ran`, `reused` or `skipped`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Ran => "ran",
            Status::Reused => "reused",
            Status::Skipped => "skipped",
        }
    }
}

/// One step's result.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The step.
    pub step: Step,
    /// What happened.
    pub status: Status,
    /// Seconds it took (checks included).
    pub secs: f64,
    /// What it produced, or why it was skipped.
    pub note: String,
}

/// The result of a whole run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One entry per step, in order.
    pub steps: Vec<StepOutcome>,
    /// The report file.
    pub report: Option<PathBuf>,
    /// Seconds for the whole run.
    pub secs: f64,
}

impl StepOutcome {
    /// The step's line: `[3/9] train-cnn       ran       402.1 s  test accuracy ...`.
    pub(crate) fn line(&self, index: usize, total: usize) -> String {
        format!(
            "[{}/{total}] {:<15} {:<8} {:>7.1} s  {}",
            index + 1,
            self.step.name(),
            self.status.name(),
            self.secs,
            self.note
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "{}", s.line(i, self.steps.len()))?;
        }
        let ran = self
            .steps
            .iter()
            .filter(|s| s.status != Status::Skipped)
            .count();
        write!(
            f,
            "lab5 run: {ran} of {} steps ran, {:.1} s in all",
            self.steps.len(),
            self.secs
        )?;
        if let Some(r) = &self.report {
            write!(f, "; report {}", r.display())?;
        }
        Ok(())
    }
}

/// Runs every step in order (see the module documentation), redoing those in `force`,
/// and prints one line per step as it finishes. The state is saved after every step, so
/// a failed run resumes where it stopped.
pub fn run(cfg: &Config, force: &[Step]) -> Result<Outcome> {
    let started = Instant::now();
    let state_path = cfg.runs_dir().join(STATE_FILE);
    let mut runner = Runner {
        cfg,
        state: State::load(&state_path),
        stamps: HashMap::new(),
    };
    let mut outcomes = Vec::new();
    for (i, &step) in Step::ALL.iter().enumerate() {
        let o = runner
            .step(step, force.contains(&step))
            .with_context(|| format!("step {} failed; `lab5 run` resumes from it", step.name()))?;
        println!("{}", o.line(i, Step::ALL.len()));
        runner.state.save(&state_path)?;
        outcomes.push(o);
    }
    let report = runner.state.steps.get(Step::Report.name());
    Ok(Outcome {
        steps: outcomes,
        report: report.and_then(|e| e.output.clone()),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// A pipeline in progress: the config, the state, and the stamps of the steps so far.
struct Runner<'a> {
    cfg: &'a Config,
    state: State,
    stamps: HashMap<Step, String>,
}

impl Runner<'_> {
    /// Skips `step` when it is up to date, else runs it and records its new entry.
    fn step(&mut self, step: Step, forced: bool) -> Result<StepOutcome> {
        let started = Instant::now();
        let key = steps::key(self.cfg, step, &self.stamps)?;
        let entry = self.state.steps.get(step.name()).cloned();
        let before = steps::stamp(self.cfg, step, entry.as_ref());
        let fresh = entry
            .as_ref()
            .is_some_and(|e| e.key == key && before.as_ref() == Some(&e.stamp));
        if fresh && !forced {
            self.stamps.insert(step, before.unwrap_or_default());
            return Ok(outcome(step, Status::Skipped, started, "up to date".into()));
        }
        let done = steps::execute(self.cfg, step, forced)?;
        let stamp = self.record(step, key, entry.as_ref(), done.output, started)?;
        let unchanged = !forced && before == Some(stamp);
        let status = if unchanged {
            Status::Reused
        } else {
            Status::Ran
        };
        Ok(outcome(step, status, started, done.note))
    }

    /// Records the entry of a step that just ran; returns the stamp of its outputs.
    fn record(
        &mut self,
        step: Step,
        key: String,
        old: Option<&Entry>,
        output: Option<PathBuf>,
        started: Instant,
    ) -> Result<String> {
        let output = output.or_else(|| steps::recorded_output(old).map(Into::into));
        let secs = started.elapsed().as_secs_f64();
        let mut new = Entry {
            key,
            stamp: String::new(),
            output,
            secs,
        };
        new.stamp = steps::stamp(self.cfg, step, Some(&new)).with_context(|| {
            format!("step {} finished but its outputs are missing", step.name())
        })?;
        let stamp = new.stamp.clone();
        self.stamps.insert(step, stamp.clone());
        self.state.steps.insert(step.name().to_string(), new);
        Ok(stamp)
    }
}

fn outcome(step: Step, status: Status, started: Instant, note: String) -> StepOutcome {
    StepOutcome {
        step,
        status,
        secs: started.elapsed().as_secs_f64(),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_names_parse_to_steps_and_unknown_ones_list_the_choices() {
        assert_eq!(Step::parse("audit").unwrap(), vec![Step::Audit]);
        assert_eq!(Step::parse("import").unwrap(), vec![Step::Data]);
        assert_eq!(
            Step::parse("embed").unwrap(),
            vec![Step::EmbedCnn, Step::EmbedTransfer]
        );
        for s in Step::ALL {
            assert_eq!(Step::parse(s.name()).unwrap(), vec![s]);
        }
        let err = Step::parse("trian").unwrap_err().to_string();
        assert!(
            err.contains("\"trian\"") && err.contains("train-cnn, robustness-cnn, embed-cnn"),
            "{err}"
        );
    }

    #[test]
    fn every_dependency_runs_before_its_step() {
        for (i, s) in Step::ALL.iter().enumerate() {
            for d in s.deps() {
                let j = Step::ALL.iter().position(|x| x == d).unwrap();
                assert!(j < i, "{} depends on the later {}", s.name(), d.name());
            }
        }
    }
}

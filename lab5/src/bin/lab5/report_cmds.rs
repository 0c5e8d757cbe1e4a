//! `lab5 embed`, `lab5 compare`, `lab5 run`.

use anyhow::Context;
use clap::Args;
use lab5::pipeline::Step;
use lab5::views::Model;
use lab5::Config;
use std::path::{Path, PathBuf};

/// Arguments of `lab5 embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// The run folder, e.g. runs/cnn.
    #[arg(long)]
    pub run: PathBuf,
}

/// Arguments of `lab5 compare`.
#[derive(Args)]
pub struct CompareArgs {}

/// Arguments of `lab5 run`.
#[derive(Args)]
pub struct RunArgs {
    /// Redo a step even when its outputs are up to date: data (or collect, import),
    /// audit, train-cnn (cnn), embed-cnn, train-transfer (transfer), embed-transfer,
    /// compare, report; `train` and `embed` name both models' steps. Repeatable.
    #[arg(long, value_name = "STEP", value_parser = parse_steps)]
    pub force: Vec<Steps>,
}

/// The steps one `--force` value names.
#[derive(Clone)]
pub struct Steps(Vec<Step>);

fn parse_steps(s: &str) -> Result<Steps, String> {
    Step::parse(s).map(Steps).map_err(|e| e.to_string())
}

/// The model whose default run folder is `run` (`runs/cnn`, `runs/transfer`), if any.
fn model_of(cfg: &Config, run: &Path) -> Option<Model> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    [Model::Cnn, Model::Transfer]
        .into_iter()
        .find(|m| same(run, &cfg.runs_dir().join(m.run_name())))
}

/// Computes `embeddings.json` of `run` when it has none (only the config's own runs).
fn ensure_embeddings(cfg: &Config, run: &Path) -> anyhow::Result<()> {
    if run.join(lab5::embed::EMBEDDINGS_FILE).is_file() {
        return Ok(());
    }
    let model = model_of(cfg, run).with_context(|| {
        format!(
            "{} has no {} and is not runs/cnn or runs/transfer of this config: nothing to embed",
            run.display(),
            lab5::embed::EMBEDDINGS_FILE
        )
    })?;
    lab5::runtime::init(cfg)?;
    let set = lab5::views::compute_embeddings(cfg, model)?;
    println!("computed {} embeddings of {} values", set.len(), set.dim);
    Ok(())
}

/// Runs `lab5 embed`: embeddings (computed when missing), maps, scores and charts.
pub fn embed(cfg: &Config, a: EmbedArgs) -> anyhow::Result<()> {
    let run = a.run;
    ensure_embeddings(cfg, &run)?;
    let out = lab5::embed::embed_run(&run, &cfg.embed)?;
    println!(
        "{}: {} embeddings of {} values",
        out.set.model,
        out.set.len(),
        out.set.dim
    );
    println!(
        "t-SNE {:.1} s, UMAP {:.1} s",
        out.maps.tsne_secs, out.maps.umap_secs
    );
    println!("{}", out.table()?);
    println!("maps, scores and charts written to {}", run.display());
    println!("{}", lab5::embed::write_projector(cfg, &run, &out.set)?);
    Ok(())
}

/// Runs `lab5 compare`: measures, prints the table and the verdict, saves everything.
pub fn compare(cfg: &Config, _a: CompareArgs) -> anyhow::Result<()> {
    let c = lab5::compare::compare(cfg)?;
    println!("{c}");
    let dir = lab5::compare::dir(cfg);
    println!(
        "wrote {}, {}, {} and charts in {}",
        lab5::compare::CSV_FILE,
        lab5::compare::JSON_FILE,
        lab5::compare::MARKDOWN_FILE,
        dir.join(lab5::compare::FIGURES_DIR).display()
    );
    println!("(in {})", dir.display());
    Ok(())
}

/// Runs `lab5 run`: every step, one line each, then the summary.
pub fn run(cfg: &Config, a: RunArgs) -> anyhow::Result<()> {
    let force: Vec<Step> = a.force.into_iter().flat_map(|s| s.0).collect();
    let outcome = lab5::pipeline::run(cfg, &force)?;
    let ran = outcome
        .steps
        .iter()
        .filter(|s| s.status != lab5::pipeline::Status::Skipped)
        .count();
    print!(
        "lab5 run: {ran} of {} steps ran in {:.1} s",
        outcome.steps.len(),
        outcome.secs
    );
    match &outcome.report {
        Some(r) => println!("; report {}", r.display()),
        None => println!(),
    }
    Ok(())
}

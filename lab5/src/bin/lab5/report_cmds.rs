//! `lab5 embed`, `lab5 compare`, `lab5 run`.

use clap::Args;
use lab5::Config;
use std::path::PathBuf;

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
    /// Redo one step even when its outputs are up to date.
    #[arg(long)]
    pub force: Option<String>,
}

/// Runs `lab5 embed`.
pub fn embed(cfg: &Config, a: EmbedArgs) -> anyhow::Result<()> {
    let run = a.run;
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
    Ok(())
}

/// Runs `lab5 compare`.
pub fn compare(_cfg: &Config, _a: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 compare` is not available in this build yet")
}

/// Runs `lab5 run`.
pub fn run(cfg: &Config, _a: RunArgs) -> anyhow::Result<()> {
    lab5::pipeline::run(cfg)
}

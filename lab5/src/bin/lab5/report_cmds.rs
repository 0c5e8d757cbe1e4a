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
pub fn embed(_cfg: &Config, _a: EmbedArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 embed` is not available in this build yet")
}

/// Runs `lab5 compare`.
pub fn compare(_cfg: &Config, _a: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 compare` is not available in this build yet")
}

/// Runs `lab5 run`.
pub fn run(cfg: &Config, _a: RunArgs) -> anyhow::Result<()> {
    lab5::pipeline::run(cfg)
}

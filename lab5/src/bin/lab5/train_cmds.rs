//! `lab5 audit`, `lab5 train`, `lab5 evaluate`, `lab5 predict`.

use clap::Args;
use lab5::Config;
use std::path::PathBuf;

/// Arguments of `lab5 audit`.
#[derive(Args)]
pub struct AuditArgs {
    /// Mark flagged images as excluded in the manifest (reversible with --undo).
    #[arg(long)]
    pub apply: bool,
    /// Clear every exclusion made by --apply.
    #[arg(long, conflicts_with = "apply")]
    pub undo: bool,
}

/// Arguments of `lab5 train`.
#[derive(Args)]
pub struct TrainArgs {
    /// `cnn` or `transfer`.
    pub model: String,
}

/// Arguments of `lab5 evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// The run folder, e.g. runs/cnn.
    #[arg(long)]
    pub run: PathBuf,
    /// An ImageFolder directory (DIR/cat, DIR/dog).
    #[arg(long)]
    pub data: PathBuf,
}

/// Arguments of `lab5 predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The run folder, e.g. runs/cnn.
    #[arg(long)]
    pub run: PathBuf,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs `lab5 audit`.
pub fn audit(_cfg: &Config, _a: AuditArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 audit` is not available in this build yet")
}

/// Runs `lab5 train`.
pub fn train(_cfg: &Config, _a: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 train` is not available in this build yet")
}

/// Runs `lab5 evaluate`.
pub fn evaluate(_cfg: &Config, _a: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 evaluate` is not available in this build yet")
}

/// Runs `lab5 predict`.
pub fn predict(_cfg: &Config, _a: PredictArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 predict` is not available in this build yet")
}

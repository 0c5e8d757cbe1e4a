//! `lab5 collect`, `lab5 import`, `lab5 summary`.

use clap::Args;
use lab5::Config;
use std::path::PathBuf;

/// Arguments of `lab5 collect`.
#[derive(Args)]
pub struct CollectArgs {}

/// Arguments of `lab5 import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The ImageFolder directory (default: `data.folder` from the config).
    pub dir: Option<PathBuf>,
}

/// Runs `lab5 collect`.
pub fn collect(_cfg: &Config, _a: CollectArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 collect` is not available in this build yet")
}

/// Runs `lab5 import`.
pub fn import(_cfg: &Config, _a: ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 import` is not available in this build yet")
}

/// Runs `lab5 summary`.
pub fn summary(_cfg: &Config) -> anyhow::Result<()> {
    anyhow::bail!("`lab5 summary` is not available in this build yet")
}

//! `lab5 label`: label a folder without labels in rounds, or `--simulate` the labelling on
//! the data set.

use clap::Args;
use lab5::labels::rounds::{label_folder, LabelOptions};
use lab5::labels::select::Strategy;
use lab5::labels::simulate;
use lab5::Config;
use std::path::PathBuf;

/// How a labelling session goes (shown by `lab5 label --help`).
const LABEL_HELP: &str = "\
Each call is one step. The first proposes a label for every photo of DIR (flat or nested)
with the pretrained ImageNet head (zero-shot: cat, dog or neither with p) and starts round 1:
OUT/rounds/round-001.csv lists k photos (their ids are in OUT/rounds/round-001.png); write
cat, dog or neither in its species column, then run `lab5 label DIR` again: your answers are
checked line by line, a classifier on the backbone's features is retrained from them, every
other photo gets a new proposal, and the next round starts. OUT/labels.csv
(id,species,breed,provenance,p,path) always holds the current labels; `lab5 import OUT`
imports them. OUT is label.out_dir, else DIR.

--simulate measures how many human labels this saves on the data set (its labels hidden and
used as the answers): runs/label-simulation/.";

/// Arguments of `lab5 label`.
#[derive(Args)]
#[command(after_help = LABEL_HELP)]
pub struct LabelArgs {
    /// The folder of photos to label (default: `label.folder`).
    #[arg(conflicts_with = "simulate")]
    pub dir: Option<PathBuf>,
    /// Where labels.csv, rounds.csv, state.json and the rounds go (default:
    /// `label.out_dir`, else DIR).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Photos of the next round (default: `label.k`).
    #[arg(long)]
    pub k: Option<usize>,
    /// How the next round picks photos: uncertainty, random or diverse (default:
    /// `label.strategy`).
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<Strategy>,
    /// Read the waiting round's answers from this file instead of its round file.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Simulate labelling the data set (its labels hidden) and measure the accuracy.
    #[arg(long)]
    pub simulate: bool,
    /// With --simulate: compute again even when the saved result is current.
    #[arg(long, requires = "simulate")]
    pub force: bool,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).map_err(|e| e.to_string())
}

/// Runs `lab5 label`.
pub fn label(cfg: &Config, a: LabelArgs) -> anyhow::Result<()> {
    let device = lab5::runtime::init(cfg)?;
    if a.simulate {
        let (sim, reused) = simulate::run(cfg, a.force, device)?;
        print!("{sim}");
        let dir = simulate::dir(cfg);
        match reused {
            true => println!(
                "read from {} (current; --force computes again)",
                dir.display()
            ),
            false => println!("wrote {}", dir.display()),
        }
        return Ok(());
    }
    let configured = cfg.label.folder.as_ref().map(|p| cfg.resolve(p));
    let Some(dir) = a.dir.or(configured) else {
        anyhow::bail!(
            "give the folder to label (`lab5 label DIR`) or set label.folder in the config"
        );
    };
    let opts = LabelOptions {
        out: a.out,
        k: a.k,
        strategy: a.strategy,
        answers: a.answers,
    };
    print!("{}", label_folder(cfg, &dir, &opts, device)?);
    Ok(())
}

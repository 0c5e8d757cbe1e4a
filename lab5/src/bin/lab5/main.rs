//! The `lab5` command line: a thin layer over the `lab5` library.
//!
//! Exit status: 0 on success, 1 when a step failed, 2 for a bad config or bad arguments.

mod board_cmds;
mod data_cmds;
mod label_cmds;
mod report_cmds;
mod train_cmds;

use clap::{Parser, Subcommand};
use lab5::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Cats vs dogs lab: data, CNN, transfer learning, embeddings, reports.
#[derive(Parser)]
#[command(name = "lab5", version, about)]
struct Cli {
    /// Config file (default: $LAB5_CONFIG, else config.json in this or a parent folder).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Download images from The Cat API / The Dog API into data/raw (resumable).
    Collect(data_cmds::CollectArgs),
    /// Import an ImageFolder directory (DIR/<class>/*.jpg|png, optional labels.csv) or a
    /// folder labelled by `lab5 label`.
    Import(data_cmds::ImportArgs),
    /// Print the data-set summary (counts per class and split, breeds, sizes).
    Summary,
    /// Check labels with the pretrained ImageNet head; --apply excludes flagged images.
    Audit(train_cmds::AuditArgs),
    /// Label a folder without labels: zero-shot proposals, then active-learning rounds
    /// (`--simulate`: measured on the data set).
    Label(label_cmds::LabelArgs),
    /// Train a model: `cnn` (from scratch) or `transfer` (frozen pretrained backbone).
    Train(train_cmds::TrainArgs),
    /// Ablation study of the CNN recipe: without batch-norm, dropout, augmentation, ...
    Ablate(train_cmds::AblateArgs),
    /// Evaluate a run, or both models, on an ImageFolder directory.
    Evaluate(train_cmds::EvaluateArgs),
    /// Predict cat/dog for image files with a trained run.
    Predict(train_cmds::PredictArgs),
    /// Grad-CAM heat maps: where a run's model looks in each photo (PNG per photo).
    Explain(train_cmds::ExplainArgs),
    /// Test accuracy of a run under a fixed suite of corruptions (ImageNet-C style).
    Robustness(train_cmds::RobustnessArgs),
    /// Compute embeddings of a run and their t-SNE / UMAP maps.
    Embed(report_cmds::EmbedArgs),
    /// Compare the CNN and transfer runs (table, charts, verdict).
    Compare(report_cmds::CompareArgs),
    /// The whole lab end to end, skipping steps whose outputs are up to date.
    Run(report_cmds::RunArgs),
    /// Start TensorBoard (from the setup's venv) on the runs folder and print its address.
    Tensorboard(board_cmds::TensorboardArgs),
}

/// `lab5 config ...`
#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the config and print the effective values.
    Check,
}

fn load_config(explicit: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let path = Config::locate(explicit);
    Config::load(&path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn dispatch(cfg: &Config, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Config {
            cmd: ConfigCmd::Check,
        } => {
            println!("{}", cfg.to_pretty_json());
            Ok(())
        }
        Cmd::Collect(a) => data_cmds::collect(cfg, a),
        Cmd::Import(a) => data_cmds::import(cfg, a),
        Cmd::Summary => data_cmds::summary(cfg),
        Cmd::Audit(a) => train_cmds::audit(cfg, a),
        Cmd::Label(a) => label_cmds::label(cfg, a),
        Cmd::Train(a) => train_cmds::train(cfg, a),
        Cmd::Ablate(a) => train_cmds::ablate(cfg, a),
        Cmd::Evaluate(a) => train_cmds::evaluate(cfg, a),
        Cmd::Predict(a) => train_cmds::predict(cfg, a),
        Cmd::Explain(a) => train_cmds::explain(cfg, a),
        Cmd::Robustness(a) => train_cmds::robustness(cfg, a),
        Cmd::Embed(a) => report_cmds::embed(cfg, a),
        Cmd::Compare(a) => report_cmds::compare(cfg, a),
        Cmd::Run(a) => report_cmds::run(cfg, a),
        Cmd::Tensorboard(a) => board_cmds::tensorboard(cfg, a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if prints_for_a_pipe(&cli.cmd) {
        restore_sigpipe();
    }
    let cfg = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match dispatch(&cfg, cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The commands whose output people pipe into `head` or `grep` and that open no network
/// connection and stage no files: for them a closed pipe ends the process quietly. The
/// others keep Rust's default (SIGPIPE ignored): a connection the server resets must be
/// an error that `api.retries` retries, and a training must unwind (staging folders).
fn prints_for_a_pipe(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Config { .. } | Cmd::Summary | Cmd::Predict(_) | Cmd::Evaluate(_)
    )
}

/// `lab5 summary | head -1` ends quietly, like other Unix tools, instead of panicking on
/// the closed pipe: Rust ignores SIGPIPE by default, so `println!` fails and panics.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called in `main` before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

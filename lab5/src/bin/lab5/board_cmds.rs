//! `lab5 tensorboard`: TensorBoard from the setup's venv on the runs folder.

use clap::Args;
use lab5::train::tensorboard::server;
use lab5::Config;

/// Arguments of `lab5 tensorboard`.
#[derive(Args)]
pub struct TensorboardArgs {
    /// Port to serve on, exactly (fails when it is taken; 0 = any free port). Without it:
    /// `tensorboard.port` of the config, or the next free one when that is taken.
    #[arg(long)]
    pub port: Option<u16>,
    /// Listen on every network interface (to open it from another machine), not only on
    /// this machine's loopback.
    #[arg(long)]
    pub bind_all: bool,
}

/// Runs `lab5 tensorboard`: prints the address and what each run has, then becomes the
/// TensorBoard process (Ctrl-C stops it).
pub fn tensorboard(cfg: &Config, a: TensorboardArgs) -> anyhow::Result<()> {
    let program = server::program()?;
    let logdir = cfg.runs_dir();
    let host = server::bind_address(a.bind_all);
    let port = server::choose_port(a.port, cfg.tensorboard.port, host)?;
    let runs = server::runs_found(cfg);
    if !logdir.is_dir() {
        println!(
            "the runs folder {} does not exist (paths.runs_dir of the config; a typo?): TensorBoard shows an empty page until a training run creates it",
            logdir.display()
        );
    } else if runs.is_empty() {
        println!(
            "no TensorBoard events under {} yet: train a model first (`lab5 train cnn` or `lab5 run`); TensorBoard shows runs as they appear",
            logdir.display()
        );
    } else {
        println!("runs under {}:", logdir.display());
        for r in &runs {
            println!("  {r}");
        }
    }
    println!("TensorBoard at {} (Ctrl-C stops it)", server::address(port));
    use std::io::Write;
    std::io::stdout().flush()?;
    let mut cmd = server::command(&program, &logdir, port, a.bind_all);
    exec(&mut cmd)
}

/// Replaces this process with `cmd` (so signals reach TensorBoard directly).
#[cfg(unix)]
fn exec(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(anyhow::anyhow!(
        "cannot start {:?}: {err}",
        cmd.get_program()
    ))
}

/// Runs `cmd` to its end.
#[cfg(not(unix))]
fn exec(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let status = cmd.status()?;
    anyhow::ensure!(status.success(), "TensorBoard ended with {status}");
    Ok(())
}

//! Starting TensorBoard on the runs folder (`lab5 tensorboard`, `make tensorboard`): the
//! `tensorboard` program of the setup's Python venv, on loopback, on the configured port
//! or the next free one, and what it will show of each run.

use super::contents::Tabs;
use crate::config::Config;
use anyhow::{bail, Result};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Ports tried after the configured one when it is taken.
const PORTS_TRIED: u16 = 20;
/// Where TensorBoard listens unless asked to listen on every interface.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The venv's `tensorboard`: `$LAB5_VENV/bin/tensorboard` when `LAB5_VENV` is set (a conda
/// environment, see the README), else `$LAB5_HOME/venv/bin/tensorboard`.
///
/// # Errors
/// The program is not there (the setup has not run).
pub fn program() -> Result<PathBuf> {
    let venv = std::env::var_os("LAB5_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::config::lab5_home().join("venv"));
    let p = venv.join("bin").join("tensorboard");
    if !p.is_file() {
        bail!(
            "TensorBoard is not installed at {}: run `make setup` (it installs tensorboard into the venv)",
            p.display()
        );
    }
    Ok(p)
}

/// A free TCP port on loopback: `preferred` when free, else the first free one of the
/// next few; `preferred == 0` takes any free port the system gives.
///
/// # Errors
/// None of them can be bound.
pub fn free_port(preferred: u16) -> Result<u16> {
    if preferred == 0 {
        return Ok(TcpListener::bind((LOOPBACK, 0))?.local_addr()?.port());
    }
    for port in (preferred..=u16::MAX).take(usize::from(PORTS_TRIED) + 1) {
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!(
        "ports {preferred} to {} are all taken: give another with --port",
        preferred.saturating_add(PORTS_TRIED)
    )
}

/// The command that serves `logdir` on `port`: on loopback only, or on every interface
/// with `bind_all` (to open it from another machine).
pub fn command(program: &Path, logdir: &Path, port: u16, bind_all: bool) -> Command {
    let mut c = Command::new(program);
    c.arg("--logdir")
        .arg(logdir)
        .arg("--port")
        .arg(port.to_string());
    if bind_all {
        c.arg("--bind_all");
    } else {
        c.arg("--host").arg(LOOPBACK.to_string());
    }
    c
}

/// The address to open in a browser.
pub fn address(port: u16) -> String {
    format!("http://{LOOPBACK}:{port}/")
}

/// One line per run folder under the config's runs folder that has TensorBoard events:
/// its name as TensorBoard shows it (`cnn/tb`) and the tabs its files fill, read from
/// them ([`Tabs`]), e.g. `cnn/tb: scalars, images, histograms, hparams, projector (1 event
/// file)`.
pub fn runs_found(cfg: &Config) -> Vec<String> {
    let root = cfg.runs_dir();
    let mut found = Vec::new();
    collect_runs(&root, &root, &cfg.tensorboard.subdir, &mut found);
    found.sort();
    found
}

/// Walks `dir` (real folders only: a symbolic link is not followed, so a link loop
/// cannot recurse forever) for folders named `subdir` with events.
fn collect_runs(root: &Path, dir: &Path, subdir: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let tabs = (e.file_name() == subdir).then(|| Tabs::of(&path));
        match tabs {
            Some(tabs) if tabs.event_files > 0 => {
                let name = crate::util::slash_path(path.strip_prefix(root).unwrap_or(&path));
                out.push(format!("{name}: {tabs}"));
            }
            _ => collect_runs(root, &path, subdir, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_skipped() {
        let held = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let got = free_port(taken).unwrap();
        assert_ne!(got, taken);
        assert!(got > taken && got <= taken.saturating_add(PORTS_TRIED));
        assert_ne!(free_port(0).unwrap(), 0);
    }
}

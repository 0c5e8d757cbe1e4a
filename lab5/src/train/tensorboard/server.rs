//! Starting TensorBoard on the runs folder (`lab5 tensorboard`, `make tensorboard`): the
//! `tensorboard` program of the setup's Python venv, on loopback, on `--port` or else the
//! configured port or the next free one, and what each run's files will show.

use super::contents::Tabs;
use crate::config::Config;
use anyhow::{bail, Result};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Ports tried after the configured one when it is taken (only when `--port` is not given).
const PORTS_TRIED: u16 = 20;
/// Where TensorBoard listens unless asked to listen on every interface.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The venv's `tensorboard`: `$LAB5_VENV/bin/tensorboard` when `LAB5_VENV` is set (a conda
/// environment, see the README), else `$LAB5_HOME/venv/bin/tensorboard`.
///
/// # Errors
/// The program is not there (the setup has not run, or `LAB5_VENV` names another place).
pub fn program() -> Result<PathBuf> {
    let from_env = std::env::var_os("LAB5_VENV").filter(|v| !v.is_empty());
    let venv = from_env
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::config::lab5_home().join("venv"));
    let p = venv.join("bin").join("tensorboard");
    if p.is_file() {
        return Ok(p);
    }
    match from_env {
        Some(v) => bail!(
            "TensorBoard is not installed at {} ($LAB5_VENV = {}): install tensorboard into that environment, or unset LAB5_VENV to use the setup's venv",
            p.display(),
            PathBuf::from(v).display()
        ),
        None => bail!(
            "TensorBoard is not installed at {}: run `make setup` (it installs tensorboard into the venv)",
            p.display()
        ),
    }
}

/// The address TensorBoard listens on: loopback, or every interface with `bind_all`.
pub fn bind_address(bind_all: bool) -> Ipv4Addr {
    if bind_all {
        Ipv4Addr::UNSPECIFIED
    } else {
        LOOPBACK
    }
}

/// True when nothing listens on `port` at `host` (a listener there can be made now).
fn is_free(host: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

/// The port to serve on at `host`: `explicit` (`--port`) exactly as asked, 0 meaning any
/// free port; without it the configured `default` when free, else the first free one of
/// the next [`PORTS_TRIED`], with a line saying so.
///
/// # Errors
/// The explicit port is taken (another TensorBoard may be serving there), or the default
/// and the ports after it all are.
pub fn choose_port(explicit: Option<u16>, default: u16, host: Ipv4Addr) -> Result<u16> {
    match explicit {
        Some(0) => Ok(TcpListener::bind((host, 0))?.local_addr()?.port()),
        Some(port) if is_free(host, port) => Ok(port),
        Some(port) => bail!(
            "port {port} is taken on {host} (another TensorBoard?): stop what serves there, give another --port, or leave --port out to take the next free port after tensorboard.port"
        ),
        None => {
            let port = next_free(default, host)?;
            if port != default {
                println!("port {default} (tensorboard.port) is taken: serving on {port}");
            }
            Ok(port)
        }
    }
}

/// `preferred` when free at `host`, else the first free one of the next [`PORTS_TRIED`].
fn next_free(preferred: u16, host: Ipv4Addr) -> Result<u16> {
    let tried = (preferred..=u16::MAX).take(usize::from(PORTS_TRIED) + 1);
    for port in tried {
        if is_free(host, port) {
            return Ok(port);
        }
    }
    bail!(
        "ports {preferred} to {} are all taken: give a free one with --port",
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
    fn a_taken_default_port_moves_and_a_taken_explicit_port_fails() {
        let held = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let got = choose_port(None, taken, LOOPBACK).unwrap();
        assert!(got > taken && got <= taken.saturating_add(PORTS_TRIED));
        let err = choose_port(Some(taken), 6006, LOOPBACK).unwrap_err();
        assert!(
            err.to_string().contains(&format!("port {taken} is taken")),
            "{err}"
        );
        assert_ne!(choose_port(Some(0), 6006, LOOPBACK).unwrap(), 0);
    }

    #[test]
    fn run_list_names_what_each_folder_holds_and_ignores_link_loops() {
        let root = std::env::temp_dir().join(format!("lab5-runs-found-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tb = root.join("runs").join("cnn").join("tb");
        let mut w = super::super::EventWriter::create(&tb).unwrap();
        w.scalar("loss/val", 0.5, 1).unwrap();
        w.flush().unwrap();
        std::fs::create_dir_all(root.join("runs").join("old").join("tb")).unwrap();
        std::os::unix::fs::symlink(root.join("runs"), root.join("runs").join("loop")).unwrap();
        let mut cfg = Config::from_json(include_str!("../../../../config.json")).unwrap();
        cfg.paths.runs_dir = root.join("runs");
        assert_eq!(runs_found(&cfg), ["cnn/tb: scalars (1 event file)"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

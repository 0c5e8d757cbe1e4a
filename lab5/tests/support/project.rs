//! Temporary lab projects (a `config.json` derived from the shipped one, an optional
//! `.env`, a `data/` folder), running the real `lab5` binary on them, and checks on the
//! result: manifest against disk, nothing outside `data/`, no secret anywhere.

use lab5::data::{Class, Manifest};
use lab5::Config;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace's shipped `config.json`.
pub fn shipped_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json")
}

/// The pets ImageFolder named by the shipped config (`data.folder`).
pub fn pets_dir() -> PathBuf {
    let cfg = Config::load(shipped_config_path()).unwrap();
    cfg.resolve(&cfg.data.folder)
}

/// `n` photos of `class` from the pets folder, in file-name order, after skipping `skip`.
pub fn photos(class: &str, skip: usize, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pets_dir().join(class))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.into_iter().skip(skip).take(n).collect()
}

/// A project whose `data.folder` (`incoming/`) holds links to the first `per_class` pets
/// photos of each class, with small settings for a quick end-to-end run (CNN at 48 px,
/// transfer model at 96 px with batches of 16, short t-SNE and UMAP), then `edits`
/// (applied after them, so they may override them).
pub fn small_pets_project(name: &str, per_class: usize, edits: &[(&str, Value)]) -> Project {
    let p = Project::new(name, &[]);
    for class in ["cat", "dog"] {
        let dir = p.root.join("incoming").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for f in photos(class, 0, per_class) {
            std::os::unix::fs::symlink(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    let mut all: Vec<(&str, Value)> = vec![
        ("data.source", Value::from("folder")),
        ("data.folder", Value::from("incoming")),
        ("preprocess.image_size", Value::from(48)),
        ("preprocess.resize_shorter", Value::from(56)),
        ("transfer.image_size", Value::from(96)),
        ("transfer.resize_shorter", Value::from(110)),
        ("transfer.batch_size", Value::from(16)),
        ("embed.tsne_epochs", Value::from(250)),
        ("embed.umap_epochs", Value::from(50)),
    ];
    all.extend(edits.iter().cloned());
    p.write_config(&all);
    p
}

/// Removes the project folders `lab5-<name>-<pid>` of earlier runs of a test binary whose
/// process is gone (a project kept for the whole binary in a static is never dropped).
pub fn remove_stale_roots(name: &str) {
    let prefix = format!("lab5-{name}-");
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A temporary project folder, removed on drop.
pub struct Project {
    /// The project folder (holds `config.json`, `.env`, `data/`).
    pub root: PathBuf,
}

impl Project {
    /// A fresh project whose config is the shipped one with `edits` applied
    /// (`("api.timeout_secs", json!(1))`), `paths.data_dir` = `data`.
    pub fn new(name: &str, edits: &[(&str, Value)]) -> Project {
        let root = std::env::temp_dir().join(format!("lab5-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let p = Project { root };
        p.write_config(edits);
        p
    }

    /// Rewrites `config.json` from the shipped one with `edits`.
    pub fn write_config(&self, edits: &[(&str, Value)]) {
        let text = std::fs::read_to_string(shipped_config_path()).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["paths"]["data_dir"] = Value::from("data");
        for (key, val) in edits {
            let mut cur = &mut v;
            for k in key.split('.') {
                cur = &mut cur[k];
            }
            *cur = val.clone();
        }
        std::fs::write(
            self.config_path(),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }

    /// `root/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// The loaded config.
    pub fn config(&self) -> Config {
        Config::load(self.config_path()).unwrap()
    }

    /// `root/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Writes `root/.env`.
    pub fn write_env(&self, text: &str) {
        std::fs::write(self.root.join(".env"), text).unwrap();
    }

    /// The `lab5` binary with `--config` set, proxies off for 127.0.0.1, and `env` set.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lab5"));
        c.arg("--config").arg(self.config_path()).args(args);
        c.env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs `lab5 ARGS` to completion.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// The manifest after a run.
    pub fn manifest(&self) -> Manifest {
        Manifest::load(&Manifest::path_in(&self.data_dir())).unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Checks that the data folder and its manifest agree: each row's file exists with the
/// recorded size and SHA-256 and decodes; ids are unique, and so is the content of each
/// class (the same bytes under both labels is a label conflict); every file under
/// `data/` is the manifest, the list of refused items (`rejected.csv`) or a row's image
/// (no temp files, no strays); the project
/// folder holds nothing but `config.json`, `.env` and `data/`. Returns the manifest.
pub fn check_consistent(p: &Project) -> Manifest {
    let m = p.manifest();
    let data = p.data_dir();
    let mut ids = HashSet::new();
    let mut shas = HashSet::new();
    for r in &m.records {
        assert!(ids.insert(r.id.clone()), "duplicate id {}", r.id);
        let content = (r.sha256.clone(), r.label);
        assert!(shas.insert(content), "duplicate content {}", r.id);
        assert!(
            r.path.starts_with(Path::new("raw").join(r.label.name())),
            "{:?}",
            r.path
        );
        let bytes = std::fs::read(data.join(&r.path)).unwrap();
        assert_eq!(bytes.len() as u64, r.bytes, "{}", r.id);
        assert_eq!(lab5::data::images::sha256_hex(&bytes), r.sha256, "{}", r.id);
        assert!(
            lab5::data::images::inspect(&bytes, &lab5::config::Images::default()).is_ok(),
            "{} does not decode",
            r.id
        );
    }
    let expected: HashSet<PathBuf> = m.records.iter().map(|r| data.join(&r.path)).collect();
    for f in files_under(&data) {
        let is_manifest = f == Manifest::path_in(&data) || f == data.join("rejected.csv");
        assert!(
            is_manifest || expected.contains(&f),
            "stray file {}",
            f.display()
        );
    }
    for e in std::fs::read_dir(&p.root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            ["config.json", ".env", "data"].contains(&name.as_str()),
            "unexpected {name}"
        );
    }
    m
}

/// Rows of each class.
pub fn class_counts(m: &Manifest) -> (usize, usize) {
    (m.count(Class::Cat), m.count(Class::Dog))
}

/// Asserts `secret` appears in no output and in no file of the project except `.env`.
pub fn assert_no_secret(p: &Project, outputs: &[&Output], secret: &str) {
    for o in outputs {
        let (out, err) = text(o);
        assert!(!out.contains(secret), "secret in stdout");
        assert!(!err.contains(secret), "secret in stderr");
    }
    for f in files_under(&p.root) {
        if f.file_name().is_some_and(|n| n == ".env") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "secret in {}", f.display());
    }
}

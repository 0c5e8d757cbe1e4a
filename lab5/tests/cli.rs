//! The command line's contract with the shell: the exit status of bad arguments, and
//! output into a pipe that is already closed (`lab5 summary | head -1`), paths given
//! relative to the folder the command runs in.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn shipped_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config.json")
}

#[test]
fn an_unknown_model_is_a_usage_error_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_lab5"))
        .arg("--config")
        .arg(shipped_config())
        .args(["train", "foo"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("'foo'") && err.contains("cnn") && err.contains("transfer"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // the reading end is closed before lab5 starts, so its first write meets a closed pipe
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_lab5"))
        .arg("--config")
        .arg(shipped_config())
        .args(["config", "check"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}

#[test]
fn an_import_from_a_relative_folder_records_absolute_paths() {
    const PETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pets");
    let root = std::env::temp_dir().join(format!("lab5-cli-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut imported = Vec::new();
    for class in ["cat", "dog"] {
        let from = std::fs::read_dir(PathBuf::from(PETS).join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .min()
            .unwrap();
        std::fs::create_dir_all(root.join("in").join(class)).unwrap();
        let to = root.join("in").join(class).join(from.file_name().unwrap());
        std::fs::copy(&from, &to).unwrap();
        imported.push(to);
    }
    imported.sort();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shipped_config()).unwrap()).unwrap();
    v["paths"]["data_dir"] = root.join("data").to_string_lossy().into();
    std::fs::write(root.join("config.json"), v.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lab5"))
        .current_dir(&root)
        .args(["--config", "config.json", "import", "in"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let mut manifest = csv::Reader::from_path(root.join("data").join("manifest.csv")).unwrap();
    let url = manifest
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "url")
        .unwrap();
    let rows: Vec<csv::StringRecord> = manifest.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let mut urls: Vec<PathBuf> = rows.iter().map(|r| PathBuf::from(&r[url])).collect();
    urls.sort();
    assert_eq!(urls, imported, "the files imported, by their absolute path");
    std::fs::remove_dir_all(&root).unwrap();
}

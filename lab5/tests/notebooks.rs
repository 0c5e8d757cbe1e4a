//! The notebooks, executed for real: `jupyter nbconvert --execute` with the "Rust (lab5)"
//! kernel that `scripts/setup.sh` registers (run `make test`, which sets it up first).
//!
//! Every executed notebook is checked by `scripts/check_notebook.py`: the kernel (evcxr
//! 0.22) answers "ok" for a cell whose code returned an error or panicked, so nbconvert
//! alone would pass a broken notebook; the script finds failed cells in the outputs (error
//! outputs, lab5's error blocks, panics and `?` errors on stderr) and names each.
//!
//! - `kernel_runs_lab5_and_libtorch`: a tiny notebook `:dep`s the crate and runs a tch op;
//! - `failed_cells_are_found_however_the_kernel_reports_them`: a notebook made to fail (a
//!   panic before and after `setup()`, a lab5 error shown as a block, a `?` error, a
//!   compile error) runs to its end, and the check names exactly its failed cells;
//! - `notebooks_execute_with_ci_config`: every `notebooks/NN_*.ipynb`, in order, with a small
//!   CI config (the first 60 photos per class of the pets folder, small images, two
//!   epochs) writing into a scratch folder; any failed cell fails the test with the
//!   notebook, the cell and the error; then each notebook of [`RERUN`] (00_theory, 03_cnn,
//!   06_comparison) again in a fresh kernel: after its setup cells, its other cells in
//!   reverse order, then all of them again (re-running, out of order, training cells
//!   reusing their runs). Before the re-runs, every notebook executed in order is
//!   rendered as the offline page `make notebooks` writes
//!   (`scripts/render_notebook.py`, MathJax copied beside the pages) and loaded in headless
//!   Chromium with the network off (`scripts/check_render.py`): any raw TeX left in the
//!   text, any image that did not load, fewer charts than the outputs hold, or a request
//!   over the network fails the test; one screenshot per notebook is kept in
//!   `$TMPDIR/lab5-notebooks/ci/screenshots/`;
//! - `competing_rich_outputs_are_found`: the check over executed notebooks fails a cell
//!   whose one output carries two of text/html, image/svg+xml, image/png, text/markdown
//!   (evcxr merges what one cell displays; frontends show one form), on a hand-written
//!   executed notebook (`fixtures/rich_outputs.ipynb`);
//! - `offline_pages_are_checked_in_chromium`: the same fixture rendered by nbconvert's
//!   default HTML (MathJax from a CDN) and by `scripts/render_notebook.py`: the browser
//!   check names the raw TeX, the requests over the network, the chart the merged output
//!   hides, the broken image and the formula showing TeX source; the fixture without its
//!   faulty cells passes;
//! - `committed_notebooks_carry_no_outputs`: no outputs, no execution counts, our kernel,
//!   the kernel-status cell (`scripts/kernel_cache.py status`) first, `:dep lab5` second
//!   and cells tagged `setup` in every numbered notebook.
//!
//! Kernel tests share one lock, so one kernel runs at a time and reuses evcxr's warm
//! work folder. Executed copies, pages, screenshots and timings stay in
//! `$TMPDIR/lab5-notebooks/` for inspection. The browser tests need Chromium, which
//! `scripts/setup.sh` installs (`LAB5_BROWSER` names another Chrome or Chromium).

#[path = "support/notebook_files.rs"]
mod notebook_files;

use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// Kernel name registered by `scripts/setup.sh`.
const KERNEL: &str = "lab5";
/// Per-cell timeout: a cold `:dep lab5` on a 2-core machine takes several minutes.
const CELL_TIMEOUT_SECS: u32 = 2400;
/// Tag of the cells every other cell may depend on (`:dep`, loading the config).
const SETUP_TAG: &str = "setup";
/// The first line of every numbered notebook.
const DEP_LINE: &str = r#":dep lab5 = { path = "../lab5" }"#;
/// What the first code cell of every numbered notebook runs: it says whether the `:dep`
/// cell after it only loads lab5 or compiles it first (`scripts/kernel_cache.py`).
const STATUS_CALL: &str = r#""../scripts/kernel_cache.py", "status""#;
/// Small settings for CI (JSON pointer, value): fast, but every step still runs for real.
const CI_OVERRIDES: [(&str, i64); 9] = [
    ("/data/per_class", 60),
    ("/preprocess/image_size", 48),
    ("/preprocess/resize_shorter", 56),
    ("/cnn/epochs", 2),
    ("/transfer/epochs", 2),
    ("/transfer/image_size", 96),
    ("/embed/tsne_epochs", 500),
    ("/embed/umap_epochs", 50),
    ("/runtime/threads", 2),
];

/// Notebooks also executed out of order and twice (the expensive cells must load results
/// from `runs/` instead of recomputing or duplicating them); those not present are skipped.
const RERUN: [&str; 3] = ["00_theory.ipynb", "03_cnn.ipynb", "06_comparison.ipynb"];

/// One kernel at a time (see the module doc).
static KERNEL_LOCK: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Scratch folder for executed notebooks and the CI config's data and runs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("lab5-notebooks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The venv holding Jupyter, checked to have the kernel; panics with what to do otherwise.
fn venv() -> PathBuf {
    let venv = std::env::var_os("LAB5_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| lab5::config::lab5_home().join("venv"));
    let jupyter = venv.join("bin").join("jupyter");
    let kernel = venv
        .join("share/jupyter/kernels")
        .join(KERNEL)
        .join("kernel.json");
    assert!(
        jupyter.is_file() && kernel.is_file(),
        "no Jupyter with the \"Rust (lab5)\" kernel ({} / {} missing): run `make test` or `scripts/setup.sh` first",
        jupyter.display(),
        kernel.display()
    );
    venv
}

/// A notebook's JSON.
fn read_notebook(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn cells(nb: &Value) -> &Vec<Value> {
    nb["cells"]
        .as_array()
        .expect("notebook without a cells list")
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

fn is_code(cell: &Value) -> bool {
    cell["cell_type"] == "code"
}

fn is_setup(cell: &Value) -> bool {
    let tags = cell["metadata"]["tags"].as_array();
    tags.is_some_and(|t| t.iter().any(|v| v == SETUP_TAG))
}

/// The part of nbconvert's error output that names the failing cell and its error.
fn cell_error(stderr: &str) -> &str {
    let start = stderr
        .find("An error occurred while executing the following cell")
        .unwrap_or(0);
    &stderr[start..]
}

/// Executes `nb` (JSON) with the kernel's working folder `cwd`, like JupyterLab would for a
/// notebook saved there, into `out/<name>`, on past cells whose kernel answer is an error
/// (compile errors: `scripts/check_notebook.py` then names them all, the first included).
/// Returns the executed notebook's path.
fn run_nbconvert(
    nb: &Value,
    cwd: &Path,
    (out, name): (&Path, &str),
    env: &[(&str, OsString)],
) -> PathBuf {
    let venv = venv();
    let mut cmd = Command::new(venv.join("bin/jupyter"));
    cmd.current_dir(cwd)
        .env("JUPYTER_PATH", venv.join("share/jupyter"))
        .env("PATH", prepend_path(&venv.join("bin")))
        .args([
            "nbconvert",
            "--stdin",
            "--to",
            "notebook",
            "--execute",
            "--allow-errors",
        ])
        .arg(format!("--ExecutePreprocessor.kernel_name={KERNEL}"))
        .arg(format!("--ExecutePreprocessor.timeout={CELL_TIMEOUT_SECS}"))
        .arg("--output-dir")
        .arg(out)
        .args(["--output", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove(lab5::config::CONFIG_ENV);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start jupyter nbconvert");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(nb.to_string().as_bytes())
        .unwrap();
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "notebook {name} failed (kernel cwd {}):\n{}",
        cwd.display(),
        cell_error(&stderr)
    );
    out.join(name)
}

/// `scripts/check_notebook.py` on an executed notebook: its report of the failed cells
/// (notebook, cell number and first line, what failed), or `None` when none failed.
fn failed_cells(executed: &Path) -> Option<String> {
    let script = repo().join("scripts/check_notebook.py");
    let out = Command::new(venv().join("bin/python"))
        .arg(&script)
        .arg(executed)
        .output()
        .expect("cannot run scripts/check_notebook.py");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => None,
        Some(1) => Some(report),
        _ => panic!(
            "{} failed on {}: {}",
            script.display(),
            executed.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Runs `scripts/<script>` with the venv's Python; returns its exit code, stdout and
/// stderr.
fn python_script(script: &str, args: &[&Path]) -> (Option<i32>, String, String) {
    let path = repo().join("scripts").join(script);
    let out = Command::new(venv().join("bin/python"))
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The offline pages of executed notebooks (`scripts/render_notebook.py`): `NAME.html`
/// next to each `NAME.ipynb`, MathJax copied beside them.
fn render_pages(executed: &[PathBuf]) -> Vec<PathBuf> {
    let args: Vec<&Path> = executed.iter().map(PathBuf::as_path).collect();
    let (code, _, stderr) = python_script("render_notebook.py", &args);
    assert_eq!(code, Some(0), "scripts/render_notebook.py failed: {stderr}");
    executed.iter().map(|p| p.with_extension("html")).collect()
}

/// `scripts/check_render.py` on `pages` (screenshots into `shots` when given): its report
/// of what does not read right offline, or `None` when every page does. Panics when no
/// browser runs (the script says how to install one).
fn render_problems(pages: &[PathBuf], shots: Option<&Path>) -> Option<String> {
    let mut args: Vec<&Path> = Vec::new();
    if let Some(dir) = shots {
        args.extend([Path::new("--screenshots"), dir]);
    }
    args.extend(pages.iter().map(PathBuf::as_path));
    match python_script("check_render.py", &args) {
        (Some(0), _, _) => None,
        (Some(1), report, _) => Some(report),
        (_, _, stderr) => panic!("scripts/check_render.py could not check the pages: {stderr}"),
    }
}

/// Executes `nb` like [`run_nbconvert`] and fails naming every failed cell; returns the
/// executed notebook.
fn execute(nb: &Value, cwd: &Path, out: &Path, name: &str, env: &[(&str, OsString)]) -> Value {
    let executed = run_nbconvert(nb, cwd, (out, name), env);
    if let Some(report) = failed_cells(&executed) {
        panic!(
            "notebook {name}: failed cells (kernel cwd {}):\n{report}",
            cwd.display()
        );
    }
    read_notebook(&executed)
}

fn prepend_path(dir: &Path) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// All text a cell printed.
fn printed(cell: &Value) -> String {
    let outs = cell["outputs"].as_array().into_iter().flatten();
    outs.filter_map(|o| match o["output_type"].as_str() {
        Some("stream") => Some(source(&json!({ "source": o["text"] }))),
        _ => None,
    })
    .collect()
}

/// `notebooks/NN_*.ipynb`, sorted.
fn numbered_notebooks() -> Vec<PathBuf> {
    notebook_files::numbered_notebooks(&repo().join("notebooks"))
}

/// Copies the first `n` photos (by file name) of `pets/<class>` into `out/<class>`;
/// returns their file stems (the ids `labels.csv` uses).
fn copy_first(pets: &Path, out: &Path, class: &str, n: usize) -> Vec<String> {
    copy_range(pets, &out.join(class), class, 0, n)
}

/// Copies `n` photos (by file name, after the first `skip`) of `pets/<class>` into `to`;
/// returns their file stems.
fn copy_range(pets: &Path, to: &Path, class: &str, skip: usize, n: usize) -> Vec<String> {
    let from = pets.join(class);
    std::fs::create_dir_all(to).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let files: Vec<PathBuf> = files.into_iter().skip(skip).take(n).collect();
    for f in &files {
        std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
    }
    let stem = |f: &PathBuf| f.file_stem().unwrap().to_string_lossy().into_owned();
    files.iter().map(stem).collect()
}

/// For notebook `07_your_photos`: a folder of "your" photos (one cat, one dog) and another
/// labelled collection (10 photos per class), all outside the CI data set's first
/// `per_class` photos per class.
fn your_photos_and_another_collection(
    pets: &Path,
    dir: &Path,
    per_class: usize,
) -> (PathBuf, PathBuf) {
    let (mine, other) = (dir.join("my-photos"), dir.join("other-collection"));
    for class in ["cat", "dog"] {
        copy_range(pets, &mine, class, per_class + 20, 1);
        copy_range(pets, &other.join(class), class, per_class, 10);
    }
    (mine, other)
}

/// A subset of the pets folder in `dir/pets-subset`: the first `per_class` photos of each
/// class and the matching rows of `labels.csv`. Returns the folder.
fn pets_subset(pets: &Path, dir: &Path, per_class: usize) -> PathBuf {
    let out = dir.join("pets-subset");
    let kept: std::collections::HashSet<String> = ["cat", "dog"]
        .iter()
        .flat_map(|c| copy_first(pets, &out, c, per_class))
        .collect();
    if let Ok(labels) = std::fs::read_to_string(pets.join("labels.csv")) {
        let mut rows = labels.lines();
        let header = rows.next().unwrap_or_default();
        let id = |r: &&str| kept.contains(r.split(',').next().unwrap_or_default());
        let body: Vec<&str> = rows.filter(id).collect();
        std::fs::write(
            out.join("labels.csv"),
            format!("{header}\n{}\n", body.join("\n")),
        )
        .unwrap();
    }
    out
}

/// The CI config: `config.json` with [`CI_OVERRIDES`], the folder source, absolute paths
/// to a subset of the pets folder (`data.per_class` photos per class) and to `dir` for
/// data, runs and reports. Written to `dir` and checked by `Config::load`.
fn ci_config(dir: &Path) -> PathBuf {
    let shipped = repo().join("config.json");
    let mut v = read_notebook(&shipped);
    let pets = repo().join(v["data"]["folder"].as_str().expect("data.folder"));
    for (ptr, n) in CI_OVERRIDES {
        set(&mut v, ptr, json!(n));
    }
    set(&mut v, "/data/source", json!("folder"));
    let per_class = v["data"]["per_class"].as_u64().expect("data.per_class") as usize;
    let pets = pets.canonicalize().expect("pets folder (data.folder)");
    let subset = pets_subset(&pets, dir, per_class);
    set(&mut v, "/data/folder", json!(subset));
    let (mine, other) = your_photos_and_another_collection(&pets, dir, per_class);
    set(&mut v, "/paths/my_photos", json!(mine));
    set(&mut v, "/paths/other_collection", json!(other));
    write_config(v, dir, "ci-config.json")
}

/// Writes the config `v` as `dir/<name>` with its data, runs and reports folders in `dir`
/// (absolute paths); returns its path, checked by `Config::load`.
fn write_config(mut v: Value, dir: &Path, name: &str) -> PathBuf {
    for key in ["data_dir", "runs_dir", "reports_dir"] {
        let folder = dir.join(key.trim_end_matches("_dir"));
        set(&mut v, &format!("/paths/{key}"), json!(folder));
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    lab5::Config::load(&path).unwrap_or_else(|e| panic!("{name} is invalid: {e}"));
    path
}

/// The shipped config with absolute paths: to the pets folder, and to empty data, runs and
/// reports folders in `dir`.
fn empty_config(dir: &Path) -> PathBuf {
    let mut v = read_notebook(&repo().join("config.json"));
    let pets = repo().join(v["data"]["folder"].as_str().expect("data.folder"));
    let pets = pets.canonicalize().expect("pets folder (data.folder)");
    set(&mut v, "/data/folder", json!(pets));
    write_config(v, dir, "empty-config.json")
}

/// Sets the config value at JSON pointer `ptr` (which must exist).
fn set(v: &mut Value, ptr: &str, new: Value) {
    *v.pointer_mut(ptr)
        .unwrap_or_else(|| panic!("config.json has no {ptr}; update CI_OVERRIDES")) = new;
}

#[test]
fn kernel_runs_lab5_and_libtorch() {
    let _one = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = repo().join("lab5/tests/fixtures/kernel_smoke.ipynb");
    let out = scratch("kernel");
    let executed = execute(
        &read_notebook(&fixture),
        fixture.parent().unwrap(),
        &out,
        "kernel_smoke.ipynb",
        &[],
    );
    let text: String = cells(&executed).iter().map(printed).collect();
    assert!(
        text.contains("matmul ok: [7.0, 10.0, 15.0, 22.0]"),
        "tensor cell printed: {text}"
    );
    let shipped = repo().join("config.json").canonicalize().unwrap();
    assert!(
        text.contains(&format!("config: {}", shipped.display())),
        "config not found from the notebook folder: {text}"
    );
}

/// The failed cells of `lab5/tests/fixtures/failed_cells.ipynb` and what the check must
/// say about each (cell number in the notebook, texts of its paragraph).
const FAILED: [(usize, &[&str]); 5] = [
    (2, &["panicked at", "index out of bounds"]),
    (
        5,
        &[
            "lab5 error: no finished CNN from scratch run",
            "notebook 03_cnn",
        ],
    ),
    (6, &["stderr", "no data set yet", "notebook 01_data"]),
    (7, &["lab5 panic", "index out of bounds"]),
    (8, &["mismatched types"]),
];

/// The report's paragraphs by cell number (each starts `<notebook>: cell <n> (`).
fn paragraphs(report: &str, notebook: &Path) -> Vec<(usize, String)> {
    let head = format!("{}: cell ", notebook.display());
    let mut found: Vec<(usize, String)> = Vec::new();
    for line in report.lines() {
        let cell = line.strip_prefix(&head).and_then(|rest| {
            let n = rest.split(' ').next()?;
            n.parse().ok()
        });
        match (cell, found.last_mut()) {
            (Some(n), _) => found.push((n, format!("{line}\n"))),
            (None, Some((_, text))) => text.push_str(&format!("{line}\n")),
            (None, None) => panic!("report does not start with a cell: {report}"),
        }
    }
    found
}

/// An executed code cell with `outputs`.
fn executed_cell(first_line: &str, outputs: Value) -> Value {
    json!({ "cell_type": "code", "source": first_line, "metadata": {}, "outputs": outputs })
}

fn stderr(text: &str) -> Value {
    json!({ "output_type": "stream", "name": "stderr", "text": text })
}

/// The check's rules on outputs made up the way evcxr writes them (no kernel needed):
/// progress lines and warnings pass, a `?` error on stderr, an `Err(..)` value and a lab5
/// block fail, a block with its stderr echo is reported once, and a file that is not a
/// notebook is an error of the check (exit 2), not a failed cell.
#[test]
fn check_flags_failed_outputs_and_passes_progress_and_warnings() {
    let block = json!({ "output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "This cell failed: no data",
        "application/vnd.lab5.error+json": { "kind": "error", "message": "no data", "causes": [] }
    }});
    let err_value = json!({ "output_type": "execute_result", "execution_count": 1,
        "metadata": {}, "data": { "text/plain": "Err(no run yet)" } });
    let ok_value = json!({ "output_type": "execute_result", "execution_count": 1,
        "metadata": {}, "data": { "text/plain": "Ok(3)" } });
    let nb = json!({ "nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        executed_cell("progress", json!([stderr("lab5: epoch 1/2\nlab5 run: cnn\n")])),
        executed_cell("warnings", json!([stderr(
            "[W NNPACK.cpp:64] Could not initialize NNPACK! Reason: Unsupported hardware.\nwarning: unused variable\n")])),
        executed_cell("question_mark", json!([stderr("Error: config config.json\n")])),
        executed_cell("err_value", json!([err_value])),
        executed_cell("ok_value", json!([ok_value])),
        executed_cell("block", json!([block, stderr("Error: no data\n")])),
    ]});
    let dir = scratch("check-rules");
    let path = dir.join("made_up.ipynb");
    std::fs::write(&path, nb.to_string()).unwrap();
    let report = failed_cells(&path).expect("three cells failed");
    let found = paragraphs(&report, &path);
    let numbers: Vec<usize> = found.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [2, 3, 5], "{report}");
    assert!(found[0].1.contains("Error: config"), "{report}");
    assert!(found[1].1.contains("Err(no run yet)"), "{report}");
    assert_eq!(
        found[2].1.matches("no data").count(),
        1,
        "reported once: {report}"
    );

    let broken = dir.join("broken.ipynb");
    std::fs::write(&broken, "{ not json").unwrap();
    let out = Command::new(venv().join("bin/python"))
        .arg(repo().join("scripts/check_notebook.py"))
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn failed_cells_are_found_however_the_kernel_reports_them() {
    let _one = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = repo().join("lab5/tests/fixtures/failed_cells.ipynb");
    let out = scratch("failed");
    let env = [(
        lab5::config::CONFIG_ENV,
        empty_config(&out).into_os_string(),
    )];
    let name = "failed_cells.ipynb";
    let executed = run_nbconvert(
        &read_notebook(&fixture),
        fixture.parent().unwrap(),
        (&out, name),
        &env,
    );
    let nb = read_notebook(&executed);
    let last = printed(cells(&nb).last().unwrap());
    assert!(
        last.contains("still running after the failures"),
        "the kernel runs on past failed cells: {last:?}"
    );
    let report = failed_cells(&executed).expect("the check must fail on this notebook");
    let found = paragraphs(&report, &executed);
    let numbers: Vec<usize> = found.iter().map(|(n, _)| *n).collect();
    let expected: Vec<usize> = FAILED.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, expected, "failed cells in:\n{report}");
    for ((n, text), (_, needles)) in found.iter().zip(FAILED) {
        for needle in needles {
            assert!(
                text.contains(needle),
                "cell {n}: {needle:?} missing in:\n{text}"
            );
        }
    }
    let block = &cells(&nb)[5]["outputs"];
    let html: String = block
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| source(&json!({ "source": o["data"]["text/html"] })))
        .collect();
    assert!(
        html.contains("This cell failed"),
        "a lab5 error shows as a block: {block}"
    );
}

/// The hand-written executed notebook of the output checks.
fn rich_outputs_fixture() -> PathBuf {
    repo().join("lab5/tests/fixtures/rich_outputs.ipynb")
}

/// The cells of `fixtures/rich_outputs.ipynb` that the check over executed notebooks must
/// name, and texts of each one's paragraph.
const RICH_FAILED: [(usize, &[&str]); 3] = [
    (
        2,
        &[
            "2 rich forms (text/html, image/svg+xml)",
            "show each from its own cell",
        ],
    ),
    (4, &["2 rich forms (text/html, text/markdown)"]),
    (6, &["lab5 error: no data set yet"]),
];

#[test]
fn competing_rich_outputs_are_found() {
    let fixture = rich_outputs_fixture();
    let report = failed_cells(&fixture).expect("the check must fail on this notebook");
    let found = paragraphs(&report, &fixture);
    let numbers: Vec<usize> = found.iter().map(|(n, _)| *n).collect();
    let expected: Vec<usize> = RICH_FAILED.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, expected, "cells named in:\n{report}");
    for ((n, text), (_, needles)) in found.iter().zip(RICH_FAILED) {
        for needle in needles {
            assert!(
                text.contains(needle),
                "cell {n}: {needle:?} missing in:\n{text}"
            );
        }
    }
    // An error block has HTML, text and JSON forms but only one rich form.
    assert!(!found[2].1.contains("rich forms"), "{}", found[2].1);
}

/// Copies the notebook `nb` (JSON) into `dir` as `name`; returns the copy's path.
fn put_notebook(nb: &Value, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(nb).unwrap()).unwrap();
    path
}

/// nbconvert's default HTML page of an executed notebook (MathJax and require.js from a
/// CDN), as `make notebooks` wrote it before the pages were made for offline reading.
fn default_nbconvert_page(executed: &Path) -> PathBuf {
    let out = Command::new(venv().join("bin/jupyter"))
        .args(["nbconvert", "--to", "html", "--log-level=ERROR"])
        .arg(executed)
        .output()
        .expect("cannot run jupyter nbconvert");
    assert!(
        out.status.success(),
        "nbconvert --to html failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    executed.with_extension("html")
}

/// Cell numbers named by a check_render.py report (`...: cell N (...`), sorted, unique.
fn cells_named(report: &str) -> Vec<usize> {
    let mut cells: Vec<usize> = report
        .lines()
        .filter_map(|l| l.split(": cell ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    cells.dedup();
    cells
}

#[test]
fn offline_pages_are_checked_in_chromium() {
    let out = scratch("render");
    let nb = read_notebook(&rich_outputs_fixture());
    let name = "rich_outputs.ipynb";

    let cdn = default_nbconvert_page(&put_notebook(&nb, &out.join("cdn"), name));
    let report = render_problems(&[cdn], None).expect("the CDN page must fail offline");
    for needle in [
        "mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe over the network",
        "MathJax did not load",
        "cell 0 (",
        "raw TeX in the text (formulas not typeset): $$, ",
        "$y = \\mathrm{ReLU}(x + F(x))$",
        "$\\mathcal{L}(\\theta)$, $\\mathfrak{g}$",
    ] {
        assert!(report.contains(needle), "{needle:?} missing in:\n{report}");
    }
    assert_eq!(cells_named(&report), [0, 2, 5, 7], "{report}");

    let offline = render_pages(&[put_notebook(&nb, &out.join("offline"), name)]);
    let shots = out.join("screenshots");
    let report = render_problems(&offline, Some(&shots)).expect("three cells are faulty");
    assert_eq!(
        cells_named(&report),
        [2, 5, 7],
        "only the faulty cells:\n{report}"
    );
    for needle in [
        "cell 2 (`g.table()?.evcxr_display();`): its outputs hold 1 chart(s)/image(s), the page shows 0",
        "cell 5 (`broken_image()`): 1 image(s) did not load: no-such-photo.png",
        "no-such-photo.png: net::ERR_FILE_NOT_FOUND",
        "cell 7 (`PyTorch's default initialisation draws $w \\sim U(\\pm 1/\\sqrt{\\text{fan\\_in}})$: `): \
         typeset formula(s) show TeX source as text",
        "fan\\_in",
    ] {
        assert!(report.contains(needle), "{needle:?} missing in:\n{report}");
    }
    assert!(!report.contains("network"), "{report}");
    let shot = std::fs::read(shots.join("rich_outputs.png")).expect("a screenshot");
    assert!(shot.starts_with(b"\x89PNG"), "the screenshot is a PNG");

    // Without its faulty cells the page reads right, also from a folder copied elsewhere.
    let mut clean = nb.clone();
    let kept: Vec<Value> = [0, 1, 3].iter().map(|&i| cells(&nb)[i].clone()).collect();
    clean["cells"] = Value::Array(kept);
    let page = render_pages(&[put_notebook(&clean, &out.join("clean"), name)]);
    assert_eq!(render_problems(&page, None), None);
    std::fs::rename(out.join("clean"), out.join("moved")).unwrap();
    let moved = out.join("moved").join("rich_outputs.html");
    assert_eq!(render_problems(&[moved], None), None);
}

/// Executes the numbered notebooks in order with the CI config; returns the config path
/// and the scratch folder.
fn run_all_with_ci_config() -> (PathBuf, PathBuf) {
    let dir = scratch("ci");
    let config = ci_config(&dir);
    let env = [(lab5::config::CONFIG_ENV, config.clone().into_os_string())];
    let mut timings = String::new();
    for path in numbered_notebooks() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let start = Instant::now();
        let executed = execute(
            &read_notebook(&path),
            path.parent().unwrap(),
            &dir,
            &name,
            &env,
        );
        let status = cells(&executed)
            .iter()
            .find(|c| is_code(c))
            .map(printed)
            .unwrap_or_default();
        assert!(
            status.starts_with("lab5 for notebooks "),
            "{name}: the first cell must say whether the kernel's lab5 is compiled; it printed {status:?}"
        );
        timings.push_str(&format!("{name}: {:.0} s\n", start.elapsed().as_secs_f64()));
    }
    std::fs::write(dir.join("timings.txt"), &timings).unwrap();
    eprint!("{timings}");
    (config, dir)
}

#[test]
fn notebooks_execute_with_ci_config() {
    let _one = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        !numbered_notebooks().is_empty(),
        "no notebooks/NN_*.ipynb found"
    );
    let (config, dir) = run_all_with_ci_config();
    pages_read_right_offline(&dir);
    for name in RERUN
        .iter()
        .filter(|n| repo().join("notebooks").join(n).is_file())
    {
        rerun_out_of_order(name, &config, &dir);
    }
}

/// Renders the notebooks executed in order into `dir` as offline pages and checks them in
/// Chromium; screenshots go to `dir/screenshots/`.
fn pages_read_right_offline(dir: &Path) {
    let executed: Vec<PathBuf> = numbered_notebooks()
        .iter()
        .map(|p| dir.join(p.file_name().unwrap()))
        .collect();
    let start = Instant::now();
    let shots = dir.join("screenshots");
    let pages = render_pages(&executed);
    if let Some(report) = render_problems(&pages, Some(&shots)) {
        panic!(
            "rendered notebooks do not read right offline (screenshots in {}):\n{report}",
            shots.display()
        );
    }
    eprintln!(
        "pages rendered and checked offline in Chromium: {:.0} s; screenshots in {}",
        start.elapsed().as_secs_f64(),
        shots.display()
    );
}

/// The notebook's setup cells, then its other code cells in reverse order, then all of
/// them again in order: every cell must work after only the setup cells ran, and when run
/// a second time in the same kernel.
fn shuffled(nb: &Value) -> Value {
    let code: Vec<&Value> = cells(nb).iter().filter(|c| is_code(c)).collect();
    let (setup, rest): (Vec<&Value>, Vec<&Value>) = code.iter().partition(|c| is_setup(c));
    let order = setup
        .iter()
        .chain(rest.iter().rev())
        .chain(setup.iter())
        .chain(rest.iter());
    let mut out = nb.clone();
    out["cells"] = Value::Array(order.map(|c| (*c).clone()).collect());
    out
}

/// Executes the shuffled form of `notebooks/<name>` after the in-order run.
fn rerun_out_of_order(name: &str, config: &Path, dir: &Path) {
    let path = repo().join("notebooks").join(name);
    let env = [(lab5::config::CONFIG_ENV, config.as_os_str().to_os_string())];
    let start = Instant::now();
    execute(
        &shuffled(&read_notebook(&path)),
        path.parent().unwrap(),
        dir,
        &format!("rerun-{name}"),
        &env,
    );
    eprintln!(
        "{name} out of order and twice: {:.0} s",
        start.elapsed().as_secs_f64()
    );
}

/// Problems of one committed notebook: outputs, execution counts, wrong kernel, and for
/// numbered notebooks a missing `:dep lab5` first line or setup cell.
fn committed_problems(path: &Path) -> Vec<String> {
    let nb = read_notebook(path);
    let mut problems = Vec::new();
    for (i, cell) in cells(&nb).iter().enumerate().filter(|(_, c)| is_code(c)) {
        if cell["outputs"].as_array().is_some_and(|o| !o.is_empty()) {
            problems.push(format!(
                "cell {i} has outputs (clear them before committing)"
            ));
        }
        if !cell["execution_count"].is_null() {
            problems.push(format!("cell {i} has an execution count"));
        }
    }
    if nb["metadata"]["kernelspec"]["name"] != KERNEL {
        problems.push(format!("kernel is not {KERNEL:?}"));
    }
    if numbered_notebooks().contains(&path.to_path_buf()) {
        let code: Vec<String> = cells(&nb)
            .iter()
            .filter(|c| is_code(c))
            .take(2)
            .map(source)
            .collect();
        if !code.first().is_some_and(|c| c.contains(STATUS_CALL)) {
            problems.push(format!(
                "first code cell must run scripts/kernel_cache.py status ({STATUS_CALL})"
            ));
        }
        if !code.get(1).is_some_and(|c| c.starts_with(DEP_LINE)) {
            problems.push(format!("second code cell must start with {DEP_LINE}"));
        }
        if !cells(&nb).iter().any(is_setup) {
            problems.push(format!("no cell tagged {SETUP_TAG:?}"));
        }
        for (i, cell) in cells(&nb).iter().enumerate() {
            if is_code(cell) && !is_setup(cell) && uses_question_mark(&source(cell)) {
                problems.push(format!(
                    "cell {i} uses `?`: evcxr shows such an error as plain stderr text and \
                     carries on; end the cell with the call (`.and_then(..)`) so it shows a block"
                ));
            }
        }
    }
    problems
}

/// Whether Rust code uses the `?` operator outside string literals and `//` comments.
fn uses_question_mark(code: &str) -> bool {
    code.lines().any(|line| {
        let code = line.split("//").next().unwrap_or_default();
        let outside: String = code.split('"').step_by(2).collect();
        outside.contains('?')
    })
}

#[test]
fn committed_notebooks_carry_no_outputs() {
    let fixtures = ["kernel_smoke.ipynb", "failed_cells.ipynb"]
        .map(|f| repo().join("lab5/tests/fixtures").join(f));
    let all: Vec<PathBuf> = numbered_notebooks().into_iter().chain(fixtures).collect();
    let problems: Vec<String> = all
        .iter()
        .flat_map(|p| {
            committed_problems(p)
                .into_iter()
                .map(move |m| format!("{}: {m}", p.display()))
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

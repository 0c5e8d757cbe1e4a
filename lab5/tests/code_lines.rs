//! Code on the page: the `*Code:*` lines of the numbered notebooks and the source the
//! notebooks show must name code that exists. No kernel is started: the notebooks are read
//! as JSON.
//!
//! A code line is a Markdown paragraph of a markdown cell that starts with `*Code:*` (or
//! `Code:`); its backquoted spans are, in order, a file (a path from the project root ending
//! in `.rs`) and the items of that file it names (`fit`, `Type::method`), then the next file
//! and its items, and so on; the text between the spans is free, and so is a span with a
//! space in it (a command such as `lab5 label --simulate`). Example:
//!
//! ```text
//! *Code:* `lab5/src/train/trainer.rs` (`fit`, `Hyper::cnn`), `lab5/src/views/runs.rs` (`train`).
//! ```
//!
//! Each named item must be found in its file by `lab5::views::find_item` (a Rust parser, so
//! a renamed or removed function, struct or method fails the test), every section (a `##`
//! or deeper heading) that holds a code cell must carry a code line, and every
//! `source_code("file", &["item", ...])` call of a code cell must succeed.

#[path = "support/notebook_files.rs"]
mod notebook_files;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `notebooks/NN_*.ipynb`, sorted.
fn numbered_notebooks() -> Vec<PathBuf> {
    let found = notebook_files::numbered_notebooks(&repo().join("notebooks"));
    assert!(found.len() >= 8, "numbered notebooks: {found:?}");
    found
}

/// The cells of a notebook: (cell type, source text).
fn cells(nb: &Value) -> Vec<(String, String)> {
    nb["cells"]
        .as_array()
        .expect("a notebook has cells")
        .iter()
        .map(|c| {
            let source = match &c["source"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
                _ => String::new(),
            };
            (
                c["cell_type"].as_str().unwrap_or_default().to_string(),
                source,
            )
        })
        .collect()
}

/// The notebook at `path`, parsed.
fn read_notebook(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a code line names: (file, items of that file), in order.
type Named = Vec<(String, Vec<String>)>;

/// The backquoted spans of `text`.
fn backquoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether `s` is an item name or `Type::item`.
fn is_item_name(s: &str) -> bool {
    let ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && p.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    };
    let parts: Vec<&str> = s.split("::").collect();
    parts.len() <= 2 && parts.iter().all(|p| ident(p))
}

/// Parses one code paragraph (the text after `Code:`).
fn parse_code_line(text: &str) -> Result<Named, String> {
    let mut named: Named = Vec::new();
    for span in backquoted(text) {
        if span.contains(' ') {
            continue; // prose, such as a command
        } else if span.ends_with(".rs") {
            named.push((span.to_string(), Vec::new()));
        } else if !is_item_name(span) {
            return Err(format!(
                "`{span}` is neither a .rs file nor an item name (`fit`, `Type::method`)"
            ));
        } else if let Some((_, items)) = named.last_mut() {
            items.push(span.to_string());
        } else {
            return Err(format!("item `{span}` comes before any file"));
        }
    }
    if named.is_empty() {
        return Err("names no file".into());
    }
    match named.iter().find(|(_, items)| items.is_empty()) {
        Some((file, _)) => Err(format!("names no item of `{file}`")),
        None => Ok(named),
    }
}

/// One section of a notebook: from a heading to the next one.
#[derive(Debug, Default)]
struct Section {
    heading: String,
    /// Heading level (1 for the title).
    level: usize,
    code_cells: usize,
    /// The text after `Code:` of each code paragraph.
    code_lines: Vec<String>,
}

/// The level of a Markdown heading line (`## x` is 2), if it is one.
fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
}

/// The text after the code-line marker, if `line` starts a code paragraph.
fn code_marker(line: &str) -> Option<&str> {
    let line = line.trim_start();
    line.strip_prefix("*Code:*")
        .or_else(|| line.strip_prefix("Code:"))
}

/// Adds the lines of a markdown cell to `sections`: headings open sections, code paragraphs
/// (a marker line and the lines after it up to a blank line or heading) join the current one.
fn read_markdown(source: &str, sections: &mut Vec<Section>) {
    let mut open: Option<String> = None;
    let close = |open: &mut Option<String>, sections: &mut Vec<Section>| {
        if let (Some(text), Some(s)) = (open.take(), sections.last_mut()) {
            s.code_lines.push(text);
        }
    };
    for line in source.lines() {
        if let Some(level) = heading_level(line) {
            close(&mut open, sections);
            let heading = line[level..].trim().to_string();
            sections.push(Section {
                heading,
                level,
                ..Section::default()
            });
        } else if let Some(rest) = code_marker(line) {
            close(&mut open, sections);
            open = Some(rest.to_string());
        } else if line.trim().is_empty() {
            close(&mut open, sections);
        } else if let Some(text) = &mut open {
            text.push(' ');
            text.push_str(line.trim());
        }
    }
    close(&mut open, sections);
}

/// The sections of a notebook, with their code cells and code lines.
fn sections(nb: &Value) -> Vec<Section> {
    let mut sections = vec![Section::default()];
    for (kind, source) in cells(nb) {
        match kind.as_str() {
            "markdown" => read_markdown(&source, &mut sections),
            "code" => sections.last_mut().unwrap().code_cells += 1,
            _ => {}
        }
    }
    sections
}

/// What is wrong with the code lines of `nb` and the sections without one; file paths are
/// resolved from `root`.
fn code_line_problems(nb: &Value, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for s in sections(nb) {
        if s.level >= 2 && s.code_cells > 0 && s.code_lines.is_empty() {
            problems.push(format!(
                "section `{}` has {} code cell(s) and no `*Code:*` line",
                s.heading, s.code_cells
            ));
        }
        for line in &s.code_lines {
            let at = format!("section `{}`, code line `{}`", s.heading, line.trim());
            match parse_code_line(line) {
                Err(e) => problems.push(format!("{at}: {e}")),
                Ok(named) => problems.extend(
                    missing_items(&named, root)
                        .into_iter()
                        .map(|e| format!("{at}: {e}")),
                ),
            }
        }
    }
    problems
}

/// The files that do not exist and the items not found in their file.
fn missing_items(named: &Named, root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    for (file, items) in named {
        let Ok(src) = std::fs::read_to_string(root.join(file)) else {
            missing.push(format!("no file `{file}`"));
            continue;
        };
        for item in items {
            if let Err(e) = lab5::views::find_item(&src, item) {
                missing.push(format!("`{file}`: {e:#}"));
            }
        }
    }
    missing
}

/// The string literals of a `source_code("file", &["item", ...])` call in `code`, each
/// call's file first: one list per call.
fn source_code_calls(code: &str) -> Vec<Vec<String>> {
    code.split("source_code(")
        .skip(1)
        .map(|call| {
            let args = call.split(')').next().unwrap_or_default();
            args.split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn every_code_line_names_files_and_items_that_exist() {
    let mut problems = Vec::new();
    let mut lines = 0;
    for path in numbered_notebooks() {
        let nb = read_notebook(&path);
        lines += sections(&nb)
            .iter()
            .map(|s| s.code_lines.len())
            .sum::<usize>();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        problems.extend(
            code_line_problems(&nb, &repo())
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    assert!(
        lines >= 40,
        "only {lines} code lines found: the parser is broken"
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) with the notebooks' code lines:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_source_shown_in_notebooks_exists_and_03_and_05_show_model_and_training_step() {
    for path in numbered_notebooks() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let calls: Vec<Vec<String>> = cells(&read_notebook(&path))
            .iter()
            .filter(|(kind, _)| kind == "code")
            .flat_map(|(_, src)| source_code_calls(src))
            .collect();
        for call in &calls {
            let (file, items) = call.split_first().expect("source_code names a file");
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            let shown = lab5::views::source_code(file, &items)
                .unwrap_or_else(|e| panic!("{name}: source_code({file:?}, {items:?}): {e:#}"));
            assert_eq!(shown.items.len(), items.len());
        }
        let shows = |file: &str| calls.iter().any(|c| c[0] == file);
        if name.starts_with("03_") {
            assert!(shows("lab5/src/models/cnn.rs"), "{name} shows no CNN code");
            assert!(
                shows("lab5/src/train/trainer.rs"),
                "{name} shows no training step"
            );
        }
        if name.starts_with("05_") {
            assert!(
                shows("lab5/src/models/transfer.rs"),
                "{name} shows no model code"
            );
            assert!(
                shows("lab5/src/train/transfer.rs"),
                "{name} shows no training step"
            );
        }
    }
}

#[test]
fn code_lines_parse_and_bad_ones_are_reported() {
    let named = parse_code_line(
        " `lab5/src/train/trainer.rs` (`fit`, `Hyper::cnn`), then\n`lab5/src/views/runs.rs` (`train`).",
    )
    .unwrap();
    assert_eq!(
        named,
        vec![
            (
                "lab5/src/train/trainer.rs".to_string(),
                vec!["fit".to_string(), "Hyper::cnn".to_string()]
            ),
            (
                "lab5/src/views/runs.rs".to_string(),
                vec!["train".to_string()]
            ),
        ]
    );
    let err = |line: &str| parse_code_line(line).unwrap_err();
    assert!(err("`fit` in `lab5/src/train/trainer.rs`").contains("before any file"));
    assert!(err("`lab5/src/train/trainer.rs`").contains("names no item"));
    assert!(err("`lab5/src/x.rs` (`lab5::x::y`)").contains("neither a .rs file"));
    assert!(err("`lab5 label --simulate`").contains("names no file"));
    assert!(err("nothing quoted").contains("names no file"));
}

#[test]
fn a_missing_item_a_missing_file_and_a_section_without_code_line_fail() {
    let nb = serde_json::json!({"cells": [
        {"cell_type": "markdown", "source": ["# Title\n"]},
        {"cell_type": "code", "source": ["setup()"]},
        {"cell_type": "markdown", "source": ["## 1. Training\n", "\n",
            "*Code:* `lab5/src/train/trainer.rs` (`fit`, `fit_gone`),\n",
            "`lab5/src/gone.rs` (`x`)."]},
        {"cell_type": "code", "source": ["train(&cfg)"]},
        {"cell_type": "markdown", "source": "### 1b. Untold\n\ntext"},
        {"cell_type": "code", "source": ["untold(&cfg)"]},
        {"cell_type": "markdown", "source": "## 2. Only text\n\nno code here"}
    ]});
    let problems = code_line_problems(&nb, &repo());
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("`lab5/src/train/trainer.rs`: no item `fit_gone`"));
    assert!(problems[1].contains("no file `lab5/src/gone.rs`"));
    assert_eq!(
        problems[2],
        "section `1b. Untold` has 1 code cell(s) and no `*Code:*` line"
    );
}

#[test]
fn source_code_calls_are_read_from_cells() {
    let calls = source_code_calls(
        "source_code(\"lab5/src/models/cnn.rs\", &[\"conv_block\", \"features\"])\n",
    );
    assert_eq!(
        calls,
        vec![vec!["lab5/src/models/cnn.rs", "conv_block", "features"]]
    );
}

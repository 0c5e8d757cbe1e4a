//! The crate's layout: the top-level modules of `lab5/src` follow the order of the lab, and
//! each one imports only modules before it, so data flows one way and a reader can walk the
//! crate from `config` to `pipeline` without meeting a later step.
//!
//! The test reads the sources (no compiler help), builds the module import graph from
//! `crate::<module>` paths (including `use crate::{a, b::c}` groups), from the names `lib.rs`
//! re-exports at the root (`crate::Config` is `config`), and from `super::` chains that climb
//! out of a top-level module; comments, strings and character literals are skipped, so a doc
//! link is not an import. It fails naming the file and line of every import that breaks a rule.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The top-level modules in the order of the lab: a module may import only modules listed
/// before it. A new module must be added here, where it belongs.
const ORDER: &[&str] = &[
    "util",
    "config",
    "runtime",
    "decode",
    "plot",
    "data",
    "models",
    "labels",
    "train",
    "robustness",
    "explain",
    "ablation",
    "theory",
    "embed",
    "compare",
    "views",
    "report",
    "pipeline",
];

/// What `data` must never import: the data layer knows no model and draws nothing.
const DATA_MUST_NOT_IMPORT: &[&str] = &["models", "plot"];

/// One import of a top-level module by another, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: String,
    to: String,
    /// `path/in/src.rs:line`.
    at: String,
}

#[test]
fn lab5_src_follows_the_lab_order() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lab5/src/lib.rs");
    let modules = declared_modules(&lib);
    let listed: BTreeSet<String> = ORDER.iter().map(|m| m.to_string()).collect();
    let unlisted: Vec<&String> = modules.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "lib.rs declares {unlisted:?}, missing from ORDER in tests/layout.rs: add each where it belongs in the lab's order"
    );
    let undeclared: Vec<&String> = listed.difference(&modules).collect();
    assert!(
        undeclared.is_empty(),
        "ORDER in tests/layout.rs lists {undeclared:?}, which lib.rs does not declare: remove or rename them"
    );
    let imports = crate_imports(&src, &modules, &root_reexports(&lib, &modules));
    assert!(
        imports.iter().any(|i| i.from == "train" && i.to == "data"),
        "the import graph misses `train -> data` (the trainer reads batches): the scanner is broken"
    );
    let problems = problems(ORDER, &imports);
    assert!(
        problems.is_empty(),
        "lab5/src breaks the layout ({} problem(s)):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The rules.

/// Every broken rule, one line each: `data` importing a forbidden layer, a cycle between
/// modules, a module importing one later in `order`.
fn problems(order: &[&str], imports: &[Import]) -> Vec<String> {
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut out = Vec::new();
    for i in imports {
        if i.from == "data" && DATA_MUST_NOT_IMPORT.contains(&i.to.as_str()) {
            out.push(format!(
                "`data` imports `{}` at {}: the data layer must know no model and draw nothing; move that code to a later module (e.g. `labels`)",
                i.to, i.at
            ));
        }
    }
    out.extend(cycles(imports));
    for i in imports {
        match (rank.get(i.from.as_str()), rank.get(i.to.as_str())) {
            (Some(f), Some(t)) if t > f => out.push(format!(
                "`{}` imports the later module `{}` at {}: move the shared code down to a module before `{}`, or the caller up",
                i.from, i.to, i.at, i.from
            )),
            (None, _) | (_, None) => out.push(format!(
                "import `{} -> {}` at {}: a module missing from ORDER",
                i.from, i.to, i.at
            )),
            _ => {}
        }
    }
    out
}

/// One line per group of modules that import each other (directly or around a loop),
/// showing the loop and where each of its imports is written.
fn cycles(imports: &[Import]) -> Vec<String> {
    let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for i in imports {
        edges
            .entry(i.from.as_str())
            .or_default()
            .entry(i.to.as_str())
            .or_insert(i.at.as_str());
    }
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in edges.keys() {
        if reported.contains(start) {
            continue;
        }
        if let Some(path) = path_back(&edges, start) {
            let steps: Vec<String> = path
                .windows(2)
                .map(|w| format!("{} -> {} at {}", w[0], w[1], edges[w[0]][w[1]]))
                .collect();
            out.push(format!(
                "cycle {}: modules must not import each other ({})",
                path.join(" -> "),
                steps.join("; ")
            ));
            reported.extend(path);
        }
    }
    out
}

/// The shortest import path from `start` back to itself, if any (breadth-first).
fn path_back<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    start: &'a str,
) -> Option<Vec<&'a str>> {
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(m) = queue.pop_front() {
        for &next in edges.get(m).map(|e| e.keys()).into_iter().flatten() {
            if next == start {
                let mut path = vec![start, m];
                let mut at = m;
                while at != start {
                    at = parent[at];
                    path.push(at);
                }
                path.reverse();
                return Some(path);
            }
            if !parent.contains_key(next) {
                parent.insert(next, m);
                queue.push_back(next);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// The import graph.

/// The top-level modules `lib.rs` declares (`mod x;` / `pub mod x;`).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    let toks = tokens(lib);
    toks.windows(3)
        .filter_map(|w| match w {
            [(Tok::Ident(m), _), (Tok::Ident(name), _), (Tok::Punct(';'), _)] if m == "mod" => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Names `lib.rs` re-exports at the root, with the module they come from (`None` for an
/// external crate such as `tch`): `pub use config::Config;` makes `crate::Config` an
/// import of `config`.
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> HashMap<String, Option<String>> {
    let toks = tokens(lib);
    let mut out = HashMap::new();
    let mut i = 0;
    while i + 2 < toks.len() {
        if toks[i].0 == Tok::Ident("pub".into()) && toks[i + 1].0 == Tok::Ident("use".into()) {
            let end = (i..toks.len())
                .find(|&j| toks[j].0 == Tok::Punct(';'))
                .unwrap_or(toks.len());
            let idents: Vec<&str> = toks[i + 2..end]
                .iter()
                .filter_map(|(t, _)| match t {
                    Tok::Ident(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            if let (Some(first), Some(last)) = (idents.first(), idents.last()) {
                let module = modules.contains(*first).then(|| first.to_string());
                out.insert(last.to_string(), module);
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// Every import between top-level modules in the files under `src` (lib.rs and the
/// binaries excluded: they sit above every module).
fn crate_imports(
    src: &Path,
    modules: &BTreeSet<String>,
    reexports: &HashMap<String, Option<String>>,
) -> Vec<Import> {
    let mut out = Vec::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        if rel == Path::new("lib.rs") || rel.starts_with("bin") {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let path = module_path(rel);
        for (target, line) in imported_roots(&path, &text) {
            let to = if modules.contains(&target) {
                target
            } else {
                match reexports.get(&target) {
                    Some(Some(m)) => m.clone(),
                    Some(None) => continue,
                    None => panic!(
                        "{}:{line}: `crate::{target}` is neither a module nor a re-export of lib.rs; teach tests/layout.rs about it",
                        rel.display()
                    ),
                }
            };
            if to != path[0] {
                out.push(Import {
                    from: path[0].clone(),
                    to,
                    at: format!("{}:{line}", rel.display()),
                });
            }
        }
    }
    out.sort();
    out
}

/// The `.rs` files under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The module path of a file relative to `src`: `data/loader.rs` is `[data, loader]`,
/// `data/mod.rs` is `[data]`, `util.rs` is `[util]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// The names right under the crate root that the code of a file in module `file_module`
/// reaches, with their lines: `crate::x`, each item of `crate::{x, y::z}`, and the name
/// after a `super::` chain that climbs to the root (inline `mod m { .. }` blocks count as
/// one level each).
fn imported_roots(file_module: &[String], text: &str) -> Vec<(String, usize)> {
    let toks = tokens(text);
    let mut out = Vec::new();
    let mut braces: Vec<Option<String>> = Vec::new();
    let is_sep = |i: usize| matches!(toks.get(i), Some((Tok::PathSep, _)));
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct('{') => {
                let before = |k: usize| i.checked_sub(k).map(|j| &toks[j].0);
                let inline_mod = match (before(2), before(1)) {
                    (Some(Tok::Ident(kw)), Some(Tok::Ident(name))) if kw == "mod" => {
                        Some(name.clone())
                    }
                    _ => None,
                };
                braces.push(inline_mod);
            }
            Tok::Punct('}') => {
                braces.pop();
            }
            Tok::Ident(word)
                if (word == "crate" || word == "super")
                    && is_sep(i + 1)
                    && !(i > 0 && is_sep(i - 1)) =>
            {
                let depth = file_module.len() + braces.iter().flatten().count();
                let mut j = i;
                let mut supers = 0;
                while matches!(&toks[j].0, Tok::Ident(w) if w == "super") && is_sep(j + 1) {
                    supers += 1;
                    j += 2;
                }
                let at_root = word == "crate" || supers == depth;
                if word == "crate" {
                    j = i + 2;
                }
                if at_root {
                    out.extend(names_at(&toks, j).into_iter().map(|n| (n, *line)));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first name of each path that starts at token `j`: one name, or each item of a
/// `{ .. }` group (`self` and `*` are skipped).
fn names_at(toks: &[(Tok, usize)], j: usize) -> Vec<String> {
    match toks.get(j).map(|t| &t.0) {
        Some(Tok::Ident(name)) => vec![name.clone()],
        Some(Tok::Punct('{')) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut item_start = true;
            for (t, _) in &toks[j..] {
                match t {
                    Tok::Punct('{') => {
                        depth += 1;
                        item_start = depth == 1;
                        continue;
                    }
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Punct(',') if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    Tok::Ident(name) if item_start && depth == 1 && name != "self" => {
                        names.push(name.clone())
                    }
                    _ => {}
                }
                item_start = false;
            }
            names
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// A small Rust lexer: identifiers, `::` and single punctuation, with their lines; comments,
// string, byte-string, raw-string and character literals, lifetimes and numbers dropped.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            i = skip_block_comment(&c, i, &mut line);
        } else if ch == '"' {
            i = skip_string(&c, i + 1, &mut line);
        } else if (ch == 'r' || (ch == 'b' && at(i + 1) == 'r'))
            && raw_string_hashes(&c, i).is_some()
        {
            i = skip_raw_string(&c, i, &mut line);
        } else if ch == 'b' && at(i + 1) == '"' {
            i = skip_string(&c, i + 2, &mut line);
        } else if ch == '\'' {
            i = skip_char_or_lifetime(&c, i);
        } else if ch == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            let end = ident_end(&c, i + 2);
            out.push((Tok::Ident(c[i + 2..end].iter().collect()), line));
            i = end;
        } else if is_ident_start(ch) || ch.is_ascii_digit() {
            let end = ident_end(&c, i);
            if !ch.is_ascii_digit() {
                out.push((Tok::Ident(c[i..end].iter().collect()), line));
            }
            i = end;
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

fn is_ident_start(ch: char) -> bool {
    ch.is_alphabetic() || ch == '_'
}

fn ident_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
        i += 1;
    }
    i
}

/// Skips a (nestable) `/* .. */` comment starting at `i`.
fn skip_block_comment(c: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            *line += usize::from(c[i] == '\n');
            i += 1;
        }
    }
    i
}

/// Skips the body of a `".."` literal whose first character is at `i`.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() && c[i] != '"' {
        *line += usize::from(c[i] == '\n');
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The number of `#` of a raw string (`r"`, `r#"`, `br##"` ..) starting at `i`, if it is one.
fn raw_string_hashes(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + if c[i] == 'b' { 2 } else { 1 };
    let start = j;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j - start)
}

fn skip_raw_string(c: &[char], i: usize, line: &mut usize) -> usize {
    let hashes = raw_string_hashes(c, i).unwrap();
    let mut j = i + if c[i] == 'b' { 2 } else { 1 } + hashes + 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return j + 1 + hashes;
        }
        *line += usize::from(c[j] == '\n');
        j += 1;
    }
    j
}

/// Skips `'x'`, `'\n'`, `'\u{..}'`, or just the quote of a lifetime or label (`'a`).
fn skip_char_or_lifetime(c: &[char], i: usize) -> usize {
    if c.get(i + 1) == Some(&'\\') {
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if c.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        i + 1
    }
}

// ---------------------------------------------------------------------------------------
// The checker on small made-up sources: it must see what it is meant to catch.

fn imports_of(files: &[(&str, &str)]) -> Vec<Import> {
    let modules: BTreeSet<String> = ORDER.iter().map(|m| m.to_string()).collect();
    let mut out = Vec::new();
    for (rel, text) in files {
        let path = module_path(Path::new(rel));
        for (to, line) in imported_roots(&path, text) {
            if to != path[0] && modules.contains(&to) {
                out.push(Import {
                    from: path[0].clone(),
                    to,
                    at: format!("{rel}:{line}"),
                });
            }
        }
    }
    out
}

#[test]
fn scanner_reads_groups_and_super_chains_and_skips_comments_and_literals() {
    let text = r####"
//! See [`crate::models`] and /* crate::plot */ nothing else.
use crate::{config::Config, data::{Class, Manifest}, self};
use super::features::Pass;
const A: &str = "crate::train";
const B: &str = r#"crate::embed "quoted" "#;
const C: char = '{';
fn f<'a>(x: &'a str) -> &'a str { let _ = crate::runtime::init; x }
pub(crate) fn g() {}
mod tests {
    use super::super::features;
    use super::super::super::compare::Comparison;
}
"####;
    let got: Vec<(String, usize)> = imported_roots(&["labels".into(), "audit".into()], text);
    let want = [("config", 3), ("data", 3), ("runtime", 8), ("compare", 12)];
    let want: Vec<(String, usize)> = want.iter().map(|(m, l)| (m.to_string(), *l)).collect();
    assert_eq!(got, want);
}

#[test]
fn data_importing_models_or_plot_is_reported() {
    let imports = imports_of(&[(
        "data/features.rs",
        "use crate::models::backbone;\nfn f() { crate::plot::image_grid(); }",
    )]);
    let problems = problems(ORDER, &imports);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("`data` imports `models` at data/features.rs:1")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("`data` imports `plot` at data/features.rs:2")),
        "{problems:?}"
    );
}

#[test]
fn modules_importing_each_other_are_reported_as_a_cycle() {
    let imports = imports_of(&[
        (
            "compare/mod.rs",
            "fn f() { let esc = crate::report::escape; }",
        ),
        ("report/sections.rs", "use crate::{compare, plot::Figure};"),
    ]);
    let problems = problems(ORDER, &imports);
    let cycles: Vec<&String> = problems.iter().filter(|p| p.starts_with("cycle")).collect();
    assert_eq!(cycles.len(), 1, "{problems:?}");
    assert!(
        cycles[0].starts_with("cycle compare -> report -> compare"),
        "{}",
        cycles[0]
    );
    assert!(cycles[0].contains("compare/mod.rs:1") && cycles[0].contains("report/sections.rs:1"));
}

#[test]
fn importing_a_later_module_is_reported_and_an_earlier_one_is_not() {
    let imports = imports_of(&[(
        "train/run.rs",
        "use crate::data::Manifest;\nuse crate::views::Model;",
    )]);
    let problems = problems(ORDER, &imports);
    assert_eq!(
        problems,
        ["`train` imports the later module `views` at train/run.rs:2: move the shared code down to a module before `train`, or the caller up"]
    );
}

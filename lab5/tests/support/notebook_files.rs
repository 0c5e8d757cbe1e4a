//! The numbered notebooks (`NN_name.ipynb`) of a folder, for the test binaries that read
//! notebooks (`notebooks.rs`, `code_lines.rs`); included with `#[path]`, so those binaries
//! do not compile the rest of `support`.

use std::path::{Path, PathBuf};

/// `dir`'s files named `NN_*.ipynb` (two digits, an underscore), sorted by name.
pub fn numbered_notebooks(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".ipynb")
                && name.len() > 3
                && name[..2].bytes().all(|b| b.is_ascii_digit())
                && name.as_bytes()[2] == b'_'
        })
        .collect();
    found.sort();
    found
}

//! The notebooks' first cell, `scripts/kernel_cache.py status`, run as the kernel runs it
//! (`EVCXR_TMPDIR` naming the kernel's build folder) on build folders made here with the
//! layout cargo gives evcxr's: `target/<host>/debug/deps/liblab5-HASH.rlib` and its dep-info
//! `lab5-HASH.d` listing the sources. The message must say "up to date" exactly when cargo
//! would not rebuild lab5 (no listed source, nor lab5's Cargo.toml, nor the kernel's cargo
//! config newer than the library), name what changed otherwise, and give the time the last
//! measured build of that kind took (`build-times.json`) or the default estimate.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fake `$LAB5_HOME` with one kernel build folder (slot0) and two lab5 sources.
struct Home {
    root: PathBuf,
}

impl Home {
    fn new(name: &str) -> Home {
        let root = std::env::temp_dir().join("lab5-kernel-cache").join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("evcxr-work/slot0")).unwrap();
        for name in ["lib.rs", "train.rs"] {
            std::fs::write(root.join("src").join(name), "// lab5 source\n").unwrap();
        }
        Home { root }
    }

    fn slot(&self) -> PathBuf {
        self.root.join("evcxr-work/slot0")
    }

    fn source(&self, name: &str) -> PathBuf {
        self.root.join("src").join(name)
    }

    /// Writes the compiled library and its dep-info, as cargo does after a build.
    fn compile(&self) -> PathBuf {
        let deps = self
            .slot()
            .join("target/x86_64-unknown-linux-gnu/debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        let lib = deps.join("liblab5-0123abcd.rlib");
        std::fs::write(&lib, b"!<arch>\n").unwrap();
        let (a, b) = (self.source("lib.rs"), self.source("train.rs"));
        let (a, b) = (a.display(), b.display());
        let info = format!("{}: {a} {b}\n\n{a}:\n{b}:\n", lib.display());
        std::fs::write(deps.join("lab5-0123abcd.d"), info).unwrap();
        lib
    }

    /// The status line the notebook's first cell prints.
    fn status(&self) -> String {
        let out = Command::new("python3")
            .arg(repo().join("scripts/kernel_cache.py"))
            .arg("status")
            .env("LAB5_HOME", &self.root)
            .env("EVCXR_TMPDIR", self.slot())
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Sets a file's modification time `secs` seconds from now (negative: in the past).
fn touch(path: &Path, secs: i64) {
    let now = SystemTime::now();
    let when = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    };
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn assert_has(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing in: {text}");
    }
}

#[test]
fn an_empty_build_folder_means_a_full_build() {
    let home = Home::new("empty");
    assert_has(
        &home.status(),
        &[
            "must be compiled first",
            "lab5 has not been compiled in this kernel's build folder yet",
            "compiles lab5 and its dependencies",
            "about 12 min on 2 cores",
            "it is working",
        ],
    );
}

#[test]
fn a_library_newer_than_its_sources_is_up_to_date() {
    let home = Home::new("current");
    let lib = home.compile();
    // Newer than every file of the clone (lab5/Cargo.toml included).
    touch(&lib, 3600);
    let status = home.status();
    assert_has(
        &status,
        &["lab5 for notebooks is up to date", "loads it in seconds"],
    );
    assert!(!status.contains("compiled first"), "{status}");
}

#[test]
fn a_changed_source_means_recompiling_lab5_only() {
    let home = Home::new("stale");
    let lib = home.compile();
    touch(&lib, 3600);
    touch(&home.source("train.rs"), 3700);
    let status = home.status();
    assert_has(
        &status,
        &[
            "must be compiled first",
            "train.rs changed since this kernel's copy of lab5 was built",
            "compiles lab5 before it loads it",
            "about 3 min on 2 cores",
        ],
    );
    assert!(
        !status.contains("lib.rs"),
        "only the changed file: {status}"
    );
}

#[test]
fn a_changed_kernel_cargo_config_means_a_full_build_with_the_measured_time() {
    let home = Home::new("config");
    let lib = home.compile();
    touch(&lib, 3600);
    let config = home.root.join("evcxr-work/.cargo/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[profile.dev.package.\"*\"]\nopt-level = 3\n").unwrap();
    touch(&config, 3700);
    std::fs::write(
        home.root.join("evcxr-work/build-times.json"),
        r#"{"full": {"seconds": 437, "cpus": 2, "measured": "2026-12-02 13:40"}}"#,
    )
    .unwrap();
    assert_has(
        &home.status(),
        &[
            "evcxr-work/.cargo/config.toml changed since this kernel's copy of lab5 was built",
            "compiles lab5 and its dependencies",
            "about 7 min (measured here 2026-12-02 13:40, 2 CPUs)",
        ],
    );
}

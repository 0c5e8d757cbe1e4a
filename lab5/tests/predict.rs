//! A tiny real training run on a subset of the pets photos (small images, two epochs),
//! then the run record, `lab5 predict` with good and bad files, and `lab5 evaluate`.
//!
//! The data folder links to the photos in `../shared/data/pets` (nothing is copied) and
//! gets its own manifest, so the test does not depend on `lab5 import`.

use lab5::data::{Class, Manifest, Origin, Record, SplitName};
use lab5::train::RunRecord;
use lab5::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pets");
const PER_CLASS: usize = 16;
/// Train, val, test images per class.
const SPLIT: [usize; 3] = [10, 3, 3];

struct Fixture {
    root: PathBuf,
    config: PathBuf,
    record: RunRecord,
}

fn photos(class: Class) -> Vec<PathBuf> {
    let dir = Path::new(PETS).join(class.name());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.truncate(PER_CLASS);
    files
}

fn split_of(i: usize) -> SplitName {
    match i {
        i if i < SPLIT[0] => SplitName::Train,
        i if i < SPLIT[0] + SPLIT[1] => SplitName::Val,
        _ => SplitName::Test,
    }
}

fn record(data: &Path, class: Class, i: usize, photo: &Path) -> Record {
    let id = photo.file_stem().unwrap().to_string_lossy().into_owned();
    let rel = PathBuf::from("raw")
        .join(class.name())
        .join(photo.file_name().unwrap());
    std::fs::create_dir_all(data.join(rel.parent().unwrap())).unwrap();
    std::os::unix::fs::symlink(photo, data.join(&rel)).unwrap();
    Record {
        id,
        label: class,
        breed_id: None,
        breed_name: None,
        source: Origin::Folder,
        url: photo.to_string_lossy().into_owned(),
        path: rel,
        width: 0,
        height: 0,
        bytes: std::fs::metadata(photo).unwrap().len(),
        sha256: String::new(),
        split: Some(split_of(i)),
        excluded: None,
        phash: Some(phash_of(photo)),
    }
}

/// The perceptual hash training checks the split with.
fn phash_of(photo: &Path) -> lab5::data::phash::PHash {
    let bytes = std::fs::read(photo).unwrap();
    lab5::data::images::inspect(&bytes, &lab5::config::Images::default())
        .unwrap()
        .phash
}

fn write_config(root: &Path) -> PathBuf {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    v["paths"]["data_dir"] = root.join("data").to_string_lossy().into();
    v["paths"]["runs_dir"] = root.join("runs").to_string_lossy().into();
    v["preprocess"]["image_size"] = 32.into();
    v["preprocess"]["resize_shorter"] = 36.into();
    v["cnn"]["epochs"] = 2.into();
    v["cnn"]["batch_size"] = 8.into();
    v["runtime"]["threads"] = 1.into();
    let path = root.join("config.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// Removes the folders of earlier runs of this test whose process is gone.
fn remove_stale_roots() {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("lab5-predict-")
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        remove_stale_roots();
        let root = std::env::temp_dir().join(format!("lab5-predict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("data");
        let mut m = Manifest::default();
        for class in Class::ALL {
            for (i, p) in photos(class).iter().enumerate() {
                m.records.push(record(&data, class, i, p));
            }
        }
        m.save(&Manifest::path_in(&data)).unwrap();
        let config = write_config(&root);
        let cfg = Config::load(&config).unwrap();
        let record = lab5::train::train_cnn(&cfg, true).unwrap();
        Fixture {
            root,
            config,
            record,
        }
    })
}

fn lab5(args: &[&str]) -> (bool, String, String) {
    let f = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_lab5"))
        .arg("--config")
        .arg(&f.config)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn training_records_a_complete_reloadable_run() {
    let f = fixture();
    let dir = f.root.join("runs").join("cnn");
    assert_eq!(f.record.dir, dir);
    for file in [
        "best.safetensors",
        "last.safetensors",
        "metrics.json",
        "run.json",
        "predictions.csv",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let m = &f.record.metrics;
    assert_eq!(m.precision, "fp32");
    assert_eq!(m.history.len(), 2);
    assert!((1..=2).contains(&m.best_epoch));
    assert_eq!((m.sizes.train, m.sizes.val, m.sizes.test), (20, 6, 6));
    assert_eq!(m.metrics.test.n, 6);
    assert!(
        (m.gap.train_minus_test - (m.metrics.train.accuracy - m.metrics.test.accuracy)).abs()
            < 1e-12
    );
    let predictions = f.record.predictions().unwrap();
    let count = |s: SplitName| predictions.iter().filter(|p| p.split == s).count();
    let counts = SplitName::ALL.map(count);
    assert_eq!(counts, [20, 6, 6], "rows of predictions.csv per split");
    assert!(predictions.iter().all(|p| (0.0..=1.0).contains(&p.p_dog)));
    let events = std::fs::read_dir(dir.join("tb")).unwrap().count();
    assert_eq!(events, 1);
    let again = RunRecord::load(&dir).unwrap();
    assert_eq!(again.metrics.history, m.history);
    let siblings: Vec<_> = std::fs::read_dir(f.root.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        siblings,
        vec![std::ffi::OsString::from("cnn")],
        "no temp folder left"
    );
}

const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;

#[test]
fn tensorboard_reads_one_value_per_epoch_for_every_tag() {
    let f = fixture();
    let py = lab5::config::lab5_home()
        .join("venv")
        .join("bin")
        .join("python");
    let out = Command::new(&py)
        .args(["-c", READER])
        .arg(f.record.tensorboard_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tags: BTreeMap<String, Vec<(i64, f64)>> = serde_json::from_slice(&out.stdout).unwrap();
    let expected = lab5::train::monitor::TAGS
        .iter()
        .chain(&lab5::train::board::FINAL_TAGS);
    assert_eq!(
        tags.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected.copied().collect()
    );
    let history = &f.record.metrics.history;
    let val_loss = &tags["loss/val"];
    assert_eq!(val_loss.len(), history.len());
    for ((step, v), s) in val_loss.iter().zip(history) {
        assert_eq!(*step, s.epoch as i64);
        assert!(
            (v - s.val_loss).abs() < 1e-5 * s.val_loss.abs().max(1.0),
            "{v} vs {}",
            s.val_loss
        );
    }
}

#[test]
fn an_unchanged_run_is_reused_not_retrained() {
    let f = fixture();
    let cfg = Config::load(&f.config).unwrap();
    let reused = lab5::train::train_cnn(&cfg, false).unwrap();
    assert_eq!(reused.metrics.history, f.record.metrics.history);
    assert_eq!(reused.metrics.durations, f.record.metrics.durations);
}

#[test]
fn bf16_mixed_precision_trains_and_is_recorded() {
    let f = fixture();
    let mut cfg = Config::load(&f.config).unwrap();
    cfg.cnn.precision = lab5::config::Precision::Bf16;
    cfg.paths.runs_dir = f.root.join("runs-bf16");
    let rec = lab5::train::train_cnn(&cfg, false).unwrap();
    let m = &rec.metrics;
    assert_eq!((m.precision.as_str(), m.history.len()), ("bf16", 2));
    assert!(m
        .history
        .iter()
        .all(|e| e.train_loss.is_finite() && e.val_loss.is_finite()));
    assert_ne!(
        m.history, f.record.metrics.history,
        "bf16 gave fp32's numbers"
    );
    let again = RunRecord::load(&rec.dir).unwrap();
    assert_eq!(again.metrics.precision, "bf16");
    assert_eq!(again.metrics.config.cnn.precision, cfg.cnn.precision);
}

fn bad_files(root: &Path) -> [PathBuf; 4] {
    let dir = root.join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let jpeg = std::fs::read(&photos(Class::Dog)[0]).unwrap();
    let files = [
        dir.join("missing.jpg"),
        dir.join("empty.jpg"),
        dir.join("truncated.jpg"),
        dir.join("notes.jpg"),
    ];
    std::fs::write(&files[1], b"").unwrap();
    std::fs::write(&files[2], &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(&files[3], b"this is a text file, not a photo\n").unwrap();
    files
}

#[test]
fn predict_names_each_bad_file_and_still_predicts_the_good_ones() {
    let f = fixture();
    let good = [
        photos(Class::Cat)[PER_CLASS - 1].clone(),
        photos(Class::Dog)[PER_CLASS - 1].clone(),
    ];
    let bad = bad_files(&f.root);
    let run = f.record.dir.to_string_lossy().into_owned();
    let mut args = vec!["predict".to_string(), "--run".into(), run];
    args.extend(
        good.iter()
            .chain(&bad)
            .map(|p| p.to_string_lossy().into_owned()),
    );
    let (ok, stdout, stderr) = lab5(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok, "bad files must give a non-zero exit status");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, file) in lines.iter().zip(&good) {
        assert!(line.starts_with(&*file.to_string_lossy()), "{line}");
        assert!(
            line.contains(": cat (p = ") || line.contains(": dog (p = "),
            "{line}"
        );
    }
    for file in &bad {
        let name = file.to_string_lossy();
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&*name))
            .unwrap_or_else(|| panic!("no error line for {name}:\n{stderr}"));
        assert!(line.contains("error:"), "{line}");
    }
    assert!(
        stderr.contains("4 of 6 file(s) could not be predicted"),
        "{stderr}"
    );
}

#[test]
fn predict_library_gives_one_result_per_file() {
    let f = fixture();
    let files = vec![photos(Class::Cat)[0].clone(), f.root.join("nowhere.jpg")];
    let out = lab5::train::predict(&f.record.dir, &files).unwrap();
    let p = out[0].as_ref().unwrap();
    assert!((0.5..=1.0).contains(&p.probability) && (0.0..=1.0).contains(&p.p_dog));
    let err = format!("{:#}", out[1].as_ref().unwrap_err());
    assert!(
        err.contains("nowhere.jpg") && err.contains("no such file"),
        "{err}"
    );
    assert!(lab5::train::predict(&f.root.join("no-run"), &files).is_err());
}

#[test]
fn evaluate_prints_and_saves_metrics_skipping_bad_files() {
    let f = fixture();
    let folder = f.root.join("holdout");
    for class in Class::ALL {
        std::fs::create_dir_all(folder.join(class.name())).unwrap();
        for p in &photos(class)[SPLIT[0]..] {
            std::os::unix::fs::symlink(p, folder.join(class.name()).join(p.file_name().unwrap()))
                .unwrap();
        }
    }
    std::fs::write(folder.join("cat").join("broken.jpg"), b"nope").unwrap();
    let run = f.record.dir.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = lab5(&[
        "evaluate",
        "--run",
        &run,
        "--data",
        &folder.to_string_lossy(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("(12 images, 1 skipped)") && stdout.contains("accuracy"),
        "{stdout}"
    );
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let saved = std::fs::read_dir(f.record.dir.join("evaluations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("holdout-")
        })
        .expect("the evaluation is saved as holdout-<hash>.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(json["metrics"]["n"], 12);
}

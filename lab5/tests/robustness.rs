//! The robustness check on a real (tiny) CNN run: 40 pets photos per class imported with
//! a large test split, 48 px images, two epochs. `robustness.json` holds every corruption
//! at three severities with the suite's parameters, its means agree with its cells, the
//! clean accuracy is the run's recorded test accuracy, two measurements give the same
//! numbers, the example grid shows the corrupted photos, and `lab5 robustness` prints
//! the table, writes the chart and reuses a current result only when asked.

mod support;

use lab5::robustness::{self, Corruption, Robustness, SEVERITIES};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::project::{photos, text, Project};

/// Photos per class linked into the project's image folder.
const PER_CLASS: usize = 40;
/// Side of the CNN's input.
const SIZE: i64 = 48;

struct Fixture {
    project: Project,
    run: PathBuf,
    first: Robustness,
}

/// Removes the project folders of earlier runs of this test whose process is gone (the
/// fixture lives in a static, which is never dropped).
fn remove_stale_projects() {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("lab5-robustness-")
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A project with a trained CNN run whose robustness was checked once.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        remove_stale_projects();
        let project = Project::new("robustness", &[]);
        for class in ["cat", "dog"] {
            let dir = project.root.join("incoming").join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for f in photos(class, 0, PER_CLASS) {
                std::os::unix::fs::symlink(&f, dir.join(f.file_name().unwrap())).unwrap();
            }
        }
        project.write_config(&[
            ("data.source", json!("folder")),
            ("data.folder", json!("incoming")),
            ("data.split", json!({"train": 0.5, "val": 0.1, "test": 0.4})),
            ("preprocess.image_size", json!(SIZE)),
            ("preprocess.resize_shorter", json!(56)),
            ("cnn.epochs", json!(2)),
            ("cnn.batch_size", json!(16)),
        ]);
        let out = project.run(&["import"], &[]);
        assert!(out.status.success(), "{:?}", text(&out));
        let cfg = project.config();
        let run = lab5::train::train_cnn(&cfg, true).unwrap().dir;
        let first = robustness::check(&cfg, &run).unwrap();
        Fixture {
            project,
            run,
            first,
        }
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_result_has_every_corruption_at_three_severities_with_the_suite_parameters() {
    let f = fixture();
    let json = read_json(&f.run.join(robustness::ROBUSTNESS_FILE));
    let saved: Robustness = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(saved, f.first);
    let n = json["n"].as_u64().unwrap() as usize;
    assert!(n >= 20, "test split of {n} photos");
    let cells = json["results"].as_array().unwrap();
    assert_eq!(cells.len(), Corruption::ALL.len() * SEVERITIES);
    for c in Corruption::ALL {
        for (s, p) in c.levels(SIZE).iter().enumerate() {
            let cell = f.first.cell(c, s + 1).unwrap_or_else(|| panic!("{c} {s}"));
            assert_eq!((cell.parameter, cell.n), (*p, n), "{c} severity {}", s + 1);
            assert!((0.0..=1.0).contains(&cell.accuracy));
        }
    }
    assert_eq!(json["identity"]["seed"], 42);
    assert_eq!(json["identity"]["suite"], robustness::SUITE);
    assert!(json["secs"]["total"].as_f64().unwrap() > 0.0);
}

#[test]
fn means_and_drops_agree_with_the_cells() {
    let r = &fixture().first;
    assert_eq!(r.per_corruption.len(), Corruption::ALL.len());
    for m in &r.per_corruption {
        let of_c: Vec<f64> = (1..=SEVERITIES)
            .map(|s| r.cell(m.corruption, s).unwrap().accuracy)
            .collect();
        let mean = of_c.iter().sum::<f64>() / SEVERITIES as f64;
        assert!((m.mean_accuracy - mean).abs() < 1e-12, "{}", m.corruption);
        assert!((m.drop_from_clean - (r.clean_accuracy - mean)).abs() < 1e-12);
    }
    let all = r.results.iter().map(|c| c.accuracy).sum::<f64>() / r.results.len() as f64;
    assert!((r.mean_corrupted_accuracy - all).abs() < 1e-12);
    assert!((r.drop_from_clean - (r.clean_accuracy - all)).abs() < 1e-12);
}

#[test]
fn the_clean_accuracy_is_the_runs_recorded_test_accuracy() {
    let f = fixture();
    let record = lab5::train::RunRecord::load(&f.run).unwrap();
    let recorded = record.metrics.metrics.test.accuracy;
    assert_eq!(f.first.n, record.metrics.sizes.test);
    assert!(
        (f.first.clean_accuracy - recorded).abs() < 1e-12,
        "clean {} vs recorded {recorded}",
        f.first.clean_accuracy
    );
    assert_eq!(f.first.recorded_test_accuracy, recorded);
}

#[test]
fn two_measurements_give_the_same_numbers() {
    let f = fixture();
    let again = robustness::measure(&f.project.config(), &f.run).unwrap();
    assert_eq!(again.identity, f.first.identity);
    assert_eq!(again.clean_accuracy, f.first.clean_accuracy);
    assert_eq!(again.results, f.first.results);
}

#[test]
fn the_chart_is_saved_as_svg_and_png() {
    let f = fixture();
    let stem = robustness::chart_stem(&f.run);
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    for word in ["gaussian noise", "severity 3", "clean"] {
        assert!(svg.contains(word), "{word} missing from the chart");
    }
    let png = image::open(stem.with_extension("png")).unwrap();
    assert!(png.width() >= 1000 && png.height() >= 400);
}

#[test]
fn the_example_grid_shows_one_test_photo_clean_and_at_every_severity() {
    let f = fixture();
    let fig = robustness::examples(&f.project.config(), &f.run, 0).unwrap();
    let photos = fig.svg().matches("data:image/jpeg;base64,").count();
    assert_eq!(photos, Corruption::ALL.len() * (SEVERITIES + 1));
    for word in ["gaussian_noise", "severity 3", "c = 0.38"] {
        assert!(fig.svg().contains(word), "{word} missing");
    }
    let n = f.first.n;
    assert!(robustness::examples(&f.project.config(), &f.run, n).is_err());
    fig.save(&f.project.root.join("examples")).unwrap();
}

#[test]
fn the_command_prints_the_table_and_reuses_a_current_result_only_when_asked() {
    let f = fixture();
    let run = f.run.to_string_lossy().into_owned();
    let kept = f
        .project
        .run(&["robustness", "--run", &run, "--reuse"], &[]);
    let (stdout, stderr) = text(&kept);
    assert!(kept.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("kept") && stdout.contains("robustness.json"),
        "{stdout}"
    );
    for c in Corruption::ALL {
        assert!(stdout.contains(c.name()), "{c} missing:\n{stdout}");
    }
    let first = format!("{:.1} %", 100.0 * f.first.mean_corrupted_accuracy);
    assert!(stdout.contains(&first), "{stdout}");
    assert!(robustness::current(&f.project.config(), &f.run).is_some());

    let missing = f.project.root.join("runs").join("nothing");
    let bad = f
        .project
        .run(&["robustness", "--run", &missing.to_string_lossy()], &[]);
    let (_, stderr) = text(&bad);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr.contains("run.json") && stderr.contains("lab5 train"),
        "{stderr}"
    );
}

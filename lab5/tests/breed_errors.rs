//! Which breeds fail, and does the label check matter, on real photos with real trained
//! runs: a small project imports the first 40 pets photos per class plus ten photos the
//! label check of the whole data set flags (no cat or dog for the ImageNet head: dholes,
//! wild dogs, dark cats), with their breeds from the pets `labels.csv` (every fourth
//! photo left without a breed), runs the label check, trains the CNN (48 px, 2 epochs) and
//! the transfer head, compares them and runs `lab5 ablate --label-check`.
//!
//! - the per-breed table of the real manifest: counts add up to the test split, a breed
//!   whose photos are all answered wrong shows 0 % with its Wilson interval, and leads
//!   the list of breeds called the other species;
//! - `lab5 compare` writes it into `comparison.json`, `.md` and a chart, consistent with
//!   each run's own test figures;
//! - `lab5 ablate --label-check` trains the head with and without the photos `audit.csv`
//!   flags, on the same test photos.

mod support;

use lab5::compare::{BreedErrors, Side};
use lab5::data::{Class, Manifest, SplitName};
use lab5::train::metrics::wilson_interval;
use lab5::train::record::Scored;
use lab5::train::{RunRecord, NO_BREED};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use support::project::{pets_dir, photos, remove_stale_roots, text, Project};

/// Photos per class taken in file-name order.
const PER_CLASS: usize = 40;
/// Photos the label check of the whole pets data set flags as neither cat nor dog.
const FLAGGED: [(&str, &str); 10] = [
    ("cat", "4bc0c23c99bb"),
    ("cat", "a7727aabad9e"),
    ("cat", "c0f7982d08ba"),
    ("dog", "23d9f34f2399"),
    ("dog", "33a8de3b91f2"),
    ("dog", "4b2fe8062610"),
    ("dog", "5868c89b4aff"),
    ("dog", "74e02b82da0d"),
    ("dog", "8b5efc911c7f"),
    ("dog", "d3619814e887"),
];

fn edits() -> Vec<(&'static str, Value)> {
    vec![
        ("preprocess.image_size", json!(48)),
        ("preprocess.resize_shorter", json!(56)),
        ("cnn.epochs", json!(2)),
        ("cnn.batch_size", json!(16)),
        ("transfer.epochs", json!(8)),
        ("transfer.batch_size", json!(16)),
        ("report.inference_images", json!(16)),
        ("report.worst_breeds", json!(3)),
        ("runtime.threads", json!(2)),
    ]
}

/// Links the chosen photos into `incoming/<class>/` and writes their lines of the pets
/// `labels.csv` there, but for every fourth photo of each class (left without a breed).
fn link_photos(p: &Project) -> std::path::PathBuf {
    let dir = p.root.join("incoming");
    let mut ids = HashSet::new();
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let mut files = photos(class, 0, PER_CLASS);
        let flagged = FLAGGED.iter().filter(|(c, _)| *c == class);
        files.extend(flagged.map(|(_, id)| pets_dir().join(class).join(format!("{id}.jpg"))));
        for (i, f) in files.iter().enumerate() {
            let link = dir.join(class).join(f.file_name().unwrap());
            if !link.exists() {
                std::os::unix::fs::symlink(f, link).unwrap();
            }
            if i % 4 != 0 {
                ids.insert(f.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let labels = std::fs::read_to_string(pets_dir().join("labels.csv")).unwrap();
    let mut lines = labels.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| ids.contains(l.split(',').next().unwrap())) {
        out.push_str(l);
        out.push('\n');
    }
    std::fs::write(dir.join("labels.csv"), out).unwrap();
    dir
}

/// The project with its data imported, checked, both models trained and compared, and
/// the label check's ablation run (once per test binary).
fn project() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(|| {
        remove_stale_roots("breeds");
        let p = Project::new("breeds", &edits());
        let dir = link_photos(&p);
        for args in [
            vec!["import", dir.to_str().unwrap()],
            vec!["audit"],
            vec!["train", "cnn"],
            vec!["train", "transfer"],
            vec!["compare"],
            vec!["ablate", "--label-check"],
        ] {
            let out = p.run(&args, &[]);
            assert!(out.status.success(), "lab5 {args:?}: {:?}", text(&out));
        }
        p
    })
}

fn test_rows(m: &Manifest) -> Vec<&lab5::data::Record> {
    m.split(SplitName::Test)
}

/// Answers for every test photo: right, except every photo of `wrong_breed`.
fn answers(m: &Manifest, wrong_breed: Option<&str>) -> Vec<Scored> {
    test_rows(m)
        .iter()
        .map(|r| {
            let wrong = r
                .breed_name
                .as_deref()
                .is_some_and(|b| Some(b) == wrong_breed);
            let dog = (r.label == Class::Dog) != wrong;
            Scored {
                id: r.id.clone(),
                split: SplitName::Test,
                label: r.label,
                p_dog: if dog { 0.9 } else { 0.1 },
            }
        })
        .collect()
}

#[test]
fn per_breed_counts_add_up_and_a_breed_answered_all_wrong_shows_zero() {
    let m = project().manifest();
    let test = test_rows(&m);
    let mut by_breed: HashMap<&str, usize> = HashMap::new();
    for r in &test {
        *by_breed
            .entry(r.breed_name.as_deref().unwrap_or(NO_BREED))
            .or_default() += 1;
    }
    // The breed with the most test photos is answered wrong on all of them by the "CNN".
    let (&worst, &n) = by_breed
        .iter()
        .filter(|(b, _)| **b != NO_BREED)
        .max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b)))
        .unwrap();
    assert!(n >= 2, "{by_breed:?}");
    let b = BreedErrors::of_test(&m, &answers(&m, Some(worst)), &answers(&m, None), 3);
    let total = |f: fn(&lab5::compare::BreedRow) -> usize| b.rows.iter().map(f).sum::<usize>();
    assert_eq!(total(|r| r.cnn.n), test.len());
    assert_eq!(total(|r| r.transfer.n), test.len());
    assert_eq!(total(|r| r.cnn.correct), test.len() - n);
    assert!(b.rows.iter().any(|r| r.breed == NO_BREED), "{:?}", b.rows);
    let row = &b.rows[0];
    assert_eq!(
        (row.breed.as_str(), row.cnn.n, row.cnn.correct),
        (worst, n, 0)
    );
    assert_eq!(
        (row.cnn.accuracy, row.transfer.accuracy),
        (Some(0.0), Some(1.0))
    );
    let hi = 100.0 * wilson_interval(0, n as u64).1;
    assert_eq!(row.cnn.shown(), format!("0.0 % [0.0, {hi:.1}]"));
    let worst_cnn = b.worst(Side::Cnn);
    assert_eq!(worst_cnn.len(), 1);
    assert_eq!(worst_cnn[0].breed, worst);
    assert!(b.worst(Side::Transfer).is_empty());
    let said = b.sentences().join("\n");
    assert!(
        said.contains(&format!("{worst} ({n} of {n} test photos)")),
        "{said}"
    );
    assert!(
        said.contains("The transfer model calls no test photo the other species"),
        "{said}"
    );
    let table = b.table().unwrap();
    assert_eq!(table.0.height(), b.rows.len());
    assert!(b.to_html().unwrap().contains("CNN accuracy [95 % CI]"));
    let svg = b.chart().unwrap();
    assert!(svg
        .svg()
        .contains(&worst.chars().take(10).collect::<String>()));
}

#[test]
fn lab5_compare_writes_the_per_breed_table_of_both_runs() {
    let p = project();
    let cfg = p.config();
    let c = lab5::compare::load(&cfg).unwrap();
    let b = c.breeds().unwrap();
    assert_eq!(b.shown, 3);
    let runs = p.root.join("runs");
    for (side, run) in [(Side::Cnn, "cnn"), (Side::Transfer, "transfer")] {
        let rec = RunRecord::load(&runs.join(run)).unwrap();
        let test = &rec.metrics.metrics.test;
        let of = |r: &lab5::compare::BreedRow| match side {
            Side::Cnn => r.cnn.clone(),
            Side::Transfer => r.transfer.clone(),
        };
        let n: usize = b.rows.iter().map(|r| of(r).n).sum();
        let right: usize = b.rows.iter().map(|r| of(r).correct).sum();
        assert_eq!((n, right as u64), (test.n, test.correct()), "{run}");
        assert!(b.worst(side).len() <= 3);
    }
    let dir = lab5::compare::dir(&cfg);
    let md = std::fs::read_to_string(dir.join(lab5::compare::MARKDOWN_FILE)).unwrap();
    assert!(
        md.contains("## Per breed (test split)") && md.contains("| breed | class |"),
        "{md}"
    );
    assert!(dir.join("figures/breeds.svg").is_file());
    let shown = lab5::views::breed_errors(&cfg).unwrap();
    assert_eq!(&shown, b);
}

/// Flagged photos of `audit.csv` per split (train, val, test) of the manifest.
fn flagged_by_split(p: &Project) -> (HashSet<String>, [usize; 3]) {
    let text = std::fs::read_to_string(p.data_dir().join("audit.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let head = rdr.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (id, verdict) = (col("id"), col("verdict"));
    let flagged: HashSet<String> = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| ["neither", "suspected-mislabel"].contains(&&r[verdict]))
        .map(|r| r[id].to_string())
        .collect();
    let m = p.manifest();
    let n = |s| {
        m.split(s)
            .iter()
            .filter(|r| flagged.contains(&r.id))
            .count()
    };
    let counts = [n(SplitName::Train), n(SplitName::Val), n(SplitName::Test)];
    (flagged, counts)
}

#[test]
fn the_head_trains_with_and_without_the_photos_the_label_check_flags() {
    let p = project();
    let (flagged, [train, val, test]) = flagged_by_split(p);
    assert!(train + val >= 1 && flagged.len() >= 5, "{flagged:?}");
    let cfg = p.config();
    let study = lab5::ablation::label_check::load(&cfg).unwrap();
    let f = study.flagged;
    assert_eq!((f.train, f.val, f.test), (train, val, test));
    assert_eq!(study.models.len(), 1, "the CNN only with --cnn");
    let t = &study.models[0];
    assert_eq!(t.model, "transfer");
    let m = p.manifest();
    let split = |s| m.split(s).len();
    assert_eq!(
        (t.all.train_photos, t.all.val_photos),
        (split(SplitName::Train), split(SplitName::Val))
    );
    assert_eq!(t.checked.train_photos, t.all.train_photos - train);
    assert_eq!(t.checked.val_photos, t.all.val_photos - val);
    for arm in [&t.all, &t.checked] {
        assert_eq!(arm.kept.n + arm.flagged.n, split(SplitName::Test));
        assert_eq!(arm.flagged.n, test);
        assert!(
            arm.run.join("metrics.json").is_file(),
            "{}",
            arm.run.display()
        );
        assert!(arm.kept.accuracy.unwrap() > 0.6, "{arm:?}");
    }
    assert!(t.only_all + t.only_checked <= t.all.kept.n);
    assert!(t.p_value > 0.0 && t.p_value <= 1.0);
    let md = std::fs::read_to_string(lab5::ablation::label_check::dir(&cfg).join("label_check.md"))
        .unwrap();
    assert!(
        md.contains(&format!(
            "flags {train} training, {val} validation and {test} test photos"
        )),
        "{md}"
    );
    assert!(md.contains("McNemar's exact test p = "), "{md}");
    assert!(study
        .to_html()
        .unwrap()
        .contains("test, unflagged [95 % CI]"));
    // Run again: both arms are current and reused, the figures are the same.
    let out = p.run(&["ablate", "--label-check"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("reusing the finished run").count(),
        2,
        "{stdout}"
    );
    assert_eq!(lab5::ablation::label_check::load(&cfg).unwrap(), study);
    // The notebook's view is the same study, reused.
    assert_eq!(lab5::views::label_check_ablation(&cfg).unwrap(), study);
    let chart = lab5::views::label_check_ablation_chart(&cfg).unwrap();
    assert!(chart.svg().contains("flagged photos left out"));
}

#[test]
fn ablate_says_the_cnn_arm_is_slow_and_needs_the_label_check_flag() {
    let p = Project::new("breeds-cli", &[]);
    let help = p.run(&["ablate", "--help"], &[]);
    let (h, _) = text(&help);
    assert!(
        help.status.success() && h.contains("--label-check") && h.contains("SLOW"),
        "{h}"
    );
    let out = p.run(&["ablate", "--cnn"], &[]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--label-check"), "{err}");
    let out = p.run(&["ablate", "--label-check"], &[]);
    let (_, err) = text(&out);
    assert!(
        !out.status.success() && err.contains("lab5 import"),
        "{err}"
    );
}

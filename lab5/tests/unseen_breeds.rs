//! The unseen-breeds check through the binary, on 60 pets photos per class (with their
//! breeds) and a CNN trained for one epoch on small images: `data.unseen_breeds` puts every
//! photo of the named breed into the test split, an unknown name is refused with the
//! breeds there are, training reports test accuracy on seen and unseen breeds in
//! `metrics.json`, in its printed result and in the notebook view, and a config that no
//! longer matches the split is refused until the data set is split again.

mod support;

use lab5::data::{holdout, Manifest, SplitName};
use lab5::train::RunRecord;
use lab5::views::{unseen_breeds, Model, Shown};
use serde_json::{json, Value};
use std::collections::HashSet;
use support::project::{pets_dir, photos, text, Project};

/// Photos per class linked into the project's image folder.
const PER_CLASS: usize = 60;
/// The cat breed held out (named in another case than the manifest's, on purpose).
const HELD: &str = "abyssinian";

/// A project whose `data.folder` (`incoming/`) links 60 photos per class, with the rows
/// of the pets `labels.csv` for them, and a small, fast config.
fn project() -> Project {
    let p = Project::new("unseen-breeds", &[]);
    let mut ids = HashSet::new();
    for class in ["cat", "dog"] {
        let dir = p.root.join("incoming").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for f in photos(class, 0, PER_CLASS) {
            ids.insert(f.file_stem().unwrap().to_string_lossy().into_owned());
            std::os::unix::fs::symlink(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    let labels = std::fs::read_to_string(pets_dir().join("labels.csv")).unwrap();
    let mut lines = labels.lines();
    let mut kept = vec![lines.next().unwrap()];
    kept.extend(lines.filter(|l| ids.contains(l.split(',').next().unwrap())));
    std::fs::write(p.root.join("incoming/labels.csv"), kept.join("\n")).unwrap();
    p
}

fn config(p: &Project, unseen: Value) {
    p.write_config(&[
        ("data.source", json!("folder")),
        ("data.folder", json!("incoming")),
        ("data.unseen_breeds", unseen),
        ("preprocess.image_size", json!(48)),
        ("preprocess.resize_shorter", json!(56)),
        ("cnn.epochs", json!(1)),
    ]);
}

/// Runs `lab5 ARGS`; returns (success, stdout, stderr).
fn lab5(p: &Project, args: &[&str]) -> (bool, String, String) {
    let out = p.run(args, &[]);
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

fn is_held(r: &lab5::data::Record) -> bool {
    r.breed_name.as_deref() == Some("Abyssinian")
}

#[test]
fn held_out_breed_is_only_in_test_and_scored_apart() {
    let p = project();
    config(&p, json!(["Sphynx"]));
    let (ok, _, err) = lab5(&p, &["import"]);
    assert!(
        !ok && err.contains("\"Sphynx\"") && err.contains("Abyssinian"),
        "{err}"
    );
    config(&p, json!([HELD]));
    let (ok, out, err) = lab5(&p, &["import"]);
    assert!(ok, "{out}\n{err}");
    let m = p.manifest();
    let held: Vec<_> = m.records.iter().filter(|r| is_held(r)).collect();
    assert!(
        held.len() >= 5,
        "the first {PER_CLASS} cats hold some Abyssinians"
    );
    assert!(held.iter().all(|r| r.split == Some(SplitName::Test)));
    for s in SplitName::ALL {
        assert!(
            m.split(s).iter().any(|r| r.label == lab5::data::Class::Cat),
            "cats in {s}"
        );
    }
    assert!(holdout::record_path(&p.data_dir()).is_file());

    let (ok, out, err) = lab5(&p, &["train", "cnn"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("on unseen breeds") && out.contains("unseen Abyssinian (cat)"),
        "{out}"
    );
    check_report(&p, &m, held.len());

    config(&p, json!([]));
    let (ok, _, err) = lab5(&p, &["train", "cnn"]);
    assert!(
        !ok && err.contains("lab5 import"),
        "a stale split is refused: {err}"
    );
    let (ok, out, err) = lab5(&p, &["import"]);
    assert!(ok, "{out}\n{err}");
    let again = p.manifest();
    assert!(again.split(SplitName::Train).iter().any(|r| is_held(r)));
    assert!(!holdout::record_path(&p.data_dir()).exists());
}

/// `metrics.json` and the notebook view of the trained run.
fn check_report(p: &Project, m: &Manifest, held: usize) {
    let cfg = p.config();
    let rec = RunRecord::load(&cfg.runs_dir().join("cnn")).unwrap();
    let b = rec
        .metrics
        .unseen_breeds
        .as_ref()
        .expect("unseen_breeds in metrics.json");
    assert_eq!(b.held_out, ["Abyssinian"]);
    assert_eq!(b.unseen.n, held);
    assert_eq!(b.seen.n + b.unseen.n, m.split(SplitName::Test).len());
    assert_eq!(b.breeds[0].score.n, held);
    assert!(b.unseen.accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)));
    match unseen_breeds(&cfg, Model::Cnn).unwrap() {
        Shown::Table(t) => assert_eq!(t.0.height(), 5, "seen, unseen, 2 classes, 1 breed"),
        other => panic!("expected a table, got {other:?}"),
    }
}

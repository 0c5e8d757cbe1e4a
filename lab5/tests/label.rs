//! Labelling a folder without labels (`lab5 label DIR`) on real photos copied from the pets
//! folder into a temporary project, with the real binary: zero-shot proposals, a round
//! answered in its file, bad answer files refused line by line with nothing changed, an
//! interrupted step (a write that fails, a process killed) that loses no answer, `lab5
//! import` reading the result, and the clear errors (empty folder, unreadable photo,
//! someone else's `labels.csv`). Then the notebook's functions on the demo folder and the
//! simulation on a small data set: with every label given the labels are all right and
//! the classifier fits every one; with none they are the label check's zero-shot rule.

mod support;

use lab5::data::{import::import_folder, Class};
use lab5::labels::answers::Species;
use lab5::labels::rounds::{read_labels, LabelRow, Provenance, State};
use lab5::labels::select::Strategy;
use lab5::labels::simulate::{self, Simulation};
use lab5::views;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use support::project::{files_under, photos, text, Project};

/// Photos of each class in the labelled folder.
const PER_CLASS: usize = 12;
/// Photos per round in these tests.
const K: &str = "6";

/// Copies `n` pets photos of `class` (after `skip`) into `dir`; returns id -> class.
fn copy_photos(dir: &Path, class: Class, skip: usize, n: usize) -> HashMap<String, Class> {
    std::fs::create_dir_all(dir).unwrap();
    let mut truth = HashMap::new();
    for f in photos(class.name(), skip, n) {
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        truth.insert(f.file_stem().unwrap().to_string_lossy().into_owned(), class);
    }
    truth
}

/// A project with a folder `photos/` of cats (flat) and dogs (in `photos/more/`), a file
/// that is no image under a photo's name, and a text file. Returns the folder and the truth.
fn folder(p: &Project) -> (PathBuf, HashMap<String, Class>) {
    let dir = p.root.join("photos");
    let mut truth = copy_photos(&dir, Class::Cat, 0, PER_CLASS);
    truth.extend(copy_photos(&dir.join("more"), Class::Dog, 0, PER_CLASS));
    std::fs::write(dir.join("broken.jpg"), b"this is not a JPEG").unwrap();
    std::fs::write(dir.join("notes.txt"), b"shot in June").unwrap();
    (dir, truth)
}

fn label(p: &Project, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["label", dir.to_str().unwrap(), "--k", K];
    args.extend_from_slice(extra);
    p.run(&args, &[])
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

fn failed(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    stderr
}

fn labels(dir: &Path) -> Vec<LabelRow> {
    read_labels(&dir.join("labels.csv")).unwrap()
}

fn state(dir: &Path) -> State {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap()
}

fn round_file(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("rounds/round-{n:03}.csv"))
}

/// The round file with the species filled in from `truth` (lines kept in order).
fn answer(dir: &Path, n: usize, truth: &HashMap<String, Class>) {
    let file = round_file(dir, n);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for l in lines {
        let (id, rest) = l.split_once(",,").unwrap();
        out.push_str(&format!("{id},{},{rest}\n", truth[id]));
    }
    std::fs::write(&file, out).unwrap();
}

#[test]
fn rounds_propose_learn_from_answers_and_import() {
    let p = Project::new("label-rounds", &[]);
    let (dir, truth) = folder(&p);
    let stdout = ok(&label(&p, &dir, &[]));
    assert!(stdout.contains("24 photos"), "{stdout}");
    assert!(
        stdout.contains("broken.jpg: not an image"),
        "unreadable listed: {stdout}"
    );
    assert!(
        stdout.contains("1 other file(s), not photos: notes.txt"),
        "{stdout}"
    );

    // Round 0: zero-shot proposals for every readable photo, ids from the file names.
    let rows = labels(&dir);
    assert_eq!(rows.len(), 2 * PER_CLASS);
    assert!(rows.iter().all(|r| r.provenance == Provenance::ZeroShot));
    assert!(
        rows.iter().all(|r| (0.5..=1.0).contains(&r.p)),
        "p of the proposed species"
    );
    let right = rows
        .iter()
        .filter(|r| r.species.class() == Some(truth[&r.id]))
        .count();
    assert!(right >= 20, "zero-shot got {right} of 24 right");
    let dog = rows.iter().find(|r| truth[&r.id] == Class::Dog).unwrap();
    assert!(dog.path.starts_with("more/"), "{}", dog.path);

    // Round 1: k photos, the most uncertain first, with a grid of them.
    let st = state(&dir);
    let pending = st.pending.clone().unwrap();
    assert_eq!((pending.round, pending.ids.len()), (1, 6));
    assert_eq!(pending.strategy, Strategy::Uncertainty);
    let cat_or_dog = |id: &str| {
        rows.iter()
            .find(|r| r.id == id && r.species != Species::Neither)
    };
    let asked_max = pending
        .ids
        .iter()
        .filter_map(|id| cat_or_dog(id))
        .map(|r| r.p)
        .fold(0.0, f64::max);
    let others_min = rows
        .iter()
        .filter(|r| !pending.ids.contains(&r.id) && r.species != Species::Neither)
        .map(|r| r.p)
        .fold(1.0, f64::min);
    assert!(
        asked_max <= others_min,
        "asked {asked_max} > not asked {others_min}"
    );
    let grid = image::open(dir.join("rounds/round-001.png")).unwrap();
    assert!(grid.width() > 500 && grid.height() > 200);

    // Waiting: running again without answers changes nothing.
    let stdout = ok(&label(&p, &dir, &[]));
    assert!(stdout.contains("is waiting for answers"), "{stdout}");
    assert_eq!(state(&dir), st);

    answer(&dir, 1, &truth);
    let stdout = ok(&label(&p, &dir, &[]));
    assert!(stdout.contains("round 1 answered: 6 answers"), "{stdout}");
    let rows = labels(&dir);
    let human: Vec<&LabelRow> = rows
        .iter()
        .filter(|r| r.provenance == Provenance::Human)
        .collect();
    assert_eq!(human.len(), 6);
    assert!(human
        .iter()
        .all(|r| r.species.class() == Some(truth[&r.id]) && r.p == 1.0));
    assert_eq!(
        rows.len() - human.len(),
        rows.iter()
            .filter(|r| r.provenance == Provenance::Model)
            .count()
    );
    let log = std::fs::read_to_string(dir.join("rounds.csv")).unwrap();
    assert!(log.starts_with("round,strategy,asked,answered,cat,dog,neither,agreed,changed,human_labels\n1,uncertainty,6,6,"), "{log}");
    let next = state(&dir).pending.unwrap();
    assert_eq!(next.round, 2);
    assert!(
        next.ids.iter().all(|id| !pending.ids.contains(id)),
        "asks about new photos"
    );

    // lab5 import reads labels.csv: the cat and dog rows, under their ids and species.
    let stdout = ok(&p.run(&["import", dir.to_str().unwrap()], &[]));
    assert!(stdout.contains("not checked by a person"), "{stdout}");
    let m = p.manifest();
    let wanted: HashMap<&str, Class> = rows
        .iter()
        .filter_map(|r| r.species.class().map(|c| (r.id.as_str(), c)))
        .collect();
    assert_eq!(m.records.len(), wanted.len());
    assert!(m.records.iter().all(|r| wanted[r.id.as_str()] == r.label));
}

#[test]
fn bad_answer_files_are_refused_line_by_line_and_change_nothing() {
    let p = Project::new("label-bad", &[]);
    let (dir, truth) = folder(&p);
    ok(&label(&p, &dir, &[]));
    let before = (
        std::fs::read(dir.join("labels.csv")).unwrap(),
        std::fs::read(dir.join("state.json")).unwrap(),
    );
    let ids = state(&dir).pending.unwrap().ids;
    let file = p.root.join("answers.csv");
    let mut text = String::from("id,species\n");
    text.push_str(&format!("{},cta\n", ids[0]));
    for id in &ids[1..ids.len() - 1] {
        text.push_str(&format!("{id},{}\n", truth[id]));
    }
    text.push_str(&format!("{},dog\n", ids[1]));
    std::fs::write(&file, &text).unwrap();
    let stderr = failed(&label(&p, &dir, &["--answers", file.to_str().unwrap()]));
    let last = ids.last().unwrap();
    for want in [
        format!("{}: 3 problem(s)", file.display()),
        format!(
            "line 2: species \"cta\" for \"{}\" is not cat, dog or neither",
            ids[0]
        ),
        format!(
            "line {}: id \"{}\" again (first on line 3)",
            ids.len() + 1,
            ids[1]
        ),
        format!("no line for 1 photo(s) of the round: {last}"),
    ] {
        assert!(stderr.contains(&want), "{want:?} missing in {stderr}");
    }
    let after = (
        std::fs::read(dir.join("labels.csv")).unwrap(),
        std::fs::read(dir.join("state.json")).unwrap(),
    );
    assert!(
        before == after,
        "a refused answer file changed the labelling"
    );
    std::fs::write(&file, "name,label\nx,cat\n").unwrap();
    let stderr = failed(&label(&p, &dir, &["--answers", file.to_str().unwrap()]));
    assert!(
        stderr.contains("must name the columns id and species"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_step_loses_no_answer() {
    let p = Project::new("label-interrupt", &[]);
    let (dir, truth) = folder(&p);
    ok(&label(&p, &dir, &[]));
    answer(&dir, 1, &truth);
    ok(&label(&p, &dir, &[]));
    answer(&dir, 2, &truth);
    let committed = std::fs::read(dir.join("state.json")).unwrap();

    // A write that fails half-way (rounds.csv cannot be replaced): the state stays.
    std::fs::remove_file(dir.join("rounds.csv")).unwrap();
    std::fs::create_dir(dir.join("rounds.csv")).unwrap();
    std::fs::write(dir.join("rounds.csv/keep"), b"x").unwrap();
    let stderr = failed(&label(&p, &dir, &[]));
    assert!(stderr.contains("rounds.csv"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("state.json")).unwrap(), committed);
    let temps: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    assert!(
        labels(&dir)
            .iter()
            .filter(|r| r.provenance == Provenance::Human)
            .count()
            >= 6
    );
    std::fs::remove_dir_all(dir.join("rounds.csv")).unwrap();

    // The process killed at different moments: every file is whole, state old or new.
    for delay_ms in [150, 400, 700, 1000, 1500] {
        let mut child = p
            .command(&["label", dir.to_str().unwrap(), "--k", K], &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let st = state(&dir);
        let human = st.human.len();
        assert!(
            human == 6 || human == 12,
            "after {delay_ms} ms: {human} human labels"
        );
        let rows = labels(&dir);
        assert_eq!(
            rows.len(),
            2 * PER_CLASS,
            "labels.csv whole after {delay_ms} ms"
        );
        if human == 12 {
            break; // the step finished before the kill
        }
    }
    ok(&label(&p, &dir, &[]));
    let st = state(&dir);
    assert_eq!(st.human.len(), 12, "both rounds' answers kept");
    assert_eq!(st.rounds.len(), 2);
    assert!(st
        .human
        .iter()
        .all(|(id, h)| h.species.class() == Some(truth[id])));
}

#[test]
fn empty_unreadable_and_foreign_folders_are_clear_errors() {
    let p = Project::new("label-errors", &[]);
    let empty = p.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let stderr = failed(&label(&p, &empty, &[]));
    assert!(
        stderr.contains("holds no photos (JPEG, PNG or WebP files, searched in every sub-folder)"),
        "{stderr}"
    );
    std::fs::write(empty.join("notes.txt"), "x").unwrap();
    let stderr = failed(&label(&p, &empty, &[]));
    assert!(
        stderr.contains("1 other file(s), e.g. notes.txt"),
        "{stderr}"
    );

    let broken = p.root.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("a.jpg"), b"not an image").unwrap();
    let stderr = failed(&label(&p, &broken, &[]));
    assert!(
        stderr.contains("none of the 1 photo file(s)") && stderr.contains("a.jpg: not an image"),
        "{stderr}"
    );

    let missing = p.root.join("nowhere");
    let stderr = failed(&label(&p, &missing, &[]));
    assert!(
        stderr.contains("cannot read the folder to label"),
        "{stderr}"
    );

    // A labels.csv that lab5 label did not write (the pets folder's) is never replaced.
    let foreign = p.root.join("foreign");
    copy_photos(&foreign, Class::Cat, 0, 2);
    std::fs::write(foreign.join("labels.csv"), "id,species,breed\n").unwrap();
    let stderr = failed(&label(&p, &foreign, &[]));
    assert!(
        stderr.contains("was not written by `lab5 label`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("labels.csv")).unwrap(),
        "id,species,breed\n"
    );
    let out = p.root.join("elsewhere");
    ok(&label(&p, &foreign, &["--out", out.to_str().unwrap()]));
    let rows = labels(&out);
    assert_eq!(rows.len(), 2);
    assert!(
        Path::new(&rows[0].path).is_absolute(),
        "outside the output folder: absolute"
    );
}

/// With `--out`, the next step printed repeats `--out`; and a folder an earlier labelling
/// wrote into (its rounds/ with the photo grid) is labelled without those files.
#[test]
fn another_output_folder_is_named_in_the_next_step_and_old_rounds_are_not_photos() {
    let p = Project::new("label-out", &[("label.k", json!(2))]);
    let dir = p.root.join("photos");
    copy_photos(&dir, Class::Dog, 0, 3);
    let first = ok(&label(&p, &dir, &[]));
    assert!(
        dir.join("rounds").read_dir().unwrap().count() >= 2,
        "{first}"
    );
    let out = p.root.join("elsewhere");
    let second = ok(&label(&p, &dir, &["--out", out.to_str().unwrap()]));
    let again = format!("lab5 label {} --out {}", dir.display(), out.display());
    assert!(second.contains(&again), "no `{again}` in\n{second}");
    let rows = labels(&out);
    assert_eq!(
        rows.len(),
        3,
        "the round grid was taken for a photo: {rows:?}"
    );
}

/// A small project whose data set is `n` pets photos per class (imported), with the
/// labelling settings `edits`.
fn small_data_set(name: &str, n: usize, edits: &[(&str, serde_json::Value)]) -> Project {
    let p = Project::new(name, edits);
    let incoming = p.root.join("incoming");
    copy_photos(&incoming.join("cat"), Class::Cat, 100, n);
    copy_photos(&incoming.join("dog"), Class::Dog, 100, n);
    import_folder(&p.config(), &incoming).unwrap();
    p
}

#[test]
fn notebook_functions_label_the_demo_folder() {
    let p = small_data_set(
        "label-views",
        10,
        &[("label.demo_photos", json!(12)), ("label.k", json!(5))],
    );
    let cfg = p.config();
    let dir = views::folder_to_label(&cfg).unwrap();
    assert_eq!(dir, p.data_dir().join(views::DEMO_DIR));
    let note = views::label_step(&cfg, "").unwrap().0;
    assert!(
        note.contains("12 photos") && note.contains("round 1: 5 photos"),
        "{note}"
    );
    let views::Shown::Figure(grid) = views::label_round_photos(&cfg).unwrap() else {
        panic!("a round waits: its photos are shown");
    };
    assert!(grid.svg().contains("Round 1"));
    let note = views::label_step(&cfg, "").unwrap().0;
    assert!(note.contains("is waiting for answers"), "{note}");
    let answers = views::demo_answers(&cfg).unwrap();
    assert_eq!(answers.lines().count(), 6, "{answers}");
    let typo = answers
        .replacen(",cat", ",kat", 1)
        .replacen(",dog", ",dgo", 1);
    let err = format!("{:#}", views::label_step(&cfg, &typo).unwrap_err());
    assert!(
        err.contains("typed-answers.csv") && err.contains("is not cat, dog or neither"),
        "{err}"
    );
    let note = views::label_step(&cfg, &answers).unwrap().0;
    assert!(note.contains("round 1 answered: 5 answers"), "{note}");
    let m = p.manifest();
    for row in labels(&dir)
        .iter()
        .filter(|r| r.provenance == Provenance::Human)
    {
        let truth = m.records.iter().find(|r| r.id == row.id).unwrap().label;
        assert_eq!(row.species.class(), Some(truth));
    }
}

fn point(sim: &Simulation, strategy: Strategy, prior: &str, labels: usize) -> Vec<simulate::Point> {
    sim.curves
        .iter()
        .filter(|c| c.strategy == strategy && c.prior.name() == prior)
        .map(|c| {
            c.points
                .iter()
                .find(|p| p.labels == labels)
                .unwrap()
                .clone()
        })
        .collect()
}

#[test]
fn simulation_is_right_with_every_label_and_zero_shot_without() {
    let settings = json!({
        "seeds": 2, "pool_fraction": 1.0, "budgets": [0, 10, 30, 40],
        "strategies": ["uncertainty", "random", "diverse"], "priors": ["zero-shot", "none"],
        "target_accuracy": 0.99
    });
    let p = small_data_set("label-sim", 20, &[("label.simulation", settings)]);
    let cfg = p.config();
    let device = lab5::runtime::init(&cfg).unwrap();
    let (sim, reused) = simulate::run(&cfg, false, device).unwrap();
    assert!(!reused);
    assert_eq!(
        (sim.photos, sim.pool, sim.curves.len()),
        (40, 40, 2 * 3 * 2)
    );
    let m = p.manifest();
    let audit = lab5::labels::audit::Audit::run(&cfg, &m, device).unwrap();
    let agreement = audit.summary().agreement_rate();
    assert!((sim.zero_shot_all - agreement).abs() < 1e-12);
    for s in [Strategy::Uncertainty, Strategy::Random, Strategy::Diverse] {
        for z in point(&sim, s, "zero-shot", 0) {
            assert!(
                (z.accuracy - agreement).abs() < 1e-12,
                "0 labels = the label check's zero-shot rule"
            );
        }
        for z in point(&sim, s, "none", 0) {
            assert!(
                (z.accuracy - 0.5).abs() < 1e-12,
                "no head, no label: p = 0.5, all called dog"
            );
        }
        for prior in ["zero-shot", "none"] {
            for all in point(&sim, s, prior, 40) {
                assert_eq!(all.accuracy, 1.0);
                assert_eq!(
                    all.fit_accuracy,
                    Some(1.0),
                    "the classifier fits every label it was given"
                );
                assert_eq!(all.rest_accuracy, None);
            }
            let at = |n| {
                sim.row(
                    (s, lab5::labels::classifier::Prior::parse(prior).unwrap()),
                    n,
                )
                .unwrap()
                .mean
            };
            assert!(at(30) >= at(0), "{s:?} {prior}: {} < {}", at(30), at(0));
        }
    }
    assert_eq!(sim.summary().len(), 3 * 2 * 4);
    assert!(sim
        .answers()
        .iter()
        .any(|a| a.contains("human labels to reach 99 %")));
    let dir = simulate::dir(&cfg);
    for f in [
        "simulation.json",
        "simulation.csv",
        "accuracy.svg",
        "accuracy.png",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let (again, reused) = simulate::run(&cfg, false, device).unwrap();
    assert!(reused);
    assert_eq!(again, sim);
    let table = views::label_simulation_table(&cfg).unwrap();
    assert_eq!(table.0.height(), 3 * 2 * 4);
    assert!(views::label_simulation_answers(&cfg)
        .unwrap()
        .0
        .contains("zero-shot rule"));
    let views::Shown::Figure(chart) = views::label_simulation_chart(&cfg, false).unwrap() else {
        panic!("a chart");
    };
    assert!(chart.svg().contains("uncertainty, start zero-shot"));
}

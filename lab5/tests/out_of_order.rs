//! Cells run out of order: the bad states a student reaches that way (no data set yet, no
//! finished run yet, the config changed since the run) each fail with one sentence that
//! names the notebook cell (and the command) to run. The notebook functions are called as
//! the cells call them, on a project of 20 pets photos per class and a CNN trained for one
//! epoch on small images.

mod support;

use lab5::views::{
    comparison, counts_table, embed, embedding_map, learning_curves, separation_table, train,
    ColourBy, Model, Projection,
};
use lab5::Config;
use serde_json::{json, Value};
use support::project::{photos, text, Project};

/// Photos per class linked into the project's image folder.
const PER_CLASS: usize = 20;

/// A project whose `data.folder` (`incoming/`) links 20 photos per class; small images, one
/// epoch, and `extra` config edits.
fn project(name: &str, extra: &[(&str, Value)]) -> Project {
    let p = Project::new(name, &[]);
    for class in ["cat", "dog"] {
        let dir = p.root.join("incoming").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for f in photos(class, 0, PER_CLASS) {
            std::os::unix::fs::symlink(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    configure(&p, extra);
    p
}

/// Writes the small config with `extra` edits.
fn configure(p: &Project, extra: &[(&str, Value)]) {
    let mut edits = vec![
        ("data.source", json!("folder")),
        ("data.folder", json!("incoming")),
        ("preprocess.image_size", json!(48)),
        ("preprocess.resize_shorter", json!(56)),
        ("cnn.epochs", json!(1)),
        ("runtime.threads", json!(2)),
    ];
    edits.extend(extra.iter().cloned());
    p.write_config(&edits);
}

/// Runs `lab5 ARGS` and asserts it succeeded.
fn lab5_ok(p: &Project, args: &[&str]) {
    let out = p.run(args, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "lab5 {args:?}:\n{stdout}\n{stderr}");
}

/// The message a cell's error shows (its first line, the one the error block heads
/// with), checked to be one sentence naming everything in `names`.
fn sentence<T: std::fmt::Debug>(result: anyhow::Result<T>, names: &[&str]) -> String {
    let e = result.expect_err("the cell should fail");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg:?}");
    for name in names {
        assert!(msg.contains(name), "{name:?} missing from: {msg}");
    }
    msg
}

/// The data cell and the command that fill the data folder.
const DATA_CELL: [&str; 4] = [
    "no data set yet",
    "notebook 01_data",
    "get_data(&cfg, false)",
    "`lab5 import`",
];

/// The training cell and the command of the CNN.
const CNN_CELL: [&str; 3] = [
    "notebook 03_cnn",
    "train(&cfg, Model::Cnn, false)",
    "`lab5 train cnn`",
];

#[test]
fn no_data_yet_names_the_data_cell() {
    let p = project("ooo-no-data", &[]);
    let cfg: Config = p.config();
    sentence(counts_table(&cfg), &DATA_CELL);
    sentence(train(&cfg, Model::Cnn, false), &DATA_CELL);
    assert!(
        !cfg.runs_dir().join("cnn").exists(),
        "nothing trained without data"
    );
}

#[test]
fn no_run_yet_names_the_training_cell() {
    let p = project("ooo-no-run", &[]);
    lab5_ok(&p, &["import"]);
    let cfg = p.config();
    let msg = sentence(learning_curves(&cfg, Model::Cnn), &CNN_CELL);
    assert!(msg.starts_with("no finished CNN from scratch run"), "{msg}");
    sentence(
        learning_curves(&cfg, Model::Transfer),
        &[
            "notebook 05_transfer",
            "train(&cfg, Model::Transfer, false)",
            "`lab5 train transfer`",
        ],
    );
    sentence(embed(&cfg, Model::Cnn, false), &CNN_CELL);
    sentence(tsne_by_class(&cfg), &CNN_CELL);
    sentence(comparison(&cfg, false), &CNN_CELL);
}

/// The embedding cell and the command of the CNN.
const CNN_EMBED_CELL: [&str; 4] = [
    "no embedding maps",
    "notebook 04_embeddings",
    "embed(&cfg, Model::Cnn, false)",
    "`lab5 embed --run runs/cnn`",
];

/// The cell of notebook 04 that shows the CNN's t-SNE map coloured by class.
fn tsne_by_class(cfg: &Config) -> anyhow::Result<lab5::views::Shown> {
    embedding_map(cfg, Model::Cnn, Projection::Tsne, ColourBy::Class)
}

#[test]
fn config_changed_since_the_run_names_the_key_and_the_training_cell() {
    let p = project("ooo-changed", &[]);
    lab5_ok(&p, &["import"]);
    lab5_ok(&p, &["train", "cnn"]);
    learning_curves(&p.config(), Model::Cnn).expect("the run matches the config");
    sentence(tsne_by_class(&p.config()), &CNN_EMBED_CELL);
    sentence(separation_table(&p.config(), Model::Cnn), &CNN_EMBED_CELL);

    configure(&p, &[("cnn.epochs", json!(2))]);
    let cfg = p.config();
    let msg = sentence(
        learning_curves(&cfg, Model::Cnn),
        &[&CNN_CELL[..], &["cnn.epochs: 1 \u{2192} 2", "again"]].concat(),
    );
    assert!(msg.contains("was trained with other settings"), "{msg}");

    train(&cfg, Model::Cnn, false).expect("the training cell trains again");
    let curves = learning_curves(&cfg, Model::Cnn);
    assert!(curves.is_ok(), "after training again: {:?}", curves.err());
}

//! Notebook `07_your_photos` and the augmentation preview of `03_cnn`: where the two
//! models look (Grad-CAM, [`crate::explain`]) on test photos, on their most confident
//! mistakes and on your own photos (`paths.my_photos`), and both models on another
//! labelled collection (`paths.other_collection`, `lab5 evaluate --data`): domain shift.

use super::data::manifest;
use super::runs::{run_record, Model};
use super::{Note, Shown};
use crate::config::Config;
use crate::data::{Class, SplitName};
use crate::explain::photo::rgb_of;
use crate::explain::{Explained, Explainer};
use crate::plot::{self, Figure, Photo, Table};
use crate::train::dataset::augmentation_preview;
use crate::train::infer::{evaluate_except, Evaluation};
use crate::train::{board, metrics::Metrics};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One training photo (the first of the train split) as evaluation sees it, and `n`
/// random augmentations of it made by the training loader with the config's `augment`
/// settings ([`augmentation_preview`]), `report.grid_cols` a row.
pub fn augmentations(cfg: &Config, n: usize) -> Result<Figure> {
    let m = manifest(cfg)?;
    let rec = m
        .split(SplitName::Train)
        .into_iter()
        .find(|r| !r.is_excluded())
        .context("the train split has no photo: run the data cell of notebook 01_data first")?;
    let path = cfg.data_dir().join(&rec.path);
    let (original, augmented) = augmentation_preview(cfg, &path, n, cfg.runtime.seed)?;
    let mut items = vec![(
        Photo::Image(rgb_of(&original)?),
        format!("{} ({}), as evaluated", rec.id, rec.label),
    )];
    for k in 0..n {
        let img = rgb_of(&augmented.get(k as i64))?;
        items.push((Photo::Image(img), format!("augmented #{}", k + 1)));
    }
    let title = format!("One training photo and {n} random augmentations (config.json: augment)");
    plot::image_grid(&title, &items, cfg.report.grid_cols)
}

/// Both finished runs, current for the config, ready to explain photos.
fn explainers(cfg: &Config) -> Result<[(Model, Explainer); 2]> {
    let open = |m: Model| -> Result<(Model, Explainer)> {
        Ok((m, Explainer::open(&run_record(cfg, m)?.dir, &cfg.explain)?))
    };
    Ok([open(Model::Cnn)?, open(Model::Transfer)?])
}

/// Short model name for captions.
fn short(model: Model) -> &'static str {
    match model {
        Model::Cnn => "CNN",
        Model::Transfer => "transfer",
    }
}

/// The caption of one model's map: its answer, the probability, the class mapped.
fn answer(model: Model, e: &Explained) -> String {
    let c = e.predicted();
    format!(
        "{}: {c}, {:.1} %\nGrad-CAM of \"{c}\"",
        short(model),
        100.0 * e.confidence()
    )
}

/// The three tiles of one photo: the photo with `caption`, then each model's map of the
/// class it answers; an error when a model cannot read the photo.
fn row(ex: &[(Model, Explainer); 2], path: &Path, caption: &str) -> Result<Vec<(Photo, String)>> {
    let shown: Vec<(Model, Explained)> = ex
        .iter()
        .map(|(m, e)| Ok((*m, e.explain(path)?)))
        .collect::<Result<_>>()?;
    let mut tiles = vec![(Photo::Image(shown[0].1.photo.clone()), caption.to_string())];
    for (m, e) in &shown {
        tiles.push((Photo::Image(e.overlay(e.predicted())?), answer(*m, e)));
    }
    Ok(tiles)
}

/// Photos one per row (photo, CNN map, transfer map) as one figure.
fn rows_figure(cfg: &Config, title: &str, photos: &[(PathBuf, String)]) -> Result<Figure> {
    let ex = explainers(cfg)?;
    let mut items = Vec::new();
    for (path, caption) in photos {
        items.extend(row(&ex, path, caption)?);
    }
    plot::image_grid_px(title, &items, 3, cfg.explain.overlay_size)
}

/// Grad-CAM of both models on the first `per_class` test photos of each class: the
/// photo, then the CNN's and the transfer model's maps of the class each answers.
pub fn gradcam_samples(cfg: &Config, per_class: usize) -> Result<Figure> {
    let m = manifest(cfg)?;
    let test: Vec<_> = m
        .split(SplitName::Test)
        .into_iter()
        .filter(|r| !r.is_excluded())
        .collect();
    let mut photos = Vec::new();
    for class in Class::ALL {
        let of_class = test.iter().filter(|r| r.label == class).take(per_class);
        photos.extend(of_class.map(|r| {
            (
                cfg.data_dir().join(&r.path),
                format!("{}\ntrue: {class}", r.id),
            )
        }));
    }
    if photos.is_empty() {
        bail!("the test split has no photo to explain (per_class = {per_class})");
    }
    rows_figure(
        cfg,
        "Where the models look: test photos (Grad-CAM)",
        &photos,
    )
}

/// Grad-CAM of both models on the `n` most confident test mistakes of `model`, or a note
/// when it made none.
pub fn gradcam_mistakes(cfg: &Config, model: Model, n: usize) -> Result<Shown> {
    let scored = run_record(cfg, model)?.predictions()?;
    let paths = board::photo_paths(cfg)?;
    let wrong = board::confident_mistakes(&scored, SplitName::Test);
    let photos: Vec<(PathBuf, String)> = wrong
        .iter()
        .filter_map(|(s, _, _)| {
            Some((
                paths.get(&s.id)?.clone(),
                format!("{}\ntrue: {}", s.id, s.label),
            ))
        })
        .take(n)
        .collect();
    if photos.is_empty() {
        let msg = format!("No mistakes: {} got every test photo right.", model.title());
        return Ok(Shown::Note(Note(msg)));
    }
    let title = format!(
        "Where the models look: the {} most confident test mistakes of the {}",
        photos.len(),
        short(model)
    );
    Ok(Shown::Figure(rows_figure(cfg, &title, &photos)?))
}

/// The files of `dir` (not hidden, not folders), by name; none when `dir` does not exist.
fn photo_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What to do when there is no photo of yours yet.
fn my_photos_howto(dir: &Path) -> String {
    format!(
        "No photos of yours yet. Put JPEG, PNG or WebP photos of cats or dogs into **{}** \
         (`paths.my_photos` in config.json; create the folder if it is missing) and run this \
         cell again: each photo is shown with both models' answers and where each looked.",
        dir.display()
    )
}

/// The tiles of each file that both models can read, and a Markdown line for each that
/// they cannot (also printed, with the reason).
fn rows_of_files(
    ex: &[(Model, Explainer); 2],
    files: &[PathBuf],
) -> (Vec<(Photo, String)>, Vec<String>) {
    let (mut items, mut failed) = (Vec::new(), Vec::new());
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match row(ex, f, &name) {
            Ok(tiles) => items.extend(tiles),
            Err(e) => {
                println!("{name}: cannot be shown: {e:#}");
                failed.push(format!("- {name}: {e:#}"));
            }
        }
    }
    (items, failed)
}

/// Your photos (`paths.my_photos`, the first `explain.max_photos` by name): each with both
/// models' answers, probabilities and Grad-CAM maps; a file that cannot be read is named
/// with the reason on a line of its own. A note saying what to do when the folder is
/// missing or empty.
pub fn my_photos(cfg: &Config) -> Result<Shown> {
    let dir = cfg.resolve(&cfg.paths.my_photos);
    let files = photo_files(&dir)?;
    if files.is_empty() {
        return Ok(Shown::Note(Note(my_photos_howto(&dir))));
    }
    let max = cfg.explain.max_photos;
    if files.len() > max {
        println!(
            "showing the first {max} of {} files (explain.max_photos)",
            files.len()
        );
    }
    let (items, failed) = rows_of_files(&explainers(cfg)?, &files[..files.len().min(max)]);
    if items.is_empty() {
        let msg = format!(
            "None of the files in {} could be read:\n\n{}",
            dir.display(),
            failed.join("\n")
        );
        return Ok(Shown::Note(Note(msg)));
    }
    let title = format!(
        "Your photos ({}): both models' answers and where they looked",
        dir.display()
    );
    Ok(Shown::Figure(plot::image_grid_px(
        &title,
        &items,
        3,
        cfg.explain.overlay_size,
    )?))
}

/// One model on another collection, beside its own test split.
#[derive(Debug, Clone)]
pub struct OnCollection {
    /// The model.
    pub model: Model,
    /// Its metrics on the collection (and the files skipped), saved in the run.
    pub collection: Evaluation,
    /// Its metrics on its own test split.
    pub test: Metrics,
}

/// Both models on another labelled collection ([`evaluate_collection`]).
#[derive(Debug, Clone)]
pub struct CollectionEvaluation {
    /// The collection (`DIR/cat`, `DIR/dog`).
    pub data: PathBuf,
    /// Files of the collection left out because the lab's data set holds the same bytes
    /// (a photo a model may have trained on says nothing about another collection).
    pub in_data_set: usize,
    /// The CNN, then the transfer model.
    pub models: Vec<OnCollection>,
}

/// Files of the ImageFolder `dir` whose bytes (SHA-256) are those of a photo of the lab's
/// data set.
fn known_files(cfg: &Config, dir: &Path) -> Result<HashSet<PathBuf>> {
    known_files_in(&manifest(cfg)?, dir)
}

/// [`known_files`] against the given manifest.
fn known_files_in(
    manifest: &crate::data::manifest::Manifest,
    dir: &Path,
) -> Result<HashSet<PathBuf>> {
    let known: HashSet<&str> = manifest.records.iter().map(|r| r.sha256.as_str()).collect();
    let mut out = HashSet::new();
    if known.is_empty() {
        return Ok(out); // nothing to find: no file of `dir` is read
    }
    let listing = crate::data::folder::list_files(dir)?;
    for c in listing.files {
        let Ok(bytes) = std::fs::read(&c.path) else {
            continue;
        };
        if known.contains(crate::data::images::sha256_hex(&bytes).as_str()) {
            out.insert(c.path);
        }
    }
    Ok(out)
}

/// One run evaluated on the labelled folder `dir` (`lab5 evaluate --run RUN --data DIR`),
/// leaving out the photos whose bytes are in the lab's data set, as [`evaluate_collection`]
/// does for both models: a training photo scored again says nothing about photos the
/// model has never seen. The data set is the one of `cfg` (its manifest; nothing is left
/// out before there is one), not necessarily the one `run_dir` was trained on when the
/// run comes from another config. Returns the evaluation (saved in the run) and how
/// many photos were left out.
///
/// # Errors
/// `dir` is no ImageFolder or holds no readable photo outside the data set, the run is
/// missing or unreadable, or the manifest cannot be read.
pub fn evaluate_run_on(cfg: &Config, run_dir: &Path, dir: &Path) -> Result<(Evaluation, usize)> {
    let manifest = crate::data::manifest::Manifest::load_or_empty(&cfg.data_dir())?;
    let except = known_files_in(&manifest, dir)?;
    let n = except.len();
    let e = evaluate_except(run_dir, dir, &except).with_context(|| match n {
        0 => format!("{} on {}", run_dir.display(), dir.display()),
        n => format!(
            "{} on {} ({n} photos left out: already in the lab's data set)",
            run_dir.display(),
            dir.display()
        ),
    })?;
    Ok((e, n))
}

/// Both finished runs (current for the config) evaluated on the labelled collection
/// `dir` (`DIR/cat`, `DIR/dog`, as `lab5 evaluate`), leaving out its photos whose bytes
/// are in the lab's data set; each result is also saved in its run
/// (`evaluations/<folder>-<hash>.json`).
///
/// # Errors
/// `dir` is no ImageFolder, holds no readable photo outside the data set, or a run is
/// missing or stale (the error says which cell or command trains it).
pub fn evaluate_collection(cfg: &Config, dir: &Path) -> Result<CollectionEvaluation> {
    if !dir.is_dir() {
        bail!("the collection {} is not a folder: give an ImageFolder with cat/ and dog/ inside (paths.other_collection or --data)", dir.display());
    }
    let except = known_files(cfg, dir)?;
    let mut models = Vec::new();
    for model in [Model::Cnn, Model::Transfer] {
        let rec = run_record(cfg, model)?;
        let collection = evaluate_except(&rec.dir, dir, &except).with_context(|| {
            format!(
                "{} on {} ({} photos left out: already in the lab's data set)",
                model.title(),
                dir.display(),
                except.len()
            )
        })?;
        let test = rec.metrics.metrics.test.clone();
        models.push(OnCollection {
            model,
            collection,
            test,
        });
    }
    Ok(CollectionEvaluation {
        data: dir.to_path_buf(),
        in_data_set: except.len(),
        models,
    })
}

/// `84.2 % [80.1, 87.6]`: an accuracy with its 95 % Wilson interval.
fn with_interval(m: &Metrics) -> String {
    let (lo, hi) = m.accuracy_interval();
    format!(
        "{:.1} % [{:.1}, {:.1}]",
        100.0 * m.accuracy,
        100.0 * lo,
        100.0 * hi
    )
}

/// Column names of [`CollectionEvaluation::table`].
const COLLECTION_COLUMNS: [&str; 7] = [
    "model",
    "test photos",
    "test accuracy [95 % CI]",
    "collection photos",
    "collection accuracy [95 % CI]",
    "change",
    "log loss test / collection",
];

impl OnCollection {
    /// The row of [`CollectionEvaluation::table`].
    fn row(&self) -> [String; 7] {
        let (t, c) = (&self.test, &self.collection.metrics);
        [
            self.model.title().to_string(),
            t.n.to_string(),
            with_interval(t),
            c.n.to_string(),
            with_interval(c),
            format!("{:+.1} points", 100.0 * (c.accuracy - t.accuracy)),
            format!("{:.3} / {:.3}", t.log_loss, c.log_loss),
        ]
    }
}

impl CollectionEvaluation {
    /// One row per model: photos and accuracy (95 % Wilson interval) on its own test
    /// split and on the collection, the change in points, the log losses.
    pub fn table(&self) -> Result<Table> {
        let rows: Vec<[String; 7]> = self.models.iter().map(OnCollection::row).collect();
        let columns: Vec<polars::prelude::Column> = COLLECTION_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values: Vec<String> = rows.iter().map(|r| r[i].clone()).collect();
                polars::prelude::Column::new((*name).into(), values)
            })
            .collect();
        Ok(Table(polars::prelude::DataFrame::new_infer_height(
            columns,
        )?))
    }

    /// The same table as Markdown (what `lab5 evaluate --data` prints).
    pub fn to_markdown(&self) -> String {
        let line = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
        let mut out = vec![
            line(COLLECTION_COLUMNS.iter().map(|c| c.to_string()).collect()),
            line(vec!["---".to_string(); COLLECTION_COLUMNS.len()]),
        ];
        out.extend(self.models.iter().map(|m| line(m.row().to_vec())));
        out.join("\n")
    }

    /// One sentence per model saying whether the collection's accuracy differs from the
    /// test accuracy by more than the two 95 % intervals allow (they do not overlap), and
    /// what was left out.
    pub fn verdict(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.in_data_set > 0 {
            lines.push(format!(
                "{} photo(s) of {} left out: the lab's data set holds the same bytes.",
                self.in_data_set,
                self.data.display()
            ));
        }
        for o in &self.models {
            let (t, c) = (&o.test, &o.collection.metrics);
            let ((tl, th), (cl, ch)) = (t.accuracy_interval(), c.accuracy_interval());
            let what = if ch < tl {
                "lower, beyond both 95 % intervals: a real drop, the domain shift"
            } else if cl > th {
                "higher, beyond both 95 % intervals: this collection is easier than the test split"
            } else {
                "within the overlap of the two 95 % intervals: no difference these photo counts can show"
            };
            lines.push(format!(
                "{}: {} on the collection vs {} on its test split, {what}.",
                o.model.title(),
                with_interval(c),
                with_interval(t)
            ));
        }
        lines
    }
}

/// What to do when `paths.other_collection` is not set.
const COLLECTION_HOWTO: &str = "No other collection is configured. Set `paths.other_collection` \
    in config.json to a labelled folder laid out like the data set (`DIR/cat/*.jpg`, \
    `DIR/dog/*.jpg`): photos from another source than the one the models trained on (your \
    own, another public data set, the APIs' photos when you trained on a folder). Then run \
    this cell again, or `lab5 evaluate --data DIR` on the command line.";

/// Both models on `paths.other_collection` ([`evaluate_collection`]): prints the verdict
/// lines and returns the table; a note saying how to set the folder when it is `null`.
pub fn other_collection(cfg: &Config) -> Result<Shown> {
    let Some(dir) = &cfg.paths.other_collection else {
        return Ok(Shown::Note(Note(COLLECTION_HOWTO.into())));
    };
    let e = evaluate_collection(cfg, &cfg.resolve(dir))?;
    for line in e.verdict() {
        println!("{line}");
    }
    Ok(Shown::Table(e.table()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::sha256_hex;
    use crate::data::manifest::Manifest;
    use crate::data::{Origin, Record};

    fn record(sha256: String) -> Record {
        Record {
            id: "a".into(),
            label: Class::Cat,
            breed_id: None,
            breed_name: None,
            source: Origin::Folder,
            url: String::new(),
            path: "raw/cat/a.jpg".into(),
            width: 1,
            height: 1,
            bytes: 1,
            sha256,
            split: Some(SplitName::Train),
            excluded: None,
            phash: None,
        }
    }

    #[test]
    fn photos_of_the_data_set_are_found_by_their_bytes_not_their_names() {
        let dir = std::env::temp_dir().join(format!("lab5-known-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
        }
        let files = [
            ("cat/a.jpg", &b"a training photo"[..]),
            ("dog/renamed.jpg", &b"a training photo"[..]), // same bytes, other name and class
            ("dog/a.jpg", &b"a new photo"[..]),            // the data set's name, new bytes
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let manifest = Manifest {
            records: vec![record(sha256_hex(b"a training photo"))],
        };
        let found = known_files_in(&manifest, &dir).unwrap();
        let expected: HashSet<PathBuf> =
            [dir.join("cat/a.jpg"), dir.join("dog/renamed.jpg")].into();
        assert_eq!(found, expected);
        let nothing = known_files_in(&Manifest::default(), &dir).unwrap();
        assert!(nothing.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

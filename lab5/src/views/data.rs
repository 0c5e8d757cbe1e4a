//! Notebook `01_data`: get the data set (collect from the APIs when both keys are set,
//! otherwise import the folder of the config), then look at it: counts per class and
//! split, image sizes, sample photos per class, breeds, near-copies and label conflicts.

use super::{Note, Shown};
use crate::config::{Config, Source};
use crate::data::collect::{collect_with, CollectOptions};
use crate::data::import::{import_folder_with, ImportOptions};
use crate::data::summary::{self, BreedCount, Stat, Summary};
use crate::data::{keys, phash, Class, Manifest};
use crate::plot::{bar_chart, image_grid, Photo, Table};
use anyhow::Result;
use polars::prelude::df;

/// Added to the data seed for the sample photos (see [`sample_grid`]).
const SAMPLE_SEED_OFFSET: u64 = 1;

/// Where [`get_data`] takes the images from, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataSource {
    /// The Cat API and The Dog API (both keys are set).
    Api,
    /// The ImageFolder of `data.folder`, with the reason it is used.
    Folder(String),
}

/// The source [`get_data`] would use now: the APIs when `data.source` is `api` and both
/// key variables are set (environment or `.env`), else the folder of `data.folder`.
pub(crate) fn data_source(cfg: &Config) -> Result<DataSource> {
    if cfg.data.source == Source::Folder {
        return Ok(DataSource::Folder("data.source is \"folder\"".into()));
    }
    let vars = [&cfg.api.cat.key_env, &cfg.api.dog.key_env];
    let mut missing = Vec::new();
    for var in vars {
        if keys::lookup(var, &cfg.base_dir)?.is_none() {
            missing.push(var.as_str());
        }
    }
    if missing.is_empty() {
        return Ok(DataSource::Api);
    }
    let why = format!(
        "{} not set in the environment or .env",
        missing.join(" and ")
    );
    Ok(DataSource::Folder(why))
}

/// The manifest of the data folder; fails with what to run when there is none yet.
pub(crate) fn manifest(cfg: &Config) -> Result<Manifest> {
    Manifest::load_required(
        &cfg.data_dir(),
        "run the data cell of notebook 01_data (get_data(&cfg, false)) or `lab5 collect` (APIs) / `lab5 import` (a folder) first",
    )
}

/// Fills the data folder: reuses an existing data set unless `force`, else collects from
/// the APIs or imports the folder (see [`data_source`]); prints what it did and the
/// summary. Both paths are resumable and never duplicate an image.
pub fn get_data(cfg: &Config, force: bool) -> Result<()> {
    let existing = Manifest::load_or_empty(&cfg.data_dir())?;
    if !existing.records.is_empty() && !force {
        println!(
            "reusing the data set in {} (force = true collects or imports again)\n",
            cfg.data_dir().display()
        );
        print!(
            "{}",
            summary::summarize(&existing, cfg.data.near_duplicate_distance)
        );
        return Ok(());
    }
    match data_source(cfg)? {
        DataSource::Api => print!("{}", collect_with(cfg, &CollectOptions::default())?),
        DataSource::Folder(why) => {
            let dir = cfg.resolve(&cfg.data.folder);
            println!("importing {} ({why})", dir.display());
            print!(
                "{}",
                import_folder_with(cfg, &dir, &ImportOptions { progress: false })?
            );
        }
    }
    print!(
        "\n{}",
        summary::summarize(&manifest(cfg)?, cfg.data.near_duplicate_distance)
    );
    Ok(())
}

/// The summary of the data set on disk.
pub(crate) fn data_summary(cfg: &Config) -> Result<Summary> {
    Ok(summary::summarize(
        &manifest(cfg)?,
        cfg.data.near_duplicate_distance,
    ))
}

/// Images per class and split (and excluded by the label check).
pub fn counts_table(cfg: &Config) -> Result<Table> {
    Ok(Table(data_summary(cfg)?.counts_frame()?))
}

/// Width, height and shorter side in pixels, and file size in KB, per class: min,
/// median, mean, max.
pub fn sizes_table(cfg: &Config) -> Result<Table> {
    let s = data_summary(cfg)?;
    let mut rows: Vec<(&str, &str, Stat, f64)> = Vec::new();
    for c in s.sizes.iter().filter(|c| c.images > 0) {
        let name = c.class.name();
        rows.push((name, "width (px)", c.width, 1.0));
        rows.push((name, "height (px)", c.height, 1.0));
        rows.push((name, "shorter side (px)", c.shorter_side, 1.0));
        rows.push((name, "file (KB)", c.bytes, 1e-3));
    }
    let col = |f: fn(&Stat) -> f64| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{:.0}", f(&r.2) * r.3))
            .collect()
    };
    Ok(Table(df!(
        "class" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "measure" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "min" => col(|x| x.min),
        "median" => col(|x| x.median),
        "mean" => col(|x| x.mean),
        "max" => col(|x| x.max),
    )?))
}

/// `n` photos of `class` drawn with the data seed (the same ones every time), captioned
/// with breed and split, in a grid of `cols` columns.
pub fn sample_grid(cfg: &Config, class: Class, n: usize, cols: usize) -> Result<Shown> {
    let m = manifest(cfg)?;
    // Not the data seed itself: the split orders photos by the same keyed hash, so that
    // seed would pick training photos only.
    let picked = summary::sample(&m, class, n, cfg.data.seed.wrapping_add(SAMPLE_SEED_OFFSET));
    if picked.is_empty() {
        let msg = format!("The data set has no {class} photos (all excluded, or none imported).");
        return Ok(Shown::Note(Note(msg)));
    }
    let data_dir = cfg.data_dir();
    let items: Vec<(Photo, String)> = picked
        .iter()
        .map(|r| {
            let breed = r.breed_name.as_deref().unwrap_or(summary::UNKNOWN_BREED);
            let split = r.split.map_or("-", |s| s.name());
            (
                Photo::File(data_dir.join(&r.path)),
                format!("{breed}\n{split}"),
            )
        })
        .collect();
    let title = format!("{} random {class} photos (breed, split)", items.len());
    Ok(Shown::Figure(image_grid(&title, &items, cols)?))
}

/// The `top` most frequent breeds of each class as a table (class, breed, images).
pub fn breeds_table(cfg: &Config, top: usize) -> Result<Table> {
    let s = data_summary(cfg)?;
    let mut keep = s.clone();
    keep.breeds = Class::ALL
        .iter()
        .flat_map(|&c| s.breeds.iter().filter(move |b| b.class == c).take(top))
        .cloned()
        .collect();
    Ok(Table(keep.breeds_frame()?))
}

/// Bar chart of the `top` most frequent known breeds of `class`.
pub fn breeds_chart(cfg: &Config, class: Class, top: usize) -> Result<Shown> {
    let s = data_summary(cfg)?;
    let of_class = |b: &&BreedCount| b.class == class;
    let known: Vec<&BreedCount> = s
        .breeds
        .iter()
        .filter(of_class)
        .filter(|b| b.breed != summary::UNKNOWN_BREED)
        .collect();
    if known.is_empty() {
        return Ok(Shown::Note(Note(format!("No {class} breeds recorded."))));
    }
    let names: Vec<String> = known.iter().take(top).map(|b| b.breed.clone()).collect();
    let counts = known.iter().take(top).map(|b| b.images as f64).collect();
    let title = format!(
        "{class}: the {} most frequent of {} breeds",
        names.len(),
        known.len()
    );
    let fig = bar_chart(&title, "images", &names, &[("images".into(), counts)])?;
    Ok(Shown::Figure(fig))
}

/// Near-copies (photos within `data.near_duplicate_distance` bits of perceptual hash:
/// the same picture resized or re-encoded) and label conflicts, as one table: groups,
/// photos in them, pairs, pairs across splits (0 after an import or collect: each group
/// is kept in one split), photos without a hash, and conflicts (kept out of training).
pub fn near_copies_table(cfg: &Config) -> Result<Table> {
    let s = data_summary(cfg)?;
    let n = &s.near_copies;
    let rows = [
        ("threshold (bits of 256)", n.max_distance as usize),
        ("near-copy groups", n.groups.len()),
        ("photos in a group", n.photos),
        ("near-copy pairs", n.pairs),
        ("pairs across splits", n.pairs_across_splits),
        ("photos without a hash", n.without_hash),
        ("label conflicts (kept out)", s.label_conflicts.len()),
    ];
    Ok(Table(df!(
        "measure" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.1 as u64).collect::<Vec<_>>(),
    )?))
}

/// The first `groups` near-copy groups side by side, one group after the other in a grid
/// of `cols` columns, each photo captioned with its group, label and split, so a person
/// can see that they are one picture (and spot a label conflict: one group, two labels).
pub fn near_copies_grid(cfg: &Config, groups: usize, cols: usize) -> Result<Shown> {
    let m = manifest(cfg)?;
    let found = phash::groups(&m, cfg.data.near_duplicate_distance);
    if found.is_empty() {
        let msg = "No near-copies: no two photos are within `data.near_duplicate_distance` bits.";
        return Ok(Shown::Note(Note(msg.into())));
    }
    let data_dir = cfg.data_dir();
    let items: Vec<(Photo, String)> = found
        .iter()
        .take(groups)
        .enumerate()
        .flat_map(|(k, g)| g.iter().map(move |&i| (k, i)))
        .map(|(k, i)| {
            let r = &m.records[i];
            let split = r.split.map_or("-", |s| s.name());
            let out = if r.is_excluded() { ", kept out" } else { "" };
            let caption = format!("group {}\n{} {split}{out}", k + 1, r.label);
            (Photo::File(data_dir.join(&r.path)), caption)
        })
        .collect();
    let shown = groups.min(found.len());
    let title = format!(
        "{shown} of {} near-copy groups (group, label, split)",
        found.len()
    );
    Ok(Shown::Figure(image_grid(&title, &items, cols)?))
}

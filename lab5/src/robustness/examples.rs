//! What the model sees: one test photo under every corruption and severity, corrupted
//! with the same per-image seed as in the measurement, as an image grid.

use super::measure::{to_rgb, Which};
use super::suite::{format_parameter, SuiteSettings, SEVERITIES};
use crate::config::Config;
use crate::data::cache;
use crate::plot::{image_grid, Figure, Photo};
use crate::train::run::load_manifest;
use crate::train::RunRecord;
use anyhow::{ensure, Result};
use image::RgbImage;
use std::path::Path;

/// Test photo `index` (in test-split order) of the run in `run_dir` at the run's input
/// size: one row per corruption, the clean photo then severities 1 to 3, each captioned
/// with its parameter.
pub fn examples(cfg: &Config, run_dir: &Path, index: usize) -> Result<Figure> {
    let record = RunRecord::load(run_dir)?;
    let m = &record.model;
    let manifest = load_manifest(cfg)?;
    let test = cache::load_or_build(cfg, &manifest, m.image_size, m.resize_shorter)?.test;
    ensure!(
        index < test.len(),
        "test photo {index} asked for, the test split has {}",
        test.len()
    );
    let photo = to_rgb(&test.images.narrow(0, index as i64, 1))?.remove(0);
    let settings = SuiteSettings::new(m.image_size, cfg.runtime.seed);
    let items = tiles(&photo, &settings, index)?;
    let class = crate::data::Class::from_index(test.label_vec()[index]);
    let title = format!("{class} {}, as the model sees it", test.ids[index]);
    image_grid(&title, &items, SEVERITIES + 1)
}

/// The clean photo and its corrupted versions, row by row, with captions.
fn tiles(photo: &RgbImage, settings: &SuiteSettings, index: usize) -> Result<Vec<(Photo, String)>> {
    let mut items = Vec::new();
    for (corruption, levels) in &settings.levels {
        items.push((Photo::Image(photo.clone()), format!("{corruption}\nclean")));
        for (i, &parameter) in levels.iter().enumerate() {
            let which = Which {
                corruption: *corruption,
                severity: i + 1,
                parameter,
                seed: settings.seed,
            };
            let img = which.apply(photo, index)?;
            let p = format_parameter(parameter);
            let caption = format!("severity {}\nc = {p}", i + 1);
            items.push((Photo::Image(img), caption));
        }
    }
    Ok(items)
}

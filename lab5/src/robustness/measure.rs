//! Running the suite on a run: its model loaded as `lab5 evaluate` does (recorded
//! config, best weights, its normalisation), its test split from the preprocessing cache
//! at its input size, every image corrupted (in parallel, each with its own seed so the
//! numbers do not depend on the order or the threads), and the full model scored on the
//! corrupted pixels.

use super::result::{self, Cell, Identity, Robustness, Timings};
use super::suite::{Corruption, SuiteSettings, IMAGENET_C_LEVELS, SUITE};
use crate::config::Config;
use crate::data::cache::{self, SplitTensors};
use crate::data::Manifest;
use crate::train::metrics;
use crate::train::run::load_manifest;
use crate::train::{LoadedRun, RunRecord};
use anyhow::{ensure, Context, Result};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Instant;
use tch::{Kind, Tensor};

/// What the result of a check of `record` with `cfg` on `manifest` depends on.
pub(crate) fn identity(cfg: &Config, record: &RunRecord, manifest: &Manifest) -> Result<Identity> {
    let weights = record.best_weights();
    let bytes = std::fs::read(&weights)
        .with_context(|| format!("cannot read the run's weights {}", weights.display()))?;
    let m = &record.model;
    Ok(Identity {
        suite: SUITE.to_string(),
        seed: cfg.runtime.seed,
        weights_sha256: hex::encode(Sha256::digest(&bytes)),
        data_key: cache::cache_key(manifest, m.image_size as u32, m.resize_shorter as u32),
    })
}

/// Measures the run in `run_dir` on its test split, clean and under every corruption
/// and severity of the suite (seed: `runtime.seed`), on `runtime.threads` threads.
/// Nothing is written (see [`super::check`]).
pub fn measure(cfg: &Config, run_dir: &Path) -> Result<Robustness> {
    let started = Instant::now();
    crate::runtime::init(cfg)?;
    let run = LoadedRun::open(run_dir)?;
    let manifest = load_manifest(cfg)?;
    let id = identity(cfg, &run.record, &manifest)?;
    warn_if_data_changed(&run.record, &id);
    let (size, shorter) = run.sizes();
    let test = cache::load_or_build(cfg, &manifest, size, shorter)?.test;
    ensure!(
        !test.is_empty(),
        "the test split of {} is empty: import or collect photos first",
        cfg.data_dir().display()
    );
    let mut scorer = Scorer::new(&run, &test);
    let clean = scorer.accuracy(&test.images)?;
    let settings = SuiteSettings::new(size, cfg.runtime.seed);
    let (cells, corrupt_secs) = corrupted_cells(cfg, &mut scorer, &test, &settings)?;
    let secs = Timings {
        total: started.elapsed().as_secs_f64(),
        corrupt: corrupt_secs,
        inference: scorer.secs,
    };
    Ok(assemble(run_dir, &run, id, clean, cells, secs))
}

fn warn_if_data_changed(record: &RunRecord, id: &Identity) {
    if record.metrics.data_key != id.data_key {
        eprintln!(
            "lab5: the data changed since {} was trained (other photos or splits): its clean accuracy may differ from the recorded test accuracy",
            record.dir.display()
        );
    }
}

/// The run's model and the test labels; adds up the seconds spent in the model.
struct Scorer<'a> {
    run: &'a LoadedRun,
    labels: Vec<i64>,
    secs: f64,
}

impl<'a> Scorer<'a> {
    fn new(run: &'a LoadedRun, test: &SplitTensors) -> Self {
        Scorer {
            run,
            labels: test.label_vec(),
            secs: 0.0,
        }
    }

    /// Accuracy of the model on uint8 images `(N, 3, S, S)` in test order, with the
    /// same decision rule as the run's recorded metrics.
    fn accuracy(&mut self, images: &Tensor) -> Result<f64> {
        let started = Instant::now();
        let p = self.run.p_dog(images)?;
        self.secs += started.elapsed().as_secs_f64();
        Ok(metrics::compute(&p, &self.labels).accuracy)
    }
}

/// Every corruption at every severity, scored; also returns the seconds spent
/// corrupting.
fn corrupted_cells(
    cfg: &Config,
    scorer: &mut Scorer,
    test: &SplitTensors,
    settings: &SuiteSettings,
) -> Result<(Vec<Cell>, f64)> {
    let images = to_rgb(&test.images)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.runtime.threads)
        .build()?;
    let total = settings.levels.len() * IMAGENET_C_LEVELS.len();
    let bar = crate::util::progress(total as u64, "robustness");
    let (mut cells, mut corrupt_secs) = (Vec::new(), 0.0);
    for (corruption, levels) in &settings.levels {
        for (i, &parameter) in levels.iter().enumerate() {
            let started = Instant::now();
            let which = Which {
                corruption: *corruption,
                severity: i + 1,
                parameter,
                seed: settings.seed,
            };
            let batch = pool.install(|| corrupt_all(&images, &which))?;
            corrupt_secs += started.elapsed().as_secs_f64();
            cells.push(which.cell(scorer.accuracy(&batch)?, images.len()));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok((cells, corrupt_secs))
}

/// One corruption at one severity.
pub(super) struct Which {
    pub corruption: Corruption,
    pub severity: usize,
    pub parameter: f64,
    pub seed: u64,
}

impl Which {
    /// The seed of image `index`: a hash of the suite, the seed, the corruption, the
    /// severity and the index, so every image gets its own stream whatever the order.
    fn image_seed(&self, index: usize) -> u64 {
        let text = format!(
            "{SUITE}/{}/{}/{}/{index}",
            self.seed, self.corruption, self.severity
        );
        let digest = Sha256::digest(text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    /// Test image `index` corrupted, with its own seed.
    pub(crate) fn apply(&self, img: &RgbImage, index: usize) -> Result<RgbImage> {
        let mut rng = StdRng::seed_from_u64(self.image_seed(index));
        self.corruption.apply(img, self.parameter, &mut rng)
    }

    fn cell(&self, accuracy: f64, n: usize) -> Cell {
        let level = IMAGENET_C_LEVELS[self.severity - 1];
        Cell {
            corruption: self.corruption,
            severity: self.severity,
            imagenet_c_level: self.corruption.in_imagenet_c().then_some(level),
            parameter: self.parameter,
            accuracy,
            n,
        }
    }
}

/// Every image corrupted, as one uint8 tensor `(N, 3, S, S)`.
fn corrupt_all(images: &[RgbImage], which: &Which) -> Result<Tensor> {
    let out: Vec<RgbImage> = images
        .par_iter()
        .enumerate()
        .map(|(i, img)| which.apply(img, i))
        .collect::<Result<_>>()
        .with_context(|| format!("corrupting with {}", which.corruption))?;
    to_tensor(&out)
}

/// uint8 images `(N, 3, S, S)` as RGB images.
pub(super) fn to_rgb(images: &Tensor) -> Result<Vec<RgbImage>> {
    let (n, s) = (images.size()[0] as usize, images.size()[2] as u32);
    let hwc = images
        .f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_view([-1])?;
    let raw = Vec::<u8>::try_from(&hwc)?;
    let per = raw.len() / n.max(1);
    raw.chunks_exact(per)
        .map(|c| RgbImage::from_raw(s, s, c.to_vec()).context("test image has a wrong size"))
        .collect()
}

/// RGB images of one size as a uint8 tensor `(N, 3, S, S)`.
fn to_tensor(images: &[RgbImage]) -> Result<Tensor> {
    let (w, h) = images.first().map_or((0, 0), |i| i.dimensions());
    let raw: Vec<u8> = images
        .iter()
        .flat_map(|i| i.as_raw().iter().copied())
        .collect();
    let t = Tensor::f_from_slice(&raw)?.f_view([images.len() as i64, h as i64, w as i64, 3])?;
    Ok(t.f_permute([0, 3, 1, 2])?
        .f_contiguous()?
        .f_to_kind(Kind::Uint8)?)
}

/// The result from its parts.
fn assemble(
    run_dir: &Path,
    run: &LoadedRun,
    identity: Identity,
    clean: f64,
    cells: Vec<Cell>,
    secs: Timings,
) -> Robustness {
    let mean = result::mean_accuracy(&cells);
    let r = &run.record;
    Robustness {
        run: run_dir.display().to_string(),
        model: r.model.kind.clone(),
        image_size: r.model.image_size,
        identity,
        n: cells.first().map_or(0, |c| c.n),
        clean_accuracy: clean,
        recorded_test_accuracy: r.metrics.metrics.test.accuracy,
        per_corruption: result::per_corruption(&cells, clean),
        results: cells,
        mean_corrupted_accuracy: mean,
        drop_from_clean: clean - mean,
        threads: tch::get_num_threads().max(1) as usize,
        device: format!("{:?}", run.device),
        secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_survive_the_round_trip_through_rgb() {
        let t = Tensor::arange(2 * 3 * 4 * 4, (Kind::Uint8, tch::Device::Cpu)).view([2, 3, 4, 4]);
        let rgb = to_rgb(&t).unwrap();
        assert_eq!(rgb.len(), 2);
        // pixel (x 1, y 2) of image 1: channels at offsets 16*c + 4*2 + 1 of its planes.
        let base = 48;
        assert_eq!(rgb[1].get_pixel(1, 2).0, [base + 9, base + 25, base + 41]);
        assert!(to_tensor(&rgb).unwrap().equal(&t));
    }

    #[test]
    fn image_seeds_differ_by_image_and_severity_and_repeat() {
        let w = |severity, seed| Which {
            corruption: Corruption::GaussianNoise,
            severity,
            parameter: 0.1,
            seed,
        };
        assert_eq!(w(1, 42).image_seed(3), w(1, 42).image_seed(3));
        assert_ne!(w(1, 42).image_seed(3), w(1, 42).image_seed(4));
        assert_ne!(w(1, 42).image_seed(3), w(2, 42).image_seed(3));
        assert_ne!(w(1, 42).image_seed(3), w(1, 7).image_seed(3));
    }
}

//! Using a trained run: rebuild its model from `run.json` and `best.safetensors`, evaluate
//! it on any ImageFolder directory, predict cat/dog for image files, score image tensors.

use super::checkpoint;
use super::metrics::{self, Metrics};
use super::record::{write_json, RunRecord, EVALUATIONS_DIR};
use crate::data::cache;
use crate::data::loader::{self, Normalize};
use crate::data::Class;
use crate::models::{self, Net};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Images per forward pass when scoring files and folders.
pub(crate) const INFER_BATCH: i64 = 64;

/// A run's model with its best weights loaded, ready to score images.
pub(crate) struct LoadedRun {
    /// The run's record.
    pub record: RunRecord,
    /// The network (best weights).
    pub net: Box<dyn Net>,
    /// Where it runs.
    pub device: Device,
}

impl LoadedRun {
    /// Loads the run in `dir` on the device its config asks for.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let record = RunRecord::load(dir)?;
        let device = crate::runtime::parse_device(&record.model.config.runtime.device)?;
        let mut net = models::build(&record.model, device)?;
        checkpoint::load(net.var_store_mut(), &record.best_weights())?;
        Ok(LoadedRun {
            record,
            net,
            device,
        })
    }

    fn norm(&self) -> Normalize {
        let n = self.record.model.normalize;
        Normalize {
            mean: n.mean,
            std: n.std,
        }
    }

    /// uint8 images `(N, 3, S, S)` normalised as the run was trained, on its device.
    pub(crate) fn normalized(&self, images_u8: &Tensor) -> Tensor {
        loader::normalize(images_u8, &self.norm(), self.device)
    }

    /// Probability of `dog` for uint8 images `(N, 3, S, S)` at the run's input size.
    pub(crate) fn p_dog(&self, images_u8: &Tensor) -> Result<Vec<f64>> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::new();
        for chunk in images_u8.split(INFER_BATCH, 0) {
            let x = loader::normalize(&chunk, &self.norm(), self.device);
            let p = self
                .net
                .image_logits(&x)
                .softmax(-1, Kind::Float)
                .select(1, 1);
            out.extend(Vec::<f64>::try_from(
                p.to_kind(Kind::Double).to_device(Device::Cpu),
            )?);
        }
        Ok(out)
    }

    /// Penultimate-layer embeddings `(N, D)` (CPU, float) of uint8 images `(N, 3, S, S)`.
    pub(crate) fn embeddings(&self, images_u8: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let parts: Vec<Tensor> = images_u8
            .split(INFER_BATCH, 0)
            .iter()
            .map(|c| {
                self.net
                    .image_embed(&loader::normalize(c, &self.norm(), self.device))
                    .to_device(Device::Cpu)
            })
            .collect();
        Ok(Tensor::f_cat(&parts, 0)?)
    }

    /// Input size and resize setting the model expects.
    pub(crate) fn sizes(&self) -> (i64, i64) {
        (
            self.record.model.image_size,
            self.record.model.resize_shorter,
        )
    }
}

/// The result of `lab5 evaluate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// The run evaluated.
    pub run: PathBuf,
    /// The ImageFolder directory.
    pub data: PathBuf,
    /// Metrics on the images that could be read.
    pub metrics: Metrics,
    /// Files that could not be read, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// What the ImageFolder listing did not take: folders that are no class or sit inside
    /// one (`name/`), and hidden files (`cat/.DS_Store`).
    #[serde(default)]
    pub left_out: Vec<String>,
    /// Where this evaluation was saved.
    pub saved_to: PathBuf,
}

/// Hex digits of the folder's path hash in an evaluation's file name.
const FOLDER_HASH_HEX: usize = 10;

/// File name for an evaluation of `data_dir` inside the run: its folder name, made safe,
/// and a hash of its absolute path, so two folders of the same name (`a/test`, `b/test`)
/// keep two results, while the same folder however spelled (`test`, `./test/`) keeps one.
fn evaluation_file(run_dir: &Path, data_dir: &Path) -> PathBuf {
    let full = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = name
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let safe = if safe.is_empty() { "data".into() } else { safe };
    let hash = crate::data::images::sha256_hex(full.to_string_lossy().as_bytes());
    let file = format!("{safe}-{}.json", &hash[..FOLDER_HASH_HEX]);
    run_dir.join(EVALUATIONS_DIR).join(file)
}

/// Evaluates the run in `run_dir` on an ImageFolder directory (`DIR/cat`, `DIR/dog`);
/// unreadable images are skipped and listed. The result is saved in
/// `runs/<run>/evaluations/<folder>.json`.
pub fn evaluate(run_dir: &Path, data_dir: &Path) -> Result<Evaluation> {
    evaluate_except(run_dir, data_dir, &HashSet::new())
}

/// [`evaluate`] leaving out the files in `except` (paths as listed: `DIR/<class>/<file>`).
pub(crate) fn evaluate_except(
    run_dir: &Path,
    data_dir: &Path,
    except: &HashSet<PathBuf>,
) -> Result<Evaluation> {
    let run = LoadedRun::open(run_dir)?;
    let policy = &run.record.model.config.images;
    let cache::FolderTensors {
        split,
        failed: skipped,
        left_out,
    } = cache::preprocess_folder_except(data_dir, run.sizes(), policy, except)?;
    if split.is_empty() {
        anyhow::bail!(
            "no readable image in {} ({} skipped)",
            data_dir.display(),
            skipped.len()
        );
    }
    let p = run.p_dog(&split.images)?;
    let saved_to = evaluation_file(run_dir, data_dir);
    let eval = Evaluation {
        run: run_dir.to_path_buf(),
        data: data_dir.to_path_buf(),
        metrics: metrics::compute(&p, &split.label_vec()),
        skipped,
        left_out,
        saved_to: saved_to.clone(),
    };
    write_json(&saved_to, &eval)?;
    Ok(eval)
}

/// A prediction for one image file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The file.
    pub path: PathBuf,
    /// Predicted class.
    pub label: Class,
    /// Probability of the predicted class.
    pub probability: f64,
    /// Probability of `dog`.
    pub p_dog: f64,
}

impl Prediction {
    fn new(path: &Path, p_dog: f64) -> Self {
        let dog = p_dog > metrics::THRESHOLD;
        let (label, probability) = if dog {
            (Class::Dog, p_dog)
        } else {
            (Class::Cat, 1.0 - p_dog)
        };
        Prediction {
            path: path.to_path_buf(),
            label,
            probability,
            p_dog,
        }
    }
}

/// Predicts each file with the run in `run_dir`. The outer error is about the run; each
/// file gets its own result, so one bad file does not stop the others.
pub fn predict(run_dir: &Path, files: &[PathBuf]) -> Result<Vec<Result<Prediction>>> {
    let run = LoadedRun::open(run_dir)?;
    let (size, shorter) = run.sizes();
    let decoded: Vec<Result<Tensor>> = files
        .iter()
        .map(|f| cache::preprocess_file_with(f, size, shorter, &run.record.model.config.images))
        .collect();
    let good: Vec<Tensor> = decoded
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|t| t.shallow_clone()))
        .collect();
    let mut p = if good.is_empty() {
        Vec::new()
    } else {
        run.p_dog(&Tensor::f_stack(&good, 0)?)?
    }
    .into_iter();
    let out = files
        .iter()
        .zip(decoded)
        .map(|(f, d)| d.map(|_| Prediction::new(f, p.next().unwrap_or(f64::NAN))));
    Ok(out.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_folders_of_one_name_keep_two_results_and_one_folder_keeps_one() {
        let root = std::env::temp_dir().join(format!("lab5-evalname-{}", std::process::id()));
        let (a, b) = (root.join("a").join("test"), root.join("b").join("test"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let run = Path::new("runs/cnn");
        let (fa, fb) = (evaluation_file(run, &a), evaluation_file(run, &b));
        assert_ne!(fa, fb);
        let name = fa.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("test-") && name.ends_with(".json"),
            "{name}"
        );
        let spelled = root.join("a").join(".").join("test").join("");
        assert_eq!(evaluation_file(run, &spelled), fa);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

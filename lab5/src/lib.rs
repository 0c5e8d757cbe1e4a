//! lab5: the "cats vs dogs" deep-learning lab as a library.
//!
//! The notebooks in `notebooks/` and the `lab5` command line are thin layers over this
//! crate. Data flows one way: collect/import -> manifest + splits -> tensor cache ->
//! loader -> model -> trainer -> `runs/<run>/` -> embeddings, charts, comparison.
//!
//! Items are `pub(crate)` unless the notebooks, the CLI, the examples (`bench`) or the
//! tests use them, so many links below lead to crate-private items: read these docs with
//! `cargo doc --document-private-items` to follow every one.
//!
//! # Map: one row per step of the lab
//!
//! | step | notebook | module | entry function | writes |
//! |---|---|---|---|---|
//! | 1 collect / import | `01_data` | [`data`] | [`data::collect::collect_with`], [`data::import::import_folder`] ([`views::get_data`]) | `data/raw/`, `data/manifest.csv`, `data/rejected.csv` |
//! | 2 label check | `02_labels` | [`labels`] | [`labels::audit::Audit::run`] ([`views::label_check`]) | `data/cache/backbone-*`, `data/audit.csv` |
//! | 2 labelling a folder | `02_labels` | [`labels`] | [`labels::rounds::label_folder`] (`lab5 label DIR`), [`labels::simulate::run`] | `DIR/labels.csv`, `rounds.csv`, `state.json`; `runs/label-simulation/` |
//! | 3 CNN from scratch | `03_cnn` | [`models::cnn`], [`train`] | [`train::train_cnn`] -> [`train::trainer::fit`] | `runs/cnn/` (checkpoints, `metrics.json`, `predictions.csv`, `tb/`) |
//! | 3 robustness | `03_cnn` | [`robustness`] | [`robustness`] (`lab5 robustness --run`) | `runs/<run>/robustness.json` |
//! | 3 augmentation preview | `03_cnn` | [`train::dataset`] | [`train::dataset::augmentation_preview`] ([`views::augmentations`]) | nothing (inline) |
//! | 3 ablation | `03_cnn` | [`ablation`] | [`ablation::run`] (`lab5 ablate`) | `runs/ablation/` |
//! | 4 embeddings | `04_embeddings` | [`embed`] | [`embed::run::embed_run`] ([`views::embed`]) | `runs/<run>/embeddings*`, maps |
//! | 5 transfer learning | `05_transfer` | [`models::transfer`], [`train::transfer`] | [`train::train_transfer`] | `runs/transfer/` |
//! | 6 comparison | `06_comparison` | [`compare`], [`report`] | [`compare::compare`], [`report::write`] | `runs/comparison/`, `runs/<date>/report.html` |
//! | 7 theory | `00_theory` | [`theory`] | one function per illustration | nothing (inline) |
//! | 8 Grad-CAM, your photos, another collection | `07_your_photos` | [`explain`], [`views::explain`] | [`explain::grad_cam`], [`explain::write_overlays`] (`lab5 explain`), [`views::other_collection`] (`lab5 evaluate --data`) | `runs/<run>/explain/`, `runs/<run>/evaluations/` |
//! | all | - | [`pipeline`] | [`pipeline::run`] (`lab5 run`) | `runs/pipeline.json` |
//!
//! # PyTorch -> lab5
//!
//! | PyTorch | lab5 |
//! |---|---|
//! | `nn.Module`, `nn.Sequential` | [`models::Net`]; the CNN is two `tch::nn::seq_t()` chains in [`models::cnn`] |
//! | `Dataset`, `DataLoader`, `transforms` | [`train::dataset::Dataset`], [`data::loader::batches`] (augmentation on whole batches) |
//! | `optim.AdamW` + `lr_scheduler.OneCycleLR` | [`train::trainer::fit`] with [`train::schedule::OneCycle`] |
//! | the training loop (`loss.backward(); opt.step()`) | [`train::trainer::fit`], top to bottom |
//! | `CrossEntropyLoss(label_smoothing=...)` | [`train::trainer::cross_entropy`] |
//! | `timm.data.Mixup` (mixup, CutMix) | [`train::mix::Mix`] (`augment.mix_prob`) |
//! | `torch.optim.swa_utils.AveragedModel` (EMA) | [`train::ema::Ema`] |
//! | `state_dict`, `torch.save` / `load` | [`train::checkpoint`] (safetensors) |
//! | `SummaryWriter` (TensorBoard) | [`train::tensorboard`] |
//! | `torchsummary.summary` | [`models::Summary`] |
//! | `torch.autocast(bfloat16)`, `channels_last` | [`models::speed`] (`cnn.precision`) |
//!
//! # Module order
//!
//! The modules follow the lab, and each imports only modules before it in this order
//! (`tests/layout.rs` checks it): [`util`], [`config`], [`runtime`], [`decode`] (what an
//! image must be to be read), [`plot`] -> [`data`]
//! -> [`models`] -> [`labels`] -> [`train`] -> [`robustness`] -> [`explain`] -> [`ablation`] -> [`theory`] -> [`embed`] ->
//! [`compare`] -> [`views`] (what the notebooks, the report and the pipeline show) ->
//! [`report`] -> [`pipeline`].
#![warn(missing_docs)]

pub mod ablation;
pub mod compare;
pub mod config;
pub mod data;
pub mod decode;
pub mod embed;
pub mod explain;
pub mod labels;
pub mod models;
pub mod pipeline;
pub(crate) mod plot;
pub(crate) mod report;
pub mod robustness;
pub mod runtime;
pub mod theory;
pub mod train;
pub mod util;
pub mod views;

pub use config::Config;
/// Re-exported so notebooks reach libtorch without a second `:dep` (same version).
pub use tch;

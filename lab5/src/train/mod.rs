//! Training: the loop, early stopping, checkpoints and run records, the metrics of a
//! trained model, the TensorBoard event writer and what each run logs to TensorBoard.

pub mod board;
pub(crate) mod breeds;
pub mod calibration;
pub(crate) mod checkpoint;
pub mod dataset;
pub(crate) mod ema;
pub(crate) mod infer;
pub mod metrics;
pub mod mix;
pub mod monitor;
pub(crate) mod precise_bn;
pub mod record;
pub mod run;
pub(crate) mod schedule;
pub(crate) mod staging;
pub mod tensorboard;
pub mod trainer;
pub(crate) mod transfer;

pub use breeds::{BreedAccuracy, GroupAccuracy, NO_BREED};
pub(crate) use infer::LoadedRun;
pub use infer::{evaluate, predict};
pub use record::RunRecord;
pub use run::train_cnn;
pub use transfer::train_transfer;

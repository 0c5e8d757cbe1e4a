//! Training: the loop, early stopping, checkpoints and run records, the metrics of a
//! trained model, and the TensorBoard event writer.

pub mod breeds;
pub mod checkpoint;
pub mod dataset;
pub mod ema;
pub mod infer;
pub mod metrics;
pub mod monitor;
pub mod record;
pub mod run;
pub mod schedule;
pub mod staging;
pub mod tensorboard;
pub mod trainer;
pub mod transfer;

pub use infer::{evaluate, predict, Evaluation, LoadedRun, Prediction};
pub use record::RunRecord;
pub use run::train_cnn;
pub use transfer::train_transfer;

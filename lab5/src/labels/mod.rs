//! Labels: is every photo what its label says, and labels for photos that have none. The
//! step after the models, because it runs one of them.
//!
//! - [`features`]: the backbone pass, EfficientNet-Lite0 once over every photo, cached in
//!   `data/cache/` (pooled features for the transfer head, ImageNet probabilities for the
//!   check);
//! - [`audit`]: the label check on those numbers, `data/audit.csv`, the flagged-photo grid,
//!   and the reversible exclusion of flagged photos from training;
//! - [`rounds`]: `lab5 label DIR`, labelling a folder without labels: zero-shot proposals,
//!   then active-learning rounds ([`scan`] lists the folder, [`answers`] reads what a
//!   person answered, [`classifier`] learns from it, [`select`] picks the next photos);
//! - [`simulate`]: how many human labels that saves, measured on the data set with its
//!   labels hidden.

pub mod answers;
pub mod audit;
pub mod classifier;
pub mod features;
pub(crate) mod pass_net;
pub mod rounds;
pub mod scan;
pub mod select;
pub mod simulate;

//! Labels: is every photo what its label says? The step after the models, because it runs
//! one of them.
//!
//! - [`features`]: the backbone pass, EfficientNet-Lite0 once over every photo, cached in
//!   `data/cache/` (pooled features for the transfer head, ImageNet probabilities for the
//!   check);
//! - [`audit`]: the label check on those numbers, `data/audit.csv`, the flagged-photo grid,
//!   and the reversible exclusion of flagged photos from training.

pub mod audit;
pub mod features;

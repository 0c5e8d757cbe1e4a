//! [`EmbeddingSet`]: the penultimate-layer vectors of every image of a run, with id, class,
//! split and breed, saved as one JSON file (written atomically, checked when read).

use crate::data::{is_safe_id, Class, SplitName};
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The embedding of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingRecord {
    /// Image id (as in the manifest).
    pub id: String,
    /// True class.
    pub label: Class,
    /// Split the image belongs to.
    pub split: SplitName,
    /// Breed name (may be empty when unknown).
    pub breed: String,
    /// The vector of the penultimate linear layer.
    pub vector: Vec<f32>,
}

/// All embeddings of one model: equal-length, finite vectors with unique ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSet {
    /// The model that produced them (e.g. "cnn", "transfer").
    pub model: String,
    /// Length of every vector.
    pub dim: usize,
    /// One record per image.
    pub records: Vec<EmbeddingRecord>,
}

impl EmbeddingSet {
    /// A checked set: at least one record, every vector `dim` long and finite, ids unique.
    pub(crate) fn new(model: &str, records: Vec<EmbeddingRecord>) -> Result<EmbeddingSet> {
        let dim = records.first().map_or(0, |r| r.vector.len());
        let set = EmbeddingSet {
            model: model.to_string(),
            dim,
            records,
        };
        set.validate()?;
        Ok(set)
    }

    fn validate(&self) -> Result<()> {
        if self.records.is_empty() || self.dim == 0 {
            bail!(
                "embedding set {:?} is empty; embed a trained run first",
                self.model
            );
        }
        let mut seen = HashSet::with_capacity(self.records.len());
        for r in &self.records {
            if !is_safe_id(&r.id) || !seen.insert(r.id.as_str()) {
                bail!(
                    "embedding set {:?}: id {:?} is invalid or repeated",
                    self.model,
                    r.id
                );
            }
            self.check_vector(r)?;
        }
        Ok(())
    }

    fn check_vector(&self, r: &EmbeddingRecord) -> Result<()> {
        if r.vector.len() != self.dim {
            bail!(
                "embedding {:?} has {} values, the set has {}",
                r.id,
                r.vector.len(),
                self.dim
            );
        }
        if r.vector.iter().any(|v| !v.is_finite()) {
            bail!(
                "embedding {:?} holds NaN or infinity; the model diverged, retrain it",
                r.id
            );
        }
        Ok(())
    }

    /// Writes the set as JSON to `path` (temp file + rename).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).context("cannot serialise the embeddings")?;
        write_atomic(path, &json)
    }

    /// Reads and checks a set written by [`EmbeddingSet::save`].
    pub(crate) fn load(path: &Path) -> Result<EmbeddingSet> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read embeddings {}; run the embed step first",
                path.display()
            )
        })?;
        let set: EmbeddingSet = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not an embeddings file; delete it and embed again",
                path.display()
            )
        })?;
        set.validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(set)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the set has no image (never true for a checked set).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The vectors, in record order.
    pub(crate) fn vectors(&self) -> Vec<Vec<f32>> {
        self.records.iter().map(|r| r.vector.clone()).collect()
    }

    /// The class names ("cat"/"dog"), in record order.
    pub(crate) fn labels(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| r.label.name().to_string())
            .collect()
    }

    /// The breed names, in record order.
    pub(crate) fn breeds(&self) -> Vec<String> {
        self.records.iter().map(|r| r.breed.clone()).collect()
    }
}

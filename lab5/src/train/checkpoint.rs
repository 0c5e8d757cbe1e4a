//! Weights on disk and in memory: safetensors checkpoints written atomically (temp file +
//! rename), and in-memory snapshots used by early stopping to keep the best weights.

use crate::util::with_atomic;
use anyhow::{Context, Result};
use std::path::Path;
use tch::{nn, Device, Tensor};

/// Every variable of `vs` (weights and batch-norm statistics), copied to the CPU, by name.
fn cpu_copies(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Writes all variables of `vs` to `path` as safetensors; readers never see a partial file.
pub(crate) fn save(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let vars = cpu_copies(vs);
    with_atomic(path, |tmp| {
        Tensor::write_safetensors(&vars, tmp).context("cannot serialise the weights")
    })
}

/// Loads a safetensors checkpoint into `vs`; every variable of `vs` must be in the file.
pub(crate) fn load(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    if !path.is_file() {
        anyhow::bail!(
            "no checkpoint at {}: train the run first (`lab5 train ...`)",
            path.display()
        );
    }
    vs.load(path).with_context(|| {
        format!(
            "{} does not fit this model (was it trained with another config?)",
            path.display()
        )
    })
}

/// A copy of all variables of a var store, kept in memory.
#[derive(Debug)]
pub(crate) struct Snapshot {
    vars: Vec<(String, Tensor)>,
}

impl Snapshot {
    /// Copies every variable of `vs` (on its device).
    pub(crate) fn take(vs: &nn::VarStore) -> Snapshot {
        let vars = vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().copy()))
            .collect();
        Snapshot { vars }
    }

    /// Writes the copied values back into `vs`.
    pub(crate) fn restore(&self, vs: &nn::VarStore) -> Result<()> {
        let mut live = vs.variables();
        for (name, saved) in &self.vars {
            let dst = live
                .get_mut(name)
                .with_context(|| format!("variable {name} is not in this model"))?;
            tch::no_grad(|| dst.f_copy_(saved))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn store() -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 4, 3, Default::default());
        let _ = nn::batch_norm1d(vs.root() / "bn", 3, Default::default());
        vs
    }

    fn fill(vs: &nn::VarStore, v: f64) {
        for (_, mut t) in vs.variables() {
            tch::no_grad(|| {
                let _ = t.fill_(v);
            });
        }
    }

    fn all_equal(vs: &nn::VarStore, v: f64) -> bool {
        vs.variables().values().all(|t| {
            let diff = (t - v).abs().max();
            f64::try_from(diff.to_kind(Kind::Double)).unwrap() == 0.0
        })
    }

    #[test]
    fn snapshot_restores_weights_and_running_stats() {
        let vs = store();
        fill(&vs, 1.5);
        let snap = Snapshot::take(&vs);
        fill(&vs, -2.0);
        snap.restore(&vs).unwrap();
        assert!(all_equal(&vs, 1.5));
    }

    #[test]
    fn checkpoint_round_trip_and_clear_errors() {
        let dir = std::env::temp_dir().join(format!("lab5-ckpt-{}", std::process::id()));
        let path = dir.join("w.safetensors");
        let vs = store();
        fill(&vs, 0.25);
        save(&vs, &path).unwrap();
        let mut other = store();
        load(&mut other, &path).unwrap();
        assert!(all_equal(&other, 0.25));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let err = load(&mut other, &dir.join("none.safetensors")).unwrap_err();
        assert!(err.to_string().contains("train the run first"), "{err}");
        let mut bigger = store();
        let _ = nn::linear(bigger.root() / "extra", 2, 2, Default::default());
        assert!(load(&mut bigger, &path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! An exponential moving average of a model's weights (Polyak & Juditsky 1992; as
//! `torch.optim.swa_utils.AveragedModel` with an EMA function, or timm's `ModelEmaV2`).
//! Evaluating the averaged weights instead of the last ones smooths the validation curve
//! from one epoch to the next and usually generalises a little better.
//!
//! Every variable is averaged, batch-norm running statistics included (as timm does), with
//! the warm-up of TensorFlow's `ExponentialMovingAverage(num_updates=...)`: the decay used
//! at update `t` is `min(decay, (1 + t) / (10 + t))`, so early averages are not dominated
//! by the random initial weights.

use super::checkpoint::Snapshot;
use anyhow::Result;
use tch::{nn, Tensor};

/// The averaged copy of a var store's variables.
#[derive(Debug)]
pub(crate) struct Ema {
    decay: f64,
    updates: u64,
    /// `(name, averaged value)` for every variable, on the model's device.
    avg: Vec<(String, Tensor)>,
}

impl Ema {
    /// Starts the average at the current weights of `vs`; `decay` in `(0, 1)`.
    pub(crate) fn new(vs: &nn::VarStore, decay: f64) -> Ema {
        let avg = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect();
        Ema {
            decay,
            updates: 0,
            avg,
        }
    }

    /// Folds the current weights of `vs` into the average (call after each optimiser step).
    pub(crate) fn update(&mut self, vs: &nn::VarStore) {
        let d = self
            .decay
            .min((1 + self.updates) as f64 / (10 + self.updates) as f64);
        self.updates += 1;
        let live = vs.variables();
        tch::no_grad(|| {
            for (name, avg) in &mut self.avg {
                if let Some(w) = live.get(name) {
                    // avg <- d * avg + (1 - d) * w
                    let _ = avg.g_mul_scalar_(d).g_add_(&(w * (1.0 - d)));
                }
            }
        });
    }

    /// Runs `f` with the averaged weights loaded into `vs`, then puts the live weights back.
    pub(crate) fn with_averaged<T>(&self, vs: &nn::VarStore, f: impl FnOnce() -> T) -> Result<T> {
        let live = Snapshot::take(vs);
        let out = self.load_into(vs).map(|()| f());
        live.restore(vs)?;
        out
    }

    /// Copies the averaged weights into `vs` (they stay there).
    pub(crate) fn load_into(&self, vs: &nn::VarStore) -> Result<()> {
        let mut live = vs.variables();
        for (name, avg) in &self.avg {
            if let Some(dst) = live.get_mut(name) {
                tch::no_grad(|| dst.f_copy_(avg))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn value(vs: &nn::VarStore) -> f64 {
        let w = &vs.variables()["fc.weight"];
        f64::try_from(w.mean(Kind::Double)).unwrap()
    }

    fn fill(vs: &nn::VarStore, v: f64) {
        for (_, mut t) in vs.variables() {
            tch::no_grad(|| {
                let _ = t.fill_(v);
            });
        }
    }

    #[test]
    fn average_follows_the_warm_up_decay_and_swaps_back() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        fill(&vs, 0.0);
        let mut ema = Ema::new(&vs, 0.99);
        fill(&vs, 1.0);
        ema.update(&vs); // d = min(0.99, 1/10) = 0.1 -> 0.9
        ema.update(&vs); // d = 2/11 -> 1 - 0.1 * 2/11
        let want = 1.0 - 0.1 * 2.0 / 11.0;
        let got = ema.with_averaged(&vs, || value(&vs)).unwrap();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert_eq!(value(&vs), 1.0, "live weights are back after evaluation");
    }
}

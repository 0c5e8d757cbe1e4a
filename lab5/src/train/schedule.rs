//! The one-cycle learning-rate schedule (Smith & Topin), as PyTorch's `OneCycleLR` with its
//! defaults: cosine warm-up from `max_lr / 25` to `max_lr` over the first 30 % of the steps,
//! then cosine annealing down to `max_lr / 25 / 1e4`; Adam's beta1 cycles the other way
//! between 0.95 and 0.85.

/// Fraction of the steps spent warming up.
pub(crate) const PCT_START: f64 = 0.3;
/// Initial learning rate is `max_lr / DIV_FACTOR`.
pub(crate) const DIV_FACTOR: f64 = 25.0;
/// Final learning rate is the initial one divided by this.
pub(crate) const FINAL_DIV_FACTOR: f64 = 1e4;
/// Lowest beta1 (reached at the peak learning rate).
pub(crate) const BASE_MOMENTUM: f64 = 0.85;
/// Highest beta1 (at the start and the end).
pub(crate) const MAX_MOMENTUM: f64 = 0.95;

/// Learning rate and momentum for each optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OneCycle {
    max_lr: f64,
    total_steps: usize,
}

/// Cosine interpolation from `start` (at `pct` 0) to `end` (at `pct` 1).
fn cosine(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

impl OneCycle {
    /// A schedule peaking at `max_lr` over `total_steps` optimiser steps.
    pub(crate) fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycle {
            max_lr,
            total_steps: total_steps.max(2),
        }
    }

    /// The step at which the peak is reached, and the phase fraction of `step`:
    /// `(warming_up, fraction of that phase done)`.
    fn phase(&self, step: usize) -> (bool, f64) {
        let last = (self.total_steps - 1) as f64;
        let peak = (PCT_START * self.total_steps as f64 - 1.0)
            .max(1.0)
            .min(last - 1.0);
        let s = (step as f64).min(last);
        if s <= peak {
            // With 2 steps the peak is step 0: no warm-up left to interpolate.
            (true, if peak > 0.0 { s / peak } else { 1.0 })
        } else {
            (false, (s - peak) / (last - peak))
        }
    }

    /// Learning rate at `step` (0-based).
    pub(crate) fn lr(&self, step: usize) -> f64 {
        let initial = self.max_lr / DIV_FACTOR;
        match self.phase(step) {
            (true, pct) => cosine(initial, self.max_lr, pct),
            (false, pct) => cosine(self.max_lr, initial / FINAL_DIV_FACTOR, pct),
        }
    }

    /// The first step after the peak whose learning rate is at most half the peak: the
    /// end of the high-learning-rate phase, where validation loss is noisy.
    pub(crate) fn calm_step(&self) -> usize {
        (0..self.total_steps)
            .find(|&s| !self.phase(s).0 && self.lr(s) <= self.max_lr / 2.0)
            .unwrap_or(self.total_steps)
    }

    /// Adam beta1 at `step`.
    pub(crate) fn momentum(&self, step: usize) -> f64 {
        match self.phase(step) {
            (true, pct) => cosine(MAX_MOMENTUM, BASE_MOMENTUM, pct),
            (false, pct) => cosine(BASE_MOMENTUM, MAX_MOMENTUM, pct),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_to_the_peak_then_anneals() {
        let s = OneCycle::new(3e-3, 1000);
        assert!((s.lr(0) - 3e-3 / DIV_FACTOR).abs() < 1e-12);
        assert!((s.lr(299) - 3e-3).abs() < 1e-12);
        assert!((s.lr(999) - 3e-3 / DIV_FACTOR / FINAL_DIV_FACTOR).abs() < 1e-12);
        assert!((s.momentum(299) - BASE_MOMENTUM).abs() < 1e-12);
        assert!((s.momentum(999) - MAX_MOMENTUM).abs() < 1e-12);
        let lrs: Vec<f64> = (0..1000).map(|i| s.lr(i)).collect();
        assert!(lrs[..300].windows(2).all(|w| w[1] >= w[0]));
        assert!(lrs[299..].windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn calm_phase_starts_halfway_through_the_annealing() {
        let s = OneCycle::new(3e-3, 1000);
        let c = s.calm_step();
        assert!((640..=660).contains(&c), "{c}");
        assert!(s.lr(c) <= 1.5e-3 && s.lr(c - 1) > 1.5e-3);
        assert_eq!(OneCycle::new(1e-3, 2).calm_step(), 1);
    }

    #[test]
    fn tiny_schedules_stay_finite() {
        for total in 0..6 {
            let s = OneCycle::new(1e-3, total);
            for step in 0..total + 2 {
                let (lr, m) = (s.lr(step), s.momentum(step));
                assert!(
                    lr.is_finite() && lr > 0.0 && lr <= 1e-3,
                    "{total}/{step}: lr {lr}"
                );
                assert!(
                    (BASE_MOMENTUM..=MAX_MOMENTUM).contains(&m),
                    "{total}/{step}: {m}"
                );
            }
        }
    }
}

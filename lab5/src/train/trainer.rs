//! The training loop: AdamW with a one-cycle schedule set at every step, train and
//! validation figures per epoch, early stopping on the validation loss that keeps the best
//! weights in memory, and scoring of a whole set (probabilities, loss, accuracy).
//!
//! Early stopping waits for the one-cycle schedule to leave its high-learning-rate phase
//! (learning rate above half the peak): there the validation loss jumps from epoch to
//! epoch, and stopping would cut off the annealing that brings most of the accuracy.

use super::checkpoint::Snapshot;
use super::dataset::{Dataset, Splits};
use super::monitor::{EpochStats, Monitor};
use super::schedule::OneCycle;
use crate::config::Config;
use crate::models::Net;
use anyhow::{bail, Result};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Peak learning rate.
    pub max_lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Seed of shuffling and augmentation (epoch `e` uses `seed + e`).
    pub seed: u64,
}

impl Hyper {
    /// The CNN's settings from the config.
    pub fn cnn(cfg: &Config) -> Self {
        let c = &cfg.cnn;
        Hyper {
            epochs: c.epochs,
            batch_size: c.batch_size,
            max_lr: c.max_lr,
            weight_decay: c.weight_decay,
            patience: c.patience,
            seed: cfg.runtime.seed,
        }
    }

    /// The transfer head's settings from the config.
    pub fn transfer(cfg: &Config) -> Self {
        let t = &cfg.transfer;
        Hyper {
            epochs: t.epochs,
            batch_size: t.batch_size,
            max_lr: t.max_lr,
            weight_decay: t.weight_decay,
            patience: t.patience,
            seed: cfg.runtime.seed,
        }
    }
}

/// What training produced: the history and the best weights (still in memory).
#[derive(Debug)]
pub struct Fitted {
    /// One entry per epoch run.
    pub history: Vec<EpochStats>,
    /// Epoch (from 1) with the lowest validation loss.
    pub best_epoch: usize,
    /// True when early stopping ended training before the last epoch.
    pub stopped_early: bool,
    /// Seconds of the whole loop.
    pub train_secs: f64,
    /// Seconds from the start until the end of the best epoch.
    pub secs_to_best: f64,
    best: Snapshot,
}

impl Fitted {
    /// Puts the best epoch's weights back into the model.
    pub fn restore_best(&self, net: &dyn Net) -> Result<()> {
        self.best.restore(net.var_store())
    }
}

/// Early stopping on the validation loss, remembering the best weights.
struct EarlyStop {
    patience: usize,
    armed_from: usize,
    best_loss: f64,
    best_epoch: usize,
    best_secs: f64,
    best: Option<Snapshot>,
}

impl EarlyStop {
    /// Stops after `patience` epochs without a better validation loss, counted from
    /// `armed_from` at the earliest (the first epoch past the schedule's high-LR phase).
    fn new(patience: usize, armed_from: usize) -> Self {
        EarlyStop {
            patience,
            armed_from,
            best_loss: f64::INFINITY,
            best_epoch: 0,
            best_secs: 0.0,
            best: None,
        }
    }

    /// Records an epoch; true when it is the best so far (its weights are copied).
    fn update(&mut self, s: &EpochStats, secs: f64, net: &dyn Net) -> bool {
        if s.val_loss >= self.best_loss {
            return false;
        }
        (self.best_loss, self.best_epoch, self.best_secs) = (s.val_loss, s.epoch, secs);
        self.best = Some(Snapshot::take(net.var_store()));
        true
    }

    fn should_stop(&self, epoch: usize) -> bool {
        epoch >= self.best_epoch.max(self.armed_from) + self.patience
    }
}

/// Running sums of one training epoch.
#[derive(Default)]
struct EpochSums {
    loss: f64,
    correct: i64,
    seen: usize,
    lr: f64,
    data_secs: f64,
}

/// Optimiser, schedule and step counter.
struct Stepper {
    opt: nn::Optimizer,
    schedule: OneCycle,
    step: usize,
}

impl Stepper {
    fn new(net: &dyn Net, h: &Hyper, steps_per_epoch: usize) -> Result<Self> {
        let schedule = OneCycle::new(h.max_lr, h.epochs * steps_per_epoch);
        let adamw = nn::AdamW {
            wd: h.weight_decay,
            ..Default::default()
        };
        let opt = adamw.build(net.var_store(), schedule.lr(0))?;
        Ok(Stepper {
            opt,
            schedule,
            step: 0,
        })
    }

    /// One optimiser step on `loss` with this step's learning rate and momentum.
    fn step(&mut self, loss: &Tensor) -> f64 {
        let lr = self.schedule.lr(self.step);
        self.opt.set_lr(lr);
        self.opt.set_momentum(self.schedule.momentum(self.step));
        self.opt.backward_step(loss);
        self.step += 1;
        lr
    }
}

fn correct(logits: &Tensor, y: &Tensor) -> Result<i64> {
    Ok(i64::try_from(
        logits.argmax(-1, false).eq_tensor(y).sum(Kind::Int64),
    )?)
}

fn train_epoch(
    net: &dyn Net,
    set: &dyn Dataset,
    st: &mut Stepper,
    seed: u64,
    h: &Hyper,
    device: Device,
    m: &Monitor,
) -> Result<EpochSums> {
    let mut sums = EpochSums::default();
    let mut batches = set.train_batches(h.batch_size, seed, device);
    loop {
        let fetch = Instant::now();
        let Some((x, y)) = batches.next() else { break };
        sums.data_secs += fetch.elapsed().as_secs_f64();
        let logits = net.logits(&x, true);
        let loss = logits.cross_entropy_for_logits(&y);
        sums.lr = st.step(&loss);
        let n = y.size()[0] as usize;
        sums.loss += f64::try_from(&loss)? * n as f64;
        sums.correct += correct(&logits, &y)?;
        sums.seen += n;
        m.step();
    }
    Ok(sums)
}

/// Probabilities, mean loss and accuracy of a model on a whole set.
#[derive(Debug, Clone)]
pub struct Scores {
    /// Probability of `dog` per example, in the set's order.
    pub p_dog: Vec<f64>,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly (threshold 0.5).
    pub accuracy: f64,
}

/// Scores `set` in evaluation mode (no dropout, batch-norm running statistics, no
/// gradients).
pub fn score(
    net: &dyn Net,
    set: &dyn Dataset,
    batch_size: usize,
    device: Device,
) -> Result<Scores> {
    let _guard = tch::no_grad_guard();
    let (mut p_dog, mut loss, mut right) = (Vec::with_capacity(set.len()), 0.0, 0);
    for (x, y) in set.eval_batches(batch_size, device) {
        let logits = net.logits(&x, false);
        let n = y.size()[0] as f64;
        loss += f64::try_from(logits.cross_entropy_for_logits(&y))? * n;
        right += correct(&logits, &y)?;
        let p = logits
            .softmax(-1, Kind::Float)
            .select(1, 1)
            .to_kind(Kind::Double);
        p_dog.extend(Vec::<f64>::try_from(p.to_device(Device::Cpu))?);
    }
    let n = p_dog.len().max(1) as f64;
    Ok(Scores {
        p_dog,
        loss: loss / n,
        accuracy: right as f64 / n,
    })
}

fn run_epoch(
    net: &dyn Net,
    data: &Splits,
    st: &mut Stepper,
    epoch: usize,
    h: &Hyper,
    device: Device,
    m: &Monitor,
) -> Result<EpochStats> {
    let started = Instant::now();
    let seed = h.seed.wrapping_add(epoch as u64);
    let t = train_epoch(net, &*data.train, st, seed, h, device, m)?;
    let train_secs = started.elapsed().as_secs_f64();
    let v = score(net, &*data.val, h.batch_size, device)?;
    let train_loss = t.loss / t.seen.max(1) as f64;
    if !train_loss.is_finite() || !v.loss.is_finite() {
        bail!(
            "training diverged at epoch {epoch} (loss is not finite): lower max_lr in config.json"
        );
    }
    Ok(EpochStats {
        epoch,
        train_loss,
        train_acc: t.correct as f64 / t.seen.max(1) as f64,
        val_loss: v.loss,
        val_acc: v.accuracy,
        lr: t.lr,
        secs: started.elapsed().as_secs_f64(),
        train_secs,
        data_secs: t.data_secs,
    })
}

/// Trains `net` on `data.train`, validating on `data.val` after every epoch, until
/// `h.epochs` or until the validation loss has not improved for `h.patience` epochs
/// (counted from the end of the high-learning-rate phase at the earliest).
/// The model ends with the LAST epoch's weights; [`Fitted::restore_best`] brings back the
/// best ones.
pub fn fit(
    net: &dyn Net,
    data: &Splits,
    h: &Hyper,
    device: Device,
    m: &mut Monitor,
) -> Result<Fitted> {
    data.check_not_empty()?;
    let steps = data.train.len().div_ceil(h.batch_size.max(1));
    let mut st = Stepper::new(net, h, steps)?;
    let mut stop = EarlyStop::new(h.patience, st.schedule.calm_step().div_ceil(steps));
    let (started, mut history) = (Instant::now(), Vec::new());
    for epoch in 1..=h.epochs {
        let s = run_epoch(net, data, &mut st, epoch, h, device, m)?;
        let best = stop.update(&s, started.elapsed().as_secs_f64(), net);
        m.epoch(&s, best)?;
        history.push(s);
        if stop.should_stop(epoch) && epoch < h.epochs {
            m.say(&format!(
                "early stop: no better validation loss for {} epochs",
                h.patience
            ));
            break;
        }
    }
    m.finish()?;
    finish(stop, history, h.epochs, started, net)
}

fn finish(
    stop: EarlyStop,
    history: Vec<EpochStats>,
    epochs: usize,
    started: Instant,
    net: &dyn Net,
) -> Result<Fitted> {
    let stopped_early = history.len() < epochs;
    let best = stop.best.unwrap_or_else(|| Snapshot::take(net.var_store()));
    Ok(Fitted {
        best_epoch: stop.best_epoch,
        stopped_early,
        train_secs: started.elapsed().as_secs_f64(),
        secs_to_best: stop.best_secs,
        history,
        best,
    })
}

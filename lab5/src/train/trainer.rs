//! The training loop: AdamW with a one-cycle schedule set at every step, train and
//! validation figures per epoch, early stopping on the validation loss that keeps the best
//! weights in memory, and scoring of a whole set (probabilities, loss, accuracy).
//!
//! Early stopping waits for the one-cycle schedule to leave its high-learning-rate phase
//! (learning rate above half the peak): there the validation loss jumps from epoch to
//! epoch, and stopping would cut off the annealing that brings most of the accuracy.

use super::checkpoint::Snapshot;
use super::dataset::{Dataset, Splits};
use super::ema::Ema;
use super::mix::{dominant_labels, mixed_loss, Mix, Mixed};
use super::monitor::{EpochStats, Monitor};
use super::schedule::OneCycle;
use crate::config::{self, Config};
use crate::models::Net;
use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The settings of one training run: the model section's training settings
/// (`cnn` or `transfer` in `config.json`) and the seed of shuffling and augmentation
/// (epoch `e` uses `seed + e`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// Epochs, batch size, learning rate, weight decay, patience, smoothing, averaging.
    pub train: config::Train,
    /// `runtime.seed`.
    pub seed: u64,
    /// `cnn.precise_bn`: recompute the batch-norm statistics of the kept weights on the
    /// clean training photos after training (never for the transfer model, whose frozen
    /// backbone keeps its pretrained statistics).
    pub precise_bn: bool,
    /// `augment.mix_prob`, `mixup_alpha`, `cutmix_alpha`: batch mixing (CNN only; off for
    /// the transfer head, trained on features).
    pub mix: Mix,
}

impl Hyper {
    /// The CNN's settings from the config.
    pub fn cnn(cfg: &Config) -> Self {
        Hyper {
            train: cfg.cnn.train.clone(),
            seed: cfg.runtime.seed,
            precise_bn: cfg.cnn.precise_bn,
            mix: Mix::from_augment(&cfg.augment),
        }
    }

    /// The transfer head's settings from the config.
    pub(crate) fn transfer(cfg: &Config) -> Self {
        Hyper {
            train: cfg.transfer.train.clone(),
            seed: cfg.runtime.seed,
            precise_bn: false,
            mix: Mix::default(),
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
    pub(crate) fn restore_best(&self, net: &dyn Net) -> Result<()> {
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

    /// Records an epoch; true when it is the best so far (its weights, or their moving
    /// average when `ema` is given, are copied).
    fn update(
        &mut self,
        s: &EpochStats,
        secs: f64,
        vs: &nn::VarStore,
        ema: Option<&Ema>,
    ) -> Result<bool> {
        if s.val_loss >= self.best_loss {
            return Ok(false);
        }
        (self.best_loss, self.best_epoch, self.best_secs) = (s.val_loss, s.epoch, secs);
        self.best = Some(match ema {
            Some(ema) => ema.with_averaged(vs, || Snapshot::take(vs))?,
            None => Snapshot::take(vs),
        });
        Ok(true)
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

impl EpochSums {
    /// Adds one batch: its mean loss, its logits and labels.
    fn add(&mut self, loss: &Tensor, logits: &Tensor, y: &Tensor) -> Result<()> {
        let n = y.size()[0] as usize;
        self.loss += f64::try_from(loss)? * n as f64;
        self.correct += correct(logits, y)?;
        self.seen += n;
        Ok(())
    }

    /// The epoch's figures, with the validation scores `v`; fails when the loss diverged.
    fn stats(
        &self,
        epoch: usize,
        v: &Scores,
        started: Instant,
        train_secs: f64,
    ) -> Result<EpochStats> {
        let train_loss = self.loss / self.seen.max(1) as f64;
        if !train_loss.is_finite() || !v.loss.is_finite() {
            bail!(
                "training diverged at epoch {epoch} (loss is not finite): lower max_lr in config.json"
            );
        }
        Ok(EpochStats {
            epoch,
            train_loss,
            train_acc: self.correct as f64 / self.seen.max(1) as f64,
            val_loss: v.loss,
            val_acc: v.accuracy,
            lr: self.lr,
            secs: started.elapsed().as_secs_f64(),
            train_secs,
            data_secs: self.data_secs,
        })
    }
}

fn correct(logits: &Tensor, y: &Tensor) -> Result<i64> {
    Ok(i64::try_from(
        logits.argmax(-1, false).eq_tensor(y).sum(Kind::Int64),
    )?)
}

/// Mean cross-entropy of `logits` `[N, C]` against class indices `y` `[N]`, with the
/// targets smoothed by `smoothing` (Szegedy et al. 2016, "Rethinking the Inception
/// Architecture for Computer Vision", section 7; PyTorch's
/// `CrossEntropyLoss(label_smoothing=...)`): the true class gets
/// `1 - smoothing + smoothing / C`, every other class `smoothing / C`.
pub(crate) fn cross_entropy(logits: &Tensor, y: &Tensor, smoothing: f64) -> Tensor {
    if smoothing == 0.0 {
        return logits.cross_entropy_for_logits(y);
    }
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = -log_p.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    let uniform = -log_p.mean_dim(-1, false, Kind::Float);
    (nll * (1.0 - smoothing) + uniform * smoothing).mean(Kind::Float)
}

/// Trains `net` on `data.train`, validating on `data.val` after every epoch, until
/// `h.train.epochs` or until the validation loss has not improved for `h.train.patience`
/// epochs (counted from the end of the high-learning-rate phase at the earliest).
///
/// The loop of every PyTorch tutorial, top to bottom: per batch mixing when drawn
/// ([`Mix`]: mixup or CutMix, `augment.mix_prob`), forward, loss, backward
/// and optimiser step (AdamW, Loshchilov & Hutter 2019, with the one-cycle schedule of
/// Smith & Topin 2019 setting learning rate and beta1 at every step); per epoch
/// validation, early stopping and the in-memory checkpoint of the best weights; the
/// monitor `m` logs the first batch, every epoch's figures and every layer's weight and
/// gradient histograms (the gradients of the epoch's last step). With
/// `ema_decay > 0`, validation and the best checkpoint use the moving average of the
/// weights ([`Ema`]). The model ends with the LAST epoch's weights;
/// [`Fitted::restore_best`] brings back the best ones.
pub fn fit(
    net: &dyn Net,
    data: &Splits,
    h: &Hyper,
    device: Device,
    m: &mut Monitor,
) -> Result<Fitted> {
    data.check_not_empty()?;
    let (t, vs) = (&h.train, net.var_store());
    let steps_per_epoch = data.train.len().div_ceil(t.batch_size.max(1));
    let schedule = OneCycle::new(t.max_lr, t.epochs * steps_per_epoch);
    let adamw = nn::AdamW {
        wd: t.weight_decay,
        ..Default::default()
    };
    let mut opt = adamw.build(vs, schedule.lr(0))?;
    let mut ema = (t.ema_decay > 0.0).then(|| Ema::new(vs, t.ema_decay));
    let mut stop = EarlyStop::new(t.patience, schedule.calm_step().div_ceil(steps_per_epoch));
    let (started, mut history, mut step) = (Instant::now(), Vec::new(), 0);
    let mut mix_rng = StdRng::seed_from_u64(h.seed ^ MIX_SEED);
    for epoch in 1..=t.epochs {
        let (epoch_started, mut sums) = (Instant::now(), EpochSums::default());
        let seed = h.seed.wrapping_add(epoch as u64);
        let mut batches = data.train.train_batches(t.batch_size, seed, device);
        while let Some((x, y)) = timed(&mut sums.data_secs, || batches.next()) {
            let mixed = h.mix.apply(&x, &y, &mut mix_rng)?; // mixup / CutMix, if drawn
            let x = mixed.as_ref().map_or(x, |m| m.x.shallow_clone());
            if step == 0 {
                m.first_batch(&*data.train, &x); // as the network sees it
            }
            let logits = net.logits(&x, true); // forward
            let b = batch_loss(&logits, &y, mixed.as_ref(), t.label_smoothing);
            sums.lr = schedule.lr(step);
            opt.set_lr(sums.lr);
            opt.set_momentum(schedule.momentum(step));
            opt.backward_step(&b.loss); // zero_grad, backward, step
            step += 1;
            if let Some(ema) = &mut ema {
                ema.update(vs);
            }
            sums.add(&b.plain, &logits, &b.y_shown)?;
            m.step();
        }
        let train_secs = epoch_started.elapsed().as_secs_f64();
        let validate = || score(net, &*data.val, t.batch_size, device);
        let v = match &ema {
            Some(ema) => ema.with_averaged(vs, validate)??,
            None => validate()?,
        };
        let s = sums.stats(epoch, &v, epoch_started, train_secs)?;
        m.parameters(vs, epoch);
        let best = stop.update(&s, started.elapsed().as_secs_f64(), vs, ema.as_ref())?;
        m.epoch(&s, best);
        history.push(s);
        if stop.should_stop(epoch) && epoch < t.epochs {
            m.say(&format!(
                "early stop: no better validation loss for {} epochs",
                t.patience
            ));
            break;
        }
    }
    m.finish();
    finish(stop, history, t.epochs, started, net)
}

/// One training batch's loss and what the epoch's figures count of it.
struct BatchLoss {
    /// The loss to minimise: (smoothed) cross-entropy, weighted between the two labels
    /// for a mixed batch.
    loss: Tensor,
    /// The same without label smoothing and without gradients: train and validation losses
    /// on one scale (for a mixed batch, the cross-entropy of its blended targets, which
    /// cannot reach 0).
    plain: Tensor,
    /// The labels the accuracy counts: for a mixed batch, the one each photo mostly shows.
    y_shown: Tensor,
}

/// The loss of `logits` `[N, 2]` against labels `y` `[N]`, mixed or not
/// ([`mixed_loss`], [`dominant_labels`]), with label smoothing `smoothing`.
fn batch_loss(logits: &Tensor, y: &Tensor, mixed: Option<&Mixed>, smoothing: f64) -> BatchLoss {
    let smoothed = |l: &Tensor, target: &Tensor| cross_entropy(l, target, smoothing);
    let plain_ce = |l: &Tensor, target: &Tensor| l.cross_entropy_for_logits(target);
    let (loss, plain, y_shown) = match mixed {
        Some(m) => (
            mixed_loss(logits, y, m, smoothed),
            tch::no_grad(|| mixed_loss(logits, y, m, plain_ce)),
            dominant_labels(y, m),
        ),
        None => (
            smoothed(logits, y),
            tch::no_grad(|| plain_ce(logits, y)),
            y.shallow_clone(),
        ),
    };
    BatchLoss {
        loss,
        plain,
        y_shown,
    }
}

/// Mixed into `runtime.seed` for the batch-mixing draws, so that they do not repeat the
/// loader's.
const MIX_SEED: u64 = 0x6d69_7875_7021;

/// Runs `f`, adding the seconds it took to `secs`.
fn timed<T>(secs: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *secs += t.elapsed().as_secs_f64();
    out
}

/// Probabilities, mean loss and accuracy of a model on a whole set.
#[derive(Debug, Clone)]
pub(crate) struct Scores {
    /// Probability of `dog` per example, in the set's order.
    pub p_dog: Vec<f64>,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly (threshold 0.5).
    pub accuracy: f64,
}

/// Scores `set` in evaluation mode (no dropout, batch-norm running statistics, no
/// gradients).
pub(crate) fn score(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_smoothing_matches_the_soft_target_cross_entropy() {
        tch::manual_seed(4);
        let logits = Tensor::randn([6, 2], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0]);
        let plain = f64::try_from(cross_entropy(&logits, &y, 0.0)).unwrap();
        let reference = f64::try_from(logits.cross_entropy_for_logits(&y)).unwrap();
        assert_eq!(plain, reference);
        // soft targets: 1 - e + e/2 on the true class, e/2 on the other
        let e = 0.2;
        let onehot = y.one_hot(2).to_kind(Kind::Float);
        let target = onehot * (1.0 - e) + e / 2.0;
        let want = -(target * logits.log_softmax(-1, Kind::Float))
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .mean(Kind::Float);
        let got = cross_entropy(&logits, &y, e);
        assert!(f64::try_from((got - want).abs()).unwrap() < 1e-6);
    }
}

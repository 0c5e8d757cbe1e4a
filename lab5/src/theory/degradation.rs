//! The degradation problem, tried on the lab's photos: a shallow and a deep stack, plain and
//! residual, all with batch norm and He initialisation (so no gradient vanishes at the
//! start), trained on the same small batch of real photos with SGD and momentum (the ResNet
//! paper's optimiser) for a fixed number of steps. He et al. 2016 (§4.1, Fig. 1 and 4) saw a
//! 34-layer plain net reach a *higher training error* than an 18-layer one on ImageNet, and
//! the residual versions reverse that. A few hundred steps on 8-channel stacks show whether
//! (and how much of) that appears at this scale; the notebook reads the numbers, it does not
//! assume them.

use super::photo;
use super::resnet::{network, Init, Stack, Threads, Variant};
use crate::plot::{self, Figure, Line, Table};
use crate::Config;
use anyhow::Result;
use polars::prelude::*;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Photos per class in the training batch.
pub(crate) const PHOTOS_PER_CLASS: usize = 24;
/// Side the photos are shrunk to.
pub(crate) const SIDE: i64 = 24;
/// Convolutions in the body of the shallow and the deep stacks.
pub const DEPTHS: [usize; 2] = [4, 32];
/// Full-batch SGD steps.
pub const STEPS: usize = 150;
/// Learning rate and momentum of SGD.
const LR: f64 = 0.05;
const MOMENTUM: f64 = 0.9;
/// Seed of the initialisation.
const SEED: i64 = 5;

/// One trained stack: its name and training loss after every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// e.g. `plain, 32 convs`.
    pub name: String,
    /// Training loss before the first step and after each step.
    pub loss: Vec<f64>,
    /// Training accuracy after the last step (0..1).
    pub accuracy: f64,
}

/// The four stacks trained: plain and residual, shallow and deep.
#[derive(Debug, Clone, PartialEq)]
pub struct Degradation {
    /// One curve per stack.
    pub curves: Vec<Curve>,
}

fn variant(stack: Stack) -> Variant {
    let name = match stack {
        Stack::Plain => "plain",
        Stack::Residual => "residual",
    };
    Variant {
        name,
        stack,
        batch_norm: true,
        init: Init::He,
    }
}

/// Trains one stack on `(x, y)` and records its loss.
fn train(x: &Tensor, y: &Tensor, stack: Stack, depth: usize) -> Result<Curve> {
    tch::manual_seed(SEED);
    let v = variant(stack);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = network(&vs.root(), v, depth);
    let mut opt = nn::Sgd {
        momentum: MOMENTUM,
        ..Default::default()
    }
    .build(&vs, LR)?;
    let mut loss = Vec::with_capacity(STEPS + 1);
    for _ in 0..STEPS {
        let l = net.forward_t(x, true).cross_entropy_for_logits(y);
        loss.push(super::scalar(&l)?);
        opt.backward_step(&l);
    }
    let logits = net.forward_t(x, true);
    loss.push(super::scalar(&logits.cross_entropy_for_logits(y))?);
    let accuracy = super::scalar(&logits.accuracy_for_logits(y))?;
    Ok(Curve {
        name: format!("{}, {depth} convs", v.name),
        loss,
        accuracy,
    })
}

/// Trains the four stacks on [`PHOTOS_PER_CLASS`] cats and dogs of `data.folder`, shrunk to
/// [`SIDE`] px, on one thread (tiny convolutions run faster without thread hand-offs).
/// Training-mode forward passes throughout: the question is how well each stack *fits* the
/// batch (training error), not how it generalises.
pub fn degradation(cfg: &Config) -> Result<Degradation> {
    let _one = Threads::set(1);
    let (images, labels) = photo::batch(cfg, PHOTOS_PER_CLASS)?;
    let x = images
        .adaptive_avg_pool2d([SIDE, SIDE])
        .to_kind(Kind::Float);
    let mut curves = Vec::new();
    for stack in [Stack::Plain, Stack::Residual] {
        for depth in DEPTHS {
            curves.push(train(&x, &labels, stack, depth)?);
        }
    }
    Ok(Degradation { curves })
}

/// [`degradation`] as a table, for a notebook cell of its own (a cell shows one output).
pub fn table(cfg: &Config) -> Result<Table> {
    degradation(cfg)?.table()
}

/// [`degradation`] as a chart, for a notebook cell of its own: it trains again (a cache in
/// the crate would not help: the kernel links a copy of the crate, statics included, into
/// every cell), with the same photos, seed and one thread, so it shows the table's numbers
/// up to floating-point rounding.
pub fn chart(cfg: &Config) -> Result<Figure> {
    degradation(cfg)?.figure()
}

impl Degradation {
    /// log10 of the training loss per step, one line per stack.
    pub fn figure(&self) -> Result<Figure> {
        let lines: Vec<Line> = self
            .curves
            .iter()
            .map(|c| {
                let pts = c.loss.iter().enumerate();
                Line::new(
                    &c.name,
                    pts.map(|(i, l)| (i as f64, l.max(1e-12).log10())).collect(),
                )
            })
            .collect();
        plot::line_chart(
            "Training loss of shallow and deep stacks, plain and residual (BN, He init)",
            "SGD step (full batch)",
            "log10 training loss",
            &lines,
        )
    }

    /// Per stack: loss at the start, after a third of the steps, at the end; final accuracy.
    pub fn table(&self) -> Result<Table> {
        let at = |i: usize| -> Vec<String> {
            self.curves
                .iter()
                .map(|c| format!("{:.4}", c.loss[i]))
                .collect()
        };
        let df = df!(
            "stack" => self.curves.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            "loss at step 0" => at(0),
            format!("loss at step {}", STEPS / 3).as_str() => at(STEPS / 3),
            format!("loss at step {STEPS}").as_str() => at(STEPS),
            "training accuracy at the end" => self.curves.iter().map(|c| format!("{:.3}", c.accuracy)).collect::<Vec<_>>(),
        )?;
        Ok(Table(df))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stack_trains_and_the_residual_deep_one_fits_the_batch() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let d = degradation(&cfg).unwrap();
        assert_eq!(d.curves.len(), 4);
        for c in &d.curves {
            assert_eq!(c.loss.len(), STEPS + 1);
            assert!(
                c.loss.iter().all(|l| l.is_finite()),
                "{}: {:?}",
                c.name,
                c.loss
            );
        }
        let deep_residual = &d.curves[3];
        assert!(
            deep_residual.loss[STEPS] < deep_residual.loss[0] * 0.5,
            "{deep_residual:?}"
        );
        assert_eq!(d.table().unwrap().0.height(), 4);
        assert!(d.figure().unwrap().svg().contains("residual, 32 convs"));
    }
}

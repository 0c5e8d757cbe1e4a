//! The light classifier of the labelling rounds: an L2-regularised logistic regression
//! (scikit-learn's `LogisticRegression(C=label.c)`) on the frozen backbone's features, in
//! tch, that **starts from the zero-shot rule**.
//!
//! The design matrix has one row per photo: its 1280 pooled features standardised (mean
//! and standard deviation over the photos of the folder, labelled or not), the zero-shot
//! log-odds `z0 = ln p_dog - ln p_cat` of the ImageNet head (classes 151-268 against
//! 281-285), and 1 for the bias. The weights start at `theta0` = 1 on `z0`, 0 elsewhere:
//! the zero-shot head's cat/dog direction, so with no human label the classifier *is* the
//! zero-shot rule (`p_dog > 0.5` exactly when `p_dog > p_cat`). Training minimises
//!
//! `||theta - theta0||^2 / 2 + C * sum_i [softplus(z_i) - y_i z_i]`, `z_i = x_i . theta`
//!
//! (the penalty pulls towards the zero-shot rule, not towards 0: a Gaussian prior centred
//! on it), by Newton's method with a backtracking line search. The Hessian `I + C X^T S X`
//! is inverted through the matrix inversion lemma on the `n x n` system of the `n`
//! labelled photos (`n` is far below the 1282 columns in a labelling session), so one fit
//! takes milliseconds. With the prior `none` the `z0` column is left out and `theta0 = 0`:
//! a plain logistic regression on the features, what a classifier knows without the head.

use anyhow::{ensure, Result};
use tch::{Device, Kind, Tensor};

/// Added to the probabilities before the logarithm of `z0` (keeps it finite: |z0| < 28).
const PROB_EPS: f64 = 1e-12;
/// Smallest feature standard deviation used to scale (constant features stay 0).
const MIN_STD: f64 = 1e-6;
/// Newton stops when no weight moves by more than this.
const STEP_TOL: f64 = 1e-9;
/// At most this many Newton steps.
const MAX_STEPS: usize = 100;
/// Sufficient decrease of the line search (Armijo constant).
const ARMIJO: f64 = 1e-4;
/// Smallest step fraction the line search tries.
const MIN_STEP: f64 = 1e-10;

/// Where the weights start and what the penalty pulls them to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// The ImageNet head's cat/dog direction: 0 labels = the zero-shot rule.
    ZeroShot,
    /// Nothing: zero weights on the features alone (p = 0.5 before any label).
    None,
}

impl Prior {
    /// `zero-shot` or `none` (the config's names).
    pub fn name(self) -> &'static str {
        match self {
            Prior::ZeroShot => "zero-shot",
            Prior::None => "none",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Prior> {
        [Prior::ZeroShot, Prior::None]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// The photos as the classifier sees them.
#[derive(Debug)]
pub struct Design {
    /// `(N, D)` float64: standardised features, `z0` (zero-shot prior only), 1.
    pub x: Tensor,
    /// `(D,)` float64: the starting weights.
    pub theta0: Tensor,
}

impl Design {
    /// The design of `features` `(N, F)` and zero-shot probabilities `probs` `(N, 3)`
    /// (cat, dog, neither) for `prior`.
    ///
    /// # Errors
    /// The shapes disagree.
    pub fn new(features: &Tensor, probs: &Tensor, prior: Prior) -> Result<Design> {
        let n = features.size()[0];
        ensure!(
            features.dim() == 2 && probs.size() == [n, 3],
            "features {:?} and probabilities {:?}: expected (N, F) and (N, 3)",
            features.size(),
            probs.size()
        );
        let f = features.to_kind(Kind::Double);
        let std = f.std_dim(0, false, true).clamp_min(MIN_STD);
        let mean = f.mean_dim(0, true, Kind::Double);
        let mut columns = vec![(f - mean) / std];
        if prior == Prior::ZeroShot {
            columns.push(zero_shot_log_odds(probs).unsqueeze(1));
        }
        columns.push(Tensor::ones([n, 1], (Kind::Double, Device::Cpu)));
        let x = Tensor::cat(&columns, 1);
        let d = x.size()[1];
        let theta0 = Tensor::zeros([d], (Kind::Double, Device::Cpu));
        if prior == Prior::ZeroShot {
            let _ = theta0.get(d - 2).fill_(1.0);
        }
        Ok(Design { x, theta0 })
    }

    /// Rows (photos).
    pub fn len(&self) -> usize {
        self.x.size()[0] as usize
    }

    /// True without photos.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `ln p_dog - ln p_cat` `(N,)` float64 from `(N, 3)` probabilities.
fn zero_shot_log_odds(probs: &Tensor) -> Tensor {
    let p = probs.to_kind(Kind::Double);
    let log = |c: i64| (p.select(1, c) + PROB_EPS).log();
    log(1) - log(0)
}

/// Fitted weights.
#[derive(Debug)]
pub struct LogisticRegression {
    /// `(D,)` float64.
    pub theta: Tensor,
    /// Newton steps taken.
    pub steps: usize,
}

impl LogisticRegression {
    /// Fits on the photos `rows` of `design` with targets `dog` (true = dog), inverse
    /// penalty `c`. Without rows the weights are `theta0`.
    ///
    /// # Errors
    /// `rows` and `dog` differ in length, or a row is out of range.
    pub fn fit(design: &Design, rows: &[i64], dog: &[bool], c: f64) -> Result<Self> {
        ensure!(
            rows.len() == dog.len(),
            "{} rows but {} targets",
            rows.len(),
            dog.len()
        );
        let n = design.len() as i64;
        ensure!(
            rows.iter().all(|&r| (0..n).contains(&r)),
            "a labelled row is outside the {n} photos"
        );
        let mut theta = design.theta0.copy();
        if rows.is_empty() {
            return Ok(LogisticRegression { theta, steps: 0 });
        }
        let x = design.x.index_select(0, &Tensor::from_slice(rows));
        let y = Tensor::from_slice(
            &dog.iter()
                .map(|&d| f64::from(u8::from(d)))
                .collect::<Vec<_>>(),
        );
        let problem = Problem {
            x: &x,
            y: &y,
            theta0: &design.theta0,
            c,
        };
        let mut steps = 0;
        while steps < MAX_STEPS {
            steps += 1;
            let moved = problem.newton_step(&mut theta);
            if moved < STEP_TOL {
                break;
            }
        }
        Ok(LogisticRegression { theta, steps })
    }

    /// `p(dog)` of every photo of `design`, `(N,)` as a vector.
    pub fn predict(&self, design: &Design) -> Vec<f64> {
        let p = design.x.mv(&self.theta).sigmoid();
        Vec::<f64>::try_from(p).unwrap_or_default()
    }
}

/// The objective on the labelled rows.
struct Problem<'a> {
    x: &'a Tensor,
    y: &'a Tensor,
    theta0: &'a Tensor,
    c: f64,
}

impl Problem<'_> {
    /// `||theta - theta0||^2 / 2 + c * sum softplus(z) - y z`.
    fn objective(&self, theta: &Tensor) -> f64 {
        let z = self.x.mv(theta);
        let softplus = z.clamp_min(0.0) + (-z.abs()).exp().log1p();
        let loss = (softplus - &z * self.y).sum(Kind::Double);
        let d = theta - self.theta0;
        (d.dot(&d) * 0.5 + loss * self.c).double_value(&[])
    }

    /// One Newton step with backtracking; returns the largest weight change.
    fn newton_step(&self, theta: &mut Tensor) -> f64 {
        let s = self.x.mv(theta).sigmoid();
        let g = (&*theta - self.theta0) + self.x.tr().mv(&(&s - self.y)) * self.c;
        let u = (&s * (-&s + 1.0) * self.c).sqrt();
        let big_u = self.x * u.unsqueeze(1);
        let n = big_u.size()[0];
        let m = Tensor::eye(n, (Kind::Double, Device::Cpu)) + big_u.mm(&big_u.tr());
        let rhs = big_u.mv(&g).unsqueeze(1);
        let inner = Tensor::linalg_solve(&m, &rhs, true).squeeze_dim(1);
        let delta = &g - big_u.tr().mv(&inner);
        let (j0, slope) = (self.objective(theta), g.dot(&delta).double_value(&[]));
        let mut t = 1.0;
        while t > MIN_STEP {
            let trial = &*theta - &delta * t;
            if self.objective(&trial) <= j0 - ARMIJO * t * slope {
                let moved = (&delta * t).abs().max().double_value(&[]);
                *theta = trial;
                return moved;
            }
            t *= 0.5;
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clouds in 6-d features, and zero-shot probabilities that get `wrong` of them wrong.
    fn toy(n: i64, wrong: i64) -> (Tensor, Tensor, Vec<bool>) {
        tch::manual_seed(3);
        let dog: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
        let sign = Tensor::from_slice(
            &dog.iter()
                .map(|&d| if d { 1.0f32 } else { -1.0 })
                .collect::<Vec<_>>(),
        );
        let features = Tensor::randn([n, 6], (Kind::Float, Device::Cpu)) + sign.unsqueeze(1) * 1.5;
        let p_dog: Vec<f32> = (0..n)
            .map(|i| {
                let right = if dog[i as usize] { 0.8 } else { 0.2 };
                if i < wrong {
                    1.0 - right
                } else {
                    right
                }
            })
            .collect();
        let p_dog = Tensor::from_slice(&p_dog);
        let probs = Tensor::stack(
            &[-&p_dog + 1.0, p_dog.shallow_clone(), p_dog.zeros_like()],
            1,
        ) * 0.9;
        (features, probs, dog)
    }

    fn accuracy(p: &[f64], dog: &[bool]) -> f64 {
        let right = p
            .iter()
            .zip(dog)
            .filter(|(p, d)| (**p > 0.5) == **d)
            .count();
        right as f64 / p.len() as f64
    }

    #[test]
    fn without_labels_it_is_the_zero_shot_rule() {
        let (features, probs, _) = toy(40, 6);
        let d = Design::new(&features, &probs, Prior::ZeroShot).unwrap();
        let fit = LogisticRegression::fit(&d, &[], &[], 1.0).unwrap();
        let p = fit.predict(&d);
        for (i, p) in p.iter().enumerate() {
            let zs = probs.double_value(&[i as i64, 1])
                / (probs.double_value(&[i as i64, 0]) + probs.double_value(&[i as i64, 1]));
            assert!((p - zs).abs() < 1e-9, "{i}: {p} vs {zs}");
        }
        let cold = Design::new(&features, &probs, Prior::None).unwrap();
        let p = LogisticRegression::fit(&cold, &[], &[], 1.0)
            .unwrap()
            .predict(&cold);
        assert!(p.iter().all(|&p| p == 0.5));
    }

    #[test]
    fn labels_fix_the_zero_shot_mistakes_and_newton_converges() {
        let (features, probs, dog) = toy(60, 8);
        let d = Design::new(&features, &probs, Prior::ZeroShot).unwrap();
        let before = accuracy(
            &LogisticRegression::fit(&d, &[], &[], 1.0)
                .unwrap()
                .predict(&d),
            &dog,
        );
        assert!((before - 52.0 / 60.0).abs() < 1e-9, "{before}");
        let rows: Vec<i64> = (0..20).collect();
        let y: Vec<bool> = dog[..20].to_vec();
        let fit = LogisticRegression::fit(&d, &rows, &y, 1.0).unwrap();
        assert!(fit.steps < MAX_STEPS, "no convergence");
        let after = accuracy(&fit.predict(&d), &dog);
        assert!(after > before, "{after} <= {before}");
        // At the optimum the gradient vanishes.
        let x = d.x.index_select(0, &Tensor::from_slice(&rows));
        let yt = Tensor::from_slice(
            &y.iter()
                .map(|&b| f64::from(u8::from(b)))
                .collect::<Vec<_>>(),
        );
        let g = (&fit.theta - &d.theta0) + x.tr().mv(&(x.mv(&fit.theta).sigmoid() - yt));
        assert!(g.abs().max().double_value(&[]) < 1e-6);
        assert_eq!(Prior::parse("none"), Some(Prior::None));
        assert_eq!(
            Prior::parse("zero-shot").map(Prior::name),
            Some("zero-shot")
        );
    }
}

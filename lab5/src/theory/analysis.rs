//! Convolution in the sense of analysis, checked numerically:
//! - the integral `(f * g)(t) = ∫ f(τ) g(t − τ) dτ`, evaluated as a Riemann sum for two
//!   Gaussian densities and compared with the exact answer (a Gaussian whose variance is the
//!   sum of the two);
//! - the Dirac delta as the identity of convolution: unit-area Gaussians `δ_ε` narrower and
//!   narrower give `f * δ_ε → f`, and `f * δ(· − a) = f(· − a)` (a shift);
//! - commutativity and associativity of the discrete convolution, and that the
//!   cross-correlation of a conv layer is **not** commutative;
//! - the convolution theorem `F{f * g} = F{f} · F{g}` for the circular convolution, in 1-D and
//!   on a real photo in 2-D (libtorch's `fft_rfft2` against `conv2d` with circular padding).
//!
//! Source: Goodfellow, Bengio & Courville, *Deep Learning* (2016) §9.1 (eq. 9.1–9.6);
//! Oppenheim & Willsky, *Signals and Systems* (2nd ed., 1997) ch. 2 and 4.

use super::photo::grey;
use crate::plot::{self, Figure, Line, Table};
use anyhow::Result;
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

/// Half-width of the time axis of the continuous examples.
const T_MAX: f64 = 6.0;
/// Step of the Riemann sums.
const DT: f64 = 0.01;
/// Widths of the Gaussian approximations of δ shown.
pub const EPSILONS: [f64; 3] = [1.0, 0.3, 0.05];
/// The shift `a` of `δ(t − a)`.
const SHIFT: f64 = 1.5;

/// The density of N(0, σ²) at `t`.
fn gauss(t: f64, sigma: f64) -> f64 {
    (-(t * t) / (2.0 * sigma * sigma)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
}

/// The signal `f` of the delta examples: smooth and asymmetric (two bumps of different heights).
pub(crate) fn f(t: f64) -> f64 {
    (-(t - 0.5) * (t - 0.5)).exp() + 0.5 * (-4.0 * (t + 1.5) * (t + 1.5)).exp()
}

/// The time grid `-T_MAX ..= T_MAX` in steps of [`DT`].
pub(crate) fn grid() -> Vec<f64> {
    let n = (2.0 * T_MAX / DT).round() as i64;
    (0..=n).map(|i| -T_MAX + i as f64 * DT).collect()
}

/// `(f * g)(t) = ∫ f(τ) g(t − τ) dτ` at every grid point, as a Riemann sum over the grid.
pub(crate) fn convolve(f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> Vec<f64> {
    let ts = grid();
    let fs: Vec<f64> = ts.iter().map(|&t| f(t)).collect();
    ts.iter()
        .map(|&t| {
            ts.iter()
                .zip(&fs)
                .map(|(&tau, &ft)| ft * g(t - tau))
                .sum::<f64>()
                * DT
        })
        .collect()
}

/// Largest absolute difference between two equally long sequences.
pub(crate) fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `max |(N(0,σ1²) * N(0,σ2²))(t) − N(0, σ1²+σ2²)(t)|` for σ1 = 1, σ2 = 0.5.
pub(crate) fn gaussians_error() -> f64 {
    let (s1, s2) = (1.0, 0.5);
    let num = convolve(|t| gauss(t, s1), |t| gauss(t, s2));
    let exact: Vec<f64> = grid().iter().map(|&t| gauss(t, s1.hypot(s2))).collect();
    max_diff(&num, &exact)
}

/// `max |f * δ_ε(· − a) − f(· − a)|` over `|t| ≤ T_MAX − 2` (away from the grid's ends).
pub(crate) fn delta_error(eps: f64, a: f64) -> f64 {
    let conv = convolve(f, |t| gauss(t - a, eps));
    let inner = |t: &f64| t.abs() <= T_MAX - 2.0;
    let ts = grid();
    let (num, exact): (Vec<f64>, Vec<f64>) = ts
        .iter()
        .zip(&conv)
        .filter(|(t, _)| inner(t))
        .map(|(&t, &c)| (c, f(t - a)))
        .unzip();
    max_diff(&num, &exact)
}

/// The full discrete convolution `(x * h)[n] = Σ_k x[k] h[n − k]`.
pub(crate) fn conv_full(x: &[f64], h: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len() + h.len() - 1];
    for (i, xi) in x.iter().enumerate() {
        for (j, hj) in h.iter().enumerate() {
            y[i + j] += xi * hj;
        }
    }
    y
}

/// The full cross-correlation `(x ⋆ h)[m] = Σ_k x[k + m] h[k]`, lags `m = −(|h|−1) ..= |x|−1`.
pub(crate) fn correlate_full(x: &[f64], h: &[f64]) -> Vec<f64> {
    let flipped: Vec<f64> = h.iter().rev().copied().collect();
    conv_full(x, &flipped)
}

/// Circular convolution of two sequences of equal length `n`, by the definition.
pub(crate) fn circular(x: &[f64], h: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| (0..n).map(|k| x[k] * h[(i + n - k) % n]).sum())
        .collect()
}

/// Circular convolution through the FFT: `IFFT(FFT(x) · FFT(h))` (libtorch).
pub(crate) fn circular_fft(x: &[f64], h: &[f64]) -> Result<Vec<f64>> {
    let t = |v: &[f64]| Tensor::from_slice(v).fft_fft(None, 0, "backward");
    super::values(&(t(x) * t(h)).fft_ifft(None, 0, "backward").real())
}

/// A short signal and two kernels for the discrete checks.
const X: [f64; 8] = [0.0, 1.0, 3.0, -2.0, 0.5, 4.0, 1.0, -1.0];
const H1: [f64; 3] = [1.0, 0.5, 0.25];
const H2: [f64; 4] = [0.2, -1.0, 0.0, 0.6];

/// `(x * h1) * h2` vs `x * (h1 * h2)`.
fn associativity() -> f64 {
    max_diff(
        &conv_full(&conv_full(&X, &H1), &H2),
        &conv_full(&X, &conv_full(&H1, &H2)),
    )
}

/// The 3x3 kernel of the 2-D check (asymmetric, so a missing flip would show).
const K2: [[f64; 3]; 3] = [[0.0, 1.0, 0.5], [-1.0, 2.0, 0.0], [0.25, 0.0, -0.5]];

/// Circular 2-D convolution of `(S, S)` with [`K2`] (centred): `conv2d` of the circularly
/// padded map with the flipped kernel, vs `irfft2(rfft2(x) · rfft2(k))` with the kernel
/// embedded in an `S x S` array (centre at (0, 0)); largest difference.
pub(crate) fn fft2_error(x: &Tensor) -> Result<f64> {
    let n = x.size()[1];
    let k = Tensor::from_slice(&K2.concat()).view([3, 3]);
    let direct = x
        .view([1, 1, n, n])
        .pad([1, 1, 1, 1], "circular", None::<f64>)
        .conv2d(
            &k.flip([0, 1]).view([1, 1, 3, 3]),
            None::<Tensor>,
            [1],
            [0],
            [1],
            1,
        )
        .view([n, n]);
    let embedded = Tensor::zeros([n, n], (Kind::Double, Device::Cpu));
    let mut corner = embedded.narrow(0, 0, 3).narrow(1, 0, 3);
    corner.f_copy_(&k)?;
    let kf = embedded
        .roll([-1, -1], [0, 1])
        .fft_rfft2(None::<&[i64]>, [0, 1], "backward");
    let xf = x.view([n, n]).fft_rfft2(None::<&[i64]>, [0, 1], "backward");
    let via_fft = (xf * kf).fft_irfft2([n, n].as_slice(), [0, 1], "backward");
    super::scalar(&(direct - via_fft).abs().max())
}

/// One checked statement.
struct Check {
    statement: String,
    difference: f64,
}

fn check(statement: impl Into<String>, difference: f64) -> Check {
    Check {
        statement: statement.into(),
        difference,
    }
}

/// The discrete and Fourier checks (the continuous ones are in [`continuous_checks`]).
fn discrete_checks(photo: &Tensor) -> Result<Vec<Check>> {
    let n = X.len();
    let mut h = H1.to_vec();
    h.resize(n, 0.0);
    Ok(vec![
        check(
            "commutative: x * h = h * x",
            max_diff(&conv_full(&X, &H1), &conv_full(&H1, &X)),
        ),
        check(
            "associative: (x * h1) * h2 = x * (h1 * h2)",
            associativity(),
        ),
        check(
            "cross-correlation is NOT commutative: x ⋆ h vs h ⋆ x (mirrored)",
            max_diff(&correlate_full(&X, &H1), &correlate_full(&H1, &X)),
        ),
        check(
            "convolution theorem, 1-D: circular x * h = IFFT(FFT(x) · FFT(h))",
            max_diff(&circular(&X, &h), &circular_fft(&X, &h)?),
        ),
        check(
            "convolution theorem, 2-D, the photo (grey, 112x112) with a 3x3 kernel: conv2d vs FFT",
            fft2_error(&grey(photo).to_kind(Kind::Double))?,
        ),
    ])
}

/// The integral, the Gaussians and the delta checks.
fn continuous_checks() -> Vec<Check> {
    let mut out = vec![check(
        "∫ N(0,1)(τ) N(0,0.25)(t−τ) dτ = N(0,1.25)(t) (Riemann sum, dτ = 0.01)",
        gaussians_error(),
    )];
    for eps in EPSILONS {
        out.push(check(
            format!("f * δ_ε → f, ε = {eps}"),
            delta_error(eps, 0.0),
        ));
    }
    let last = EPSILONS[EPSILONS.len() - 1];
    out.push(check(
        format!("f * δ_ε(· − {SHIFT}) → f(· − {SHIFT}) (a shift), ε = {last}"),
        delta_error(last, SHIFT),
    ));
    out
}

/// Every check as a table: the statement and the largest difference between its two sides.
pub fn checks_table(photo: &Tensor) -> Result<Table> {
    let rows: Vec<Check> = continuous_checks()
        .into_iter()
        .chain(discrete_checks(photo)?)
        .collect();
    let df = df!(
        "statement" => rows.iter().map(|c| c.statement.clone()).collect::<Vec<_>>(),
        "max |left − right|" => rows.iter().map(|c| format!("{:.1e}", c.difference)).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

/// `f` and `f * δ_ε` for each of [`EPSILONS`], on `|t| ≤ 4`.
pub fn delta_figure() -> Result<Figure> {
    let ts = grid();
    let keep = |pts: Vec<(f64, f64)>| pts.into_iter().filter(|(t, _)| t.abs() <= 4.0).collect();
    let mut lines = vec![Line::new(
        "f",
        keep(ts.iter().map(|&t| (t, f(t))).collect()),
    )];
    for eps in EPSILONS {
        let c = convolve(f, |t| gauss(t, eps));
        let pts = ts.iter().copied().zip(c).collect();
        lines.push(Line::new(&format!("f * δ_ε, ε = {eps}"), keep(pts)));
    }
    plot::line_chart(
        "A narrower and narrower unit-area pulse δ_ε: f * δ_ε → f (δ is the identity of *)",
        "t",
        "value",
        &lines,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_convolution_and_delta_limit() {
        assert!(gaussians_error() < 1e-6, "{}", gaussians_error());
        let errs: Vec<f64> = EPSILONS.iter().map(|&e| delta_error(e, 0.0)).collect();
        assert!(errs.windows(2).all(|w| w[1] < w[0]), "{errs:?}");
        assert!(errs[EPSILONS.len() - 1] < 1e-2, "{errs:?}");
        assert!(delta_error(0.05, SHIFT) < 1e-2);
        assert!(delta_figure().unwrap().svg().contains("ε = 0.05"));
    }

    #[test]
    fn discrete_laws_and_convolution_theorem() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let cat = super::super::photo::photo(&cfg, crate::data::Class::Cat, 0).unwrap();
        let c = discrete_checks(&cat).unwrap();
        let d: Vec<f64> = c.iter().map(|c| c.difference).collect();
        assert!(d[0] < 1e-12 && d[1] < 1e-12, "{d:?}");
        assert!(d[2] > 0.5, "correlation must not commute: {d:?}");
        assert!(d[3] < 1e-9 && d[4] < 1e-9, "{d:?}");
        assert_eq!(
            checks_table(&cat).unwrap().0.height(),
            5 + 2 + EPSILONS.len()
        );
    }
}

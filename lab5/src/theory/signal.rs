//! Convolution as in signal analysis: a unit impulse convolved with a kernel gives back the
//! kernel (the impulse response), and a sum of shifted, scaled impulses gives the sum of
//! shifted, scaled copies (linearity and shift invariance). Conv layers compute the
//! cross-correlation instead: the same sum without flipping the kernel, which shows as a
//! mirrored response. Both are computed by libtorch's `conv1d`.

use super::values;
use crate::plot::{self, Figure};
use anyhow::Result;
use tch::{Kind, Tensor};

/// Samples in the input signal.
pub(crate) const SIGNAL_LEN: usize = 48;
/// Where the unit impulse sits.
pub(crate) const IMPULSE_AT: usize = 10;
/// A second, half-height impulse (shows linearity and shift invariance).
pub(crate) const SECOND_IMPULSE_AT: usize = 30;
/// Height of the second impulse.
pub(crate) const SECOND_IMPULSE_HEIGHT: f64 = 0.5;
/// A causal, decaying kernel (an "echo"): asymmetric, so flipping it is visible.
pub(crate) const KERNEL: [f64; 8] = [1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.05];

/// The signals of the demonstration.
#[derive(Debug, Clone, PartialEq)]
pub struct Impulse {
    /// The input x[n]: two impulses.
    pub input: Vec<f64>,
    /// The kernel h[k].
    pub kernel: Vec<f64>,
    /// The convolution (x * h)[n] = sum_k x[n-k] h[k], same length as the input.
    pub convolution: Vec<f64>,
    /// The cross-correlation sum_k x[n+k] h[k] (what a conv layer computes).
    pub correlation: Vec<f64>,
}

/// Runs `conv1d` of `x` with kernel `h` (no flipping), zero-padded by `left` and `right`.
fn correlate(x: &[f64], h: &[f64], left: usize, right: usize) -> Result<Vec<f64>> {
    let xs = Tensor::from_slice(x).to_kind(Kind::Float).view([1, 1, -1]);
    let xs = xs.constant_pad_nd([left as i64, right as i64]);
    let w = Tensor::from_slice(h).to_kind(Kind::Float).view([1, 1, -1]);
    values(&xs.conv1d(&w, None::<Tensor>, [1], [0], [1], 1))
}

/// Convolution (flipped kernel, causal: output n sees inputs n, n-1, ...) and
/// cross-correlation (kernel as is, output n sees inputs n, n+1, ...) of `x` with `h`.
pub(crate) fn convolve_and_correlate(x: &[f64], h: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let pad = h.len().saturating_sub(1);
    let flipped: Vec<f64> = h.iter().rev().copied().collect();
    let conv = correlate(x, &flipped, pad, 0)?;
    let corr = correlate(x, h, 0, pad)?;
    Ok((conv, corr))
}

/// The demonstration: two impulses through [`KERNEL`].
pub fn impulse() -> Result<Impulse> {
    let mut input = vec![0.0; SIGNAL_LEN];
    input[IMPULSE_AT] = 1.0;
    input[SECOND_IMPULSE_AT] = SECOND_IMPULSE_HEIGHT;
    let (convolution, correlation) = convolve_and_correlate(&input, &KERNEL)?;
    Ok(Impulse {
        input,
        kernel: KERNEL.to_vec(),
        convolution,
        correlation,
    })
}

impl Impulse {
    /// Stem plots, one under another: input, kernel, convolution, cross-correlation.
    pub fn figure(&self) -> Result<Figure> {
        let signals = [
            (
                format!("input x[n]: impulses at n = {IMPULSE_AT} and {SECOND_IMPULSE_AT}"),
                self.input.clone(),
            ),
            ("kernel h[k]".to_string(), self.kernel.clone()),
            (
                "convolution (x * h)[n]: a copy of h at each impulse".to_string(),
                self.convolution.clone(),
            ),
            (
                "cross-correlation (what a conv layer computes): h mirrored".to_string(),
                self.correlation.clone(),
            ),
        ];
        plot::signal_plot("A 1-D impulse convolved with a kernel", &signals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impulse_response_is_the_kernel_and_correlation_mirrors_it() {
        let d = impulse().unwrap();
        let n = KERNEL.len();
        let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(
            near(&d.convolution[IMPULSE_AT..IMPULSE_AT + n], &KERNEL),
            "{:?}",
            d.convolution
        );
        let half: Vec<f64> = KERNEL.iter().map(|k| k * SECOND_IMPULSE_HEIGHT).collect();
        assert!(near(
            &d.convolution[SECOND_IMPULSE_AT..SECOND_IMPULSE_AT + n],
            &half
        ));
        let mirrored: Vec<f64> = KERNEL.iter().rev().copied().collect();
        assert!(
            near(&d.correlation[IMPULSE_AT + 1 - n..=IMPULSE_AT], &mirrored),
            "{:?}",
            d.correlation
        );
        assert_eq!(d.convolution.len(), SIGNAL_LEN);
        assert!(d.figure().unwrap().svg().contains("kernel"));
    }
}

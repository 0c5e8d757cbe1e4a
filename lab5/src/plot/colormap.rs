//! Colour scales for heat maps: viridis for values, white-to-blue for counts, jet for
//! Grad-CAM overlays (the scale of the Grad-CAM paper's figures).

use plotters::style::RGBColor;

/// Viridis sampled at nine evenly spaced points (matplotlib's values).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];
/// The darkest blue of the count scale (matplotlib's "Blues" end).
const BLUE_END: (u8, u8, u8) = (8, 48, 107);
/// Below this brightness (0..255) text on a cell is drawn white.
const DARK_BELOW: f64 = 140.0;

fn lerp(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> RGBColor {
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis colour of `t` in 0..=1 (clamped; NaN maps to the low end).
pub(crate) fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    lerp(VIRIDIS[i], VIRIDIS[i + 1], pos - i as f64)
}

/// Jet (MATLAB's and the Grad-CAM paper's scale): dark blue (0), cyan, yellow, dark red
/// (1), as three clamped ramps; clamped to 0..=1, NaN maps to the low end.
pub(crate) fn jet(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let ramp =
        |centre: f64| ((1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(ramp(3.0), ramp(2.0), ramp(1.0))
}

/// White (0) to dark blue (1).
pub(crate) fn blues(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    lerp((255, 255, 255), BLUE_END, t)
}

/// Whether text drawn on `c` should be white to stay readable.
pub(crate) fn is_dark(c: RGBColor) -> bool {
    0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2) < DARK_BELOW
}

/// White or black, whichever reads better on `bg`.
pub(crate) fn ink_on(bg: RGBColor) -> &'static RGBColor {
    if is_dark(bg) {
        &plotters::style::WHITE
    } else {
        &plotters::style::BLACK
    }
}

/// `v` scaled to 0..=1 within `lo..=hi` (0.5 when the range is empty).
pub(crate) fn unit(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        (v - lo) / (hi - lo)
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_hit_their_ends_and_contrast_flips() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(blues(0.0), RGBColor(255, 255, 255));
        assert!(is_dark(blues(1.0)) && !is_dark(blues(0.0)));
        assert_eq!(unit(5.0, 0.0, 10.0), 0.5);
        assert_eq!(jet(0.0), RGBColor(0, 0, 128));
        assert_eq!(jet(0.5), RGBColor(128, 255, 128));
        assert_eq!(jet(1.0), RGBColor(128, 0, 0));
    }
}

//! 1-D signals as stem plots stacked one under another on a shared x axis (the theory
//! notebook: an impulse, a kernel, and their convolution).

use super::canvas::{plot_err, Chart};
use super::figure::Figure;
use super::range::{padded, with_zero};
use super::style::{self, LABEL_PX};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;

/// Width of the figure.
const WIDTH: u32 = 900;
/// Height of each stacked panel.
const PANEL_H: u32 = 230;
/// Height of the figure title.
const TITLE_H: u32 = 50;
/// Tick labels on each panel's y axis.
const Y_TICKS: usize = 5;
/// Radius of the stem heads.
const HEAD_R: u32 = 5;

struct Signals {
    title: String,
    signals: Vec<(String, Vec<f64>)>,
}

/// Stem plots of `signals` (name, samples at x = 0, 1, 2, ...), one panel each.
pub(crate) fn signal_plot(title: &str, signals: &[(String, Vec<f64>)]) -> Result<Figure> {
    if signals.is_empty() {
        bail!("signal plot {title:?} needs at least one signal");
    }
    if let Some((name, _)) = signals.iter().find(|(_, v)| v.is_empty()) {
        bail!("signal {name:?} has no samples");
    }
    let size = (WIDTH, TITLE_H + PANEL_H * signals.len() as u32);
    Figure::new(
        title,
        size,
        Signals {
            title: title.into(),
            signals: signals.to_vec(),
        },
    )
}

impl Chart for Signals {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = style::titled(root, &self.title)?;
        let longest = self.signals.iter().map(|s| s.1.len()).max().unwrap_or(1);
        let xs = -0.5..longest as f64 - 0.5;
        let panels = body.split_evenly((self.signals.len(), 1));
        for ((name, values), area) in self.signals.iter().zip(&panels) {
            stems(area, name, values, xs.clone())?;
        }
        Ok(())
    }
}

/// One panel: a stem per sample, from zero to the value, with a dot on top.
fn stems<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    values: &[f64],
    xs: Range<f64>,
) -> Result<()> {
    let ys = with_zero(padded(values.iter().copied(), &format!("signal {name:?}"))?);
    let mut chart = style::xy_chart(area, name, xs, ys)?;
    mesh(&mut chart)?;
    let color = style::color(0, 1);
    let samples = finite_samples(values);
    let stem =
        |&(x, v): &(f64, f64)| PathElement::new(vec![(x, 0.0), (x, v)], color.stroke_width(2));
    chart
        .draw_series(samples.iter().map(stem))
        .map_err(plot_err)?;
    let head = |&p: &(f64, f64)| Circle::new(p, HEAD_R, color.filled());
    chart
        .draw_series(samples.iter().map(head))
        .map_err(plot_err)?;
    Ok(())
}

/// Few y ticks (panels are short) and sample indices on x.
fn mesh<DB: DrawingBackend>(chart: &mut style::Xy<'_, DB>) -> Result<()> {
    chart
        .configure_mesh()
        .y_labels(Y_TICKS)
        .x_label_formatter(&style::whole_tick)
        .label_style(style::text(LABEL_PX))
        .draw()
        .map_err(plot_err)
}

/// `(index, value)` of the finite samples.
fn finite_samples(values: &[f64]) -> Vec<(f64, f64)> {
    let finite = values.iter().enumerate().filter(|p| p.1.is_finite());
    finite.map(|(i, &v)| (i as f64, v)).collect()
}

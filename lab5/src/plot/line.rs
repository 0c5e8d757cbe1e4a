//! Line charts: several named series on shared axes, and the learning curves of a
//! training run (loss and accuracy, train vs validation) built on them.

use super::canvas::{plot_err, Chart};
use super::figure::Figure;
use super::range::padded;
use super::style::{self, Xy, CHART_SIZE, LINE_WIDTH};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Size of the two-panel learning-curves figure.
const CURVES_SIZE: (u32, u32) = (1300, 540);
/// Radius of the dots drawn on a series with `dots`, pixels.
const DOT_RADIUS: i32 = 6;

/// One named line: `(x, y)` points in order; non-finite points are left out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// Legend entry.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Line {
    /// A series from explicit points.
    pub(crate) fn new(name: &str, points: Vec<(f64, f64)>) -> Line {
        Line {
            name: name.to_string(),
            points,
        }
    }

    /// A series of per-epoch values, x = 1, 2, 3, ...
    pub(crate) fn per_epoch(name: &str, values: &[f64]) -> Line {
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        Line::new(name, points)
    }

    fn finite(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// One panel: axes, lines, legend, and an optional vertical marker (e.g. the best epoch).
#[derive(Debug, Clone)]
pub(crate) struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Line>,
    /// Reference lines (e.g. chance), drawn dashed grey under the series.
    pub guides: Vec<Line>,
    pub marker: Option<(f64, String)>,
    /// Whether x holds whole numbers (epochs): ticks between them stay blank.
    pub whole_x: bool,
    /// Whether each point is also drawn as a dot (few points, e.g. a reliability diagram,
    /// where a series of one point would otherwise not show).
    pub dots: bool,
}

/// Panels drawn side by side.
pub(crate) struct LineChart {
    pub title: String,
    pub panels: Vec<LinePanel>,
}

/// A chart of several named series sharing one pair of axes.
pub(crate) fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line],
) -> Result<Figure> {
    let panel = LinePanel {
        title: String::new(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        series: series.to_vec(),
        guides: Vec::new(),
        marker: None,
        whole_x: false,
        dots: false,
    };
    let chart = LineChart {
        title: title.into(),
        panels: vec![panel],
    };
    Figure::new(title, CHART_SIZE, chart)
}

/// A reliability diagram: each model's accuracy against its mean confidence per bin, and
/// the `diagonal` of perfect calibration drawn dashed.
pub(crate) fn reliability_diagram(title: &str, series: &[Line], diagonal: Line) -> Result<Figure> {
    let panel = LinePanel {
        title: String::new(),
        x_label: "confidence (probability of the class predicted)".into(),
        y_label: "accuracy".into(),
        series: series.to_vec(),
        guides: vec![diagonal],
        marker: None,
        whole_x: false,
        dots: true,
    };
    let chart = LineChart {
        title: title.into(),
        panels: vec![panel],
    };
    Figure::new(title, CHART_SIZE, chart)
}

/// Side-by-side panels sharing the axis names, each with its series and dashed guides
/// (reference levels such as a baseline's accuracy), under one title; `panels` holds
/// `(panel title, series, guides)`.
pub(crate) fn line_panels(
    title: &str,
    (x_label, y_label): (&str, &str),
    panels: Vec<(String, Vec<Line>, Vec<Line>)>,
) -> Result<Figure> {
    let panels: Vec<LinePanel> = panels
        .into_iter()
        .map(|(name, series, guides)| LinePanel {
            title: name,
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
            guides,
            marker: None,
            whole_x: true,
            dots: false,
        })
        .collect();
    let width = CURVES_SIZE
        .0
        .max(CHART_SIZE.0 * panels.len() as u32 * 3 / 4);
    let chart = LineChart {
        title: title.into(),
        panels,
    };
    Figure::new(title, (width, CURVES_SIZE.1 + 60), chart)
}

/// Per-epoch metrics of a training run, as plain vectors (index 0 = epoch 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Curves {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub val_loss: Vec<f64>,
    /// Training accuracy per epoch (0..1).
    pub train_acc: Vec<f64>,
    /// Validation accuracy per epoch (0..1).
    pub val_acc: Vec<f64>,
    /// The epoch (1-based) whose weights were kept, marked on both panels.
    pub best_epoch: Option<usize>,
}

/// Learning curves: loss (left) and accuracy (right), train vs validation.
pub(crate) fn learning_curves(title: &str, c: &Curves) -> Result<Figure> {
    if c.train_loss.is_empty() && c.val_loss.is_empty() {
        bail!("no epochs to plot: the run has an empty history; train it first");
    }
    let marker = c.best_epoch.map(|e| (e as f64, format!("best epoch {e}")));
    let panels = vec![
        curves_panel("loss", &c.train_loss, &c.val_loss, marker.clone()),
        curves_panel("accuracy", &c.train_acc, &c.val_acc, marker),
    ];
    let chart = LineChart {
        title: title.into(),
        panels,
    };
    Figure::new(title, CURVES_SIZE, chart)
}

/// One learning-curves panel: `name` per epoch, train vs validation.
fn curves_panel(
    name: &str,
    train: &[f64],
    val: &[f64],
    marker: Option<(f64, String)>,
) -> LinePanel {
    LinePanel {
        title: name.into(),
        x_label: "epoch".into(),
        y_label: name.into(),
        series: vec![
            Line::per_epoch("train", train),
            Line::per_epoch("validation", val),
        ],
        guides: Vec::new(),
        marker,
        whole_x: true,
        dots: false,
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = style::titled(root, &self.title)?;
        let areas = body.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            panel.draw(area)?;
        }
        Ok(())
    }
}

impl LinePanel {
    /// Draws this panel filling `area`.
    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let points: Vec<_> = self
            .series
            .iter()
            .chain(&self.guides)
            .flat_map(|s| s.finite())
            .collect();
        let xs = padded(points.iter().map(|p| p.0), "the x axis")?;
        let ys = padded(points.iter().map(|p| p.1), "the y axis")?;
        let mut chart = style::xy_chart(area, &self.title, xs.clone(), ys.clone())?;
        style::xy_mesh(&mut chart, &self.x_label, &self.y_label, self.whole_x)?;
        self.draw_marker(&mut chart, ys.clone())?;
        self.draw_guides(&mut chart)?;
        self.draw_series(&mut chart)?;
        style::legend(&mut chart, style::emptiest_corner(&points, &xs, &ys))
    }

    fn draw_marker<DB: DrawingBackend>(
        &self,
        chart: &mut Xy<'_, DB>,
        ys: std::ops::Range<f64>,
    ) -> Result<()> {
        let Some((x, label)) = &self.marker else {
            return Ok(());
        };
        let dash = BLACK.mix(0.5).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(*x, ys.start), (*x, ys.end)],
                8,
                6,
                dash,
            ))
            .map_err(plot_err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dash));
        Ok(())
    }

    fn draw_guides<DB: DrawingBackend>(&self, chart: &mut Xy<'_, DB>) -> Result<()> {
        let dash = BLACK.mix(0.45).stroke_width(2);
        for g in &self.guides {
            chart
                .draw_series(DashedLineSeries::new(
                    g.finite().collect::<Vec<_>>(),
                    10,
                    6,
                    dash,
                ))
                .map_err(plot_err)?
                .label(g.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dash));
        }
        Ok(())
    }

    fn draw_series<DB: DrawingBackend>(&self, chart: &mut Xy<'_, DB>) -> Result<()> {
        let n = self.series.len();
        for (i, s) in self.series.iter().enumerate() {
            let line = style::color(i, n).stroke_width(LINE_WIDTH);
            chart
                .draw_series(LineSeries::new(s.finite(), line))
                .map_err(plot_err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            if self.dots {
                let dot = style::color(i, n).filled();
                chart
                    .draw_series(s.finite().map(|p| Circle::new(p, DOT_RADIUS, dot)))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    }
}

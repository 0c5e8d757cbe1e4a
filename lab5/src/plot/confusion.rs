//! Confusion matrix as a heat map: rows are the true classes, columns the predictions;
//! each cell shows its count and its share of the row.

use super::canvas::{plot_err, Chart};
use super::colormap::{blues, ink_on};
use super::figure::Figure;
use super::style::{self, AXIS_PX, LABEL_PX, MARGIN_PX};
use anyhow::{bail, Result};
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordu32;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Size of the confusion-matrix figure.
const SIZE: (u32, u32) = (640, 600);
/// Font size of the numbers in the cells.
const CELL_PX: u32 = 24;
/// Vertical offset (pixels) of the two text lines from the cell centre.
const LINE_OFFSET_PX: i32 = 14;

struct Confusion {
    title: String,
    counts: Vec<Vec<u64>>,
    labels: Vec<String>,
}

/// A heat map of `counts[true][predicted]` with class `labels`.
pub(crate) fn confusion_matrix<const N: usize>(
    title: &str,
    counts: &[[u64; N]; N],
    labels: &[&str; N],
) -> Result<Figure> {
    if N == 0 {
        bail!("a confusion matrix needs at least one class");
    }
    let chart = Confusion {
        title: title.into(),
        counts: counts.iter().map(|r| r.to_vec()).collect(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
    };
    Figure::new(title, SIZE, chart)
}

impl Confusion {
    /// Label of a segment centre; other positions get no label.
    fn label(&self, v: &SegmentValue<u32>, flip: bool) -> String {
        let n = self.labels.len() as u32;
        match v {
            SegmentValue::CenterOf(i) if *i < n => {
                let idx = if flip { n - 1 - i } else { *i };
                self.labels[idx as usize].clone()
            }
            _ => String::new(),
        }
    }

    /// Row `t` as fractions of its total (zeros for an empty row).
    fn shares(&self, t: usize) -> Vec<f64> {
        let total: u64 = self.counts[t].iter().sum();
        let share = |c: &u64| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        };
        self.counts[t].iter().map(share).collect()
    }

    /// Every cell as (column, row from the bottom, count, share of its row).
    fn cells(&self) -> Vec<(u32, u32, u64, f64)> {
        let n = self.labels.len();
        let mut out = Vec::with_capacity(n * n);
        for t in 0..n {
            for (p, share) in self.shares(t).into_iter().enumerate() {
                out.push((p as u32, (n - 1 - t) as u32, self.counts[t][p], share));
            }
        }
        out
    }
}

type Seg = SegmentValue<u32>;

impl Chart for Confusion {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        style::clear(root)?;
        let n = self.labels.len() as u32;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, style::text(style::TITLE_PX))
            .margin(MARGIN_PX)
            .x_label_area_size(style::X_LABEL_AREA_PX)
            .y_label_area_size(style::Y_LABEL_AREA_PX + 20)
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_label_formatter(&|v| self.label(v, false))
            .y_label_formatter(&|v| self.label(v, true))
            .label_style(style::text(AXIS_PX))
            .axis_desc_style(style::text(AXIS_PX))
            .draw()
            .map_err(plot_err)?;
        self.draw_cells(&mut chart)
    }
}

type Grid<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<SegmentedCoord<RangedCoordu32>, SegmentedCoord<RangedCoordu32>>,
>;
type Area<DB> =
    DrawingArea<DB, Cartesian2d<SegmentedCoord<RangedCoordu32>, SegmentedCoord<RangedCoordu32>>>;

/// A cell: column, row from the bottom, count, share of its row.
type Cell = (u32, u32, u64, f64);

impl Confusion {
    fn draw_cells<'a, DB: DrawingBackend + 'a>(&self, chart: &mut Grid<'a, DB>) -> Result<()> {
        let cells = self.cells();
        chart
            .draw_series(cells.iter().map(cell_fill))
            .map_err(plot_err)?;
        for cell in &cells {
            draw_cell_text(chart.plotting_area(), cell)?;
        }
        Ok(())
    }
}

fn cell_fill(&(x, y, _, share): &Cell) -> Rectangle<(Seg, Seg)> {
    let corners = [
        (Seg::Exact(x), Seg::Exact(y)),
        (Seg::Exact(x + 1), Seg::Exact(y + 1)),
    ];
    Rectangle::new(corners, blues(share).filled())
}

/// The count, and under it the row share, centred in the cell in a readable ink.
fn draw_cell_text<DB: DrawingBackend>(area: &Area<DB>, &(x, y, count, share): &Cell) -> Result<()> {
    let ink = ink_on(blues(share));
    let at = (Seg::CenterOf(x), Seg::CenterOf(y));
    let big = Text::new(
        count.to_string(),
        (0, -LINE_OFFSET_PX),
        style::centred(CELL_PX).color(ink),
    );
    area.draw(&(EmptyElement::at(at.clone()) + big))
        .map_err(plot_err)?;
    let pct = format!("{:.1} %", share * 100.0);
    let small = Text::new(
        pct,
        (0, LINE_OFFSET_PX),
        style::centred(LABEL_PX).color(ink),
    );
    area.draw(&(EmptyElement::at(at) + small)).map_err(plot_err)
}

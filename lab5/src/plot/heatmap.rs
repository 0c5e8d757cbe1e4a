//! Heat maps of 2-D arrays (feature maps, kernels, images) in viridis, several side by
//! side, each scaled to its own range; cells large enough get their values written in them.

use super::canvas::{plot_err, Chart};
use super::colormap::{ink_on, unit, viridis};
use super::figure::Figure;
use super::style::{self, LABEL_PX, MARGIN_PX};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Side of each panel of a heat-map grid, pixels.
const PANEL_PX: u32 = 230;
/// Height of a title (figure or panel), pixels.
const TITLE_H: u32 = 48;
/// Padding on each side of a map inside its panel, pixels.
const PANEL_PAD_PX: u32 = 4;
/// Height of a panel caption in a grid, pixels.
const CAPTION_H: u32 = 28;
/// Cells at least this many pixels wide show their values.
const MIN_ANNOTATED_CELL_PX: i32 = 56;

/// A 2-D array checked to be rectangular and non-empty, with its finite min and max.
#[derive(Debug, Clone)]
struct Grid {
    rows: Vec<Vec<f64>>,
    lo: f64,
    hi: f64,
}

impl Grid {
    fn new(rows: &[Vec<f64>], what: &str) -> Result<Grid> {
        let width = rows.first().map_or(0, Vec::len);
        if width == 0 {
            bail!("{what} is empty; give at least one row with one value");
        }
        if let Some(i) = rows.iter().position(|r| r.len() != width) {
            bail!(
                "{what}: row {i} has {} values, row 0 has {width}; rows must be equal",
                rows[i].len()
            );
        }
        let finite = rows.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if lo > hi {
            bail!("{what} has no finite value to colour");
        }
        Ok(Grid {
            rows: rows.to_vec(),
            lo,
            hi,
        })
    }

    fn dims(&self) -> (usize, usize) {
        (self.rows.len(), self.rows[0].len())
    }

    /// Draws the cells into `area`, square, centred, values written when they fit.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let (h, w) = self.dims();
        let (aw, ah) = area.dim_in_pixel();
        let cell = (aw as usize / w).min(ah as usize / h).max(1) as i32;
        let origin = (
            (aw as i32 - cell * w as i32) / 2,
            (ah as i32 - cell * h as i32) / 2,
        );
        for (r, row) in self.rows.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let at = (origin.0 + c as i32 * cell, origin.1 + r as i32 * cell);
                self.draw_cell(area, v, at, cell)?;
            }
        }
        Ok(())
    }

    /// One cell of side `cell` at `(x, y)`, with its value when large enough.
    fn draw_cell<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        v: f64,
        (x, y): (i32, i32),
        cell: i32,
    ) -> Result<()> {
        let color = viridis(unit(v, self.lo, self.hi));
        let square = Rectangle::new([(x, y), (x + cell, y + cell)], color.filled());
        area.draw(&square).map_err(plot_err)?;
        if cell >= MIN_ANNOTATED_CELL_PX {
            draw_value(area, v, color, (x + cell / 2, y + cell / 2))?;
        }
        Ok(())
    }
}

fn draw_value<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    v: f64,
    bg: RGBColor,
    at: (i32, i32),
) -> Result<()> {
    let ink = ink_on(bg);
    let text = Text::new(
        style::short_number(v),
        at,
        style::centred(LABEL_PX).color(ink),
    );
    area.draw(&text).map_err(plot_err)
}

struct Panels {
    title: String,
    maps: Vec<(String, Grid)>,
    cols: usize,
}

/// Several named heat maps in a grid of `cols` columns, each scaled to its own range.
pub(crate) fn heatmap_grid(
    title: &str,
    maps: &[(String, Vec<Vec<f64>>)],
    cols: usize,
) -> Result<Figure> {
    if maps.is_empty() || cols == 0 {
        bail!("heat-map grid {title:?} needs at least one map and one column");
    }
    let grids = maps
        .iter()
        .map(|(name, rows)| Ok((name.clone(), Grid::new(rows, &format!("map {name:?}"))?)));
    let maps = grids.collect::<Result<Vec<_>>>()?;
    let cols = cols.min(maps.len());
    let rows = maps.len().div_ceil(cols) as u32;
    let size = (
        cols as u32 * PANEL_PX + 2 * MARGIN_PX,
        TITLE_H + rows * (PANEL_PX + CAPTION_H) + MARGIN_PX,
    );
    Figure::new(
        title,
        size,
        Panels {
            title: title.into(),
            maps,
            cols,
        },
    )
}

impl Chart for Panels {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        style::clear(root)?;
        style::top_title(root, &self.title, TITLE_H)?;
        for (i, (name, grid)) in self.maps.iter().enumerate() {
            let (r, c) = ((i / self.cols) as i32, (i % self.cols) as i32);
            let x = MARGIN_PX as i32 + c * PANEL_PX as i32;
            let y = TITLE_H as i32 + r * (PANEL_PX + CAPTION_H) as i32;
            draw_panel(root, name, grid, (x, y))?;
        }
        Ok(())
    }
}

/// One map of a grid with its caption above it, top-left at `(x, y)`.
fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    name: &str,
    grid: &Grid,
    (x, y): (i32, i32),
) -> Result<()> {
    let centre = (x + PANEL_PX as i32 / 2, y + CAPTION_H as i32 / 2);
    let caption = Text::new(name.to_string(), centre, style::centred(LABEL_PX));
    root.draw(&caption).map_err(plot_err)?;
    let inner = PANEL_PX - 2 * PANEL_PAD_PX;
    let at = (x + PANEL_PAD_PX as i32, y + CAPTION_H as i32);
    grid.draw(&root.clone().shrink(at, (inner, inner)))
}

//! Shared look of every chart: sizes, fonts, palette, and small drawing helpers.

use super::canvas::plot_err;
use super::font::FAMILY;
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Default size of a single chart, in pixels.
pub(crate) const CHART_SIZE: (u32, u32) = (900, 600);
/// Font size of chart titles.
pub(crate) const TITLE_PX: u32 = 26;
/// Font size of axis descriptions.
pub(crate) const AXIS_PX: u32 = 19;
/// Font size of tick labels, legends and captions.
pub(crate) const LABEL_PX: u32 = 16;
/// Space around each chart, in pixels.
pub(crate) const MARGIN_PX: u32 = 16;
/// Height of the x label area (ticks and description).
pub(crate) const X_LABEL_AREA_PX: u32 = 55;
/// Width of the y label area (ticks and description).
pub(crate) const Y_LABEL_AREA_PX: u32 = 75;
/// Width of lines in line charts.
pub(crate) const LINE_WIDTH: u32 = 3;

/// Okabe-Ito colour-blind-safe palette (black last); more groups get evenly spaced hues.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];
/// Saturation and lightness of the generated hues beyond the palette.
const EXTRA_SATURATION: f64 = 0.65;
const EXTRA_LIGHTNESS: f64 = 0.45;

/// The colour of series/group `i` out of `n` (palette when it suffices, hues otherwise).
pub(crate) fn color(i: usize, n: usize) -> RGBColor {
    if n <= PALETTE.len() {
        return PALETTE[i % PALETTE.len()];
    }
    let hsl = HSLColor(i as f64 / n as f64, EXTRA_SATURATION, EXTRA_LIGHTNESS);
    let (r, g, b) = hsl.rgb();
    RGBColor(r, g, b)
}

/// Text of `px` pixels in the chart font.
pub(crate) fn text(px: u32) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(
        FontFamily::Name(FAMILY),
        f64::from(px),
        FontStyle::Normal,
    ))
}

/// Text of `px` pixels centred on its position.
pub(crate) fn centred(px: u32) -> TextStyle<'static> {
    text(px).pos(Pos::new(HPos::Center, VPos::Center))
}

/// Paints the background white.
pub(crate) fn clear<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)
}

/// Draws `title` centred in a band `height` pixels high at the top of `root`.
pub(crate) fn top_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    height: u32,
) -> Result<()> {
    let centre = (root.dim_in_pixel().0 as i32 / 2, height as i32 / 2);
    let text = Text::new(title.to_string(), centre, centred(TITLE_PX));
    root.draw(&text).map_err(plot_err)
}

/// Paints the background white and draws `title` at the top; returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>> {
    clear(root)?;
    root.titled(title, text(TITLE_PX)).map_err(plot_err)
}

/// Fraction of each axis a legend box is assumed to cover in its corner.
const LEGEND_SPAN: f64 = 0.35;

/// The corner (of four) holding the fewest of `points`, given the axis ranges.
pub(crate) fn emptiest_corner(
    points: &[(f64, f64)],
    xs: &Range<f64>,
    ys: &Range<f64>,
) -> SeriesLabelPosition {
    use SeriesLabelPosition::{LowerLeft, LowerRight, UpperLeft, UpperRight};
    let corners = [
        (UpperRight, true, true),
        (LowerRight, true, false),
        (UpperLeft, false, true),
        (LowerLeft, false, false),
    ];
    let count = |right: bool, upper: bool| {
        let inside = |p: &&(f64, f64)| in_band(p.0, xs, right) && in_band(p.1, ys, upper);
        points.iter().filter(inside).count()
    };
    let best = corners.into_iter().min_by_key(|(_, r, u)| count(*r, *u));
    best.map_or(UpperRight, |c| c.0)
}

/// Whether `v` lies in the legend-sized band at the high (or low) end of `range`.
fn in_band(v: f64, range: &Range<f64>, high: bool) -> bool {
    let f = (v - range.start) / (range.end - range.start);
    if high {
        f > 1.0 - LEGEND_SPAN
    } else {
        f < LEGEND_SPAN
    }
}

/// A chart with two `f64` axes.
pub(crate) type Xy<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart on `area` over `xs` x `ys` with the standard margin and label areas, and
/// `caption` above it unless empty.
pub(crate) fn xy_chart<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    xs: Range<f64>,
    ys: Range<f64>,
) -> Result<Xy<'a, DB>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(MARGIN_PX)
        .x_label_area_size(X_LABEL_AREA_PX)
        .y_label_area_size(Y_LABEL_AREA_PX);
    if !caption.is_empty() {
        builder.caption(caption, text(AXIS_PX));
    }
    builder.build_cartesian_2d(xs, ys).map_err(plot_err)
}

/// Grid, ticks and axis descriptions; with `whole_x` only whole x values are labelled.
pub(crate) fn xy_mesh<DB: DrawingBackend>(
    chart: &mut Xy<'_, DB>,
    x_desc: &str,
    y_desc: &str,
    whole_x: bool,
) -> Result<()> {
    let mut mesh = chart.configure_mesh();
    if whole_x {
        mesh.x_label_formatter(&whole_tick);
    }
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(text(LABEL_PX))
        .axis_desc_style(text(AXIS_PX))
        .draw()
        .map_err(plot_err)
}

/// Draws the legend of `chart` at `position`, on a translucent white box.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(text(LABEL_PX))
        .draw()
        .map_err(plot_err)
}

/// Anchor for text that starts at its position and is vertically centred on it.
pub(crate) fn left_middle() -> Pos {
    Pos::new(HPos::Left, VPos::Center)
}

/// Height of a legend drawn as one row above a chart.
pub(crate) const LEGEND_ROW_H: u32 = 34;
/// Horizontal room given to each entry of a legend row, pixels.
const LEGEND_ENTRY_W: i32 = 220;
/// Side of the colour swatch in legends, pixels.
const SWATCH_PX: i32 = 14;

/// Draws `entries` (name, colour) side by side, centred, in `area` (one row).
pub(crate) fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor)],
) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let total = LEGEND_ENTRY_W * entries.len() as i32;
    let left = (w as i32 - total).max(0) / 2;
    let y = h as i32 / 2;
    for (i, (name, color)) in entries.iter().enumerate() {
        let x = left + i as i32 * LEGEND_ENTRY_W;
        let swatch = [(x, y - SWATCH_PX / 2), (x + SWATCH_PX, y + SWATCH_PX / 2)];
        area.draw(&Rectangle::new(swatch, color.filled()))
            .map_err(plot_err)?;
        let label = Text::new(
            name.clone(),
            (x + SWATCH_PX + 6, y),
            text(LABEL_PX).pos(left_middle()),
        );
        area.draw(&label).map_err(plot_err)?;
    }
    Ok(())
}

/// Whole numbers below this print without decimals in labels.
const WHOLE_BELOW: f64 = 1e9;

/// A number short enough for a label: whole numbers plain, else three decimals below 10
/// and one above.
pub(crate) fn short_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < WHOLE_BELOW {
        format!("{v:.0}")
    } else if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

/// Tick label for an axis of whole numbers (epochs, sample indices): blank between them.
pub(crate) fn whole_tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

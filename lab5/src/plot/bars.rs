//! Grouped bar chart: one group per category (e.g. a metric), one bar per series (e.g. a
//! model), each bar labelled with its value, optionally with a dashed horizontal
//! reference line (e.g. the clean accuracy under the corrupted ones). Used for the model
//! comparison and the robustness check.

use super::canvas::{plot_err, Chart};
use super::figure::Figure;
use super::range::{padded, with_zero};
use super::style::{self, AXIS_PX, LABEL_PX};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Size of the bar chart.
const SIZE: (u32, u32) = (1000, 600);
/// Share of each category's width left empty between groups.
const GROUP_GAP: f64 = 0.25;
/// Extra room above the tallest bar for its value label (fraction of the range).
const HEADROOM: f64 = 0.12;
/// Room between two lines of a category name (`\n` in it), pixels.
const LINE_GAP_PX: i32 = 4;
/// Distance of the category names below the axis, pixels.
const CATEGORY_OFFSET_PX: i32 = 12;
/// Narrowest room per bar and per category before the chart grows wider, pixels.
const MIN_BAR_PX: u32 = 56;
const MIN_CATEGORY_PX: u32 = 150;
/// Room beside the bars (y labels and margins), pixels.
const SIDE_PX: u32 = 150;

type Ctx<'a, DB> = style::Xy<'a, DB>;

struct Bars {
    title: String,
    y_label: String,
    categories: Vec<String>,
    series: Vec<(String, Vec<f64>)>,
    reference: Option<(String, f64)>,
}

/// Grouped bars: `series[j].1[i]` is the value of series `j` in category `i`.
pub(crate) fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<Figure> {
    let chart = Bars::new(title, y_label, categories, series, None)?;
    Figure::new(title, SIZE, chart)
}

/// Grouped bars as [`bar_chart`], widened when there are many bars so that each keeps
/// room for its value label (as [`bar_chart_with_reference`], without the line).
pub(crate) fn bar_chart_wide(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<Figure> {
    wide_bars(title, y_label, categories, series, None)
}

/// Grouped bars as [`bar_chart`], with a dashed horizontal line at `reference.1` named
/// `reference.0` in the legend. The chart widens when there are many bars, so that each
/// bar keeps room for its value label.
pub(crate) fn bar_chart_with_reference(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    reference: (&str, f64),
) -> Result<Figure> {
    let (name, value) = reference;
    let reference = Some((name.to_string(), value));
    wide_bars(title, y_label, categories, series, reference)
}

/// The chart of [`bar_chart_wide`] and [`bar_chart_with_reference`].
fn wide_bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    reference: Option<(String, f64)>,
) -> Result<Figure> {
    let chart = Bars::new(title, y_label, categories, series, reference)?;
    Figure::new(title, chart.wide_size(), chart)
}

impl Bars {
    /// The chart, after checking that every series has one value per category.
    fn new(
        title: &str,
        y_label: &str,
        categories: &[String],
        series: &[(String, Vec<f64>)],
        reference: Option<(String, f64)>,
    ) -> Result<Bars> {
        if categories.is_empty() || series.is_empty() {
            bail!("bar chart {title:?} needs at least one category and one series");
        }
        if let Some((name, v)) = series.iter().find(|(_, v)| v.len() != categories.len()) {
            bail!(
                "bar chart {title:?}: series {name:?} has {} values for {} categories",
                v.len(),
                categories.len()
            );
        }
        Ok(Bars {
            title: title.into(),
            y_label: y_label.into(),
            categories: categories.to_vec(),
            series: series.to_vec(),
            reference,
        })
    }
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = style::titled(root, &self.title)?;
        let (legend, plot) = body.split_vertically(style::LEGEND_ROW_H);
        let n = self.series.len();
        let mut entries: Vec<_> = self
            .series
            .iter()
            .enumerate()
            .map(|(j, s)| (s.0.clone(), style::color(j, n)))
            .collect();
        if let Some((name, _)) = &self.reference {
            entries.push((name.clone(), REFERENCE_COLOR));
        }
        style::legend_row(&legend, &entries)?;
        let mut chart = self.axes(&plot)?;
        for j in 0..n {
            self.draw_series(&mut chart, j)?;
        }
        self.draw_reference(&mut chart)?;
        self.draw_categories(&chart, root)
    }
}

/// Colour of the reference line.
const REFERENCE_COLOR: RGBColor = RGBColor(90, 90, 90);

impl Bars {
    /// The default size, wider when the bars would get narrower than [`MIN_BAR_PX`] or
    /// the categories than [`MIN_CATEGORY_PX`].
    fn wide_size(&self) -> (u32, u32) {
        let per_category = MIN_CATEGORY_PX.max(MIN_BAR_PX * self.series.len() as u32);
        let wanted = SIDE_PX + per_category * self.categories.len() as u32;
        (SIZE.0.max(wanted), SIZE.1)
    }

    /// The dashed reference line across the whole chart, when there is one.
    fn draw_reference<DB: DrawingBackend>(&self, chart: &mut Ctx<'_, DB>) -> Result<()> {
        let Some((_, v)) = self.reference else {
            return Ok(());
        };
        let width = self.categories.len() as f64;
        let dash = REFERENCE_COLOR.stroke_width(2);
        let line = DashedLineSeries::new(vec![(0.0, v), (width, v)], 10, 6, dash);
        chart.draw_series(line).map_err(plot_err)?;
        Ok(())
    }

    fn axes<'a, DB: DrawingBackend + 'a>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
    ) -> Result<Ctx<'a, DB>> {
        let reference = self.reference.iter().map(|r| r.1);
        let values = self.series.iter().flat_map(|s| s.1.iter().copied());
        let values = values.chain(reference);
        let ys = with_zero(padded(values, "the bar values")?);
        let ys = ys.start..ys.end + (ys.end - ys.start) * HEADROOM;
        let mut chart = style::xy_chart(area, "", 0.0..self.categories.len() as f64, ys)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(self.y_label.as_str())
            .label_style(style::text(LABEL_PX))
            .axis_desc_style(style::text(AXIS_PX))
            .draw()
            .map_err(plot_err)?;
        Ok(chart)
    }

    /// The bars of series `j` with their value labels.
    fn draw_series<DB: DrawingBackend>(&self, chart: &mut Ctx<'_, DB>, j: usize) -> Result<()> {
        let width = (1.0 - GROUP_GAP) / self.series.len() as f64;
        let color = style::color(j, self.series.len());
        let bars: Vec<(f64, f64)> = self.series[j]
            .1
            .iter()
            .enumerate()
            .filter(|p| p.1.is_finite())
            .map(|(i, &v)| (i as f64 + GROUP_GAP / 2.0 + j as f64 * width, v))
            .collect();
        let bar = |&(x, v): &(f64, f64)| Rectangle::new([(x, 0.0), (x + width, v)], color.filled());
        chart.draw_series(bars.iter().map(bar)).map_err(plot_err)?;
        let above = style::text(LABEL_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
        let label = |&(x, v): &(f64, f64)| {
            Text::new(style::short_number(v), (x + width / 2.0, v), above.clone())
        };
        chart
            .draw_series(bars.iter().map(label))
            .map_err(plot_err)?;
        Ok(())
    }

    /// Category names under the x axis, drawn on the root area at the group centres.
    fn draw_categories<DB: DrawingBackend>(
        &self,
        chart: &Ctx<'_, DB>,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<()> {
        let y0 = chart.y_range().start;
        let below = style::text(AXIS_PX).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, name) in self.categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, y0));
            let (ox, oy) = root.get_base_pixel();
            for (k, line) in name.lines().enumerate() {
                let down = CATEGORY_OFFSET_PX + k as i32 * (AXIS_PX as i32 + LINE_GAP_PX);
                let at = (x - ox, y - oy + down);
                root.draw(&Text::new(line.to_string(), at, below.clone()))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    }
}

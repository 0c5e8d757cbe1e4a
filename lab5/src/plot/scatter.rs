//! Scatter plot of 2-D points coloured by group (class or breed), with a legend column.
//! Beyond a dozen groups the rarest are drawn in grey as "other" so colours stay distinct.

use super::canvas::{plot_err, Chart};
use super::figure::Figure;
use super::range::padded;
use super::style::{self, LABEL_PX, MARGIN_PX};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Size of the scatter figure.
const SIZE: (u32, u32) = (1050, 720);
/// Width of the legend column on the right.
const LEGEND_W: u32 = 250;
/// Most groups shown with their own colour; the rest are "other".
const MAX_GROUPS: usize = 12;
/// Radius of a point, pixels.
const POINT_R: u32 = 3;
/// Opacity of points (overlaps stay visible).
const POINT_ALPHA: f64 = 0.7;
/// Height of one legend row, pixels.
const LEGEND_ROW_PX: i32 = 24;
/// Longest group name shown in the legend, characters.
const MAX_NAME_CHARS: usize = 22;
/// Colour of the "other" group.
const OTHER: RGBColor = RGBColor(170, 170, 170);

/// One legend entry: name, colour, the indices of its points.
struct Group {
    name: String,
    color: RGBColor,
    members: Vec<usize>,
}

struct Scatter {
    title: String,
    /// Names of the x and y axes.
    axes: (String, String),
    points: Vec<(f64, f64)>,
    groups: Vec<Group>,
}

/// A scatter plot of `points` coloured by `groups[i]` (same length), with a legend.
pub(crate) fn scatter(points: &[(f64, f64)], groups: &[String], title: &str) -> Result<Figure> {
    scatter_with_axes(points, groups, title, ("dimension 1", "dimension 2"))
}

/// [`scatter`] with named axes `(x, y)`.
pub(crate) fn scatter_with_axes(
    points: &[(f64, f64)],
    groups: &[String],
    title: &str,
    axes: (&str, &str),
) -> Result<Figure> {
    if points.is_empty() {
        bail!("nothing to plot: the scatter {title:?} got no points");
    }
    if points.len() != groups.len() {
        bail!(
            "scatter {title:?}: {} points but {} group labels; give one label per point",
            points.len(),
            groups.len()
        );
    }
    let chart = Scatter {
        title: title.into(),
        axes: (axes.0.into(), axes.1.into()),
        points: points.to_vec(),
        groups: group(groups),
    };
    Figure::new(title, SIZE, chart)
}

/// Groups sorted by name; past [`MAX_GROUPS`] the smallest are merged into "other".
fn group(labels: &[String]) -> Vec<Group> {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_name.entry(l.as_str()).or_default().push(i);
    }
    let mut named: Vec<(&str, Vec<usize>)> = by_name.into_iter().collect();
    if named.len() <= MAX_GROUPS {
        return finish(named, None);
    }
    named.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let rest = named.split_off(MAX_GROUPS - 1);
    named.sort_by(|a, b| a.0.cmp(b.0));
    let members = rest.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    finish(
        named,
        Some((format!("other ({} groups)", rest.len()), members)),
    )
}

fn finish(named: Vec<(&str, Vec<usize>)>, other: Option<(String, Vec<usize>)>) -> Vec<Group> {
    let n = named.len();
    let mut out: Vec<Group> = named
        .into_iter()
        .enumerate()
        .map(|(i, (name, members))| Group {
            name: name.into(),
            color: style::color(i, n),
            members,
        })
        .collect();
    if let Some((name, members)) = other {
        out.insert(
            0,
            Group {
                name,
                color: OTHER,
                members,
            },
        );
    }
    out
}

impl Chart for Scatter {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = style::titled(root, &self.title)?;
        let (plot, legend) = body.split_horizontally(SIZE.0 - LEGEND_W);
        self.draw_points(&plot)?;
        self.draw_legend(&legend)
    }
}

impl Scatter {
    fn draw_points<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let xs = padded(self.points.iter().map(|p| p.0), "the x coordinates")?;
        let ys = padded(self.points.iter().map(|p| p.1), "the y coordinates")?;
        let mut chart = style::xy_chart(area, "", xs, ys)?;
        style::xy_mesh(&mut chart, &self.axes.0, &self.axes.1, false)?;
        for g in &self.groups {
            let fill = g.color.mix(POINT_ALPHA).filled();
            let finite = g
                .members
                .iter()
                .map(|&i| self.points[i])
                .filter(|p| p.0.is_finite() && p.1.is_finite());
            let dots = finite.map(|p| Circle::new(p, POINT_R, fill));
            chart.draw_series(dots).map_err(plot_err)?;
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let top = MARGIN_PX as i32 + LEGEND_ROW_PX;
        for (row, g) in self.groups.iter().enumerate() {
            let y = top + row as i32 * LEGEND_ROW_PX;
            let dot = Circle::new((12, y), POINT_R + 3, g.color.filled());
            area.draw(&dot).map_err(plot_err)?;
            let name = format!("{} ({})", shorten(&g.name), g.members.len());
            let label = style::text(LABEL_PX).pos(style::left_middle());
            area.draw(&Text::new(name, (26, y), label))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}

/// `s` cut to [`MAX_NAME_CHARS`] characters with an ellipsis.
pub(crate) fn shorten(s: &str) -> String {
    shorten_to(s, MAX_NAME_CHARS)
}

/// `s` cut to `max` characters (at least 2) with an ellipsis.
pub(crate) fn shorten_to(s: &str, max: usize) -> String {
    let max = max.max(2);
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}

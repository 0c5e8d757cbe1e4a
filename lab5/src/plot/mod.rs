//! Charts and tables as values: each chart function returns a [`Figure`] that renders
//! inline in an evcxr notebook (`image/svg+xml`) and saves itself as SVG and PNG; a
//! [`Table`] wraps a polars `DataFrame` and renders as an HTML table; a [`Shown`] is either,
//! or a [`Note`] saying why there is nothing to draw yet.
//!
//! Every chart is drawn by the same code on both plotters backends: SVG for notebooks and
//! reports, bitmap (with the bundled DejaVu Sans font) for the PNG files.

mod bars;
mod canvas;
mod colormap;
mod confusion;
mod figure;
mod font;
mod grid;
mod heatmap;
mod line;
mod overlay;
mod range;
mod roc;
mod scatter;
mod shown;
mod signal;
mod style;
mod table;

pub(crate) use bars::{bar_chart, bar_chart_wide, bar_chart_with_reference};
pub(crate) use confusion::confusion_matrix;
pub(crate) use figure::{encode_png, Figure};
pub(crate) use grid::{image_grid, image_grid_px, mistakes_gallery, Mistake, Photo};
pub(crate) use heatmap::heatmap_grid;
pub(crate) use line::{
    learning_curves, line_chart, line_panels, reliability_diagram, Curves, Line,
};
pub(crate) use overlay::heat_overlay;
pub(crate) use roc::{roc_curves, RocCurve};
pub(crate) use scatter::{scatter, scatter_with_axes, shorten_to};
pub use shown::{Note, Shown};
pub(crate) use signal::signal_plot;
pub(crate) use table::{escape, show_html, verdict_then_table, Table};

#[cfg(test)]
mod tests;

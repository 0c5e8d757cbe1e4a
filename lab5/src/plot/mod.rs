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
mod range;
mod roc;
mod scatter;
mod shown;
mod signal;
mod style;
mod table;

pub use bars::{bar_chart, bar_chart_with_reference};
pub use canvas::{Chart, Picture};
pub use confusion::confusion_matrix;
pub use figure::Figure;
pub use grid::{image_grid, mistakes_gallery, Mistake, Photo};
pub use heatmap::{heatmap, heatmap_grid, tensor_rows};
pub use line::{learning_curves, line_chart, Curves, Line};
pub use roc::{roc_curve, roc_curves, RocCurve};
pub use scatter::{scatter, scatter_with_axes};
pub use shown::{Note, Shown};
pub use signal::signal_plot;
pub use table::{escape, Table};

#[cfg(test)]
mod tests;

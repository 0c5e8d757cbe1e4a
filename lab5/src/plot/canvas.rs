//! What a chart is to [`Figure`](super::Figure): something that draws itself on any plotters
//! backend, plus optional photos placed at fixed pixel positions (image grids).

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, SVGBackend};

/// A chart: draws itself onto a drawing area of any backend.
pub(crate) trait Chart: Send + Sync {
    /// Draws the whole chart (background, axes, series, captions) onto `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;

    /// Photos to place on top of the drawing, in pixels of the figure (none by default).
    fn pictures(&self) -> &[Picture] {
        &[]
    }
}

/// A photo placed at `(x, y)` (top-left, pixels) on a figure; it keeps its own size.
#[derive(Debug, Clone)]
pub(crate) struct Picture {
    /// Left edge in pixels.
    pub x: u32,
    /// Top edge in pixels.
    pub y: u32,
    /// The photo, already resized to the size it is shown at.
    pub image: image::RgbImage,
}

/// Object-safe form of [`Chart`] so a figure can keep its chart for later PNG rendering.
pub(crate) trait Paint: Send + Sync {
    fn paint_svg(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>;
    fn paint_bitmap(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>;
    fn placed(&self) -> &[Picture];
}

impl<T: Chart> Paint for T {
    fn paint_svg(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()> {
        self.draw(root)
    }
    fn paint_bitmap(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()> {
        self.draw(root)
    }
    fn placed(&self) -> &[Picture] {
        self.pictures()
    }
}

/// Turns a plotters error (not always `Send + Sync + 'static`) into an `anyhow` error.
pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart failed: {e}")
}

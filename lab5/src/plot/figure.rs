//! [`Figure`]: a rendered chart that shows inline in evcxr and saves to SVG and PNG.

use super::canvas::{plot_err, Chart, Paint, Picture};
use super::font;
use anyhow::{bail, Context, Result};
use base64::Engine;
use image::{ImageEncoder, RgbImage};
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// JPEG quality of photos embedded in SVG figures (small files, no visible loss).
const EMBEDDED_JPEG_QUALITY: u8 = 85;

/// A chart rendered to SVG, able to rasterise itself to PNG with readable text.
///
/// The final value of a notebook cell shows inline as `image/svg+xml`.
#[derive(Clone)]
pub struct Figure {
    title: String,
    size: (u32, u32),
    svg: String,
    chart: Arc<dyn Paint>,
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.size;
        write!(
            f,
            "Figure({:?}, {w}x{h}, {} bytes of SVG)",
            self.title,
            self.svg.len()
        )
    }
}

impl Figure {
    /// Renders `chart` at `size` (pixels) to SVG now; the PNG is drawn on demand.
    pub(crate) fn new(
        title: &str,
        size: (u32, u32),
        chart: impl Chart + 'static,
    ) -> Result<Figure> {
        if size.0 == 0 || size.1 == 0 {
            bail!(
                "figure {title:?} has an empty size {}x{}; give both sides > 0",
                size.0,
                size.1
            );
        }
        let chart: Arc<dyn Paint> = Arc::new(chart);
        let svg = render_svg(chart.as_ref(), size).with_context(|| format!("figure {title:?}"))?;
        Ok(Figure {
            title: title.to_string(),
            size,
            svg,
            chart,
        })
    }

    /// The title given when the figure was made.
    pub(crate) fn title(&self) -> &str {
        &self.title
    }

    /// Width and height in pixels.
    #[cfg(test)]
    pub(crate) fn size(&self) -> (u32, u32) {
        self.size
    }

    /// The SVG document (self-contained: photos are embedded as data URIs).
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// The figure rasterised to a PNG file's bytes, text drawn with the bundled font.
    pub fn png(&self) -> Result<Vec<u8>> {
        encode_png(&self.bitmap()?)
    }

    /// The figure rasterised (`size` pixels, RGB), text drawn with the bundled font.
    pub(crate) fn bitmap(&self) -> Result<RgbImage> {
        render_bitmap(self.chart.as_ref(), self.size)
            .with_context(|| format!("figure {:?}", self.title))
    }

    /// Writes `<stem>.svg` and `<stem>.png` (each atomically); returns both paths.
    pub fn save(&self, stem: &Path) -> Result<(PathBuf, PathBuf)> {
        let (svg_path, png_path) = (with_suffix(stem, "svg"), with_suffix(stem, "png"));
        crate::util::write_atomic(&svg_path, self.svg.as_bytes())?;
        crate::util::write_atomic(&png_path, &self.png()?)?;
        Ok((svg_path, png_path))
    }

    /// Shows the figure inline in an evcxr notebook as `image/svg+xml`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.svg
        );
    }
}

/// `stem` with `.ext` appended (not replacing: stems may contain dots).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s = OsString::from(stem.as_os_str());
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn render_svg(chart: &dyn Paint, size: (u32, u32)) -> Result<String> {
    font::ensure_registered()?; // text layout needs the font metrics even for SVG
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart.paint_svg(&root)?;
        root.present().map_err(plot_err)?;
    }
    let images = chart
        .placed()
        .iter()
        .map(svg_image)
        .collect::<Result<String>>()?;
    match svg.rfind("</svg>") {
        Some(end) => svg.insert_str(end, &images),
        None => bail!("plotters produced an SVG without a closing tag"),
    }
    Ok(svg)
}

/// One `<image>` element with the photo as a JPEG data URI.
fn svg_image(p: &Picture) -> Result<String> {
    let mut jpeg = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, EMBEDDED_JPEG_QUALITY);
    let (w, h) = p.image.dimensions();
    enc.write_image(p.image.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .context("cannot encode a photo for the SVG")?;
    let data = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    Ok(format!(
        "<image x=\"{}\" y=\"{}\" width=\"{w}\" height=\"{h}\" href=\"data:image/jpeg;base64,{data}\"/>\n",
        p.x, p.y
    ))
}

fn render_bitmap(chart: &dyn Paint, (w, h): (u32, u32)) -> Result<RgbImage> {
    font::ensure_registered()?;
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        chart.paint_bitmap(&root)?;
        root.present().map_err(plot_err)?;
    }
    let mut rgb = RgbImage::from_raw(w, h, buf).context("bitmap buffer has the wrong size")?;
    for p in chart.placed() {
        image::imageops::replace(&mut rgb, &p.image, i64::from(p.x), i64::from(p.y));
    }
    Ok(rgb)
}

/// A PNG file's bytes of an RGB image (the `png` crate's default compression).
pub(crate) fn encode_png(rgb: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (w, h) = rgb.dimensions();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .context("cannot encode the image as PNG")?;
    Ok(out)
}

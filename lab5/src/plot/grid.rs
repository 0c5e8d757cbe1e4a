//! Image grids: photos with captions (samples of the data set), and the gallery of the
//! most confident mistakes with the probability the model gave the wrong class.

use super::canvas::{plot_err, Chart, Picture};
use super::figure::Figure;
use super::style::{self, LABEL_PX, MARGIN_PX};
use anyhow::{bail, Context, Result};
use image::{imageops, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Side of each photo in the grid, pixels.
const THUMB_PX: u32 = 170;
/// Space between cells, pixels.
const GAP_PX: u32 = 12;
/// Height of one caption line, pixels.
const LINE_PX: u32 = 21;
/// Height of the figure title.
const TITLE_H: u32 = 50;
/// Width of the coloured frame around a photo.
const FRAME_PX: u32 = 4;
/// Largest photo file read for a grid (bytes).
const MAX_PHOTO_BYTES: u64 = 50 * 1024 * 1024;
/// Colour of the frame around a mistake.
const MISTAKE: RGBColor = RGBColor(213, 40, 40);

/// A photo: already decoded, or a file to read (format detected from its bytes).
#[derive(Debug, Clone)]
pub(crate) enum Photo {
    /// A decoded image.
    Image(RgbImage),
    /// An image file (JPEG, PNG or WebP whatever its extension says).
    File(PathBuf),
}

impl From<RgbImage> for Photo {
    fn from(img: RgbImage) -> Photo {
        Photo::Image(img)
    }
}

impl From<PathBuf> for Photo {
    fn from(p: PathBuf) -> Photo {
        Photo::File(p)
    }
}

impl From<&Path> for Photo {
    fn from(p: &Path) -> Photo {
        Photo::File(p.to_path_buf())
    }
}

/// A mistake of a classifier, for [`mistakes_gallery`].
#[derive(Debug, Clone)]
pub(crate) struct Mistake {
    /// The photo.
    pub photo: Photo,
    /// Its true class.
    pub truth: String,
    /// The class the model predicted.
    pub predicted: String,
    /// The probability the model gave to `predicted` (0..=1).
    pub probability: f64,
}

/// One cell: the thumbnail, its caption lines, an optional frame colour.
struct Tile {
    thumb: RgbImage,
    lines: Vec<String>,
    frame: Option<RGBColor>,
}

struct Grid {
    title: String,
    tiles: Vec<Tile>,
    pictures: Vec<Picture>,
}

/// Photos with captions (a caption may hold several lines separated by `\n`), `cols` wide.
pub(crate) fn image_grid(title: &str, items: &[(Photo, String)], cols: usize) -> Result<Figure> {
    image_grid_px(title, items, cols, THUMB_PX)
}

/// [`image_grid`] with each photo `thumb_px` pixels square (at least 32).
pub(crate) fn image_grid_px(
    title: &str,
    items: &[(Photo, String)],
    cols: usize,
    thumb_px: u32,
) -> Result<Figure> {
    if thumb_px < 32 {
        bail!("image grid {title:?}: photos of {thumb_px} px are too small (at least 32)");
    }
    let tiles = items
        .iter()
        .map(|(photo, caption)| {
            Ok(Tile {
                thumb: thumbnail(photo, thumb_px)?,
                lines: lines(caption, thumb_px),
                frame: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    layout(title, tiles, cols, thumb_px)
}

/// The mistakes, framed in red, each captioned with truth, prediction and probability.
pub(crate) fn mistakes_gallery(title: &str, mistakes: &[Mistake], cols: usize) -> Result<Figure> {
    let tile = |m: &Mistake| -> Result<Tile> {
        if !(0.0..=1.0).contains(&m.probability) {
            bail!("mistake probability {} is outside 0..1", m.probability);
        }
        let lines = vec![
            format!("true: {}", m.truth),
            format!("said {} ({:.1} %)", m.predicted, m.probability * 100.0),
        ];
        Ok(Tile {
            thumb: thumbnail(&m.photo, THUMB_PX)?,
            lines,
            frame: Some(MISTAKE),
        })
    };
    let tiles = mistakes.iter().map(tile).collect::<Result<Vec<_>>>()?;
    layout(title, tiles, cols, THUMB_PX)
}

/// Caption characters per pixel of a photo's width (the label font is about 7.5 pixels
/// a character: 22 characters under a 170-pixel photo).
const CHARS_PER_PX: f64 = 22.0 / 170.0;

/// The caption's lines, each cut to what fits under a photo `thumb_px` wide.
fn lines(caption: &str, thumb_px: u32) -> Vec<String> {
    let max = (f64::from(thumb_px) * CHARS_PER_PX).floor() as usize;
    caption
        .lines()
        .map(|l| super::scatter::shorten_to(l, max))
        .collect()
}

/// Places the tiles, each `thumb` pixels square, on a grid and builds the figure.
fn layout(title: &str, tiles: Vec<Tile>, cols: usize, thumb: u32) -> Result<Figure> {
    if tiles.is_empty() || cols == 0 {
        bail!("image grid {title:?} needs at least one photo and one column");
    }
    let cols = cols.min(tiles.len());
    let lines = tiles.iter().map(|t| t.lines.len()).max().unwrap_or(0) as u32;
    let cell = (thumb + GAP_PX, thumb + GAP_PX + lines * LINE_PX);
    let rows = tiles.len().div_ceil(cols) as u32;
    let size = (
        cols as u32 * cell.0 + 2 * MARGIN_PX,
        TITLE_H + rows * cell.1 + MARGIN_PX,
    );
    let pictures = tiles
        .iter()
        .enumerate()
        .map(|(i, t)| picture(t, origin(i, cols, cell), thumb))
        .collect();
    let grid = Grid {
        title: title.into(),
        tiles,
        pictures,
    };
    Figure::new(title, size, grid)
}

/// Top-left corner of cell `i` in a grid `cols` wide of cells sized `cell`.
fn origin(i: usize, cols: usize, cell: (u32, u32)) -> (u32, u32) {
    let (r, c) = ((i / cols) as u32, (i % cols) as u32);
    (MARGIN_PX + c * cell.0 + GAP_PX / 2, TITLE_H + r * cell.1)
}

/// The photo centred in its square of `side` pixels.
fn picture(t: &Tile, (x, y): (u32, u32), side: u32) -> Picture {
    let (w, h) = t.thumb.dimensions();
    Picture {
        x: x + (side - w) / 2,
        y: y + (side - h) / 2,
        image: t.thumb.clone(),
    }
}

/// The photo decoded, centre-cropped to a square and resized to `side` pixels (less the
/// frame).
fn thumbnail(photo: &Photo, side: u32) -> Result<RgbImage> {
    let img = match photo {
        Photo::Image(img) => img.clone(),
        Photo::File(path) => read_photo(path)?,
    };
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        bail!("a photo for the grid is empty (0 pixels)");
    }
    let s = w.min(h);
    let square = imageops::crop_imm(&img, (w - s) / 2, (h - s) / 2, s, s).to_image();
    let inner = side - 2 * FRAME_PX;
    Ok(imageops::resize(
        &square,
        inner,
        inner,
        imageops::FilterType::Triangle,
    ))
}

fn read_photo(path: &Path) -> Result<RgbImage> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read photo {}", path.display()))?;
    if meta.len() > MAX_PHOTO_BYTES {
        bail!(
            "photo {} is {} bytes, more than the {MAX_PHOTO_BYTES} allowed",
            path.display(),
            meta.len()
        );
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read photo {}", path.display()))?;
    let img = crate::decode::decode(&bytes, &crate::config::Images::display())
        .with_context(|| format!("{} is not a readable JPEG/PNG/WebP image", path.display()))?;
    Ok(img.to_rgb8())
}

impl Chart for Grid {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        style::clear(root)?;
        style::top_title(root, &self.title, TITLE_H)?;
        for (tile, pic) in self.tiles.iter().zip(&self.pictures) {
            draw_tile(root, tile, pic)?;
        }
        Ok(())
    }

    fn pictures(&self) -> &[Picture] {
        &self.pictures
    }
}

/// The frame (when any) around the photo's place, and the caption lines under it.
fn draw_tile<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    tile: &Tile,
    pic: &Picture,
) -> Result<()> {
    let (x, y) = (pic.x as i32, pic.y as i32);
    let (w, h) = (pic.image.width() as i32, pic.image.height() as i32);
    if let Some(color) = tile.frame {
        let f = FRAME_PX as i32;
        root.draw(&Rectangle::new(
            [(x - f, y - f), (x + w + f, y + h + f)],
            color.filled(),
        ))
        .map_err(plot_err)?;
    }
    let centre = x + w / 2;
    let first = y + h + FRAME_PX as i32 + LINE_PX as i32 / 2 + 2;
    for (k, line) in tile.lines.iter().enumerate() {
        let at = (centre, first + k as i32 * LINE_PX as i32);
        root.draw(&Text::new(line.clone(), at, style::centred(LABEL_PX)))
            .map_err(plot_err)?;
    }
    Ok(())
}

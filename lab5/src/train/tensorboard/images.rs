//! A batch of images as one picture, as torchvision's `make_grid(tensor, nrow, padding=2)`
//! lays it out (`torchvision/utils.py`): row-major, `cols` images a row, a black border of
//! [`PADDING`] pixels around and between them.

use anyhow::{bail, Context, Result};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

/// Pixels between images and around the grid (torchvision's default).
pub const PADDING: i64 = 2;

/// The images `(N, 3, H, W)` (uint8) laid out `cols` per row; the last row is filled
/// with black. Returns an RGB image of `rows * (H + 2) + 2` by `cols * (W + 2) + 2` pixels.
///
/// # Errors
/// `images` is not a non-empty uint8 batch of RGB images, or `cols` is 0.
pub fn grid(images: &Tensor, cols: usize) -> Result<RgbImage> {
    let size = images.size();
    let [n, c, h, w] = size[..] else {
        bail!("a grid needs a batch (N, 3, H, W), got shape {size:?}");
    };
    if n == 0 || c != 3 || images.kind() != Kind::Uint8 || cols == 0 {
        bail!(
            "a grid needs N > 0 uint8 RGB images and a column count, got {size:?} {:?}, {cols} columns",
            images.kind()
        );
    }
    let cols = (cols as i64).min(n);
    let rows = (n + cols - 1) / cols;
    let x = images.to_device(Device::Cpu);
    let blank = Tensor::zeros([rows * cols - n, 3, h, w], (Kind::Uint8, Device::Cpu));
    let x = Tensor::cat(&[x, blank], 0).constant_pad_nd([
        PADDING / 2,
        PADDING / 2,
        PADDING / 2,
        PADDING / 2,
    ]);
    let (ch, cw) = (h + PADDING, w + PADDING);
    let x = x
        .view([rows, cols, 3, ch, cw])
        .permute([0, 3, 1, 4, 2]) // rows, cell height, cols, cell width, RGB
        .reshape([rows * ch, cols * cw, 3])
        .permute([2, 0, 1])
        .constant_pad_nd([PADDING / 2, PADDING / 2, PADDING / 2, PADDING / 2])
        .permute([1, 2, 0])
        .contiguous();
    let (height, width) = (rows * ch + PADDING, cols * cw + PADDING);
    let bytes = Vec::<u8>::try_from(x.view([-1]))?;
    RgbImage::from_raw(width as u32, height as u32, bytes).context("grid buffer has the wrong size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_images_row_major_with_borders() {
        // three 2x2 images of grey levels 10, 20, 30, two per row
        let imgs = Tensor::from_slice(&[10u8, 20, 30])
            .view([3, 1, 1, 1])
            .repeat([1, 3, 2, 2]);
        let g = grid(&imgs, 2).unwrap();
        // 2 rows, 2 cols: cell 4 px (2 + 2 padding), plus 2 px outer border
        assert_eq!(g.dimensions(), (2 * 4 + 2, 2 * 4 + 2));
        let at = |x: u32, y: u32| g.get_pixel(x, y).0[0];
        assert_eq!(at(0, 0), 0); // border
        assert_eq!(at(2, 2), 10); // first image
        assert_eq!(at(6, 3), 20); // second image, same row
        assert_eq!(at(3, 6), 30); // third image, second row
        assert_eq!(at(6, 6), 0); // the missing fourth is black
        assert!(grid(&imgs.to_kind(Kind::Float), 2).is_err());
        assert!(grid(&imgs, 0).is_err());
    }
}

//! A heat map laid over a photo (Grad-CAM's figures): each pixel blended with the jet
//! colour of its heat value.

use super::colormap::jet;
use anyhow::{bail, Result};
use image::{Rgb, RgbImage};

/// `photo` with `heat` (one value in `0..=1` per pixel, row-major, the photo's size)
/// drawn over it in jet colours: `(1 - opacity) * photo + opacity * jet(heat)`.
///
/// # Errors
/// `heat` does not hold one value per pixel, or `opacity` is outside `0..=1`.
pub(crate) fn heat_overlay(photo: &RgbImage, heat: &[f32], opacity: f64) -> Result<RgbImage> {
    let (w, h) = photo.dimensions();
    if heat.len() != (w as usize) * (h as usize) {
        bail!(
            "heat map has {} values for a {w}x{h} photo ({} pixels)",
            heat.len(),
            w * h
        );
    }
    if !(0.0..=1.0).contains(&opacity) {
        bail!("overlay opacity {opacity} is outside 0..=1");
    }
    let mix =
        |a: u8, b: u8| ((1.0 - opacity) * f64::from(a) + opacity * f64::from(b)).round() as u8;
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y);
        let c = jet(f64::from(heat[(y * w + x) as usize]));
        Rgb([mix(p[0], c.0), mix(p[1], c.1), mix(p[2], c.2)])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_blends_each_pixel_with_its_heat_colour() {
        let photo = RgbImage::from_pixel(2, 1, Rgb([200, 100, 0]));
        let out = heat_overlay(&photo, &[0.0, 1.0], 0.5).unwrap();
        assert_eq!(out.get_pixel(0, 0), &Rgb([100, 50, 64]));
        assert_eq!(out.get_pixel(1, 0), &Rgb([164, 50, 0]));
        let same = heat_overlay(&photo, &[0.3, 0.9], 0.0).unwrap();
        assert_eq!(same, photo);
        assert!(heat_overlay(&photo, &[0.0], 0.5).is_err());
        assert!(heat_overlay(&photo, &[0.0, 0.0], 1.5).is_err());
    }
}

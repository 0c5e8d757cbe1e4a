//! The corruption suite: nine corruptions, three severities each, fixed once and
//! documented here (never tuned to make a model look good).
//!
//! Where ImageNet-C has the corruption, the three severities are its levels 1, 3 and 5,
//! from `make_imagenet_c.py` in github.com/hendrycks/robustness (Hendrycks & Dietterich,
//! "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
//! ICLR 2019). Its images are 224 px, so the one parameter measured in pixels (the
//! Gaussian blur's sigma) is scaled by `image_size / 224`; the others are fractions of
//! the image or of the intensity range and need no scaling. Rotation and greyscale are
//! not in ImageNet-C; their levels are chosen here (see [`Corruption::levels`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Name and version of the suite; bump it whenever a level or an operation changes, so
/// that older results are recomputed rather than compared with new ones.
pub const SUITE: &str = "lab5-imagenet-c-subset-v1";
/// Side of ImageNet-C's images, in pixels (resolution-dependent levels are given there).
pub(crate) const IMAGENET_C_SIZE: f64 = 224.0;
/// Severities per corruption.
pub const SEVERITIES: usize = 3;
/// The ImageNet-C level each severity takes its parameter from.
pub(crate) const IMAGENET_C_LEVELS: [u8; SEVERITIES] = [1, 3, 5];

/// One corruption of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// Brightness raised: `c` added to the HSV value channel (ImageNet-C `brightness`).
    Brightness,
    /// Contrast lowered: each channel pulled towards its image mean by the factor `c`
    /// (ImageNet-C `contrast`).
    Contrast,
    /// Additive Gaussian noise of standard deviation `c` on the 0..1 scale, per pixel
    /// and channel (ImageNet-C `gaussian_noise`).
    GaussianNoise,
    /// Gaussian blur of standard deviation `c` pixels (ImageNet-C `gaussian_blur`).
    GaussianBlur,
    /// JPEG compression at quality `c` (ImageNet-C `jpeg_compression`).
    Jpeg,
    /// Pixelation: box-downsampled to `c` of the side, box-upsampled back (ImageNet-C
    /// `pixelate`).
    Pixelate,
    /// Zoom: the central `1/c` of the side cropped and resized back (the largest factor
    /// of ImageNet-C's `zoom_blur`, applied alone).
    Zoom,
    /// Rotation by `c` degrees, direction drawn per image, borders filled by reflection.
    Rotation,
    /// Colour removed: each pixel blended towards its luma by the share `c`.
    Greyscale,
}

impl Corruption {
    /// Every corruption, in the order they are reported.
    pub const ALL: [Corruption; 9] = [
        Corruption::Brightness,
        Corruption::Contrast,
        Corruption::GaussianNoise,
        Corruption::GaussianBlur,
        Corruption::Jpeg,
        Corruption::Pixelate,
        Corruption::Zoom,
        Corruption::Rotation,
        Corruption::Greyscale,
    ];

    /// The name used in files and tables (`gaussian_noise`).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::Brightness => "brightness",
            Corruption::Contrast => "contrast",
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::GaussianBlur => "gaussian_blur",
            Corruption::Jpeg => "jpeg",
            Corruption::Pixelate => "pixelate",
            Corruption::Zoom => "zoom",
            Corruption::Rotation => "rotation",
            Corruption::Greyscale => "greyscale",
        }
    }

    /// What the parameter `c` measures.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Corruption::Brightness => "added to HSV value (0-1)",
            Corruption::Contrast => "contrast factor",
            Corruption::GaussianNoise => "noise std (0-1 scale)",
            Corruption::GaussianBlur => "sigma (pixels)",
            Corruption::Jpeg => "JPEG quality",
            Corruption::Pixelate => "side kept",
            Corruption::Zoom => "zoom factor",
            Corruption::Rotation => "degrees",
            Corruption::Greyscale => "share of luma",
        }
    }

    /// True when the levels come from ImageNet-C (rotation and greyscale are not in it).
    pub(crate) fn in_imagenet_c(self) -> bool {
        !matches!(self, Corruption::Rotation | Corruption::Greyscale)
    }

    /// The parameter that leaves an image as it is (JPEG: quality 100, the mildest
    /// possible, which still rounds the pixels a little).
    #[cfg(test)]
    pub(crate) fn identity(self) -> f64 {
        match self {
            Corruption::Brightness
            | Corruption::GaussianNoise
            | Corruption::GaussianBlur
            | Corruption::Rotation
            | Corruption::Greyscale => 0.0,
            Corruption::Contrast | Corruption::Pixelate | Corruption::Zoom => 1.0,
            Corruption::Jpeg => 100.0,
        }
    }

    /// The parameter of each severity (mild, medium, strong) for images of
    /// `image_size` pixels.
    ///
    /// ImageNet-C levels 1 / 3 / 5 (`make_imagenet_c.py`):
    /// - brightness `c = [.1, .2, .3, .4, .5]` -> 0.1, 0.3, 0.5;
    /// - contrast `c = [0.4, .3, .2, .1, .05]` -> 0.4, 0.2, 0.05;
    /// - gaussian_noise `c = [.08, .12, 0.18, 0.26, 0.38]` -> 0.08, 0.18, 0.38;
    /// - gaussian_blur `c = [1, 2, 3, 4, 6]` -> 1, 3, 6 px at 224 px, times `size / 224`;
    /// - jpeg_compression `c = [25, 18, 15, 10, 7]` -> 25, 15, 7;
    /// - pixelate `c = [0.6, 0.5, 0.4, 0.3, 0.25]` -> 0.6, 0.4, 0.25;
    /// - zoom_blur `np.arange(1, 1.11, .01)`, `(1, 1.21, .02)`, `(1, 1.31, .03)` at levels
    ///   1, 3, 5: largest factors 1.10, 1.20, 1.30, used as a single zoom.
    ///
    /// Chosen here (not in ImageNet-C): rotation 10, 20, 30 degrees (the typical tilt of a
    /// hand-held photo up to a clearly tilted one); greyscale 1/3, 2/3 and 1 of the way to
    /// the luma (1 = a black-and-white photo).
    pub fn levels(self, image_size: i64) -> [f64; SEVERITIES] {
        let px = image_size as f64 / IMAGENET_C_SIZE;
        match self {
            Corruption::Brightness => [0.1, 0.3, 0.5],
            Corruption::Contrast => [0.4, 0.2, 0.05],
            Corruption::GaussianNoise => [0.08, 0.18, 0.38],
            Corruption::GaussianBlur => [1.0 * px, 3.0 * px, 6.0 * px],
            Corruption::Jpeg => [25.0, 15.0, 7.0],
            Corruption::Pixelate => [0.6, 0.4, 0.25],
            Corruption::Zoom => [1.10, 1.20, 1.30],
            Corruption::Rotation => [10.0, 20.0, 30.0],
            Corruption::Greyscale => [1.0 / 3.0, 2.0 / 3.0, 1.0],
        }
    }
}

/// A parameter as text: at most three decimals, trailing zeros dropped (`0.333`, `25`).
pub(crate) fn format_parameter(p: f64) -> String {
    let s = format!("{p:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The suite as data: every corruption with its levels at `image_size`, and the seed.
/// What a result depends on besides the model and the images (the pipeline's key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SuiteSettings {
    /// [`SUITE`].
    pub suite: String,
    /// Seed of the random parts (noise, rotation direction).
    pub seed: u64,
    /// Image side the levels were scaled to.
    pub image_size: i64,
    /// `(corruption, levels)` in [`Corruption::ALL`] order.
    pub levels: Vec<(Corruption, [f64; SEVERITIES])>,
}

impl SuiteSettings {
    /// The suite for images of `image_size` pixels with `seed`.
    pub(crate) fn new(image_size: i64, seed: u64) -> Self {
        SuiteSettings {
            suite: SUITE.to_string(),
            seed,
            image_size,
            levels: Corruption::ALL
                .iter()
                .map(|c| (*c, c.levels(image_size)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_match_imagenet_c_and_scale_only_the_blur() {
        assert_eq!(Corruption::GaussianBlur.levels(224), [1.0, 3.0, 6.0]);
        assert_eq!(Corruption::GaussianBlur.levels(112), [0.5, 1.5, 3.0]);
        for c in Corruption::ALL {
            if c != Corruption::GaussianBlur {
                assert_eq!(c.levels(112), c.levels(224), "{c}");
            }
        }
        assert_eq!(Corruption::Jpeg.levels(112), [25.0, 15.0, 7.0]);
        let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
        let json = serde_json::to_string(&Corruption::ALL).unwrap();
        assert_eq!(json, serde_json::to_string(&names).unwrap());
    }

    #[test]
    fn severities_move_away_from_the_identity() {
        for c in Corruption::ALL {
            let d: Vec<f64> = c
                .levels(112)
                .iter()
                .map(|p| (p - c.identity()).abs())
                .collect();
            assert!(d[0] > 0.0 && d[0] < d[1] && d[1] < d[2], "{c}: {d:?}");
        }
    }
}

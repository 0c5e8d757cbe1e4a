//! A convolution layer whose 3x3 kernels are set by hand (edge detectors, blur, sharpen)
//! applied to a real photo, and what one kernel does over one versus many input channels.

use super::photo::{grey, map_to_image, to_rgb_image};
use super::scalar;
use crate::plot::{self, Figure, Photo, Table};
use anyhow::Result;
use image::RgbImage;
use polars::prelude::*;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Side of the hand-set kernels.
pub(crate) const KERNEL_SIDE: i64 = 3;
/// Zero padding that keeps the picture's size with a 3x3 kernel.
const SAME_PADDING: i64 = 1;

/// A named 3x3 kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kernel {
    /// What it detects or does.
    pub name: &'static str,
    /// The weights, row by row.
    pub weights: [[f32; 3]; 3],
}

/// The hand-set kernels: blur, sharpen, vertical and horizontal edges (Sobel), all edges
/// (Laplacian).
pub const KERNELS: [Kernel; 5] = [
    Kernel {
        name: "blur (box mean)",
        weights: [[1. / 9.; 3]; 3],
    },
    Kernel {
        name: "sharpen",
        weights: [[0., -1., 0.], [-1., 5., -1.], [0., -1., 0.]],
    },
    Kernel {
        name: "vertical edges (Sobel x)",
        weights: [[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]],
    },
    Kernel {
        name: "horizontal edges (Sobel y)",
        weights: [[-1., -2., -1.], [0., 0., 0.], [1., 2., 1.]],
    },
    Kernel {
        name: "all edges (Laplacian)",
        weights: [[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]],
    },
];

/// The kernels stacked as conv weights `(K, 1, 3, 3)`.
fn weights(kernels: &[Kernel]) -> Tensor {
    let flat: Vec<f32> = kernels.iter().flat_map(|k| k.weights.concat()).collect();
    Tensor::from_slice(&flat).view([kernels.len() as i64, 1, KERNEL_SIDE, KERNEL_SIDE])
}

/// A real `nn::Conv2D` layer (1 input channel, one output channel per kernel, no bias)
/// whose weights are overwritten with `kernels`; the var store owns them.
pub(crate) fn hand_set_layer(kernels: &[Kernel]) -> Result<(nn::VarStore, nn::Conv2D)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = nn::ConvConfig {
        padding: SAME_PADDING,
        bias: false,
        ..Default::default()
    };
    let mut conv = nn::conv2d(
        vs.root() / "hand",
        1,
        kernels.len() as i64,
        KERNEL_SIDE,
        cfg,
    );
    tch::no_grad(|| conv.ws.f_copy_(&weights(kernels)))?;
    Ok((vs, conv))
}

/// The feature maps `(K, S, S)` of the greyscale version of `rgb` `(3, S, S)` under
/// `kernels`, computed by [`hand_set_layer`].
pub(crate) fn feature_maps(rgb: &Tensor, kernels: &[Kernel]) -> Result<Tensor> {
    let (_vs, conv) = hand_set_layer(kernels)?;
    let x = grey(rgb).unsqueeze(0);
    Ok(tch::no_grad(|| conv.forward(&x)).squeeze_dim(0))
}

/// Pictures with captions: the photo, its greyscale input, and one map per kernel.
pub(crate) fn feature_map_pictures(
    rgb: &Tensor,
    kernels: &[Kernel],
) -> Result<Vec<(String, RgbImage)>> {
    let maps = feature_maps(rgb, kernels)?;
    let mut out = vec![
        ("photo".to_string(), to_rgb_image(rgb)?),
        (
            "greyscale input".to_string(),
            map_to_image(&grey(rgb).squeeze_dim(0))?,
        ),
    ];
    for (i, k) in kernels.iter().enumerate() {
        out.push((k.name.to_string(), map_to_image(&maps.get(i as i64))?));
    }
    Ok(out)
}

/// Pictures per row in the grids of this module.
const GRID_COLUMNS: usize = 4;

/// Captioned pictures as an image grid.
pub(crate) fn grid(title: &str, pictures: Vec<(String, RgbImage)>) -> Result<Figure> {
    let items: Vec<(Photo, String)> = pictures
        .into_iter()
        .map(|(c, img)| (Photo::Image(img), c))
        .collect();
    plot::image_grid(title, &items, GRID_COLUMNS)
}

/// The photo, its greyscale input and the feature map of each kernel, as a figure.
pub fn feature_map_figure(rgb: &Tensor, kernels: &[Kernel]) -> Result<Figure> {
    grid(
        "A conv layer with hand-set 3x3 kernels: one feature map per kernel",
        feature_map_pictures(rgb, kernels)?,
    )
}

/// The kernels' weights as small annotated heat maps.
pub fn kernels_figure(kernels: &[Kernel]) -> Result<Figure> {
    let maps: Vec<(String, Vec<Vec<f64>>)> = kernels
        .iter()
        .map(|k| {
            (
                k.name.to_string(),
                k.weights
                    .iter()
                    .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                    .collect(),
            )
        })
        .collect();
    plot::heatmap_grid(
        "The hand-set 3x3 kernels (weights of the layer)",
        &maps,
        kernels.len(),
    )
}

/// One conv layer's weight shape, parameter count and output shape.
struct LayerShape {
    c_in: i64,
    c_out: i64,
    weight: Vec<i64>,
    params: i64,
    output: Vec<i64>,
}

fn layer_shape(x: &Tensor, c_out: i64) -> LayerShape {
    let vs = nn::VarStore::new(Device::Cpu);
    let c_in = x.size()[1];
    let cfg = nn::ConvConfig {
        padding: SAME_PADDING,
        ..Default::default()
    };
    let conv = nn::conv2d(vs.root(), c_in, c_out, KERNEL_SIDE, cfg);
    let params = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let output = tch::no_grad(|| conv.forward(x)).size();
    LayerShape {
        c_in,
        c_out,
        weight: conv.ws.size(),
        params,
        output,
    }
}

/// A table of conv layers over a greyscale (1 channel) and an RGB (3 channels) photo:
/// one 3x3 kernel spans all input channels, so its weight is `c_in x 3 x 3` and the
/// layer has `c_out * (c_in * 9 + 1)` parameters.
pub fn channels_table(rgb: &Tensor) -> Result<Table> {
    let (g, c) = (grey(rgb).unsqueeze(0), rgb.unsqueeze(0));
    let rows = [
        layer_shape(&g, 1),
        layer_shape(&c, 1),
        layer_shape(&c, 8),
        layer_shape(&c, 32),
    ];
    let shape = |v: &[i64]| format!("{v:?}");
    let df = df!(
        "input channels" => rows.iter().map(|r| r.c_in).collect::<Vec<_>>(),
        "output channels (kernels)" => rows.iter().map(|r| r.c_out).collect::<Vec<_>>(),
        "weight shape (out, in, kh, kw)" => rows.iter().map(|r| shape(&r.weight)).collect::<Vec<_>>(),
        "parameters (weights + biases)" => rows.iter().map(|r| r.params).collect::<Vec<_>>(),
        "output shape" => rows.iter().map(|r| shape(&r.output)).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

/// How one 3x3 kernel sees an RGB photo: its three slices filter R, G and B separately
/// and the layer's output is their sum.
#[derive(Debug)]
pub struct ChannelSum {
    /// The per-channel responses `(3, S, S)`.
    pub per_channel: Tensor,
    /// The layer's single output map `(S, S)`.
    pub output: Tensor,
    /// Largest absolute difference between the output and the sum of the responses.
    pub max_abs_difference: f64,
}

/// Applies one random `(1, 3, 3, 3)` kernel to `rgb`, and each of its slices to its own
/// channel, to show that a conv layer sums over input channels.
pub fn channel_sum(rgb: &Tensor) -> Result<ChannelSum> {
    let w = Tensor::randn([1, 3, KERNEL_SIDE, KERNEL_SIDE], (Kind::Float, Device::Cpu));
    let x = rgb.unsqueeze(0);
    let output = x
        .conv2d(&w, None::<Tensor>, [1], [SAME_PADDING], [1], 1)
        .squeeze();
    let slices = w.view([3, 1, KERNEL_SIDE, KERNEL_SIDE]);
    // groups = 3: slice c of the kernel sees only channel c.
    let per_channel = x
        .conv2d(&slices, None::<Tensor>, [1], [SAME_PADDING], [1], 3)
        .squeeze_dim(0);
    let diff = (per_channel.sum_dim_intlist(0, false, Kind::Float) - &output)
        .abs()
        .max();
    Ok(ChannelSum {
        per_channel,
        output,
        max_abs_difference: scalar(&diff)?,
    })
}

impl ChannelSum {
    /// Pictures with captions: the response to R, G and B, and their sum (the output).
    pub(crate) fn pictures(&self) -> Result<Vec<(String, RgbImage)>> {
        let mut out = Vec::new();
        for (i, name) in [
            "kernel slice 1 on R",
            "kernel slice 2 on G",
            "kernel slice 3 on B",
        ]
        .iter()
        .enumerate()
        {
            out.push((
                name.to_string(),
                map_to_image(&self.per_channel.get(i as i64))?,
            ));
        }
        out.push((
            "output = sum of the three".to_string(),
            map_to_image(&self.output)?,
        ));
        Ok(out)
    }

    /// The three responses and their sum, as a figure; the title gives the largest
    /// difference between the layer's output and the sum of the three responses.
    pub fn figure(&self) -> Result<Figure> {
        let title = format!(
            "One 3x3x3 kernel on an RGB photo: per-channel responses and their sum \
             (largest |output - sum| = {:.1e})",
            self.max_abs_difference
        );
        grid(&title, self.pictures()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Tensor {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        super::super::photo::photo(&cfg, crate::data::Class::Dog, 0).unwrap()
    }

    #[test]
    fn hand_set_kernels_blur_and_find_edges() {
        // A vertical step: left half dark, right half bright, in all three channels.
        let step = Tensor::cat(
            &[
                Tensor::zeros([3, 16, 8], (Kind::Float, Device::Cpu)),
                Tensor::ones([3, 16, 8], (Kind::Float, Device::Cpu)),
            ],
            2,
        );
        let maps = feature_maps(&step, &KERNELS).unwrap();
        let sobel_x = maps.get(2).get(8); // one row of the vertical-edge map
        let row = Vec::<f32>::try_from(&sobel_x).unwrap();
        assert!(
            row[7] > 3.0 && row[8] > 3.0 && row[3].abs() < 1e-5 && row[12].abs() < 1e-5,
            "{row:?}"
        );
        let sobel_y_energy = scalar(&maps.get(3).narrow(0, 1, 14).abs().max()).unwrap();
        assert!(
            sobel_y_energy < 1e-5,
            "no horizontal edges inside: {sobel_y_energy}"
        );
        let pics = feature_map_pictures(&photo(), &KERNELS).unwrap();
        assert_eq!(pics.len(), KERNELS.len() + 2);
    }

    #[test]
    fn one_kernel_sums_over_input_channels() {
        let rgb = photo();
        let s = channel_sum(&rgb).unwrap();
        assert!(s.max_abs_difference < 1e-4, "{}", s.max_abs_difference);
        let t = channels_table(&rgb).unwrap().0;
        let params: Vec<i64> = t
            .column("parameters (weights + biases)")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(params, vec![10, 28, 8 * 28, 32 * 28]);
    }
}

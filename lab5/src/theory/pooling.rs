//! Pooling: max and average pooling of a photo's feature map, before and after; their
//! hyper-parameters (window, stride, padding) and the fact that they have no weights.

use super::filters::{feature_maps, Kernel, KERNELS};
use super::photo::map_to_image;
use crate::plot::{Figure, Table};
use anyhow::{Context, Result};
use image::RgbImage;
use polars::prelude::*;
use tch::nn::{self, Module};
use tch::{Device, Tensor};

/// One pooling layer's hyper-parameters (all it has: there are no weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pool {
    /// `max` or `avg`.
    pub kind: PoolKind,
    /// Window side.
    pub window: i64,
    /// Step between windows.
    pub stride: i64,
    /// Zero (avg) or -inf (max) padding on each side.
    pub padding: i64,
}

/// Which statistic of the window a pooling layer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolKind {
    /// The largest value: "is the feature anywhere in this window?"
    Max,
    /// The mean value: a smoothed, downsampled map.
    Avg,
}

/// The settings shown: the CNN's 2x2/2 max pool, its average twin, and a 3x3/2 overlapping
/// max pool (ResNet's stem).
pub(crate) const POOLS: [Pool; 3] = [
    Pool {
        kind: PoolKind::Max,
        window: 2,
        stride: 2,
        padding: 0,
    },
    Pool {
        kind: PoolKind::Avg,
        window: 2,
        stride: 2,
        padding: 0,
    },
    Pool {
        kind: PoolKind::Max,
        window: 3,
        stride: 2,
        padding: 1,
    },
];

impl Pool {
    /// A human name, e.g. `max 2x2 / stride 2`.
    pub(crate) fn name(&self) -> String {
        let kind = match self.kind {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
        };
        format!(
            "{kind} {w}x{w} / stride {s}, pad {p}",
            w = self.window,
            s = self.stride,
            p = self.padding
        )
    }

    /// The pooling as a layer: a plain function of its input (`nn::func`), nothing to learn.
    pub(crate) fn layer(self) -> impl Module {
        nn::func(move |xs| self.apply(xs))
    }

    /// Pools `xs` `(N, C, H, W)`.
    pub(crate) fn apply(&self, xs: &Tensor) -> Tensor {
        let (w, s, p) = ([self.window; 2], [self.stride; 2], [self.padding; 2]);
        match self.kind {
            PoolKind::Max => xs.max_pool2d(w, s, p, [1, 1], false),
            PoolKind::Avg => xs.avg_pool2d(w, s, p, false, true, None),
        }
    }
}

/// The map pooled in the demonstration: the photo's vertical-edge response (its absolute
/// value, so that "strong edge" is bright whatever its sign), `(1, 1, S, S)`.
pub(crate) fn edge_map(rgb: &Tensor) -> Result<Tensor> {
    let sobel: Kernel = *KERNELS
        .iter()
        .find(|k| k.name.starts_with("vertical"))
        .context("no vertical-edge kernel")?;
    Ok(feature_maps(rgb, &[sobel])?.abs().unsqueeze(0))
}

/// Pictures with captions: the edge map before, and after each of [`POOLS`].
pub(crate) fn pictures(rgb: &Tensor) -> Result<Vec<(String, RgbImage)>> {
    let map = edge_map(rgb)?;
    let side = map.size()[3];
    let mut out = vec![(
        format!("before: {side}x{side}"),
        map_to_image(&map.squeeze())?,
    )];
    for p in POOLS {
        let y = p.apply(&map);
        let caption = format!("{}: {}x{}", p.name(), y.size()[2], y.size()[3]);
        out.push((caption, map_to_image(&y.squeeze())?));
    }
    Ok(out)
}

/// The edge map before and after each pooling, as a figure.
pub fn figure(rgb: &Tensor) -> Result<Figure> {
    super::filters::grid(
        "Pooling the vertical-edge map: same content, fewer pixels",
        pictures(rgb)?,
    )
}

/// Parameters a layer built in a fresh var store by `build` registers.
fn params_of<M>(build: impl FnOnce(&nn::Path) -> M) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    let _layer = build(&vs.root());
    vs.variables().values().map(|t| t.numel() as i64).sum()
}

/// The table: each pooling's hyper-parameters, shapes before/after and parameter count (0),
/// next to a 3x3 convolution with the same stride for contrast.
pub fn table(rgb: &Tensor) -> Result<Table> {
    let map = edge_map(rgb)?;
    let shape = |t: &Tensor| format!("{:?}", t.size());
    let mut names: Vec<String> = POOLS.iter().map(Pool::name).collect();
    let mut outs: Vec<String> = POOLS.iter().map(|p| shape(&p.apply(&map))).collect();
    let mut params: Vec<i64> = POOLS.iter().map(|p| params_of(|_| p.layer())).collect();
    let conv_cfg = nn::ConvConfig {
        stride: 2,
        padding: 1,
        ..Default::default()
    };
    let conv = tch::no_grad(|| {
        nn::conv2d(nn::VarStore::new(Device::Cpu).root(), 1, 1, 3, conv_cfg).forward(&map)
    });
    names.push("for contrast: conv 3x3 / stride 2, 1 -> 1 channel".into());
    outs.push(shape(&conv));
    params.push(params_of(|p| nn::conv2d(p, 1, 1, 3, conv_cfg)));
    let df = df!(
        "layer" => names,
        "input shape" => vec![shape(&map); POOLS.len() + 1],
        "output shape" => outs,
        "parameters" => params,
    )?;
    Ok(Table(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_halves_the_map_and_has_no_parameters() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let rgb = super::super::photo::photo(&cfg, crate::data::Class::Cat, 1).unwrap();
        let t = table(&rgb).unwrap().0;
        let params: Vec<i64> = t
            .column("parameters")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(params, vec![0, 0, 0, 10]);
        let x = Tensor::from_slice(&[1f32, 2., 5., 6., 3., 4., 7., 8.]).view([1, 1, 2, 4]);
        let max = Vec::<f32>::try_from(POOLS[0].apply(&x).flatten(0, -1)).unwrap();
        let avg = Vec::<f32>::try_from(POOLS[1].apply(&x).flatten(0, -1)).unwrap();
        assert_eq!((max, avg), (vec![4., 8.], vec![2.5, 6.5]));
        assert_eq!(pictures(&rgb).unwrap().len(), POOLS.len() + 1);
    }
}

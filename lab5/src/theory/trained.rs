//! The trained CNN (the run in `runs/cnn`, written by notebook 03 or `lab5 train cnn`): the
//! learned kernels of its first conv layer, and what its first and its last conv block
//! respond to in a photo. Early maps are sharp (each unit sees 3x3 pixels); late maps are
//! coarse (each unit sees 78x78 of the 112 pixels, see [`super::receptive`]).

use super::photo::{map_to_image, photo_u8, to_rgb_image};
use crate::data::loader::{normalize, Normalize};
use crate::data::Class;
use crate::models::{cnn, Cnn, ModelSpec, Net};
use crate::plot::{self, Figure, Note, Photo, Shown};
use crate::train::checkpoint;
use crate::train::record::{RunRecord, RUN_FILE};
use crate::train::run::CNN_RUN;
use crate::Config;
use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// Feature maps shown per layer: the most active channels for the photo.
pub(crate) const MAPS_PER_LAYER: usize = 6;

/// The trained CNN with its best weights, or `None` when `runs/cnn` holds no run.
pub(crate) fn trained_cnn(cfg: &Config) -> Result<Option<(Cnn, RunRecord)>> {
    let dir = cfg.runs_dir().join(CNN_RUN);
    if !dir.join(RUN_FILE).is_file() {
        return Ok(None);
    }
    let record = RunRecord::load(&dir)?;
    if record.model.kind != cnn::KIND {
        bail!(
            "{} holds a {:?} run, not a CNN",
            dir.display(),
            record.model.kind
        );
    }
    let spec = &record.model;
    let mut net = Cnn::new(&spec.config.cnn, spec.image_size, Device::Cpu)?;
    checkpoint::load(net.var_store_mut(), &record.best_weights())?;
    Ok(Some((net, record)))
}

/// The `(C, H, W)` map of `layer` for one photo, and the indices of its `n` most active
/// channels (highest mean activation).
fn strongest(acts: &[(String, Tensor)], layer: &str, n: usize) -> Result<(Tensor, Vec<i64>)> {
    let (_, t) = acts
        .iter()
        .find(|(name, _)| name == layer)
        .with_context(|| format!("the CNN has no layer {layer}"))?;
    let maps = t.squeeze_dim(0).to_kind(Kind::Float).contiguous();
    let means = maps.mean_dim([1i64, 2].as_slice(), false, Kind::Float);
    let k = (n as i64).min(means.size()[0]);
    let (_, idx) = means.topk(k, 0, true, true);
    Ok((maps, Vec::<i64>::try_from(&idx)?))
}

/// The photo and the strongest maps of the first and the last conv block of `net` (built
/// from `spec`) as a figure.
pub(crate) fn figure(
    net: &Cnn,
    spec: &ModelSpec,
    cfg: &Config,
    class: Class,
    index: usize,
) -> Result<Figure> {
    let u8 = photo_u8(cfg, class, index, spec.image_size, spec.resize_shorter)?;
    let norm = Normalize {
        mean: spec.normalize.mean,
        std: spec.normalize.std,
    };
    let acts = net.activations(&normalize(&u8.unsqueeze(0), &norm, Device::Cpu));
    let blocks = spec.config.cnn.channels.len();
    let mut items = vec![(
        Photo::Image(to_rgb_image(&(u8.to_kind(Kind::Float) / 255.0))?),
        format!("input {0}x{0}", spec.image_size),
    )];
    for layer in ["block1.relu".to_string(), format!("block{blocks}.relu")] {
        let (maps, idx) = strongest(&acts, &layer, MAPS_PER_LAYER)?;
        for c in idx {
            let m = maps.get(c);
            let caption = format!("{layer} #{c} ({}x{})", m.size()[0], m.size()[1]);
            items.push((Photo::Image(map_to_image(&m)?), caption));
        }
    }
    plot::image_grid(
        "Trained CNN: strongest feature maps, first block (top) vs last block",
        &items,
        MAPS_PER_LAYER + 1,
    )
}

/// The feature maps of the trained CNN for photo `index` of `class`, or a note on how to
/// train it when `runs/cnn` holds no run yet (so the cell never fails for that reason).
pub fn feature_maps(cfg: &Config, class: Class, index: usize) -> Result<Shown> {
    match trained_cnn(cfg)? {
        Some((net, record)) => Ok(Shown::Figure(figure(
            &net,
            &record.model,
            cfg,
            class,
            index,
        )?)),
        None => Ok(Shown::Note(no_run_note(
            cfg,
            "what the first and the last conv block of the trained network respond to in this photo",
        ))),
    }
}

/// Name of the first conv layer's weight in the CNN's var store.
const FIRST_CONV: &str = "block1.conv.weight";
/// Side each 3x3 kernel is enlarged to (nearest neighbour: one square per weight).
const KERNEL_PX: u32 = 162;
/// Kernels per row of the figure.
const KERNEL_COLS: usize = 8;

/// One `(3, k, k)` kernel as a colour picture: its weights mapped linearly from the kernel's
/// own `[min, max]` to `[0, 1]` (grey = the middle of its range; a pure colour means the
/// kernel weights that channel most).
fn kernel_image(w: &Tensor) -> Result<image::RgbImage> {
    let w = w.to_kind(Kind::Float);
    let (lo, hi) = (w.min(), w.max());
    let unit = (&w - &lo) / (&hi - &lo).clamp_min(1e-12);
    let img = to_rgb_image(&unit)?;
    let f = image::imageops::FilterType::Nearest;
    Ok(image::imageops::resize(&img, KERNEL_PX, KERNEL_PX, f))
}

/// The kernels of the first conv layer of `net` as a figure (one tile per output channel).
pub(crate) fn kernels_figure(net: &Cnn, title: &str) -> Result<Figure> {
    let vars = net.var_store().variables();
    let w = vars
        .get(FIRST_CONV)
        .with_context(|| format!("the CNN has no {FIRST_CONV}"))?;
    let items = (0..w.size()[0])
        .map(|c| {
            Ok((
                Photo::Image(kernel_image(&w.get(c))?),
                format!("kernel #{c}"),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    plot::image_grid(title, &items, KERNEL_COLS)
}

/// The learned 3x3x3 kernels of the trained CNN's first layer, or a note on how to train it.
pub fn first_layer_kernels(cfg: &Config) -> Result<Shown> {
    match trained_cnn(cfg)? {
        Some((net, _)) => Ok(Shown::Figure(kernels_figure(
            &net,
            "Trained CNN: the learned 3x3x3 kernels of block1.conv (RGB, each scaled to its range)",
        )?)),
        None => Ok(Shown::Note(no_run_note(
            cfg,
            "the learned kernels of its first layer",
        ))),
    }
}

/// What to do when `runs/cnn` holds no run; `what` names what the cell would show.
fn no_run_note(cfg: &Config, what: &str) -> Note {
    Note(format!(
        "**No trained CNN yet** in `{}`. Train it with notebook `03_cnn` (or `lab5 train cnn`, \
         or `make run`), then run this cell again: it will show {what}.",
        cfg.runs_dir().join(CNN_RUN).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap()
    }

    #[test]
    fn without_a_run_the_cell_explains_how_to_get_one() {
        let mut cfg = config();
        cfg.paths.runs_dir =
            std::env::temp_dir().join(format!("lab5-no-runs-{}", std::process::id()));
        for shown in [
            feature_maps(&cfg, Class::Cat, 0).unwrap(),
            first_layer_kernels(&cfg).unwrap(),
        ] {
            match shown {
                Shown::Note(n) => assert!(
                    n.0.contains("03_cnn") && n.0.contains("lab5 train cnn"),
                    "{n}"
                ),
                other => panic!("a result without a trained run: {other:?}"),
            }
        }
    }

    #[test]
    fn feature_maps_of_first_and_last_block() {
        let cfg = config();
        let spec = crate::train::run::cnn_spec(&cfg);
        let net = Cnn::new(&cfg.cnn, spec.image_size, Device::Cpu).unwrap();
        let fig = figure(&net, &spec, &cfg, Class::Dog, 2).unwrap();
        let blocks = cfg.cnn.channels.len();
        assert!(
            fig.svg().contains("block1.relu") && fig.svg().contains(&format!("block{blocks}.relu"))
        );
        assert_eq!(fig.svg().matches("<image").count(), 1 + 2 * MAPS_PER_LAYER);
        let kernels = kernels_figure(&net, "fresh").unwrap();
        assert_eq!(
            kernels.svg().matches("<image").count(),
            cfg.cnn.channels[0] as usize
        );
    }
}

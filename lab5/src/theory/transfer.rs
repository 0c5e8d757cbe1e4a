//! Transfer learning in two tables: the pretrained EfficientNet-Lite0 backbone (ImageNet)
//! frozen next to the small head we train on top of it, and what the backbone already
//! knows about cats and dogs before any training (its ImageNet classifier, zero-shot).

use super::photo::photo_u8;
use crate::data::loader::{normalize, IMAGENET};
use crate::data::Class;
use crate::models::efficientnet::{cat_dog_neither, EfficientNetLite0, INPUT_SIZE};
use crate::plot::{Note, Shown, Table};
use crate::Config;
use anyhow::Result;
use polars::prelude::*;
use tch::{nn, Device, Tensor};

/// Suffixes of batch-norm buffers (stored, never trained: not parameters).
const BUFFERS: [&str; 2] = ["running_mean", "running_var"];

/// The backbone with its ImageNet weights, last `unfrozen` blocks trainable, or a note
/// saying how to get the weights.
fn backbone(cfg: &Config, unfrozen: usize) -> Result<std::result::Result<EfficientNetLite0, Note>> {
    let path = EfficientNetLite0::weights_path(cfg);
    if !path.is_file() {
        let msg = format!("**No EfficientNet-Lite0 weights** at `{}`: run `make setup` (scripts/setup.sh converts them once), then run this cell again.", path.display());
        return Ok(Err(Note(msg)));
    }
    Ok(Ok(EfficientNetLite0::load_with(
        &path,
        Device::Cpu,
        unfrozen,
    )?))
}

/// (parameters, trainable parameters) of a var store; batch-norm buffers excluded.
fn counts(vs: &nn::VarStore) -> (i64, i64) {
    let total = vs
        .variables()
        .iter()
        .filter(|(n, _)| !BUFFERS.iter().any(|b| n.ends_with(b)))
        .map(|(_, t)| t.numel() as i64)
        .sum();
    let trainable = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    (total, trainable)
}

/// Parameters of a head `1280 -> hidden -> embedding -> 2` as `transfer.*` configures it.
fn head_params(cfg: &Config) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    let t = &cfg.transfer;
    let dims = [
        crate::models::efficientnet::FEATURES,
        t.hidden,
        t.embedding_dim,
        2,
    ];
    for (i, w) in dims.windows(2).enumerate() {
        let _ = nn::linear(vs.root() / i, w[0], w[1], Default::default());
    }
    counts(&vs).0
}

/// The table: the frozen backbone, the backbone with `transfer.unfreeze_blocks` blocks
/// unfrozen (fine-tuning), and the new head; parameters and how many of them train.
pub fn parameters_table(cfg: &Config) -> Result<Shown> {
    let unfrozen = cfg.transfer.unfreeze_blocks.max(2);
    let (frozen, tuned) = match (backbone(cfg, 0)?, backbone(cfg, unfrozen)?) {
        (Ok(a), Ok(b)) => (counts(a.var_store()), counts(b.var_store())),
        (Err(note), _) | (_, Err(note)) => return Ok(Shown::Note(note)),
    };
    let head = head_params(cfg);
    let df = df!(
        "part" => [
            "EfficientNet-Lite0 backbone, ImageNet weights, frozen".to_string(),
            format!("same backbone, last {unfrozen} blocks + head conv unfrozen (fine-tuning)"),
            format!("new head 1280 -> {} -> {} -> 2 (trained from scratch)", cfg.transfer.hidden, cfg.transfer.embedding_dim),
        ],
        "parameters" => [frozen.0, tuned.0, head],
        "trained" => [frozen.1, tuned.1, head],
    )?;
    Ok(Shown::Table(Table(df)))
}

/// The photos at the backbone's input size, normalised with ImageNet's mean and std,
/// `(N, 3, 224, 224)`.
fn imagenet_batch(cfg: &Config, photos: &[(Class, usize)]) -> Result<Tensor> {
    let shorter = INPUT_SIZE * cfg.preprocess.resize_shorter / cfg.preprocess.image_size;
    let imgs = photos
        .iter()
        .map(|&(c, i)| photo_u8(cfg, c, i, INPUT_SIZE, shorter))
        .collect::<Result<Vec<_>>>()?;
    Ok(normalize(&Tensor::stack(&imgs, 0), &IMAGENET, Device::Cpu))
}

/// Without any training on our data (often called "zero-shot", though cats and dogs are
/// ImageNet classes): the ImageNet classifier's probability mass on its cat classes, its dog
/// classes and everything else, for the given photos, before any training on our data.
pub fn zero_shot(cfg: &Config, photos: &[(Class, usize)]) -> Result<Shown> {
    let net = match backbone(cfg, 0)? {
        Ok(net) => net,
        Err(note) => return Ok(Shown::Note(note)),
    };
    let x = imagenet_batch(cfg, photos)?;
    let p = tch::no_grad(|| cat_dog_neither(&net.logits(&x)));
    let col = |k: i64| {
        super::values(&p.select(1, k))
            .map(|v| v.iter().map(|x| format!("{:.3}", x)).collect::<Vec<_>>())
    };
    let df = df!(
        "photo" => photos.iter().map(|(c, i)| format!("{c} #{i}")).collect::<Vec<_>>(),
        "p(cat classes)" => col(0)?, "p(dog classes)" => col(1)?, "p(anything else)" => col(2)?,
    )?;
    Ok(Shown::Table(Table(df)))
}

/// The batch-norm buffers of a var store, by name (copies).
fn running_stats(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| BUFFERS.iter().any(|b| n.ends_with(b)))
        .map(|(n, t)| (n, t.copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Largest absolute difference between two lists of tensors.
fn max_difference(a: &[Tensor], b: &[Tensor]) -> Result<f64> {
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| super::scalar(&(x - y).abs().max()))
        .collect::<Result<Vec<_>>>()?;
    Ok(d.into_iter().fold(0.0, f64::max))
}

/// The frozen backbone's batch-norm in evaluation mode, checked: each photo's features are
/// the same alone as in a batch with others, and the running statistics do not move.
pub fn frozen_batch_norm(cfg: &Config, photos: &[(Class, usize)]) -> Result<Shown> {
    let net = match backbone(cfg, 0)? {
        Ok(net) => net,
        Err(note) => return Ok(Shown::Note(note)),
    };
    let x = imagenet_batch(cfg, photos)?;
    let before = running_stats(net.var_store());
    let (batched, alone) = tch::no_grad(|| {
        let batched = net.features(&x);
        let alone: Vec<Tensor> = (0..x.size()[0])
            .map(|i| net.features(&x.narrow(0, i, 1)))
            .collect();
        (batched, alone)
    });
    let rows: Vec<Tensor> = (0..batched.size()[0])
        .map(|i| batched.narrow(0, i, 1))
        .collect();
    let after = running_stats(net.var_store());
    let stats =
        |v: &[(String, Tensor)]| v.iter().map(|(_, t)| t.shallow_clone()).collect::<Vec<_>>();
    let df = df!(
        "check" => [
            format!("features of each photo: in a batch of {} vs alone", photos.len()),
            format!("running mean/var of the {} batch-norm layers: before vs after", before.len() / 2),
        ],
        "max |difference|" => [
            format!("{:.1e}", max_difference(&rows, &alone)?),
            format!("{:.1e}", max_difference(&stats(&before), &stats(&after))?),
        ],
    )?;
    Ok(Shown::Table(Table(df)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_backbone_trains_nothing_and_already_tells_cats_from_dogs() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let Shown::Table(t) = parameters_table(&cfg).unwrap() else {
            panic!("weights missing: run scripts/setup.sh")
        };
        let trained: Vec<i64> =
            t.0.column("trained")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
        let params: Vec<i64> =
            t.0.column("parameters")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
        assert_eq!(trained[0], 0);
        assert!(
            params[0] > 3_000_000 && trained[1] > 0 && trained[1] < params[1],
            "{}",
            t.0
        );
        let Shown::Table(z) = zero_shot(&cfg, &[(Class::Cat, 0), (Class::Dog, 9)]).unwrap() else {
            panic!()
        };
        let p = |col: &str, row: usize| -> f64 {
            z.0.column(col)
                .unwrap()
                .str()
                .unwrap()
                .get(row)
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(
            p("p(cat classes)", 0) > 0.5 && p("p(dog classes)", 1) > 0.5,
            "{}",
            z.0
        );
    }

    #[test]
    fn frozen_backbone_batch_norm_ignores_the_batch() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let photos = [(Class::Cat, 0), (Class::Dog, 1), (Class::Dog, 2)];
        let Shown::Table(t) = frozen_batch_norm(&cfg, &photos).unwrap() else {
            panic!("weights missing: run scripts/setup.sh")
        };
        let d: Vec<f64> = super::super::strings(&t, "max |difference|")
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(d[0] < 1e-4 && d[1] == 0.0, "{}", t.0);
    }
}

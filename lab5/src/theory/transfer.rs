//! Transfer learning in two tables: the pretrained EfficientNet-Lite0 backbone (ImageNet)
//! frozen next to the small head we train on top of it, and what the backbone already
//! knows about cats and dogs before any training (its ImageNet classifier, zero-shot).

use super::photo::photo_u8;
use crate::data::loader::{normalize, IMAGENET};
use crate::data::Class;
use crate::models::efficientnet::{self, cat_dog_neither, EfficientNetLite0, INPUT_SIZE};
use crate::plot::{Note, Shown, Table};
use crate::Config;
use anyhow::{Context, Result};
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

/// The fine-tuning row's name: what `transfer.unfreeze_blocks` configures, or a row for
/// comparison when the config keeps fewer than 2 blocks unfrozen.
fn fine_tuning_label(cfg: &Config, unfrozen: usize) -> String {
    let configured = cfg.transfer.unfreeze_blocks;
    let what = if configured == unfrozen {
        "fine-tuning, as transfer.unfreeze_blocks configures".to_string()
    } else {
        format!(
            "fine-tuning, for comparison: the config has transfer.unfreeze_blocks = {configured}"
        )
    };
    format!("same backbone, last {unfrozen} blocks + head conv unfrozen ({what})")
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
            fine_tuning_label(cfg, unfrozen),
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

/// The backbone's stem, `_conv_stem` (3x3, stride 2, TensorFlow `SAME` padding) then `_bn0`,
/// on `x` `(N, 3, 224, 224)`, with the batch norm in training (`train`) or evaluation mode
/// and *copies* of its running statistics: `(output (N, 32, 112, 112), running mean,
/// running var)` after the pass. Training mode is what PyTorch's `model.train()` does to a
/// backbone whose parameters merely have `requires_grad = False`: it normalises with the
/// batch's statistics and moves the running ones (momentum 0.01, as the backbone's).
fn stem(vs: &nn::VarStore, x: &Tensor, train: bool) -> Result<(Tensor, Tensor, Tensor)> {
    let vars = vs.variables();
    let get = |n: &str| {
        vars.get(n)
            .map(|t| t.detach())
            .with_context(|| format!("the backbone has no variable {n}"))
    };
    let w = get("_conv_stem.weight")?;
    let (k, s) = (w.size()[2], efficientnet::STEM_STRIDE);
    let (top, bottom) = efficientnet::same_padding(x.size()[2], k, s);
    let (left, right) = efficientnet::same_padding(x.size()[3], k, s);
    let z = x.constant_pad_nd([left, right, top, bottom]).conv2d(
        &w,
        None::<Tensor>,
        [s, s],
        [0, 0],
        [1, 1],
        1,
    );
    let (mean, var) = (
        get("_bn0.running_mean")?.copy(),
        get("_bn0.running_var")?.copy(),
    );
    let (g, b) = (get("_bn0.weight")?, get("_bn0.bias")?);
    let (m, e) = (efficientnet::BN_MOMENTUM, efficientnet::BN_EPS);
    let y = z.batch_norm(
        Some(&g),
        Some(&b),
        Some(&mean),
        Some(&var),
        train,
        m,
        e,
        false,
    );
    Ok((y, mean, var))
}

/// Largest difference between each photo's stem output in the batch and alone, and largest
/// change of the stem batch norm's running statistics after the batched pass.
fn stem_check(vs: &nn::VarStore, x: &Tensor, train: bool) -> Result<(f64, f64)> {
    tch::no_grad(|| {
        let (batched, mean, var) = stem(vs, x, train)?;
        let rows: Vec<Tensor> = (0..x.size()[0]).map(|i| batched.narrow(0, i, 1)).collect();
        let alone = (0..x.size()[0])
            .map(|i| Ok(stem(vs, &x.narrow(0, i, 1), train)?.0))
            .collect::<Result<Vec<_>>>()?;
        let (_, mean0, var0) = stem(vs, &x.narrow(0, 0, 1), false)?;
        let moved = max_difference(&[mean, var], &[mean0, var0])?;
        Ok((max_difference(&rows, &alone)?, moved))
    })
}

/// The whole frozen backbone as lab5 runs it: the largest difference between each photo's
/// features in the batch and alone, and the largest change of any batch-norm buffer.
fn backbone_check(net: &EfficientNetLite0, x: &Tensor) -> Result<(f64, f64)> {
    let before = running_stats(net.var_store());
    let (batched, alone) = tch::no_grad(|| {
        let batched = net.features(x);
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
    Ok((
        max_difference(&rows, &alone)?,
        max_difference(&stats(&before), &stats(&after))?,
    ))
}

/// The frozen backbone's batch norm in evaluation mode, checked, against the contrast that
/// can fail: each photo's features are the same alone as in a batch with others and the
/// running statistics do not move (the whole backbone, as lab5 runs it); the stem's batch
/// norm in *training* mode (PyTorch's `model.train()` on a backbone frozen only by
/// `requires_grad = False`) gives a photo a different output in the batch than alone, and
/// moves its running statistics. Photos as `(class, index)` in `data.folder`; at least two.
pub fn frozen_batch_norm(cfg: &Config, photos: &[(Class, usize)]) -> Result<Shown> {
    anyhow::ensure!(
        photos.len() >= 2,
        "the check needs a batch of at least 2 photos, got {}",
        photos.len()
    );
    let net = match backbone(cfg, 0)? {
        Ok(net) => net,
        Err(note) => return Ok(Shown::Note(note)),
    };
    let x = imagenet_batch(cfg, photos)?;
    let whole = backbone_check(&net, &x)?;
    let eval = stem_check(net.var_store(), &x, false)?;
    let train = stem_check(net.var_store(), &x, true)?;
    let n = photos.len();
    let layers = running_stats(net.var_store()).len() / 2;
    let df = df!(
        "batch norm" => [
            "evaluation mode (lab5's frozen backbone)", "evaluation mode (lab5's frozen backbone)",
            "evaluation mode", "evaluation mode",
            "training mode (contrast)", "training mode (contrast)",
        ],
        "check" => [
            format!("whole backbone: each photo's 1280 features, in a batch of {n} vs alone"),
            format!("whole backbone: running mean/var of its {layers} batch-norm layers, before vs after"),
            format!("stem (conv + batch norm): each photo's output, in a batch of {n} vs alone"),
            "stem batch norm: running mean/var, before vs after the batch".to_string(),
            format!("stem (conv + batch norm): each photo's output, in a batch of {n} vs alone"),
            "stem batch norm: running mean/var, before vs after the batch".to_string(),
        ],
        "max |difference|" => [whole.0, whole.1, eval.0, eval.1, train.0, train.1]
            .iter().map(|d| format!("{d:.1e}")).collect::<Vec<_>>(),
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
        // lab5's frozen backbone, and the stem's batch norm in evaluation mode: no dependence
        // on the batch, no moving statistics.
        assert!(d[0] < 1e-4 && d[1] == 0.0, "{}", t.0);
        assert!(d[2] < 1e-4 && d[3] == 0.0, "{}", t.0);
        // The contrast, training mode: the batch changes each photo's output by a lot (the
        // output is normalised to about unit scale), and the statistics move.
        assert!(d[4] > 0.1 && d[5] > 1e-4, "{}", t.0);
    }
}

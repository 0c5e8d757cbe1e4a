//! The computed parts of the model cards of notebook `00_theory` (section 12): the CNN's
//! hyper-parameters with their values as `config.json` sets them, and EfficientNet-Lite0's
//! architecture, stage by stage, from the model the lab builds.

use crate::models::efficientnet::{self, EfficientNetLite0};
use crate::plot::Table;
use crate::Config;
use anyhow::Result;
use polars::prelude::*;
use tch::Device;

/// One hyper-parameter: its `config.json` key (or where it is fixed), its value, its effect.
fn row(key: &str, value: String, effect: &str) -> (String, String, String) {
    (key.to_string(), value, effect.to_string())
}

/// The CNN's hyper-parameters as `cfg` sets them, with what each does.
pub fn cnn_hyperparameters(cfg: &Config) -> Result<Table> {
    let (c, t) = (&cfg.cnn, &cfg.cnn.train);
    let train_photos = (cfg.data.per_class as f64 * cfg.data.split.train).round();
    let rows = [
        row("preprocess.image_size", format!("{} px", cfg.preprocess.image_size), "input side: receptive fields, compute (∝ side²)"),
        row("cnn.channels", format!("{:?}", c.channels), "one conv block each: depth and width, parameters"),
        row("cnn.stem_stride", c.stem_stride.to_string(), "1: block 1 is conv + max-pool; 2: a strided conv halves the side instead"),
        row("cnn.residual_after", format!("{:?}", c.residual_after), "blocks followed by a residual basic block (He et al. 2016; [] = the plain chain)"),
        row("cnn.embedding_dim", c.embedding_dim.to_string(), "size of the embedding (penultimate layer)"),
        row("cnn.dropout", c.dropout.to_string(), "probability of zeroing a unit before each linear layer, in training (Srivastava et al. 2014)"),
        row("cnn.batch_norm", c.batch_norm.to_string(), "batch norm after every conv (section 7)"),
        row("(fixed in the code)", "He-uniform, Var(w) = 2/fan_in".into(), "initialisation of convs and linear layers: tch's default (section 3)"),
        row("(fixed in the code)", "AdamW + one-cycle".into(), "optimiser and learning-rate schedule (see the card)"),
        row("cnn.max_lr", t.max_lr.to_string(), "peak learning rate of the one-cycle schedule"),
        row("cnn.weight_decay", t.weight_decay.to_string(), "AdamW's decoupled weight decay λ"),
        row("cnn.batch_size", t.batch_size.to_string(), "photos per step (and per batch-norm statistic)"),
        row("cnn.epochs", t.epochs.to_string(), "most passes over the training photos"),
        row("cnn.patience", t.patience.to_string(), "epochs without a better validation loss before stopping"),
        row("cnn.label_smoothing", t.label_smoothing.to_string(), "ε of the smoothed cross-entropy targets"),
        row("cnn.ema_decay", t.ema_decay.to_string(), "decay of the moving average of the weights (0 = off)"),
        row("cnn.tta_hflip", c.tta_hflip.to_string(), "evaluation averages a photo and its mirror image"),
        row("data.per_class × data.split.train", format!("{train_photos} photos per class"), "training data (plus augmentation, `augment.*`)"),
    ];
    let df = df!(
        "hyper-parameter" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        "what it sets" => rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

/// EfficientNet-Lite0 as lab5 builds it: the stem, the seven stages of MBConv blocks
/// (repeats, expansion, depthwise kernel, stride, channels, how many blocks have the skip
/// connection), the head conv and the classifier, with parameters counted on the built
/// network (no weights file needed).
pub fn efficientnet_lite0_table() -> Result<Table> {
    let net = EfficientNetLite0::new(Device::Cpu, 0)?;
    let params = |prefix: &str| -> i64 {
        net.var_store()
            .variables()
            .iter()
            .filter(|(n, _)| n.starts_with(prefix) && !n.contains("running_"))
            .map(|(_, t)| t.numel() as i64)
            .sum()
    };
    let shapes = efficientnet::block_shapes();
    let mut rows: Vec<[String; 3]> = vec![[
        "stem".into(),
        "3×3 conv, stride 2, 3 → 32, BN, ReLU6".into(),
        (params("_conv_stem.") + params("_bn0.")).to_string(),
    ]];
    let mut first = 0;
    while first < shapes.len() {
        let s = shapes[first];
        let n = shapes[first..]
            .iter()
            .take_while(|b| (b.kernel, b.expand, b.c_out) == (s.kernel, s.expand, s.c_out))
            .count();
        let skips = shapes[first..first + n]
            .iter()
            .filter(|b| b.stride == 1 && b.c_in == b.c_out)
            .count();
        let what = format!(
            "{n} × MBConv: 1×1 expand ×{}, {k}×{k} depthwise (stride {} in the first), 1×1 project {} → {}; skip in {skips} of {n}",
            s.expand, s.stride, s.c_in, s.c_out, k = s.kernel
        );
        let p: i64 = (first..first + n)
            .map(|i| params(&format!("_blocks.{i}.")))
            .sum();
        rows.push([
            format!("blocks {}–{}", first, first + n - 1),
            what,
            p.to_string(),
        ]);
        first += n;
    }
    rows.push([
        "head".into(),
        "1×1 conv 320 → 1280, BN, ReLU6; global average pool (the 1280 features)".into(),
        (params("_conv_head.") + params("_bn1.")).to_string(),
    ]);
    rows.push([
        "classifier".into(),
        "dropout 0.2 (in training), linear 1280 → 1000 ImageNet classes".into(),
        params("_fc.").to_string(),
    ]);
    let total: i64 = rows.iter().filter_map(|r| r[2].parse::<i64>().ok()).sum();
    rows.push(["total".into(), String::new(), total.to_string()]);
    let df = df!(
        "part" => rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        "layers" => rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        "parameters" => rows.iter().map(|r| r[2].clone()).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_read_the_config_and_the_built_network() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let h = cnn_hyperparameters(&cfg).unwrap();
        let values = super::super::strings(&h, "value");
        assert!(
            values.contains(&cfg.cnn.train.max_lr.to_string()),
            "{values:?}"
        );
        assert!(values.contains(&format!("{} px", cfg.preprocess.image_size)));
        let e = efficientnet_lite0_table().unwrap();
        let parts = super::super::strings(&e, "part");
        let params: Vec<i64> = super::super::strings(&e, "parameters")
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        // Stem, 7 stages, head, classifier, total.
        assert_eq!(parts.len(), 11, "{parts:?}");
        // The TensorFlow release lists Lite0 at 4.7 M parameters; the classifier holds 1,281,000.
        let total = *params.last().unwrap();
        assert!((4_600_000..4_700_000).contains(&total), "{total}");
        assert_eq!(params[parts.len() - 2], 1280 * 1000 + 1000);
        let layers = super::super::strings(&e, "layers");
        assert!(
            layers[1].contains("1 × MBConv: 1×1 expand ×1, 3×3 depthwise"),
            "{layers:?}"
        );
    }
}

//! The real ResNet-18 (`tch::vision::resnet::resnet18`, the layout of torchvision's
//! `resnet18` and of He et al. 2016, Table 1) as a table: the stem, four stages of two basic
//! blocks each, the projection shortcuts where the shape changes, global average pooling and
//! the 1000-way classifier; parameters per block, and the output shape at a 224-px input.

use super::shapes::{output_size, ConvSetting};
use crate::plot::Table;
use anyhow::{ensure, Result};
use polars::prelude::*;
use std::collections::BTreeMap;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Input side of ImageNet training crops.
pub const INPUT: i64 = 224;
/// ImageNet classes.
const CLASSES: i64 = 1000;
/// Variable-name suffixes of batch-norm buffers (stored, never trained).
const BUFFERS: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

/// One row: a module of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Variable prefix (`conv1`, `layer2.0`, `fc`) or a parameter-free step.
    pub module: String,
    /// What it is.
    pub what: String,
    /// Its convolutions as `k x k, c_in -> c_out`.
    pub convs: String,
    /// Trainable parameters.
    pub params: i64,
    /// Output shape for one image.
    pub output: String,
}

/// The module of a variable: `conv1`, `bn1`, `fc`, or `layerN.B` for a block.
fn module_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [l, b, ..] if l.starts_with("layer") => format!("{l}.{b}"),
        [m, ..] => m.to_string(),
        [] => String::new(),
    }
}

/// Where a module comes in the forward pass: stem conv, stem BN, the stages, the classifier.
fn rank(module: &str) -> (u8, String) {
    let r = match module {
        "conv1" => 0,
        "bn1" => 1,
        "fc" => 3,
        _ => 2,
    };
    (r, module.to_string())
}

/// Trainable parameters and conv shapes of every module of `vs`, in forward order.
fn modules(vs: &nn::VarStore) -> Vec<(String, (i64, Vec<String>))> {
    let mut out: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        if BUFFERS.iter().any(|b| name.ends_with(b)) {
            continue;
        }
        let entry = out.entry(module_of(&name)).or_default();
        entry.0 += t.numel() as i64;
        if let [o, i, k, _] = t.size().as_slice() {
            let short = if name.contains("downsample") {
                " (shortcut)"
            } else {
                ""
            };
            entry.1.push(format!("{k}x{k}, {i}->{o}{short}"));
        }
    }
    let mut out: Vec<_> = out.into_iter().collect();
    out.sort_by_key(|(m, _)| rank(m));
    out
}

/// Side after a conv or pool of kernel `k`, padding `p`, stride `s`.
fn after(n: i64, k: i64, p: i64, s: i64) -> Result<i64> {
    let c = ConvSetting {
        input: n,
        kernel: k,
        padding: p,
        stride: s,
        dilation: 1,
    };
    output_size(c).ok_or_else(|| anyhow::anyhow!("{c:?} does not fit"))
}

/// What a module is and its output side, given the side before it.
fn describe(module: &str, side: i64) -> Result<(String, i64)> {
    Ok(match module {
        "conv1" => ("stem: 7x7 conv, stride 2".into(), after(side, 7, 3, 2)?),
        "bn1" => (
            "stem: batch norm + ReLU, then 3x3 max pool, stride 2".into(),
            after(side, 3, 1, 2)?,
        ),
        "fc" => (
            "global average pool, then the 1000-way linear classifier".into(),
            1,
        ),
        m if m.ends_with(".0") && m != "layer1.0" => (
            "basic block, first conv stride 2, projection shortcut (1x1 conv + BN)".into(),
            after(side, 3, 1, 2)?,
        ),
        _ => (
            "basic block: 3x3 conv, BN, ReLU, 3x3 conv, BN; + x; ReLU".into(),
            side,
        ),
    })
}

/// The rows of ResNet-18 built in `vs`.
pub(crate) fn rows(vs: &nn::VarStore) -> Result<Vec<Row>> {
    let mut side = INPUT;
    let mut out = Vec::new();
    for (module, (params, convs)) in modules(vs) {
        let channels = convs
            .last()
            .and_then(|c| c.split("->").nth(1))
            .map(|c| c.trim_end_matches(" (shortcut)").to_string());
        let (what, next) = describe(&module, side)?;
        side = next;
        let output = match (module.as_str(), channels) {
            ("fc", _) => format!("[{CLASSES}]"),
            ("bn1", _) => format!("[64, {side}, {side}]"),
            (_, Some(c)) => format!("[{c}, {side}, {side}]"),
            (_, None) => String::new(),
        };
        out.push(Row {
            module,
            what,
            convs: convs.join("; "),
            params,
            output,
        });
    }
    Ok(out)
}

/// The table, checked: the network really maps a 224-px image to 1000 scores, and the
/// parameters add up to the network's total.
pub fn table() -> Result<Table> {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), CLASSES);
    let y = tch::no_grad(|| {
        net.forward_t(
            &Tensor::zeros([1, 3, INPUT, INPUT], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    ensure!(
        y.size() == [1, CLASSES],
        "ResNet-18 gave {:?} for one 224-px image",
        y.size()
    );
    let rows = rows(&vs)?;
    let total: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    ensure!(
        rows.iter().map(|r| r.params).sum::<i64>() == total,
        "rows miss parameters"
    );
    let df = df!(
        "module" => rows.iter().map(|r| r.module.clone()).chain(["total".into()]).collect::<Vec<_>>(),
        "what" => rows.iter().map(|r| r.what.clone()).chain([String::new()]).collect::<Vec<_>>(),
        "convolutions (k x k, in -> out)" => rows.iter().map(|r| r.convs.clone()).chain([String::new()]).collect::<Vec<_>>(),
        "parameters" => rows.iter().map(|r| r.params).chain([total]).collect::<Vec<_>>(),
        "output (224-px input)" => rows.iter().map(|r| r.output.clone()).chain([String::new()]).collect::<Vec<_>>(),
    )?;
    Ok(Table(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_has_its_published_layout_and_size() {
        let table = table().unwrap();
        let t = &table.0;
        let params: Vec<i64> = t
            .column("parameters")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        // torchvision's resnet18: 11,689,512 parameters.
        assert_eq!(*params.last().unwrap(), 11_689_512);
        let out = super::super::strings(&table, "output (224-px input)");
        for want in [
            "[64, 56, 56]",
            "[128, 28, 28]",
            "[256, 14, 14]",
            "[512, 7, 7]",
            "[1000]",
        ] {
            assert!(out.iter().any(|o| o == want), "{want} missing: {out:?}");
        }
        let convs = super::super::strings(&table, "convolutions (k x k, in -> out)");
        assert_eq!(
            convs.iter().filter(|c| c.contains("(shortcut)")).count(),
            3,
            "{convs:?}"
        );
    }
}

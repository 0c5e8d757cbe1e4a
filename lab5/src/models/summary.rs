//! A layer table like `torchsummary`: each layer's name, output shape, parameter count and
//! whether its parameters train. It is a value: it prints as a table (`Display`), becomes a
//! polars `DataFrame` for notebooks, and checks the model's size against the lab's limits.

use anyhow::{bail, Result};
use polars::prelude::{df, DataFrame};
use std::fmt;
use tch::{nn, Tensor};

/// Batch-norm running statistics: stored in the var store but buffers, not parameters.
const BUFFER_SUFFIXES: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRow {
    /// Layer name, e.g. `block1.conv`.
    pub name: String,
    /// Layer type, e.g. `Conv2d`.
    pub kind: String,
    /// Output shape for one input image (batch dimension shown as -1).
    pub output_shape: Vec<i64>,
    /// Number of parameters (weights and biases; buffers excluded).
    pub params: i64,
    /// True when the layer has parameters and all of them receive gradients.
    pub trainable: bool,
}

/// What a model declares about one of its layers, before shapes are known.
#[derive(Debug, Clone)]
pub(crate) struct LayerSpec {
    /// Layer name; also the var-store prefix of its parameters (`.` separated).
    pub name: String,
    /// Layer type shown in the table.
    pub kind: &'static str,
}

impl LayerSpec {
    /// A layer called `name` of type `kind`.
    pub(crate) fn new(name: impl Into<String>, kind: &'static str) -> Self {
        LayerSpec {
            name: name.into(),
            kind,
        }
    }
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Model name shown in the header.
    pub model: String,
    /// Input shape (batch dimension shown as -1).
    pub input_shape: Vec<i64>,
    /// The rows, input to output.
    pub rows: Vec<LayerRow>,
}

/// Parameters of the var store whose names start with `prefix.` (buffers excluded),
/// as (count, all trainable).
fn params_under(vars: &[(String, Tensor)], prefix: &str) -> (i64, bool) {
    let dotted = format!("{prefix}.");
    let mine = vars
        .iter()
        .filter(|(n, _)| n.starts_with(&dotted) && !BUFFER_SUFFIXES.iter().any(|b| n.ends_with(b)));
    mine.fold((0, true), |(count, train), (_, t)| {
        (count + t.numel() as i64, train && t.requires_grad())
    })
}

fn batchless(shape: &[i64]) -> Vec<i64> {
    std::iter::once(-1)
        .chain(shape.iter().skip(1).copied())
        .collect()
}

impl Summary {
    /// Builds the table from the layer specs, the outputs of each layer for one input
    /// batch (same order) and the var store holding the parameters.
    pub(crate) fn build(
        model: &str,
        input: &Tensor,
        specs: &[LayerSpec],
        outputs: &[Tensor],
        vs: &nn::VarStore,
    ) -> Result<Summary> {
        if specs.len() != outputs.len() {
            bail!(
                "summary of {model}: {} layer names but {} layer outputs",
                specs.len(),
                outputs.len()
            );
        }
        let vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        let rows = specs.iter().zip(outputs).map(|(spec, out)| {
            let (params, trainable) = params_under(&vars, &spec.name);
            LayerRow {
                name: spec.name.clone(),
                kind: spec.kind.to_string(),
                output_shape: batchless(&out.size()),
                params,
                trainable: params > 0 && trainable,
            }
        });
        Ok(Summary {
            model: model.to_string(),
            input_shape: batchless(&input.size()),
            rows: rows.collect(),
        })
    }

    /// Total number of parameters.
    pub(crate) fn total_params(&self) -> i64 {
        self.rows.iter().map(|r| r.params).sum()
    }

    /// Number of parameters that train.
    pub fn trainable_params(&self) -> i64 {
        self.rows
            .iter()
            .filter(|r| r.trainable)
            .map(|r| r.params)
            .sum()
    }

    /// Fails with a message naming the count and the allowed range when the model has
    /// fewer than `min` or more than `max` parameters.
    pub(crate) fn check_params(&self, min: i64, max: i64, what_to_change: &str) -> Result<()> {
        let n = self.total_params();
        if n < min || n > max {
            bail!(
                "{} has {} parameters but the lab requires {} ..= {}; change {what_to_change}",
                self.model,
                millions(n),
                millions(min),
                millions(max)
            );
        }
        Ok(())
    }

    /// The table as a polars `DataFrame` (columns layer, type, output_shape, params,
    /// trainable).
    pub(crate) fn to_frame(&self) -> Result<DataFrame> {
        let r = &self.rows;
        let df = df!(
            "layer" => r.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
            "type" => r.iter().map(|x| x.kind.clone()).collect::<Vec<_>>(),
            "output_shape" => r.iter().map(|x| shape_text(&x.output_shape)).collect::<Vec<_>>(),
            "params" => r.iter().map(|x| x.params).collect::<Vec<_>>(),
            "trainable" => r.iter().map(|x| x.trainable).collect::<Vec<_>>(),
        )?;
        Ok(df)
    }
}

/// `[-1, 32, 56, 56]`.
pub(crate) fn shape_text(shape: &[i64]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// `0.42 M` style count.
pub(crate) fn millions(n: i64) -> String {
    format!("{:.2} M", n as f64 / 1e6)
}

/// Width of each column of the printed table.
const WIDTHS: [usize; 4] = [22, 14, 20, 12];

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = WIDTHS;
        let rule = "-".repeat(a + b + c + d + 12);
        writeln!(
            f,
            "{} (input {})",
            self.model,
            shape_text(&self.input_shape)
        )?;
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<a$} {:<b$} {:>c$} {:>d$}  train",
            "layer", "type", "output shape", "params"
        )?;
        writeln!(f, "{rule}")?;
        for r in &self.rows {
            let shape = shape_text(&r.output_shape);
            let t = if r.trainable { "yes" } else { "-" };
            writeln!(
                f,
                "{:<a$} {:<b$} {shape:>c$} {:>d$}  {t}",
                r.name, r.kind, r.params
            )?;
        }
        writeln!(f, "{rule}")?;
        let (total, train) = (self.total_params(), self.trainable_params());
        writeln!(f, "total params:     {total:>12} ({})", millions(total))?;
        writeln!(f, "trainable params: {train:>12}")?;
        write!(f, "frozen params:    {:>12}", total - train)
    }
}

//! The HParams plugin's data for one run, as `tensorboard.plugins.hparams.summary`
//! writes it (`session_start_pb`, `session_end_pb`): a `session_start_info` value (the
//! run's hyper-parameters and its group name) when training starts and a
//! `session_end_info` value (status) when it ends, each a `Summary.Value` with no value of
//! its own whose metadata names the plugin `hparams` and holds a serialised
//! `HParamsPluginData`, in the run's own event file.
//!
//! Unlike PyTorch's `SummaryWriter.add_hparams` (which writes an `experiment` value listing
//! the hyper-parameters and metrics, and the session into a separate sub-run), no
//! `experiment` value is written: TensorBoard then builds the experiment from the sessions
//! it finds (`backend_context._compute_experiment_from_runs`): the union of the
//! hyper-parameters of every run under the log folder, and as metrics every scalar tag of
//! those runs (the per-epoch curves and the `final/...` scalars lab5 writes at the end).
//! So `runs/cnn`, `runs/transfer` and every `runs/ablation/<variant>` line up in one table.

use super::proto::{
    h_param_value::Kind, hparams_plugin_data::Data, HParamValue, HParamsPluginData, PluginData,
    SessionEndInfo, SessionStartInfo, SummaryMetadata, SummaryValue, STATUS_SUCCESS,
};
use anyhow::{bail, Result};
use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;

/// The plugin's name (`tensorboard/plugins/hparams/metadata.py`).
pub const PLUGIN_NAME: &str = "hparams";
/// `PLUGIN_DATA_VERSION` of the same file.
const PLUGIN_DATA_VERSION: i32 = 0;
/// Tag of the session start.
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// Tag of the session end.
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// Hyper-parameters by name.
pub type HParams = BTreeMap<String, HParamValue>;

/// The leaves of `settings` as hyper-parameters named by their path (`augment.blur`).
/// The objects named in `bare` give their keys without the prefix (`cnn.max_lr` ->
/// `max_lr`), so the CNN's and the transfer model's shared training settings fall into
/// the same column. Numbers, strings and flags are kept as such, lists become their JSON
/// text (`[32,64,128]`), nulls are left out.
///
/// # Errors
/// `settings` is not a JSON object, or two leaves end up with the same name.
pub fn flatten(settings: &Value, bare: &[&str]) -> Result<HParams> {
    let mut out = HParams::new();
    let Value::Object(top) = settings else {
        bail!("hyper-parameters must be a JSON object, got {settings}");
    };
    for (key, v) in top {
        let prefix = if bare.contains(&key.as_str()) && v.is_object() {
            String::new()
        } else {
            key.clone()
        };
        leaves(&prefix, v, &mut out)?;
    }
    Ok(out)
}

/// Adds the leaves of `v` to `out`, named `path` (a leaf) or `path.<key>...` (an object;
/// an empty `path` adds no prefix).
///
/// # Errors
/// A name is already in `out`.
fn leaves(path: &str, v: &Value, out: &mut HParams) -> Result<()> {
    let kind = match v {
        Value::Null => return Ok(()),
        Value::Object(map) => {
            for (k, child) in map {
                let name = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(&name, child, out)?;
            }
            return Ok(());
        }
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(_) => Kind::StringValue(v.to_string()),
    };
    if out
        .insert(path.to_string(), HParamValue { kind: Some(kind) })
        .is_some()
    {
        bail!("hyper-parameter {path:?} is named twice");
    }
    Ok(())
}

/// A text hyper-parameter.
pub fn text(s: &str) -> HParamValue {
    HParamValue {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

/// The `session_start_info` value: `hparams` of the session `group` (lab5: the run's name,
/// e.g. `cnn` or `ablation/no_dropout`), started at `start_secs` (Unix time).
pub fn session_start(hparams: HParams, group: &str, start_secs: f64) -> SummaryValue {
    let info = SessionStartInfo {
        hparams,
        group_name: group.to_string(),
        start_time_secs: start_secs,
    };
    value(SESSION_START_TAG, Data::SessionStartInfo(info))
}

/// The `session_end_info` value of a session that finished at `end_secs` (Unix time).
pub fn session_end(end_secs: f64) -> SummaryValue {
    let info = SessionEndInfo {
        status: STATUS_SUCCESS,
        end_time_secs: end_secs,
    };
    value(SESSION_END_TAG, Data::SessionEndInfo(info))
}

fn value(tag: &str, data: Data) -> SummaryValue {
    let content = HParamsPluginData {
        version: PLUGIN_DATA_VERSION,
        data: Some(data),
    }
    .encode_to_vec();
    SummaryValue {
        tag: tag.to_string(),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: PLUGIN_NAME.to_string(),
                content,
            }),
        }),
        value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_names_leaves_by_path_and_strips_bare_sections() {
        let s = json!({
            "cnn": {"epochs": 50, "channels": [32, 64], "batch_norm": true},
            "augment": {"blur": 0.25, "mode": "x", "off": null},
            "seed": 42
        });
        let h = flatten(&s, &["cnn"]).unwrap();
        let names: Vec<&str> = h.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "augment.blur",
                "augment.mode",
                "batch_norm",
                "channels",
                "epochs",
                "seed"
            ]
        );
        assert_eq!(h["epochs"].kind, Some(Kind::NumberValue(50.0)));
        assert_eq!(
            h["channels"].kind,
            Some(Kind::StringValue("[32,64]".into()))
        );
        assert_eq!(h["batch_norm"].kind, Some(Kind::BoolValue(true)));
        let clash = json!({"cnn": {"seed": 1}, "seed": 2});
        assert!(flatten(&clash, &["cnn"]).is_err());
    }
}

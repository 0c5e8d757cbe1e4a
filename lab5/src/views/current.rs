//! Whether a finished run in `runs/<model>/` is still the one the config would train: the
//! same settings (those training reuses a run on, see [`crate::train::run::cnn_settings`]
//! and the transfer model's) and the same data. A cell that shows a run trained with other
//! settings says so, naming the keys that changed, instead of showing it as current.

use super::runs::Model;
use crate::config::Config;
use crate::data::Manifest;
use crate::train::{run, transfer, RunRecord};
use serde_json::Value;

/// Changed keys named in a message; more are counted.
const MAX_NAMED: usize = 3;

/// Why `rec` is not the run `cfg` would train on `manifest` now, as the end of a sentence
/// ("with other settings than the config now (cnn.epochs: 1 → 2)", "on another data
/// set ..."); `None` when it is current.
pub(crate) fn what_changed(
    cfg: &Config,
    model: Model,
    rec: &RunRecord,
    manifest: &Manifest,
) -> Option<String> {
    let old = &rec.metrics.config;
    let (then, now, key) = match model {
        Model::Cnn => (
            run::cnn_settings(old),
            run::cnn_settings(cfg),
            run::cnn_data_key(cfg, manifest),
        ),
        Model::Transfer => (
            transfer::settings(old),
            transfer::settings(cfg),
            transfer::data_key(cfg, manifest),
        ),
    };
    let changed = changed_keys("", &then, &now);
    if !changed.is_empty() {
        return Some(format!(
            "with other settings than the config now ({})",
            name_some(&changed)
        ));
    }
    (key != rec.metrics.data_key).then(|| {
        format!(
            "on another data set than {} holds now",
            cfg.data_dir().display()
        )
    })
}

/// The first [`MAX_NAMED`] changes, and how many more there are.
fn name_some(changed: &[String]) -> String {
    let mut text = changed[..changed.len().min(MAX_NAMED)].join(", ");
    if changed.len() > MAX_NAMED {
        text.push_str(&format!(" and {} more", changed.len() - MAX_NAMED));
    }
    text
}

/// `key: old → new` for every value that differs between two settings objects, by config
/// key (`cnn.epochs`; the settings' `seed` is `runtime.seed`). Objects are compared key by
/// key, anything else as a whole.
fn changed_keys(path: &str, old: &Value, new: &Value) -> Vec<String> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let sub = if path.is_empty() {
                        config_key(k)
                    } else {
                        format!("{path}.{k}")
                    };
                    changed_keys(
                        &sub,
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    )
                })
                .collect()
        }
        _ if old == new => Vec::new(),
        _ => vec![format!("{path}: {old} \u{2192} {new}")],
    }
}

/// The config key of a top-level settings key.
fn config_key(k: &str) -> String {
    match k {
        "seed" => "runtime.seed".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_values_are_named_by_config_key() {
        let old = json!({"cnn": {"epochs": 1, "dropout": 0.3, "widths": [32, 64]}, "seed": 42});
        let new = json!({"cnn": {"epochs": 2, "dropout": 0.3, "widths": [32, 48]}, "seed": 7});
        assert_eq!(
            changed_keys("", &old, &new),
            [
                "cnn.epochs: 1 \u{2192} 2",
                "cnn.widths: [32,64] \u{2192} [32,48]",
                "runtime.seed: 42 \u{2192} 7"
            ]
        );
        assert!(changed_keys("", &old, &old).is_empty());
    }

    #[test]
    fn added_and_removed_keys_count_as_changes() {
        let old = json!({"augment": null, "transfer": {"epochs": 5}});
        let new = json!({"augment": {"flip": true}, "transfer": {"epochs": 5, "lr": 0.01}});
        assert_eq!(
            changed_keys("", &old, &new),
            [
                "augment: null \u{2192} {\"flip\":true}",
                "transfer.lr: null \u{2192} 0.01"
            ]
        );
    }

    #[test]
    fn long_lists_of_changes_are_cut() {
        let changed: Vec<String> = (1..=5).map(|i| format!("k{i}")).collect();
        assert_eq!(name_some(&changed), "k1, k2, k3 and 2 more");
        assert_eq!(name_some(&changed[..2]), "k1, k2");
    }
}

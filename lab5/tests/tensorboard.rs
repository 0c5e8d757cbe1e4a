//! The event files read by TensorBoard itself: a few epochs of scalars, an image, a
//! histogram and an HParams session are written with [`EventWriter`], then the setup's
//! Python venv loads the folder with TensorBoard's `EventAccumulator` (its multiplexer's
//! reader, with the plugins' data migration) and reports what it found.

use lab5::train::tensorboard::{histogram::histogram, hparams, EventWriter};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const TAGS: [&str; 5] = [
    "loss/train",
    "loss/val",
    "accuracy/train",
    "accuracy/val",
    "lr",
];
const EPOCHS: i64 = 6;

const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;

fn python() -> PathBuf {
    lab5::config::lab5_home()
        .join("venv")
        .join("bin")
        .join("python")
}

/// A distinct value per tag and epoch.
fn value(tag_index: usize, epoch: i64) -> f64 {
    (tag_index as f64 + 1.0) / (epoch as f64 + 2.0)
}

fn read_with_tensorboard(dir: &std::path::Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", READER])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run `make setup`): {e}", py.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "TensorBoard reader failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn tensorboard_reads_every_tag_with_one_value_per_epoch() {
    let dir = std::env::temp_dir().join(format!("lab5-tb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut w = EventWriter::create(&dir).unwrap();
    let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("events.out.tfevents.") && name.ends_with(".lab5"),
        "{name}"
    );
    for epoch in 0..EPOCHS {
        for (i, tag) in TAGS.iter().enumerate() {
            w.scalar(tag, value(i, epoch), epoch).unwrap();
        }
        w.flush().unwrap();
    }
    drop(w);

    let scalars = read_with_tensorboard(&dir);
    let mut expected_tags: Vec<&str> = TAGS.to_vec();
    expected_tags.sort();
    assert_eq!(
        scalars.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_tags
    );
    for (i, tag) in TAGS.iter().enumerate() {
        let points = &scalars[*tag];
        let steps: Vec<i64> = points.iter().map(|p| p.0).collect();
        assert_eq!(steps, (0..EPOCHS).collect::<Vec<_>>(), "{tag}");
        for &(step, v) in points {
            assert!((v - value(i, step)).abs() < 1e-6, "{tag} step {step}: {v}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_writers_in_one_folder_get_separate_files() {
    let dir = std::env::temp_dir().join(format!("lab5-tb2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = EventWriter::create(&dir).unwrap();
    let b = EventWriter::create(&dir).unwrap();
    assert_ne!(a.path(), b.path());
    drop((a, b));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

const KINDS_READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata as hp
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0})
acc.Reload()
img = acc.Images("grid")[0]
h = acc.Histograms("weights/w")[0]
start = hp.parse_session_start_info_plugin_data(
    acc.SummaryMetadata(hp.SESSION_START_INFO_TAG).plugin_data.content)
end = hp.parse_session_end_info_plugin_data(
    acc.SummaryMetadata(hp.SESSION_END_INFO_TAG).plugin_data.content)
print(json.dumps({
    "image": [img.step, img.width, img.height, img.encoded_image_string[:4].hex()],
    "histogram": [h.step, h.histogram_value.min, h.histogram_value.max, h.histogram_value.num,
                  list(h.histogram_value.bucket)],
    "hparams": {k: str(v.number_value if v.HasField("number_value") else v.string_value
                       if v.HasField("string_value") else v.bool_value)
                for k, v in start.hparams.items()},
    "group": start.group_name,
    "status": end.status,
}))
"#;

#[test]
fn tensorboard_reads_images_histograms_and_hparams() {
    let dir = std::env::temp_dir().join(format!("lab5-tb3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut w = EventWriter::create(&dir).unwrap();
    let settings = serde_json::json!({"cnn": {"max_lr": 0.003, "batch_norm": true}, "seed": 42});
    let mut h = hparams::flatten(&settings, &["cnn"]).unwrap();
    h.insert("model".into(), hparams::text("cnn"));
    w.plugin_values(vec![hparams::session_start(h, "cnn", 1.0)], 0)
        .unwrap();
    let rgb = image::RgbImage::from_pixel(7, 5, image::Rgb([10, 20, 30]));
    w.image("grid", &rgb, 1).unwrap();
    let t = tch::Tensor::from_slice(&[-1.0f32, 0.0, 0.5, 1.0]);
    w.histogram("weights/w", histogram(&t, 2).unwrap().unwrap(), 2)
        .unwrap();
    w.plugin_values(vec![hparams::session_end(2.0)], 2).unwrap();
    w.flush().unwrap();
    drop(w);

    let py = python();
    let out = Command::new(&py)
        .args(["-c", KINDS_READER])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "TensorBoard reader failed: {stderr}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["image"], serde_json::json!([1, 7, 5, "89504e47"]));
    assert_eq!(
        got["histogram"],
        serde_json::json!([2, -1.0, 1.0, 4.0, [1.0, 3.0]])
    );
    assert_eq!(
        got["hparams"],
        serde_json::json!({"batch_norm": "True", "max_lr": "0.003", "model": "cnn", "seed": "42.0"})
    );
    assert_eq!(got["group"], "cnn");
    assert_eq!(got["status"], 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The transfer model on real photos: `lab5 train transfer` trains a head on frozen
//! EfficientNet-Lite0 features (head-only checkpoints, metrics, TensorBoard), `evaluate`
//! and `predict` reload it; the frozen backbone stays out of the optimiser; fine-tuning
//! the last blocks sends gradients there and nowhere else; and the ResNet-18 option loads
//! torchvision-named weights (a randomly initialised ResNet-18 saved to safetensors, since
//! no ImageNet weights can be fetched here) or explains what is missing.

mod support;

use lab5::models::backbone::{self, Backbone};
use lab5::models::transfer::{Input, Transfer};
use lab5::models::Net;
use lab5::train::record::{BEST_WEIGHTS, METRICS_FILE};
use lab5::Config;
use serde_json::json;
use std::path::{Path, PathBuf};
use support::project::{photos, text, Project};
use tch::{nn, Device, Kind, Tensor};

/// Photos per class of the small data sets.
const PER_CLASS: usize = 24;

/// Links `files` into the ImageFolder `dir` under `class`.
fn link_photos(dir: &Path, class: &str, files: impl IntoIterator<Item = PathBuf>) {
    std::fs::create_dir_all(dir.join(class)).unwrap();
    for f in files {
        std::os::unix::fs::symlink(&f, dir.join(class).join(f.file_name().unwrap())).unwrap();
    }
}

/// A project with `n` pets photos per class imported (splits assigned by the import).
fn project(name: &str, n: usize, edits: &[(&str, serde_json::Value)]) -> Project {
    let p = Project::new(name, edits);
    let dir = p.root.join("incoming");
    for class in ["cat", "dog"] {
        link_photos(&dir, class, photos(class, 0, n));
    }
    let out = p.run(&["import", dir.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    p
}

fn head_params(cfg: &Config, features: i64) -> i64 {
    let t = &cfg.transfer;
    (features + 1) * t.hidden + (t.hidden + 1) * t.embedding_dim + (t.embedding_dim + 1) * 2
}

#[test]
fn train_transfer_then_evaluate_and_predict() {
    let p = project("transfer", PER_CLASS, &[("transfer.epochs", json!(8))]);
    let out = p.run(&["train", "transfer"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("head.embedding") && stdout.contains("trainable params"),
        "{stdout}"
    );
    let run = p.root.join("runs/transfer");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join(METRICS_FILE)).unwrap()).unwrap();
    let test_acc = metrics["metrics"]["test"]["accuracy"].as_f64().unwrap();
    assert!(test_acc >= 0.85, "test accuracy {test_acc}");
    let trainable = metrics["trainable_params"].as_i64().unwrap();
    assert_eq!(trainable, head_params(&p.config(), 1280));
    assert!(metrics["params"].as_i64().unwrap() > 3_000_000 + trainable);
    let saved = Tensor::read_safetensors(run.join(BEST_WEIGHTS)).unwrap();
    assert!(
        saved.iter().all(|(n, _)| n.starts_with("head.")),
        "checkpoint holds more than the head"
    );
    assert!(run.join("tb").read_dir().unwrap().count() > 0);
    check_evaluate_and_predict(&p, &run);
}

fn check_evaluate_and_predict(p: &Project, run: &Path) {
    // new photos, plus two of the data set that `evaluate` must leave out
    let folder = p.root.join("unseen");
    for class in ["cat", "dog"] {
        link_photos(
            &folder,
            class,
            photos(class, 600, 6).into_iter().chain(photos(class, 0, 1)),
        );
    }
    let out = p.run(
        &[
            "evaluate",
            "--run",
            run.to_str().unwrap(),
            "--data",
            folder.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("accuracy") && stdout.contains("(12 images"),
        "{stdout}"
    );
    assert!(
        stderr.contains("left out 2 photos whose bytes are in the lab's data set"),
        "{stderr}"
    );
    let cat = photos("cat", 500, 1).remove(0);
    let dog = photos("dog", 500, 1).remove(0);
    let out = p.run(
        &[
            "predict",
            "--run",
            run.to_str().unwrap(),
            cat.to_str().unwrap(),
            dog.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(".jpg")).collect();
    assert!(
        lines.len() == 2 && lines[0].contains(": cat") && lines[1].contains(": dog"),
        "{stdout}"
    );
}

fn shipped() -> Config {
    Config::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json")).unwrap()
}

#[test]
fn frozen_backbone_is_left_out_of_the_optimiser() {
    let cfg = shipped();
    let net = Transfer::new(&cfg, Device::Cpu).unwrap();
    assert_eq!(net.input(), Input::Features);
    let trainable = net.var_store().trainable_variables();
    let n: i64 = trainable.iter().map(|t| t.numel() as i64).sum();
    assert_eq!(n, head_params(&cfg, 1280));
    assert!(net
        .var_store()
        .variables()
        .keys()
        .all(|k| k.starts_with("head.")));
    let s = net.summary().unwrap();
    assert_eq!(s.trainable_params(), n);
    assert!(s
        .rows
        .iter()
        .filter(|r| r.name.starts_with("_blocks"))
        .all(|r| !r.trainable));
    let f = Tensor::randn([4, 1280], (Kind::Float, Device::Cpu));
    assert_eq!(net.embed(&f, false).size(), [4, cfg.transfer.embedding_dim]);
    assert_eq!(net.logits(&f, true).size(), [4, 2]);
}

#[test]
fn fine_tuning_trains_the_last_blocks_on_images() {
    let mut cfg = shipped();
    cfg.transfer.unfreeze_blocks = 1;
    let net = Transfer::new(&cfg, Device::Cpu).unwrap();
    assert_eq!(net.input(), Input::Images);
    let names = support::trainable_names(net.var_store());
    let allowed = ["head.", "_blocks.15.", "_conv_head.", "_bn1."];
    support::assert_all_prefixed(&names, &allowed);
    let x = Tensor::randn([2, 3, 96, 96], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1]);
    net.logits(&x, true).cross_entropy_for_logits(&y).backward();
    let vars = net.var_store().variables();
    let grad = |n: &str| vars[n].grad();
    assert!(
        grad("_blocks.15._project_conv.weight")
            .abs()
            .sum(Kind::Float)
            .double_value(&[])
            > 0.0
    );
    assert!(!grad("_blocks.14._project_conv.weight").defined());
}

/// A randomly initialised torchvision-layout ResNet-18 (with its `fc`) in safetensors.
fn random_resnet18(dir: &Path) -> PathBuf {
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = tch::vision::resnet::resnet18(&vs.root(), 1000);
    let path = dir.join("resnet18.safetensors");
    vs.save(&path).unwrap();
    path
}

#[test]
fn resnet18_option_loads_torchvision_names_or_says_what_is_missing() {
    let p = project("transfer-resnet", 6, &[("transfer.epochs", json!(4))]);
    let mut cfg = p.config();
    cfg.transfer.backbone = "resnet18".into();
    cfg.transfer.weights = Some(p.root.join("missing.safetensors"));
    let err = format!("{:#}", Transfer::new(&cfg, Device::Cpu).unwrap_err());
    assert!(
        err.contains("ResNet-18 weights not found") && err.contains("efficientnet_lite0"),
        "{err}"
    );
    cfg.transfer.weights = Some(random_resnet18(&p.root));
    let bb = Backbone::load(&cfg, Device::Cpu).unwrap();
    assert_eq!(
        (bb.kind(), bb.feature_dim()),
        (backbone::Kind::ResNet18, 512)
    );
    assert!(bb
        .var_store()
        .variables()
        .values()
        .all(|t| !t.requires_grad()));
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    assert_eq!(bb.features(&x).size(), [2, 512]);
    let rec = lab5::train::train_transfer(&cfg, true).unwrap();
    assert_eq!(rec.metrics.trainable_params, head_params(&cfg, 512));
    assert!(rec.best_weights().is_file());
    cfg.transfer.unfreeze_blocks = 2;
    assert!(Transfer::new(&cfg, Device::Cpu).is_err());
}

/// Seconds of the backbone pass from its progress line on stderr
/// (`lab5: backbone pass over N images in X s (...)`), if it ran.
fn pass_seconds(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("backbone pass over"))?;
    let secs = line.split(" in ").nth(1)?.split(" s").next()?;
    secs.trim().parse().ok()
}

/// The label check computes the backbone pass; the transfer model's run then reads it from
/// the cache and does no backbone work itself, yet its cost from raw photos, and the
/// comparison's table and verdict, count that pass (issue: "a test fails if the transfer
/// model's reported training cost leaves out a backbone pass it needed").
#[test]
fn transfer_cost_from_raw_photos_counts_the_backbone_pass_it_reused() {
    let edits = [
        ("transfer.epochs", json!(4)),
        ("cnn.epochs", json!(2)),
        ("report.inference_images", json!(8)),
    ];
    let p = project("transfer-cost", 12, &edits);
    let out = p.run(&["audit"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let pass = pass_seconds(&stderr).unwrap_or_else(|| panic!("no pass line:\n{stderr}"));
    assert!(pass > 0.0, "{stderr}");

    let out = p.run(&["train", "transfer"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(pass_seconds(&stderr), None, "the pass ran again:\n{stderr}");
    let rec = lab5::train::RunRecord::load(&p.root.join("runs/transfer")).unwrap();
    let d = &rec.metrics.durations;
    assert_eq!(d.data_computed_secs, 0.0, "{d:?}");
    let cold = d.cold_data_secs.expect("cost from raw photos recorded");
    assert!(
        (cold - pass).abs() <= 0.051,
        "recorded {cold} s, the pass took {pass} s"
    );
    assert!(
        d.data_shared_with
            .as_deref()
            .unwrap_or("")
            .contains("label check"),
        "{d:?}"
    );
    let cold_total = d.cold_total_secs().unwrap();
    assert!(cold_total >= cold + d.train_secs, "{d:?}");
    // The run did no backbone work: its warm re-run is the whole run.
    assert_eq!(d.warm_total_secs(), d.total_secs, "{d:?}");

    let out = p.run(&["train", "cnn"], &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let cnn = lab5::train::RunRecord::load(&p.root.join("runs/cnn")).unwrap();
    let c = &cnn.metrics.durations;
    assert!(c.cold_data_secs.unwrap() > 0.0, "{c:?}");
    assert_eq!(
        c.cold_data_secs,
        Some(c.data_computed_secs),
        "built now: {c:?}"
    );

    let out = p.run(&["compare"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.root.join("runs/compare/comparison.json")).unwrap(),
    )
    .unwrap();
    let row = |m: &str| {
        saved["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["measure"].as_str().unwrap().starts_with(m))
            .unwrap_or_else(|| panic!("no row {m:?} in {saved}"))
            .clone()
    };
    let reported = row("cost from raw photos")["transfer"].as_f64().unwrap();
    assert!(
        reported >= pass + d.train_secs,
        "reported {reported} s, pass {pass} s"
    );
    assert_eq!(
        row("of which shared with another step")["transfer"].as_f64(),
        Some(cold)
    );
    let verdict = saved["verdict"].to_string();
    assert!(
        verdict.contains("From the raw photos to a trained model")
            && verdict.contains("shares with the label check"),
        "{verdict}"
    );
    assert!(
        stdout.contains("| cost from raw photos to trained model, s |"),
        "{stdout}"
    );
}

/// The prefetching loader (decoding the next batch on a thread of its own) gives the same
/// rows in the same order as decoding then computing, with batches that do not divide the
/// photos evenly; the folded fp32 pass matches the plain one to rounding.
#[test]
fn prefetching_and_folding_keep_the_backbone_pass_rows() {
    use lab5::labels::features::{compute_uncached, PassSpeed};
    let p = project("transfer-prefetch", 6, &[]);
    let cfg = p.config();
    let manifest = p.manifest();
    let mut speed = PassSpeed::of(&cfg).unwrap();
    (speed.kind, speed.batch_size, speed.decode_threads) = (Kind::Float, 5, 1);
    let run = |overlap: bool| {
        let s = PassSpeed { overlap, ..speed };
        compute_uncached(&cfg, &manifest, Device::Cpu, s).unwrap()
    };
    let (ahead, inline) = (run(true), run(false));
    assert_eq!(ahead.len(), 12);
    assert_eq!(ahead.shas, inline.shas);
    assert!(ahead.features.equal(&inline.features) && ahead.probs.equal(&inline.probs));
    let plain = compute_uncached(&cfg, &manifest, Device::Cpu, PassSpeed::plain(&cfg)).unwrap();
    assert_eq!(plain.shas, inline.shas);
    let scale = plain.features.abs().max().double_value(&[]);
    let diff = (&plain.features - &inline.features)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        diff / scale < 1e-4,
        "folded differs from plain by {diff} of {scale}"
    );
}

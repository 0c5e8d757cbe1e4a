//! The EfficientNet-Lite0 port against the real ImageNet weights and a real PyTorch:
//! identical inputs give the same logits as `efficientnet_reference.py` (run with the
//! setup's venv), the ImageNet head tells real cats from dogs zero-shot, freezing keeps
//! the backbone out of the optimiser, and bad weight files get clear errors.

mod support;

use lab5::config::lab5_home;
use lab5::data::cache::preprocess_file;
use lab5::data::loader::{normalize, IMAGENET};
use lab5::models::efficientnet::{
    block_shapes, same_padding, EfficientNetLite0, BLOCKS, FEATURES, IMAGENET_CATS, IMAGENET_DOGS,
    INPUT_SIZE,
};
use lab5::Config;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Photos per class for the zero-shot check.
const PER_CLASS: usize = 12;
/// Shorter side before the 224 centre crop (the reference's 256/224 protocol).
const SHORTER: i64 = 256;
/// Largest logit difference accepted against PyTorch on identical inputs (float32
/// rounding through 50 layers stays around 1e-5).
const MAX_LOGIT_DIFF: f64 = 1e-3;

fn config() -> Config {
    Config::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json")).unwrap()
}

fn net() -> EfficientNetLite0 {
    EfficientNetLite0::load(&EfficientNetLite0::weights_path(&config()), Device::Cpu).unwrap()
}

fn pets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pets")
}

fn photos(class: &str, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pets().join(class))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.into_iter().step_by(1050 / n).take(n).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lab5-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn logits_match_pytorch_on_identical_inputs() {
    let python = lab5_home().join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup.sh",
        python.display()
    );
    let dir = temp_dir("effnet-ref");
    let out = dir.join("ref.safetensors");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/efficientnet_reference.py");
    let images: Vec<PathBuf> = [photos("cat", 2), photos("dog", 2)].concat();
    let status = std::process::Command::new(&python)
        .arg(&script)
        .arg(&out)
        .args(&images)
        .status()
        .unwrap();
    assert!(status.success(), "reference script failed");
    let reference: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&out)
        .unwrap()
        .into_iter()
        .collect();
    let ours = tch::no_grad(|| net().logits(&reference["input"]));
    let diff = (&ours - &reference["logits"]).abs().max().double_value(&[]);
    eprintln!("max |logit difference| vs PyTorch: {diff:.2e}");
    assert!(diff < MAX_LOGIT_DIFF, "port differs from PyTorch by {diff}");
    let same_top1 = ours
        .argmax(-1, false)
        .eq_tensor(&reference["logits"].argmax(-1, false));
    assert!(same_top1.all().int64_value(&[]) == 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn p_cat_and_dog(net: &EfficientNetLite0, files: &[PathBuf]) -> (Tensor, Tensor) {
    let raw: Vec<Tensor> = files
        .iter()
        .map(|f| preprocess_file(f, INPUT_SIZE, SHORTER).unwrap())
        .collect();
    let x = normalize(&Tensor::stack(&raw, 0), &IMAGENET, Device::Cpu);
    let p = tch::no_grad(|| net.logits(&x).softmax(-1, Kind::Float));
    let sum = |r: std::ops::RangeInclusive<i64>| {
        p.narrow(1, *r.start(), r.end() - r.start() + 1)
            .sum_dim_intlist(1, false, Kind::Float)
    };
    (sum(IMAGENET_CATS), sum(IMAGENET_DOGS))
}

#[test]
fn imagenet_head_tells_real_cats_from_dogs() {
    let net = net();
    let (cat_cat, cat_dog) = p_cat_and_dog(&net, &photos("cat", PER_CLASS));
    let (dog_cat, dog_dog) = p_cat_and_dog(&net, &photos("dog", PER_CLASS));
    let cats_right = cat_cat
        .gt_tensor(&cat_dog)
        .sum(Kind::Int64)
        .int64_value(&[]);
    let dogs_right = dog_dog
        .gt_tensor(&dog_cat)
        .sum(Kind::Int64)
        .int64_value(&[]);
    eprintln!("zero-shot: cats {cats_right}/{PER_CLASS}, dogs {dogs_right}/{PER_CLASS}");
    // The full pets set gives ~88 % of cats and ~100 % of dogs; a broken port is near chance.
    assert!(
        cats_right as usize >= PER_CLASS * 3 / 4,
        "cats {cats_right}/{PER_CLASS}"
    );
    assert!(
        dogs_right as usize >= PER_CLASS * 9 / 10,
        "dogs {dogs_right}/{PER_CLASS}"
    );
}

#[test]
fn features_are_pooled_1280_wide_for_any_batch() {
    let net = net();
    let x = Tensor::randn([3, 3, INPUT_SIZE, INPUT_SIZE], (Kind::Float, Device::Cpu));
    let f = tch::no_grad(|| net.features(&x));
    assert_eq!(f.size(), vec![3, FEATURES]);
    let single = tch::no_grad(|| net.features(&x.narrow(0, 1, 1)));
    let diff = (single - f.narrow(0, 1, 1)).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "eval-mode output depends on the batch: {diff}");
}

#[test]
fn frozen_backbone_has_no_trainable_variables() {
    let net = net();
    assert!(net.var_store().trainable_variables().is_empty());
    assert!(net.var_store().variables().len() > 200);
    let x = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    assert!(!net.features(&x).requires_grad());
}

#[test]
fn unfreezing_the_last_blocks_trains_only_them_and_the_head_conv() {
    let cfg = config();
    let net = EfficientNetLite0::load_with(&EfficientNetLite0::weights_path(&cfg), Device::Cpu, 2)
        .unwrap();
    let trainable = support::trainable_names(net.var_store());
    let allowed = ["_blocks.14.", "_blocks.15.", "_conv_head.", "_bn1."];
    support::assert_all_prefixed(&trainable, &allowed);
    assert!(trainable.iter().all(|n| !n.contains("running_")));
    assert_eq!(trainable.len(), net.var_store().trainable_variables().len());
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    net.features(&x).sum(Kind::Float).backward();
    let stem = &net.var_store().variables()["_conv_stem.weight"];
    assert!(!stem.grad().defined(), "the frozen stem got a gradient");
    let last = &net.var_store().variables()["_blocks.15._project_conv.weight"];
    assert!(last.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(EfficientNetLite0::new(Device::Cpu, BLOCKS + 1).is_err());
}

#[test]
fn tensorflow_same_padding_puts_the_odd_pixel_after() {
    assert_eq!(same_padding(224, 3, 2), (0, 1));
    assert_eq!(same_padding(56, 5, 2), (1, 2));
    assert_eq!(same_padding(14, 5, 1), (2, 2));
    assert_eq!(same_padding(7, 1, 1), (0, 0));
    assert_eq!(block_shapes().len(), BLOCKS);
}

#[test]
fn missing_or_wrong_weights_are_explained() {
    let dir = temp_dir("effnet-bad");
    let missing = dir.join("nope.safetensors");
    let err = format!(
        "{:#}",
        EfficientNetLite0::load(&missing, Device::Cpu).unwrap_err()
    );
    assert!(err.contains("not found") && err.contains("setup"), "{err}");
    let wrong = dir.join("wrong.safetensors");
    let t = Tensor::zeros([4, 4], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("_conv_stem.weight", &t)], &wrong).unwrap();
    let err = format!(
        "{:#}",
        EfficientNetLite0::load(&wrong, Device::Cpu).unwrap_err()
    );
    assert!(
        err.contains("has no tensor") && err.contains("not an EfficientNet"),
        "{err}"
    );
    let mut real = Tensor::read_safetensors(EfficientNetLite0::weights_path(&config())).unwrap();
    let bias = real.iter_mut().find(|(n, _)| n == "_fc.bias").unwrap();
    bias.1 = Tensor::zeros([10], (Kind::Float, Device::Cpu));
    let named: Vec<(&str, &Tensor)> = real.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&named, &wrong).unwrap();
    let err = format!(
        "{:#}",
        EfficientNetLite0::load(&wrong, Device::Cpu).unwrap_err()
    );
    assert!(err.contains("`_fc.bias` has shape [10]"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

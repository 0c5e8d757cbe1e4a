//! The lab5 half of `make bench-backbone` (scripts/bench_backbone.sh runs it, then
//! scripts/bench_backbone.py): the backbone pass (EfficientNet-Lite0 over every photo of
//! the data set, JPEG decoding and resizing included, no cache read or written) timed the
//! plain way (the pass as lab5 ran it before it was made fast: NCHW fp32, batch-norm as
//! layers, decoding then computing in turn) and the configured fast way, in fp32 and, on a
//! CPU with native bfloat16, in bf16. For each: seconds, photos/s, the zero-shot
//! agreement with the labels (the label check's figure) and how far its features and
//! decisions are from the plain pass's. Writes `lab5_backbone.json` for the PyTorch side.
//!
//! Run: `cargo run --release -p lab5 --example bench_backbone -- OUT_DIR` after
//! `lab5 import`. `BACKBONE_VARIANTS` (space-separated) replaces the default list:
//! `plain`, or `{fp32|bf16}-b{N}` with optional `-seq` (decode, then compute), `-ovl`
//! (decode the next batch on a thread of its own meanwhile; the configured pass does so
//! only with more cores than `runtime.threads`) and `-d{T}` (T decoding threads), e.g.
//! `BACKBONE_VARIANTS="plain fp32-b16 bf16-b8-ovl"`.

use anyhow::{bail, Context, Result};
use lab5::data::Manifest;
use lab5::labels::features::{compute_uncached, BackbonePass, PassSpeed};
use lab5::train::run::load_manifest;
use lab5::Config;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// A variant's name and how it runs.
struct Variant {
    name: String,
    speed: PassSpeed,
}

/// Parses one `BACKBONE_VARIANTS` entry.
fn parse_variant(cfg: &Config, s: &str) -> Result<Variant> {
    if s == "plain" {
        return Ok(Variant {
            name: s.to_string(),
            speed: PassSpeed::plain(cfg),
        });
    }
    let mut speed = PassSpeed::of(cfg)?;
    let mut parts = s.split('-');
    speed.kind = match parts.next() {
        Some("fp32") => Kind::Float,
        Some("bf16") => Kind::BFloat16,
        _ => bail!("bad variant {s:?}: starts with plain, fp32 or bf16"),
    };
    for p in parts {
        let number = |rest: &str| -> Result<usize> {
            rest.parse()
                .with_context(|| format!("bad variant {s:?}: {p:?} needs a number"))
        };
        match p {
            "seq" => speed.overlap = false,
            "ovl" => speed.overlap = true,
            _ if p.starts_with('b') => speed.batch_size = number(&p[1..])?,
            _ if p.starts_with('d') => speed.decode_threads = number(&p[1..])?,
            _ => bail!("bad variant {s:?}: unknown part {p:?}"),
        }
    }
    Ok(Variant {
        name: s.to_string(),
        speed,
    })
}

/// The default variants: plain, the configured pass in fp32, and in bf16 on a CPU with
/// native bfloat16.
fn variants(cfg: &Config, device: Device) -> Result<Vec<Variant>> {
    if let Ok(list) = std::env::var("BACKBONE_VARIANTS") {
        return list
            .split_whitespace()
            .map(|v| parse_variant(cfg, v))
            .collect();
    }
    let b = cfg.transfer.backbone_batch_size;
    let mut names = vec!["plain".to_string(), format!("fp32-b{b}")];
    if lab5::runtime::training_kind(lab5::config::Precision::Auto, device) == Kind::BFloat16 {
        names.push(format!("bf16-b{b}"));
    }
    if !names.contains(&configured(cfg)?) {
        names.push(configured(cfg)?);
    }
    names.iter().map(|v| parse_variant(cfg, v)).collect()
}

/// The variant name of the configured pass (`bf16-b16`, ...).
fn configured(cfg: &Config) -> Result<String> {
    let speed = PassSpeed::of(cfg)?;
    let kind = lab5::runtime::kind_name(speed.kind);
    Ok(format!("{kind}-b{}", speed.batch_size))
}

/// Share of photos whose zero-shot decision (p_dog > p_cat) is their label.
fn agreement(pass: &BackbonePass, labels: &HashMap<&str, i64>) -> f64 {
    let dog = pass.probs.select(1, 1).gt_tensor(&pass.probs.select(1, 0));
    let dog = Vec::<bool>::try_from(dog).unwrap_or_default();
    let hits = pass
        .shas
        .iter()
        .zip(&dog)
        .filter(|(sha, d)| labels.get(sha.as_str()) == Some(&(**d as i64)))
        .count();
    hits as f64 / pass.len().max(1) as f64
}

/// How far a pass is from the reference pass: the largest feature difference relative to
/// the largest feature, the largest difference of `p_dog - p_cat` or `p_neither` (what the
/// label check compares with its thresholds), and the share of
/// zero-shot decisions (p_dog > p_cat) that differ.
fn distance(pass: &BackbonePass, reference: &BackbonePass) -> (f64, f64, f64) {
    let scale = reference
        .features
        .abs()
        .max()
        .double_value(&[])
        .max(f64::EPSILON);
    let diff = (&pass.features - &reference.features)
        .abs()
        .max()
        .double_value(&[]);
    // The quantities the label check compares with its thresholds: p_dog - p_cat, p_neither.
    let boundary = |p: &BackbonePass| {
        let (cat, dog) = (p.probs.select(1, 0), p.probs.select(1, 1));
        Tensor::stack(&[dog - cat, p.probs.select(1, 2)], 1)
    };
    let prob_diff = (boundary(pass) - boundary(reference))
        .abs()
        .max()
        .double_value(&[]);
    let decide = |p: &BackbonePass| p.probs.select(1, 1).gt_tensor(&p.probs.select(1, 0));
    let flips = decide(pass).ne_tensor(&decide(reference));
    let flipped = flips
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    (diff / scale, prob_diff, flipped)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|n| n.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn run(cfg: &Config, manifest: &Manifest, device: Device) -> Result<Vec<Value>> {
    let labels: HashMap<&str, i64> = manifest
        .records
        .iter()
        .map(|r| (r.sha256.as_str(), r.label.index()))
        .collect();
    let mut reference: Option<BackbonePass> = None;
    let mut rows = Vec::new();
    for v in variants(cfg, device)? {
        println!("lab5 backbone pass, {}: running", v.name);
        let pass = compute_uncached(cfg, manifest, device, v.speed)?;
        let secs = pass.stats.seconds;
        let n = pass.len();
        let (feature_diff, prob_diff, flipped) = match &reference {
            Some(r) => distance(&pass, r),
            None => (0.0, 0.0, 0.0),
        };
        rows.push(json!({
            "variant": v.name,
            "seconds": secs,
            "images": n,
            "images_per_sec": n as f64 / secs.max(f64::EPSILON),
            "zero_shot_agreement": agreement(&pass, &labels),
            "feature_diff_vs_first": feature_diff,
            "boundary_diff_vs_first": prob_diff,
            "decisions_changed_vs_first": flipped,
            "batch_size": v.speed.batch_size,
            "overlap": v.speed.overlap,
        }));
        if reference.is_none() {
            reference = Some(pass);
        }
    }
    Ok(rows)
}

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: bench_backbone OUT_DIR")?,
    );
    let cfg = Config::load(Config::locate(None))?;
    let device = lab5::runtime::init(&cfg)?;
    let manifest = load_manifest(&cfg)?;
    let rows = run(&cfg, &manifest, device)?;
    let t = &cfg.transfer;
    let json = json!({
        "cpu": cpu_name(),
        "threads": cfg.runtime.threads,
        "image_size": t.image_size,
        "resize_shorter": t.resize_shorter,
        "batch_size": t.backbone_batch_size,
        "configured": configured(&cfg)?,
        "data_dir": cfg.data_dir(),
        "weights": lab5::models::efficientnet::EfficientNetLite0::weights_path(&cfg),
        "runs": rows,
    });
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("lab5_backbone.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

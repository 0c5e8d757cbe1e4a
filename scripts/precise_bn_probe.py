#!/usr/bin/env python3
"""Precise-BN probe: does recomputing a trained CNN's batch-norm statistics change its scores?

    $LAB5_VENV/bin/python scripts/precise_bn_probe.py PROJECT [RUN]

PROJECT is a lab5 project folder (with `data/cache/` and `runs/`), RUN the run folder name
(default `cnn`). The script rebuilds the run's CNN in PyTorch from `runs/RUN/run.json`
(conv3x3 -> BatchNorm2d -> ReLU -> MaxPool2d per `cnn.channels`, global average pool,
Linear -> ReLU -> Linear; dropout is the identity in evaluation), loads `best.safetensors`
and lab5's uint8 image cache, and prints train/val/test accuracy, log loss and mean p(dog)
with horizontal-flip TTA, as lab5 evaluates (its first line must reproduce the run's
recorded accuracies). Then it recomputes every batch-norm layer's running mean and variance
on the clean, whole training photos (one pass in training mode, no augmentation, the
statistics averaged over all batches, as `torch.nn.BatchNorm2d(momentum=None)` does) and
prints the same figures again.

Method: "precise BN", Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021, section 3
(fvcore's `update_bn_stats`). Used to find why lab5's random-resized-crop recipes score with
a dog bias (README, "The CNN from scratch"). A diagnostic, not part of training.
"""
import glob
import json
import struct
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

BATCH = 64


def load_cache(project, size, shorter):
    """{split: (uint8 images N x 3 x S x S, labels 0 cat / 1 dog)} from lab5's image cache."""
    paths = glob.glob(f"{project}/data/cache/images-{size}-{shorter}-*.bin")
    if not paths:
        sys.exit(f"no {size}-px image cache in {project}/data/cache: run `lab5 train cnn` there first")
    with open(paths[0], "rb") as f:
        if f.read(8) != b"LAB5IMG1":
            sys.exit(f"{paths[0]} is not a lab5 image cache")
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        s, splits = header["size"], {}
        for sp in header["splits"]:
            n = len(sp["ids"])
            px = np.frombuffer(f.read(n * 3 * s * s), dtype=np.uint8).reshape(n, 3, s, s)
            labels = torch.tensor([0 if l in ("cat", 0) else 1 for l in sp["labels"]])
            splits[sp["split"].lower()] = (torch.from_numpy(px.copy()), labels)
    return splits


def build(run_dir, channels):
    """The run's CNN as (features, head) with its best weights."""
    layers, c_in = [], 3
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c
    features = nn.Sequential(*layers)
    w = load_file(f"{run_dir}/best.safetensors")
    emb = w["embed.weight"].shape[0]
    head = nn.Sequential(nn.Linear(c_in, emb), nn.ReLU(), nn.Linear(emb, 2))
    state = {}
    for i in range(len(channels)):
        state[f"{4 * i}.weight"] = w[f"block{i + 1}.conv.weight"]
        for k in ("weight", "bias", "running_mean", "running_var"):
            state[f"{4 * i + 1}.{k}"] = w[f"block{i + 1}.bn.{k}"]
    features.load_state_dict(state, strict=False)
    head.load_state_dict({"0.weight": w["embed.weight"], "0.bias": w["embed.bias"],
                          "2.weight": w["classifier.weight"], "2.bias": w["classifier.bias"]})
    return features, head


def main(project, run="cnn"):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    run_dir = f"{project}/runs/{run}"
    rec = json.load(open(f"{run_dir}/run.json"))
    mean = torch.tensor(rec["normalize"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(rec["normalize"]["std"]).view(1, 3, 1, 1)
    norm = lambda x: (x.float() / 255 - mean) / std
    splits = load_cache(project, rec["image_size"], rec["resize_shorter"])
    cnn = rec["config"]["cnn"]
    if cnn.get("stem_stride", 1) != 1 or cnn.get("residual_after"):
        sys.exit("this probe rebuilds the plain conv-BN-ReLU-pool chain only; the run uses "
                 "cnn.stem_stride or cnn.residual_after")
    features, head = build(run_dir, cnn["channels"])

    def p_dog(x):
        features.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 128):
                b = norm(x[i:i + 128])
                p = sum(head(features(v).mean((2, 3))).softmax(1)[:, 1] for v in (b, b.flip(3)))
                out.append(p / 2)
        return torch.cat(out)

    def report(tag):
        parts = []
        for name in ("train", "val", "test"):
            x, y = splits[name]
            p = p_dog(x)
            acc = ((p > 0.5).long() == y).float().mean().item()
            ll = -torch.log(torch.where(y == 1, p, 1 - p).clamp_min(1e-7)).mean().item()
            parts.append(f"{name} {100 * acc:.1f} % log loss {ll:.3f} mean p(dog) {p.mean():.3f}")
        print(f"{tag:<12}" + " | ".join(parts), flush=True)

    report("as trained")
    for m in features.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
    features.train()
    x, _ = splits["train"]
    order = torch.randperm(len(x))
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            features(norm(x[order[i:i + BATCH]]))
    report("precise BN")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])

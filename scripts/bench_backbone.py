"""The PyTorch half of `make bench-backbone`: the backbone pass (EfficientNet-Lite0 with its
ImageNet weights over every photo of the data set at `transfer.image_size`, JPEG decoding and
resizing included) in PyTorch from the setup's venv, with the same weights and threads as
lab5, two ways:

1. the usual way: torchvision `ImageFolder` + `DataLoader` (num_workers = threads, batch 32;
   Resize(256), CenterCrop(224), ToTensor, Normalize), the model as written (NCHW, fp32,
   batch-norm as layers) under `torch.no_grad()`;
2. the best way written here: the same `DataLoader`, but Pillow's JPEG draft mode (the
   decoder's DCT scaling, as lab5's decoder does) before the resize; the model with its
   batch-norms folded into the convolutions (`torch.fx.experimental.optimization.fuse`),
   channels-last, traced and frozen with `torch.jit.freeze` (oneDNN fusions), in bfloat16 on
   a CPU with native bfloat16 (as lab5's pass), under `torch.inference_mode()`, batch 16.

Each PyTorch pass is timed from the loader's creation to the last batch's logits; loading
the model, and folding, tracing and freezing it, happen before and are not counted (lab5's
figures include loading and folding its network, under a second), so the comparison
favours PyTorch slightly; the freezing time is printed apart. Then prints one table with lab5's runs (`lab5_backbone.json`,
written by lab5/examples/bench_backbone.rs): seconds, photos/s, zero-shot agreement with the
labels, and each pipeline's speed relative to lab5's configured pass.

Usage: python scripts/bench_backbone.py OUT_DIR
"""
import json
import os
import sys
import time

import torch
import torch.fx.experimental.optimization as fx_opt
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab5", "tests"))
import efficientnet_reference as ref  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CATS = range(281, 286)
DOGS = range(151, 269)


def native_bf16():
    """True when the CPU has AVX512-BF16 (what lab5's `auto` precision checks)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read()
    except OSError:
        return False


def draft_loader(size):
    """Pillow's loader with the JPEG decoder told the target size (DCT scaling)."""

    def load(path):
        im = Image.open(path)
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        return im.convert("RGB")

    return load


def loader(root, image_size, shorter, threads, batch, draft):
    tf = transforms.Compose([
        transforms.Resize(shorter),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    kw = {"loader": draft_loader(shorter)} if draft else {}
    ds = datasets.ImageFolder(root, transform=tf, **kw)
    return DataLoader(ds, batch_size=batch, num_workers=threads, shuffle=False,
                      persistent_workers=False)


def agreement(logits, labels, class_to_idx):
    """Share of photos whose zero-shot decision (p_dog > p_cat) is their folder's class."""
    p = logits.float().softmax(-1)
    dog = p[:, list(DOGS)].sum(1) > p[:, list(CATS)].sum(1)
    is_dog = labels == class_to_idx["dog"]
    return (dog == is_dog).float().mean().item()


def run(name, model, dl, prepare, ctx):
    logits, labels = [], []
    start = time.perf_counter()
    with ctx():
        for x, y in dl:
            logits.append(model(prepare(x)).float())
            labels.append(y)
    secs = time.perf_counter() - start
    logits, labels = torch.cat(logits), torch.cat(labels)
    n = len(labels)
    acc = agreement(logits, labels, dl.dataset.class_to_idx)
    print(f"pytorch, {name}: {n} photos in {secs:.1f} s ({n / secs:.1f} photos/s)", flush=True)
    return {"variant": name, "seconds": secs, "images": n, "images_per_sec": n / secs,
            "zero_shot_agreement": acc}


def usual(s, root):
    model = ref.load()
    dl = loader(root, s["image_size"], s["resize_shorter"], s["threads"], 32, draft=False)
    return run("ImageFolder + DataLoader, fp32 NCHW", model, dl, lambda x: x, torch.no_grad)


def best(s, root):
    started = time.perf_counter()
    bf16 = native_bf16()
    kind = torch.bfloat16 if bf16 else torch.float32
    model = fx_opt.fuse(ref.load()).to(memory_format=torch.channels_last).to(kind)
    example = torch.zeros(16, 3, s["image_size"], s["image_size"], dtype=kind)
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        frozen = torch.jit.freeze(torch.jit.trace(model.eval(), example))
        frozen(example)
        frozen(example)
    freeze = time.perf_counter() - started
    print(f"pytorch: folding, tracing and freezing took {freeze:.1f} s (not counted)", flush=True)
    dl = loader(root, s["image_size"], s["resize_shorter"], s["threads"], 16, draft=True)

    def prepare(x):
        return x.to(kind).contiguous(memory_format=torch.channels_last)

    name = f"draft decode + folded + channels-last + jit.freeze, {'bf16' if bf16 else 'fp32'}"
    row = run(name, frozen, dl, prepare, torch.inference_mode)
    row["freeze_seconds"] = freeze
    return row


def table(lab5_rows, torch_rows, cpu, threads, configured_name):
    configured = next((r for r in lab5_rows if r["variant"] == configured_name), None)
    plain = next((r for r in lab5_rows if r["variant"] == "plain"), None)
    print(f"\nBackbone pass over {lab5_rows[0]['images']} photos, decoding included; {cpu}, "
          f"{threads} thread(s)\n")
    found = configured is not None
    if not found:
        configured = lab5_rows[-1]
        print(f"(the configured lab5 pass, {configured_name}, was not among BACKBONE_VARIANTS: "
              f"the ratios are against {configured['variant']})\n")
    else:
        print(f"(the configured lab5 pass: {configured_name}, in bold)\n")
    base = configured["variant"]
    print(f"| pipeline | seconds | photos/s | zero-shot agreement, % | its time / lab5 {base}'s "
          f"| lab5 plain's time / its time |")
    print("|---|---|---|---|---|---|")
    for source, rows in (("lab5", lab5_rows), ("PyTorch", torch_rows)):
        for r in rows:
            name = f"{source}, {r['variant']}"
            if found and r is configured:
                name = f"**{name}**"
            vs_plain = f"{plain['seconds'] / r['seconds']:.2f}" if plain else "-"
            print(f"| {name} | {r['seconds']:.1f} | {r['images_per_sec']:.1f} | "
                  f"{100 * r['zero_shot_agreement']:.2f} | {r['seconds'] / configured['seconds']:.2f} | "
                  f"{vs_plain} |")


def main(out):
    with open(os.path.join(out, "lab5_backbone.json")) as f:
        s = json.load(f)
    torch.set_num_threads(s["threads"])
    root = os.path.join(s["data_dir"], "raw")
    if s["image_size"] != ref.SIZE:
        print(f"note: the PyTorch reference pads for {ref.SIZE} px; transfer.image_size is "
              f"{s['image_size']}", flush=True)
    rows = [usual(s, root), best(s, root)]
    with open(os.path.join(out, "pytorch_backbone.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table(s["runs"], rows, s["cpu"], s["threads"], s["configured"])


if __name__ == "__main__":
    main(sys.argv[1])

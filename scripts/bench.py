"""The PyTorch half of `make bench`: trains the same CNN as lab5 (same threads, batch
size, optimiser and schedule) for the same epochs, twice:

1. on the tensors lab5 cached (`train.safetensors`: uint8 images, decoded once), with a
   random horizontal flip per image done on the batch, in the default (NCHW) layout and
   again in the channels-last layout (what lab5 uses);
2. the usual way: torchvision `ImageFolder` + `DataLoader` (num_workers = threads) that
   decodes every JPEG every epoch (Resize, RandomCrop, RandomHorizontalFlip, ToTensor,
   Normalize), in fp32, PyTorch's default.

When lab5 trained in bf16 mixed precision (`cnn.precision`), the channels-last run and the
ImageFolder run are repeated under `torch.autocast("cpu", dtype=torch.bfloat16)`, so that
each lab5 figure also has a PyTorch figure with the same arithmetic.

The first epoch of each is a warm-up and is not timed. Then prints the table comparing
images/s with lab5's figures from `lab5.json`.

Usage: python scripts/bench.py OUT_DIR EPOCHS
"""
import contextlib
import csv
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torchvision import datasets, transforms

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Cnn(nn.Module):
    """conv3x3-BN-ReLU-maxpool blocks, global average pool, dropout, embedding, classifier."""

    def __init__(self, channels, embedding, dropout):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, embedding), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(embedding, 2))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def make_training(cfg, steps):
    if cfg.get("stem_stride", 1) != 1 or cfg.get("residual_after"):
        sys.exit("bench.py's PyTorch twin is the plain conv-BN-ReLU-pool chain; set "
                 "cnn.stem_stride 1 and cnn.residual_after [] to compare like with like")
    torch.manual_seed(42)
    model = Cnn(cfg["channels"], cfg["embedding_dim"], cfg["dropout"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["max_lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["max_lr"], total_steps=steps)
    return model, opt, sched


def step(model, opt, sched, x, y, bf16):
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()


def cached_epochs(cfg, images, labels, epochs, channels_last, bf16=False):
    n, bs = len(labels), cfg["batch_size"]
    model, opt, sched = make_training(cfg, epochs * math.ceil(n / bs))
    model.train()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            x = images[idx].float().div_(255)
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            step(model, opt, sched, (x - mean) / std, labels[idx], bf16)
        times.append(time.perf_counter() - start)
    return times, n


def imagefolder_epochs(cfg, files, epochs, threads, bf16=False):
    root = files[0][0].rsplit("/", 2)[0]
    wanted = {p for p, _ in files}
    tf = transforms.Compose([
        transforms.Resize(cfg["resize_shorter"]),
        transforms.RandomCrop(cfg["image_size"]),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    ds = datasets.ImageFolder(root, transform=tf, is_valid_file=lambda p: p in wanted)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg["batch_size"], shuffle=True, num_workers=threads)
    model, opt, sched = make_training(cfg, epochs * len(loader))
    model.train()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            step(model, opt, sched, x, y, bf16)
        times.append(time.perf_counter() - start)
    return times, len(ds)


def timed(label, run, bf16):
    """Runs `run(bf16)` (epoch times, images per epoch); returns the mean of the timed epochs."""
    times, n = run(bf16)
    print(f"pytorch, {label}: epochs {[round(t, 1) for t in times]} s", flush=True)
    return sum(times[1:]) / len(times[1:]), n


def main():
    out, epochs = sys.argv[1], int(sys.argv[2])
    cfg = json.load(open(f"{out}/lab5.json"))
    lab5_runs = cfg["runs"]
    threads = cfg["threads"]
    bf16 = any(r["precision"] == "bf16" for r in lab5_runs)
    torch.set_num_threads(threads)
    tensors = load_file(f"{out}/train.safetensors")
    images, labels = tensors["images"], tensors["labels"]
    with open(f"{out}/train_files.csv") as f:
        files = [(r["path"], int(r["label"])) for r in csv.DictReader(f)]
    print(f"pytorch {torch.__version__}: {len(labels)} images, {epochs} epochs, {threads} threads", flush=True)
    # (label, run(bf16), repeated under autocast bf16 when lab5 ran bf16)
    pipelines = [
        ("same cached tensors (flip only)",
         lambda b: cached_epochs(cfg, images, labels, epochs, False, b), False),
        ("same cached tensors, channels-last",
         lambda b: cached_epochs(cfg, images, labels, epochs, True, b), True),
        (f"ImageFolder + DataLoader ({threads} workers)",
         lambda b: imagefolder_epochs(cfg, files, epochs, threads, b), True),
    ]
    runs = []
    for label, run, repeat in pipelines:
        runs.append((label, run, False))
        if bf16 and repeat:
            runs.append((f"{label}, autocast bf16", run, True))
    results = [(label, *timed(label, run, b)) for label, run, b in runs]
    print_table(cfg, epochs, lab5_runs, results)


def print_table(cfg, epochs, lab5_runs, results):
    """One row per pipeline; one "lab5 ... is" column per lab5 precision (its speed-up)."""
    n = cfg["images"]
    rates = [r["images_per_sec"] for r in lab5_runs]
    names = [f"lab5 {r['precision']} is" for r in lab5_runs]
    rows = [(f"lab5 (cached uint8 + tensor augmentation, {r['precision']})", n, r["epoch_secs"]) for r in lab5_runs]
    rows += [(f"PyTorch, {label}", n_run, secs) for label, secs, n_run in results]
    w = max(len(name) for name, _, _ in rows)
    print()
    print(f"training throughput, {cfg['image_size']} px, batch {cfg['batch_size']}, {cfg['threads']} threads "
          f"(mean of epochs 2..{epochs})")
    print(f"| {'pipeline':<{w}} | {'epoch s':>8} | {'images/s':>8} | " + " | ".join(f"{c:>13}" for c in names) + " |")
    print(f"|{'-' * (w + 2)}|{'-' * 10}|{'-' * 10}|" + "|".join("-" * 15 for _ in names) + "|")
    for name, n_row, secs in rows:
        rate = n_row / secs
        ratios = " | ".join(f"{lab5 / rate:12.2f}x" for lab5 in rates)
        print(f"| {name:<{w}} | {secs:8.1f} | {rate:8.1f} | {ratios} |")
    for r in lab5_runs:
        print(f"lab5 {r['precision']} loader share of its epoch time: {100 * r['loader_share']:.1f} %")


if __name__ == "__main__":
    main()

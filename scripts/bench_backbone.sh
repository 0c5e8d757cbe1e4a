#!/usr/bin/env bash
# `make bench-backbone`: the backbone pass (EfficientNet-Lite0 over every photo of the data
# set, decoding included, no cache) in lab5 and in PyTorch, side by side on this machine.
#   1. lab5/examples/bench_backbone.rs: the plain pass (as lab5 ran it before it was made
#      fast) and the configured fast pass in fp32 and, on a CPU with native bfloat16, bf16;
#   2. scripts/bench_backbone.py: PyTorch's usual ImageFolder + DataLoader pass, and the
#      fastest PyTorch pass written here (draft decoding, folded batch-norm, channels-last,
#      jit.freeze, bf16 where native).
# Prints one table (seconds, photos/s, zero-shot agreement, ratios) naming the CPU. Not a test.
# With no data yet, run `lab5 import` (or `make run`) first. Takes about 5-10 min on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LAB5_ROOT"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/lab5-bench-backbone.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
cargo build --release --quiet -p lab5 --example bench_backbone
"$LAB5_TARGET/release/examples/bench_backbone" "$OUT"
"$LAB5_VENV/bin/python" scripts/bench_backbone.py "$OUT"

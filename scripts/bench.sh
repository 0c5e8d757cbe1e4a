#!/usr/bin/env bash
# `make bench`: training throughput of lab5 against Python PyTorch on the same photos,
# same CNN, same threads and batch size (config.json). Prints a table; not a test.
#   1. lab5 trains on its cached uint8 tensors (lab5/examples/bench.rs), in fp32 and, on
#      CPUs with native bfloat16 (AVX512-BF16), again in bf16 mixed precision;
#   2. PyTorch trains on those same tensors, then with ImageFolder + DataLoader decoding
#      every JPEG every epoch (scripts/bench.py); each in fp32 and, when lab5 ran bf16,
#      under torch.autocast bf16 too.
# With no data yet, the configured folder (data.folder) is imported first.
# BENCH_EPOCHS (default 3) epochs each; the first one is a warm-up and is not timed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LAB5_ROOT"
EPOCHS=${BENCH_EPOCHS:-3}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/lab5-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
cargo build --release --quiet -p lab5 --example bench
"$LAB5_TARGET/release/examples/bench" "$OUT" "$EPOCHS"
"$LAB5_VENV/bin/python" scripts/bench.py "$OUT" "$EPOCHS"

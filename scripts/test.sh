#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests (real HTTP on loopback,
# real images, the real TensorBoard reader and server, real Jupyter executing the notebooks).
# Ends with one summary line: "tests: N passed, N failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LAB5_ROOT"
fail=0
step() { echo "== $*"; "$@" || { echo "FAILED: $*"; fail=1; }; }
step cargo fmt --all --check
step cargo clippy --release --all-targets --quiet -- -D warnings
log=$(mktemp)
cargo test --release --quiet 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
read -r passed failed < <(awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($(i+1) ~ /^passed/) p+=$i; if ($(i+1) ~ /^failed/) f+=$i } } END { print p+0, f+0 }' "$log")
rm -f "$log"
[ "$fail" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "tests: $passed passed, $failed failed"
exit "$fail"

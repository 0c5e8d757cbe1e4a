#!/usr/bin/env bash
# `make notebooks`: executes every notebooks/NN_*.ipynb (01 ... 07, then 00) with the full config
# (config.json, or the file named by $LAB5_CONFIG) in the "Rust (lab5)" kernel, and
# renders each executed notebook as HTML into <reports_dir>/notebooks/ (git-ignored).
# The committed notebooks stay untouched (no outputs). Finished steps are reused (data,
# runs, maps); the first run of all trains both models (several minutes on 2 cores).
#   NOTEBOOKS="03 06" scripts/notebooks.sh    runs only the notebooks with those numbers.
# Stops after the first notebook with a failed cell and prints each of its failed cells
# (scripts/check_notebook.py: the kernel answers "ok" for a cell that returned an error or
# panicked, so nbconvert alone stops only at compile errors).
# The pages read right offline (scripts/render_notebook.py: MathJax is copied beside them
# into <reports_dir>/notebooks/mathjax/); when a Chromium is installed, each page is then
# loaded in it with the network off and checked (scripts/check_render.py: formulas
# typeset, every chart and image shown).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LAB5_ROOT"

config=$(realpath "${LAB5_CONFIG:-config.json}")
export LAB5_CONFIG=$config
# paths.reports_dir, relative to the config's folder unless absolute.
reports=$(python3 -c 'import json, os, sys
p = sys.argv[1]; d = json.load(open(p))["paths"]["reports_dir"]
print(os.path.join(os.path.dirname(p), d))' "$config")
out="$reports/notebooks"
mkdir -p "$out"

wanted() { # notebook file -> whether NOTEBOOKS (if set) names its number
  [ -z "${NOTEBOOKS:-}" ] && return 0
  local n; n=$(basename "$1"); n=${n%%_*}
  [[ " $NOTEBOOKS " == *" $n "* ]]
}

# The rendered page as an offline reader sees it; without a browser check_render.py says so
# and the page goes unchecked.
check_page() {
  local rc=0; python3 scripts/check_render.py "$1" || rc=$?
  case $rc in
    0) ;;
    2) echo "(page not checked in a browser: see the line above)" >&2 ;;
    *) echo "$(basename "$1"): the page above does not read right offline" >&2; exit 1 ;;
  esac
}

echo "config $config; executed notebooks and HTML in $out"
# 00_theory last: its section on the trained CNN's feature maps needs the run of 03_cnn.
for nb in $(ls notebooks/[0-9][0-9]_*.ipynb | grep -v '/00_') notebooks/00_*.ipynb; do
  wanted "$nb" || continue
  name=$(basename "$nb" .ipynb)
  start=$SECONDS
  # --allow-errors: run past compile errors so that check_notebook.py below names every
  # failed cell, the first (the cause) included, not only the last one nbconvert saw
  jupyter nbconvert --to notebook --execute --allow-errors "$nb" \
    --ExecutePreprocessor.kernel_name="$LAB5_KERNEL" \
    --ExecutePreprocessor.timeout=2400 \
    --output-dir "$out" --output "$name.ipynb" --log-level=WARN
  python3 scripts/render_notebook.py "$out/$name.ipynb" >/dev/null
  python3 scripts/check_notebook.py "$out/$name.ipynb" || {
    echo "$name: failed cells above; executed copy $out/$name.html" >&2; exit 1; }
  check_page "$out/$name.html"
  echo "$name: $((SECONDS - start)) s -> $out/$name.html"
done

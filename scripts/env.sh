# Sourced by the other scripts: where lab5's heavy state lives (outside the clone, so
# every clone reuses it). Override LAB5_HOME to move it.
LAB5_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB5_HOME=${LAB5_HOME:-$HOME/.cache/lab5}
LAB5_VENV=${LAB5_VENV:-$LAB5_HOME/venv}
LAB5_TARGET=$LAB5_HOME/target
LAB5_BIN=$LAB5_TARGET/release/lab5
LAB5_EVCXR=$LAB5_HOME/evcxr/bin/evcxr_jupyter
LAB5_KERNEL=lab5
export LAB5_HOME
# The venv's python/jupyter/tensorboard come first; OpenMP threads sleep when idle
# (busy-waiting threads halve throughput on a shared 2-core machine).
export PATH="$LAB5_VENV/bin:$PATH"
export JUPYTER_PATH="$LAB5_VENV/share/jupyter"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
lab5_torch_dir() { echo "$LAB5_VENV/lib/python$("$LAB5_VENV/bin/python" -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/torch"; }

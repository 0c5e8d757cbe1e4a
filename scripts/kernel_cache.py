#!/usr/bin/env python3
"""The notebook kernel's compiled copy of lab5: says whether it is current, and builds it.

    python3 scripts/kernel_cache.py status     # in a notebook's first cell (inside the kernel)
    python3 scripts/kernel_cache.py warm       # in scripts/setup.sh (make run/lab/notebooks/test)

The "Rust (lab5)" kernel (evcxr) compiles lab5 and its whole dependency tree (tch, polars,
plotters, ...) in its own work folder the first time a notebook runs
`:dep lab5 = { path = "../lab5" }`: 6-13 minutes on 2 cores, with nothing on the screen.
Each running kernel has its own folder ("slot", `$LAB5_HOME/evcxr-work/slotN`, picked by the
launcher `kernel.sh`: the first one no other kernel holds).

`warm` builds that folder the same way a notebook does: it starts the kernel in `notebooks/`
and runs the first cells of `01_data.ipynb` up to its `:dep` line, says so with one line and
the time it took, and records that time. When the folder is current it only says "reused".

`status` tells, before the `:dep` cell runs, whether that cell will only load lab5 (seconds)
or compile it first, and roughly how long, from what the build folder holds. lab5 is stale
exactly when cargo would rebuild it: a source file listed in the compiled library's dep-info
(`liblab5-*.d`) is newer than the library (cargo compares the same modification times), or
`lab5/Cargo.toml` or the kernel's cargo config is (its dependencies may change then).

Exit status: 0, or 1 with a message on stderr when the warm-up build failed.
"""
import fcntl
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# The notebook whose setup cells the warm-up runs (all numbered notebooks start the same).
FIRST_NOTEBOOK = NOTEBOOKS / "01_data.ipynb"
DEP_PREFIX = ":dep lab5"
KERNEL = "lab5"
SLOTS = 8  # as many as scripts/setup.sh's kernel.sh tries
# Rough figures for a machine with no recorded build yet (2 cores, measured: see README).
DEFAULT_SECONDS = {"full": 12 * 60, "lab5": 3 * 60}


def lab5_home():
    return Path(os.environ.get("LAB5_HOME") or Path.home() / ".cache" / "lab5")


def work_dir():
    return lab5_home() / "evcxr-work"


def times_file():
    return work_dir() / "build-times.json"


def free_slot():
    """The slot a kernel started now would take (the launcher's rule: first unlocked one)."""
    for n in range(SLOTS):
        lock = work_dir() / f"slot{n}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            fcntl.flock(f, fcntl.LOCK_UN)
            return work_dir() / f"slot{n}"
    return work_dir() / f"slot{SLOTS - 1}"


def compiled_lab5(slot):
    """The newest compiled lab5 library in a slot's target folder and its dep-info, or None."""
    libs = list(slot.glob("target/**/deps/liblab5-*.rlib"))
    if not libs:
        return None
    lib = max(libs, key=lambda p: p.stat().st_mtime)
    dep_info = lib.with_name(lib.stem[len("lib"):] + ".d")
    return lib, dep_info


def sources_of(dep_info):
    """Source files listed in a cargo dep-info file (`target: src1 src2 ...` lines)."""
    files = set()
    try:
        text = dep_info.read_text()
    except OSError:
        return files
    for line in text.splitlines():
        if ":" not in line or line.startswith("#"):
            continue
        _, _, deps = line.partition(": ")
        # Paths with spaces are escaped as "\ " in dep-info.
        for part in deps.replace("\\ ", "\0").split():
            files.add(Path(part.replace("\0", " ")))
    return files


def verdict(slot):
    """("current" | "lab5" | "full", reason) for the compiled lab5 in `slot`."""
    found = compiled_lab5(slot)
    if found is None:
        return "full", "lab5 has not been compiled in this kernel's build folder yet"
    lib, dep_info = found
    built = lib.stat().st_mtime
    config = [ROOT / "lab5" / "Cargo.toml", work_dir() / ".cargo" / "config.toml"]
    changed = [p for p in config if p.exists() and p.stat().st_mtime > built]
    if changed:
        names = ", ".join(short(p) for p in changed)
        return "full", f"{names} changed since this kernel's copy of lab5 was built"
    sources = sources_of(dep_info) | {ROOT / "lab5" / "build.rs"}
    newer = sorted(short(p) for p in sources if p.exists() and p.stat().st_mtime > built)
    if newer:
        more = f" and {len(newer) - 3} more" if len(newer) > 3 else ""
        return "lab5", f"{', '.join(newer[:3])}{more} changed since this kernel's copy of lab5 was built"
    return "current", "built " + time.strftime("%Y-%m-%d %H:%M", time.localtime(built))


def short(path):
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def recorded_times():
    try:
        return json.loads(times_file().read_text())
    except (OSError, ValueError):
        return {}


def record_time(kind, seconds):
    times = recorded_times()
    times[kind] = {"seconds": round(seconds), "cpus": os.cpu_count(),
                   "measured": time.strftime("%Y-%m-%d %H:%M")}
    tmp = times_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(times, indent=1) + "\n")
    tmp.replace(times_file())


def minutes(seconds):
    return f"{max(1, round(seconds / 60))} min"


def estimate(kind):
    """How long a build of `kind` takes here: the last one measured, else the default."""
    rec = recorded_times().get(kind)
    if rec:
        return f"about {minutes(rec['seconds'])} (measured here {rec['measured']}, {rec['cpus']} CPUs)"
    return f"about {minutes(DEFAULT_SECONDS[kind])} on 2 cores"


def status_line(slot):
    kind, reason = verdict(slot)
    if kind == "current":
        return f"lab5 for notebooks is up to date ({reason}): the next cell loads it in seconds."
    what = "lab5 and its dependencies" if kind == "full" else "lab5"
    return (f"lab5 for notebooks must be compiled first: {reason}. The next cell compiles {what} "
            f"before it loads it, {estimate(kind)}; the kernel shows [*] meanwhile, it is working.")


def status():
    slot = Path(os.environ["EVCXR_TMPDIR"]) if os.environ.get("EVCXR_TMPDIR") else free_slot()
    print(status_line(slot), flush=True)
    return 0


def setup_cells():
    """The first notebook's code cells up to and including its `:dep lab5` line."""
    import nbformat
    nb = nbformat.read(FIRST_NOTEBOOK, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cells.append(nbformat.v4.new_code_cell(cell.source))
        if cell.source.lstrip().startswith(DEP_PREFIX):
            return cells
    sys.exit(f"kernel_cache: {short(FIRST_NOTEBOOK)} has no code cell starting with {DEP_PREFIX}")


def warm():
    slot = free_slot()
    kind, reason = verdict(slot)
    if kind == "current":
        print(f"setup: notebook kernel: reused lab5 for notebooks ({slot.name}, {reason})", flush=True)
        return 0
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    once = "once, " if kind == "full" else ""
    print(f"setup: notebook kernel: building lab5 for notebooks ({reason}; {once}{estimate(kind)})",
          flush=True)
    nb = nbformat.v4.new_notebook(cells=setup_cells())
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=3 * 3600, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as err:
        print(f"kernel_cache: the notebook kernel could not build lab5:\n{err}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - start
    record_time(kind, seconds)
    print(f"setup: notebook kernel: built lab5 for notebooks in {minutes(seconds)} ({round(seconds)} s); "
          "a notebook's first cells now take seconds", flush=True)
    return 0


def main(args):
    commands = {"status": status, "warm": warm}
    if len(args) != 1 or args[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[args[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

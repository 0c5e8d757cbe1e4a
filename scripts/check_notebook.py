#!/usr/bin/env python3
"""Finds the failed cells of executed notebooks, whatever way the Rust kernel reported them.

    python3 scripts/check_notebook.py EXECUTED.ipynb [...]

Prints one paragraph per failed cell (notebook, cell number, first line of the cell, what
failed) and exits with 1 when there is any, else prints nothing and exits with 0. Run by
`scripts/notebooks.sh` (`make notebooks`) and by the notebook tests (`lab5/tests/notebooks.rs`).

Why outputs and not the kernel's answer: evcxr 0.22 answers "ok" for a cell whose code
returned an error or panicked, so `jupyter nbconvert --execute` goes on and raises nothing.
A cell failed when its outputs hold
  1. an `error` output: a compile error, or the kernel's child process died;
  2. a lab5 error block (MIME type application/vnd.lab5.error+json): a lab5 call at the
     end of the cell returned an error, or code panicked after `setup()`;
  3. a Rust panic on stderr (`thread '...' panicked at ...`);
  4. any other stderr text than lab5's own progress lines (`lab5: ...`, `lab5 run: ...`)
     and warnings (libtorch's `[W ...]`, lines starting `warning:`): evcxr prints an error
     returned with `?` there, and nothing else marks it;
  5. a cell value shown as `Err(...)` (a `Result` whose type has no lab5 display, shown
     through its Debug text).
A cell with a lab5 block is reported by its block alone (its stderr repeats it).
Rules 3 and 4 are a fallback: evcxr forwards stderr on its own thread and may deliver it
with the next cell's outputs, or not at all, while blocks arrive in order with stdout;
that is why every lab5 failure in a notebook is meant to show as a block.

It also fails a cell that shows a thing its reader never sees:
  6. an output carrying more than one of the rich MIME types text/html, image/svg+xml,
     image/png, text/markdown: evcxr merges everything a cell displays into one output,
     and every frontend (JupyterLab, nbconvert's HTML) shows only one of its forms, so a
     table shown with `evcxr_display()` followed by a chart loses one of them. Show each
     from its own cell.

Exit status: 0 nothing failed, 1 failed cells (listed), 2 the check itself could not run
(a missing or malformed notebook file).
"""
import json
import re
import sys

ERROR_MIME = "application/vnd.lab5.error+json"
PANIC = re.compile(r"^thread '.*' (?:\(\d+\) )?panicked at (.*)$")
PROGRESS = ("lab5: ", "lab5 run: ")
BENIGN = re.compile(r"^(\[W[ 0-9]|warning:|Warning:)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Forms of one output that frontends choose between (only one of them is shown).
RICH_MIMES = ("text/html", "image/svg+xml", "image/png", "text/markdown")


def text(value):
    """Notebook text fields are a string or a list of lines."""
    return "".join(value) if isinstance(value, list) else (value or "")


def panic_report(lines):
    """'panicked at PLACE: MESSAGE' for the first panic in stderr lines, else None."""
    for i, line in enumerate(lines):
        m = PANIC.match(line)
        if m:
            message = lines[i + 1] if i + 1 < len(lines) else ""
            return f"panicked at {m.group(1)} {message}".strip()
    return None


def stderr_problems(stderr):
    """What a cell's stderr text says went wrong: a panic, or lines no lab5 step prints."""
    lines = stderr.splitlines()
    panic = panic_report(lines)
    if panic:
        return [panic]
    other = [l for l in lines
             if l.strip() and not l.startswith(PROGRESS) and not BENIGN.match(l)]
    if other:
        return ["stderr (evcxr prints an error returned with `?` this way): " + " | ".join(other)]
    return []


def output_problems(out):
    """What one output says went wrong, if anything."""
    kind = out.get("output_type")
    if kind == "error":
        trace = ANSI.sub("", "\n".join(out.get("traceback") or []))
        return [f"{out.get('ename')}: {ANSI.sub('', out.get('evalue', ''))}\n{trace}".strip()]
    data = out.get("data") or {}
    block = data.get(ERROR_MIME)
    if isinstance(block, dict):
        causes = "".join(f"\n  caused by: {c}" for c in block.get("causes", []))
        return [f"lab5 {block.get('kind', 'error')}: {block.get('message')}{causes}"]
    plain = text(data.get("text/plain")).strip()
    if kind == "execute_result" and plain.startswith("Err("):
        return [f"the cell's value is an error: {plain}"]
    return competing_forms(out)


def competing_forms(out):
    """An output with two or more rich forms: the reader sees only one of them."""
    rich = [m for m in RICH_MIMES if m in (out.get("data") or {})]
    if len(rich) < 2:
        return []
    return [f"one output carries {len(rich)} rich forms ({', '.join(rich)}) and frontends show "
            "only one of them: the cell displayed several things (evcxr merges them into one "
            "output); show each from its own cell"]


def cell_problems(cell):
    """Everything that went wrong in one executed code cell."""
    outputs = cell.get("outputs") or []
    found = [p for out in outputs for p in output_problems(out)]
    stderr = "".join(text(o.get("text")) for o in outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    if any(p.startswith("lab5 ") for p in found):
        return found  # the block says it all; stderr repeats the panic or the `?` error
    return found + stderr_problems(stderr)


def problems(path):
    """Paragraphs naming each failed cell of the executed notebook at `path`."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    report = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        found = cell_problems(cell)
        if found:
            first = text(cell.get("source")).strip().splitlines() or [""]
            body = "\n".join("    " + line for p in found for line in p.splitlines())
            report.append(f"{path}: cell {i} (`{first[0]}`) failed:\n{body}")
    return report


def main(paths):
    try:
        report = [p for path in paths for p in problems(path)]
    except (OSError, ValueError, AttributeError, TypeError) as e:
        print(f"check_notebook: cannot check {' '.join(paths)}: {e}", file=sys.stderr)
        return 2
    if report:
        print("\n".join(report))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

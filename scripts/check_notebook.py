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
  4. any other stderr text than lab5's own progress lines (`lab5: ...`, `lab5 run: ...`):
     evcxr prints an error returned with `?` there, and nothing else marks it.
"""
import json
import re
import sys

ERROR_MIME = "application/vnd.lab5.error+json"
PANIC = re.compile(r"^thread '.*' (?:\(\d+\) )?panicked at (.*)$")
PROGRESS = ("lab5: ", "lab5 run: ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
    other = [l for l in lines if l.strip() and not l.startswith(PROGRESS)]
    if other:
        return ["stderr (evcxr prints an error returned with `?` this way): " + " | ".join(other)]
    return []


def output_problems(out):
    """What one output says went wrong, if anything."""
    kind = out.get("output_type")
    if kind == "error":
        trace = ANSI.sub("", "\n".join(out.get("traceback") or []))
        return [f"{out.get('ename')}: {ANSI.sub('', out.get('evalue', ''))}\n{trace}".strip()]
    block = (out.get("data") or {}).get(ERROR_MIME)
    if isinstance(block, dict):
        causes = "".join(f"\n  caused by: {c}" for c in block.get("causes", []))
        return [f"lab5 {block.get('kind', 'error')}: {block.get('message')}{causes}"]
    return []


def cell_problems(cell):
    """Everything that went wrong in one executed code cell."""
    outputs = cell.get("outputs") or []
    found = [p for out in outputs for p in output_problems(out)]
    stderr = "".join(text(o.get("text")) for o in outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    from_stderr = stderr_problems(stderr)
    panicked = from_stderr and from_stderr[0].startswith("panicked")
    if panicked and any(p.startswith("lab5 panic") for p in found):
        from_stderr = []  # after setup() a panic shows a block and stderr text: report it once
    return found + from_stderr


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
    report = [p for path in paths for p in problems(path)]
    if report:
        print("\n".join(report))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

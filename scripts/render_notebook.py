#!/usr/bin/env python3
"""Renders executed notebooks as HTML pages that read right offline.

    python3 scripts/render_notebook.py EXECUTED.ipynb [...]

Writes NAME.html next to each NAME.ipynb, and copies MathJax 2.7 (from the PyPI package
jupyter-server-mathjax, pinned in requirements.txt and installed by `scripts/setup.sh`)
into a folder `mathjax/` beside the pages, which they load by a relative address: the
pages typeset their formulas without network, also when the folder holding them is
copied elsewhere whole. nbconvert's default HTML loads MathJax and require.js from a CDN,
so offline its formulas stay raw TeX.

The template (scripts/nbconvert/lab5_offline) is nbconvert's "lab" template without
require.js (only widgets need it), with MathJax set to the STIX-Web fonts that the copy
ships, and wide SVG charts shrunk to the page width. Run by `scripts/notebooks.sh`
(`make notebooks`) and by the notebook tests (`lab5/tests/notebooks.rs`), whose pages
`scripts/check_render.py` then loads in headless Chromium.
"""
import shutil
import sys
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "nbconvert"
TEMPLATE = "lab5_offline"
MATHJAX_DIR = "mathjax"
# MathJax's combined config of the copy (TeX and MathML in, HTML-CSS out), and its Safe mode.
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
# Which copy a folder holds (rewritten when the package changes).
STAMP = ".lab5-mathjax"


def mathjax_source():
    """The MathJax folder of the installed jupyter-server-mathjax, and its version."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        sys.exit("render_notebook: no MathJax for offline pages (Python package "
                 "jupyter-server-mathjax missing): run scripts/setup.sh, which installs "
                 "requirements.txt into the venv")
    from importlib.metadata import version
    static = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    if not (static / "MathJax.js").is_file():
        sys.exit(f"render_notebook: {static} holds no MathJax.js; reinstall jupyter-server-mathjax")
    return static, version("jupyter-server-mathjax")


def skip_translations(folder, names):
    """copytree filter: MathJax's English messages are built in, other languages are not read."""
    if Path(folder).name == "localization":
        return [n for n in names if n != "en"]
    return []


def copy_mathjax(out_dir):
    """Puts MathJax into `out_dir/mathjax/` unless the same copy is there already."""
    source, version = mathjax_source()
    target = Path(out_dir) / MATHJAX_DIR
    stamp = f"jupyter-server-mathjax {version}\n"
    if (target / STAMP).is_file() and (target / STAMP).read_text() == stamp:
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=skip_translations)
    (target / STAMP).write_text(stamp)


def exporter():
    """nbconvert's HTML exporter with the offline template and the local MathJax."""
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)],
                        mathjax_url=MATHJAX_URL)


def render(paths):
    """Writes NAME.html next to each NAME.ipynb of `paths`; returns the pages written."""
    html = exporter()
    pages = []
    for folder in sorted({Path(p).resolve().parent for p in paths}):
        copy_mathjax(folder)
    for path in map(Path, paths):
        body, _ = html.from_filename(str(path))
        page = path.with_suffix(".html")
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    return pages


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for page in render(paths):
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

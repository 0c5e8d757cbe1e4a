#!/usr/bin/env python3
"""Opens a running TensorBoard in headless Chromium and keeps screenshots for a person to look at.

    python3 scripts/tensorboard_shots.py --port PORT --out DIR

Loads http://127.0.0.1:PORT/#scalars, #images, #histograms, #hparams and #projector, waits
until each page shows its data (scalar charts, image and histogram cards, the HParams table's
rows; the projector's points with their sprite thumbnails and metadata, then coloured by the
metadata column `label`), and saves DIR/<page>.png. Prints one JSON object: what each page
showed (the scalar tags drawn; the number of image and histogram cards; the HParams rows; the
projector's run, tensor, points, dimension, metadata columns, whether the sprite loaded, the
colour-by column and its legend as [label, points] pairs), for the caller to check.

The browser is found and driven as by scripts/check_render.py (Chrome DevTools Protocol over a
pipe); unlike there, the network is on (TensorBoard is on loopback) and WebGL runs in software
(SwiftShader), which the projector needs. Exit status 2: no browser, the browser failed, or a
page did not show its data in time.
"""
import base64
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_render  # noqa: E402
from check_render import Browser, BrowserError, evaluate, find_browser  # noqa: E402

WIDTH, HEIGHT = 1400, 1000
PAGE_TIMEOUT_S = 90
# Time the projector's PCA and sprite rendering get after the data arrived.
SETTLE_S = 4

# Loopback must be reachable and WebGL must work: keep check_render's flags but the ones
# that cut the network off or switch the GPU (and so WebGL) off.
FLAGS = [f for f in check_render.FLAGS
         if not f.startswith(("--host-resolver-rules", "--proxy-server", "--disable-gpu"))]
FLAGS += ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

# Helper of the page scripts below: every element of a tag through all shadow roots and
# same-origin frames (TensorBoard shows some plugins, the projector among them, in an iframe).
DEEP_JS = r"""
const deepAll = (tag, root = document, out = []) => {
  for (const el of root.querySelectorAll('*')) {
    if (el.localName === tag) out.push(el);
    if (el.shadowRoot) deepAll(tag, el.shadowRoot, out);
    if (el.localName === 'iframe' && el.contentDocument) deepAll(tag, el.contentDocument, out);
  }
  return out;
};
"""

# What the scalars page shows: its chart cards (drawn as they scroll into view) and their tags.
SCALARS_JS = "(() => {" + DEEP_JS + r"""
  const cards = deepAll('tf-scalar-card');
  return {cards: cards.length, tags: cards.map(c => c.tag).filter(t => t)};
})()
"""

# What the projector shows; once the metadata is there, colours the points by `label`.
PROJECTOR_JS = "(() => {" + DEEP_JS + r"""
  const p = deepAll('vz-projector')[0];
  const panel = deepAll('vz-projector-data-panel')[0];
  const ds = p && p.dataSet;
  if (!ds || !panel) return {ready: false};
  const info = ds.spriteAndMetadataInfo || {};
  const options = (panel.colorOptions || []).map(o => o.name);
  if (options.includes('label') && panel.selectedColorOptionName !== 'label') {
    panel.selectedColorOptionName = 'label';
  }
  // the colour legend drawn for the selected column: [label, number of points] per colour
  const legend = ((panel.colorLegendRenderInfo || {}).items || []).map(i => [i.label, i.count]);
  return {
    ready: ds.points.length > 0 && !!info.spriteImage && panel.selectedColorOptionName === 'label'
      && legend.length > 0,
    run: panel.selectedRun,
    tensor: panel.selectedTensor,
    points: ds.points.length,
    dim: ds.dim ? ds.dim[1] : null,
    sprite: !!info.spriteImage,
    columns: (info.stats || []).map(s => s.name),
    colorBy: panel.selectedColorOptionName,
    legend: legend,
  };
})()
"""


def open_tab(browser, url):
    """A new tab of WIDTH x HEIGHT showing `url`; returns its session id."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime"):
        browser.call(f"{domain}.enable", session=session)
    browser.call("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False,
    }, session=session)
    browser.call("Page.navigate", {"url": url}, session=session)
    return session


def wait_for(browser, session, js, ready, what):
    """Evaluates `js` until `ready(value)`; returns the value, or raises after PAGE_TIMEOUT_S."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    value = None
    while time.monotonic() < deadline:
        try:
            value = evaluate(browser, session, js, 30)
        except BrowserError as e:  # the page is still loading (no body, no app yet)
            value = str(e)
        if isinstance(value, dict) and ready(value):
            return value
        time.sleep(1)
    raise BrowserError(f"{what} did not show its data in {PAGE_TIMEOUT_S} s (last: {str(value)[:300]})")


def screenshot(browser, session, path):
    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
    Path(path).write_bytes(base64.b64decode(shot["data"]))


# What the HParams page's table shows: one session group (row) per run.
HPARAMS_JS = "(() => {" + DEEP_JS + r"""
  const table = deepAll('tf-hparams-table-view')[0];
  const groups = (table && table.sessionGroups) || [];
  return {count: groups.length, groups: groups.map(g => g.name)};
})()
"""


def count_js(tag):
    """A page script counting the elements `tag` (through shadow roots and frames)."""
    return "(() => {" + DEEP_JS + f"return {{count: deepAll('{tag}').length}};" + "})()"


# Each page: its name (the screenshot's file stem), the script reporting what it shows, and
# when that report says the data is there.
PAGES = [
    ("scalars", SCALARS_JS, lambda v: "accuracy/val" in v["tags"]),
    ("images", count_js("tf-image-loader"), lambda v: v["count"] > 0),
    ("histograms", count_js("tf-histogram-loader"), lambda v: v["count"] > 0),
    ("hparams", HPARAMS_JS, lambda v: v["count"] > 0),
    ("projector", PROJECTOR_JS, lambda v: v.get("ready")),
]


def main(argv):
    if len(argv) != 4 or argv[0] != "--port" or argv[2] != "--out":
        print(__doc__, file=sys.stderr)
        return 2
    port, out = int(argv[1]), Path(argv[3])
    out.mkdir(parents=True, exist_ok=True)
    executable = find_browser()
    if not executable:
        print("tensorboard_shots: no Chromium found (run scripts/setup.sh or set LAB5_BROWSER)",
              file=sys.stderr)
        return 2
    browser = Browser(executable, FLAGS)
    report = {}
    try:
        for name, js, ready in PAGES:
            session = open_tab(browser, f"http://127.0.0.1:{port}/#{name}")
            wait_for(browser, session, js, ready, f"the {name} page")
            time.sleep(SETTLE_S)  # charts drawn; the projector's PCA and colours
            report[name] = evaluate(browser, session, js, 30)
            screenshot(browser, session, out / f"{name}.png")
    except BrowserError as e:
        print(f"tensorboard_shots: {e}", file=sys.stderr)
        return 2
    finally:
        browser.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

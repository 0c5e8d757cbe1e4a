#!/usr/bin/env python3
"""Opens a running TensorBoard in headless Chromium and keeps screenshots for a person to look at.

    python3 scripts/tensorboard_shots.py --port PORT --out DIR

Loads http://127.0.0.1:PORT/#scalars and http://127.0.0.1:PORT/#projector, waits until each
page shows its data (the scalar cards; the projector's points with their sprite thumbnails
and metadata, coloured by the metadata column `label`), and saves DIR/scalars.png and
DIR/projector.png. Prints one JSON object: what each page showed (the scalar tags in the
page's text; the projector's run, number of points, dimension, whether the sprite loaded,
the colour-by column), for the caller to check.

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

# Finds an element by tag name through every shadow root of the page.
DEEP_FIND_JS = r"""
const deepFind = (tag, root = document) => {
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    if (node.querySelector) {
      const hit = node.querySelector(tag);
      if (hit) return hit;
    }
    const all = node.querySelectorAll ? node.querySelectorAll('*') : [];
    for (const el of all) if (el.shadowRoot) stack.push(el.shadowRoot);
  }
  return null;
};
"""

SCALARS_JS = r"""
(() => ({
  text: document.body.innerText,
  cards: document.querySelectorAll('scalar-card, tf-scalar-card').length,
}))()
"""

PROJECTOR_JS = DEEP_FIND_JS + r"""
(() => {
  const p = deepFind('vz-projector');
  const panel = deepFind('vz-projector-data-panel');
  const ds = p && p.dataSet;
  if (!ds || !panel) return {ready: false};
  const info = ds.spriteAndMetadataInfo || {};
  const options = (panel.colorOptions || []).map(o => o.name);
  if (options.includes('label') && panel.selectedColorOptionName !== 'label') {
    panel.selectedColorOptionName = 'label';
  }
  return {
    ready: ds.points.length > 0 && !!info.spriteImage && options.includes('label'),
    run: panel.selectedRun,
    tensor: panel.selectedTensor,
    points: ds.points.length,
    dim: ds.dim ? ds.dim[1] : null,
    sprite: !!info.spriteImage,
    columns: (info.stats || []).map(s => s.name),
    colorBy: panel.selectedColorOptionName,
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
        value = evaluate(browser, session, js, 30)
        if value and ready(value):
            return value
        time.sleep(1)
    raise BrowserError(f"{what} did not show its data in {PAGE_TIMEOUT_S} s (last: {str(value)[:300]})")


def screenshot(browser, session, path):
    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
    Path(path).write_bytes(base64.b64decode(shot["data"]))


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
    check_render.FLAGS = FLAGS
    browser = Browser(executable)
    report = {}
    try:
        base = f"http://127.0.0.1:{port}/"
        s = open_tab(browser, base + "#scalars")
        v = wait_for(browser, s, SCALARS_JS, lambda v: "loss/val" in v["text"], "the scalars page")
        time.sleep(SETTLE_S)
        screenshot(browser, s, out / "scalars.png")
        report["scalars"] = {"cards": v["cards"], "text": v["text"][:4000]}
        s = open_tab(browser, base + "#projector")
        wait_for(browser, s, PROJECTOR_JS, lambda v: v.get("ready"), "the projector")
        time.sleep(SETTLE_S)  # PCA, colouring by label, sprites drawn
        report["projector"] = evaluate(browser, s, PROJECTOR_JS, 30)
        screenshot(browser, s, out / "projector.png")
    except BrowserError as e:
        print(f"tensorboard_shots: {e}", file=sys.stderr)
        return 2
    finally:
        browser.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Loads rendered notebooks in headless Chromium with the network off and checks what a reader sees.

    python3 scripts/check_render.py [--screenshots DIR] PAGE.html [...]

PAGE.html is a page written by `scripts/render_notebook.py` next to its executed notebook
PAGE.ipynb. For each page, after MathJax has finished, it fails (one paragraph per problem,
exit status 1) when
  1. the page asks for anything over the network (an offline reader cannot load it), or a
     file it needs next to it is missing (a MathJax part, a font);
  2. text outside code still holds raw TeX delimiters ($...$, $$, \\( or \\[): formulas
     that were not typeset; MathJax reports a formula it could not typeset; or a typeset
     formula shows TeX source as text (a backslash among its glyphs: `\\_` in `\\text{}`);
  3. an image did not load, or a cell shows fewer charts and images than its outputs hold
     (an output with two rich MIME types shows only one of them).
With --screenshots DIR it saves DIR/<page>.png, the page as a reader sees it (its first
SCREENSHOT_MAX_HEIGHT pixels at a 1200-pixel-wide window), for a person to look at.

The browser is $LAB5_BROWSER, else the first of chromium, chromium-browser, google-chrome
on PATH (`scripts/setup.sh` installs Debian's chromium). It is driven with the Chrome
DevTools Protocol over a pipe (--remote-debugging-pipe: no port, no extra Python package).
Exit status 2: no browser, or the browser failed.
"""
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# No network at all: names resolve nowhere, and every request but file: and data: is
# reported (the DevTools network emulation also answers them "offline").
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
    "--remote-debugging-pipe", "--allow-file-access-from-files",
]
WIDTH = 1200
SCREENSHOT_MAX_HEIGHT = 16000
LOAD_TIMEOUT_S = 60
MATH_TIMEOUT_S = 60
# Rich MIME types nbconvert shows as an image.
IMAGE_MIMES = ("image/svg+xml", "image/png", "image/jpeg", "image/gif")
# TeX left in prose: a $...$ pair on one line, $$, \( or \[.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\$[^$\n]+\$")

# Runs in the page: what each notebook cell shows, as JSON-able values.
PAGE_REPORT_JS = r"""
(() => {
  const visible = (el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('code, pre, script, style, .MathJax, .MathJax_Display, ' +
      '.MathJax_Preview, .MJX_Assistive_MathML, .jp-InputArea-editor, .jp-InputPrompt, ' +
      '.jp-OutputPrompt').forEach(n => n.remove());
    return copy.textContent;
  };
  return {
    mathjax: !!(window.MathJax && window.MathJax.Hub),
    mathErrors: document.querySelectorAll('.MathJax_Error, .MathJax .noError, .MathJax merror').length,
    cells: [...document.querySelectorAll('.jp-Cell')].map(c => ({
      text: visible(c),
      // Typeset formulas whose visible glyphs still hold a backslash: TeX source shown as
      // text (MathJax prints `\_` inside \text{} literally, for instance).
      mathSource: [...c.querySelectorAll('.MathJax')].map(m => {
        const k = m.cloneNode(true);
        k.querySelectorAll('.MJX_Assistive_MathML').forEach(n => n.remove());
        return k.textContent;
      }).filter(t => t.includes('\\')),
      images: [...c.querySelectorAll('.jp-OutputArea-output img')].map(i => ({
        loaded: i.complete && i.naturalWidth > 0,
        src: i.getAttribute('src').slice(0, 60),
      })),
    })),
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})()
"""

# Runs in the page: resolves when MathJax has typeset everything (or is absent).
MATH_DONE_JS = r"""
new Promise(done => {
  if (!(window.MathJax && window.MathJax.Hub)) { done('no MathJax'); return; }
  window.MathJax.Hub.Queue(() => done('typeset'));
})
"""


class BrowserError(Exception):
    """The browser could not be started or did not answer."""


def find_browser():
    """Path of the browser to use, or None."""
    named = os.environ.get("LAB5_BROWSER")
    if named:
        return named if shutil.which(named) else None
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


class Browser:
    """A headless Chromium driven over --remote-debugging-pipe (fd 3: commands, fd 4: answers)."""

    def __init__(self, executable, flags=None):
        """Starts `executable` with `flags` (default: FLAGS, the network cut off)."""
        flags = FLAGS if flags is None else flags
        self.profile = tempfile.mkdtemp(prefix="lab5-chromium-")
        to_chrome, self._send_fd = os.pipe()
        self._recv_fd, from_chrome = os.pipe()

        def pipes_as_3_and_4():
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        # Its log goes to a file: an unread pipe would fill up and stall the browser.
        self.log = Path(self.profile) / "stderr.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [executable, *flags, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=pipes_as_3_and_4, pass_fds=(3, 4))
        os.close(to_chrome)
        os.close(from_chrome)
        self._next_id = 0
        self._buffer = b""
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._recv_fd], [], [], left)[0]:
                raise BrowserError("the browser did not answer in time")
            chunk = os.read(self._recv_fd, 1 << 20)
            if not chunk:
                err = self.log.read_text(errors="replace")[-2000:]
                raise BrowserError(f"the browser quit: {err}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=LOAD_TIMEOUT_S):
        """Sends one DevTools command and returns its result; events seen meanwhile are kept."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._send_fd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def wait_event(self, method, timeout):
        """Waits for the event `method` (kept events first)."""
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            self.events.append(self._read_message(deadline))

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._send_fd, self._recv_fd):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


def open_offline_page(browser):
    """A new tab with the network emulated offline; returns its session id."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime"):
        browser.call(f"{domain}.enable", session=session)
    browser.call("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
    }, session=session)
    browser.call("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False,
    }, session=session)
    return session


def evaluate(browser, session, js, timeout):
    """The value of `js` in the page (a promise is awaited)."""
    result = browser.call("Runtime.evaluate", {
        "expression": js, "awaitPromise": True, "returnByValue": True,
        "timeout": timeout * 1000,
    }, session=session, timeout=timeout + 5)
    if "exceptionDetails" in result:
        raise BrowserError(f"page script failed: {result['exceptionDetails'].get('text')}")
    return result["result"].get("value")


def network_problems(events):
    """Requests that left the page's folder, and local files that failed to load."""
    problems = []
    urls = {}
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent":
            url = p["request"]["url"]
            urls[p["requestId"]] = url
            if not url.startswith(("file:", "data:", "about:")):
                problems.append(f"asks for {url[:120]} over the network (an offline reader cannot load it)")
        elif e["method"] == "Network.loadingFailed":
            url = urls.get(p["requestId"], "?")
            if url.startswith("file:"):
                problems.append(f"cannot load {url[:160]}: {p.get('errorText')}")
    return list(dict.fromkeys(problems))  # a file asked for twice is one problem


def load_page(browser, html, screenshot=None):
    """Loads `html` offline; returns (what the page shows, network problems)."""
    browser.events = []
    session = open_offline_page(browser)
    browser.call("Page.navigate", {"url": Path(html).resolve().as_uri()}, session=session)
    browser.wait_event("Page.loadEventFired", LOAD_TIMEOUT_S)
    evaluate(browser, session, MATH_DONE_JS, MATH_TIMEOUT_S)
    report = evaluate(browser, session, PAGE_REPORT_JS, 30)
    if screenshot:
        save_screenshot(browser, session, report["height"], screenshot)
    return report, network_problems(browser.events)


def save_screenshot(browser, session, height, path):
    """The page's first SCREENSHOT_MAX_HEIGHT pixels as a PNG file at `path`."""
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(height, SCREENSHOT_MAX_HEIGHT), "scale": 1}
    shot = browser.call("Page.captureScreenshot", {
        "format": "png", "clip": clip, "captureBeyondViewport": True,
    }, session=session)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(base64.b64decode(shot["data"]))


def images_held(cell):
    """How many images a notebook cell's outputs hold (each image MIME type counts)."""
    return sum(1 for out in cell.get("outputs") or [] for mime in (out.get("data") or {})
               if mime in IMAGE_MIMES)


def first_line(cell):
    source = cell.get("source")
    source = "".join(source) if isinstance(source, list) else (source or "")
    lines = source.strip().splitlines()
    return lines[0][:80] if lines else ""


def cell_problems(i, cell, shown):
    """What is wrong with notebook cell `i` as the page shows it (`shown`: the page's report)."""
    problems = []
    where = f"cell {i} (`{first_line(cell)}`)"
    tex = sorted(set(m.group(0)[:60] for m in RAW_TEX.finditer(shown["text"])))
    if tex:
        problems.append(f"{where}: raw TeX in the text (formulas not typeset): {', '.join(tex)}")
    if shown["mathSource"]:
        problems.append(f"{where}: typeset formula(s) show TeX source as text (a TeX escape in "
                        f"text mode, such as \\_ inside \\text{{}}): {', '.join(shown['mathSource'])}")
    broken = [img["src"] for img in shown["images"] if not img["loaded"]]
    if broken:
        problems.append(f"{where}: {len(broken)} image(s) did not load: {', '.join(broken)}")
    held = images_held(cell)
    if len(shown["images"]) < held:
        problems.append(f"{where}: its outputs hold {held} chart(s)/image(s), the page shows "
                        f"{len(shown['images'])} (an output with two rich MIME types shows only one)")
    return problems


def page_problems(html, notebook, report, network):
    """Paragraph lines naming every problem of one page."""
    with open(notebook, encoding="utf-8") as f:
        cells = json.load(f).get("cells", [])
    problems = list(network)
    if not report["mathjax"]:
        problems.append("MathJax did not load")
    if report["mathErrors"]:
        problems.append(f"MathJax could not typeset {report['mathErrors']} formula(s)")
    if len(report["cells"]) != len(cells):
        problems.append(f"the page shows {len(report['cells'])} cells, the notebook has {len(cells)}")
    for i, (cell, shown) in enumerate(zip(cells, report["cells"])):
        problems.extend(cell_problems(i, cell, shown))
    return [f"{html}: {p}" for p in problems]


def check(pages, screenshots):
    """Loads every page in one browser; returns all problems."""
    executable = find_browser()
    if not executable:
        raise BrowserError(
            "no Chromium found (looked for $LAB5_BROWSER, then " + ", ".join(BROWSERS) + " on PATH): "
            "run scripts/setup.sh, which installs it on Debian/Ubuntu as root or with sudo "
            "(apt-get install chromium), or set LAB5_BROWSER to a Chrome or Chromium binary")
    browser = Browser(executable)
    try:
        found = []
        for html in pages:
            shot = Path(screenshots) / (Path(html).stem + ".png") if screenshots else None
            report, network = load_page(browser, html, shot)
            found.extend(page_problems(html, Path(html).with_suffix(".ipynb"), report, network))
        return found
    finally:
        browser.close()


def main(argv):
    screenshots = None
    if argv[:1] == ["--screenshots"]:
        screenshots, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        found = check(argv, screenshots)
    except BrowserError as e:
        print(f"check_render: {e}", file=sys.stderr)
        return 2
    if found:
        print("\n".join(found))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

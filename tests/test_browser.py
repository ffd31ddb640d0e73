"""Reports from a real run, opened in headless chromium, and checked for external URLs.

One ``scalerepro run chinchilla_approach3 --profile ci`` plus ``scalerepro report`` (the
installed commands, in a subprocess, as a user would run them) builds ``index.html`` and a
``report.html``; one ``scalerepro fit`` of the example runs builds a fit report. The
pure-Python tests check that nothing in them points outside the file; the browser tests
load them in Debian's chromium and check that the page renders: no script errors, every
image decoded, the claims table or the fit's figures there, text without Python reprs, a
non-blank screenshot.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import IN_CI, load_or_skip
from test_report import html_text, text_problems

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCALEREPRO = Path(sys.executable).with_name("scalerepro")
EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "example_runs.csv"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
FITTING_RECORDED = ["optimizer", "objective", "initialization", "uncertainty", "points"]

needs_chromium = pytest.mark.skipif(CHROMIUM is None and not IN_CI,
                                    reason="chromium not installed (CI installs it with apt-get)")

# Injected into a copy of the page: collects script errors, failed resource loads and
# console.error calls, and after the load event writes them and the images' state into the
# DOM, where --dump-dom can read them.
PROBE = """<script>
window.__problems = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  __problems.push(t && t.tagName ? "failed to load " + t.tagName + " " + String(t.src || t.href).slice(0, 80)
                                 : "script error: " + e.message);
}, true);
window.addEventListener("unhandledrejection", function (e) { __problems.push("unhandled rejection: " + e.reason); });
var __consoleError = console.error;
console.error = function () { __problems.push("console.error: " + Array.prototype.join.call(arguments, " ")); __consoleError.apply(console, arguments); };
// An image whose pixels are all one colour did not decode (a truncated PNG keeps its size
// but draws nothing), or shows nothing.
function __blank(img) {
  try {
    var c = document.createElement("canvas");
    c.width = Math.min(img.naturalWidth, 600); c.height = Math.min(img.naturalHeight, 600);
    var g = c.getContext("2d");
    g.drawImage(img, 0, 0, c.width, c.height);
    var d = g.getImageData(0, 0, c.width, c.height).data;
    for (var i = 4; i < d.length; i += 4) {
      if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) return false;
    }
    return true;
  } catch (e) { __problems.push("cannot read image pixels: " + e); return true; }
}
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0) || __blank(i); })
                     .map(function (i) { return i.src.slice(0, 80); });
  var out = document.createElement("pre");
  out.id = "__browser_probe";
  out.textContent = JSON.stringify({problems: __problems, images: images.length, broken: broken});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``out/`` after a real ci-profile run of chinchilla_approach3 and ``scalerepro report``."""
    load_or_skip("besiroglu2024_chinchilla")
    work = tmp_path_factory.mktemp("browser")
    out = work / "out"
    env = dict(os.environ)
    for cmd in (["run", "chinchilla_approach3", "--profile", "ci", "--out", str(out), "--no-progress"],
                ["report", "--out", str(out)]):
        proc = subprocess.run([str(SCALEREPRO), *cmd], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1200)
        assert proc.returncode == 0, f"scalerepro {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return out


# ----------------------------------------------------------------------------- external URLs
class _ExternalRefs(HTMLParser):
    """Every reference that would make the browser fetch (or link) outside the file."""

    URL_ATTRS = {"src", "href", "srcset", "data", "action", "poster", "background", "xlink:href",
                 "formaction", "manifest", "cite"}
    EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    CSS_URL = re.compile(r"url\(\s*['\"]?\s*(?!data:)([^'\")]+)|@import", re.IGNORECASE)

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self._in_style = [], False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            if name in self.URL_ATTRS and any(self.EXTERNAL.match(v.strip().split(" ")[0])
                                              for v in value.split(",")):
                self.found.append(f"<{tag} {name}={value[:80]!r}>")
            if name == "style" and self.CSS_URL.search(value):
                self.found.append(f"<{tag} style={value[:80]!r}>")
        if tag == "script" and dict(attrs).get("src"):
            self.found.append(f"<script src={dict(attrs)['src'][:80]!r}>")
        if tag == "link" and "stylesheet" in (dict(attrs).get("rel") or ""):
            self.found.append(f"<link rel=stylesheet href={dict(attrs).get('href', '')[:80]!r}>")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style and (m := self.CSS_URL.search(data)):
            self.found.append(f"<style> {m.group(0)[:80]!r}")


def external_refs(html: str) -> list[str]:
    parser = _ExternalRefs()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest.mark.parametrize("snippet", [
    '<script src="https://cdn.example.org/plotly.js"></script>',
    '<link rel="stylesheet" href="style.css">',
    '<img src="//example.org/a.png">',
    '<a href="http://example.org">paper</a>',
    '<img srcset="a.png 1x, https://example.org/b.png 2x">',
    "<style>@import 'https://fonts.example.org/css';</style>",
    "<style>body { background: url(https://example.org/bg.png) }</style>",
    '<div style="background-image: url(bg.png)"></div>',
])
def test_external_ref_checker_catches(snippet):
    assert external_refs(f"<html><body>{snippet}</body></html>")


def test_external_ref_checker_allows_data_uris_and_text():
    html = ('<html><head><style>td { color: red } .x { background: url(data:image/png;base64,AA) }</style>'
            '</head><body><p>Data from <code>https://example.org/runs.csv</code></p>'
            '<img src="data:image/png;base64,iVBOR"><a href="other/report.html">r</a>'
            '<a href="#claims">claims</a></body></html>')
    assert external_refs(html) == []


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """``fit_out/`` of ``scalerepro fit`` on the example runs, as a user would run it: a
    hold-out, the default budgets, an ``--about`` file."""
    work = tmp_path_factory.mktemp("fit")
    about = work / "about.yaml"
    about.write_text("training_data: simulated from a known law\nmetric: loss in nats per token, no smoothing\n")
    proc = subprocess.run([str(SCALEREPRO), "fit", str(EXAMPLE), "--holdout", "largest-compute:3",
                           "--n-bootstrap", "200", "--about", str(about), "--out", str(work / "fit_out")],
                          cwd=work, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"scalerepro fit failed:\n{proc.stdout}\n{proc.stderr}"
    assert "compute-optimal allocation" in proc.stdout
    return work / "fit_out"


@pytest.mark.slow
def test_fit_report_references_nothing_external(fitted):
    assert external_refs((fitted / "report.html").read_text()) == []


@pytest.mark.slow
def test_reports_reference_nothing_external(built):
    pages = [built / "index.html", built / "chinchilla_approach3" / "report.html"]
    for page in pages:
        assert external_refs(page.read_text()) == [], page


@pytest.mark.slow
def test_executed_notebook_page_is_offline_with_its_math(built):
    """Issue 20: the executed notebook's HTML loads no MathJax (or anything) from a CDN; its
    math is MathML, readable offline, and no $...$ is left outside code."""
    html = (built / "chinchilla_approach3" / "executed.html").read_text()
    assert external_refs(html) == []
    assert "<script src" not in html and "mathjax" not in html.lower()
    assert html.count("<math") >= 20
    prose = re.sub(r"<(pre|code)\b.*?</\1>", "", html, flags=re.DOTALL)
    assert not re.search(r"\$[^$<>]*\\[a-zA-Z]+[^$<>]*\$", prose), "TeX left for MathJax"


@pytest.mark.slow
def test_run_records_a_complete_checklist(built):
    results = json.loads((built / "chinchilla_approach3" / "results.json").read_text())
    items = {e["id"]: e for e in results["checklist"]}
    assert len(items) == len(results["checklist"]) == 19
    assert [i for i, e in items.items() if e["status"] == "missing"] == []
    for iid in FITTING_RECORDED:
        assert items[iid]["status"] == "recorded", (iid, items[iid])


# ----------------------------------------------------------------------------- chromium
def chromium(page: Path, tmp_path: Path, *args) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("CI=true but chromium is not installed (.ci/run installs it with apt-get)")
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def render(page: Path, tmp_path: Path) -> tuple[str, dict]:
    """The DOM of ``page`` after load, and what the probe saw (page errors, images)."""
    html = page.read_text()
    assert "<head>" in html, f"{page} has no <head> to put the probe in"
    probed = page.with_name(f".probe.{page.name}")  # beside the page, so relative links resolve
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    try:
        proc = chromium(probed, tmp_path, "--dump-dom")
    finally:
        probed.unlink()
    dom = proc.stdout
    match = re.search(r'<pre id="__browser_probe">(.*?)</pre>', dom, re.DOTALL)
    assert match, f"the page never finished loading in chromium:\n{proc.stderr[-3000:]}"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<")
                       .replace("&gt;", ">").replace("&amp;", "&"))
    # Uncaught errors also reach chromium's log; anything from the page that reads as an
    # error fails the test, whether or not the probe caught it.
    console = re.findall(r':CONSOLE[^\]]*\] "(.*)", source:', proc.stderr)
    probe["console_errors"] = [c for c in console if re.search(r"uncaught|error", c, re.IGNORECASE)]
    return dom, probe


def image_sources(dom: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', dom)


def assert_renders_cleanly(dom: str, probe: dict):
    assert probe["problems"] == [] and probe["console_errors"] == [], probe
    assert probe["broken"] == [], f"images that did not load: {probe['broken']}"
    sources = image_sources(dom)
    assert len(sources) == probe["images"]
    assert all(s.startswith("data:") for s in sources), [s[:60] for s in sources if not s.startswith("data:")]


def assert_png(path: Path):
    """A real, non-blank screenshot."""
    from matplotlib.image import imread

    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = imread(path)
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 800
    assert pixels[..., :3].std() > 0.01, "the screenshot is blank"


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_report_renders_in_chromium(built, tmp_path):
    page = built / "chinchilla_approach3" / "report.html"
    results = json.loads((built / "chinchilla_approach3" / "results.json").read_text())
    dom, probe = render(page, tmp_path)
    assert_renders_cleanly(dom, probe)
    assert probe["images"] >= 1, "the report shows the notebook's figures"
    claims = re.search(r'<section id="claims">.*?</section>', dom, re.DOTALL)
    assert claims and "<table" in claims.group(0), "claims table missing from the rendered report"
    shown = claims.group(0).replace("<wbr>", "")  # line-break hints inside ids are not text
    for claim in results["claims"]:
        assert claim["id"] in shown, claim["id"]
    shot = tmp_path / "report.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", "--hide-scrollbars")
    assert_png(shot)


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_executed_notebook_renders_math_in_chromium(built, tmp_path):
    dom, probe = render(built / "chinchilla_approach3" / "executed.html", tmp_path)
    assert_renders_cleanly(dom, probe)
    assert probe["images"] >= 3 and dom.count("<math") >= 20


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_index_renders_in_chromium(built, tmp_path):
    page = built / "index.html"
    dom, probe = render(page, tmp_path)
    assert_renders_cleanly(dom, probe)
    assert 'href="chinchilla_approach3/report.html"' in dom, "index does not link the report"
    assert "<table" in dom
    shot = tmp_path / "index.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,800", "--hide-scrollbars")
    assert_png(shot)


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_fit_report_renders_in_chromium(fitted, tmp_path):
    page = fitted / "report.html"
    dom, probe = render(page, tmp_path)
    assert_renders_cleanly(dom, probe)
    assert probe["images"] >= 4 and probe["broken"] == [], "at least four figures load"
    text = html_text(dom.split('<pre id="__browser_probe">')[0])
    assert text_problems(text) == []
    for section in ("law", "allocation", "figures", "holdout", "fit-details", "checklist", "provenance"):
        assert f'<section id="{section}"' in dom, section
    assert "simulated from a known law" in text and "Generated by scalerepro fit" in text
    shot = tmp_path / "fit_report.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", "--hide-scrollbars")
    assert_png(shot)

"""Self-contained HTML reports built from ``results.json`` and the executed notebook.

Reports never recompute anything: they format what the run recorded, and embed the
notebook's figures as data URIs so a report is one file that opens offline (no external
CSS, fonts or scripts).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from .spec import VERDICTS

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("scalerepro", "templates"),
                          autoescape=True, undefined=jinja2.ChainableUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def _fmt(value, digits: int = 6):
    """Numbers to short text; ``None`` to an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(v is None for v in value):
        return "—"  # an interval that could not be computed (e.g. every bootstrap refit failed)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"[{_fmt(value[0], digits)}, {_fmt(value[1], digits)}]"
    return str(value)


def _when(timestamp) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS UTC' (or its offset), readable in a narrow column."""
    if not timestamp:
        return "—"
    try:
        moment = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return str(timestamp)
    offset = moment.utcoffset()
    zone = "" if offset is None else " UTC" if not offset else " " + moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + zone


def _breakable(identifier) -> Markup:
    """A dotted claim id with line-break opportunities after each '.' and '__', so that a
    narrow column wraps it between its parts instead of inside a word."""
    text = str(escape(identifier))
    return Markup(text.replace(".", ".<wbr>").replace("__", "__<wbr>"))


_ENV.filters["fmt"] = _fmt
_ENV.filters["breakable"] = _breakable
_ENV.filters["when"] = _when
_ENV.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True)


def verdict_counts(results: dict) -> dict[str, int]:
    counts = Counter(c["verdict"] for c in results.get("claims") or [])
    return {v: counts.get(v, 0) for v in VERDICTS}


def notebook_figures(executed_notebook) -> list[dict]:
    """Every image/png (and image/svg+xml) output of the executed notebook, as data URIs."""
    if executed_notebook is None or not Path(executed_notebook).is_file():
        return []
    nb = json.loads(Path(executed_notebook).read_text())
    figures = []
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                png = data["image/png"]
                png = "".join(png) if isinstance(png, list) else png
                figures.append({"cell": index, "uri": "data:image/png;base64," + png.replace("\n", "")})
            elif "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                svg = "".join(svg) if isinstance(svg, list) else svg
                uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
                figures.append({"cell": index, "uri": uri})
    return figures


def render_report(results: dict, executed_notebook=None) -> str:
    """HTML for one replication, from its results (or failure record) and executed notebook."""
    return _ENV.get_template("report.html.j2").render(
        r=results, counts=verdict_counts(results), figures=notebook_figures(executed_notebook),
        verdicts=VERDICTS)


def render_sensitivity_report(results: dict, figures: list[dict]) -> str:
    """HTML for ``scalerepro sensitivity``: the spread table, the figure of the allocation
    across variants (``figures``: ``{name, caption, uri}``) and one row per variant."""
    return _ENV.get_template("sensitivity_report.html.j2").render(r=results, figures=figures)


def notebook_to_html(executed_notebook, html_path) -> None:
    """The executed notebook as one offline HTML file (images embedded, no CDN scripts)."""
    from nbconvert import HTMLExporter

    # Every script URL nbconvert would otherwise point at a CDN is emptied, so the page
    # loads nothing from the network (the notebook renders fine without them).
    exporter = HTMLExporter(embed_images=True, require_js_url="", mathjax_url="", jquery_url="",
                            mermaid_js_url="", mermaid_layout_elk_js_url="",
                            widget_renderer_url="", jupyter_widgets_base_url="")
    body, _ = exporter.from_filename(str(executed_notebook))
    Path(html_path).write_text(body)


def _summary_row(run_dir: Path) -> dict | None:
    """The latest state of one replication output directory."""
    ok, failed = run_dir / "results.json", run_dir / "failed.json"
    latest = max((p for p in (ok, failed) if p.is_file()), key=lambda p: p.stat().st_mtime, default=None)
    if latest is None:
        return None
    results = json.loads(latest.read_text())
    return {"name": run_dir.name, "title": results.get("title", run_dir.name),
            "status": results.get("status", "ok" if latest == ok else "failed"),
            "profile": results.get("profile"), "counts": verdict_counts(results),
            "report": f"{run_dir.name}/report.html" if (run_dir / "report.html").is_file() else None,
            "failed_report": (f"{run_dir.name}/failed_report.html"
                              if latest == failed and (run_dir / "failed_report.html").is_file() else None),
            "error": results.get("error"), "seconds": (results.get("timing") or {}).get("seconds"),
            "end": (results.get("timing") or {}).get("end")}


def render_index(out_root) -> dict:
    """Write ``out_root/index.html`` and ``summary.json`` over every replication run there."""
    from .results import write_json_atomic

    out_root = Path(out_root)
    if not out_root.is_dir():
        raise FileNotFoundError(f"no output directory {out_root} (run `scalerepro run` first)")
    rows = [row for d in sorted(out_root.iterdir()) if d.is_dir() and (row := _summary_row(d))]
    totals = {v: sum(r["counts"][v] for r in rows) for v in VERDICTS}
    summary = {"replications": rows, "totals": totals,
               "failed": [r["name"] for r in rows if r["status"] != "ok"]}
    html = _ENV.get_template("index.html.j2").render(s=summary, verdicts=VERDICTS)
    tmp = out_root / ".index.html.tmp"
    tmp.write_text(html)
    tmp.replace(out_root / "index.html")
    write_json_atomic(out_root / "summary.json", summary)
    return summary

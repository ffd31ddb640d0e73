"""Self-contained HTML reports: a replication's (from ``results.json`` and the executed
notebook) and a fit of a user's own runs (from its ``results.json`` and the figures
:mod:`scalerepro.publishing.fit_figures` draws).

Reports never recompute anything: they format what the run recorded -- every number to a
few significant digits, every missing value as a dash, never a Python repr -- and embed the
figures as data URIs so a report is one file that opens offline (no external CSS, fonts or
scripts).
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from datetime import datetime
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from .spec import VERDICTS

_ENV = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                          autoescape=True, undefined=jinja2.ChainableUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def _number(value, digits: int = 6) -> str:
    """A number to at most ``digits`` significant digits; anything else (None, nan) to a dash."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    if isinstance(value, int):
        return str(value) if len(str(abs(value))) <= digits else f"{value:.{digits}g}"
    return f"{value:.{digits}g}" if math.isfinite(value) or math.isinf(value) else "—"


def _interval(value, digits: int = 6) -> str:
    """An interval as '[low, high]' with a dash for an end that is not a number (JSON has no
    infinity: an unbounded end arrives as null), or a single dash when there is none."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return "—"
    if all(_number(v) == "—" for v in value):
        return "—"
    return f"[{_number(value[0], digits)}, {_number(value[1], digits)}]"


def _fmt(value, digits: int = 6):
    """Any recorded value to short text: numbers to ``digits`` significant digits, None to
    an em dash, two numbers to an interval, lists and mappings item by item, never a repr."""
    if value is None or isinstance(value, jinja2.Undefined):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return _number(value, digits)
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        if len(value) == 2 and all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in value):
            return _interval(value, digits)
        return ", ".join(_fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v, digits)}" for k, v in value.items()) if value else "none"
    return str(value)


def _seconds(value) -> str:
    """A duration as '4.2 s' or '3 min 05 s'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    if value < 60:
        return f"{value:.3g} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def _percent(share, digits: int = 3) -> str:
    """A share (0.0062) as a percentage ('0.62%'); a level (0.95) as '95%'."""
    if not isinstance(share, (int, float)) or isinstance(share, bool):
        return "—"
    return f"{100 * share:.{digits}g}%"


def _extrapolation(factor) -> str:
    """A budget's factor beyond the largest fitted compute, in words."""
    if not isinstance(factor, (int, float)) or isinstance(factor, bool):
        return "—"
    return "within" if factor <= 1 + 1e-9 else f"{factor:.3g}x"


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
_ENV.filters["interval"] = _interval
_ENV.filters["seconds"] = _seconds
_ENV.filters["percent"] = lambda v: _percent(v, 3)
_ENV.filters["pct"] = lambda v: _percent(v, 2)
_ENV.filters["extrapolation"] = _extrapolation
_ENV.filters["basename"] = lambda path: Path(str(path)).name


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


def _version(results: dict) -> str | None:
    env = results.get("environment") or results.get("notebook_environment") or {}
    return (env.get("packages") or {}).get("scalerepro")


def render_report(results: dict, executed_notebook=None, figures: list[dict] | None = None) -> str:
    """HTML for one replication (from its results or failure record and its executed
    notebook), or for a fit of a user's runs (``results["replication"]`` is None; its
    ``figures`` -- ``{name, caption, uri}``, see :mod:`scalerepro.publishing.fit_figures` -- are
    passed in, as a CLI fit has no notebook). Diagnostics are shown first, errors first."""
    from .checklist import ABOUT_EXAMPLES
    from ..diagnostics import sorted_by_severity

    is_fit = results.get("replication") is None and bool(results.get("fit") or results.get("approaches"))
    if figures is None:
        figures = [{"name": f"cell-{f['cell']}", "caption": f"notebook cell {f['cell']}", "uri": f["uri"]}
                   for f in notebook_figures(executed_notebook)]
    return _ENV.get_template("fit_report.html.j2" if is_fit else "report.html.j2").render(
        r=results, counts=verdict_counts(results), figures=figures, verdicts=VERDICTS,
        diagnostics=sorted_by_severity(results.get("diagnostics") or []), version=_version(results),
        declarable=list(ABOUT_EXAMPLES))


def render_sensitivity_report(results: dict, figures: list[dict]) -> str:
    """HTML for ``scalerepro sensitivity``: the spread table, the figure of the allocation
    across variants (``figures``: ``{name, caption, uri}``) and one row per variant."""
    return _ENV.get_template("sensitivity_report.html.j2").render(r=results, figures=figures)


def notebook_to_html(executed_notebook, html_path) -> None:
    """The executed notebook as one offline HTML file: images embedded, math as MathML, no
    script loaded from anywhere (see :mod:`scalerepro.publishing.notebook_html`)."""
    from .notebook_html import OfflineHTMLExporter

    body, _ = OfflineHTMLExporter().from_filename(str(executed_notebook))
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


def render_backtest_report(results: dict, figures: list[dict], rows: list[dict], columns: list[str]) -> str:
    """HTML for ``scalerepro backtest``: folds, the ranking table (``rows``), three figures and
    every (method, fold) score, from backtest.json."""
    return _ENV.get_template("backtest_report.html.j2").render(r=results, figures=figures, rows=rows, columns=columns)

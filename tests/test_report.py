"""Reports: content from results.json, embedded figures, failure pages, index, no external resources."""

import base64
import json
import re

import nbformat
import pandas as pd
import pytest

from scalerepro.publishing.report import notebook_figures, notebook_to_html, render_index, render_report

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import|<link\b""", re.I)


def claim(cid, verdict, **kw):
    return {"id": cid, "source": "paper, eq. 1", "published": 1.69, "published_interval": None,
            "interval_level": None, "rule": {"kind": "abs_tol", "tol": 0.02}, "reproduced": 1.82,
            "reproduced_interval": [1.77, 1.87], "verdict": verdict, "why": "|1.82 - 1.69| = 0.13", "note": "",
            **kw}


@pytest.fixture
def results():
    return {"replication": "demo", "title": "Demo replication", "status": "ok", "profile": "ci",
            "paper": {"citation": "Someone 2024", "url": "https://example.org/x"},
            "parameters": {"n_bootstrap": 100, "huber_delta": 0.001},
            "data": [{"dataset": "d", "file": "f.csv", "sha256": "ab" * 32}],
            "claims": [claim("a.E", "not_replicated", note="<script>alert(1)</script>"),
                       claim("a.alpha", "replicated"), claim("a.beta", "replicated")],
            "fits": {"main": {"form": {"name": "chinchilla", "equation": "L = E + A/N^alpha + B/D^beta"},
                              "params": {"E": 1.82, "A": 482.0}, "objective": {"text": "Huber on log loss"},
                              "objective_value": 0.00101827, "optimizer": {"name": "newton"},
                              "initialization": {"n_starts": 4500, "n_starts_converged": 4400},
                              "converged": True, "message": "converged", "gradient_max_abs": 1e-12,
                              "hessian_condition": 1e6, "points_used": 240,
                              "points_dropped": [{"index": 1, "reason": "highest loss"}],
                              "warnings": ["Hessian is ill-conditioned"],
                              "bootstrap": {"method": "nonparametric bootstrap", "level": 0.95,
                                            "n_resamples": 100, "n_failed": 0, "seed": 42,
                                            "resampling": "points", "intervals": {"E": [1.77, 1.87]},
                                            "standard_errors": {"E": 0.026}}}},
            "fit": {"name": "main"}, "checklist": None, "warnings": ["fit main: Hessian is ill-conditioned"],
            "environment": {"python": "3.11.9", "platform": "Linux", "kernel": "scalerepro",
                            "git": {"commit": "f" * 40, "dirty": True}, "packages": {"numpy": "2.4"}},
            "timing": {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-01T00:01:00+00:00", "seconds": 60.0}}


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]),
                nbformat.v4.new_code_cell("svg()", outputs=[nbformat.v4.new_output(
                    "execute_result", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'/>"},
                    execution_count=1)])]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return path


def test_report_contents(results, notebook):
    html = render_report(results, notebook)
    summary = html.index('id="summary"')
    assert summary < html.index('id="claims"')  # verdict counts at the top
    assert '<span class="verdict replicated">replicated: 2</span>' in html
    assert '<span class="verdict not_replicated">not replicated: 1</span>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "[1.77, 1.87]" in html and "1.82" in html
    assert "4500 (4400 converged)" in html and "240 used, 1 dropped" in html
    assert 'class="box warning"' in html and "Hessian is ill-conditioned" in html
    assert "f" * 40 in html and "uncommitted changes" in html and "ab" * 32 in html
    assert '<section id="checklist">' in html and "No checklist was recorded" in html
    assert len(re.findall(r"<figure\b", html)) == 2 and f"data:image/png;base64,{PNG}" in html


def test_report_is_self_contained(results, notebook):
    html = render_report(results, notebook)
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<script" not in html


def test_executed_notebook_html_loads_nothing_from_the_network(notebook, tmp_path):
    # nbconvert's template points require.js, MathJax, mermaid and the widget renderer at
    # CDNs unless told otherwise; the offline copy of the notebook must not.
    notebook_to_html(notebook, tmp_path / "executed.html")
    html = (tmp_path / "executed.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']https?://|import[^;\n]*["']https?://|unpkg\.com|cdn""", html, re.I)


def test_external_pattern_catches_what_it_should():
    for bad in ['<img src="https://x/y.png">', "<a href='//cdn/x'>", "url(http://f/a.woff)",
                '<link rel="stylesheet" href="a.css">', "@import 'x.css'"]:
        assert EXTERNAL.search(bad), bad


def test_checklist_is_rendered_when_present(results):
    results["checklist"] = [
        {"id": "objective", "number": 12, "question": "Objective", "required": True, "status": "recorded",
         "value": "Huber, delta 1e-3, log loss, summed", "source": "fit", "field": "objective", "original": "stated"},
        {"id": "code", "number": 17, "question": "Fitting code", "required": True, "status": "missing",
         "value": None, "source": None, "field": None, "original": None}]
    html = render_report(results)
    assert "Huber, delta 1e-3, log loss, summed" in html and "No checklist was recorded" not in html
    assert '<span class="check missing">missing: 1</span>' in html


def test_failure_report(results):
    failed = {"replication": "demo", "title": "Demo", "status": "failed", "profile": "ci",
              "parameters": {"fail": True}, "claims": [], "fits": {}, "data": [], "warnings": [],
              "error": {"cell": 4, "execution_count": 3, "ename": "ValueError", "evalue": "bad <value>",
                        "source": "raise ValueError()", "traceback": "Traceback ..."},
              "timing": {"start": "s", "end": "e", "seconds": 1.0}}
    html = render_report(failed, None)
    assert 'id="error"' in html and "bad &lt;value&gt;" in html and "notebook cell 4" in html
    assert 'id="claims"' not in html and not EXTERNAL.search(html)


def test_figures_from_notebook(notebook):
    figs = notebook_figures(notebook)
    assert [f["cell"] for f in figs] == [0, 1]
    assert base64.b64decode(figs[1]["uri"].split(",", 1)[1]).startswith(b"<svg")
    assert notebook_figures(None) == [] and notebook_figures(notebook.parent / "missing.ipynb") == []


def test_index_and_summary(tmp_path, results):
    ok = tmp_path / "demo"
    ok.mkdir()
    (ok / "results.json").write_text(json.dumps(results))
    (ok / "report.html").write_text("<html></html>")
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "failed.json").write_text(json.dumps({"replication": "broken", "title": "Broken", "status": "failed",
                                                 "claims": [], "error": {"ename": "E", "evalue": "boom"}}))
    (bad / "failed_report.html").write_text("<html></html>")
    (tmp_path / "empty").mkdir()
    summary = render_index(tmp_path)
    assert [r["name"] for r in summary["replications"]] == ["broken", "demo"]
    assert summary["failed"] == ["broken"]
    assert summary["totals"] == {"replicated": 2, "not_replicated": 1, "inconclusive": 0, "not_testable": 0}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    html = (tmp_path / "index.html").read_text()
    assert 'href="demo/report.html"' in html and 'href="broken/failed_report.html"' in html
    assert "boom" in html and not EXTERNAL.search(html)


def test_index_without_output_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `scalerepro run` first"):
        render_index(tmp_path / "nothing")


def test_timestamps_are_shown_readably():
    from scalerepro.publishing.report import _when
    assert _when("2026-11-23T18:12:10.5+00:00") == "2026-11-23 18:12:10 UTC"
    assert _when("2026-11-23T18:12:10+02:00") == "2026-11-23 18:12:10 +0200"
    assert _when(None) == "—" and _when("not a time") == "not a time"


# ----------------------------------------------------------------------------- fit reports
LONG_FLOAT = re.compile(r"\[\s*(-?\d+\.\d+(?:e[+-]?\d+)?)", re.IGNORECASE)


def text_problems(text: str) -> list[str]:
    """What must never appear in a report's text: a Python None, an empty timing "( s)",
    an interval in raw repr (a "[" then a float of more than 6 significant digits)."""
    problems = [f"None at ...{text[max(0, m.start() - 60):m.end() + 20]!r}" for m in re.finditer(r"\bNone\b", text)]
    problems += ["empty timing '( s)'"] * text.count("( s)")
    problems += [f"long float after '[': {number}" for number in LONG_FLOAT.findall(text)
                 if len(number.lstrip("-").split("e")[0].split("E")[0].replace(".", "").lstrip("0")) > 6]
    return problems


def html_text(html: str) -> str:
    """The visible text of a page (no tags, scripts or styles)."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.parts, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style") and self.skip > 0

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_text_problems_catch_what_the_issue_saw():
    assert text_problems("interval [0.0, None]") and text_problems("→ ( s)")
    assert text_problems("[-0.2466305136771695, 1]") and text_problems("[1.2345678e+21, 3]")
    assert not text_problems("[1.77235, 1.86118] and [0, —] and 1.2345678 and Nonexistent")


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory):
    """A real user fit on 36 synthetic runs (6 sizes x 6 token counts, known law), fast:
    started near the truth, 60 bootstrap resamples, the 4 largest runs held out."""
    import numpy as np

    from scalerepro.runs import fit as userfit

    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 6), np.geomspace(2e8, 4e10, 6)))
    loss = (1.8 + 480 * N ** -0.35 + 2100 * D ** -0.37) * np.exp(0.004 * np.random.default_rng(0).standard_normal(36))
    path = tmp_path_factory.mktemp("small") / "my_runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(path, index=False)
    start = np.array([[6.2, 7.6, 0.6, 0.35, 0.37]])
    return {"boot": userfit.fit_runs(path, holdout=4, n_bootstrap=60, starts=start),
            "plain": userfit.fit_runs(path, holdout=0, n_bootstrap=0, starts=start)}


DIAGNOSTICS = [
    {"code": "dropped_points", "severity": "info", "message": "4 rows held out", "subjects": ["line 35"]},
    {"code": "not_identified", "severity": "error", "message": "E is not identified by these runs",
     "subjects": ["E"]},
    {"code": "extrapolation", "severity": "warning", "message": "C = 1e24 lies 1000x beyond the fit",
     "subjects": [f"budget {i}" for i in range(15)]},
]
PROFILE = {"profiles": [{"parameter": "E", "values": [1.0, 1.4, 1.8, 2.2], "objective": [3e-3, 1e-3, 4e-4, 2e-3],
                         "best": 1.8},
                        {"parameter": "B", "values": [1e2, 1e4, 1e6, 1e8], "objective": [5e-4, 4.1e-4, 4e-4, None],
                         "best": 1e6, "best_objective": 4e-4, "scale": "log"}]}


def render_fit(uf, **extra):
    from scalerepro.runs import fit as userfit
    from scalerepro.publishing.fit_figures import fit_figures

    results = {**uf.record(), **extra}
    figures = fit_figures(uf, results)
    return results, figures, render_report(results, figures=figures)


def test_fit_report_shows_diagnostics_first_errors_first(small_fit):
    _, _, html = render_fit(small_fit["boot"], diagnostics=DIAGNOSTICS)
    section = re.search(r'<section id="diagnostics".*?</section>', html, re.S).group(0)
    assert html.index('id="diagnostics"') < html.index('id="law"') < html.index('id="allocation"')
    order = [section.index(m) for m in ("E is not identified", "1000x beyond the fit", "4 rows held out")]
    assert order == sorted(order), "errors, then warnings, then info"
    assert 'class="box error"' in section and "and 9 more" in section  # 15 subjects: 6 named


def test_fit_report_figures_and_profile_from_the_identifiability_record(small_fit):
    _, figures, html = render_fit(small_fit["boot"])
    names = [f["name"] for f in figures]
    assert names == ["loss_vs_compute", "residuals", "predicted_vs_actual", "bootstrap_exponents",
                     "bootstrap_tokens", "frontier"]
    assert all(f["uri"].startswith("data:image/png;base64,") for f in figures)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 6
    _, figures, html = render_fit(small_fit["boot"], identifiability=PROFILE)
    assert "profile" in [f["name"] for f in figures] and 'id="figure-profile"' in html


def test_fit_report_text_is_clean(small_fit):
    results, _, html = render_fit(small_fit["boot"], diagnostics=DIAGNOSTICS)
    text = html_text(html)
    assert text_problems(text) == []
    assert "main (main)" not in text and "executed notebook" not in text
    assert "Generated by scalerepro fit" in text and "my_runs.csv" in text
    assert '"description"' not in html and "max_iter" in text  # the optimizer as fields, not JSON
    allocation = re.search(r'<section id="allocation">.*?</section>', html, re.S).group(0)
    factors = []
    for row in results["compute_optimal"]["budgets"]:
        assert f"{row['N_opt']:.4g}" in allocation
        factors.append(row["extrapolation_factor"])
    assert factors == pytest.approx([1, 10, 100])  # default budgets: the largest fitted compute, 10x, 100x
    assert all(f">{w}</td>" in allocation for w in ("within", "10x", "100x"))
    assert re.search(r"Timing \d+(\.\d+)? s in total", text)


def test_fit_report_without_bootstrap_has_no_interval_column(small_fit):
    results, figures, html = render_fit(small_fit["plain"])
    assert "bootstrap interval" not in html and "standard error" not in html
    allocation = re.search(r'<section id="allocation">.*?</section>', html, re.S).group(0)
    assert "[" not in html_text(allocation) and "—" not in html_text(allocation)
    assert "--n-bootstrap 0" in html_text(html)
    assert [f["name"] for f in figures] == ["loss_vs_compute", "residuals", "predicted_vs_actual", "frontier"]
    assert text_problems(html_text(html)) == []


def test_a_failed_figure_is_named_not_fatal(small_fit, monkeypatch):
    from scalerepro.publishing import fit_figures

    def broken(uf, results=None):
        raise ValueError("no data to draw")

    monkeypatch.setattr(fit_figures, "FIGURES", (("residuals", broken, "caption"),))
    _, figures, html = render_fit(small_fit["boot"])
    assert figures == [{"name": "residuals", "caption": "caption", "error": "ValueError: no data to draw"}]
    assert "could not be drawn: ValueError: no data to draw" in html


def test_intervals_render_as_numbers_or_a_dash(results):
    results["claims"][0]["reproduced_interval"] = [0.0, None]       # an unbounded end arrives as null
    results["fits"]["main"]["bootstrap"]["intervals"]["E"] = [-0.2466305136771695, 1.0]
    results["parameters"]["budgets"] = [1.2345678e21, 5e22]
    html = render_report(results)
    text = html_text(html)
    assert "[0, —]" in text and "[-0.246631, 1]" in text and "1.23457e+21, 5e+22" in text
    assert text_problems(text) == []
    assert "main (main)" not in text and "Timing 2025-01-01 00:00:00 UTC → 2025-01-01 00:01:00 UTC (1 min 00 s)" in text
    assert "results.json and the executed notebook" in text


def test_unidentified_allocation_rows_are_struck_through_with_the_note(small_fit):
    from scalerepro.runs import fit as userfit

    results = small_fit["boot"].record()
    note = "not identified: depends on B, beta, which the data do not determine"
    for row in results["compute_optimal"]["budgets"]:
        row.update(identified=False, note=note)
    html = render_report(results, figures=[])
    allocation = re.search(r'<section id="allocation">.*?</section>', html, re.S).group(0)
    assert allocation.count('class="unidentified"') == 3 and "<strong>not identified</strong>" in allocation
    reason = "depends on B, beta, which the data do not determine"
    assert html_text(allocation).count(reason) == 1  # one note for all rows: said once, under the table
    results["compute_optimal"]["budgets"][0]["note"] = "another reason"
    allocation = re.search(r'<section id="allocation">.*?</section>', render_report(results, figures=[]), re.S).group(0)
    assert "<th>note</th>" in allocation and html_text(allocation).count(reason) == 2  # differing notes: per row
    results["identifiability"] = {"unidentified": ["E"], "profiles": []}
    law = re.search(r'<section id="law">.*?</section>', render_report(results, figures=[]), re.S).group(0)
    assert law.count("not identified") == 1 and '<tr class="unidentified"><td>E' in law

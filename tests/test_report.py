"""Reports: content from results.json, embedded figures, failure pages, index, no external resources."""

import base64
import json
import re

import nbformat
import pytest

from scalerepro.report import notebook_figures, notebook_to_html, render_index, render_report

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
    assert html.count("<figure>") == 2 and f"data:image/png;base64,{PNG}" in html


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
    from scalerepro.report import _when
    assert _when("2026-11-23T18:12:10.5+00:00") == "2026-11-23 18:12:10 UTC"
    assert _when("2026-11-23T18:12:10+02:00") == "2026-11-23 18:12:10 +0200"
    assert _when(None) == "—" and _when("not a time") == "not a time"

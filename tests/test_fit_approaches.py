"""`scalerepro fit --approach 1|2|3|all`: Chinchilla's three approaches on a user's sweep.

The sweep (:func:`sweeps.isoflop_ladder`) is noise-free from a known Chinchilla surface
with alpha != beta (sweeps.TRUTH: a = beta / (alpha + beta) = 0.5139): one ladder of model
sizes, 10 per decade, and at each of 9 budgets the ladder sizes within a factor 6 of the
true optimum. The tolerances are the library's own (tests/test_approaches.py):

- approach 3: the law fitted to noise-free runs of that law has zero residuals at the
  truth, so a is exact up to the optimizer's tolerance (1e-6 in the library test; 1e-5
  here, as the CLI fits from the default start grid rather than near the truth);
- approach 2: every budget's grid is off-centre by at most half a ladder step
  delta = log(10) / 20, so the parabola's vertex error differs between budgets by at most
  |beta - alpha| 3 delta^2 / 6; carried through the least-squares slope and doubled for
  the next-order terms;
- approach 1 (final losses only: the minimum per compute bin): each winner is one of the
  ladder sizes bracketing the optimum, within one step log(10)/10 in log N.
"""

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sweeps

from scalerepro import cli

TRUE_A = sweeps.TRUTH["beta"] / (sweeps.TRUTH["alpha"] + sweeps.TRUTH["beta"])
BUDGETS = np.geomspace(1e18, 1e21, 9)
COLUMNS = "N=params,C=flops,loss=val_loss,run=run_name"


def slope_error_bound(log_c, max_point_error):
    """Largest change of a least-squares slope when every y moves by at most e."""
    dx = log_c - log_c.mean()
    return max_point_error * np.abs(dx).sum() / (dx ** 2).sum()


TOLERANCE = {
    1: slope_error_bound(np.log(BUDGETS), np.log(10) / 10),
    2: 2 * slope_error_bound(np.log(BUDGETS), abs(sweeps.TRUTH["beta"] - sweeps.TRUTH["alpha"])
                             * 3 * (np.log(10) / 20) ** 2 / 6),
    3: 1e-5,
}


def run_fit(argv, capsys):
    code = cli.main(["fit", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def all_three(tmp_path_factory):
    """--approach all on the sweep with its budget column, run once for the module."""
    tmp = tmp_path_factory.mktemp("approaches")
    csv = sweeps.write(sweeps.isoflop_ladder(), tmp / "isoflops.csv")
    out = tmp / "out"
    stdout = io.StringIO()      # capsys is per test; this fixture is per module
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["fit", csv, "--columns", COLUMNS + ",budget=isoflop_budget", "--approach", "all",
                         "--n-bootstrap", "60", "--out", str(out)])
    assert code == 0
    return out, stdout.getvalue(), json.loads((out / "results.json").read_text())


def test_all_recovers_a_by_each_approach_within_its_tolerance(all_three):
    _, _, results = all_three
    # approach 1 twice, by both envelope methods (--approach all without --envelope)
    assert [(r["approach"], r["envelope"]) for r in results["approaches"]] == \
        [(1, "grid"), (1, "lower_hull"), (2, None), (3, None)]
    records = {r["approach"]: r for r in results["approaches"] if r["envelope"] != "lower_hull"}
    for r in results["approaches"]:
        k = r["approach"]
        assert abs(r["a"] - TRUE_A) <= TOLERANCE[k], (k, r["a"], TOLERANCE[k])
        assert abs(r["b"] - (1 - TRUE_A)) <= TOLERANCE[k], (k, r["b"])
        lo, hi = r["a_interval"]
        assert lo <= r["a"] <= hi and r["level"] == 0.95
        assert r["interval_method"].startswith("bootstrap") and r["bootstrap"]["n_resamples"] == 60
    # each approach used what the sweep offers: 9 budgets, 9 envelope bins, every row
    assert (records[2]["points_used"], records[2]["points_kind"]) == (9, "budgets")
    assert records[1]["points_kind"] == "envelope points" and records[1]["points_used"] == 9
    assert records[3]["points_used"] == len(sweeps.isoflop_ladder())
    # approach 3 is the fit's own allocation, not a second fit
    assert records[3]["a"] == pytest.approx(results["compute_optimal"]["a"], abs=1e-12)
    assert [p["C"] for p in records[2]["points"]] == pytest.approx(list(BUDGETS))


def _terminal_rows(out: str) -> dict:
    """The approaches table's rows, keyed by their label ("1 lower envelope", ...)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["approach", "a"])
    rows = {}
    for line in lines[head + 1:]:
        match = re.match(r"(\d [A-Za-z ]+?)\s+(-?\d+\.\d+.*)", line)
        if not match:
            break
        values = re.findall(r"-?\d+\.\d+", match.group(2))
        rows[match.group(1)] = [float(v) for v in values[:6]]   # a, a lo, a hi, b, b lo, b hi
    return rows


def test_all_prints_a_and_b_with_intervals_side_by_side(all_three):
    from scalerepro.runs.approaches import short_name

    _, out, results = all_three
    rows = _terminal_rows(out)
    assert list(rows) == ["1 lower envelope", "1 lower convex hull", "2 IsoFLOP profiles", "3 parametric fit"]
    for r in results["approaches"]:
        a, a_lo, a_hi, b, b_lo, b_hi = rows[short_name(r)]
        assert (a, b) == (pytest.approx(r["a"], abs=5e-5), pytest.approx(r["b"], abs=5e-5))
        assert (a_lo, a_hi) == (pytest.approx(r["a_interval"][0], abs=5e-5),
                                pytest.approx(r["a_interval"][1], abs=5e-5))
        assert (b_lo, b_hi) == (pytest.approx(r["b_interval"][0], abs=5e-5),
                                pytest.approx(r["b_interval"][1], abs=5e-5))
    assert "1 lower envelope" in out and "2 IsoFLOP profiles" in out and "3 parametric fit" in out


def test_report_has_one_table_and_one_figure_of_the_approaches(all_three):
    out, _, results = all_three
    html = (out / "report.html").read_text()
    section = html[html.index('<section id="approaches">'):]
    section = section[:section.index("</section>")]
    for r in results["approaches"]:
        row = re.search(re.escape(r["name"]) + r"</td>\s*<td class=\"num\">([^<]+)<br><span class=\"small\">"
                        r"\[([^,]+), ([^\]]+)\]</span></td>\s*<td class=\"num\">([^<]+)<br>", section)
        assert row, r["name"]
        a, lo, hi, b = (float(v) for v in row.groups())
        assert a == pytest.approx(r["a"], abs=1e-4) and b == pytest.approx(r["b"], abs=1e-4)
        assert (lo, hi) == (pytest.approx(r["a_interval"][0], abs=1e-4), pytest.approx(r["a_interval"][1], abs=1e-4))
    assert html.count('<section id="approaches">') == 1
    assert re.search(r'<figure id="figure-approaches"><img src="data:image/png;base64,[A-Za-z0-9+/]{1000,}', html)
    # the law fit is still all there
    assert '<section id="law">' in html and '<figure id="figure-frontier">' in html


def test_budgets_bins_runs_and_names_what_it_leaves_out(tmp_path, capsys):
    """No budget column: --budgets puts each run on the nearest listed budget. A stray run
    far from every budget and a listed budget no run reaches are warnings naming them;
    a budget whose sizes all lie below its optimum is named by approach 2's diagnostics."""
    sweep = sweeps.isoflop_ladder().drop(columns="isoflop_budget")
    top = BUDGETS[-1]
    edge = sweep["flops"].round(-10).eq(round(top, -10)) & (sweep["params"] > 1.5e9)
    sweep = sweep[~edge]                                    # the top budget keeps only small sizes
    stray = {"run_name": "pilot", "params": 1e8, "tokens": 1e16 / 6e8, "flops": 1e16, "val_loss": 3.0}
    sweep = pd.concat([sweep, pd.DataFrame([stray])], ignore_index=True)
    csv = sweeps.write(sweep, tmp_path / "runs.csv")
    listed = ",".join(f"{c:.6g}" for c in [*BUDGETS, 1e23])
    code, out, err = run_fit([csv, "--columns", COLUMNS, "--approach", "2", "--budgets", listed,
                              "--n-bootstrap", "40", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (r,) = results["approaches"]
    assert r["approach"] == 2 and r["points_used"] == 8 and abs(r["a"] - TRUE_A) <= TOLERANCE[2]
    by_code = {}
    for d in results["diagnostics"]:
        by_code.setdefault(d["code"], []).append(d)
    stray_line = len(sweep) + 1                             # the last data line (header = line 1)
    far = [d for d in by_code["dropped_points"] if f"line {stray_line}" in d["subjects"]]
    assert far and far[0]["severity"] == "warning" and "from every listed budget" in far[0]["message"]
    assert any(d["subjects"] == ["budget 1e+23"] for d in by_code["dropped_points"])
    at_edge = [d for d in by_code["optimum_at_edge"] if d["subjects"] == [f"budget {top:.3g}"]]
    assert at_edge and at_edge[0]["message"].startswith("approach 2 (IsoFLOP profiles): ")
    assert "[optimum_at_edge] approach 2 (IsoFLOP profiles): budget 1e+21" in out.replace("\n      ", " ")
    # approach 2 alone fits no law: the report has the approaches, not a law section or checklist
    assert results["fit"] is None and results["checklist"] is None
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<section id="approaches">' in html and 'id="figure-approaches"' in html
    assert '<section id="law">' not in html and '<section id="checklist">' not in html


def test_approach1_alone_derives_compute_and_says_so(tmp_path, capsys):
    sweep = sweeps.isoflop_ladder()[["run_name", "params", "tokens", "val_loss"]]
    csv = sweeps.write(sweep, tmp_path / "runs.csv")
    code, out, err = run_fit([csv, "--columns", "N=params,D=tokens,loss=val_loss,run=run_name", "--approach", "1",
                              "--n-bootstrap", "40", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (r,) = results["approaches"]
    assert r["approach"] == 1 and abs(r["a"] - TRUE_A) <= TOLERANCE[1]
    derived = [d for d in results["diagnostics"] if d["code"] == "derived_compute"]
    assert derived and "C = 6ND" in derived[0]["message"] and "C = 6ND" in out


@pytest.mark.parametrize("argv, expected", [
    # approach 2 (alone or in all) without budgets: the role, both ways to supply it, a likely column
    (["--columns", COLUMNS, "--approach", "2"],
     ["no column for role budget", "--columns budget=COLUMN", "--budgets C1,C2,...", "likely: 'isoflop_budget'"]),
    (["--columns", COLUMNS, "--approach", "all"], ["no column for role budget", "--budgets C1,C2,..."]),
    # approach 1 without C or D
    (["--columns", "N=params,loss=val_loss", "--approach", "1"],
     ["no column for role D (training tokens) or C (training FLOPs", "--columns"]),
    (["--columns", COLUMNS, "--approach", "3", "--budgets", "1e18,1e19"], ["--budgets puts runs on IsoFLOP budgets"]),
    (["--columns", COLUMNS, "--approach", "2", "--budgets", "1e18,lots"], ["got 'lots'"]),
    (["--columns", COLUMNS + ",budget=isoflop_budget", "--approach", "2", "--budgets", "1e18"], ["not both"]),
    (["--columns", COLUMNS, "--approach", "1", "--holdout", "largest-compute:2"], ["--holdout belong(s) to the parametric fit"]),
    (["--columns", COLUMNS, "--approach", "2", "--budgets", "1e18", "--scheduler", "local:2"],
     ["--scheduler belong(s) to the parametric fit"]),
    (["--columns", COLUMNS, "--approach", "all", "--form", "kaplan_nd", "--budgets", "1e18"], ["use --form chinchilla"]),
])
def test_missing_roles_and_options_are_one_clear_error(tmp_path, capsys, argv, expected):
    csv = sweeps.write(sweeps.isoflop_ladder().drop(columns="tokens"), tmp_path / "runs.csv")
    code, _, err = run_fit([csv, *argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith("scalerepro: error: ") and "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "out").exists()


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"


def test_isoflop_example_file_is_what_its_generator_makes():
    sys.path.insert(0, str(EXAMPLES))
    import make_isoflop_sweep

    assert make_isoflop_sweep.make_runs().equals(pd.read_csv(EXAMPLES / "isoflop_sweep.csv"))


@pytest.mark.slow
def test_readme_approaches_walkthrough_is_what_the_cli_prints(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("$ .venv/bin/scalerepro fit data/examples/isoflop_sweep.csv --approach all \\"):]
    block = block[:block.index("```")]
    command = " ".join(line.strip().rstrip("\\") for line in block.splitlines()[:2]).split()[2:]
    command = [str(ROOT / a) if a.endswith(".csv") else a for a in command]
    shown = [line for line in block.splitlines()[2:] if line.strip() and line != "..."]
    assert len(shown) == 6
    code, out, _ = run_fit([*command[1:], "--out", str(tmp_path)], capsys)
    assert code == 0
    for line in shown:
        assert line in out.splitlines(), f"README line not printed by the CLI: {line!r}"


def test_approach1_takes_the_envelope_of_training_curves_when_runs_log_checkpoints(tmp_path, capsys):
    """Runs of a ladder of sizes (5 per decade), each logging 30 checkpoints: the envelope
    of the training curves. Each winner is within one ladder step h of the optimum in log
    N (the library's bound), so a is within slope_error_bound(h) over the points used."""
    ladder, tokens = 10 ** np.arange(7, 10.01, 1 / 5), np.geomspace(1e8, 1e12, 30)
    runs = pd.DataFrame([{"run": f"r{i}", "step": k, "N": n, "D": d, "loss": float(sweeps.law_loss(n, d))}
                         for i, n in enumerate(ladder) for k, d in enumerate(tokens)])
    csv = sweeps.write(runs, tmp_path / "runs.csv")
    code, _, err = run_fit([csv, "--approach", "1", "--n-bootstrap", "20", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    (r,) = json.loads((tmp_path / "out" / "results.json").read_text())["approaches"]
    assert r["method"]["envelope"].startswith("each run's loss curve interpolated")
    assert r["bootstrap"]["n_resamples"] == 20 and "whole runs" in r["interval_method"]
    used = np.array([p["C"] for p in r["points"] if p["used"]])
    assert abs(r["a"] - TRUE_A) <= slope_error_bound(np.log(used), np.log(10) / 5)


def test_budget_column_leaves_out_checkpoints_far_from_their_budget(tmp_path, capsys):
    """Runs planned at a budget that also log an early checkpoint (at 40% of their tokens,
    so 2.5x below the budget): the checkpoint is not on the IsoFLOP slice and is left out,
    as info (a checkpoint is expected there); a is what the final rows alone give."""
    sweep = sweeps.isoflop_ladder()
    early = sweep.assign(tokens=0.4 * sweep["tokens"], flops=0.4 * sweep["flops"],
                         val_loss=1.02 * sweep["val_loss"])
    csv = sweeps.write(pd.concat([early, sweep], ignore_index=True), tmp_path / "runs.csv")
    argv = ["--columns", COLUMNS + ",budget=isoflop_budget", "--approach", "2", "--n-bootstrap", "0"]
    code, _, err = run_fit([csv, *argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    left = [d for d in results["diagnostics"] if d["code"] == "dropped_points" and "from their budget" in d["message"]]
    assert len(left) == 1 and left[0]["severity"] == "info" and "earlier checkpoints" in left[0]["message"]
    assert left[0]["subjects"][0] == "line 2"
    clean = sweeps.write(sweep, tmp_path / "clean.csv")
    assert run_fit([clean, *argv, "--out", str(tmp_path / "clean")], capsys)[0] == 0
    (with_checkpoints,) = results["approaches"]
    (final_only,) = json.loads((tmp_path / "clean" / "results.json").read_text())["approaches"]
    assert with_checkpoints["a"] == pytest.approx(final_only["a"], abs=1e-12)

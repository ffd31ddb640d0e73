"""`scalerepro fit` allocations: the table against the library's `optimal` functions, the
terminal output of `--budget`, and `--about` declarations reaching the checklist."""

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerepro.publishing import checklist
from scalerepro import cli
from scalerepro.core import optimal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "example_runs.csv"
TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


# ----------------------------------------------------------------------------- the table
def test_allocation_table_matches_compute_optimal_and_percentiles():
    rng = np.random.default_rng(1)
    samples = {k: v * np.exp(0.05 * rng.standard_normal(400)) for k, v in TRUTH.items()}
    budgets = [1e21, 1e24]
    table = optimal.allocation_table(TRUTH, budgets, fitted_max_compute=4e20, samples=samples, level=0.9)
    assert list(table["C"]) == budgets
    np.testing.assert_allclose(table["extrapolation_factor"], [2.5, 2500.0])
    for j, c in enumerate(budgets):
        point = optimal.compute_optimal(TRUTH, c)
        drawn = optimal.compute_optimal(samples, c)
        for q in optimal.ALLOCATION_QUANTITIES:
            assert table[q][j] == pytest.approx(float(point[q]), rel=1e-12), q
            lo, hi = np.percentile(np.broadcast_to(drawn[q], (400,)), [5, 95])
            assert table[f"{q}_interval"][j] == pytest.approx([lo, hi], rel=1e-12), q
    assert (table["undefined_samples"] == 0).all()
    # a, b are exponents of C: D_opt / N_opt = tokens per parameter, a + b = 1
    np.testing.assert_allclose(table["a"] + table["b"], 1.0)
    np.testing.assert_allclose(table["D_opt"] / table["N_opt"], table["tokens_per_param"])


def test_allocation_table_counts_undefined_resamples_instead_of_warning(recwarn):
    samples = {k: np.full(5, v) for k, v in TRUTH.items()}
    samples["A"][0] = samples["B"][0] = np.inf      # both coefficients at infinity: inf / inf
    table = optimal.allocation_table(TRUTH, [1e22], 1e20, samples=samples)
    assert table["undefined_samples"][0] == 1
    assert table["N_opt_interval"][0] == pytest.approx([table["N_opt"][0]] * 2)  # the 4 defined ones
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert "N_opt_interval" not in optimal.allocation_table(TRUTH, [1e22], 1e20).columns


# ----------------------------------------------------------------------------- the terminal
def _terminal_allocation(out: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """(heading, budget column names, label -> cells) of the allocation table printed by fit."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("compute-optimal allocation"))
    header = lines[start + 1]
    names = re.findall(r"C = \S+", header)
    offsets = [header.index(n) for n in names]
    rows = {}
    for line in lines[start + 2:start + 9]:
        label = line[:offsets[0]].strip()
        rows[label] = [line[a:b].strip() for a, b in zip(offsets, [*offsets[1:], None])]
    return lines[start], names, rows


def _value_and_interval(cell: str):
    m = re.fullmatch(r"(\S+)(?: \[(\S+), (\S+)\])?", cell)
    assert m, cell
    return float(m.group(1)), None if m.group(2) is None else (float(m.group(2)), float(m.group(3)))


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """``scalerepro fit`` on the example runs with ``--budget 1e24`` and an ``--about`` file:
    (what it printed, its output directory, its results.json)."""
    out = tmp_path_factory.mktemp("budget")
    about = out / "about.yaml"
    about.write_text("training_data: simulated from a known law (data/examples/make_example_runs.py)\n"
                     "counting: N as given; C = 6ND\n")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["fit", str(EXAMPLE), "--budget", "1e24", "--holdout", "largest-compute:3",
                         "--n-bootstrap", "200", "--about", str(about), "--out", str(out)])
    assert code == 0
    return printed.getvalue(), out, json.loads((out / "results.json").read_text())


def test_budget_table_on_the_terminal_matches_optimal(budget_run):
    printed, out, results = budget_run
    heading, names, rows = _terminal_allocation(printed)
    assert names == ["C = 1e+24"]
    params = results["fit"]["params"]
    expected = optimal.compute_optimal(params, 1e24)
    labels = {"a": "a (N_opt ~ C^a)", "b": "b (D_opt ~ C^b)", "N_opt": "N_opt (parameters)",
              "D_opt": "D_opt (tokens)", "tokens_per_param": "tokens per parameter",
              "loss": "loss at the optimum"}
    recorded = results["compute_optimal"]["budgets"][0]
    for key, label in labels.items():
        value, interval = _value_and_interval(rows[label][0])
        assert value == pytest.approx(float(expected[key]), rel=6e-4), key   # printed to 4 digits
        assert interval == pytest.approx(recorded[f"{key}_interval"], rel=6e-4), key
        assert interval[0] <= value <= interval[1], key
    a, b = optimal.allocation_exponents(params["alpha"], params["beta"])
    assert _value_and_interval(rows[labels["a"]][0])[0] == pytest.approx(float(a), rel=6e-4)
    assert _value_and_interval(rows[labels["b"]][0])[0] == pytest.approx(float(b), rel=6e-4)
    # beyond the range of the *fitted* runs: the held-out runs (up to 4.8e20) do not count
    frame = pd.read_csv(EXAMPLE)
    held_lines = {p["line"] for p in results["holdout"]["points"]}
    fitted = frame[~(frame.index + 2).isin(held_lines)]
    fitted_max = float((6 * fitted["N"] * fitted["D"]).max())
    assert fitted_max < float((6 * frame["N"] * frame["D"]).max())
    factor = float(rows["beyond the fitted range"][0].rstrip("x"))
    assert factor == pytest.approx(1e24 / fitted_max, rel=6e-4)
    assert f"C = {fitted_max:.4g}" in heading and "95% bootstrap intervals" in heading


def test_about_answers_reach_the_checklist_and_report(budget_run):
    _, out, results = budget_run
    items = {i["id"]: i for i in results["checklist"]}
    assert items["training_data"]["status"] == "declared"
    assert items["training_data"]["value"].startswith("simulated from a known law")
    assert items["counting"] == {**items["counting"], "status": "declared", "value": "N as given; C = 6ND"}
    assert items["hyperparameters"]["status"] == "missing"
    assert results["parameters"]["about"].endswith("about.yaml")
    html = (out / "report.html").read_text()
    assert "simulated from a known law" in html
    assert html.count("declared in <code>") == 2  # training data and counting; not the hold-out's validation


def test_default_budgets_are_the_largest_fitted_compute_and_10x_100x():
    from scalerepro.runs import fit as userfit

    uf = userfit.fit_runs(EXAMPLE, holdout=3, n_bootstrap=0, starts=np.array([[6.0, 7.6, 0.6, 0.35, 0.37]]))
    fitted_max = float(uf.train["C"].max())
    assert fitted_max == pytest.approx(1.2e20) and float(uf.frame["C"].max()) == pytest.approx(4.8e20)
    assert uf.options["budgets"] == pytest.approx([fitted_max, 10 * fitted_max, 100 * fitted_max])
    np.testing.assert_allclose(uf.allocation["extrapolation_factor"], [1, 10, 100])
    assert not any(c.endswith("_interval") for c in uf.allocation.columns)  # no bootstrap, no intervals


def test_about_template_and_bad_about_on_the_command_line(tmp_path, capsys):
    assert cli.main(["fit", "--about-template"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == checklist.about_template().strip()
    bad = tmp_path / "about.yaml"
    bad.write_text("training: C4\n")
    assert cli.main(["fit", str(EXAMPLE), "--about", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "about.yaml" in err and "did you mean 'training_data'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was fitted
    assert cli.main(["fit", "--out", str(tmp_path / "out")]) == 2
    assert "fit needs RUNS.csv" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "0", "lots", "inf"])
def test_bad_budget_is_refused(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit", str(EXAMPLE), "--budget", value])
    assert exit_.value.code == 2 and "positive number of FLOPs" in capsys.readouterr().err


def test_without_bootstrap_no_interval_columns_are_printed(monkeypatch, capsys, tmp_path):
    from scalerepro.runs import fit as userfit

    record = {"fit": {"params": {"E": 1.8, "alpha": 0.35}, "intervals": None, "outcome": "converged"},
              "fits": {"main": {"points_used": 10, "points_dropped": []}}, "holdout": None,
              "compute_optimal": {"flops": "C = 6ND", "fitted_max_C": 1e20, "level": None,
                                  "budgets": [{"C": 1e20, "extrapolation_factor": 1.0, "a": 0.5, "b": 0.5,
                                               "N_opt": 1e9, "D_opt": 2e10, "tokens_per_param": 20.0,
                                               "loss": 2.0}]},
              "warnings": []}
    monkeypatch.setattr(userfit, "run", lambda *a, **k: record)
    assert cli.main(["fit", str(EXAMPLE), "--n-bootstrap", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("parameter"))
    assert header.split() == ["parameter", "estimate"]
    assert "[" not in out and "no bootstrap intervals" in out
    assert re.search(r"^beyond the fitted range\s+within$", out, re.MULTILINE)


def test_unidentified_allocations_are_marked_on_the_terminal(monkeypatch, capsys, tmp_path):
    # the record issue 12's identifiability checks add to an allocation row
    from scalerepro.runs import fit as userfit

    row = {"C": 1e22, "extrapolation_factor": 100.0, "a": 0.9, "b": 0.1, "N_opt": 1e12, "D_opt": 1e10,
           "tokens_per_param": 0.01, "loss": 1.5, "identified": False,
           "note": "not identified: depends on B, beta, which the data do not determine"}
    record = {"fit": {"params": {"E": 1.8}, "intervals": None, "outcome": "not identified: B, beta"},
              "fits": {"main": {"points_used": 10, "points_dropped": []}}, "holdout": None, "warnings": [],
              "compute_optimal": {"flops": "C = 6ND", "fitted_max_C": 1e20, "level": None, "budgets": [row]}}
    monkeypatch.setattr(userfit, "run", lambda *a, **k: record)
    assert cli.main(["fit", str(EXAMPLE), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^identified\s+NO: see the note$", out, re.MULTILINE)
    assert out.count("note: not identified: depends on B, beta") == 1

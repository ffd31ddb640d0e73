"""A bootstrap that runs a parameter to the edge reaches the diagnostics (issue 28).

The shape: a learning-rate sweep (3 learning rates per (N, D), ``--per-nd best``) from a
known law whose E direction is flat (``sweeps.lr_sweep_flat_e``: one decade of N, 10 to 40
tokens per parameter). The full-data fit converges and its own checks find nothing, but
about 8% of the bootstrap refits run E to 0, so E's interval starts at 0. That must be a
``not_identified`` warning naming E and the share, the outcome, headline and status must
say so, and ``--strict`` must stop on it: in ``fit``, in ``sensitivity`` and in approach 3.
The README's well-identified sweep (``sweeps.lr_sweep``) must get none of it.
"""

import json

import numpy as np
import pytest

import sweeps
from scalerepro import cli
from scalerepro.analyses import approaches
from scalerepro.core import identifiability, laws
from scalerepro.core.bootstrap import BootstrapResult
from scalerepro.runs import fit as userfit
from scalerepro.runs import sensitivity as usersensitivity


def _fit(frame, tmp_path, name, n_bootstrap=1000):
    path = sweeps.write(frame, tmp_path / f"{name}.csv")
    return userfit.fit_runs(path, columns=userfit.parse_columns(sweeps.LR_COLUMNS), per_nd="best",
                            n_bootstrap=n_bootstrap)


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    return _fit(sweeps.lr_sweep_flat_e(), tmp_path_factory.mktemp("flat"), "flat")


def _warnings(diagnostics):
    return [d for d in diagnostics if d.code == "not_identified" and d.severity != "info"]


def test_runaway_refits_are_a_not_identified_warning_naming_e_and_the_share(flat):
    # the full-data fit alone finds no problem: only the bootstrap shows that E is not bounded
    assert flat.identifiability.outcome == "identified" and flat.result.outcome == "converged"
    edges = flat.identifiability.bootstrap_edges
    assert edges["E"]["bounded"] is False and edges["E"]["interval"][0] == 0.0
    assert 0.05 < edges["E"]["share"] < 0.15 and edges["E"]["lower"] == edges["E"]["n_at_edge"]
    assert all(edges[p]["bounded"] for p in ("A", "B", "alpha", "beta"))
    (warning,) = _warnings(flat.diagnostics)
    assert warning.subjects == ("E",)
    n = edges["E"]["n_at_edge"]
    assert f"{n} of {edges['E']['n_refits']} refits ran E to 0 ({n / edges['E']['n_refits']:.1%})" in warning.message
    assert flat.outcome == f"converged; {identifiability.UNBOUNDED}: E"
    record = flat.record()
    assert record["status"] == "not identified" and record["fit"]["outcome"] == flat.outcome
    assert record["identifiability"]["bootstrap_edges"]["E"]["bounded"] is False
    assert any(d["code"] == "not_identified" and d["subjects"] == ["E"] for d in record["diagnostics"])
    optimizer = next(item for item in record["checklist"] if item["id"] == "optimizer")
    assert "outcome NOT BOUNDED BY THE BOOTSTRAP: E" in optimizer["value"]


def test_a_well_identified_sweep_gets_no_such_warning(tmp_path):
    uf = _fit(sweeps.lr_sweep(), tmp_path, "lr")
    assert _warnings(uf.diagnostics) == [] and uf.outcome == "converged"
    assert all(row["bounded"] and row["n_at_edge"] == 0 for row in uf.identifiability.bootstrap_edges.values())
    assert uf.record()["status"] == "ok"


def test_headline_report_and_strict_see_it(tmp_path, capsys):
    path = sweeps.write(sweeps.lr_sweep_flat_e(), tmp_path / "flat.csv")
    args = ["fit", path, "--columns", sweeps.LR_COLUMNS, "--per-nd", "best", "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0  # warnings alone do not change the exit status...
    out = capsys.readouterr().out
    assert "found no problem" not in out and "outcome: converged, but NOT BOUNDED by the bootstrap (E)" in out
    assert "(not bounded)" in next(line for line in out.splitlines() if line.startswith("E "))
    assert "warning [not_identified] the bootstrap does not bound E" in out
    assert json.loads((tmp_path / "out" / "results.json").read_text())["status"] == "not identified"
    assert "status <strong>not identified</strong>" in (tmp_path / "out" / "report.html").read_text()
    assert cli.main(args + ["--strict"]) == 1  # ...but --strict stops on a parameter the data do not bound
    assert "status 'not identified'" in capsys.readouterr().err


def test_approach_3_from_the_fit_carries_the_warning(flat):
    fit = approaches.from_law_fit(flat.result, flat.boot, flat.train)
    (warning,) = _warnings(fit.diagnostics)
    assert warning.subjects == ("E",)


def test_sensitivity_variants_and_status_see_it(tmp_path):
    path = sweeps.write(sweeps.lr_sweep_flat_e(), tmp_path / "flat.csv")
    us = usersensitivity.sensitivity_runs(path, userfit.parse_columns(sweeps.LR_COLUMNS), per_nd="best",
                                          budgets=[1e20], n_bootstrap=1000, n_bootstrap_variants=200,
                                          screened_starts=10, groups=["form"])
    default = us.result.results["default"]
    assert default.identified and default.row["outcome"] == f"identified; {identifiability.UNBOUNDED}: E"
    assert [d.subjects for d in _warnings(default.diagnostics)] == [("E",)]
    top = [d for d in _warnings(us.diagnostics) if "default" in d.subjects]
    assert len(top) == 1 and "default (E)" in top[0].message
    record = us.record()
    assert record["status"] == "not identified"
    assert record["default"]["bootstrap"]["edges"]["E"]["bounded"] is False
    assert record["default"]["in_spread"]  # a warning: the variant stays in the spread


def _boot(E, level=0.95):
    n = len(E)
    ones = np.ones(n)
    samples = {"E": np.asarray(E, float), "A": 400 * ones, "B": 2000 * ones, "alpha": 0.34 * ones,
               "beta": np.r_[np.full(3, np.inf), np.full(n - 3, 0.37)]}
    return BootstrapResult(samples=samples, theta_samples=np.zeros((n, 5)), n_resamples=n, n_failed=0, seed=0,
                           level=level, resampling="points", warm_start="full-data optimum", seconds=0.0)


@pytest.mark.parametrize("at_zero, bounded", [(0, True), (15, True), (26, False), (300, False)])
def test_the_threshold_is_the_share_that_moves_the_interval_end(at_zero, bounded):
    # (1 - level) / 2 = 2.5% of 1000 refits: beyond it the 95% interval's end is the limit
    E = np.r_[np.zeros(at_zero), np.linspace(1.5, 2.0, 1000 - at_zero)]
    record, diagnostics = identifiability.bootstrap_edges(_boot(E), laws.Chinchilla(), y=np.array([2.5, 3.0]))
    assert record["E"]["bounded"] is bounded and record["E"]["n_at_edge"] == at_zero
    assert (record["E"]["interval"][0] == 0.0) is (not bounded)
    assert [d.subjects for d in _warnings(diagnostics)] == ([] if bounded else [("E",)])
    # 3 refits of 1000 with beta -> infinity: counted, an info, and beta's interval stands
    assert record["beta"]["upper"] == 3 and record["beta"]["bounded"]
    info = [d for d in diagnostics if d.code == "bootstrap_edge"]
    assert len(info) == 1 and "3 of 1000 refits ran beta to infinity (0.3%)" in info[0].message
    assert ("E" in info[0].subjects) is (bounded and at_zero > 0)


def test_e_at_a_tiny_value_counts_as_the_edge_and_a_parameter_already_flagged_is_not_repeated():
    E = np.r_[np.full(100, 1e-9), np.linspace(1.5, 2.0, 900)]  # converged refits at E ~ 0 count too
    record, diagnostics = identifiability.bootstrap_edges(_boot(E), laws.Chinchilla(), y=np.array([2.5]))
    assert record["E"]["lower"] == 100 and not record["E"]["bounded"] and _warnings(diagnostics)
    record, diagnostics = identifiability.bootstrap_edges(_boot(E), laws.Chinchilla(), y=np.array([2.5]),
                                                          skip=("E",))
    assert not record["E"]["bounded"] and _warnings(diagnostics) == []

"""The rules behind the design and identifiability diagnostics, each on a case built to trip it."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import sweeps
from conftest import law_runs
from scalerepro.core import design_checks, identifiability, laws
from scalerepro.core.fit import fit

LAW = laws.Chinchilla()
TRUTH_THETA = LAW.from_natural(**sweeps.TRUTH)


def fake_result(**natural):
    """A converged fit record at the given natural parameters (only what the value rules read)."""
    return SimpleNamespace(law=LAW, theta=LAW.from_natural(**{**sweeps.TRUTH, **natural}), stall=None,
                           optimizer={"name": "newton"})


@pytest.mark.parametrize("natural, subject, words", [
    ({"beta": -0.255}, "beta", "negative exponent makes the loss grow with D"),
    ({"alpha": 1.0}, "alpha", "start-grid value"),
    ({"A": 1.0}, "A", "start-grid value"),           # log A = 0 is on the grid
    ({"B": 4e59, "beta": 5.67}, "B", "beyond 1e30"),
    ({"E": 5.7e-8}, "E", "E -> 0"),
])
def test_non_physical_values_are_errors(natural, subject, words):
    found = identifiability.implausible(fake_result(**natural), y=np.array([2.5, 3.0]))
    mine = [d for d in found if d.subjects == (subject,)]
    assert mine and mine[0].severity == "error" and words in mine[0].message


def test_plausible_values_pass():
    assert identifiability.implausible(fake_result(), y=np.array([2.5, 3.0])) == []


def test_flat_direction_is_named_as_a_combination():
    # a Hessian whose only null direction is 20 log B + beta
    u = np.array([0.0, 20.0, 0.0, 0.0, 1.0])
    Q = np.linalg.qr(np.c_[u / np.linalg.norm(u), np.random.default_rng(0).normal(size=(5, 4))])[0]
    H = Q @ np.diag([0.0, 1.0, 2.0, 3.0, 4.0]) @ Q.T
    directions = identifiability.flat_directions(SimpleNamespace(law=LAW, hessian=H))
    assert len(directions) == 1
    d = directions[0]
    assert set(d["parameters"]) == {"B", "beta"}
    assert d["coefficients"]["log B"] == pytest.approx(1.0) and d["coefficients"]["beta"] == pytest.approx(0.05)
    assert d["combination"] == "1 log B + 0.05 beta"


def test_identified_fit_passes_and_its_profile_has_its_minimum_at_the_fit():
    X, y = law_runs(LAW, sweeps.TRUTH, 120, 0.01, 5, log10_N=(7, 9.5), log10_D=(8.5, 11))
    result = fit(LAW, X, y, starts=TRUTH_THETA[None, :] + np.random.default_rng(1).normal(0, 0.05, (20, 5)))
    report = identifiability.check(result, X, y, starts=LAW.default_starts(), profiles=False)
    assert report.outcome == "identified" and report.diagnostics == [] and report.directions == []
    profile = identifiability.profile(result, X, y, "beta")
    objective = np.array(profile["objective"])
    assert objective.min() == pytest.approx(result.objective_value, rel=1e-9)
    assert profile["values"][int(np.argmin(objective))] == pytest.approx(profile["best"])
    assert (objective >= result.objective_value * (1 - 1e-12)).all() and profile["relative_rise"] > 1


def test_influence_names_the_run_that_moves_the_exponent():
    # 39 runs below 1e8 parameters and one at 1e9 whose loss is 5% high: that one run
    # decides alpha, so leaving it out moves the allocation exponent most
    X, y = law_runs(LAW, sweeps.TRUTH, 40, 0.003, 2, log10_N=(7, 8), log10_D=(8.5, 10.5))
    X[0, 0] = 1e9
    y[0] = LAW.predict(TRUTH_THETA, X[:1])[0] * 1.05
    result = fit(LAW, X, y, starts=TRUTH_THETA[None, :])
    a = lambda p: p["beta"] / (p["alpha"] + p["beta"])  # noqa: E731
    full = float(a(result.params))
    labels = {i: f"line {i + 2}" for i in range(40)}
    record, found = identifiability.influence(result, X, y, None, labels, a, (full - 1e-3, full + 1e-3), "a")
    assert record["n_left_out"] == 40 and found and found[0].severity == "warning"
    assert found[0].subjects[0] == "line 2"
    assert record["influential"][0]["left_out"] == "line 2"
    _, quiet = identifiability.influence(result, X, y, None, labels, a, (0.0, 1.0), "a")
    assert [d.severity for d in quiet] == ["info"]


# ----------------------------------------------------------------------------- design
def design(N, D):
    return pd.DataFrame({"N": N, "D": D, "C": 6 * np.asarray(N) * np.asarray(D)})


def test_design_checks_fire_where_they_should():
    N = np.geomspace(1e7, 1e9, 12)
    ladder = design_checks.design_diagnostics(design(N, 20 * N), LAW)
    assert {d.code: d.severity for d in ladder}["collinear_design"] == "error"
    wobbly = design_checks.design_diagnostics(design(N, 20 * N * np.tile([1.0, 1.8], 6)), LAW)
    assert {d.code: d.severity for d in wobbly}["collinear_design"] == "warning"
    grid = design_checks.design_diagnostics(design(np.repeat(N, 3), np.repeat(N, 3) * np.tile([5, 20, 80], 12)), LAW)
    assert {d.code: d.severity for d in grid} == {"design_points": "info"}
    narrow = design_checks.design_diagnostics(design(np.repeat([1e8, 2e8], 6), np.geomspace(1e9, 1e11, 12)), LAW)
    assert [d.subjects for d in narrow if d.code == "narrow_range"] == [("N",)]
    five = design_checks.design_diagnostics(design(N[:5], N[:5] * [5, 80, 10, 40, 20]), LAW)
    assert {d.code: d.severity for d in five}["design_points"] == "error"

"""The profile (variable-projection) optimizer: the same optimum as the full start grid.

``fit(optimizer="profile")`` searches the exponents on a grid with (E, A, B) solved at
each point, then polishes the best local minima with Newton. It must reach the optimum
that Hoffmann's 4500-start grid reaches (1e-8 relative), on the Chinchilla points and on
synthetic data with a known answer; and its landscape must be what it claims to be.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro.core import laws
from scalerepro.core.fit import FitError, fit
from scalerepro.analyses.law_registry import get_law
from scalerepro.core.objective import Objective, Problem
from scalerepro.core.profile import _local_minima, _nonnegative_lsq

ROOT = Path(__file__).resolve().parents[1]
TRUTH = CHINCHILLA_TRUTH


def benchmark_sweep():
    """The benchmark's 261-run learning-rate sweep with flat directions."""
    spec = importlib.util.spec_from_file_location("bench_sweep", ROOT / "benchmarks" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lr_sweep()


def same_optimum(profile, grid):
    assert profile.converged and grid.converged
    assert profile.objective_value == pytest.approx(grid.objective_value, rel=1e-8)
    np.testing.assert_allclose(profile.theta, grid.theta, rtol=1e-4, atol=1e-5)


def real_runs(points):
    kept, _ = points
    return kept[["N", "D"]].to_numpy(float), kept["loss"].to_numpy(float)


def test_profile_reaches_the_full_grid_optimum_on_the_chinchilla_points(chinchilla_points, chinchilla_grid_fit):
    X, y = real_runs(chinchilla_points)
    grid, profile = chinchilla_grid_fit, fit(laws.Chinchilla(), X, y, optimizer="profile")
    same_optimum(profile, grid)
    assert round(profile.objective_value, 10) == 0.0010182740  # the reference notes' value
    record = profile.record()
    assert record["optimizer"]["name"] == "profile"
    assert "variable projection" in record["optimizer"]["description"]
    assert {"grid_size", "exponent_min", "exponent_max", "inner_steps", "ftol_rel"} <= set(record["optimizer"]["tolerances"])
    assert record["initialization"]["n_starts_converged"] == profile.n_starts >= 1


def outliers(X, y):
    y = y.copy()
    y[::17] *= 1.25  # a few diverged runs: the Huber loss should shrug them off
    return X, y


CASES = {
    "log-uniform runs": (lambda: law_runs(laws.Chinchilla(), TRUTH, 120, 0.01, 3, (7, 10), (9, 12)), {}),
    "learning-rate sweep": (lambda: benchmark_sweep()[:2], {}),
    "with outliers": (lambda: outliers(*law_runs(laws.Chinchilla(), TRUTH, 120, 0.01, 5, (7, 10), (9, 12))), {}),
    "raw-space MSE": (lambda: law_runs(laws.Chinchilla(), TRUTH, 80, 0.01, 6, (7, 10), (9, 12)),
                      {"objective": "mse", "space": "raw"}),
    "raw-space Huber, averaged": (lambda: law_runs(laws.Chinchilla(), TRUTH, 80, 0.01, 7, (7, 10), (9, 12)),
                                  {"space": "raw", "delta": 0.01, "reduction": "mean"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_profile_reaches_the_full_grid_optimum_on_synthetic_data(case):
    make, kwargs = CASES[case]
    X, y = make()
    grid = fit(laws.Chinchilla(), X, y, **kwargs)
    profile = fit(laws.Chinchilla(), X, y, optimizer="profile", **kwargs)
    same_optimum(profile, grid)
    # and the known truth is where the data put it (1% noise, or a few outliers)
    params = profile.params
    assert params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.08)
    assert params["beta"] == pytest.approx(TRUTH["beta"], abs=0.08)
    assert params["E"] == pytest.approx(TRUTH["E"], rel=0.1)


def test_profile_recovers_a_noise_free_truth_exactly():
    X, y = law_runs(laws.Chinchilla(), TRUTH, 60, 0.0, 8, (7, 10), (9, 12))
    result = fit(laws.Chinchilla(), X, y, optimizer="profile")
    for name, value in TRUTH.items():
        assert result.params[name] == pytest.approx(value, rel=1e-6), name


def test_tied_profile_reaches_the_tied_grid_optimum():
    truth = dict(TRUTH, beta=TRUTH["alpha"])
    X, y = law_runs(laws.Chinchilla(), truth, 100, 0.01, 9, (7, 10), (9, 12))
    law = get_law("chinchilla_tied")
    profile, grid = fit(law, X, y, optimizer="profile"), fit(law, X, y)
    same_optimum(profile, grid)
    assert profile.landscape["objective"].shape == (40,) and profile.landscape["tied"]


def test_the_landscape_is_an_upper_bound_with_its_minimum_at_the_fit():
    X, y = benchmark_sweep()[:2]
    result = fit(laws.Chinchilla(), X, y, optimizer="profile")
    land = result.landscape
    values = land["objective"]
    assert values.shape == (40, 40) and land["coefficients"].shape == (40, 40, 3)
    assert (land["coefficients"] >= 0).all()
    # every grid value is the objective at some (E, A, B, alpha, beta): none beats the optimum
    assert values.min() >= result.objective_value * (1 - 1e-12)
    i, j = np.unravel_index(np.argmin(values), values.shape)
    step = land["alpha"][1] - land["alpha"][0]
    assert abs(land["alpha"][i] - result.params["alpha"]) <= 2 * step
    assert abs(land["beta"][j] - result.params["beta"]) <= 2 * step
    # a grid value is the objective at its stored coefficients
    E, A, B = land["coefficients"][i, j]
    theta = np.log([A, B, E]).tolist() + [land["alpha"][i], land["beta"][j]]
    assert fit(laws.Chinchilla(), X, y, starts=np.array([theta]), optimizer="grid").objective_value == \
        pytest.approx(values[i, j], rel=1e-12)


def test_the_landscape_is_close_to_the_true_profile_near_its_minimum(chinchilla_points):
    # Each grid value is the objective at the inner fit's (E, A, B); refining those three
    # coefficients at fixed exponents (Nelder-Mead from them) may lower it, but only a
    # little near the minimum: the reweighted steps have done most of the work (the
    # closed form alone is 2.5-9% above the refined value here).
    X, y = real_runs(chinchilla_points)
    land = fit(laws.Chinchilla(), X, y, optimizer="profile").landscape
    problem = Problem(laws.Chinchilla(), X, y, Objective())
    values = land["objective"]
    i0, j0 = np.unravel_index(np.argmin(values), values.shape)
    for i, j in [(i0, j0), (i0 + 2, j0), (i0, j0 + 2), (i0 - 2, j0 - 2)]:
        alpha, beta = land["alpha"][i], land["beta"][j]

        def objective(log_eab):
            return problem.value(np.array([[log_eab[1], log_eab[2], log_eab[0], alpha, beta]]), None)[0]

        refined = scipy.optimize.minimize(objective, np.log(land["coefficients"][i, j]), method="Nelder-Mead",
                                          options={"xatol": 1e-8, "fatol": 1e-14, "maxiter": 2000}).fun
        assert refined <= values[i, j] <= 1.03 * refined, (i, j)


def test_explicit_starts_are_polished_too():
    X, y = law_runs(laws.Chinchilla(), TRUTH, 80, 0.01, 10, (7, 10), (9, 12))
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :]
    result = fit(laws.Chinchilla(), X, y, optimizer="profile", starts=start)
    assert result.n_starts == len(result.landscape["polished"]) + 1
    np.testing.assert_array_equal(result.start_thetas.shape, (result.n_starts, 5))


def test_polish_starts_are_the_landscapes_local_minima_best_first():
    values = 10.0 + 0.01 * np.arange(42.0).reshape(6, 7)  # a slope, then four dips and a hole
    values[1, 1], values[4, 5], values[0, 6], values[3, 3] = 2.0, 1.0, 3.0, np.nan
    values[4, 6] = 1.0  # a tie next to a minimum: both count, neither is lower
    idx = _local_minima(values)
    assert [np.unravel_index(k, values.shape) for k in idx] == [(4, 5), (4, 6), (1, 1), (0, 6)]
    assert list(_local_minima(np.array([3.0, 1.0, 2.0, 0.5, 4.0]))) == [3, 1]


def test_nonnegative_least_squares_matches_scipy():
    rng = np.random.default_rng(2)
    for _ in range(200):
        A = rng.standard_normal((12, 3)) * rng.uniform(0.1, 10, 3)
        b = rng.standard_normal(12) * 3
        c = np.empty(3)
        cost = _nonnegative_lsq(A.T @ A, A.T @ b, c)
        expected, _ = scipy.optimize.nnls(A, b)
        np.testing.assert_allclose(c, expected, rtol=1e-7, atol=1e-9)
        assert cost == pytest.approx(expected @ A.T @ A @ expected - 2 * (A.T @ b) @ expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(law=laws.KaplanWithE()), "use optimizer='newton'"),
    (dict(objective="mae"), "twice-differentiable"),
    (dict(options={"grid_sise": 10}), "unknown profile options \\['grid_sise'\\]"),
    (dict(options={"exponent_min": 2.0, "exponent_max": 1.0}), "exponent_min < exponent_max"),
])
def test_profile_errors_name_the_way_out(kwargs, message):
    X, y = law_runs(laws.Chinchilla(), TRUTH, 30, 0.01, 11, (7, 10), (9, 12))
    law = kwargs.pop("law", laws.Chinchilla())
    with pytest.raises(FitError, match=message):
        fit(law, X, y, optimizer="profile", **kwargs)

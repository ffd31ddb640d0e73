"""The Kaplan-with-E law: derivatives against finite differences, parameter recovery."""

import numpy as np
import pytest

from conftest import law_runs
from scalerepro.core import laws, optimal
from scalerepro.core.fit import fit
from scalerepro.analyses.law_registry import get_law
from scalerepro.core.objective import Objective, Problem

TRUTH = dict(E=1.9, A=6.7e7, B=8.9e8, alpha=0.41, beta=0.455)  # near the FineWeb-Edu fit


def synthetic_runs(n=80, noise=0.0, seed=0, truth=TRUTH):
    return law_runs(laws.KaplanWithE(), truth, n, noise, seed, log10_N=(7.3, 9.3), log10_D=(8.7, 11))


def test_registered_under_both_names():
    assert isinstance(get_law("kaplan_with_e"), laws.KaplanWithE)
    assert isinstance(get_law("kaplan_nd"), laws.KaplanWithE)


def test_prediction_is_the_published_formula():
    law = laws.KaplanWithE()
    X, _ = synthetic_runs(10)
    t = TRUTH
    expected = ((t["A"] / X[:, 0]) ** (t["alpha"] / t["beta"]) + t["B"] / X[:, 1]) ** t["beta"] + t["E"]
    np.testing.assert_allclose(law.predict(law.from_natural(**t), X), expected, rtol=1e-12)
    assert law.natural(law.from_natural(**t)) == pytest.approx(t, rel=1e-12)


@pytest.mark.parametrize("theta", [[17.0, 20.5, 0.6, 0.41, 0.45], [5.0, 10.0, 0.5, 0.4, 0.4],
                                   [25.0, 15.0, -1.0, 0.9, 0.3]])
def test_jacobian_matches_finite_differences(theta):
    law = laws.KaplanWithE()
    X, _ = synthetic_runs(30)
    theta = np.array([theta])
    _, J = law.log_predict_jac(theta, X)
    for j in range(law.n_params):
        h = np.zeros_like(theta)
        h[0, j] = 1e-6
        fd = (law.log_predict(theta + h, X) - law.log_predict(theta - h, X)) / 2e-6
        np.testing.assert_allclose(J[..., j], fd, rtol=1e-6, atol=1e-9)


def test_objective_hessian_matches_finite_differences():
    law = laws.KaplanWithE()
    X, y = synthetic_runs(40, noise=0.01)
    problem = Problem(law, X, y, Objective("mse"))
    theta = np.array([[17.5, 20.4, 0.62, 0.42, 0.46]])
    _, g, H = problem.value_grad_hess(theta, np.array([0]))
    eye = np.eye(law.n_params) * 1e-6
    H_fd = [(problem.value_grad_hess(theta + e, np.array([0]))[1] - problem.value_grad_hess(theta - e, np.array([0]))[1])[0] / 2e-6
            for e in eye]
    np.testing.assert_allclose(H[0], np.array(H_fd), rtol=1e-4, atol=1e-7)


def test_recovers_parameters_from_exact_data():
    X, y = synthetic_runs()
    result = fit(laws.KaplanWithE(), X, y, reduction="mean")
    assert result.converged
    for name, value in TRUTH.items():
        assert result.params[name] == pytest.approx(value, rel=1e-4), name


def test_recovers_parameters_from_noisy_data():
    X, y = synthetic_runs(200, noise=0.002, seed=3)
    result = fit(laws.KaplanWithE(), X, y, reduction="mean")
    assert result.params["E"] == pytest.approx(TRUTH["E"], abs=0.02)
    assert result.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.02)
    assert result.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.02)


def test_allocation_exponent_matches_numerical_optimum():
    """N_opt grows as C^(beta/(alpha+beta)) under C = 6ND, as for the Chinchilla form."""
    law = laws.KaplanWithE()
    theta = law.from_natural(**TRUTH)
    N = np.geomspace(1e6, 1e12, 20001)
    n_opt = []
    for C in (1e19, 1e21):
        loss = law.predict(theta, np.c_[N, C / (6 * N)])
        n_opt.append(N[np.argmin(loss)])
    slope = np.log(n_opt[1] / n_opt[0]) / np.log(100.0)
    a, _ = optimal.allocation_exponents(TRUTH["alpha"], TRUTH["beta"])
    assert slope == pytest.approx(a, abs=2e-3)

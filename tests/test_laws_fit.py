"""Laws and the multi-start fitter: derivatives, parameter recovery, records, errors."""

import re

import numpy as np
import pytest

from conftest import law_runs
from scalerepro.core import laws
from scalerepro.core.fit import FitError, FitWarning, fit
from scalerepro.analyses.law_registry import get_law
from scalerepro.core.objective import Objective, Problem

TRUTH = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def synthetic_runs(n=150, noise=0.0, seed=0, truth=TRUTH):
    """Runs spread over three decades of N and D, loss from the law times log-normal noise."""
    return law_runs(laws.Chinchilla(), truth, n, noise, seed, log10_N=(7, 10), log10_D=(9, 12))


COARSE = laws.grid(a=[0, 5, 10], b=[0, 5, 10], e=[-1, 0, 1], alpha=[0, 0.5, 1], beta=[0, 0.5, 1])


@pytest.mark.parametrize("law", [laws.Chinchilla(), get_law("chinchilla_tied")], ids=["free", "tied"])
@pytest.mark.parametrize("space", ["log", "raw"])
def test_gradient_and_hessian_match_finite_differences(law, space):
    X, y = synthetic_runs(40, noise=0.01)
    problem = Problem(law, X, y, Objective("mse", space=space))
    theta = np.array([[6.0, 7.5, 0.6, 0.33, 0.38][: law.n_params]])
    _, g, H = problem.value_grad_hess(theta, None)
    eye = np.eye(law.n_params) * 1e-6
    g_fd = [(problem.value(theta + e, None) - problem.value(theta - e, None))[0] / 2e-6 for e in eye]
    H_fd = [(problem.value_grad_hess(theta + e, None)[1] - problem.value_grad_hess(theta - e, None)[1])[0] / 2e-6
            for e in eye]
    np.testing.assert_allclose(g[0], g_fd, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(H[0], np.array(H_fd), rtol=1e-4, atol=1e-7)


DELTA = 1e-3


def rho_written_out(kind, r):
    """rho, its derivative psi and second derivative dpsi, written out independently of
    Objective: Huber is r^2 / 2 within delta and delta (|r| - delta / 2) beyond it."""
    inside = np.abs(r) <= DELTA
    return {"huber": (np.where(inside, r ** 2 / 2, DELTA * (np.abs(r) - DELTA / 2)), np.clip(r, -DELTA, DELTA),
                      inside.astype(float)),
            "mse": (r ** 2, 2 * r, np.full_like(r, 2.0)),
            "mae": (np.abs(r), np.sign(r), np.zeros_like(r))}[kind]


@pytest.mark.parametrize("kind", ["huber", "mse", "mae"])
def test_objective_terms_and_weighted_totals_against_rho_written_out(kind):
    # Residuals on both sides of delta (1e-3) in three rows, weights 0, 1 or 2 per point (a
    # bootstrap's multiplicities), one weight row broadcast or one per residual row.
    # Exactly +-delta counts as within (rho's c = min(|r|, delta) is then |r|), and 0 is there.
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 2e-3, (3, 40))
    r[:, :3] = DELTA, -DELTA, 0.0
    w = rng.integers(0, 3, (3, 40)).astype(float)
    rho, psi, dpsi = rho_written_out(kind, r)
    objective = Objective(kind=kind, delta=DELTA)
    terms = objective.terms(r.copy())  # with derivatives unless told otherwise
    assert len(terms) == 3
    for got, want in zip(terms, (rho, psi, dpsi)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-18)
    (only_rho,) = objective.terms(r.copy(), derivatives=False)
    np.testing.assert_allclose(only_rho, rho, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(objective.total(r.copy()), rho.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(objective.total(r.copy(), w), (w * rho).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(objective.total(r.copy(), w[:1]), (w[:1] * rho).sum(axis=1), rtol=1e-12)


@pytest.mark.filterwarnings("error")  # a zero residual must not warn of a division by zero
def test_huber_majorizer_curvature_is_psi_over_r_in_the_rows_asked():
    # The IRLS weight psi(r) / r = min(delta / |r|, 1) replaces dpsi in the majorized rows
    # only; the other rows keep the exact second derivative (1 within delta, else 0). At
    # r = 0 the weight's limit is 1.
    r = np.array([[0.0, 5e-4, DELTA, -2e-3, 4e-3]] * 2)
    exact = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    majorizer = np.array([1.0, 1.0, 1.0, 0.5, 0.25])
    objective = Objective(delta=DELTA)
    for rows, want in [([True, False], [majorizer, exact]), ([True, True], [majorizer, majorizer]),
                       ([False, False], [exact, exact])]:
        _, psi, dpsi = objective.terms(r.copy(), majorize=np.array(rows))
        np.testing.assert_allclose(dpsi, want, rtol=1e-15)
        np.testing.assert_allclose(psi, np.clip(r, -DELTA, DELTA), rtol=1e-15)


def test_a_weight_counts_its_point_that_many_times_and_bad_weights_are_refused():
    # Weight 2 on every point doubles a summed objective (and its gradient and Hessian) and
    # leaves an averaged one unchanged: the mean divides by the total weight.
    X, y = synthetic_runs(30, noise=0.01)
    theta, rows = np.array([[6.0, 7.5, 0.6, 0.33, 0.38]]), np.array([0])
    for reduction, factor in (("sum", 2.0), ("mean", 1.0)):
        plain = Problem(laws.Chinchilla(), X, y, Objective(reduction=reduction))
        twice = Problem(laws.Chinchilla(), X, y, Objective(reduction=reduction), weights=np.full(30, 2.0))
        for got, want in zip(twice.value_grad_hess(theta, rows), plain.value_grad_hess(theta, rows)):
            np.testing.assert_allclose(got, factor * want, rtol=1e-12)
        np.testing.assert_allclose(twice.value(theta, rows), factor * plain.value(theta, rows), rtol=1e-12)
    summed, averaged = (Problem(laws.Chinchilla(), X, y, Objective(reduction=r), weights=np.full(30, 2.0))
                        for r in ("sum", "mean"))
    np.testing.assert_allclose(averaged.value(theta, rows), summed.value(theta, rows) / 60, rtol=1e-12)
    for weights, shape in [(np.ones(29), "(1, 29)"), (np.r_[-1.0, np.ones(29)], "(1, 30)"),
                           (np.r_[np.nan, np.ones(29)], "(1, 30)"), (np.r_[np.inf, np.ones(29)], "(1, 30)")]:
        with pytest.raises(FitError, match=r"^weights must be finite, non-negative, with 30 columns "
                                           r"\(one per point\); got shape " + re.escape(shape) + "$"):
            Problem(laws.Chinchilla(), X, y, Objective(), weights=weights)


def test_a_majorized_hessian_differs_only_in_its_gauss_newton_weights():
    # In log space the Hessian is J' diag(dpsi) J + sum psi * (the law's own curvature); in a
    # majorized row dpsi becomes min(delta / |r|, 1) (see Objective.terms), so the difference
    # between the two Hessians is J' diag(min(delta / |r|, 1) - 1{|r| <= delta}) J, written
    # out here. Value and gradient are the same. Two parameter vectors, the second majorized.
    law = laws.Chinchilla()
    X, y = synthetic_runs(30, noise=0.02)
    theta = np.array([[6.0, 7.5, 0.6, 0.33, 0.38], [6.1, 7.6, 0.5, 0.34, 0.37]])
    problem = Problem(law, X, y, Objective(delta=DELTA))
    exact = problem.value_grad_hess(theta, None)
    majorized = problem.value_grad_hess(theta, None, majorize=np.array([False, True]))
    f, J = law.log_predict_jac(theta, X)
    a = np.abs(f - np.log(y))
    assert (a[1] > DELTA).sum() > 10  # most residuals beyond delta: the weights really differ
    extra = np.einsum("n,np,nq->pq", np.minimum(DELTA / a[1], 1.0) - (a[1] <= DELTA), J[1], J[1])
    np.testing.assert_allclose(majorized[0], exact[0], rtol=1e-15)
    np.testing.assert_allclose(majorized[1], exact[1], rtol=1e-15)
    np.testing.assert_allclose(majorized[2][0], exact[2][0], rtol=1e-15)
    np.testing.assert_allclose(majorized[2][1] - exact[2][1], extra, rtol=1e-9, atol=1e-12 * np.abs(extra).max())


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_weighted_rows_give_each_row_its_own_objective(reduction):
    # A (2, n) weight matrix (two bootstrap resamples) evaluated for two parameter vectors
    # equals two single-row problems, for value, gradient (scipy's path) and Hessian.
    X, y = synthetic_runs(30, noise=0.01)
    W = np.random.default_rng(1).multinomial(30, np.full(30, 1 / 30), size=2).astype(float)
    theta = np.array([[6.0, 7.5, 0.6, 0.33, 0.38], [6.1, 7.6, 0.5, 0.34, 0.37]])
    batch = Problem(laws.Chinchilla(), X, y, Objective(reduction=reduction), weights=W)
    v, g = batch.value_grad(theta, None)
    _, _, H = batch.value_grad_hess(theta, None)
    for r in range(2):
        one = Problem(laws.Chinchilla(), X, y, Objective(reduction=reduction), weights=W[r])
        v1, g1, H1 = one.value_grad_hess(theta[r:r + 1], None)
        np.testing.assert_allclose(batch.value(theta, None)[r], v1[0], rtol=1e-12)
        np.testing.assert_allclose(v[r], v1[0], rtol=1e-12)
        np.testing.assert_allclose(g[r], g1[0], rtol=1e-10)
        np.testing.assert_allclose(H[r], H1[0], rtol=1e-10)


@pytest.mark.parametrize("space", ["log", "raw"])
def test_value_grad_picks_each_vectors_weight_row_and_matches_the_hessian_pass(space):
    # scipy's path (value_grad) with rows chosen out of order, in both residual spaces: the
    # gradient must be the one value_grad_hess gives for the same weight row (which is
    # itself checked against the analytic Hessian's law). Mutation testing found rows
    # ignored and the raw-space chain rule (psi * exp f) dropped without a failing test.
    X, y = synthetic_runs(30, noise=0.01)
    W = np.random.default_rng(2).multinomial(30, np.full(30, 1 / 30), size=3).astype(float)
    theta = np.array([[6.0, 7.5, 0.6, 0.33, 0.38], [6.1, 7.6, 0.5, 0.34, 0.37]])
    problem = Problem(laws.Chinchilla(), X, y, Objective(space=space), weights=W)
    rows = np.array([2, 0])
    v, g = problem.value_grad(theta, rows)
    v2, g2, _ = problem.value_grad_hess(theta, rows)
    np.testing.assert_allclose(v, v2, rtol=1e-12)
    np.testing.assert_allclose(g, g2, rtol=1e-10)
    step = 1e-6
    for k in range(theta.shape[1]):
        up, down = theta.copy(), theta.copy()
        up[:, k] += step
        down[:, k] -= step
        numeric = (problem.value(up, rows) - problem.value(down, rows)) / (2 * step)
        np.testing.assert_allclose(g[:, k], numeric, rtol=1e-5, atol=1e-9 * np.abs(v).max())


def test_generic_hessian_agrees_with_analytic():
    law = laws.Chinchilla()
    X, _ = synthetic_runs(30)
    theta = np.array([[6.0, 7.5, 0.6, 0.33, 0.38]])
    analytic = law.log_predict_hess(theta, X)[2]
    generic = laws.Law.log_predict_hess(law, theta, X)[2]
    np.testing.assert_allclose(generic, analytic, rtol=1e-6, atol=1e-8)


def test_noise_free_data_recovers_the_truth_exactly():
    # With exact data the global optimum is the truth (objective 0): anything looser than
    # optimizer precision would mean the solver stops early or the derivatives are wrong.
    X, y = synthetic_runs()
    result = fit(laws.Chinchilla(), X, y, starts=COARSE)
    assert result.converged
    for k, v in TRUTH.items():
        assert result.params[k] == pytest.approx(v, rel=1e-6), k
    assert result.objective_value < 1e-18


def test_noisy_recovery_within_four_standard_errors():
    # Tolerances from the injected noise, computed independently of the fitter: the
    # asymptotic standard error of an M-estimate is sigma * sqrt(diag((J^T J)^-1)) times a
    # factor between 1 (least squares) and sqrt(pi / 2) (least absolute deviations; Huber
    # with any delta lies between), J the Jacobian of the log prediction at the truth.
    from scalerepro.core.bootstrap import bootstrap

    noise = 0.002
    law = laws.Chinchilla()
    X, y = synthetic_runs(noise=noise, seed=3)
    truth = law.from_natural(**TRUTH)
    _, J = law.log_predict_jac(truth[None, :], X)
    se = np.sqrt(np.pi / 2) * noise * np.sqrt(np.diag(np.linalg.inv(J[0].T @ J[0])))
    # se is 0.031, 0.064, 0.0023, 0.0020, 0.0031 in (log A, log B, log E, alpha, beta):
    # 4 SE is 13% on A, 29% on B, 1% on E and 0.008 / 0.012 on the exponents
    result = fit(law, X, y, starts=COARSE)
    z = (result.theta - truth) / se
    assert np.all(np.abs(z) < 4), dict(zip(law.param_names, z))  # |z| > 4: p = 6e-5 each
    # The bootstrap measures that same spread: 300 resamples estimate an SE to about 4%,
    # and the ratio to the bound lies in [1 / sqrt(pi / 2), 1] = [0.80, 1] up to that.
    boot = bootstrap(result, X, y, n_resamples=300, seed=1)
    ratio = boot.theta_samples.std(axis=0, ddof=1) / se
    assert np.all((ratio > 0.7) & (ratio < 1.3)), dict(zip(law.param_names, ratio))


def test_sum_and_mean_reach_the_same_optimum_with_the_newton_solver():
    X, y = synthetic_runs(noise=0.01, seed=5)
    summed = fit(laws.Chinchilla(), X, y, starts=COARSE, reduction="sum")
    mean = fit(laws.Chinchilla(), X, y, starts=COARSE, reduction="mean")
    np.testing.assert_allclose(summed.theta, mean.theta, rtol=1e-5)
    assert mean.objective_value == pytest.approx(summed.objective_value / len(y), rel=1e-8)


def test_result_records_how_the_fit_was_made():
    X, y = synthetic_runs(noise=0.01)
    dropped = [{"index": 99, "reason": "outlier"}]
    record = fit(laws.Chinchilla(), X, y, starts=COARSE, dropped=dropped).record()
    assert record["form"]["name"] == "chinchilla"
    assert record["objective"].items() >= {"kind": "huber", "delta": 1e-3, "space": "log", "reduction": "sum"}.items()
    assert record["optimizer"]["name"] == "newton" and record["optimizer"]["tolerances"]
    assert record["initialization"]["n_starts"] == len(COARSE)
    assert record["points_used"] == len(y) and record["points_dropped"] == dropped
    assert record["converged"] is True
    assert np.isfinite(record["hessian_condition"])


def test_scipy_optimizers_and_grid_are_available():
    X, y = synthetic_runs(noise=0.01)
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :] + 0.05
    newton = fit(laws.Chinchilla(), X, y, starts=start)
    for optimizer in ["L-BFGS-B", "BFGS", "least_squares"]:
        r = fit(laws.Chinchilla(), X, y, starts=start, optimizer=optimizer)
        assert r.optimizer["name"] == optimizer
        # scipy's absolute tolerances may stop short of Newton's optimum, never below it
        assert newton.objective_value * (1 - 1e-9) <= r.objective_value <= newton.objective_value * 1.05
    # least_squares(loss="huber", f_scale=delta) minimises exactly the same objective
    ls = fit(laws.Chinchilla(), X, y, starts=start, optimizer="least_squares", options={"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15})
    assert ls.objective_value == pytest.approx(newton.objective_value, rel=1e-6)
    with pytest.warns(UserWarning, match="ill-conditioned"):  # a grid point is no optimum
        grid = fit(laws.Chinchilla(), X, y, starts=COARSE, optimizer="grid")
    assert not grid.converged and "grid" in grid.message


def test_a_non_converged_fit_is_flagged():
    X, y = synthetic_runs(noise=0.01)
    with pytest.warns(UserWarning, match="did not converge"):
        r = fit(laws.Chinchilla(), X, y, starts=COARSE[:3], options={"max_iter": 2})
    assert not r.converged
    assert any("did not converge" in w for w in r.warnings)


def test_bounds_are_respected_and_reported():
    X, y = synthetic_runs(noise=0.01)
    with pytest.warns(UserWarning, match="bound"):
        r = fit(laws.Chinchilla(), X, y, starts=COARSE, bounds={"alpha": (0.0, 0.3)})
    assert r.params["alpha"] <= 0.3 + 1e-12
    assert any("bound" in w for w in r.warnings)


@pytest.mark.parametrize("kwargs, message", [
    (dict(objective="l3"), r"^unknown objective 'l3'; valid: huber, mse, mae$"),
    (dict(space="log10"), r"^unknown space 'log10'; valid: log, raw$"),
    (dict(reduction="median"), r"^unknown reduction 'median'; valid: sum, mean$"),
    (dict(delta=0.0), r"^huber delta must be a positive finite number, got 0\.0$"),
    (dict(delta=float("inf")), r"^huber delta must be a positive finite number, got inf$"),
    (dict(optimizer="adam"), "unknown optimizer"),
])
def test_bad_options_are_rejected(kwargs, message):
    X, y = synthetic_runs(20)
    with pytest.raises(FitError, match=message):
        fit(laws.Chinchilla(), X, y, starts=COARSE, **kwargs)


def test_bad_data_are_rejected_before_fitting():
    X, y = synthetic_runs(20)
    y[3] = np.nan
    with pytest.raises(FitError, match=r"rows \[3\]"):
        fit(laws.Chinchilla(), X, y, starts=COARSE)


def test_unknown_law_lists_valid_forms():
    with pytest.raises(ValueError, match="valid forms: .*chinchilla"):
        get_law("kaplan2030")


def test_a_stalled_fit_says_whether_its_predictions_settled():
    # Runs from a law without an irreducible term: the best Chinchilla fit has E -> 0,
    # which log E reaches only in the limit, so Newton stops at max_iter while the
    # predictions have long settled. The diagnosis must say so, and name e.
    N = np.geomspace(1e7, 1e9, 6)
    D = 20 * N
    y = 400 * N ** -0.3 + 400 * D ** -0.3
    X = np.column_stack([N, D])
    start = laws.Chinchilla().from_natural(E=0.5, A=300, B=300, alpha=0.3, beta=0.3)[None, :]
    with pytest.warns(FitWarning) as caught:  # D = 20 N also leaves A, B collinear: ill-conditioned
        r = fit(laws.Chinchilla(), X, y, starts=start, options={"max_iter": 60})
    assert any("did not converge" in str(w.message) for w in caught)
    assert not r.converged
    stall = r.record()["stall_diagnosis"]
    assert stall["predictions_settled"] and "e" in stall["drifting"] and stall["drifting"]["e"] < 0
    assert "e -> -inf (E -> 0)" in r.message
    assert any("its predictions can be used" in w for w in r.warnings)


def test_a_start_still_travelling_is_not_called_settled():
    X, y = synthetic_runs(noise=0.01)
    with pytest.warns(FitWarning) as caught:  # one iteration from a grid corner may also be ill-conditioned
        r = fit(laws.Chinchilla(), X, y, starts=COARSE[:1], options={"max_iter": 1})
    assert any("did not converge" in str(w.message) for w in caught)
    assert not r.stall["predictions_settled"] and r.stall["max_log_prediction_change"] > 0.01
    assert "still moving" in r.message and "treat the parameters as unreliable" in r.warnings[0]


@pytest.mark.parametrize("space", ["log", "raw"])
def test_a_fit_keeps_its_data_for_residuals_objective_and_bootstrap(space):
    from scalerepro.core.bootstrap import bootstrap

    X, y = synthetic_runs(30, noise=0.01)
    result = fit(laws.Chinchilla(), X, y, space=space, starts=COARSE)
    predicted = result.predict(X)
    expected = np.log(y) - np.log(predicted) if space == "log" else y - predicted
    np.testing.assert_allclose(result.residuals(), expected, rtol=1e-12, atol=1e-15)
    assert result.objective_at() == pytest.approx(result.objective_value, rel=1e-12)
    # averaged = summed / n for unit weights; elsewhere = a Problem built by hand
    assert result.objective_at(reduction="mean") == pytest.approx(result.objective_value / len(y), rel=1e-12)
    other = result.theta + 0.01
    by_hand = Problem(laws.Chinchilla(), X, y, Objective(space=space)).value(other[None, :], np.array([0]))[0]
    assert result.objective_at(other) == pytest.approx(by_hand, rel=1e-12)
    assert result.objective_at(np.vstack([result.theta, other])) == pytest.approx([result.objective_value, by_hand])
    held, passed = bootstrap(result, n_resamples=8, seed=1), bootstrap(result, X, y, n_resamples=8, seed=1)
    np.testing.assert_array_equal(held.theta_samples, passed.theta_samples)


def test_a_weighted_fit_is_evaluated_with_its_weights():
    X, y = synthetic_runs(30, noise=0.01)
    w = np.random.default_rng(0).integers(0, 3, len(y)).astype(float)
    result = fit(laws.Chinchilla(), X, y, starts=COARSE, weights=w[None, :])
    assert result.objective_at() == pytest.approx(result.objective_value, rel=1e-12)


def test_warn_false_keeps_the_warnings_in_the_result_only(recwarn):
    # six points on one line D = 20 N: E and the A/B split are not identified, so the fit warns
    N = np.geomspace(1e7, 1e9, 6)
    X, y = np.c_[N, 20 * N], 400 * N ** -0.3 + 400 * (20 * N) ** -0.3
    quiet = fit(laws.Chinchilla(), X, y, starts=COARSE, warn=False)
    assert quiet.warnings and not [w for w in recwarn if issubclass(w.category, FitWarning)]
    with pytest.warns(FitWarning):
        loud = fit(laws.Chinchilla(), X, y, starts=COARSE)
    assert loud.warnings == quiet.warnings


def test_status_says_how_each_fit_ended():
    from scalerepro.core.fit import FitStatus

    X, y = synthetic_runs(40, noise=0.01)
    assert fit(laws.Chinchilla(), X, y, starts=COARSE).status is FitStatus.CONVERGED
    assert fit(laws.Chinchilla(), X, y, starts=COARSE, optimizer="grid", warn=False).status is FitStatus.GRID_ONLY
    stopped = fit(laws.Chinchilla(), X, y, starts=COARSE[:3], options={"max_iter": 2}, warn=False)
    assert stopped.status is FitStatus.MAX_ITERATIONS and stopped.record()["status"] == "max iterations"
    # six runs on one line without E: the predictions settle while E -> 0 (test_warn_false...)
    N = np.geomspace(1e7, 1e9, 6)
    edge = fit(laws.Chinchilla(), np.c_[N, 20 * N], 400 * N ** -0.3 + 400 * (20 * N) ** -0.3, starts=COARSE, warn=False)
    assert edge.status is FitStatus.SETTLED_AT_EDGE and edge.outcome.startswith("settled at the edge")


def test_status_is_the_one_stored_truth_of_how_a_fit_ended():
    # converged, outcome, the record and the warnings are all read from status: change the
    # status and every one of them follows; converged cannot be set beside it
    import dataclasses

    from scalerepro.core.fit import FitStatus, numerical_warnings

    X, y = synthetic_runs(40, noise=0.01)
    result = fit(laws.Chinchilla(), X, y, starts=COARSE)
    assert {"converged", "outcome"}.isdisjoint(f.name for f in dataclasses.fields(result))
    with pytest.raises(AttributeError):
        result.converged = False
    assert result.converged and result.record()["converged"] is True and result.outcome == "converged"
    stopped = dataclasses.replace(result, status=FitStatus.MAX_ITERATIONS)
    assert not stopped.converged and stopped.outcome == "not converged"
    assert stopped.record()["converged"] is False and stopped.record()["status"] == "max iterations"
    assert any("did not converge" in w and "unreliable" in w for w in numerical_warnings(stopped))
    edge = dataclasses.replace(result, status=FitStatus.SETTLED_AT_EDGE,
                               stall={"drifting": {"e": -3.0}, "predictions_settled": True})
    assert not edge.converged and edge.outcome == "settled at the edge: e -> -inf (E -> 0)"
    assert any("its predictions can be used" in w for w in numerical_warnings(edge))
    grid = dataclasses.replace(result, status=FitStatus.GRID_ONLY)
    assert not grid.converged and not any("did not converge" in w for w in numerical_warnings(grid))

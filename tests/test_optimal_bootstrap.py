"""Compute-optimal allocation and the bootstrap."""

import dataclasses
import time

import numpy as np
import pytest

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro.core import laws, optimal
from scalerepro.core import bootstrap as bootstrap_module
from scalerepro.core.bootstrap import BootstrapResult, bootstrap, resample_weights
from scalerepro.core.newton import newton_batch
from scalerepro.core.stats import percentile_interval
from scalerepro.core.fit import SETTLED_LOG_PREDICTION, fit


def test_allocation_minimises_the_loss_at_fixed_compute():
    # Ground truth by brute force: scan N along the budget line and find the minimum.
    params = dict(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
    C = 5.88e23
    out = optimal.compute_optimal(params, C)
    N = np.geomspace(1e9, 1e12, 200001)
    D = optimal.tokens_from_flops(C, N)
    loss = params["E"] + params["A"] / N ** params["alpha"] + params["B"] / D ** params["beta"]
    assert out["N_opt"] == pytest.approx(N[np.argmin(loss)], rel=1e-4)
    assert out["N_opt"] * out["D_opt"] * 6 == pytest.approx(C)
    assert out["a"] + out["b"] == pytest.approx(1.0)
    assert out["loss"] == pytest.approx(loss.min(), rel=1e-9)


def test_besiroglu_tokens_per_parameter():
    # Besiroglu et al. 2024 report about 20 tokens per parameter (18.3 at C = 5.88e23) and
    # a = 0.513 for their published coefficients.
    out = optimal.compute_optimal(dict(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658), 5.88e23)
    assert out["a"] == pytest.approx(0.513, abs=5e-4)
    assert out["tokens_per_param"] == pytest.approx(18.3, abs=0.3)


def test_allocation_broadcasts_over_samples():
    # Arrays of parameter samples (as the bootstrap passes them) give, element by element,
    # what each sample gives on its own; each of those is checked by brute force above.
    p = dict(E=np.array([1.7, 1.8]), A=np.array([400.0, 500.0]), B=np.array([400.0, 2000.0]),
             alpha=np.array([0.34, 0.35]), beta=np.array([0.28, 0.37]))
    budgets = np.array([1e21, 1e23])
    out = optimal.compute_optimal(p, budgets)
    for i in range(2):
        one = optimal.compute_optimal({k: v[i] for k, v in p.items()}, budgets[i])
        for key in ("a", "b", "G", "N_opt", "D_opt", "tokens_per_param", "loss"):
            assert out[key].shape == (2,) and out[key][i] == pytest.approx(one[key], rel=1e-12), key
    # and each is the brute-force minimum along its budget line
    N = np.geomspace(1e7, 1e13, 400001)
    for i in range(2):
        D = optimal.tokens_from_flops(budgets[i], N)
        loss = p["E"][i] + p["A"][i] / N ** p["alpha"][i] + p["B"][i] / D ** p["beta"][i]
        assert out["N_opt"][i] == pytest.approx(N[np.argmin(loss)], rel=1e-4)


def test_resample_weights_are_seeded_and_cluster_by_group():
    w1 = resample_weights(10, 5, seed=7)
    w2 = resample_weights(10, 5, seed=7)
    np.testing.assert_array_equal(w1, w2)
    assert (w1.sum(axis=1) == 10).all()
    groups = np.repeat(np.arange(4), 3)
    wg = resample_weights(12, 50, seed=1, groups=groups)
    # every point of a run gets the same multiplicity
    assert (wg.reshape(50, 4, 3).std(axis=2) == 0).all()
    assert (wg.sum(axis=1) == 12).all()


def test_bootstrap_is_deterministic_and_matches_a_looped_refit():
    law = laws.Chinchilla()
    X, y = law_runs(law, CHINCHILLA_TRUTH, 80, 0.01, 0, log10_N=(7, 10), log10_D=(9, 12))
    result = fit(law, X, y, starts=law.from_natural(**CHINCHILLA_TRUTH)[None, :])
    b1 = bootstrap(result, X, y, n_resamples=20, seed=3)
    b2 = bootstrap(result, X, y, n_resamples=20, seed=3)
    np.testing.assert_array_equal(b1.theta_samples, b2.theta_samples)
    # the vectorised refit of resample 0 equals an ordinary fit on the resampled points
    counts = resample_weights(80, 20, seed=3)[0].astype(int)
    idx = np.repeat(np.arange(80), counts)
    single = fit(law, X[idx], y[idx], starts=result.theta[None, :])
    np.testing.assert_allclose(b1.theta_samples[0], single.theta, rtol=1e-6)
    assert b1.n_failed == 0 and b1.record()["n_resamples"] == 20


def test_derived_quantities_have_point_estimates_and_an_indicator_is_a_share_of_resamples():
    # A derived quantity may be a yes/no question about the parameters (is the allocation
    # exponent a above 1/2?); its samples are 0/1, so their mean is the share of resamples
    # that say yes, and its interval is computed like any other (numpy cannot interpolate
    # booleans). The share is checked against the parameter samples themselves.
    law = laws.Chinchilla()
    X, y = law_runs(law, CHINCHILLA_TRUTH, 40, 0.05, 0, log10_N=(7, 10), log10_D=(9, 12))
    result = fit(law, X, y, starts=law.from_natural(**CHINCHILLA_TRUTH)[None, :])
    derived = {"a": lambda p: p["beta"] / (p["alpha"] + p["beta"]),
               "a_above_half": lambda p: p["beta"] / (p["alpha"] + p["beta"]) > 0.5}
    boot = bootstrap(result, n_resamples=40, seed=1, derived=derived)
    # the point estimates beside the intervals: the fit's parameters, and each derived
    # quantity at them
    a = result.params["beta"] / (result.params["alpha"] + result.params["beta"])
    assert boot.point_estimate == {**result.params, "a": pytest.approx(a, rel=1e-15), "a_above_half": float(a > 0.5)}
    share = np.mean(boot.samples["beta"] / (boot.samples["alpha"] + boot.samples["beta"]) > 0.5)
    assert boot.samples["a_above_half"].dtype == float and boot.samples["a_above_half"].mean() == share
    lo, hi = boot.interval("a_above_half")
    assert {lo, hi} <= {0.0, 1.0}


def test_bootstrap_defaults_empty_runs_and_refusals(capsys):
    law = laws.Chinchilla()
    X, y = law_runs(law, CHINCHILLA_TRUTH, 20, 0.0, 0, log10_N=(7, 10), log10_D=(9, 12))
    result = fit(law, X, y, starts=law.from_natural(**CHINCHILLA_TRUTH)[None, :])
    # the documented defaults, which the records state: 1000 resamples drawn from seed 0, a 95%
    # level, the fit's own data, and no progress bar unless asked for
    started = time.perf_counter()
    boot = bootstrap(result)
    took = time.perf_counter() - started
    assert (boot.n_resamples, boot.seed, boot.level, boot.n_failed, boot.n_settled) == (1000, 0, 0.95, 0, 0)
    assert boot.warm_start == "full-data optimum" and 0 < boot.seconds <= took
    np.testing.assert_array_equal(boot.theta_samples,
                                  bootstrap(result, X, y, n_resamples=1000, seed=0).theta_samples)
    assert capsys.readouterr().err == ""
    # no resamples is an empty bootstrap (no interval), not an error
    empty = bootstrap(result, n_resamples=0)
    assert empty.n_resamples == 0 and empty.theta_samples.shape == (0, law.n_params)
    assert all(np.isnan(v).all() for v in empty.intervals().values())
    with pytest.raises(ValueError, match=r"^n_resamples must be >= 0, got -1$"):
        bootstrap(result, X, y, n_resamples=-1)
    # X without y (or y without X) would silently resample the fit's own data instead
    for partial in ({"X": X}, {"y": y}):
        with pytest.raises(ValueError, match=r"^give both X and y \(to resample other data\), or neither"):
            bootstrap(result, **partial, n_resamples=2)
    with pytest.raises(ValueError, match=r"^give X and y: this FitResult does not hold its data$"):
        bootstrap(dataclasses.replace(result, problem=None), n_resamples=2)


def edge_fit():
    """Six runs with no irreducible term, fitted with E free: the fit sends E -> 0 (log E ->
    -inf) and stops at max_iter with settled predictions."""
    N = np.geomspace(1e7, 1e9, 6)
    X = np.column_stack([N, 20 * N])
    y = 400 * N ** -0.3 + 400 * (20 * N) ** -0.3
    start = laws.Chinchilla().from_natural(E=0.5, A=300, B=300, alpha=0.3, beta=0.3)[None, :]
    with pytest.warns(UserWarning):
        return fit(laws.Chinchilla(), X, y, starts=start, options={"max_iter": 60}), X, y


def test_refits_settled_at_an_edge_are_kept_at_their_limit():
    # No irreducible term in the data: the fit and every refit send E -> 0 (log E -> -inf)
    # and stop at max_iter with settled predictions. Dropping them would leave no interval;
    # keeping them where they stopped would bound E away from 0. They are kept at E = 0.
    result, X, y = edge_fit()
    boot = bootstrap(result, X, y, n_resamples=20, seed=0)
    assert boot.n_settled == 20 and boot.n_failed == 0
    assert boot.interval("E") == (0.0, 0.0)
    # only E ran off; the other parameters are kept where the refits stopped
    stopped = [laws.Chinchilla().natural(t) for t in boot.theta_samples]
    for name in ("A", "B", "alpha", "beta"):
        np.testing.assert_array_equal(boot.samples[name], [p[name] for p in stopped])
    assert np.isfinite(boot.theta_samples).all()
    assert boot.record()["n_settled_at_edge"] == 20
    assert any("settled" in w and "limit" in w for w in boot.warnings())


def test_refits_use_the_fits_own_stopping_rule_and_show_progress_when_asked(monkeypatch, capsys):
    # A fit made with its own tolerances is bootstrapped with the same ones: a refit that
    # stopped by another rule would make the interval's width partly the optimizer's.
    law = laws.Chinchilla()
    X, y = law_runs(law, CHINCHILLA_TRUTH, 20, 0.01, 0, log10_N=(7, 10), log10_D=(9, 12))
    rule = {"max_iter": 300, "ftol_rel": 1e-9, "gtol": 1e-5}
    result = fit(law, X, y, starts=law.from_natural(**CHINCHILLA_TRUTH)[None, :], options=rule)
    seen = []

    def recording(problem, start, *box, **options):  # box: the fit's bounds, passed on as given
        seen.append({k: options[k] for k in rule if k in options})
        return newton_batch(problem, start, *box, **options)

    monkeypatch.setattr(bootstrap_module, "newton_batch", recording)
    bootstrap(result, n_resamples=3, progress=True)
    assert seen == [rule]
    assert "bootstrap" in capsys.readouterr().err  # the progress bar, asked for


def test_a_failed_refit_does_not_stop_the_others_from_settling(monkeypatch):
    # The edge data of the test above, where every refit stalls and settles at E = 0, with
    # one refit made to fail outright (non-finite parameters): that one is excluded and
    # counted as failed; the others are still probed and, if settled, kept at their limit.
    result, X, y = edge_fit()
    refit_all = bootstrap_module._refit_all

    def one_fails(*args):
        theta, ok = refit_all(*args)
        theta[3] = np.nan
        return theta, ok

    probe, probed_rows, probe_rules = bootstrap_module.probe_stalled, [], []

    def recording_probe(problem, theta, rows, box, options):
        probed_rows.append(list(rows))
        probe_rules.append(options)
        th, v, conv, its, change = probe(problem, theta, rows, box, options)
        # the settled rule at its boundary: a change of exactly SETTLED_LOG_PREDICTION has
        # settled (resample 0), one a float step above it has not (resample 1: failed)
        change[:2] = SETTLED_LOG_PREDICTION, np.nextafter(SETTLED_LOG_PREDICTION, 1.0)
        return th, v, conv, its, change

    monkeypatch.setattr(bootstrap_module, "_refit_all", one_fails)
    monkeypatch.setattr(bootstrap_module, "probe_stalled", recording_probe)
    boot = bootstrap(result, X, y, n_resamples=20, seed=0)
    assert (boot.n_failed, boot.n_settled) == (2, 18)
    assert probed_rows == [[i for i in range(20) if i != 3]]  # each continued on its own resample
    rule = result.optimizer["tolerances"]  # ... and by the fit's own stopping rule
    assert probe_rules == [{k: rule[k] for k in ("max_iter", "ftol_rel", "gtol")}]
    assert boot.interval("E") == (0.0, 0.0)


# --------------------------------------------------------------- interval level
def boot_of(values, level=0.95):
    """A BootstrapResult holding given samples of one quantity x."""
    values = np.asarray(values, float)
    return BootstrapResult(samples={"x": values}, theta_samples=values[:, None], n_resamples=values.size,
                           n_failed=0, seed=0, level=level, resampling="points", warm_start="none",
                           seconds=0.0)


@pytest.mark.parametrize("level, expected", [(0.95, (2.5, 97.5)), (0.90, (5.0, 95.0)),
                                             (0.50, (25.0, 75.0)), (0.80, (10.0, 90.0))])
def test_percentile_interval_has_the_stated_level(level, expected):
    # Samples 0, 1, ..., 100: the q-th linearly interpolated percentile is q itself (worked
    # by hand), so a level-L interval is [(1-L)/2, 1-(1-L)/2] x 100, tails split equally.
    values = np.random.default_rng(0).permutation(np.arange(101.0))
    boot = boot_of(values, level)
    assert boot.interval("x") == pytest.approx(expected, abs=1e-12)
    assert boot.intervals()["x"] == pytest.approx(list(expected), abs=1e-12)
    assert boot.record()["intervals"]["x"] == pytest.approx(list(expected), abs=1e-12)
    assert boot.record()["level"] == level


def test_percentile_interval_equals_numpy_on_skewed_samples():
    values = np.random.default_rng(5).lognormal(0.0, 1.0, 999)
    boot = boot_of(values)
    assert boot.interval("x") == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), rel=1e-12)
    assert boot.interval("x", 0.8) == pytest.approx(tuple(np.percentile(values, [10, 90])), rel=1e-12)
    assert boot.intervals(0.5)["x"] == pytest.approx(list(np.percentile(values, [25, 75])), rel=1e-12)
    assert boot.standard_errors()["x"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)


def test_percentile_interval_reads_exact_integers_beyond_int64_as_floats():
    # Compute budgets written as Python integers (6 N D at Chinchilla scale, ~6e23 FLOPs) do
    # not fit in int64: numpy would hold them as objects and could not interpolate them.
    # 1e23, 2e23 and 3e23: the 25th and 75th percentiles are 1.5e23 and 2.5e23 (by hand).
    budgets = [10**23, 2 * 10**23, 3 * 10**23]
    assert percentile_interval(budgets, 0.5) == pytest.approx((1.5e23, 2.5e23), rel=1e-15)


def test_interval_with_an_infinite_sample_uses_order_statistics():
    # 1, ..., 49 and +inf (a refit settled at B -> inf): with 50 samples the inverted-CDF
    # p-th percentile is order statistic ceil(50 p) (worked by hand): 2.5% -> ceil(1.25) = 2,
    # 97.5% -> ceil(48.75) = 49; at level 0.5, 25% -> 13 and 75% -> 38.
    values = np.r_[np.arange(1.0, 50.0), np.inf]
    assert boot_of(values).interval("x") == (2.0, 49.0)
    assert boot_of(values[::-1]).interval("x", 0.5) == (13.0, 38.0)


@pytest.mark.filterwarnings("error")  # numpy's warnings for one sample or an inf would reach the user
def test_standard_errors_from_two_samples_and_none_from_one_or_an_infinite_draw():
    # Two draws 1 and 3: sample standard deviation sqrt(((1-2)^2 + (3-2)^2) / (2 - 1)) = sqrt(2),
    # worked by hand. One draw has none (nan); a draw at its limit (inf) makes it undefined (nan),
    # both said quietly: the interval and the record say why, numpy's RuntimeWarning would not.
    assert boot_of([1.0, 3.0]).standard_errors()["x"] == pytest.approx(np.sqrt(2.0), rel=1e-15)
    assert np.isnan(boot_of([2.0]).standard_errors()["x"])
    assert np.isnan(boot_of([1.0, 2.0, np.inf]).standard_errors()["x"])


def test_no_successful_resample_gives_no_interval():
    boot = boot_of(np.array([]))
    boot.n_resamples, boot.n_failed = 5, 5
    lo, hi = boot.interval("x")
    assert np.isnan(lo) and np.isnan(hi)
    assert boot.failed_share == 1.0 and "all 5 bootstrap resamples (100%) failed" in boot.warnings()[0]


# --------------------------------------------------------------- cluster bootstrap
def test_cluster_bootstrap_refits_whole_runs():
    # Eight runs of three checkpoints each. Every resample must give each run's points one
    # multiplicity: the refits equal fits on the runs repeated as resample_weights(groups)
    # says, and differ from what resampling single points would give.
    law = laws.Chinchilla()
    X, y = law_runs(law, CHINCHILLA_TRUTH, 24, 0.01, 2, log10_N=(7, 10), log10_D=(9, 12))
    runs = np.repeat([f"run{i}" for i in range(8)], 3)
    result = fit(law, X, y, starts=law.from_natural(**CHINCHILLA_TRUTH)[None, :])
    boot = bootstrap(result, X, y, n_resamples=4, seed=11, groups=runs)
    assert boot.resampling == "runs (cluster)"
    weights = resample_weights(24, 4, seed=11, groups=runs)
    assert (weights.reshape(4, 8, 3).std(axis=2) == 0).all()
    for r in range(4):
        idx = np.repeat(np.arange(24), weights[r].astype(int))
        single = fit(law, X[idx], y[idx], starts=result.theta[None, :])
        assert single.converged
        np.testing.assert_allclose(boot.theta_samples[r], single.theta, rtol=1e-6)
    assert boot.n_failed == 0
    by_points = bootstrap(result, X, y, n_resamples=4, seed=11)
    assert by_points.resampling == "points"
    assert not np.allclose(by_points.theta_samples, boot.theta_samples, rtol=1e-3)


def test_covariance_of_samples_and_of_the_fitted_parameterization():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(50, 3))
    boot = BootstrapResult(samples={"x": theta[:, 0] ** 2, "y": theta[:, 1]}, theta_samples=theta,
                           n_resamples=50, n_failed=0, seed=0, level=0.95, resampling="points",
                           warm_start="none", seconds=0.0)
    np.testing.assert_allclose(boot.covariance(), np.cov(theta.T), rtol=1e-12)
    np.testing.assert_allclose(boot.covariance(["y", "x"]), np.cov([theta[:, 1], theta[:, 0] ** 2]), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:ill-conditioned Hessian")  # MAE has no curvature: expected here
def test_a_scipy_fit_is_bootstrapped_with_its_own_optimizer_one_resample_at_a_time():
    # The same bootstrap() serves every optimizer: a scipy fit's resamples are refitted
    # with that optimizer from the full-data optimum, each on its own weights (here
    # checked against doing exactly that by hand), whole runs resampled with groups.
    X, y = law_runs(laws.Chinchilla(), CHINCHILLA_TRUTH, 40, noise=0.01, seed=3,
                    log10_N=(7, 9), log10_D=(9, 11))
    result = fit(laws.Chinchilla(), X, y, objective="mae", optimizer="L-BFGS-B",
                 starts=laws.Chinchilla().from_natural(**CHINCHILLA_TRUTH)[None, :])
    groups = np.repeat(np.arange(20), 2)
    boot = bootstrap(result, X, y, n_resamples=4, seed=5, groups=groups)
    weights = resample_weights(len(y), 4, 5, groups)
    for w, alpha in zip(weights, boot.samples["alpha"]):
        by_hand = fit(laws.Chinchilla(), X, y, objective="mae", optimizer="L-BFGS-B", starts=result.theta[None, :],
                      weights=w[None, :])
        assert alpha == pytest.approx(by_hand.params["alpha"], rel=1e-12)
    assert boot.warm_start == "full-data optimum, scipy L-BFGS-B per resample"
    assert boot.resampling == "runs (cluster)" and boot.n_resamples == 4


@pytest.mark.filterwarnings("ignore:ill-conditioned Hessian")  # MAE has no curvature: expected here
def test_a_scipy_refit_that_does_not_converge_is_failed_never_settled(monkeypatch):
    # Only a Newton refit can be continued to see whether it settled; a scipy refit that
    # stops unconverged (finite parameters, ok False) is excluded and counted as failed.
    X, y = law_runs(laws.Chinchilla(), CHINCHILLA_TRUTH, 40, noise=0.01, seed=3, log10_N=(7, 9), log10_D=(9, 11))
    result = fit(laws.Chinchilla(), X, y, objective="mae", optimizer="L-BFGS-B",
                 starts=laws.Chinchilla().from_natural(**CHINCHILLA_TRUTH)[None, :])
    refit_all = bootstrap_module._refit_all

    def second_unconverged(*args):
        theta, ok = refit_all(*args)
        ok[1] = False
        return theta, ok

    monkeypatch.setattr(bootstrap_module, "_refit_all", second_unconverged)
    boot = bootstrap(result, X, y, n_resamples=4, seed=5)
    assert (boot.n_failed, boot.n_settled, len(boot.samples["alpha"])) == (1, 0, 3)


def test_exact_integers_beyond_int64_give_the_same_float_allocation():
    # numpy keeps lists of Python ints beyond int64 (9.2e18) as object arrays, which break
    # np.isnan and friends downstream: budgets of 10**24 FLOPs written as ints, or
    # coefficients written so, must give the float64 answer of the float input
    params = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    pairs = [(optimal.compute_optimal(params, [10**24, 10**25]), optimal.compute_optimal(params, [1e24, 1e25])),
             (optimal.compute_optimal(dict(params, A=[10**20] * 2, B=[10**21] * 2, E=[10**20] * 2), 1e24),
              optimal.compute_optimal(dict(params, A=[1e20] * 2, B=[1e21] * 2, E=[1e20] * 2), 1e24)),
             (dict(zip("ab", optimal.allocation_exponents([10**20] * 2, 0.3))),
              dict(zip("ab", optimal.allocation_exponents([1e20] * 2, 0.3)))),
             (dict(zip("ab", optimal.allocation_exponents(0.3, [10**20] * 2))),
              dict(zip("ab", optimal.allocation_exponents(0.3, [1e20] * 2))))]
    for got, want in pairs:
        for q in want:
            assert np.asarray(got[q]).dtype == np.float64, q
            np.testing.assert_allclose(got[q], want[q], rtol=1e-15, err_msg=q)
    flops = optimal.training_flops([10**20] * 2, [10**21] * 2)
    assert flops.dtype == np.float64
    np.testing.assert_allclose(flops, [6e41, 6e41], rtol=1e-15)  # C = 6 N D, by hand
    tokens = optimal.tokens_from_flops([6 * 10**24] * 2, [10**20] * 2)
    assert tokens.dtype == np.float64
    np.testing.assert_allclose(tokens, [1e4, 1e4], rtol=1e-15)  # D = C / (6 N), by hand
    constant = optimal.allocation_constant([10**20] * 2, [10**21] * 2, 0.3, 0.3)
    assert constant.dtype == np.float64
    np.testing.assert_allclose(constant, optimal.allocation_constant([1e20] * 2, [1e21] * 2, 0.3, 0.3), rtol=1e-15)


def test_allocation_table_counts_each_undefined_resample_and_gives_no_interval_without_one():
    # resamples with A and B infinite have no allocation (nan): 2 of 4 here, counted per
    # budget and left out of the intervals; with only such resamples there is no interval
    params = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    samples = {k: np.array([v, 1.01 * v, v, v]) for k, v in params.items()}
    samples["A"][2:] = samples["B"][2:] = np.inf
    table = optimal.allocation_table(params, [1e21, 1e22], 1e20, samples=samples)
    assert list(table["undefined_samples"]) == [2, 2]
    defined = optimal.compute_optimal({k: v[:2] for k, v in samples.items()}, 1e21)
    assert table.loc[0, "N_opt_interval"] == pytest.approx(list(percentile_interval(defined["N_opt"], 0.95)))
    only_undefined = optimal.allocation_table(params, [1e21], 1e20, samples={k: v[2:] for k, v in samples.items()})
    assert only_undefined.loc[0, "undefined_samples"] == 2
    for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
        assert only_undefined.loc[0, f"{q}_interval"] is None, q

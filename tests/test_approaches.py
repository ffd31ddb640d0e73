"""Chinchilla's three approaches on sweeps from a known loss surface, the approach-2 bias
for off-centre IsoFLOP grids, the diagnostics on bad sweeps, and the intervals' contract.

The surface is Hoffmann et al.'s approach-3 fit, L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28:
alpha != beta, so the IsoFLOP curves are lopsided and the true allocation exponent is
a = beta/(alpha+beta) = 0.4516 (not the 0.5 a symmetric surface would give).
"""

import numpy as np
import pandas as pd
import pytest

from scalerepro.analyses import approaches as ap
from scalerepro.core import laws, optimal
from scalerepro.analyses.approaches import ApproachError

CHINCHILLA = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)      # alpha > beta
MIRRORED = dict(E=1.69, A=410.7, B=406.4, alpha=0.28, beta=0.34)        # beta > alpha
BUDGETS = 6e18 * np.geomspace(1, 500, 9)                                # Hoffmann's span, 6e18-3e21


def true_a(p):
    return p["beta"] / (p["alpha"] + p["beta"])


def loss(p, N, D):
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


def n_opt(p, C):
    return optimal.compute_optimal(p, C)["N_opt"]


def isoflop_sweep(p, *, half_width=np.log(4), sizes=9, drift=0.0, offset=0.0, budgets=BUDGETS):
    """IsoFLOP runs: at each budget, ``sizes`` model sizes log-uniform over +-half_width
    (natural log) around a centre exp(offset + drift log(C/C_0)) times the true optimum."""
    frames = []
    for c in budgets:
        centre = n_opt(p, c) * np.exp(offset + drift * np.log(c / budgets[0]))
        N = centre * np.exp(np.linspace(-half_width, half_width, sizes))
        D = c / (6 * N)
        frames.append(pd.DataFrame({"N": N, "D": D, "C": c, "budget": c, "loss": loss(p, N, D)}))
    return pd.concat(frames, ignore_index=True)


def slope_error_bound(log_c, max_point_error):
    """Largest change of a least-squares slope when every y moves by at most e:
    e * sum|x - mean| / sum (x - mean)^2 (the worst case puts the errors' signs on dx)."""
    dx = log_c - log_c.mean()
    return max_point_error * np.abs(dx).sum() / (dx ** 2).sum()


# ------------------------------------------------------------------ approach 3
def test_approach3_recovers_a_exactly():
    """Noise-free runs: the fit's optimum is the truth (zero residuals), so a is exact to
    the solver's tolerance."""
    rng = np.random.default_rng(3)
    N, D = 10 ** rng.uniform(7, 10, 60), 10 ** rng.uniform(9, 12, 60)
    runs = pd.DataFrame({"N": N, "D": D, "loss": loss(CHINCHILLA, N, D)})
    law = laws.Chinchilla()
    starts = law.from_natural(**CHINCHILLA)[None, :] + rng.normal(0, 0.3, (20, 5))
    r = ap.approach3(runs, starts=starts, n_resamples=50)
    assert r.approach == 3 and r.law_fit.converged
    assert r.a == pytest.approx(true_a(CHINCHILLA), abs=1e-6)
    assert r.b == pytest.approx(1 - true_a(CHINCHILLA), abs=1e-6)
    assert r.n_opt(1e21) == pytest.approx(n_opt(CHINCHILLA, 1e21), rel=1e-4)
    assert r.a_interval[0] <= r.a <= r.a_interval[1]
    assert r.record()["points_used"] == 60


# ------------------------------------------------------------------ approach 2
@pytest.mark.parametrize("surface", [CHINCHILLA, MIRRORED])
@pytest.mark.parametrize("offset", [0.0, 0.7])
def test_approach2_exact_when_every_budget_has_the_same_grid_around_its_optimum(surface, offset):
    """At fixed C, with u = log(N / N_opt), L - E = K(C) (exp(-alpha u)/alpha + exp(beta u)/beta)
    exactly: the curve's shape in u does not depend on C. The same u-grid at every budget
    (centred, or off by the same factor) therefore moves every parabola vertex by the
    same amount: a is exact (to rounding, 1e-9), only the coefficient k_N is biased."""
    r = ap.approach2(isoflop_sweep(surface, offset=offset), n_resamples=0)
    assert r.a == pytest.approx(true_a(surface), abs=1e-9)
    assert r.b == pytest.approx(1 - true_a(surface), abs=1e-9)


def test_approach2_coefficient_bias_matches_the_derived_leading_term():
    """Centred grid: the vertex sits at u = -(beta - alpha) lam / 6 with lam = sum v^4 / sum v^2
    (derived in approach2's docstring). Chinchilla's surface has alpha > beta, so N_opt is
    overestimated (and D_opt under-): the parabola under-trains. The leading term should
    carry the whole bias to within 5% at this grid width (next terms are O(u^4))."""
    v = np.linspace(-np.log(4), np.log(4), 9)
    lam = np.sum(v ** 4) / np.sum(v ** 2)
    for p in (CHINCHILLA, MIRRORED):
        r = ap.approach2(isoflop_sweep(p), n_resamples=0)
        bias = r.log_kn - np.log(n_opt(p, 1.0))
        predicted = -(p["beta"] - p["alpha"]) * lam / 6
        assert np.sign(bias) == np.sign(predicted)
        assert bias == pytest.approx(predicted, rel=0.05)


def test_off_centre_grids_bias_the_parabola_exponent_in_the_derived_direction():
    """Grids whose centre drifts off the optimum as compute grows (centred on a guessed
    exponent that is 0.15 off, up or down). Derived leading term: the vertex moves by
    (beta - alpha) * delta^2 / 2 when the grid is delta off-centre, so when |delta| grows
    with C the exponent a moves DOWN for alpha > beta (Chinchilla's surface) and UP for
    beta > alpha, whichever way the grid drifts. The next term is odd in delta (it is all
    there is on a symmetric surface), so the mean over the two drift directions isolates
    the leading term: it must match the prediction to 10%."""
    log_c = np.log(BUDGETS)
    for p, direction in ((CHINCHILLA, -1), (MIRRORED, +1)):
        errors = []
        for drift in (0.15, -0.15):
            r = ap.approach2(isoflop_sweep(p, drift=drift), n_resamples=0)
            errors.append(r.a - true_a(p))
            assert np.sign(errors[-1]) == direction, (p, drift, errors[-1])
            assert "off_centre_grid" in {d.code for d in r.diagnostics}
        delta = 0.15 * (log_c - log_c[0])
        predicted = np.polyfit(log_c, (p["beta"] - p["alpha"]) * delta ** 2 / 2, 1)[0]
        assert np.mean(errors) == pytest.approx(predicted, rel=0.10)
    # a symmetric surface has no leading term: the drift's direction decides the sign
    sym = dict(E=1.8, A=400.0, B=400.0, alpha=0.3, beta=0.3)
    up, down = (ap.approach2(isoflop_sweep(sym, drift=s), n_resamples=0).a - 0.5 for s in (0.15, -0.15))
    assert up == pytest.approx(-down, rel=1e-6) and abs(up) > 1e-4


def test_approach2_on_a_realistic_sweep_within_the_derived_tolerance():
    """A sweep as labs run it: one global ladder of sizes (8 per decade), at each budget the
    ladder sizes within a factor 4 of a guess, three learning rates per size (the best one
    is the surface, the others 1-3% worse). Each budget's grid is then off-centre by at
    most half a ladder step, delta <= log(10)/16, and the leading vertex error differs between
    budgets by at most |beta - alpha| * 3 delta^2 / 6. The tolerance is that spread carried
    through the least-squares slope (slope_error_bound), doubled for the next-order terms."""
    ladder = 10 ** np.arange(6, 12, 1 / 8)
    frames = []
    for c in BUDGETS:
        N = ladder[np.abs(np.log(ladder / n_opt(CHINCHILLA, c))) <= np.log(4)]
        D = c / (6 * N)
        for penalty in (1.0, 1.01, 1.03):
            frames.append(pd.DataFrame({"N": N, "D": D, "C": c, "loss": loss(CHINCHILLA, N, D) * penalty}))
    runs = pd.concat(frames, ignore_index=True)
    r = ap.approach2(runs, budgets=BUDGETS, n_resamples=200)
    delta_max = np.log(10) / 16
    spread = abs(CHINCHILLA["beta"] - CHINCHILLA["alpha"]) * 3 * delta_max ** 2 / 6
    tol = 2 * slope_error_bound(np.log(BUDGETS), spread)
    assert abs(r.a - true_a(CHINCHILLA)) <= tol, (r.a, tol)
    assert {d.code for d in r.diagnostics} >= {"duplicate_nd"}          # the LR sweep was reduced
    assert r.points["n_sizes"].min() >= 9 and r.points["used"].all()


def test_approach2_with_noise_covers_the_truth_and_resamples_within_budgets():
    rng = np.random.default_rng(11)
    runs = isoflop_sweep(CHINCHILLA, sizes=12, half_width=np.log(5))
    runs["loss"] *= np.exp(rng.normal(0, 0.003, len(runs)))
    r = ap.approach2(runs, n_resamples=400, seed=1)
    lo, hi = r.a_interval
    assert lo < true_a(CHINCHILLA) < hi and hi - lo < 0.1
    # b is estimated from parabolas in log D: under C = 6ND it mirrors a
    assert r.b == pytest.approx(1 - r.a, abs=1e-9)
    assert r.samples["a"].size == 400 - r.n_failed


def test_akima_method_recovers_a_on_a_dense_sweep():
    """The spline argmin is exact up to its evaluation grid: 25 grid steps per gap between
    sizes, i.e. log-step h = 2 log(4) / (25 * 16) per budget; each optimum is within one
    step, so a is within slope_error_bound(h)."""
    runs = isoflop_sweep(CHINCHILLA, sizes=17)
    r = ap.approach2(runs, method="akima", n_resamples=0)
    h = 2 * np.log(4) / (25 * 16)
    assert abs(r.a - true_a(CHINCHILLA)) <= slope_error_bound(np.log(BUDGETS), h)


# ------------------------------------------------------------------ approach 1
def checkpoint_runs(p, per_decade=20, checkpoints=80):
    """Training curves: a ladder of model sizes, each with log-spaced checkpoints whose
    loss is the surface at (N, tokens so far)."""
    ladder = 10 ** np.arange(7, 11.0001, 1 / per_decade)
    D = np.geomspace(1e8, 1e13, checkpoints)
    return pd.concat([pd.DataFrame({"run": f"run{i}", "N": n, "D": D, "loss": loss(p, n, D)})
                      for i, n in enumerate(ladder)], ignore_index=True)


def test_approach1_recovers_a_within_one_ladder_step():
    """At each compute the envelope's winner is one of the two ladder sizes bracketing the
    true optimum (the loss is unimodal in log N), so its log N is within one ladder step
    h = log(10)/20 of log N_opt; the exponent is then within slope_error_bound(h)."""
    r = ap.approach1(checkpoint_runs(CHINCHILLA), n_resamples=100)
    used = r.points[r.points["used"]]
    h = np.log(10) / 20
    errors = np.log(used["N"].to_numpy() / n_opt(CHINCHILLA, used["C"].to_numpy()))
    assert np.abs(errors).max() <= h
    tol = slope_error_bound(np.log(used["C"].to_numpy()), h)
    assert abs(r.a - true_a(CHINCHILLA)) <= tol, (r.a, tol)
    assert abs(r.b - (1 - true_a(CHINCHILLA))) <= tol
    assert r.method["envelope"].startswith("each run's loss curve")
    assert r.a_interval is not None and r.n_resamples == 100


def test_approach1_on_final_losses_uses_the_minimum_per_compute_bin():
    """No checkpoints: the lowest-loss run per compute bin. On IsoFLOP-shaped final runs
    from a ladder (10 per decade) the bin minimum is the best ladder size at that budget,
    within one step of the optimum, so the same bound holds."""
    ladder = 10 ** np.arange(6, 12, 1 / 10)
    frames = []
    for c in BUDGETS:
        N = ladder[np.abs(np.log(ladder / n_opt(CHINCHILLA, c))) <= np.log(6)]
        frames.append(pd.DataFrame({"N": N, "C": c, "loss": loss(CHINCHILLA, N, c / (6 * N))}))
    r = ap.approach1(pd.concat(frames, ignore_index=True), n_resamples=0)
    assert r.method["envelope"].startswith("lowest-loss run per compute bin")
    tol = slope_error_bound(np.log(BUDGETS), np.log(10) / 10)
    assert abs(r.a - true_a(CHINCHILLA)) <= tol
    assert r.a_interval is None and "n_resamples = 0" in r.no_interval_reason


def test_envelope_points_at_the_edge_of_the_available_sizes_are_left_out():
    """Where the smallest model in the sweep still wins, the envelope is not a minimum."""
    runs = checkpoint_runs(CHINCHILLA, per_decade=5)
    runs = runs[runs["N"] >= 1e9]               # at low compute the optimum is below 1e9
    r = ap.approach1(runs, n_resamples=0)
    edge = [d for d in r.diagnostics if d.code == "optimum_at_edge"]
    assert edge and (~r.points["used"]).sum() > 0
    low = r.points[r.points["C"] < 1e19]
    assert not low["used"].any()


def test_bootstrap_resamples_whole_runs():
    """Approach 1's bootstrap draws runs, not checkpoints: with 80 checkpoints per run, a
    bootstrap over rows would keep nearly every run in every resample (interval width ~0)."""
    labels, counts = ap._run_weights(np.repeat(np.arange(30), 5), 200, seed=0)
    assert len(labels) == 30 and counts.shape == (200, 30)
    assert np.all(counts.sum(axis=1) == 30)
    assert 0.55 < (counts > 0).mean() < 0.72              # 1 - 1/e of runs present per resample
    r = ap.approach1(checkpoint_runs(CHINCHILLA, per_decade=5), n_resamples=200)
    assert r.a_interval[1] - r.a_interval[0] > 0.005


# ------------------------------------------------------------------ diagnostics on bad sweeps
def one_budget(c, relative_sizes):
    N = n_opt(CHINCHILLA, c) * relative_sizes
    return pd.DataFrame({"N": N, "C": c, "budget": c, "loss": loss(CHINCHILLA, N, c / (6 * N))})


def test_diagnostics_fire_on_edge_off_centre_and_few_size_budgets():
    frames = [isoflop_sweep(CHINCHILLA, budgets=BUDGETS[:5]).drop(columns="D"),
              one_budget(BUDGETS[5], np.geomspace(0.05, 0.5, 7)),    # all below the optimum: edge
              one_budget(BUDGETS[6], np.geomspace(0.5, 2, 4)),       # 4 sizes only
              one_budget(BUDGETS[7], np.geomspace(1 / 30, 1.5, 9))]  # optimum near the top of the grid
    r = ap.approach2(pd.concat(frames, ignore_index=True), n_resamples=50)
    by_code = {}
    for d in r.diagnostics:
        by_code.setdefault(d.code, []).append(d)
    assert [d.subjects for d in by_code["few_sizes"]] == [(f"budget {BUDGETS[6]:.3g}",)]
    assert (f"budget {BUDGETS[5]:.3g}",) in [d.subjects for d in by_code["optimum_at_edge"]]
    assert [d.subjects for d in by_code["off_centre_grid"]] == [(f"budget {BUDGETS[7]:.3g}",)]
    points = r.points.set_index("C")
    assert not points.loc[BUDGETS[5], "used"] and points.loc[BUDGETS[7], "used"]
    assert r.record()["points_dropped"] == 1
    # the well-designed budgets alone raise nothing but the missing interval's absence
    clean = ap.approach2(isoflop_sweep(CHINCHILLA), n_resamples=20)
    assert {d.code for d in clean.diagnostics} == set()


def test_approach2_refuses_what_it_cannot_analyse():
    runs = isoflop_sweep(CHINCHILLA)
    with pytest.raises(ApproachError, match="budget"):
        ap.approach2(runs.drop(columns="budget"))
    with pytest.raises(ApproachError, match="method"):
        ap.approach2(runs, method="cubic")
    bad = runs.copy()
    bad.loc[3, "loss"] = -1.0
    with pytest.raises(ApproachError, match=r"column 'loss'.*row\(s\) \[3\]"):
        ap.approach2(bad)
    with pytest.raises(ApproachError, match="C .*or D"):
        ap.approach1(runs[["N", "loss"]])
    edge = runs[runs["N"] < 0.8 * n_opt(CHINCHILLA, runs["C"])]
    with pytest.raises(ApproachError, match="at least 2"):
        ap.approach2(edge)


def test_budgets_binning_puts_runs_on_the_nearest_budget():
    runs = isoflop_sweep(CHINCHILLA).drop(columns="budget")
    runs["C"] *= np.exp(np.random.default_rng(0).uniform(-0.1, 0.1, len(runs)))   # +-10% off the budget
    stray = pd.DataFrame({"N": [1e9], "D": [1e16 / 6e9], "C": [1e16], "loss": [3.0]})
    assigned, left = ap.assign_budgets(pd.concat([runs, stray], ignore_index=True), BUDGETS)
    assert len(assigned) == len(runs) and len(left) == 1 and "from every listed budget" in left["reason"].iloc[0]
    assert (np.abs(np.log(assigned["C"] / assigned["budget"])) <= 0.1 + 1e-12).all()
    r = ap.approach2(pd.concat([runs, stray], ignore_index=True), budgets=BUDGETS, n_resamples=0)
    assert any(d.code == "dropped_points" for d in r.diagnostics)


# ------------------------------------------------------------------ the interval contract
def test_no_interval_is_explicit_and_the_default_is_seeded():
    runs = isoflop_sweep(CHINCHILLA, sizes=12)
    runs["loss"] *= np.exp(np.random.default_rng(2).normal(0, 0.003, len(runs)))
    none = ap.approach2(runs, n_resamples=0)
    assert none.a_interval is None and none.b_interval is None and none.band([1e20]) is None
    assert "no bootstrap" in none.no_interval_reason
    assert [d.code for d in none.diagnostics if d.code == "no_interval"] == ["no_interval"]
    assert none.record()["intervals"] is None and none.record()["no_interval_reason"]
    assert "no interval: no bootstrap" in str(none.summary())
    first, second = ap.approach2(runs), ap.approach2(runs)          # defaults: 1000 resamples, seed 0
    np.testing.assert_array_equal(first.samples["a"], second.samples["a"])
    assert first.seed == ap.DEFAULT_SEED and first.n_resamples == ap.DEFAULT_RESAMPLES
    assert first.a_interval[1] > first.a_interval[0]
    lo, hi = first.band(np.array([1e19, 1e21]))
    assert np.all(lo < first.n_opt([1e19, 1e21])) and np.all(first.n_opt([1e19, 1e21]) < hi)


def test_all_three_share_one_result_type_and_compare_side_by_side():
    runs = checkpoint_runs(CHINCHILLA, per_decade=5, checkpoints=30)
    fits = [ap.approach1(runs, n_resamples=30)]
    iso = isoflop_sweep(CHINCHILLA)
    fits.append(ap.approach2(iso, n_resamples=30))
    law = laws.Chinchilla()
    fits.append(ap.approach3(iso, starts=law.from_natural(**CHINCHILLA)[None, :], n_resamples=30))
    assert all(isinstance(f, ap.AllocationFit) for f in fits)
    table = ap.compare(fits)
    assert list(table["approach"]) == ["approach 1 (lower envelope)", "approach 2 (IsoFLOP profiles)",
                                       "approach 3 (parametric fit)"]
    assert np.allclose(table["a"], true_a(CHINCHILLA), atol=0.02)
    for f in fits:
        rec = f.record()
        assert set(rec) >= {"a", "b", "intervals", "points", "diagnostics", "method", "bootstrap"}
        assert rec["bootstrap"]["seed"] == ap.DEFAULT_SEED
    import matplotlib
    matplotlib.use("Agg")
    ax = ap.plot_allocation(fits)
    assert len(ax.get_lines()) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 5 and "per-budget optima (approach 2)" in legend


def test_akima_with_noise_sd_uses_porian_noise_replicates():
    rng = np.random.default_rng(5)
    runs = isoflop_sweep(CHINCHILLA, sizes=12, half_width=np.log(5))
    runs["loss"] *= np.exp(rng.normal(0, 0.002, len(runs)))
    r = ap.approach2(runs, method="akima", noise_sd=0.006, n_resamples=200)
    assert r.method["interval"].startswith("noise replicates")
    lo, hi = r.a_interval
    assert lo < true_a(CHINCHILLA) < hi
    plain = ap.approach2(runs, method="akima", noise_sd=0.006, n_resamples=0)
    assert plain.a_interval is None and "no bootstrap" in plain.no_interval_reason


def test_checkpoints_of_one_run_must_share_its_size():
    runs = checkpoint_runs(CHINCHILLA, per_decade=2, checkpoints=5)
    runs.loc[runs["run"] == "run1", "N"] *= np.linspace(1, 2, 5)
    with pytest.raises(ApproachError, match=r"'N' changes within run\(s\) \['run1'\]"):
        ap.approach1(runs)


def test_compute_bins_keep_runs_planned_at_round_budgets_together():
    """Budgets at round numbers (1e18, 1e19, ...) lie on the edges of log-spaced bins, and
    C = 6ND recomputed from rounded token counts scatters a budget's runs by parts per
    million to both sides of the edge: without shifting the edges one slice is split into
    two envelope points, each seeing only part of the sizes."""
    budgets = 10.0 ** np.arange(18, 22)
    ladder = 10 ** np.arange(6, 12, 1 / 10)
    frames = []
    for c in budgets:
        N = ladder[np.abs(np.log(ladder / n_opt(CHINCHILLA, c))) <= np.log(6)]
        D = np.array([float(f"{d:.6g}") for d in c / (6 * N)])
        frames.append(pd.DataFrame({"N": N, "D": D, "budget": c, "loss": loss(CHINCHILLA, N, D)}))
    runs = pd.concat(frames, ignore_index=True)
    ratio = 6 * runs["N"] * runs["D"] / runs["budget"]
    assert (ratio < 1).any() and (ratio > 1).any()          # both sides of the edge
    runs = runs.drop(columns="budget")                      # approach 1 ignores budgets
    r = ap.approach1(runs, n_resamples=0)
    assert len(r.points) == len(budgets)
    assert np.allclose(np.sort(r.points["C"]), budgets, rtol=1e-5)


def c_opt(p, N):
    """Compute at which N is the optimal size (inverse of n_opt, by interpolation on a fine
    log grid: exact to about 1e-6 in log C)."""
    cs = np.geomspace(1e10, 1e32, 40000)
    return np.exp(np.interp(np.log(N), np.log(n_opt(p, cs)), np.log(cs)))


def bracketing_runs(p, per_decade=20, checkpoints=81, span=30.0, seed=0):
    """Training curves that bracket the optimum at every compute in the sweep: a ladder of
    sizes, each with log-spaced checkpoints from C_opt(N)/span to C_opt(N) span, shifted by
    a random fraction of a checkpoint step (so no checkpoint sits exactly at its run's
    optimum); rows outside [C_opt(N_min), C_opt(N_max)] are left out, and the two end runs
    keep a checkpoint exactly at their optimum, so that the smallest and largest compute
    in the table are optimal points (the hull has no edge rule, see approach1)."""
    ladder = 10 ** np.arange(7, 10.0001, 1 / per_decade)
    step = 2 * np.log(span) / (checkpoints - 1)
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(ladder):
        shift = 0.0 if i in (0, len(ladder) - 1) else rng.uniform(-0.5, 0.5) * step
        C = c_opt(p, n) * np.geomspace(1 / span, span, checkpoints) * np.exp(shift)
        D = C / (6 * n)
        frames.append(pd.DataFrame({"run": f"run{i}", "N": n, "D": D, "C": C, "loss": loss(p, n, D)}))
    runs = pd.concat(frames, ignore_index=True)
    lo, hi = c_opt(p, ladder[0]), c_opt(p, ladder[-1])
    return runs[(runs["C"] >= lo * (1 - 1e-12)) & (runs["C"] <= hi * (1 + 1e-12))].reset_index(drop=True)


@pytest.mark.parametrize("surface", [CHINCHILLA, MIRRORED])
@pytest.mark.parametrize("envelope", ap.ENVELOPES)
@pytest.mark.parametrize("per_decade, checkpoints", [(20, 81), (5, 31)])
def test_both_envelopes_recover_a_within_one_ladder_step(surface, envelope, per_decade, checkpoints):
    """On runs that bracket the optimum at every compute, every envelope point -- a grid
    winner or a hull vertex -- is within one ladder step h = log(10)/per_decade of log N_opt
    at its compute (checked here, not assumed: the loss at fixed C is unimodal in log N, and
    the envelope L*(C) is convex in log-log, so the hull touches each run near the compute
    where it is optimal). The exponent is then within slope_error_bound(h) of the truth:
    that is the tolerance, for both methods and both surfaces."""
    runs = bracketing_runs(surface, per_decade=per_decade, checkpoints=checkpoints)
    r = ap.approach1(runs, envelope=envelope, n_resamples=0)
    used = r.points[r.points["used"]]
    h = np.log(10) / per_decade
    errors = np.log(used["N"].to_numpy() / n_opt(surface, used["C"].to_numpy()))
    assert np.abs(errors).max() <= h
    tol = slope_error_bound(np.log(used["C"].to_numpy()), h)
    assert abs(r.a - true_a(surface)) <= tol, (r.a, true_a(surface), tol)
    assert r.method["envelope_method"] == envelope


def test_lower_hull_is_the_papers_rule():
    """The hull keeps the lower-left chain cut at the minimum loss: collinear points are not
    vertices, the upper hull is dropped, and so is anything right of the lowest loss."""
    C = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 3.0, 6.0, 32.0])
    L = np.array([8.0, 4.0, 2.0, 1.5, 1.4, 9.0, 5.0, 1.45])     # 1, 2, 4 collinear in log-log
    idx = ap.lower_hull(C, L)
    assert list(C[idx]) == [1.0, 4.0, 8.0, 16.0]
    runs = pd.DataFrame({"run": ["a", "a", "b", "b", "c", "c", "d", "d"], "N": [1, 1, 2, 2, 3, 3, 4, 4],
                         "C": C, "loss": L})
    r = ap.approach1(runs, envelope="lower_hull", n_resamples=0)
    assert list(r.points["C"]) == [1.0, 4.0, 8.0, 16.0] and r.points["used"].all()
    with pytest.raises(ApproachError, match="envelope must be one of grid, lower_hull"):
        ap.approach1(runs, envelope="hull")


def test_grid_keeps_edge_winners_only_when_asked():
    """The same unbracketed sweep: drop_edges leaves the smallest/largest-size winners out
    (the optimum_at_edge diagnostic says so); drop_edges=False uses every winner."""
    runs = checkpoint_runs(CHINCHILLA, per_decade=5)
    runs = runs[runs["N"] >= 1e9]
    kept = ap.approach1(runs, n_resamples=0, drop_edges=False)
    dropped = ap.approach1(runs, n_resamples=0)
    assert kept.points["used"].all() and (~dropped.points["used"]).any()
    assert len(kept.points) == len(dropped.points)
    assert "optimum_at_edge" not in {d.code for d in kept.diagnostics}
    assert kept.method["edge_rule"].startswith("none")

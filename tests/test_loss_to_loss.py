"""Shifted power laws between losses: the three fits on synthetic data from known laws, pairing,
fit_pair / fit_pairs."""

import numpy as np
import pandas as pd
import pytest

from scalerepro.analyses.loss_to_loss import (LossToLossError, ShiftedPowerLaw, bootstrap_ols, fit_pair, fit_pairs,
                                     flops_to_loss, ols_loglog, pair_runs)

TRUTH = dict(K=0.62, kappa=1.09, E_x=1.97, E_y=0.85)


def synthetic_pairs(n=60, noise=0.0, seed=0, truth=TRUTH):
    rng = np.random.default_rng(seed)
    x = truth["E_x"] + np.geomspace(0.3, 3.0, n)
    y = truth["K"] * (x - truth["E_x"]) ** truth["kappa"] + truth["E_y"]
    return x, y * np.exp(noise * rng.standard_normal(n))


def test_ols_recovers_known_law_exactly():
    x, y = synthetic_pairs()
    law = ShiftedPowerLaw.fit_ols(x, y, TRUTH["E_x"], TRUTH["E_y"])
    assert law.kappa == pytest.approx(TRUTH["kappa"], rel=1e-10)
    assert law.K == pytest.approx(TRUTH["K"], rel=1e-10)
    assert law.r2 == pytest.approx(1.0) and law.n == len(x) and law.method == "ols"
    np.testing.assert_allclose(law.predict(x), y, rtol=1e-12)


def test_ols_with_wrong_shift_is_biased():
    """The shifts matter: fixing E_y at zero instead of its true value bends the line."""
    x, y = synthetic_pairs()
    law = ShiftedPowerLaw.fit_ols(x, y, TRUTH["E_x"], 0.0)
    assert abs(law.kappa - TRUTH["kappa"]) > 0.1


def test_nonlinear_recovers_E_y():
    x, y = synthetic_pairs()
    law = ShiftedPowerLaw.fit_nonlinear(x, y, TRUTH["E_x"])
    assert law.E_y == pytest.approx(TRUTH["E_y"], abs=1e-6)
    assert law.kappa == pytest.approx(TRUTH["kappa"], rel=1e-6)
    assert law.K == pytest.approx(TRUTH["K"], rel=1e-6)
    assert law.extra["converged"] and not law.extra["E_y_at_bound"]


def test_nonlinear_with_noise_is_close_and_respects_bounds():
    x, y = synthetic_pairs(200, noise=0.002, seed=1)
    law = ShiftedPowerLaw.fit_nonlinear(x, y, TRUTH["E_x"], start=(0.8, 2.0, 0.3))
    assert law.E_y == pytest.approx(TRUTH["E_y"], abs=0.1)
    assert law.kappa == pytest.approx(TRUTH["kappa"], abs=0.05)
    assert 0.0 <= law.E_y <= y.min()


def test_nonlinear_bound_is_reported():
    """Data with no shift at all (pure power law): E_y ends at its lower bound 0."""
    x = np.geomspace(1.0, 10.0, 30)
    y = 2.0 * x ** 0.5 + 0.0
    law = ShiftedPowerLaw.fit_nonlinear(x, y, 0.0, E_y_bounds=(0.0, y.min()))
    assert law.E_y == pytest.approx(0.0, abs=1e-6) and law.extra["E_y_at_bound"]
    assert law.kappa == pytest.approx(0.5, rel=1e-6)


def test_nonlinear_records_how_it_was_fitted():
    x, y = synthetic_pairs(20)
    law = ShiftedPowerLaw.fit_nonlinear(x, y, TRUTH["E_x"])
    rec = law.record()
    assert rec["method"] == "nonlinear" and rec["start"] == [1.0, 1.0, 0.0]
    assert "curve_fit" in rec["optimizer"] and rec["n_evaluations"] > 0 and rec["converged"]
    assert rec["E_y_bounds"] == [0.0, pytest.approx(y.min())]


def test_nonlinear_keeps_kappa_and_K_non_negative():
    """Losses that move in opposite directions: the authors' bounds (kappa, K >= 0) hold."""
    x = np.geomspace(2.0, 4.0, 10)
    y = 5.0 - 0.5 * (x - 1.0) ** 0.7
    law = ShiftedPowerLaw.fit_nonlinear(x, y, 1.0)
    assert law.kappa >= 0 and law.K >= 0 and 0 <= law.E_y <= y.min()


def test_nonlinear_with_negative_kappa_for_loss_against_compute():
    """A loss falling with compute: kappa bounded above by 0, started from OLS at E_y = 0,
    recovers the law (the unshifted FLOPs-to-loss fit)."""
    C = np.geomspace(2e17, 4.84e19, 8)
    y = 3e4 * C ** -0.25 + 2.1
    ols = ShiftedPowerLaw.fit_ols(C, y, 0.0, 0.0)
    law = ShiftedPowerLaw.fit_nonlinear(C, y, 0.0, start=(ols.kappa, ols.K, 0.0), kappa_bounds=(-np.inf, 0.0))
    assert law.kappa == pytest.approx(-0.25, rel=1e-4) and law.E_y == pytest.approx(2.1, rel=1e-4)
    assert law.predict(1e21) == pytest.approx(3e4 * 1e21 ** -0.25 + 2.1, rel=1e-6)


def test_shift_above_data_is_an_error():
    x, y = synthetic_pairs()
    with pytest.raises(LossToLossError, match="E_x"):
        ShiftedPowerLaw.fit_ols(x, y, x.min() + 0.1, 0.0)
    with pytest.raises(LossToLossError, match="E_y"):
        ShiftedPowerLaw.fit_ols(x, y, TRUTH["E_x"], y.max())


def test_vectorised_weighted_ols_equals_per_resample_fit():
    x, y = synthetic_pairs(25, noise=0.01, seed=2)
    rng = np.random.default_rng(0)
    W = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=50).astype(float)
    kappa, logK = ols_loglog(x, y, TRUTH["E_x"], TRUTH["E_y"], W)
    for r in range(5):
        idx = np.repeat(np.arange(len(x)), W[r].astype(int))
        one = ShiftedPowerLaw.fit_ols(x[idx], y[idx], TRUTH["E_x"], TRUTH["E_y"])
        assert kappa[r] == pytest.approx(one.kappa, rel=1e-10)
        assert np.exp(logK[r]) == pytest.approx(one.K, rel=1e-10)


def test_bootstrap_interval_covers_truth_and_shrinks_with_noise():
    x, y = synthetic_pairs(80, noise=0.003, seed=4)
    wide = bootstrap_ols(x, y, TRUTH["E_x"], TRUTH["E_y"], n_resamples=500, seed=1)
    assert wide.interval("kappa")[0] <= TRUTH["kappa"] <= wide.interval("kappa")[1]
    assert wide.interval("K")[0] <= TRUTH["K"] <= wide.interval("K")[1]
    x, y = synthetic_pairs(80, noise=0.0003, seed=4)
    narrow = bootstrap_ols(x, y, TRUTH["E_x"], TRUTH["E_y"], n_resamples=500, seed=1)
    assert np.diff(narrow.interval("kappa"))[0] < np.diff(wide.interval("kappa"))[0] / 3
    assert wide.n_failed == 0 and len(wide.samples["kappa"]) == 500 and wide.resampling == "matched runs"
    assert wide.record()["intervals"]["kappa"] == list(wide.interval("kappa"))


def sweep():
    """Three datasets on one (N, D) grid; loss of dataset d = K_d (L_a - E_a)^kappa_d + E_d."""
    N, D = np.meshgrid(np.geomspace(2e7, 2e9, 6), np.geomspace(4e8, 4e10, 5))
    base = 1.9 + (8e7 / N) ** 0.9 + (9e8 / D) ** 0.45  # loss on dataset "a"
    truth = {"a": (1.0, 1.0, 1.9), "b": (0.6, 1.1, 0.85), "c": (1.5, 0.92, 1.3)}
    rows = []
    for d, (K, kappa, E) in truth.items():
        loss = K * (base - 1.9) ** kappa + E
        rows.append(pd.DataFrame({"run": d, "N": N.ravel(), "D": D.ravel(), "train": loss.ravel(),
                                  "task": 0.5 * (loss.ravel() - E) ** 0.8 + 2.0}))
    df = pd.concat(rows, ignore_index=True)
    return df.iloc[1:].reset_index(drop=True), truth  # dataset "a" misses one run


def test_pair_runs_inner_join_on_N_and_D():
    df, _ = sweep()
    joined = pair_runs(df, "run", ["N", "D"], "a", "b", ["train"])
    assert len(joined) == 29 and {"train_0", "train_1"} <= set(joined.columns)
    same = pair_runs(df, "run", ["N", "D"], "b", "b", ["train", "task"])
    np.testing.assert_array_equal(same["train_0"], same["train_1"])


def test_pair_runs_rejects_duplicate_keys_and_unknown_names():
    df, _ = sweep()
    with pytest.raises(LossToLossError, match="several runs"):
        pair_runs(pd.concat([df, df.iloc[:1]]), "run", ["N", "D"], "a", "b", ["train"])
    with pytest.raises(LossToLossError, match="no runs"):
        pair_runs(df, "run", ["N", "D"], "a", "zzz", ["train"])
    with pytest.raises(LossToLossError, match="columns"):
        pair_runs(df, "run", ["N", "D"], "a", "b", ["nope"])


def test_fit_pairs_recovers_every_pair():
    df, truth = sweep()
    shifts = {(d, "train"): E for d, (_, _, E) in truth.items()}
    table = fit_pairs(df, "run", ["N", "D"], "train", shifts=shifts)
    assert list(table.columns) == ["dataset_0", "dataset_1", "kappa", "K", "E_x", "E_y", "r2", "n_pairs"]
    assert len(table) == 6
    for row in table.itertuples():
        K0, k0, _ = truth[row.dataset_0]
        K1, k1, _ = truth[row.dataset_1]
        # y - E1 = K1 ((x - E0)/K0)^(k1/k0)
        assert row.kappa == pytest.approx(k1 / k0, rel=1e-9)
        assert row.K == pytest.approx(K1 * K0 ** (-k1 / k0), rel=1e-9)
        assert row.n_pairs == (29 if "a" in (row.dataset_0, row.dataset_1) else 30)


def test_fit_pairs_train_to_test_same_model_nonlinear():
    df, truth = sweep()
    shifts = {(d, "train"): E for d, (_, _, E) in truth.items()}
    table = fit_pairs(df, "run", ["N", "D"], "train", "task", shifts=shifts, pairs=[("b", "b")],
                      method="nonlinear")
    row = table.iloc[0]
    assert row.kappa == pytest.approx(0.8, rel=1e-6) and row.E_y == pytest.approx(2.0, abs=1e-6)
    assert row.K == pytest.approx(0.5, rel=1e-6)


def test_fit_pairs_missing_shift_names_dataset_and_loss():
    df, _ = sweep()
    with pytest.raises(LossToLossError, match="'c'.*'train'"):
        fit_pairs(df, "run", ["N", "D"], "train", shifts={("a", "train"): 1.9, ("b", "train"): 0.85})


# ------------------------------------------------------------------ grid-profile fit
# Eight IsoFLOP budgets, as in one dataset's extrapolation subset (2e17 ... 4.84e19 FLOPs).
COMPUTE = np.geomspace(2e17, 4.84e19, 8)


def compute_law(C0, kappa, E_y, x=COMPUTE):
    """Loss against compute from a known shifted power law, scaled so the power term is 1
    at the smallest budget. Returns x, y and the truth."""
    K = 1.0 / (x.min() - C0) ** kappa
    return x, K * (x - C0) ** kappa + E_y, dict(C0=C0, kappa=kappa, K=K, E_y=E_y)


def on_grid_truth(n_grid, i, j, kappa):
    """A law whose shifts are grid points i (x shift) and j (E_y) of fit_grid_profile's
    grids, linspace(0, min x) and linspace(0, min y). min y depends on E_y itself:
    E_y = j / (n - 1) * (t + E_y), with t the power term at the largest x."""
    C0 = i / (n_grid - 1) * COMPUTE.min()
    t_last = (COMPUTE.max() - C0) ** kappa / (COMPUTE.min() - C0) ** kappa
    return compute_law(C0, kappa, j / (n_grid - 1 - j) * t_last)


def cell_centre_truth(n_grid, c0_frac, e_frac, kappa):
    """A law whose shifts sit at the centre of a grid cell (half a step from every grid
    point): the hardest place for a grid search."""
    i = np.floor(c0_frac * (n_grid - 1)) + 0.5
    j = np.floor(e_frac * (n_grid - 1)) + 0.5
    return on_grid_truth(n_grid, i, j, kappa)


@pytest.mark.parametrize("i, j, kappa", [(37, 55, -0.3), (0, 80, -0.25), (60, 0, -0.5), (12, 30, -0.1)])
def test_grid_profile_recovers_a_law_on_its_grid_exactly(i, j, kappa):
    """Truth on a grid point, noiseless data: that point has zero error, every other one
    has more (the law is identified by 8 distinct x), so the search must return it; kappa
    and K are then exact OLS values. Tolerance: float rounding only (logs of numbers near
    1e17 and exp of the intercept lose ~1e-12 relative)."""
    n = 100
    x, y, truth = on_grid_truth(n, i, j, kappa)
    law = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=n)
    assert law.E_x == pytest.approx(truth["C0"], rel=1e-12, abs=1e-12 * x.min())
    assert law.E_y == pytest.approx(truth["E_y"], rel=1e-12, abs=1e-12)
    assert law.kappa == pytest.approx(truth["kappa"], rel=1e-9)
    assert law.K == pytest.approx(truth["K"], rel=1e-9)
    assert law.method == "grid_profile" and law.n == 8 and law.r2 == pytest.approx(1.0)
    assert law.extra["x_shift_at_edge"] == (i == 0) and law.extra["E_y_at_edge"] == (j == 0)


@pytest.mark.parametrize("n_grid", [50, 100, 200])
@pytest.mark.parametrize("c0_frac, e_frac, kappa", [(0.3, 0.5, -0.3), (0.5, 0.3, -0.15), (0.7, 0.7, -0.5)])
def test_grid_profile_recovers_an_off_grid_law_to_its_grid_spacing(n_grid, c0_frac, e_frac, kappa):
    """Truth at the centre of a grid cell: each shift can only be resolved to the grid's
    spacing, dC = min x / (n - 1) and dE = min y / (n - 1). The best grid point is a corner
    of the truth's cell or, because a C0 error is partly offset by an E_y error (the MSE
    has a diagonal valley), a neighbour along that valley: tolerance 2 steps in each shift
    (half a step from the cell centre to its corners, plus one step along the valley). The
    fitted kappa and K are the OLS values at the returned shifts, so their tolerance is the
    span of OLS fits with the shifts moved to the corners of that +-2-step box. The power
    term is kept comparable to E_y (0.4 to 2.3 times it): with E_y much larger the valley
    is longer and C0 less identified (see the FLOPs fits on the real data). Running the
    same check at three spacings shows the error shrinks with the step."""
    x, y, truth = cell_centre_truth(n_grid, c0_frac, e_frac, kappa)
    law = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=n_grid)
    dC, dE = x.min() / (n_grid - 1), y.min() / (n_grid - 1)
    assert abs(law.E_x - truth["C0"]) <= 2 * dC
    assert abs(law.E_y - truth["E_y"]) <= 2 * dE
    corners = [ShiftedPowerLaw.fit_ols(x, y, truth["C0"] + a * dC, truth["E_y"] + b * dE)
               for a in (-2, 2) for b in (-2, 2)]
    assert min(c.kappa for c in corners) <= law.kappa <= max(c.kappa for c in corners)
    assert min(c.K for c in corners) <= law.K <= max(c.K for c in corners)
    assert truth["kappa"] != pytest.approx(law.kappa, rel=1e-6)  # off-grid: not exact


def grid_profile_by_loops(x, y, n_grid):
    """Reference: the published recipe written out point by point (lstsq per grid point)."""
    best = (np.inf, None)
    for c0 in np.linspace(0, x.min(), n_grid):
        for e in np.linspace(0, y.min(), n_grid):
            with np.errstate(divide="ignore", invalid="ignore"):
                X = np.stack([np.log(x - c0), np.ones_like(x)], axis=1)
                v = np.log(y - e)
            if not (np.isfinite(X).all() and np.isfinite(v).all()):
                continue
            p = np.linalg.lstsq(X, v, rcond=None)[0]
            mse = np.mean((np.exp(X @ p) + e - y) ** 2)
            if mse < best[0]:
                best = (mse, (c0, p[0], np.exp(p[1]), e))
    return best[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_profile_equals_the_recipe_point_by_point(seed):
    """The vectorized search picks the same grid point as a plain double loop, on noisy data
    (where the choice is not obvious)."""
    x, y, _ = compute_law(0.3 * COMPUTE.min(), -0.3, 1.8)
    y = y * np.exp(0.01 * np.random.default_rng(seed).standard_normal(y.size))
    c0, kappa, K, e = grid_profile_by_loops(x, y, 40)
    law = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=40)
    assert (law.E_x, law.E_y) == (pytest.approx(c0, rel=1e-12), pytest.approx(e, rel=1e-12))
    assert law.kappa == pytest.approx(kappa, rel=1e-9) and law.K == pytest.approx(K, rel=1e-9)


def test_grid_profile_skips_grid_points_that_put_zero_in_a_log():
    """With two grid values per shift only (0, 0) avoids log(0): the fit is plain OLS of
    log y on log x."""
    x, y, _ = compute_law(0.0, -0.3, 1.0)
    law = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=2)
    plain = ShiftedPowerLaw.fit_ols(x, y, 0.0, 0.0)
    assert (law.E_x, law.E_y) == (0.0, 0.0)
    assert law.kappa == pytest.approx(plain.kappa, rel=1e-12) and law.K == pytest.approx(plain.K, rel=1e-9)


def test_grid_profile_rejects_input_it_cannot_fit():
    x, y, _ = compute_law(0.0, -0.3, 1.0)
    with pytest.raises(LossToLossError, match="x > 0 and y > 0"):
        ShiftedPowerLaw.fit_grid_profile(x - x.max(), y)
    with pytest.raises(LossToLossError, match="at least 3 points"):
        ShiftedPowerLaw.fit_grid_profile(x[:2], y[:2])
    with pytest.raises(LossToLossError, match="all x are equal"):
        ShiftedPowerLaw.fit_grid_profile(np.full(5, 1e18), y[:5])
    with pytest.raises(LossToLossError, match="non-finite"):
        ShiftedPowerLaw.fit_grid_profile(x, np.where(np.arange(8) == 3, np.nan, y))


def test_flops_to_loss_drops_runs_without_a_loss_and_extrapolates():
    x, y, truth = on_grid_truth(100, 20, 40, -0.3)
    law = flops_to_loss(np.append(x, 5e19), np.append(y, np.nan))
    assert law.n == 8 and law.E_x == pytest.approx(truth["C0"], rel=1e-12)
    big = 1e21
    assert law.predict(big) == pytest.approx(truth["K"] * (big - truth["C0"]) ** truth["kappa"] + truth["E_y"],
                                             rel=1e-9)
    with pytest.raises(LossToLossError, match="same length"):
        flops_to_loss(x, y[:-1])


def test_fit_pair_train_to_test_and_test_to_test_share_one_path():
    """x from dataset_0's runs, y from dataset_1's run with the same (N, D); E_y fitted when
    not given. Test-to-test is the same call with x_loss == y_loss."""
    df, truth = sweep()
    K0, k0, E0 = truth["a"]
    t2t = fit_pair(df, "run", ["N", "D"], "a", "b", "train", "task", E_x=E0)
    # task(b) = 0.5 (train(b) - E_b)^0.8 + 2 and train(b) - E_b = K_b (train(a) - E_a)^kappa_b
    K1, k1, _ = truth["b"]
    assert t2t.method == "nonlinear" and t2t.n == 29
    assert t2t.kappa == pytest.approx(0.8 * k1, rel=1e-5)
    assert t2t.K == pytest.approx(0.5 * K1 ** 0.8, rel=1e-5)
    assert t2t.E_y == pytest.approx(2.0, abs=1e-5)
    tt = fit_pair(df, "run", ["N", "D"], "a", "b", "task", E_x=2.0)
    # task(a) - 2 = 0.5 (train(a) - E_a)^0.8, so task(b) - 2 = 0.5 K1^0.8 ((task(a) - 2) / 0.5)^k1
    assert tt.kappa == pytest.approx(k1, rel=1e-5) and tt.E_y == pytest.approx(2.0, abs=1e-5)
    ols = fit_pair(df, "run", ["N", "D"], "a", "b", "train", E_x=E0, E_y=truth["b"][2])
    assert ols.method == "ols" and ols.kappa == pytest.approx(k1 / k0, rel=1e-9)


def test_fit_pair_drops_runs_missing_a_loss_and_says_which_pair_failed():
    df, truth = sweep()
    df.loc[(df.run == "b") & (df.index % 7 == 0), "task"] = np.nan
    law = fit_pair(df, "run", ["N", "D"], "a", "b", "train", "task", E_x=truth["a"][2])
    assert law.extra["n_dropped_missing"] > 0 and law.n == 29 - law.extra["n_dropped_missing"]
    with pytest.raises(LossToLossError, match=r"pair \('a' -> 'b'\), train -> task: E_x"):
        fit_pair(df, "run", ["N", "D"], "a", "b", "train", "task", E_x=10.0)


def test_grid_profile_in_blocks_equals_one_block(monkeypatch):
    """Many points are processed a few x0 rows at a time; the answer does not change."""
    import scalerepro.analyses.loss_to_loss as ltl

    x, y, _ = compute_law(0.3 * COMPUTE.min(), -0.3, 1.8)
    y = y * np.exp(0.01 * np.random.default_rng(3).standard_normal(y.size))
    whole = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=50)
    monkeypatch.setattr(ltl, "_GRID_BLOCK_ELEMENTS", 3 * 50 * x.size)   # 3 rows per block, last one short
    blocked = ShiftedPowerLaw.fit_grid_profile(x, y, n_grid=50)
    assert (blocked.E_x, blocked.E_y, blocked.kappa, blocked.K) == (whole.E_x, whole.E_y, whole.kappa, whole.K)

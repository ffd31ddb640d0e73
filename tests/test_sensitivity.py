"""Sensitivity variants on Chinchilla-shaped runs: subsets, starts, allocation, spread, scipy
bootstrap; the at_least rule. (The survey's groups on a real-looking sweep: test_sensitivity_sweep.py.)"""

import numpy as np
import pandas as pd
import pytest

from conftest import load_or_skip
from scalerepro.core import laws
from scalerepro.io import runs_input
from scalerepro.analyses import sensitivity
from scalerepro.publishing import spec
from scalerepro.analyses.sensitivity import Variant

CI_GRID = dict(a=[0, 10, 20], b=[0, 10, 20], e=[-1, 0, 1], alpha=[0, 0.5, 1], beta=[0, 0.5, 1])


def synthetic_runs(seed=0):
    """Runs from a known Chinchilla law, two of them gross outliers (loss x 4, larger than any other loss)."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 3e9, 8), 6)
    D = N * np.tile([5, 10, 20, 40, 80, 160], 8)
    true = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    loss = (true["E"] + true["A"] / N ** true["alpha"] + true["B"] / D ** true["beta"]) * np.exp(rng.normal(0, 0.005, N.size))
    loss[[40, 45]] *= 4.0
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss}), true


def prepared_runs(drop=2, seed=0):
    runs, true = synthetic_runs(seed)
    return runs_input.from_frame(runs, "synthetic", drop_highest_loss=drop), true


def test_subsets_drop_what_they_say():
    prepared, _ = prepared_runs()
    default = sensitivity.variant_data(prepared, Variant("d", "default"))
    assert sorted(r["index"] for r in default.selection.dropped) == [40, 45]
    m = sensitivity.variant_data(prepared, Variant("m", "data subset", data={"min_N": 1e8}))
    assert m.frame["N"].min() >= 1e8 and all("reason" in r for r in m.selection.dropped)
    assert len(m.frame) + len(m.selection.dropped) == 48
    low = sensitivity.variant_data(prepared, Variant("l", "data subset", data={"tpp_median": "low"})).frame
    high = sensitivity.variant_data(prepared, Variant("h", "data subset", data={"tpp_median": "high"})).frame
    assert len(low) + len(high) == 48 - 2
    assert (low["D"] / low["N"]).max() < (high["D"] / high["N"]).min()
    kept = sensitivity.variant_data(prepared, Variant("k", "data subset", data={"drop_highest_loss": 0}))
    assert len(kept.frame) == 48 and kept.selection.dropped == []
    with pytest.raises(ValueError, match="unknown data choices"):
        sensitivity.variant_data(prepared, Variant("x", "x", data={"subset": "min_N"}))


def test_starts():
    runs, _ = synthetic_runs()
    X, y = runs[["N", "D"]].to_numpy(), runs["loss"].to_numpy()
    law = laws.Chinchilla()
    full = sensitivity.make_starts(Variant("g", "x"), law, X, y, CI_GRID, 0)
    assert full.shape == (243, 5)
    assert sensitivity.make_starts(Variant("g", "x"), law, X, y, None, 0).shape == (4500, 5)
    assert sensitivity.make_starts(Variant("g", "x", tied=True), Variant("g", "x", tied=True).law(), X, y, CI_GRID, 0).shape == (81, 4)
    best = sensitivity.make_starts(Variant("b", "x", starts="best_grid", k=3), law, X, y, CI_GRID, 0)
    from scalerepro.core.fit import fit
    ranked = np.sort(fit(law, X, y, starts=full, optimizer="grid").start_objectives)[:3]
    got = fit(law, X, y, starts=best, optimizer="grid").start_objectives
    assert np.allclose(np.sort(got), ranked)
    rand = sensitivity.make_starts(Variant("r", "x", starts="random", k=7), law, X, y, CI_GRID, 1)
    assert rand.shape == (7, 5) and (rand >= full.min(0)).all() and (rand <= full.max(0)).all()
    hoff = sensitivity.make_starts(Variant("h", "x", starts="hoffmann"), law, X, y, CI_GRID, 0)
    assert law.natural(hoff[0])["E"] == pytest.approx(1.6934, abs=1e-4)


def test_allocation_matches_closed_form_and_flags_degenerate_fits():
    p = dict(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
    out = sensitivity.allocation(p, [5.88e23])
    # Besiroglu et al. 2024: about 18.3 tokens per parameter at the Chinchilla budget
    assert out["tokens_per_param@5.88e+23"] == pytest.approx(18.3, rel=0.03)
    assert out["a"] == pytest.approx(0.3658 / (0.3478 + 0.3658))
    assert not np.isfinite(sensitivity.allocation({**p, "alpha": 0.0}, [1e23])["tokens_per_param@1e+23"])


def test_spread_excludes_non_finite_and_optionally_non_converged():
    table = pd.DataFrame({"variant": ["a", "b", "c", "d"], "x": [2.0, 40.0, np.inf, 5.0],
                          "converged": [True, False, True, True]})
    s = sensitivity.spread(table, "x")
    assert s["ratio"] == 20 and s["max_variant"] == "b" and s["min_variant"] == "a"
    assert s["excluded"] == {"c": "no finite allocation"}
    s = sensitivity.spread(table, "x", only_converged=True)
    assert s["ratio"] == 2.5 and s["excluded"]["b"] == "not converged"


def test_run_variants_recovers_truth_and_reports_intervals():
    variants = [Variant("default", "default", bootstrap=True),
                Variant("mae", "objective", fit={"objective": "mae", "optimizer": "L-BFGS-B"},
                        starts="best_grid", k=4, bootstrap=True),
                Variant("mean L-BFGS-B", "reduction", fit={"reduction": "mean", "optimizer": "L-BFGS-B"},
                        starts="best_grid", k=4)]
    prepared, true = prepared_runs()
    res = sensitivity.run_variants(prepared, variants, sensitivity.Options(grid_axes=CI_GRID, n_bootstrap=100,
                                                                           n_bootstrap_scipy=5, seed=0))
    t = res.table.set_index("variant")
    assert t.loc["default", "alpha"] == pytest.approx(true["alpha"], abs=0.02)
    assert t.loc["default", "converged"] and t.loc["default", "identified"]
    assert t.loc["default", "n_starts"] == 243 and t.loc["mae", "n_starts"] == 4
    lo, hi = t.loc["default", ["a 95% low", "a 95% high"]]
    assert lo < t.loc["default", "a"] < hi
    assert res.boots["mae"].n_resamples == 5
    assert np.isnan(t.loc["mean L-BFGS-B", "a 95% low"])  # no bootstrap requested
    long = res.long()
    assert len(long) == 3 * len(sensitivity.DEFAULT_BUDGETS)


def test_sum_vs_mean_lbfgsb_on_chinchilla_runs():
    """Known answer (reference notes): scipy L-BFGS-B with default tolerances stops early on
    the averaged Huber loss; the summed one reaches objective 0.0010182740."""
    runs = load_or_skip("besiroglu2024_chinchilla")
    full_grid = dict(a=[0, 5, 10, 15, 20, 25], b=[0, 5, 10, 15, 20, 25], e=[-1, -0.5, 0, 0.5, 1],
                     alpha=[0, 0.5, 1, 1.5, 2], beta=[0, 0.5, 1, 1.5, 2])
    variants = [Variant("sum", "x", fit={"optimizer": "L-BFGS-B"}, starts="best_grid", k=10),
                Variant("mean", "x", fit={"optimizer": "L-BFGS-B", "reduction": "mean"}, starts="best_grid", k=10)]
    prepared = runs_input.from_frame(runs, "besiroglu2024_chinchilla", drop_highest_loss=5)
    res = sensitivity.run_variants(prepared, variants, sensitivity.Options(grid_axes=full_grid, n_bootstrap=0))
    s = res.fits["sum"].objective_at(reduction="sum")
    m = res.fits["mean"].objective_at(reduction="sum")
    assert s == pytest.approx(0.0010182740, rel=1e-6)
    assert m / s - 1 > 0.05

    # Why the averaged fit stops where it stops (the notebook's explanation, checked): every
    # start stops with the optimizer's own "converged", none near the optimum, at points whose
    # summed-loss gradient is n times the gradient the optimizer saw; the summed fit's best
    # start reaches the optimum.
    mean_stops = sensitivity.stopping_points(res.fits["mean"])
    sum_stops = sensitivity.stopping_points(res.fits["sum"])
    assert len(mean_stops) == len(sum_stops) == 10
    assert mean_stops["summed objective"].iloc[0] == pytest.approx(m, rel=1e-12)  # best first: the fit
    p = res.fits["mean"].params
    assert mean_stops["a"].iloc[0] == pytest.approx(p["beta"] / (p["alpha"] + p["beta"]))
    assert res.fits["mean"].converged and mean_stops["converged (optimizer's flag)"].all()
    assert (mean_stops["summed objective"] > 1.05 * s).all()
    np.testing.assert_allclose(mean_stops["max |gradient|, summed"],
                               res.fits["mean"].points_used * mean_stops["max |gradient|, as minimised"], rtol=1e-9)
    np.testing.assert_allclose(sum_stops["max |gradient|, summed"], sum_stops["max |gradient|, as minimised"])
    assert sum_stops["summed objective"].iloc[0] == pytest.approx(s, rel=1e-12)


def test_at_least_rule():
    claim = {"id": "c", "source": "s", "published": 10, "rule": {"kind": "at_least"}}
    assert spec.evaluate_claim(claim, 36.5)[0] == "replicated"
    assert spec.evaluate_claim(claim, 10.0)[0] == "replicated"
    assert spec.evaluate_claim(claim, 9.9)[0] == "not_replicated"
    assert spec.evaluate_claim(claim, None)[0] == "inconclusive"
    bad = {"id": "c", "source": "s", "rule": {"kind": "at_least"}}
    with pytest.raises(spec.SpecError, match="numeric 'published'"):
        spec._check_rule(bad, lambda msg: (_ for _ in ()).throw(spec.SpecError(msg)))


def test_spec_loads_with_both_claims():
    s = spec.load_spec("misfitting_sensitivity")
    assert {c["id"] for c in s.claims} == {"misfitting2025.spread_1e23", "misfitting2025.sum_vs_mean"}
    assert set(spec.resolve_parameters(s, "ci")) == set(s.parameters)

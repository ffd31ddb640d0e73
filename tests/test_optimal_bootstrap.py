"""Compute-optimal allocation and the bootstrap."""

import numpy as np
import pytest

from scalerepro import laws, optimal
from scalerepro.bootstrap import bootstrap, resample_weights
from scalerepro.fit import fit


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
    p = dict(A=np.array([400.0, 500.0]), B=np.array([400.0, 2000.0]),
             alpha=np.array([0.34, 0.35]), beta=np.array([0.28, 0.37]))
    out = optimal.compute_optimal(p, np.array([1e21, 1e23]))
    assert out["N_opt"].shape == (2,)


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
    rng = np.random.default_rng(0)
    N, D = 10 ** rng.uniform(7, 10, 80), 10 ** rng.uniform(9, 12, 80)
    law = laws.Chinchilla()
    truth = law.from_natural(E=1.8, A=480, B=2100, alpha=0.35, beta=0.37)
    X = np.c_[N, D]
    y = law.predict(truth, X) * np.exp(0.01 * rng.standard_normal(80))
    result = fit(law, X, y, starts=truth[None, :])
    b1 = bootstrap(result, X, y, n_resamples=20, seed=3)
    b2 = bootstrap(result, X, y, n_resamples=20, seed=3)
    np.testing.assert_array_equal(b1.theta_samples, b2.theta_samples)
    # the vectorised refit of resample 0 equals an ordinary fit on the resampled points
    counts = resample_weights(80, 20, seed=3)[0].astype(int)
    idx = np.repeat(np.arange(80), counts)
    single = fit(law, X[idx], y[idx], starts=result.theta[None, :])
    np.testing.assert_allclose(b1.theta_samples[0], single.theta, rtol=1e-6)
    assert b1.n_failed == 0 and b1.to_dict()["n_resamples"] == 20


def test_bootstrap_rejects_negative_counts():
    rng = np.random.default_rng(0)
    X = np.c_[10 ** rng.uniform(7, 10, 20), 10 ** rng.uniform(9, 12, 20)]
    law = laws.Chinchilla()
    truth = law.from_natural(E=1.8, A=480, B=2100, alpha=0.35, beta=0.37)
    y = law.predict(truth, X)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap(fit(law, X, y, starts=truth[None, :]), X, y, n_resamples=-1)


def test_refits_settled_at_an_edge_are_kept_at_their_limit():
    # No irreducible term in the data: the fit and every refit send E -> 0 (log E -> -inf)
    # and stop at max_iter with settled predictions. Dropping them would leave no interval;
    # keeping them where they stopped would bound E away from 0. They are kept at E = 0.
    N = np.geomspace(1e7, 1e9, 6)
    X = np.column_stack([N, 20 * N])
    y = 400 * N ** -0.3 + 400 * (20 * N) ** -0.3
    start = laws.Chinchilla().from_natural(E=0.5, A=300, B=300, alpha=0.3, beta=0.3)[None, :]
    with pytest.warns(UserWarning):
        result = fit(laws.Chinchilla(), X, y, starts=start, options={"max_iter": 60})
    boot = bootstrap(result, X, y, n_resamples=20, seed=0)
    assert boot.n_settled == 20 and boot.n_failed == 0
    assert boot.interval("E") == (0.0, 0.0)
    assert np.isfinite(boot.theta_samples).all()
    assert boot.to_dict()["n_settled_at_edge"] == 20
    assert any("settled" in w and "limit" in w for w in boot.warnings())

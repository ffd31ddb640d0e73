"""Chinchilla approach 3 on the real runs: the known answer and the notebook end to end."""

import numpy as np
import pytest

from conftest import executed_images, load_or_skip, run_replication_ci
from scalerepro import spec


def test_five_dropped_points_are_the_known_outliers(chinchilla_points):
    kept, dropped = chinchilla_points
    assert len(kept) == 240
    # Besiroglu et al.: all near C = 1e19 with 2.0-6.8B parameters
    runs = load_or_skip("besiroglu2024_chinchilla")
    d = runs.loc[[r["index"] for r in dropped]]
    assert d["C"].between(8e18, 1.2e19).all() and d["N"].between(1.9e9, 7e9).all()


def test_full_grid_known_answer(chinchilla_grid_fit):
    # Known answer (reference notes, measured with scipy L-BFGS-B over the same grid):
    # best summed Huber objective 0.0010182740 at A 477.8, B 2144, E 1.8172, alpha 0.3473,
    # beta 0.3672.
    result = chinchilla_grid_fit
    assert result.n_starts == 4500
    assert result.converged
    assert result.points_used == 240 and len(result.dropped) == 5
    # the published value is rounded to 10 decimals: compare at 1e-8 relative after rounding
    assert round(result.objective_value, 10) == pytest.approx(0.0010182740, rel=1e-8)
    p = result.params
    # The reference values are rounded to 4-5 figures: half a unit of the last one is 1e-4
    # relative for A, 2.3e-4 for B and 5e-5 absolute for E, alpha and beta. B, the least
    # determined coefficient, also carries L-BFGS-B's stopping error (measured 2143.4 here,
    # 2.7e-4 below the notes). The bounds allow about twice these.
    assert p["A"] == pytest.approx(477.8, rel=2e-4)
    assert p["B"] == pytest.approx(2144, rel=5e-4)
    assert p["E"] == pytest.approx(1.8172, abs=2e-4)
    assert p["alpha"] == pytest.approx(0.3473, abs=2e-4)
    assert p["beta"] == pytest.approx(0.3672, abs=2e-4)
    # every start ran to its own stopping rule, and many reach the global optimum
    assert result.n_starts_converged >= 0.99 * result.n_starts
    at_best = np.isclose(result.start_objectives, result.objective_value, rtol=1e-8)
    assert at_best.sum() >= 100


@pytest.mark.slow
def test_notebook_ci_profile(tmp_path):
    load_or_skip("besiroglu2024_chinchilla")
    results = run_replication_ci("chinchilla_approach3", tmp_path)
    claims = {c["id"]: c for c in results["claims"]}
    expected = {f"{p}.{k}" for p in ("hoffmann2022", "besiroglu2024")
                for k in ("E", "A", "B", "alpha", "beta", "a")} | {"besiroglu2024.tokens_per_param"}
    expected |= {"hoffmann2022.approach2.a", "hoffmann2022.approach2.b", "hoffmann2022.approach1.a"}
    assert set(claims) == expected
    # Expected verdicts from the publications, not from a previous run. Even the ci grid finds
    # the optimum, which is Besiroglu et al.'s refit: each of their claims replicates. A
    # Hoffmann et al. value replicates when it lies inside Besiroglu et al.'s published 95%
    # interval (Table 1): A 406.4 in [285.2, 743.6] and alpha 0.34 in [0.317, 0.373] do;
    # E 1.69, B 410.7 and beta 0.28 do not; nor does a = 0.46, 2.7 published SEs (0.020) below
    # their a = 0.513.
    s = spec.load_spec("chinchilla_approach3")
    besiroglu = {c["id"].split(".")[1]: c for c in s.claims if c["id"].startswith("besiroglu2024.")}
    want = {f"besiroglu2024.{k}": "replicated" for k in besiroglu}
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = besiroglu[k]["published_interval"]
        want[f"hoffmann2022.{k}"] = "replicated" if lo <= s.claim(f"hoffmann2022.{k}")["published"] <= hi \
            else "not_replicated"
    want["hoffmann2022.a"] = "not_replicated"
    assert {k: claims[k]["verdict"] for k in want} == want
    assert [want[f"hoffmann2022.{k}"] for k in ("E", "A", "B", "alpha", "beta")] == \
        ["not_replicated", "replicated", "not_replicated", "replicated", "not_replicated"]
    assert 0.49 < claims["besiroglu2024.a"]["reproduced"] < 0.54
    # approach 2 on Hoffmann's IsoFLOP runs (issue 14): the range the issue asks for
    assert 0.47 <= claims["hoffmann2022.approach2.a"]["reproduced"] <= 0.52
    assert claims["hoffmann2022.approach1.a"]["verdict"] == "not_testable"
    assert executed_images(tmp_path / "chinchilla_approach3.ipynb") >= 3

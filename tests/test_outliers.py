"""The ``outliers`` diagnostic of ``scalerepro fit``: it names the points the law misses by far
more than the noise (Besiroglu et al.'s five highest Chinchilla losses near C = 1e19), and
stays silent on clean sweeps drawn from a known law."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CHINCHILLA_TRUTH, law_runs, load_or_skip
from scalerepro.core import laws, stats
from scalerepro.core.fit import fit
from scalerepro.publishing import fit_figures
from scalerepro.runs import fit as userfit

CHINCHILLA = laws.Chinchilla()


def _outliers(uf):
    return [d for d in uf.diagnostics if d.code == "outliers"]


@pytest.fixture(scope="module")
def chinchilla_245(tmp_path_factory):
    """All 245 Besiroglu points as a user's CSV (line = row + 2) and its fit without bootstrap."""
    df = load_or_skip("besiroglu2024_chinchilla")[["N", "D", "C", "loss"]]
    path = tmp_path_factory.mktemp("outliers") / "chinchilla245.csv"
    df[["N", "D", "loss"]].to_csv(path, index=False)
    return df, userfit.fit_runs(path, n_bootstrap=0)


def test_the_five_highest_chinchilla_losses_are_named_with_their_lines(chinchilla_245):
    df, uf = chinchilla_245
    (found,) = _outliers(uf)
    assert found.severity == "warning"
    highest_lines = [int(i) + 2 for i in df["loss"].nlargest(5).index]
    named = [line for line in highest_lines if f"line {line}" in found.subjects]
    assert len(named) >= 4, (highest_lines, found.subjects)
    for line in named:   # each with its line and residual in the message
        assert f"line {line} (loss" in found.message
    assert "--drop-highest-loss" in found.message
    assert all(abs(float(df["C"].iloc[line - 2]) / 1e19 - 1) < 0.1 for line in named)  # all near C = 1e19


def test_the_residual_figure_rings_and_labels_the_outliers(chinchilla_245):
    _, uf = chinchilla_245
    lines = fit_figures.outlier_lines(uf)
    fig = fit_figures.residuals(uf)
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert lines and {f"line {n}" for n in lines} <= labels


def test_clean_sweeps_of_the_same_size_rarely_name_an_outlier():
    """40 sweeps of 245 runs from a known law with 1% log-normal noise: the threshold is set
    for a 1% false-alarm rate, so at most 2 of 40 (5%) may fire. (A threshold of 3, or the
    plain standard deviation in place of the robust scale on the test above, fails.)"""
    fired = 0
    for seed in range(40):
        X, y = law_runs(CHINCHILLA, CHINCHILLA_TRUTH, 245, 0.01, seed, log10_N=(7.7, 10.2), log10_D=(8.4, 11.5))
        result = fit(CHINCHILLA, X, y, optimizer="profile", warn=False)
        train = pd.DataFrame({"line": np.arange(len(y)) + 2, "loss": y})
        fired += bool(userfit.outlier_diagnostics(result, train))
    assert fired <= 2


def test_a_planted_outlier_in_a_clean_sweep_is_named_and_drop_highest_loss_is_compared():
    X, y = law_runs(CHINCHILLA, CHINCHILLA_TRUTH, 245, 0.01, 7, log10_N=(7.7, 10.2), log10_D=(8.4, 11.5))
    smallest = int(np.argmin(y))
    y = y.copy()
    y[smallest] *= 1.15     # far above the law, but not among the highest losses
    result = fit(CHINCHILLA, X, y, optimizer="profile", warn=False)
    train = pd.DataFrame({"line": np.arange(len(y)) + 2, "loss": y})
    (found,) = userfit.outlier_diagnostics(result, train)
    assert found.subjects == (f"line {smallest + 2}",)
    assert "--drop-highest-loss 1 would drop line" in found.message and "none of them named here" in found.message


def test_threshold_is_bonferroni_with_a_floor():
    assert stats.outlier_threshold(240) == pytest.approx(4.098, abs=1e-3)
    assert stats.outlier_threshold(5) == stats.MIN_OUTLIER_Z
    noise = np.random.default_rng(0).normal(0, 0.02, 10_000)
    assert stats.robust_scale(noise) == pytest.approx(0.02, rel=0.03)

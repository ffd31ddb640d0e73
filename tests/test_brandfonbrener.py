"""Brandfonbrener et al.'s protocol helpers (scalerepro.analyses.brandfonbrener) on small known inputs:
float32 rounding, the stored-fit lookup and its errors, the unshifted FLOPs law, the
translation experiment's maps, and the refit outcomes in words."""

import numpy as np
import pandas as pd
import pytest

from scalerepro.analyses.brandfonbrener import (METHODS, VARIANTS, extrapolation_maps, float32_xy, flops_to_loss_unshifted,
                                       outcome_counts, stored_fit)
from scalerepro.errors import LossToLossError
from scalerepro.analyses.loss_to_loss import fit_pair


# ----------------------------------------------------------------------------- float32_xy
def test_float32_xy_rounds_like_float32_and_returns_float64():
    frame = pd.DataFrame({"params": [123_456_789.0, 2.0e9], "tokens": [1.0e10 + 1.0, 3.0e10],
                          "loss": [3.141592653589793, 2.718281828459045]})
    X, y = float32_xy(frame, "loss")
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X[0, 0] == 123_456_792.0          # float32 has 24 bits of mantissa: 123456789 is not representable
    assert X[0, 1] == 1.0e10                 # the +1 is lost in float32
    assert y[0] == float(np.float32(np.pi)) and y[0] != np.pi
    assert abs(y[0] - np.pi) < 1e-7


def test_float32_xy_drops_rows_without_that_loss_only():
    frame = pd.DataFrame({"params": [1e8, 2e8, 4e8], "tokens": [2e9, 4e9, 8e9],
                          "a": [3.0, np.nan, 2.5], "b": [3.1, 2.9, np.nan]})
    Xa, ya = float32_xy(frame, "a")
    Xb, yb = float32_xy(frame, "b")
    assert Xa[:, 0].tolist() == [1e8, 4e8] and ya.tolist() == [3.0, 2.5]
    assert Xb[:, 0].tolist() == [1e8, 2e8]


def test_float32_xy_names_a_missing_column():
    with pytest.raises(LossToLossError, match="tokens"):
        float32_xy(pd.DataFrame({"params": [1.0], "loss": [2.0]}), "loss")


# ----------------------------------------------------------------------------- stored_fit
@pytest.fixture
def stored():
    return pd.DataFrame({"data": ["fineweb", "fineweb", "starcoder", "starcoder"],
                         "loss_name": ["val_loss"] * 4, "kaplan": [True, False, True, False],
                         "E": [2.17, 2.10, 0.97, 0.90]})


def test_stored_fit_returns_the_one_matching_row(stored):
    assert stored_fit(stored, data="starcoder", loss_name="val_loss", kaplan=True)["E"] == 0.97
    assert stored_fit(stored, data="starcoder", loss_name="val_loss", kaplan=False)["E"] == 0.90
    assert stored_fit(stored, data="fineweb", loss_name="val_loss", kaplan=False)["E"] == 2.10


def test_stored_fit_missing_row_says_what_was_asked_and_what_exists(stored):
    with pytest.raises(LossToLossError) as err:
        stored_fit(stored, data="starcodr", loss_name="val_loss", kaplan=True)
    text = str(err.value)
    assert "'starcodr'" in text and "['fineweb', 'starcoder']" in text
    with pytest.raises(LossToLossError, match="loss_name == 'hellaswag'"):
        stored_fit(stored, data="fineweb", loss_name="hellaswag", kaplan=True)


def test_stored_fit_refuses_duplicates_and_unknown_columns(stored):
    doubled = pd.concat([stored, stored.iloc[[0]]], ignore_index=True)
    with pytest.raises(LossToLossError, match="2 stored fits"):
        stored_fit(doubled, data="fineweb", loss_name="val_loss", kaplan=True)
    with pytest.raises(LossToLossError, match="dataset"):
        stored_fit(stored, dataset="fineweb")


# ----------------------------------------------------------------------------- flops_to_loss_unshifted
def test_unshifted_flops_law_recovers_a_known_law_and_drops_missing_losses():
    C = np.geomspace(1e17, 5e19, 7)
    loss = 40.0 * C ** -0.08 + 1.5
    law = flops_to_loss_unshifted(np.append(C, 1e20), np.append(loss, np.nan))
    assert law.n == 7 and law.E_x == 0.0
    assert law.kappa == pytest.approx(-0.08, rel=1e-3)
    assert law.E_y == pytest.approx(1.5, abs=1e-3)
    assert law.predict(1e21) == pytest.approx(40.0 * 1e21 ** -0.08 + 1.5, rel=1e-4)


# ----------------------------------------------------------------------------- extrapolation_maps
@pytest.fixture
def sweep():
    """A source and a target trained at the same (N, D); the target's task loss is an exact
    shifted power law of the source's train loss (E_x = 1.8, kappa = 1.3, K = 0.9, E_y = 0.6)."""
    N = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9])
    D = 20 * N
    src_train = 1.8 + 400 / N ** 0.3
    rows = []
    for n, d, x in zip(N, D, src_train):
        rows.append({"data": "src", "params": n, "tokens": d, "iso_flop": 6 * n * d, "train": x,
                     "task": 0.5 + 1.1 * (x - 1.8)})
        rows.append({"data": "tgt", "params": n, "tokens": d, "iso_flop": 6 * n * d, "train": x + 0.2,
                     "task": 0.9 * (x - 1.8) ** 1.3 + 0.6})
    return pd.DataFrame(rows)


def test_extrapolation_maps_recover_the_law_and_say_where_to_predict(sweep):
    stored = {("src", "train"): 1.8, ("src", "task"): 0.5}
    own = {("src", "train"): 1.7, ("src", "task"): 0.45}
    maps = extrapolation_maps(sweep, "src", "tgt", "train", "task", source_at={"train": 1.9, "task": 0.61},
                              target_compute=1e21, stored_shifts=stored, own_shifts=own)
    assert list(maps) == list(METHODS) + list(VARIANTS)
    law, x = maps["train_to_test"]
    assert (law.kappa, law.K, law.E_y) == pytest.approx((1.3, 0.9, 0.6), rel=1e-4)
    assert law.E_x == 1.8 and x == 1.9 and law.n == 6
    assert law.predict(x) == pytest.approx(0.9 * 0.1 ** 1.3 + 0.6, rel=1e-4)
    assert maps["test_to_test"][1] == 0.61 and maps["test_to_test"][0].E_x == 0.5
    assert maps["flops_to_loss"][1] == 1e21 and maps["flops_to_loss_unshifted"][1] == 1e21
    # the variants differ from the methods only in the detail named
    assert maps["train_to_test_own_E"][0].E_x == 1.7 and maps["test_to_test_own_E"][0].E_x == 0.45
    assert maps["train_to_test_E_y_unbounded"][0].extra["E_y_bounds"] == [-np.inf, 0.6 + 0.9 * min(
        (sweep.loc[sweep.data == "src", "train"] - 1.8) ** 1.3)]
    direct = fit_pair(sweep, "data", ["params", "tokens"], "src", "tgt", "task", E_x=0.5)
    assert maps["test_to_test"][0] == direct


def test_extrapolation_maps_name_a_missing_shift(sweep):
    with pytest.raises(LossToLossError, match="'src'.*'task'"):
        extrapolation_maps(sweep, "src", "tgt", "train", "task", source_at={"train": 1.9, "task": 0.61},
                           target_compute=1e21, stored_shifts={("src", "train"): 1.8},
                           own_shifts={("src", "train"): 1.7, ("src", "task"): 0.45})


# ----------------------------------------------------------------------------- outcome_counts
def test_outcome_counts_in_words():
    outcomes = ["converged", "settled at the edge: E -> 0", "converged", "not converged", "converged"]
    assert outcome_counts(outcomes) == (
        "3/5 fits met the stopping rule; 1 settled with a parameter running off to the edge of the parameter "
        "space (predictions converged, see the outcome table); 1 not converged")
    assert outcome_counts(pd.Series(["converged"] * 4)) == "4/4 fits met the stopping rule"
    assert outcome_counts(["settled at the edge: B -> inf"] * 2) == (
        "0/2 fits met the stopping rule; 2 settled with a parameter running off to the edge of the parameter "
        "space (predictions converged, see the outcome table)")

"""Property: any table given to `scalerepro fit` yields a finite fit or one InputError.

Hypothesis generates run tables from a Chinchilla-form law and corrupts them the ways real
CSVs are corrupted (text in a number column, NaN, inf, zero or negative values, dropped
columns, duplicated rows, header only). The pipeline must either produce a fit whose
numbers are all finite (flagged if it did not converge) or raise InputError naming the
problem; never another exception and never a silent NaN.
"""

import math
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro.core import laws
from scalerepro.runs import fit as userfit
from scalerepro.io.validate import InputError

START = np.array([[6.0, 7.6, 0.6, 0.35, 0.37]])
CORRUPTIONS = ["none", "text", "nan", "inf", "zero", "negative", "drop_column", "duplicate", "header_only"]


@st.composite
def run_tables(draw):
    n = draw(st.integers(min_value=6, max_value=25))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    X, loss = law_runs(laws.Chinchilla(), CHINCHILLA_TRUTH, n, 0.01, seed, log10_N=(7, 10), log10_D=(9, 12))
    frame = pd.DataFrame({"N": X[:, 0], "D": X[:, 1], "loss": loss}).astype(object)
    kind = draw(st.sampled_from(CORRUPTIONS))
    row = draw(st.integers(min_value=0, max_value=n - 1))
    column = draw(st.sampled_from(["N", "D", "loss"]))
    if kind == "text":
        frame.loc[row, column] = "oops"
    elif kind in ("nan", "inf", "zero", "negative"):
        frame.loc[row, column] = {"nan": math.nan, "inf": math.inf, "zero": 0.0, "negative": -1.0}[kind]
    elif kind == "drop_column":
        frame = frame.drop(columns=column)
    elif kind == "duplicate":
        frame = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)
    elif kind == "header_only":
        frame = frame.iloc[:0]
    return kind, frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=run_tables())
def test_fit_pipeline_gives_a_finite_fit_or_an_input_error(tmp_path, case):
    kind, frame = case
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            uf = userfit.fit_runs(path, n_bootstrap=0, starts=START)
    except InputError as exc:
        assert kind != "none", f"a clean table was rejected: {exc}"
        assert str(path.name) in str(exc)
        return
    assert kind == "none", f"corruption {kind!r} was not rejected"
    params = uf.result.params
    assert all(np.isfinite(v) for v in params.values()), params
    assert np.isfinite(uf.result.objective_value)
    assert uf.result.converged or any("converge" in w for w in uf.result.warnings)

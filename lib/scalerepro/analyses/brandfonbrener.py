"""Brandfonbrener et al. 2024's loss-to-loss protocol: the parts of their notebooks that are
method rather than narrative, used by ``notebooks/loss_to_loss.ipynb``.

:mod:`scalerepro.analyses.loss_to_loss` holds the generic shifted power laws and never knows a
paper's column names. This module holds what is specific to the authors' code and files:
how they fed inputs to their stage-1 fits (float32), how their stored fits
(``opt_params_data.csv``) are looked up, and the maps of their translation experiment
(fit on a small subset of a target dataset, extrapolate to its 1e21-FLOP run) together
with the one-detail-changed variants the notebook shows beside them. Column names default
to the authors' files (``data``, ``params``, ``tokens``, ``iso_flop``) and can be passed.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import LossToLossError
from .loss_to_loss import ShiftedPowerLaw, Shifts, fit_pair, flops_to_loss, pair_runs, shift_for

INPUTS = ("params", "tokens")   # N and D in the authors' sweep.csv


def float32_xy(frame: pd.DataFrame, loss: str, inputs: Iterable[str] = INPUTS) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of one loss as the authors fed them to their JAX fits: rounded to float32,
    then promoted back to float64 for the solver. Rows without that loss are dropped (each
    loss column has its own missing runs).

    Why: their stage-1 objective saw the float32 values, which differ from the CSV's in the
    eighth digit; on a Huber loss with delta = 1e-3 and an irreducible loss E that is barely
    identified for some tasks, the same rounding is part of reproducing their fit."""
    inputs = list(inputs)
    missing = [c for c in [*inputs, loss] if c not in frame.columns]
    if missing:
        raise LossToLossError(f"columns {missing} not in the table (has {list(frame.columns)[:20]}...)")
    frame = frame.dropna(subset=[loss])
    X = frame[inputs].to_numpy(np.float32).astype(float)
    return X, frame[loss].to_numpy(np.float32).astype(float)


def stored_fit(table: pd.DataFrame, **match) -> pd.Series:
    """The one row of a table of stored fits (the authors' ``opt_params_data.csv``) whose
    columns equal ``match``, e.g. ``stored_fit(authors, data="starcoder", loss_name="val_loss",
    kaplan=True)``.

    Why a function: a mistyped dataset or loss name would otherwise give an empty frame and
    an ``IndexError`` far from the cause, and a duplicated row would silently pick one of
    two fits. Raises :class:`~scalerepro.errors.LossToLossError` naming the values asked for
    and, for the first column that matches nothing, the values the table has."""
    unknown = [c for c in match if c not in table.columns]
    if unknown:
        raise LossToLossError(f"stored fits have no column(s) {unknown} (columns: {list(table.columns)})")
    keep = np.ones(len(table), bool)
    for column, value in match.items():
        here = (table[column] == value).to_numpy()
        if not (keep & here).any():
            known = sorted(map(str, table.loc[keep, column].unique()))
            raise LossToLossError(f"no stored fit with {_describe(match)}: no row with {column} == {value!r} "
                                  f"among those matching the rest; {column} values there: {known}")
        keep &= here
    if keep.sum() > 1:
        raise LossToLossError(f"{int(keep.sum())} stored fits with {_describe(match)}; expected one")
    return table.loc[keep].iloc[0]


def _describe(match: Mapping) -> str:
    return ", ".join(f"{k} == {v!r}" for k, v in match.items())


def flops_to_loss_unshifted(compute, loss) -> ShiftedPowerLaw:
    """y = K C^kappa + E_y without the compute shift C0: bounded least squares from the OLS
    fit at E_y = 0, with kappa <= 0. Runs without a loss are dropped.

    Why: it is what a natural reading of "a power law in FLOPs" gives, and shown next to the
    authors' four-parameter grid fit (:func:`~scalerepro.analyses.loss_to_loss.flops_to_loss`) it
    measures how much the shift C0 moves a prediction 20x beyond the largest budget on 6-8
    runs. Converged, unlike the grid search, so the difference is the law, not the optimizer."""
    compute, loss = np.asarray(compute, float).ravel(), np.asarray(loss, float).ravel()
    if compute.shape != loss.shape:
        raise LossToLossError(f"compute and loss must have the same length, got {compute.size} and {loss.size}")
    keep = np.isfinite(loss)
    compute, loss = compute[keep], loss[keep]
    start = ShiftedPowerLaw.fit_ols(compute, loss, 0.0, 0.0)
    return ShiftedPowerLaw.fit_nonlinear(compute, loss, 0.0, start=(start.kappa, start.K, 0.0),
                                         kappa_bounds=(-np.inf, 0.0))


#: The translation experiment's maps, in the order :func:`extrapolation_maps` returns them:
#: the authors' three methods, then the variants with one detail changed (not claims).
METHODS = ("train_to_test", "test_to_test", "flops_to_loss")
VARIANTS = ("train_to_test_own_E", "test_to_test_own_E", "flops_to_loss_unshifted", "train_to_test_E_y_unbounded")


def extrapolation_maps(runs: pd.DataFrame, source, target, train_loss: str, task_loss: str, *,
                       source_at: Mapping[str, float], target_compute: float, stored_shifts: Shifts,
                       own_shifts: Shifts, dataset_col: str = "data", pair_on=INPUTS,
                       compute_col: str = "iso_flop") -> dict[str, tuple[ShiftedPowerLaw, float]]:
    """Every map of the authors' translation experiment for one target and one task loss,
    as ``name -> (law, x)``: the fitted law and the input at which it predicts the target's
    big run (``law.predict(x)``).

    ``runs``: the runs available to the fit (the experiment's small subset of each dataset).
    ``source_at``: the source's measured big-run losses (``train_loss`` and ``task_loss``);
    ``target_compute``: the target's big-run compute. ``stored_shifts`` and ``own_shifts``:
    ``(dataset, loss) -> E`` (the authors' stored stage-1 fits and a converged refit), of
    which only the source's are read: E_x is fixed, E_y is fitted.

    The authors' methods (``METHODS``): train-to-test (x = the source's train loss, y = the
    target's task loss of the model with the same ``pair_on``; E_x stored, (kappa, K, E_y) by
    bounded least squares, :func:`~scalerepro.analyses.loss_to_loss.fit_pair`), test-to-test (the same
    with x = the source's task loss) and FLOPs-to-loss on the target alone
    (:func:`~scalerepro.analyses.loss_to_loss.flops_to_loss`). The variants (``VARIANTS``): the two
    pair maps with ``own_shifts``, FLOPs-to-loss without C0 (:func:`flops_to_loss_unshifted`)
    and train-to-test with E_y unbounded. One function for all of them so the variants
    differ from the methods in exactly the detail named, on exactly the same runs."""
    pair_on = [pair_on] if isinstance(pair_on, str) else list(pair_on)
    stored = {loss: shift_for(stored_shifts, source, loss) for loss in (train_loss, task_loss)}
    own = {loss: shift_for(own_shifts, source, loss) for loss in (train_loss, task_loss)}
    own_runs = runs[runs[dataset_col] == target]

    def pair(x_loss, E_x):
        y_loss = None if x_loss == task_loss else task_loss
        return fit_pair(runs, dataset_col, pair_on, source, target, x_loss, y_loss, E_x=E_x)

    maps = {
        "train_to_test": (pair(train_loss, stored[train_loss]), source_at[train_loss]),
        "test_to_test": (pair(task_loss, stored[task_loss]), source_at[task_loss]),
        "flops_to_loss": (flops_to_loss(own_runs[compute_col], own_runs[task_loss]), target_compute),
        "train_to_test_own_E": (pair(train_loss, own[train_loss]), source_at[train_loss]),
        "test_to_test_own_E": (pair(task_loss, own[task_loss]), source_at[task_loss]),
        "flops_to_loss_unshifted": (flops_to_loss_unshifted(own_runs[compute_col], own_runs[task_loss]),
                                    target_compute),
    }
    joined = pair_runs(runs, dataset_col, pair_on, source, target, [train_loss, task_loss])
    maps["train_to_test_E_y_unbounded"] = (
        ShiftedPowerLaw.fit_nonlinear(joined[f"{train_loss}_0"], joined[f"{task_loss}_1"], stored[train_loss],
                                      E_y_bounds=(-np.inf, np.inf)), source_at[train_loss])
    return maps


def outcome_counts(outcomes: Iterable[str]) -> str:
    """How a set of refits ended, in words, from their :attr:`FitResult.outcome` phrases:
    "3/5 fits met the stopping rule; 1 settled with ...; 1 not converged".

    Why: the scaling-law column's claim note must say how many of its refits actually
    converged, since on 6-8 runs some end with a coefficient running off to the edge of the
    parameter space, and the prediction is then trustworthy only because it settled."""
    outcomes = pd.Series(list(outcomes), dtype=object)
    n_edge = int(outcomes.str.startswith("settled at the edge").sum())
    parts = [f"{int((outcomes == 'converged').sum())}/{len(outcomes)} fits met the stopping rule"]
    if n_edge:
        parts.append(f"{n_edge} settled with a parameter running off to the edge of the parameter space "
                     "(predictions converged, see the outcome table)")
    if (outcomes == "not converged").any():
        parts.append(f"{int((outcomes == 'not converged').sum())} not converged")
    return "; ".join(parts)

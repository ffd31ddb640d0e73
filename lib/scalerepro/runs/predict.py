"""``scalerepro fit --predict TARGETS.csv``: the loss of runs not yet trained, with both intervals.

The numbers come from :mod:`scalerepro.core.prediction` (the confidence interval of the
mean law from the fit's bootstrap, the prediction interval of one new run adding the
run-to-run noise estimated from the residuals); this module lays them out per target,
says how far each target lies beyond the fitted runs, and records them: the rows of
``predictions.csv`` and the ``predictions`` section of ``results.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import prediction
from ..diagnostics import Diagnostic
from ..io.data import sha256_file

COLUMNS = ("N", "D", "C", "loss_pred", "ci_low", "ci_high", "pi_low", "pi_high", "extrapolation")
#: A target more than this factor beyond the fitted compute (or N, D range) is a warning.
FAR_BEYOND = 10.0


def _label(row) -> str:
    return str(row["run"]) if "run" in row and isinstance(row["run"], str) else f"line {int(row['line'])}"


def _beyond(value: float, lo: float, hi: float) -> float:
    """How many times ``value`` lies outside [lo, hi] (1 when inside)."""
    return float(max(value / hi, lo / value, 1.0))


def prediction_table(result, boot, law, train: pd.DataFrame, targets: pd.DataFrame, *, level: float = 0.95,
                     seed: int = 0) -> tuple[pd.DataFrame, prediction.Prediction, list[Diagnostic]]:
    """One row per target: its inputs, ``loss_pred`` with the confidence (``ci_*``) and
    prediction (``pi_*``) intervals, ``extrapolation`` (C over the largest fitted C) and
    ``outside_fitted`` (which of N and D lie outside the fitted runs' range); and an
    ``extrapolation`` diagnostic naming the targets beyond the fitted range."""
    pred = prediction.predict(result, targets[list(law.inputs)].to_numpy(float), boot, level=level, seed=seed)
    table = targets[[c for c in ("run", "N", "D", "C") if c in targets.columns]].reset_index(drop=True)
    table = pd.concat([table, pred.frame()], axis=1)
    for column in ("ci_low", "ci_high", "pi_low", "pi_high"):
        if column not in table.columns:   # no bootstrap: no confidence interval
            table[column] = np.nan
    c_max = float(train["C"].max()) if "C" in train.columns else float("nan")
    table["extrapolation"] = table["C"] / c_max if "C" in table.columns else np.nan
    outside, beyond = [], []
    for i, row in targets.reset_index(drop=True).iterrows():
        factors = {k: _beyond(row[k], float(train[k].min()), float(train[k].max()))
                   for k in ("N", "D") if k in row and k in train.columns}
        out = [k for k, f in factors.items() if f > 1 + 1e-9]
        outside.append(", ".join(out))
        worst = max([table.at[i, "extrapolation"], *factors.values()], default=1.0)
        if out or table.at[i, "extrapolation"] > 1 + 1e-9:
            beyond.append((_label(row), float(table.at[i, "extrapolation"]), out, worst))
    table["outside_fitted"] = outside
    diagnostics = []
    if beyond:
        far = any(w > FAR_BEYOND for *_, w in beyond)
        parts = [f"{name} ({factor:.3g}x the largest fitted compute"
                 + (f"; {' and '.join(out)} outside the fitted range" if out else "") + ")"
                 for name, factor, out, _ in beyond[:10]]
        diagnostics.append(Diagnostic(
            "extrapolation", "warning" if far else "info",
            f"{len(beyond)} of {len(table)} prediction targets lie beyond the fitted runs: " + "; ".join(parts)
            + (f"; and {len(beyond) - 10} more" if len(beyond) > 10 else "")
            + ": the intervals assume the law's form holds there, which `scalerepro backtest` checks",
            tuple(name for name, *_ in beyond)))
    return table, pred, diagnostics


def record(path, table: pd.DataFrame, pred: prediction.Prediction) -> dict:
    """The ``predictions`` section of results.json."""
    return {"file": str(path), "sha256": sha256_file(path), "n_targets": int(len(table)), **pred.record(),
            "columns": {"loss_pred": "the fitted law's loss", "ci_low, ci_high": "confidence interval of the mean law",
                        "pi_low, pi_high": "prediction interval of one new run",
                        "extrapolation": "C over the largest fitted C",
                        "outside_fitted": "which of N and D lie outside the fitted runs' range"},
            "points": table.to_dict(orient="records")}


def write_csv(table: pd.DataFrame, path) -> None:
    """``predictions.csv``: the listed columns first, landing by rename."""
    from ..publishing.results import write_text_atomic

    ordered = [c for c in ("run", *COLUMNS, "outside_fitted") if c in table.columns]
    write_text_atomic(path, table[ordered].to_csv(index=False))

"""``scalerepro fit --metric COLUMN --metric-law NAME``: a downstream metric chained to the loss fit.

After the loss law is fitted to a user's runs (:mod:`scalerepro.runs.fit`), the
metric column (an average error or an accuracy) is fitted against each run's *measured* loss
by a law from loss to metric (``exponential``: Err = eps - k exp(-gamma L); others from the
law registry taking one input, the loss). Predictions at requested targets chain the two:
the loss law predicts the target's loss, the metric law is evaluated at that prediction
(:mod:`scalerepro.core.chained`). The interval is a bootstrap over runs through both steps.

Targets are compute budgets (the loss law's compute-optimal allocation at each budget, for a
form that has one) and explicit (N, D) pairs (``--target N:D``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..analyses.law_registry import get_law
from ..core import design_checks
from ..core.chained import ChainedBootstrap, ChainedFit, Step
from ..core.fit import fit
from ..diagnostics import Diagnostic
from ..io import runs_input
from ..io.validate import InputError
from ..summary import Row, Summary


@dataclass
class UserChained:
    """The metric step, the chain's predictions at the targets and their intervals."""

    column: str
    chained: ChainedFit
    targets: pd.DataFrame            # N, D, C, source ("budget" or "target")
    boot: ChainedBootstrap | None
    rows_used: int
    rows_without_metric: int
    diagnostics: list
    selection: dict | None = None    # which rows the metric step used (see metric_points)

    def direction(self) -> str:
        law = self.chained.fit2.law
        if hasattr(law, "direction"):
            return law.direction(self.chained.fit2.params)
        return ""

    def table(self) -> pd.DataFrame:
        X = self.targets[list(self.chained.fit1.law.inputs)].to_numpy(float)
        pred = self.chained.predict(X)
        out = self.targets.assign(loss_pred=pred["loss"], metric_pred=pred["metric"])
        if self.boot is not None:
            out["loss_lo"], out["loss_hi"] = self.boot.loss_intervals().T
            out["metric_lo"], out["metric_hi"] = self.boot.metric_intervals().T
        return out

    def record(self) -> dict:
        f2 = self.chained.fit2
        return {"metric": self.column, "law": f2.law.name, "equation": f2.law.equation,
                "direction": self.direction(), "params": f2.params,
                "intervals": ({k: list(v) for k, v in self.boot.step2.intervals().items()} if self.boot else None),
                "objective": f2.objective.describe(), "outcome": f2.outcome, "rows_used": self.rows_used,
                "rows_without_metric": self.rows_without_metric, "selection": self.selection,
                "method": "chained: the metric law evaluated at the loss law's predicted loss",
                "predictions": self.table().to_dict(orient="records"),
                "bootstrap": self.boot.record() if self.boot is not None else None,
                "fit": f2.record(), "diagnostics": [d.record() for d in self.diagnostics]}

    def summary(self) -> Summary:
        rec = self.record()
        rows = [Row(f"{self.column} law {k}", v, tuple(rec["intervals"][k]) if rec["intervals"] else None)
                for k, v in rec["params"].items()]
        for p in rec["predictions"]:
            where = f"N={p['N']:.3g}, D={p['D']:.3g}"
            rows.append(Row(f"loss at {where}", p["loss_pred"], (p["loss_lo"], p["loss_hi"]) if self.boot else None))
            rows.append(Row(f"{self.column} at {where}", p["metric_pred"],
                            (p["metric_lo"], p["metric_hi"]) if self.boot else None))
        notes = [f"{rec['equation']}: {rec['direction']}", rec["method"]]
        return Summary(f"chained prediction of {self.column}", rows, notes, level=self.boot.level if self.boot else None)


def _targets(uf, budgets, targets) -> pd.DataFrame:
    rows = []
    law = uf.result.law
    for C in budgets or []:
        if not law.has_allocation:
            raise ValueError(f"--budget: form {law.name} has no compute-optimal allocation; give --target N:D")
        co = law.compute_optimal(uf.result.params, float(C))
        rows.append({"source": f"compute-optimal at C={float(C):.3g}", "N": float(co["N_opt"]), "D": float(co["D_opt"])})
    for N, D in targets or []:
        rows.append({"source": "target", "N": float(N), "D": float(D)})
    frame = pd.DataFrame(rows, columns=["source", "N", "D"])
    frame["C"] = 6 * frame["N"] * frame["D"]
    frame["M"] = frame["D"] / frame["N"]
    if "C" in law.inputs and len(law.inputs) == 1:
        return frame
    missing = [c for c in law.inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"--metric needs a loss law in N, D, M or C; {law.name} takes {list(law.inputs)}")
    return frame


METRIC_ROWS = ("fitted", "checkpoints")

#: How a metric law is fitted when its own protocol differs from the loss step's (Huber on log):
#: the sigmoid is Bhagia et al.'s step 2, least squares on the accuracy itself (a fraction), with
#: a in [-1, 0] (accuracy falls as the loss grows) and b in [0, 1].
METRIC_FIT = {"sigmoid": {"objective": "mse", "space": "raw",
                          "bounds": {"a": (-1.0, 0.0), "L0": (0.0, np.inf), "k": (0.0, np.inf), "b": (0.0, 1.0)}}}


def metric_points(uf, column: str, rows: str = "fitted", skip: float = 0.0, smooth: int = 1,
                  anchor: tuple | None = None) -> tuple[pd.DataFrame, dict]:
    """The metric step's rows (columns loss, metric, run, line) and their record.

    ``rows``: ``fitted``, the loss fit's own rows; or ``checkpoints``, every row read of the
    runs that entered the loss fit (Bhagia et al. fit step 2 on all checkpoints while step 1
    takes each run's final row: ``--checkpoints final --metric-rows checkpoints``). Within each
    run (in step order), ``skip`` drops the first ceil(skip x rows) rows and ``smooth`` takes a
    trailing moving average of that width of loss and metric separately (partial windows at a
    run's start). ``anchor`` (loss, metric) adds one point kept in every bootstrap resample."""
    if rows not in METRIC_ROWS:
        raise ValueError(f"--metric-rows must be one of {', '.join(METRIC_ROWS)}, got {rows!r}")
    if not (0.0 <= skip < 1.0) or int(smooth) != smooth or smooth < 1:
        raise ValueError(f"--metric-skip must be in [0, 1) and --metric-smooth a whole number >= 1; got {skip!r}, {smooth!r}")
    if rows == "fitted" and (skip or smooth > 1):
        raise ValueError("--metric-skip and --metric-smooth act on a run's checkpoints: use them with --metric-rows checkpoints")
    runs_of = runs_input.run_labels
    if rows == "fitted":  # the loss fit's rows, in its order
        frame = uf.train.assign(run=runs_of(uf.train).to_numpy())
        points = pd.DataFrame({"loss": frame["loss"].astype(float), "metric": pd.to_numeric(frame[column], errors="coerce"),
                               "run": frame["run"], "line": frame["line"]}).reset_index(drop=True)
    else:
        source = uf.prepared.source if uf.prepared is not None else uf.frame
        frame = source[runs_of(source).isin(set(runs_of(uf.train)))]
        frame = frame.assign(run=runs_of(frame).to_numpy())
        order = "step" if "step" in frame.columns else "D"
        parts = []
        for _, g in frame.sort_values(["run", order], kind="stable").groupby("run", sort=False):
            g = g.iloc[int(np.ceil(skip * len(g))):]
            values = pd.DataFrame({"loss": g["loss"].astype(float), "metric": pd.to_numeric(g[column], errors="coerce")})
            if smooth > 1:
                values = values.rolling(int(smooth), min_periods=1).mean()
            parts.append(values.assign(run=g["run"].to_numpy(), line=g["line"].to_numpy()))
        points = pd.concat(parts, ignore_index=True)
    if anchor is not None:
        points = pd.concat([points, pd.DataFrame({"loss": [float(anchor[0])], "metric": [float(anchor[1])],
                                                  "run": [""], "line": [0]})], ignore_index=True)
    record = {"rows": rows, "skip": float(skip), "smooth": int(smooth),
              "anchor": None if anchor is None else [float(anchor[0]), float(anchor[1])],
              "runs": int(frame["run"].nunique()), "rows_used": int(len(points)),
              "text": (f"{'the loss fit' + chr(39) + 's rows' if rows == 'fitted' else 'every checkpoint of the fitted runs'}"
                       + (f", first {skip:.0%} of each run dropped" if skip else "")
                       + (f", moving average of {int(smooth)}" if smooth > 1 else "")
                       + (f", anchor ({anchor[0]:g}, {anchor[1]:g})" if anchor is not None else ""))}
    return points, record


def chain_metric(uf, column: str, metric_law: str = "exponential", budgets=None, targets=None,
                 n_bootstrap: int = 1000, seed: int = 0, rows: str = "fitted", skip: float = 0.0,
                 smooth: int = 1, anchor: tuple | None = None) -> UserChained:
    """Fit ``metric_law`` to ``column`` against the fitted rows' measured loss (Huber on log
    metric, as the loss step) and chain it to ``uf``'s loss fit at the targets."""
    law = get_law(metric_law)
    if len(law.inputs) != 1:
        raise ValueError(f"--metric-law {metric_law}: a metric law takes one input (the loss); "
                         f"{law.name} takes {list(law.inputs)}")
    train = uf.train
    if column not in train.columns:
        raise InputError(str(uf.path), [f"--metric {column!r}: no such column (columns: "
                                        f"{', '.join(c for c in uf.frame.columns if c != 'line')})"])
    source = uf.prepared.source if uf.prepared is not None and rows == "checkpoints" else train
    values = pd.to_numeric(source[column], errors="coerce")
    text = source[column].notna() & values.isna()
    if text.any():
        line = int(source.loc[text, "line"].iloc[0])
        raise InputError(str(uf.path), [f"line {line}, column {column!r}: {source.loc[text, column].iloc[0]!r} is not a number"])
    bad = values.notna() & ~(values > 0)
    if bad.any():
        line = int(source.loc[bad, "line"].iloc[0])
        raise InputError(str(uf.path), [f"line {line}, column {column!r}: {values[bad].iloc[0]!r} is not positive "
                                        "(the metric law is fitted on log metric)"])
    points, selection = metric_points(uf, column, rows, skip, smooth, anchor)
    has = points["metric"].notna().to_numpy()
    if has.sum() <= law.n_params:
        raise InputError(str(uf.path), [f"--metric {column!r}: {int(has.sum())} fitted rows have a value; "
                                        f"{law.name} has {law.n_params} parameters"])
    runs = uf.prepared.runs.to_numpy().astype(str) if uf.prepared is not None else None
    loss_law = uf.result.law
    X1 = train[list(loss_law.inputs)].to_numpy(float)
    o = uf.result.objective
    step1 = Step(loss_law, X1, train["loss"].to_numpy(float), runs,
                 {"objective": o.kind, "delta": o.delta, "space": o.space, "reduction": o.reduction, "warn": False})
    # without run ids (rows == "fitted", no run column) each row is its own run, as in the loss step
    metric_runs = points["run"].to_numpy()[has] if runs is not None or rows == "checkpoints" else None
    step2 = Step(law, points.loc[has, ["loss"]].to_numpy(float), points.loc[has, "metric"].to_numpy(float),
                 metric_runs, {**METRIC_FIT.get(law.name, {}), "warn": False})
    fit2 = fit(law, step2.X, step2.y, **step2.fit_kwargs)
    chained = ChainedFit(step1, step2, uf.result, fit2)
    table = _targets(uf, budgets, targets)
    boot = None
    if n_bootstrap and len(table):
        boot = chained.bootstrap(table[list(loss_law.inputs)].to_numpy(float), n_resamples=n_bootstrap, seed=seed)
    # an anchor point (run "", e.g. Bhagia's (0, 1)) is not data the law was fitted on
    fitted_losses = step2.X[step2.runs != "", 0]
    diagnostics = [replace(d, message=f"{column} law: {d.message}", subjects=(column,))
                   for d in design_checks.design_diagnostics(pd.DataFrame({"L": fitted_losses}), law)
                   if d.code == "design_points"]  # decades of a loss say nothing; the count of points does
    lowest = float(fitted_losses.min())
    below = table[chained.predict(table[list(loss_law.inputs)].to_numpy(float))["loss"] < lowest] if len(table) else table
    if len(below):
        diagnostics.append(Diagnostic(
            "extrapolation", "warning",
            f"the {column} law is extrapolated: {len(below)} target(s) have a predicted loss below the lowest loss "
            f"it was fitted on ({lowest:.4g}); read the chained intervals, not only the point", (column,)))
    if (~has).any():
        diagnostics.append(Diagnostic("dropped_points", "info", f"{int((~has).sum())} fitted rows have no {column} "
                                      "value: they enter the loss step only", (column,)))
    if not fit2.converged:
        diagnostics.append(Diagnostic("not_identified", "warning", f"the {column} law's fit ended {fit2.outcome}: "
                                      "treat its parameters and the chained predictions as unreliable", (column,)))
    if boot is not None and boot.n_failed:
        diagnostics.append(Diagnostic("no_interval" if boot.n_used == 0 else "dropped_points", "warning",
                                      "; ".join(boot.warnings()), (column,)))
    return UserChained(column, chained, table, boot, int(has.sum()), int((~has).sum()), diagnostics, selection)

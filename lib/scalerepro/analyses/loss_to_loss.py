"""Loss-to-loss prediction: shifted power laws between two losses.

Brandfonbrener et al. 2024 relate two losses by y = K (x - E_x)^kappa + E_y, where the
shifts E_x, E_y are the irreducible losses of x and y. Once the shifts are known, the
law is a straight line in log(x - E_x), log(y - E_y), so kappa and K come from ordinary
least squares in closed form (and so do thousands of bootstrap resamples at once, as
one matrix product). Three fits cover the cases met in practice:

- ``ShiftedPowerLaw.fit_ols``: both shifts known (stage-1 irreducible losses).
- ``ShiftedPowerLaw.fit_nonlinear``: E_x known, E_y fitted by bounded least squares, as
  the authors' "general train-to-test" and test-to-test maps do (``fit_pair`` builds
  such a map between two datasets' runs).
- ``ShiftedPowerLaw.fit_grid_profile``: neither shift known and only a handful of points,
  e.g. a loss against compute (``flops_to_loss``).

The functions here are generic: a "sweep" is any table with one row per training run, a
column naming the training dataset, columns to pair runs on (e.g. N and D) and loss
columns. Nothing here knows the paper's column names.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import scipy.optimize

from ..core.bootstrap import BootstrapResult, resample_weights
from ..errors import LossToLossError
from ..summary import Row, Summary


_GRID_BLOCK_ELEMENTS = 4_000_000   # residuals held at once by fit_grid_profile (32 MB)


@dataclass(frozen=True)
class ShiftedPowerLaw:
    """y = K (x - E_x)^kappa + E_y, with how it was fitted.

    E_x is the shift of x, whatever x is: an irreducible loss, or a compute offset when x
    is training compute (``flops_to_loss``)."""

    K: float
    kappa: float
    E_x: float
    E_y: float
    r2: float = float("nan")      # R^2 of y (raw space) on the fitted points
    n: int = 0                    # number of points fitted
    method: str = ""              # "ols" (shifts fixed), "nonlinear" (E_y free), "grid_profile"
    extra: dict = field(default_factory=dict, compare=False)

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.K * np.power(x - self.E_x, self.kappa) + self.E_y

    def record(self) -> dict:
        return {"K": self.K, "kappa": self.kappa, "E_x": self.E_x, "E_y": self.E_y,
                "r2": self.r2, "n": self.n, "method": self.method, **self.extra}

    def summary(self) -> Summary:
        """The map at a glance, from :meth:`record`: its four parameters, R^2 and how it was fitted."""
        rec = self.record()
        rows = [Row(name, rec[name]) for name in ("kappa", "K", "E_x", "E_y", "r2")]
        return Summary(f"y = K (x - E_x)^kappa + E_y ({rec['method'] or 'given'}, {rec['n']} points)", rows)

    # --------------------------------------------------------------------- fits
    @classmethod
    def fit_ols(cls, x, y, E_x: float, E_y: float) -> "ShiftedPowerLaw":
        """kappa and K by OLS of log(y - E_y) on log(x - E_x), shifts fixed."""
        x, y = _check_xy(x, y, E_x, E_y, min_points=2)
        kappa, logK = ols_loglog(x, y, E_x, E_y)
        law = cls(float(np.exp(logK[0])), float(kappa[0]), float(E_x), float(E_y), method="ols")
        return law._with_r2(x, y)

    @classmethod
    def fit_nonlinear(cls, x, y, E_x: float, start=None, kappa_bounds=(0.0, np.inf),
                      E_y_bounds: tuple[float, float] | None = None) -> "ShiftedPowerLaw":
        """kappa, K and E_y by bounded least squares on y (linear space), E_x fixed.

        Use it when E_x is known (a stage-1 irreducible loss) but E_y is not, e.g. a target
        dataset with too few runs for its own scaling law. This is the fit of the authors'
        translation experiment: ``scipy.optimize.curve_fit`` (trust-region reflective) from
        ``start`` = (kappa, K, E_y), default (1, 1, 0), with scipy's default tolerances,
        K >= 0, kappa in ``kappa_bounds`` (default >= 0: two losses fall together; pass
        (-inf, 0) for a loss against compute, with a start near the answer, e.g. from
        ``fit_ols``) and E_y in ``E_y_bounds`` (default [0, min y]: below zero a loss shift
        is meaningless, above min y the power term would have to be negative). The record
        says whether E_y ended on a bound: there the shift is set by the bound, not the data.
        """
        x, y = _check_xy(x, y, E_x, None, min_points=3)
        lo, hi = E_y_bounds if E_y_bounds is not None else (0.0, float(y.min()))
        hi = min(hi, float(y.min()))
        if not lo < hi:
            raise LossToLossError(f"E_y bounds [{lo}, {hi}] are empty (min y = {y.min():.6g})")
        k_lo, k_hi = map(float, kappa_bounds)
        kappa0, K0, E_y0 = (1.0, 1.0, 0.0) if start is None else map(float, start)
        start = [float(np.clip(kappa0, k_lo, k_hi)), max(K0, 0.0), float(np.clip(E_y0, lo, hi))]

        def law(xs, kappa, K, E_y):
            return K * np.power(np.maximum(xs - E_x, 0.0), kappa) + E_y

        try:
            params, _, info, message, status = scipy.optimize.curve_fit(
                law, x, y, p0=start, bounds=([k_lo, 0.0, lo], [k_hi, np.inf, hi]), method="trf",
                maxfev=500_000, full_output=True)
            converged = status > 0
        except RuntimeError as err:   # curve_fit raises when least squares did not succeed
            raise LossToLossError(f"bounded least squares did not converge: {err}") from None
        kappa, K, E_y = map(float, params)
        at_bound = bool(np.isclose(E_y, lo, atol=1e-9) or np.isclose(E_y, hi, atol=1e-9))
        fitted = cls(K, kappa, float(E_x), E_y, method="nonlinear",
                     extra={"converged": bool(converged), "E_y_at_bound": at_bound,
                            "E_y_bounds": [lo, hi], "kappa_bounds": [k_lo, k_hi],
                            "optimizer": "scipy curve_fit (trf), default tolerances",
                            "start": start, "n_evaluations": int(info["nfev"]), "message": str(message)})
        return fitted._with_r2(x, y)

    @classmethod
    def fit_grid_profile(cls, x, y, n_grid: int = 100) -> "ShiftedPowerLaw":
        """All four of y = K (x - x0)^kappa + E_y fitted: a grid over the two shifts, OLS inside.

        Use it when neither shift is known and there are only a handful of points, e.g. a
        loss against training compute on 6-8 runs (Brandfonbrener et al.'s FLOPs-to-loss):
        a nonlinear solver on four parameters and so few points depends on where it starts,
        while this search is deterministic and cannot land outside its grid. x0 takes
        ``n_grid`` values ``linspace(0, min x)`` and E_y ``n_grid`` values ``linspace(0, min
        y)``; at each pair, kappa and log K are the OLS slope and intercept of log(y - E_y)
        on log(x - x0), and the pair kept is the one with the lowest mean squared error of y
        in linear space (ties: the first, x0 varying slowest). A pair with a shift equal to
        the smallest value puts log(0) in the fit and is skipped. So the shifts are only
        resolved to one grid step (min x / (n_grid - 1), min y / (n_grid - 1)), and the
        result is the best grid point, not the continuous least-squares optimum; both are
        part of the published method, and the record keeps the grid and whether a shift
        ended on its edge. Needs x > 0 and y > 0 (the grid starts at 0).
        """
        x, y = _check_xy(x, y, -np.inf, None, min_points=3)
        if n_grid < 2:
            raise LossToLossError(f"n_grid must be at least 2, got {n_grid}")
        if x.min() <= 0 or y.min() <= 0:
            raise LossToLossError(f"the grid profile needs x > 0 and y > 0 (its shift grids start at 0); "
                                  f"min x = {x.min():.6g}, min y = {y.min():.6g}")
        if np.ptp(x) == 0:
            raise LossToLossError("all x are equal: no slope to fit")
        x_shifts, y_shifts = np.linspace(0.0, x.min(), n_grid), np.linspace(0.0, y.min(), n_grid)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = np.log(x[None, :] - x_shifts[:, None])          # (n_grid, n): one row per x0
            v = np.log(y[None, :] - y_shifts[:, None])          # (n_grid, n): one row per E_y
            du, dv = u - u.mean(axis=1, keepdims=True), v - v.mean(axis=1, keepdims=True)
            kappa = (du @ dv.T) / np.sum(du * du, axis=1)[:, None]       # (x0, E_y)
            log_K = v.mean(axis=1)[None, :] - kappa * u.mean(axis=1)[:, None]
            # Residuals of every (x0, E_y, point) at once, in blocks of x0 rows to bound memory.
            block = max(1, _GRID_BLOCK_ELEMENTS // (n_grid * x.size))
            mse = np.concatenate([
                np.mean((np.exp(log_K[r:r + block, :, None] + kappa[r:r + block, :, None] * u[r:r + block, None, :])
                         + y_shifts[None, :, None] - y) ** 2, axis=2)
                for r in range(0, n_grid, block)])
        mse = np.where(np.isfinite(mse), mse, np.inf)
        if not np.isfinite(mse).any():
            raise LossToLossError("no grid point gives a finite fit")
        i, j = np.unravel_index(np.argmin(mse), mse.shape)   # argmin: first minimum, row-major
        fitted = cls(float(np.exp(log_K[i, j])), float(kappa[i, j]), float(x_shifts[i]), float(y_shifts[j]),
                     method="grid_profile",
                     extra={"n_grid": n_grid, "x_shift_grid": [0.0, float(x.min())],
                            "E_y_grid": [0.0, float(y.min())], "mse": float(mse[i, j]),
                            "x_shift_at_edge": bool(i in (0, n_grid - 1)),
                            "E_y_at_edge": bool(j in (0, n_grid - 1))})
        return fitted._with_r2(x, y)

    def _with_r2(self, x, y) -> "ShiftedPowerLaw":
        resid = y - self.predict(x)
        tot = np.sum((y - y.mean()) ** 2)
        r2 = float(1 - np.sum(resid ** 2) / tot) if tot > 0 else float("nan")
        return ShiftedPowerLaw(self.K, self.kappa, self.E_x, self.E_y, r2, len(y), self.method, self.extra)


def _check_xy(x, y, E_x, E_y, min_points):
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise LossToLossError(f"x and y must have the same length, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise LossToLossError(f"x or y has non-finite values at rows "
                              f"{np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))[:10].tolist()}")
    if x.size < min_points:
        raise LossToLossError(f"need at least {min_points} points, got {x.size}")
    if not np.all(x > E_x):
        raise LossToLossError(f"E_x = {E_x:.6g} is not below every x (min x = {x.min():.6g}); "
                              "the shift must be smaller than every loss")
    if E_y is not None and not np.all(y > E_y):
        raise LossToLossError(f"E_y = {E_y:.6g} is not below every y (min y = {y.min():.6g}); "
                              "the shift must be smaller than every loss")
    return x, y


def ols_loglog(x, y, E_x: float, E_y: float, weights=None):
    """Slope kappa and intercept log K of log(y - E_y) on log(x - E_x).

    weights: ``(R, n)`` multiplicities (one bootstrap resample per row) or None. Returns
    two arrays of shape ``(R,)`` (``(1,)`` without weights): closed-form weighted least
    squares, so all resamples cost one matrix product.
    """
    u = np.log(np.asarray(x, float) - E_x)
    v = np.log(np.asarray(y, float) - E_y)
    W = np.ones((1, u.size)) if weights is None else np.atleast_2d(np.asarray(weights, float))
    sw = W.sum(axis=1)
    mu, mv = W @ u / sw, W @ v / sw
    suu = W @ (u * u) / sw - mu * mu
    suv = W @ (u * v) / sw - mu * mv
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = suv / suu
    return kappa, mv - kappa * mu


def bootstrap_ols(x, y, E_x: float, E_y: float, n_resamples: int, seed: int = 0,
                  level: float = 0.95) -> BootstrapResult:
    """Bootstrap of kappa and K over resamples of the matched runs (shifts fixed), as the
    same :class:`~scalerepro.core.bootstrap.BootstrapResult` every fit's bootstrap returns
    (``.interval("kappa")``, ``.record()``); each resample's fit is the closed-form
    weighted OLS, all resamples at once.

    A resample whose points all share one x value has no slope and is dropped (counted in
    ``n_failed``)."""
    t0 = time.perf_counter()
    x, y = _check_xy(x, y, E_x, E_y, min_points=2)
    W = resample_weights(len(x), n_resamples, seed)
    kappa, logK = ols_loglog(x, y, E_x, E_y, W)
    ok = np.isfinite(kappa) & np.isfinite(logK)
    full = ShiftedPowerLaw.fit_ols(x, y, E_x, E_y)
    return BootstrapResult(samples={"kappa": kappa[ok], "K": np.exp(logK[ok])},
                           theta_samples=np.column_stack([kappa, logK])[ok], n_resamples=n_resamples,
                           n_failed=int((~ok).sum()), seed=seed, level=level, resampling="matched runs",
                           warm_start="none: closed-form weighted OLS per resample",
                           seconds=time.perf_counter() - t0, point_estimate={"kappa": full.kappa, "K": full.K})


# --------------------------------------------------------------------------- pairing
def pair_runs(df: pd.DataFrame, dataset_col: str, pair_on, dataset_0, dataset_1,
              columns) -> pd.DataFrame:
    """Inner join of the runs trained on ``dataset_0`` and on ``dataset_1`` that agree on
    every column in ``pair_on`` (e.g. N and D): one row per matched pair, with each of
    ``columns`` suffixed ``_0`` and ``_1``. With ``dataset_0 == dataset_1`` each run is
    paired with itself (train-to-test: two losses of one model).

    Raises if the key is not unique within a dataset, because a many-to-many join would
    silently duplicate runs and weight them twice.
    """
    pair_on = [pair_on] if isinstance(pair_on, str) else list(pair_on)
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in [dataset_col, *pair_on, *columns] if c not in df.columns]
    if missing:
        raise LossToLossError(f"columns {missing} not in the table (has {list(df.columns)[:20]}...)")
    parts = []
    for d in (dataset_0, dataset_1):
        part = df.loc[df[dataset_col] == d, [*pair_on, *columns]]
        if part.empty:
            raise LossToLossError(f"no runs with {dataset_col} == {d!r}; datasets: "
                                  f"{sorted(map(str, df[dataset_col].unique()))}")
        dup = part.duplicated(pair_on)
        if dup.any():
            raise LossToLossError(f"{dataset_col} == {d!r} has several runs with the same "
                                  f"{pair_on}: {part.loc[dup, pair_on].head(3).to_dict('records')}")
        parts.append(part)
    if dataset_0 == dataset_1:
        out = parts[0].copy()
        for c in columns:
            out[f"{c}_0"] = out[c]
            out[f"{c}_1"] = out[c]
        return out.drop(columns=[c for c in columns if c not in pair_on]).reset_index(drop=True)
    return parts[0].merge(parts[1], on=pair_on, suffixes=("_0", "_1"), how="inner")


Shifts = Mapping[tuple, float] | Callable[[str, str], float]


def shift_for(shifts: Shifts | None, dataset, loss, required: bool = True) -> float | None:
    """The shift (irreducible loss) of ``loss`` on ``dataset`` from ``{(dataset, loss): E}``
    (a dict or a Series with that index) or a function ``(dataset, loss) -> E``; None without
    shifts. A missing entry is an error naming both, unless ``required`` is False."""
    if shifts is None:
        return None
    if callable(shifts):
        return float(shifts(dataset, loss))
    try:
        return float(shifts[(dataset, loss)])
    except KeyError:
        if not required:
            return None
        raise LossToLossError(f"no shift (irreducible loss) given for dataset {dataset!r}, "
                              f"loss {loss!r}") from None


def fit_pair(df: pd.DataFrame, dataset_col: str, pair_on, dataset_0, dataset_1, x_loss: str,
             y_loss: str | None = None, *, E_x: float, E_y: float | None = None) -> ShiftedPowerLaw:
    """One shifted power law from the runs of ``dataset_0`` to those of ``dataset_1``.

    x is ``x_loss`` of each dataset_0 run, y is ``y_loss`` (default: the same column) of
    the dataset_1 run with the same ``pair_on`` values (``pair_runs``); runs missing either
    loss are dropped. E_x is fixed; with ``E_y`` given, kappa and K come from OLS
    (``ShiftedPowerLaw.fit_ols``), without it E_y is fitted too
    (``ShiftedPowerLaw.fit_nonlinear``). The latter is the authors' map for extrapolating a
    target dataset from a source: "general train-to-test" (x_loss the source's train loss,
    y_loss a test loss of the target's run) and test-to-test (x_loss == y_loss, a test
    loss); both go through here, only the columns and E_x differ.
    """
    y_loss = x_loss if y_loss is None else y_loss
    cols = [x_loss] if x_loss == y_loss else [x_loss, y_loss]
    joined = pair_runs(df, dataset_col, pair_on, dataset_0, dataset_1, cols)
    x = joined[f"{x_loss}_0"].to_numpy(float)
    y = joined[f"{y_loss}_1"].to_numpy(float)
    keep = np.isfinite(x) & np.isfinite(y)
    try:
        if E_y is None:
            law = ShiftedPowerLaw.fit_nonlinear(x[keep], y[keep], E_x)
        else:
            law = ShiftedPowerLaw.fit_ols(x[keep], y[keep], E_x, E_y)
    except LossToLossError as err:
        raise LossToLossError(f"pair ({dataset_0!r} -> {dataset_1!r}), {x_loss} -> {y_loss}: {err}") from None
    return ShiftedPowerLaw(law.K, law.kappa, law.E_x, law.E_y, law.r2, law.n, law.method,
                           {**law.extra, "n_dropped_missing": int((~keep).sum())})


def flops_to_loss(compute, loss, n_grid: int = 100) -> ShiftedPowerLaw:
    """Brandfonbrener et al.'s FLOPs-to-loss map, fitted on one dataset's runs.

    loss = K (C - C0)^kappa + E with all four parameters free (kappa comes out negative),
    by ``ShiftedPowerLaw.fit_grid_profile`` on a 100 x 100 grid over (C0, E): the baseline
    that needs no other dataset. compute: each run's training compute (in their sweep the
    nominal IsoFLOP budget, ``iso_flop``). Runs without a loss are dropped. The law's E_x
    is the compute shift C0; ``predict(C)`` extrapolates.
    """
    compute, loss = np.asarray(compute, float).ravel(), np.asarray(loss, float).ravel()
    if compute.shape != loss.shape:
        raise LossToLossError(f"compute and loss must have the same length, got {compute.size} and {loss.size}")
    keep = np.isfinite(loss)
    return ShiftedPowerLaw.fit_grid_profile(compute[keep], loss[keep], n_grid=n_grid)


def fit_pairs(df: pd.DataFrame, dataset_col: str, pair_on, x_loss: str, y_loss: str | None = None,
              shifts: Shifts | None = None, pairs=None, method: str = "ols") -> pd.DataFrame:
    """Fit y = K (x - E_x)^kappa + E_y for every pair of training datasets (``fit_pair``).

    x is ``x_loss`` of the run trained on dataset_0, y is ``y_loss`` (default: the same
    column) of the run trained on dataset_1 with the same ``pair_on`` values; with
    dataset_0 == dataset_1 both losses come from one run. shifts: ``{(dataset, loss):
    E}`` or a function ``(dataset, loss) -> E`` giving each loss's irreducible term, so
    E_x = shifts[(dataset_0, x_loss)] and E_y = shifts[(dataset_1, y_loss)]. method:
    ``"ols"`` (both shifts fixed) or ``"nonlinear"`` (E_y fitted; y shifts not needed).
    pairs: list of (dataset_0, dataset_1); default all ordered pairs of distinct datasets.

    Returns one row per pair: dataset_0, dataset_1, kappa, K, E_x, E_y, r2, n_pairs.
    """
    if method not in ("ols", "nonlinear"):
        raise LossToLossError(f"unknown method {method!r}; valid: ols, nonlinear")
    y_loss = x_loss if y_loss is None else y_loss
    if pairs is None:
        datasets = sorted(df[dataset_col].dropna().unique())
        pairs = list(itertools.permutations(datasets, 2))
    rows = []
    for d0, d1 in pairs:
        E_x = shift_for(shifts, d0, x_loss)
        if E_x is None:
            raise LossToLossError("fit_pairs needs shifts for x (E_x is never fitted)")
        E_y = None
        if method == "ols":
            E_y = shift_for(shifts, d1, y_loss)
            if E_y is None:
                raise LossToLossError("method='ols' needs shifts for y too")
        law = fit_pair(df, dataset_col, pair_on, d0, d1, x_loss, y_loss, E_x=E_x, E_y=E_y)
        rows.append({"dataset_0": d0, "dataset_1": d1, "kappa": law.kappa, "K": law.K,
                     "E_x": law.E_x, "E_y": law.E_y, "r2": law.r2, "n_pairs": law.n})
    return pd.DataFrame(rows, columns=["dataset_0", "dataset_1", "kappa", "K", "E_x", "E_y", "r2", "n_pairs"])

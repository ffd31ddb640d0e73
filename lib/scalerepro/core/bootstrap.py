"""Seeded nonparametric bootstrap of a fit, vectorised over resamples.

A resample is represented by multiplicities: a ``(R, n)`` array of how often each point
appears. The objective is then a weighted sum, so all resamples are refitted together by
the same batched Newton solver as the multi-start fit, each warm-started from the
full-data optimum (the optimum of a resample lies close to it, so a few Newton steps
suffice). With checkpoints, whole runs are resampled (cluster bootstrap): pass
``groups``, one label per point.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .fit import DRIFT, SETTLED_LOG_PREDICTION, FitResult, _as_bounds, fit, probe_stalled
from .newton import newton_batch
from .objective import Problem
from .stats import percentile_interval
from ..summary import Row, Summary

# Fits whose optimum is a Newton optimum: their resamples are refitted with its settings.
NEWTON_FITS = ("newton", "profile")


@dataclass
class BootstrapResult:
    """Bootstrap samples of the natural parameters and of derived quantities."""

    samples: dict[str, np.ndarray]        # name -> (R,) over successful resamples
    theta_samples: np.ndarray             # (R, p) in the law's fitted parameterization, as the
                                          # refits stopped (finite even where samples hold a limit)
    n_resamples: int
    n_failed: int                         # neither converged nor settled: excluded
    seed: int
    level: float
    resampling: str
    warm_start: str
    seconds: float
    point_estimate: dict[str, float] = field(default_factory=dict)
    n_settled: int = 0                    # stopped at max_iter with settled predictions: included
    # (n_resamples,) which resamples were kept (converged or settled): row i of theta_samples is
    # resample flatnonzero(succeeded)[i], so bootstraps drawn from one weight matrix can be aligned
    succeeded: np.ndarray | None = None

    @property
    def failed_share(self) -> float:
        return self.n_failed / self.n_resamples if self.n_resamples else 0.0

    def interval(self, name: str, level: float | None = None) -> tuple[float, float]:
        return percentile_interval(self.samples[name], self.level if level is None else level)

    def intervals(self, level: float | None = None) -> dict[str, list[float]]:
        """Percentile intervals of every quantity, as ``name -> [low, high]``."""
        return {k: list(self.interval(k, level)) for k in self.samples}

    def standard_errors(self) -> dict[str, float]:
        """Sample standard deviations; NaN for a quantity with a draw at its limit (inf)."""
        with np.errstate(invalid="ignore"):
            return {k: float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
                    for k, v in self.samples.items()}

    def covariance(self, names=None) -> np.ndarray:
        """Covariance of named quantities, or of the fitted parameterization (in which
        the sampling distribution is closest to normal) when no names are given."""
        if names is None:
            return np.cov(self.theta_samples, rowvar=False)
        return np.cov(np.vstack([self.samples[n] for n in names]))

    def warnings(self) -> list[str]:
        out = []
        if self.n_settled:
            out.append(f"{self.n_settled} of {self.n_resamples} bootstrap refits stopped at max_iter with their "
                       "predictions settled while a coefficient ran off to the edge of the parameter space "
                       "(e.g. E -> 0); they are included with that coefficient at its limit (0 or infinity), "
                       "so an interval end of 0 or inf means the data do not bound it")
        if self.n_resamples and self.n_failed == self.n_resamples:
            out.append(f"all {self.n_resamples} bootstrap resamples (100%) failed to converge: "
                       "no intervals or standard errors")
        elif self.n_failed:
            out.append(f"{self.n_failed} of {self.n_resamples} bootstrap resamples "
                       f"({self.failed_share:.1%}) failed to converge and were excluded")
        return out

    def record(self) -> dict:
        return {
            "method": "nonparametric bootstrap, percentile intervals",
            "resampling": self.resampling,
            "warm_start": self.warm_start,
            "n_resamples": self.n_resamples,
            "n_failed": self.n_failed,
            "n_settled_at_edge": self.n_settled,
            "failed_share": self.failed_share,
            "seed": self.seed,
            "level": self.level,
            "intervals": self.intervals(),
            "standard_errors": self.standard_errors(),
            "warnings": self.warnings(),
            "seconds": round(self.seconds, 4),
        }

    def summary(self) -> Summary:
        """The intervals at a glance, from :meth:`record`: each quantity's full-data
        estimate (where known), percentile interval and standard error, then how the
        resamples were drawn and refitted and what failed. ``print()`` it for text; in
        Jupyter it displays as a table."""
        rec = self.record()
        rows = [Row(name, self.point_estimate.get(name), interval, rec["standard_errors"].get(name))
                for name, interval in rec["intervals"].items()]
        notes = [f"method: {rec['method']}, resampling {rec['resampling']}, seed {rec['seed']}",
                 f"refits: warm start {rec['warm_start']}; {rec['n_failed']} failed, "
                 f"{rec['n_settled_at_edge']} settled at the edge"]
        notes += [f"warning: {w}" for w in rec["warnings"]]
        return Summary(f"bootstrap: {rec['n_resamples']} resamples", rows, notes, level=rec["level"])


def resample_weights(n_points: int, n_resamples: int, seed: int, groups=None) -> np.ndarray:
    """``(R, n)`` multiplicities: points drawn with replacement, or whole groups."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=n_resamples).astype(float)
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    k = len(labels)
    group_counts = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)
    return group_counts[:, index].astype(float)


def _refit_chunk(law, X, y, objective, theta0, options, optimizer, weights, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """Refit one chunk of resamples (rows of ``weights``) from ``theta0``: their parameters
    and whether each refit converged to finite values. A task of its own on a Dask worker.

    A Newton (or profile) fit's resamples are refitted together by the batched solver; any
    other optimizer's (a scipy method, e.g. for MAE, which has no curvature) one resample at
    a time with that same optimizer, so each interval comes from the method that made the fit.
    ``bounds``: the fit's own bounds (``{name: (low, high)}``), which every refit keeps."""
    if optimizer not in NEWTON_FITS:
        return _refit_each(law, X, y, objective, theta0, optimizer, weights, bounds)
    problem = Problem(law, X, y, objective, weights)
    start = np.repeat(theta0[None, :], len(weights), axis=0)
    # warm starts next to their optimum begin in the exact-Hessian phase
    theta, values, converged, _ = newton_batch(problem, start, _as_bounds(law, bounds), start_exact=True, **options)
    return theta, converged & np.isfinite(values) & np.isfinite(theta).all(axis=1)


def _refit_each(law, X, y, objective, theta0, optimizer, weights, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """The scipy optimizers' refits, a loop over resamples (use few resamples)."""
    theta = np.empty((len(weights), law.n_params))
    ok = np.zeros(len(weights), bool)
    with np.errstate(all="ignore"):
        for i, w in enumerate(weights):  # a refit's warnings are summed up in n_failed
            r = fit(law, X, y, objective=objective.kind, delta=objective.delta, space=objective.space,
                    reduction=objective.reduction, starts=theta0[None, :], optimizer=optimizer, weights=w[None, :],
                    bounds=bounds, warn=False)
            theta[i], ok[i] = r.theta, r.converged and np.isfinite(r.theta).all()
    return theta, ok


def _refit_all(result: FitResult, X, y, weights, options, chunk, progress, client):
    """Every resample's refit, chunk by chunk, in this process or (``client``) on Dask workers."""
    from . import scheduler

    n = len(weights)
    refit = functools.partial(_refit_chunk, result.law, X, y, result.objective, result.theta, options,
                              result.optimizer["name"], bounds=result.bounds)
    with scheduler.session(client if n else None) as client:
        if client is not None:
            threads = sum(client.nthreads().values()) or 1
            chunk = max(1, min(chunk, -(-n // (2 * threads))))
        bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
        outcomes = scheduler.map_tasks(client, refit, [weights[lo:hi] for lo, hi in bounds], desc="bootstrap",
                                       unit="resample", sizes=[hi - lo for lo, hi in bounds], progress=progress)
    for outcome in outcomes:
        if not outcome.ok:  # a partial bootstrap is no bootstrap: fail as the in-process loop would
            raise outcome.error
    theta = np.empty((n, result.law.n_params))
    ok = np.zeros(n, bool)
    for (lo, hi), outcome in zip(bounds, outcomes):
        theta[lo:hi], ok[lo:hi] = outcome.value
    return theta, ok


def bootstrap(result: FitResult, X=None, y=None, n_resamples: int = 1000, seed: int = 0, groups=None,
              derived: dict[str, Callable[[dict], np.ndarray]] | None = None,
              level: float = 0.95, chunk: int = 1000, progress: bool = False,
              client=None, weights=None) -> BootstrapResult:
    """Refit ``result``'s law, objective and options on ``n_resamples`` resamples of its
    data (``X``, ``y``: default the data the fit holds; give them only to resample other data).

    derived: functions of the natural parameters (a dict of arrays) whose bootstrap
    distribution is wanted too, e.g. the allocation exponent or tokens per parameter.
    A refit that stops at ``max_iter`` is continued (:func:`scalerepro.core.fit.probe_stalled`):
    if its predictions have settled (typically a coefficient running off to 0, where the
    full-data fit may sit too) it is kept, with each coordinate that was still drifting at
    its limit (E = 0, B = inf, ...), and counted in ``n_settled``: dropping exactly those
    resamples would cut the edge off the interval. Otherwise it is excluded and counted in
    ``n_failed``.

    ``client``: refit the resamples on Dask workers -- a ``dask.distributed.Client``, or a
    ``--scheduler`` value (``local:N``, an address) opened for this call only (see
    :func:`scalerepro.core.scheduler.session`) -- in chunks of at most ``chunk``, about two per
    worker thread. The resample weights are drawn here from ``seed``, exactly as without a
    client, and each refit depends only on its own weights, so samples and intervals are the same.

    ``weights``: a precomputed ``(R, n)`` multiplicity matrix (one row per resample) instead of
    drawing one from ``seed`` and ``groups``; ``n_resamples`` is then R. This is how two fits
    are refitted on the same draw of runs (:mod:`scalerepro.core.chained`); the result's
    ``succeeded`` says which rows were kept, so their samples can be matched resample by resample.
    """
    precomputed = weights is not None
    if precomputed:
        if groups is not None:
            raise ValueError("give precomputed weights or groups to draw them from, not both")
        weights = np.atleast_2d(np.asarray(weights, float))
        n_resamples = len(weights)
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    t0 = time.perf_counter()
    if (X is None) != (y is None):  # one alone would be silently replaced by the fit's own data
        raise ValueError("give both X and y (to resample other data), or neither (the fit's own data)")
    if X is None:
        if result.problem is None:
            raise ValueError("give X and y: this FitResult does not hold its data")
        X, y = result.problem.X, result.problem.y
    X, y = np.asarray(X, float), np.asarray(y, float)
    law = result.law
    if weights is None:
        weights = resample_weights(len(y), n_resamples, seed, groups)
    elif weights.shape[1] != len(y):
        raise ValueError(f"weights must have one column per point ({len(y)}); got shape {weights.shape}")
    problem = Problem(law, X, y, result.objective, weights)
    options = {k: v for k, v in result.optimizer["tolerances"].items()
               if k in ("max_iter", "ftol_rel", "gtol")} if result.optimizer["name"] in NEWTON_FITS else {}
    theta, ok = _refit_all(result, X, y, weights, options, chunk, progress, client)
    at_edge = theta.copy()  # settled refits with each drifting coordinate at its limit
    stalled = np.flatnonzero(~ok & np.isfinite(theta).all(axis=1))
    if stalled.size and result.optimizer["name"] in NEWTON_FITS:
        probed, _, _, _, change = probe_stalled(problem, theta[stalled], stalled, _as_bounds(law, result.bounds),
                                                options)
        keep = change <= SETTLED_LOG_PREDICTION
        settled = stalled[keep]
        drift = probed[keep] - theta[settled]
        at_edge[settled] = np.where(np.abs(drift) >= DRIFT, np.copysign(np.inf, drift), theta[settled])
        ok[settled] = True
    else:
        settled = stalled[:0]
    resampling = ("precomputed weights" if precomputed else "runs (cluster)" if groups is not None else "points")
    natural = [law.natural(t) for t in at_edge[ok]]  # exp(-inf) = 0: the limit wanted, and numpy says nothing
    samples = {k: np.array([p[k] for p in natural]) for k in result.params}
    point = dict(result.params)
    for name, fn in (derived or {}).items():
        samples[name] = np.asarray(fn(samples), dtype=float)
        point[name] = float(np.asarray(fn({k: np.array([v]) for k, v in result.params.items()}))[0])
    return BootstrapResult(
        samples=samples, theta_samples=theta[ok], n_resamples=n_resamples, n_failed=int((~ok).sum()),
        n_settled=int(settled.size), seed=seed, succeeded=ok,
        level=level, resampling=resampling,
        warm_start="full-data optimum" if result.optimizer["name"] in NEWTON_FITS
        else f"full-data optimum, scipy {result.optimizer['name']} per resample",
        seconds=time.perf_counter() - t0, point_estimate=point)

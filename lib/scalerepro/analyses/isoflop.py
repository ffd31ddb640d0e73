"""IsoFLOP analysis: the loss-minimising model size at each compute budget, and the power
law N*(C) = k C^a through those optima, following Porian et al. 2024.

Why not a global quadratic in log N (Chinchilla's Approach 2)? Over the two to three
decades of model size an IsoFLOP sweep spans, the curves are lopsided, and a parabola
through all points puts the vertex in the wrong place in a size-dependent way: on
Porian et al.'s Kaplan-like runs it turns a = 0.84 into about 1.2. Porian et al. instead
take the argmin of an Akima spline of log loss against log N on a fine log-uniform grid,
and measure its uncertainty by re-running that argmin under Gaussian noise on the losses
(seed-to-seed noise). The quadratic is kept as ``method="quadratic"`` so that the
difference can be shown, not because it is recommended.

Noise replicates are drawn only when the seed-to-seed noise is given (``noise_sd``): without
it there is nothing to perturb, so no replicates are drawn, the power law is fitted
unweighted and its interval is ``None`` with the reason in ``no_interval_reason`` -- never a
zero-width interval that looks like certainty. (Chinchilla's approach 2 with a bootstrap over
runs is in :mod:`scalerepro.analyses.approaches`.)

Everything here takes arrays and returns result objects; randomness comes only from the
``rng`` argument, seeded by default (:data:`DEFAULT_SEED`): a seed, a
``numpy.random.Generator`` or a legacy ``RandomState``. Porian et al.'s published numbers come
from ``np.random.seed(42)``, so a ``RandomState(42)`` consumed in their order reproduces them
bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import IsoflopError
from ..summary import Row, Summary

METHODS = ("akima", "quadratic")
DEFAULT_SEED = 0


@dataclass(frozen=True)
class IsoflopOptimum:
    """The optimum of one IsoFLOP curve.

    ``x_star`` is the estimate that enters the power-law fit: the median of the interior
    noise-replicate argmins when replicates were drawn (Porian et al.'s choice), else
    the noise-free argmin. ``log_std`` is the uncertainty of log x* used as the fit
    weight, after the floor and the inflation for boundary replicates. ``usable`` says
    whether the budget enters the point fit; ``has_replicates`` whether it enters the
    replicate interval (Porian et al. use slightly different budget sets for the two).
    """

    flops: float
    method: str
    x: np.ndarray                 # model sizes (or token counts), sorted ascending
    loss: np.ndarray              # losses at those sizes
    grid: np.ndarray              # log-uniform evaluation grid
    curve: np.ndarray             # fitted loss on the grid (noise-free)
    x_star_noise_free: float
    loss_star_noise_free: float
    interior: bool                # noise-free argmin is not at either end of the grid
    n_replicates: int
    n_interior: int
    replicate_stars: np.ndarray   # interior replicate argmins, in replicate order
    replicate_losses: np.ndarray  # the curve minima of those replicates
    x_star: float
    loss_star: float
    log_std: float
    loss_log_std: float
    notes: tuple = field(default=())

    @property
    def has_replicates(self) -> bool:
        """At least half the noise replicates have an interior argmin (or none drawn)."""
        return self.n_replicates == 0 or 2 * self.n_interior >= self.n_replicates

    @property
    def usable(self) -> bool:
        return self.interior and self.has_replicates and (self.n_replicates == 0 or np.isfinite(self.log_std))

    def record(self) -> dict:
        return {"flops": self.flops, "method": self.method, "n_points": int(self.x.size),
                "x_star": self.x_star, "x_star_noise_free": self.x_star_noise_free,
                "loss_star": self.loss_star, "log_std": self.log_std,
                "interior": self.interior, "n_interior": self.n_interior,
                "n_replicates": self.n_replicates, "usable": self.usable}


def _curves(method: str, logx: np.ndarray, logy: np.ndarray, loggrid: np.ndarray) -> np.ndarray:
    """Fitted log loss on the grid for one or many loss vectors: ``logy`` is ``(K,)`` or
    ``(K, R)``, the result ``(G,)`` or ``(G, R)``. Both methods are evaluated on the same
    grid so that they differ only in the curve, not in the discretisation."""
    if method == "akima":
        # imported here: scipy.interpolate would cost every command that imports this module
        from scipy.interpolate import Akima1DInterpolator

        # Akima1DInterpolator interpolates every trailing column at once.
        return Akima1DInterpolator(logx, logy, axis=0)(loggrid)
    coef = np.polyfit(logx, logy, 2)                      # (3,) or (3, R)
    powers = np.stack([loggrid ** 2, loggrid, np.ones_like(loggrid)], axis=1)
    return powers @ coef


def _rng(rng):
    """A Generator or RandomState as given; a seed (default :data:`DEFAULT_SEED`) otherwise."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    return np.random.default_rng(DEFAULT_SEED if rng is None else rng)


def _draws_replicates(n_replicates: int, noise_sd) -> bool:
    """Whether noise replicates are drawn: only with a noise SD to draw them from. A noise SD
    of zero would make every replicate the noise-free curve, i.e. a zero-width interval."""
    if noise_sd is None or not n_replicates:
        return False
    sd = np.asarray(noise_sd, dtype=float)
    if not np.all(np.isfinite(sd)) or np.any(sd < 0):
        raise IsoflopError(f"noise_sd must be finite and non-negative, got {noise_sd!r}")
    if not np.any(sd > 0):
        raise IsoflopError("noise_sd = 0 makes every noise replicate identical (a zero-width interval "
                           "that would look like certainty); give the seed-to-seed noise SD of the "
                           "losses, or noise_sd=None for no replicates and no interval")
    return True


def find_optimum(x, loss, flops: float, *, method: str = "akima", n_replicates: int = 1000,
                 noise_sd=None, rng=DEFAULT_SEED, grid_multiplier: int = 25,
                 min_std_factor: float = 0.33) -> IsoflopOptimum:
    """Locate the loss minimum over log x for one budget (Porian et al. 2024, app. C).

    x, loss: model sizes (or token counts) and their losses at this budget, one per
    size (at least 3). The curve (Akima spline or quadratic of log loss on log x) is
    evaluated on ``grid_multiplier * (K - 1)`` log-uniform points between the smallest
    and largest x; an argmin at either end is not an optimum. When ``noise_sd`` is given
    (scalar or one per point, in loss units), ``n_replicates`` times Gaussian noise of that
    SD is added to the losses and the argmin recomputed, all replicates in one vectorised
    spline, drawn from ``rng`` (seeded by default). x* is the median of the interior
    replicate argmins; the SD of their logs is floored at ``min_std_factor`` times the mean
    log-gap between sizes and inflated by replicates / interior replicates. Without
    ``noise_sd`` (or with ``n_replicates=0``) the result is the noise-free argmin with no
    uncertainty (log_std = nan, so the budget cannot be weighted).
    """
    if method not in METHODS:
        raise IsoflopError(f"unknown optimum method {method!r}; valid: {', '.join(METHODS)}")
    x = np.asarray(x, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if x.ndim != 1 or x.shape != loss.shape:
        raise IsoflopError(f"budget {flops:g}: x and loss must be 1-d of equal length, got {x.shape} and {loss.shape}")
    if x.size < 3:
        raise IsoflopError(f"budget {flops:g}: needs at least 3 sizes, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(x > 0) and np.all(np.isfinite(loss)) and np.all(loss > 0)):
        raise IsoflopError(f"budget {flops:g}: sizes and losses must be finite and positive")
    order = np.argsort(x, kind="stable")
    x, loss = x[order], loss[order]
    if np.any(np.diff(x) == 0):
        raise IsoflopError(f"budget {flops:g}: duplicate sizes {np.unique(x[1:][np.diff(x) == 0])}; "
                           "reduce to one loss per size first")
    n_grid = grid_multiplier * (x.size - 1)
    grid = np.geomspace(x[0], x[-1], n_grid)
    loggrid, logx = np.log(grid), np.log(x)

    curve = _curves(method, logx, np.log(loss), loggrid)
    i0 = int(np.argmin(curve))
    interior = 0 < i0 < n_grid - 1
    x0, l0 = float(grid[i0]), float(np.exp(curve[i0]))

    if not _draws_replicates(n_replicates, noise_sd):
        return IsoflopOptimum(float(flops), method, x, loss, grid, np.exp(curve), x0, l0, interior,
                              0, 0, np.empty(0), np.empty(0), x0, l0, np.nan, np.nan)

    sd = np.broadcast_to(np.asarray(noise_sd, dtype=float), x.shape)[order] if np.ndim(noise_sd) else float(noise_sd)
    z = _rng(rng).standard_normal((n_replicates, x.size))          # (R, K), in ascending-x order
    noisy = loss[None, :] + sd * z
    if np.any(noisy <= 0):
        raise IsoflopError(f"budget {flops:g}: noise_sd {noise_sd!r} makes some losses non-positive")
    curves = _curves(method, logx, np.log(noisy).T, loggrid)       # (G, R)
    idx = np.argmin(curves, axis=0)
    keep = (idx > 0) & (idx < n_grid - 1)
    stars = grid[idx[keep]]
    star_losses = np.exp(curves[idx[keep], np.flatnonzero(keep)])
    n_int = int(keep.sum())
    if n_int == 0 or 2 * n_int < n_replicates:
        return IsoflopOptimum(float(flops), method, x, loss, grid, np.exp(curve), x0, l0, interior,
                              n_replicates, n_int, stars, star_losses, x0, l0, np.nan, np.nan,
                              ("fewer than half the noise replicates have an interior optimum",))
    inflation = n_replicates / n_int
    # grid step * multiplier = the mean log-gap between sizes, as in Porian et al.'s code.
    floor = min_std_factor * grid_multiplier * (loggrid[1] - loggrid[0])
    log_std = max(float(np.std(np.log(stars))), floor) * inflation
    loss_floor = min_std_factor * grid_multiplier * float(np.min(np.diff(np.log(loss))))
    loss_log_std = max(float(np.std(np.log(star_losses))), loss_floor) * inflation
    return IsoflopOptimum(float(flops), method, x, loss, grid, np.exp(curve), x0, l0, interior,
                          n_replicates, n_int, stars, star_losses, float(np.median(stars)),
                          float(np.median(star_losses)), log_std, loss_log_std)


@dataclass(frozen=True)
class PowerLawFit:
    """log x* = log k + a log C, (weighted) least squares, with a replicate interval.

    ``interval`` is None when no interval was computed, and ``no_interval_reason`` then
    says why (e.g. no noise replicates were drawn).
    """

    exponent: float
    coefficient: float
    interval: tuple[float, float] | None
    level: float
    weighted: bool
    flops: np.ndarray             # budgets in the point fit
    x_star: np.ndarray
    log_std: np.ndarray
    replicate_exponents: np.ndarray
    replicate_flops: np.ndarray   # budgets in the replicate fits
    dropped: tuple = ()           # budgets left out of the point fit, with the reason
    no_interval_reason: str | None = None

    def predict(self, C):
        return self.coefficient * np.asarray(C, dtype=float) ** self.exponent

    def record(self) -> dict:
        """Provenance in the same shape as a FitResult record, so the reporting checklist
        is filled from what this fit did (closed-form WLS: no starts, no iterations)."""
        return {
            "form": {"name": "power_law", "equation": "x* = k C^a", "inputs": ["C"],
                     "fitted_parameters": ["log k", "a"]},
            "params": {"k": self.coefficient, "a": self.exponent},
            "objective": {"kind": "weighted least squares" if self.weighted else "least squares",
                          "space": "log",
                          "text": ("weighted least squares of log x* on log C, weights 1/std(log x*)^2"
                                   if self.weighted else "least squares of log x* on log C")},
            "optimizer": {"name": "closed form", "description": "weighted linear regression, exact",
                          "tolerances": "none needed (closed form)"},
            "initialization": {"n_starts": 0, "n_starts_converged": 0},
            "converged": True,
            "message": "closed-form solution",
            "points_used": int(self.flops.size),
            "points_dropped": list(self.dropped),
            "input_ranges": {"C": [float(self.flops.min()), float(self.flops.max())]},
            "interval": list(self.interval) if self.interval else None, "level": self.level,
            "no_interval_reason": self.no_interval_reason,
            "warnings": [f"no interval: {self.no_interval_reason}"] if self.interval is None else [],
        }

    def summary(self) -> Summary:
        """The power law at a glance, from :meth:`record`: a with its noise-replicate interval
        (or why there is none), k, and the budgets used and dropped."""
        rec = self.record()
        interval = tuple(rec["interval"]) if rec["interval"] else None
        rows = [Row("a", rec["params"]["a"], interval), Row("k", rec["params"]["k"])]
        notes = [rec["objective"]["text"], f"budgets: {rec['points_used']} used, {len(rec['points_dropped'])} dropped"]
        notes += [f"dropped {d}" for d in rec["points_dropped"]] + rec["warnings"]
        return Summary(rec["form"]["equation"], rows, notes, level=rec["level"])

    def replicate_summary(self, seed=None) -> "ReplicateSummary":
        """The noise-replicate interval, in the shape of a bootstrap summary; ``seed`` is
        the seed the noise replicates were drawn with, for the record."""
        return ReplicateSummary(self, seed)


@dataclass(frozen=True)
class ReplicateSummary:
    """Porian et al.'s noise-replicate interval of a :class:`PowerLawFit`, summarised like
    a bootstrap (``record``) so that results and the checklist record it."""

    fit: "PowerLawFit"
    seed: int | None = None

    def record(self) -> dict:
        f = self.fit
        return {"method": "noise replicates (Porian et al.): each IsoFLOP curve refitted with "
                          "Gaussian noise on the losses, then the power law refitted per replicate",
                "resampling": "noise replicates of every budget's losses",
                "n_resamples": int(f.replicate_exponents.size), "n_failed": 0,
                "level": f.level, "seed": self.seed,
                "intervals": {"a": list(f.interval)} if f.interval else {},
                "warnings": [f"no interval: {f.no_interval_reason}"] if f.interval is None else []}


def weighted_line(logc: np.ndarray, logy: np.ndarray, w: np.ndarray):
    """Weighted least-squares slope and intercept of ``logy`` on ``logc``; ``logy`` may be
    ``(B,)`` or ``(R, B)`` (one fit per row, same weights), so replicates fit at once."""
    w = np.asarray(w, dtype=float) / np.sum(w)
    cbar = np.sum(w * logc)
    dc = logc - cbar
    ybar = np.sum(w * logy, axis=-1, keepdims=True)
    slope = np.sum(w * dc * (logy - ybar), axis=-1) / np.sum(w * dc * dc)
    return slope, ybar[..., 0] - slope * cbar


def fit_power_law(optima, *, weighted: bool = True, level: float = 0.95,
                  replicate_budgets=None, replicate_limit: int | None = None) -> PowerLawFit:
    """Fit x* = k C^a through the usable optima (weights 1/log_std^2 when ``weighted``).

    Interval (Porian et al.): replicate i takes the i-th interior noisy x* at every budget
    with replicates and refits with the same weights; the interval is the central
    ``level`` percentile range of those exponents. ``replicate_budgets`` (a set of
    budgets) restricts the budgets that enter the replicate fits; Porian et al.'s code
    keeps a budget there only if both its N and D replicates were valid, and makes only
    as many replicate fits as the smallest interior count of either (``replicate_limit``).
    """
    optima = list(optima)
    use = [o for o in optima if o.usable]
    if len(use) < 2:
        raise IsoflopError(f"need at least 2 budgets with an interior optimum, got {len(use)} of {len(optima)}")
    logc = np.log([o.flops for o in use])
    logx = np.log([o.x_star for o in use])
    std = np.array([o.log_std for o in use])
    if weighted and not np.all(np.isfinite(std)):
        raise IsoflopError("a weighted fit needs noise replicates (log_std) at every budget; "
                           "use n_replicates > 0 or weighted=False")
    w = 1.0 / std ** 2 if weighted else np.ones_like(std)
    a, b = weighted_line(logc, logx, w)

    reps = [o for o in optima if o.n_replicates > 0 and o.has_replicates and np.isfinite(o.log_std)
            and (replicate_budgets is None or o.flops in replicate_budgets)]
    rep_a, interval = np.empty(0), None
    if len(reps) >= 2:
        r = min(o.n_interior for o in reps)
        if replicate_limit is not None:
            r = min(r, int(replicate_limit))
        Y = np.log(np.stack([o.replicate_stars[:r] for o in reps], axis=1))    # (r, B)
        rstd = np.array([o.log_std for o in reps])
        rw = 1.0 / rstd ** 2 if weighted else np.ones_like(rstd)
        rep_a, _ = weighted_line(np.log([o.flops for o in reps]), Y, rw)
        tail = 50.0 * (1.0 - level)
        lo, hi = np.percentile(rep_a, [tail, 100.0 - tail])
        interval = (float(lo), float(hi))
    if interval is not None:
        why = None
    elif not any(o.n_replicates for o in optima):
        why = "no noise replicates were drawn (give noise_sd, the seed-to-seed noise of the losses)"
    else:
        why = f"only {len(reps)} budget(s) have valid noise replicates; an interval needs 2"
    dropped = tuple({"flops": float(o.flops), "reason": _unusable_reason(o)} for o in optima if not o.usable)
    return PowerLawFit(float(a), float(np.exp(b)), interval, level, weighted,
                       np.exp(logc), np.exp(logx), std, rep_a,
                       np.array([o.flops for o in reps]), dropped, why)


def _unusable_reason(o) -> str:
    if not o.interior:
        return "loss minimum at the edge of the sampled sizes"
    if not o.has_replicates:
        return f"only {o.n_interior} of {o.n_replicates} noise replicates have an interior minimum"
    return "no finite spread of the replicate optima"


def analyse_isoflops(budgets, *, method: str = "akima", n_replicates: int = 1000, noise_sd=None,
                     rng=DEFAULT_SEED, weighted: bool | None = None, level: float = 0.95,
                     **finder) -> tuple[list, PowerLawFit]:
    """Optimum per budget and the power law through them, in one call.

    ``budgets`` is an iterable of ``(flops, x, loss)``; budgets with fewer than three
    sizes are skipped (as in Porian et al.). With ``noise_sd`` (the seed-to-seed noise of
    the losses) Porian et al.'s noise replicates give the weights and the interval, the
    rng (seeded by default) consumed budget by budget in the order given. Without it, a
    plain call, the optima are the noise-free argmins, the fit is unweighted and the
    interval is None with the reason in ``no_interval_reason``. ``weighted`` defaults to
    whether replicates were drawn (weights come from them).
    """
    draws = _draws_replicates(n_replicates, noise_sd)
    rng = _rng(rng) if draws else None
    optima = [find_optimum(x, loss, c, method=method, n_replicates=n_replicates if draws else 0,
                           noise_sd=noise_sd, rng=rng, **finder)
              for c, x, loss in budgets if np.size(x) >= 3]
    return optima, fit_power_law(optima, weighted=draws if weighted is None else weighted, level=level)


def quadratic_vertex(x, loss) -> tuple[float, bool]:
    """Vertex of the parabola of log loss on log x through all points (Chinchilla's
    Approach 2 applied naively), with no restriction to the sampled range; returns
    (x at the vertex, whether it is a minimum inside the sampled range). Shown only to
    document how far this is from the spline argmin on lopsided curves."""
    logx = np.log(np.asarray(x, dtype=float))
    c2, c1, _ = np.polyfit(logx, np.log(np.asarray(loss, dtype=float)), 2)
    v = -c1 / (2 * c2)
    return float(np.exp(v)), bool(c2 > 0 and logx.min() < v < logx.max())

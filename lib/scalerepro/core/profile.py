"""Variable projection for the Chinchilla family: ``fit(..., optimizer="profile")``.

For fixed exponents (alpha, beta) the law L = E + A N^-alpha + B D^-beta is linear in
its coefficients (E, A, B). The five-parameter fit therefore reduces to a search over
two exponents, each point of which is a small problem in three coefficients (Czech
2026, "Problems with Chinchilla Approach 2": the reduced problem is well conditioned
where the full one has a condition number of ~1e11). This module

1. solves the inner problem on a dense (alpha, beta) grid: a non-negative least-squares
   fit of (E, A, B) in closed form (relative residuals for a log-space objective, raw
   residuals otherwise), then a few reweighted least-squares steps on the real
   objective (Huber or MSE, log or raw residuals), each kept only if it lowers it;
2. takes the grid's best local minima as starts and polishes them with the Newton solver
   on all five parameters and the real objective, to its stopping rule.

The grid of inner optima is the profile landscape: the best objective the data allow
at each (alpha, beta). It is kept on the fit (``FitResult.landscape``) for
identifiability checks and figures: a long flat valley in it is a pair of exponents the
data do not separate.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .chinchilla_kernel import HUBER, MSE, design
from .newton import NEWTON_DEFAULTS, chinchilla_form, newton_batch, solver_threads
from .objective import FitError, Problem

PROFILE_DEFAULTS = {"exponent_min": 0.05, "exponent_max": 2.0, "grid_size": 40, "inner_steps": 2,
                    "polish": 8}
# A coefficient the inner fit puts at 0 starts the polish at this fraction of the
# largest loss instead (its log must be finite); the polish then moves it or lets it
# drift to the edge, where the fit's stall diagnosis names it.
ZERO_COEFFICIENT = 1e-12
# Landscapes of more (exponent pair x point) evaluations than this are split over threads.
PARALLEL_ABOVE = 2_000_000


@njit(cache=True, nogil=True)
def _nonnegative_lsq(G, h, c):
    """min c^T G c - 2 h^T c over c >= 0 for a 3 x 3 positive semi-definite G.

    The minimum lies on one face of the orthant, where it is the face's unconstrained
    minimizer; so the answer is the best feasible one of the 8 face solutions (Cramer's
    rule on the free coordinates; c = 0, cost 0, is the empty face). Returns the cost."""
    best = 0.0
    c[0] = c[1] = c[2] = 0.0
    trial = np.zeros(3)
    for mask in range(1, 8):
        trial[0] = trial[1] = trial[2] = 0.0
        if mask == 7:
            a, b, cc = G[0, 0], G[0, 1], G[0, 2]
            d, e, f = G[1, 1], G[1, 2], G[2, 2]
            A0, A1, A2 = d * f - e * e, cc * e - b * f, b * e - cc * d
            det = a * A0 + b * A1 + cc * A2
            if not det > 1e-14 * a * d * f:
                continue
            B1, B2, C2 = a * f - cc * cc, b * cc - a * e, a * d - b * b
            trial[0] = (A0 * h[0] + A1 * h[1] + A2 * h[2]) / det
            trial[1] = (A1 * h[0] + B1 * h[1] + B2 * h[2]) / det
            trial[2] = (A2 * h[0] + B2 * h[1] + C2 * h[2]) / det
        elif mask == 1 or mask == 2 or mask == 4:
            i = 0 if mask == 1 else (1 if mask == 2 else 2)
            if not G[i, i] > 0.0:
                continue
            trial[i] = h[i] / G[i, i]
        else:
            i, j = (0, 1) if mask == 3 else ((0, 2) if mask == 5 else (1, 2))
            det = G[i, i] * G[j, j] - G[i, j] * G[i, j]
            if not det > 1e-14 * G[i, i] * G[j, j]:
                continue
            trial[i] = (h[i] * G[j, j] - h[j] * G[i, j]) / det
            trial[j] = (G[i, i] * h[j] - G[i, j] * h[i]) / det
        feasible = True
        for i in range(3):
            if trial[i] < 0.0:
                feasible = False
        if not feasible:
            continue
        cost = 0.0
        for i in range(3):
            cost -= 2.0 * h[i] * trial[i]
            for j in range(3):
                cost += trial[i] * G[i, j] * trial[j]
        if cost < best:
            best = cost
            c[:] = trial
    return best


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _objective(c, x, z, point_pair, y, target, w, kind, delta, raw, pred, resid):
    """The real objective (weighted sum) at coefficients c = (E, A, B) with the features
    x = N^-alpha, z = D^-beta of each design point; fills the per-point residuals."""
    for k in range(x.shape[0]):
        s = c[0] + c[1] * x[k] + c[2] * z[k]
        pred[k] = s if raw else (math.log(s) if s > 0.0 else -math.inf)
    total = 0.0
    for i in range(point_pair.shape[0]):
        r = pred[point_pair[i]] - target[i]
        resid[i] = r
        if kind == HUBER:
            ar = abs(r)
            cl = min(ar, delta)
            total += w[i] * cl * (ar - 0.5 * cl)
        else:
            total += w[i] * r * r
    return total if math.isfinite(total) else math.inf


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def profile_grid(XA, ZB, ia, ib, moments_x, moments_z, cross, total_u, total_uy, point_pair, y, target, w,
                 kind, delta, raw, inner_steps, coef_out, value_out):
    """Inner optima for the exponent pairs (XA[ia[k]], ZB[ib[k]]): fills the coefficients
    (E, A, B) and the objective (weighted sum, not yet scaled) of each pair.

    The closed-form start needs the least-squares moments of the features 1, x, z; those
    of one feature are per exponent (``moments_x[a] = (sum u x, sum u x^2, sum u y x)``,
    likewise z) and only sum u x z is per pair (``cross``), so they are computed once
    outside (u = w / y^2 for relative residuals, w for raw ones)."""
    n_pairs = XA.shape[1]
    n = point_pair.shape[0]
    G, h, c, c_new = np.empty((3, 3)), np.empty(3), np.empty(3), np.empty(3)
    pred, resid = np.empty(n_pairs), np.empty(n)
    q, t = np.empty(n_pairs), np.empty(n_pairs)
    for k in range(ia.shape[0]):
        a_, b_ = ia[k], ib[k]
        x, z = XA[a_], ZB[b_]
        # closed form: non-negative least squares on relative (log space) or raw residuals
        G[0, 0], G[0, 1], G[0, 2] = total_u, moments_x[a_, 0], moments_z[b_, 0]
        G[1, 1], G[1, 2], G[2, 2] = moments_x[a_, 1], cross[a_, b_], moments_z[b_, 1]
        G[1, 0], G[2, 0], G[2, 1] = G[0, 1], G[0, 2], G[1, 2]
        h[0], h[1], h[2] = total_uy, moments_x[a_, 2], moments_z[b_, 2]
        _nonnegative_lsq(G, h, c)
        value = _objective(c, x, z, point_pair, y, target, w, kind, delta, raw, pred, resid)
        # reweighted least squares on the real objective, linearized at c: each step is
        # a non-negative least-squares problem in the new coefficients, kept if it helps
        for _ in range(inner_steps):
            if not math.isfinite(value) or (kind == MSE and raw):
                break  # raw-space MSE is linear: the closed form is already exact
            for j in range(n_pairs):
                q[j] = 0.0
                t[j] = 0.0
            for i in range(n):
                r = resid[i]
                weight = w[i]
                if kind == HUBER and abs(r) > delta:
                    weight *= delta / abs(r)
                j = point_pair[i]
                q[j] += weight
                t[j] += weight * r
            g00 = g01 = g02 = g11 = g12 = g22 = h0 = h1 = h2 = 0.0
            for j in range(n_pairs):
                if q[j] == 0.0:
                    continue
                # the residual's derivative in c is phi (raw) or phi / s (log); the target
                # of the linearized fit in the new coefficients is J c - mean residual
                s_j = c[0] + c[1] * x[j] + c[2] * z[j]
                scale = 1.0 if raw else 1.0 / s_j
                p0, p1, p2 = scale, x[j] * scale, z[j] * scale
                qj = q[j]
                qt = qj * ((s_j if raw else 1.0) - t[j] / qj)
                h0 += qt * p0
                h1 += qt * p1
                h2 += qt * p2
                qp0, qp1 = qj * p0, qj * p1
                g00 += qp0 * p0
                g01 += qp0 * p1
                g02 += qp0 * p2
                g11 += qp1 * p1
                g12 += qp1 * p2
                g22 += qj * p2 * p2
            G[0, 0], G[0, 1], G[0, 2], G[1, 1], G[1, 2], G[2, 2] = g00, g01, g02, g11, g12, g22
            G[1, 0], G[2, 0], G[2, 1] = g01, g02, g12
            h[0], h[1], h[2] = h0, h1, h2
            _nonnegative_lsq(G, h, c_new)
            new_value = _objective(c_new, x, z, point_pair, y, target, w, kind, delta, raw, pred, resid)
            if not new_value < value:
                break
            value = new_value
            c[:] = c_new
        coef_out[k, :] = c
        value_out[k] = value


def exponent_grid(opt) -> np.ndarray:
    return np.linspace(opt["exponent_min"], opt["exponent_max"], int(opt["grid_size"]))


def landscape(problem: Problem, opt: dict, workers: int | None = None) -> dict:
    """The profile landscape of ``problem`` on the exponent grid of ``opt``: for every
    (alpha, beta) (alpha only for the tied form) the inner optimum's objective (in the
    problem's units, so mean reduction is averaged) and coefficients (E, A, B)."""
    tied = chinchilla_form(problem.law) == "tied"
    grid = exponent_grid(opt)
    logN, logD, pair_N, pair_D, point_pair = design(problem.X)
    XA = np.exp(-grid[:, None] * logN[None, pair_N])    # (exponents, design points)
    ZB = np.exp(-grid[:, None] * logD[None, pair_D])
    if tied:
        ia = ib = np.arange(len(grid))
    else:
        ia, ib = (g.ravel() for g in np.meshgrid(np.arange(len(grid)), np.arange(len(grid)), indexing="ij"))
    ia, ib = np.ascontiguousarray(ia, np.int64), np.ascontiguousarray(ib, np.int64)
    coef, value = np.empty((len(ia), 3)), np.empty(len(ia))
    obj = problem.objective
    raw = obj.space == "raw"
    y, w = np.asarray(problem.y, float), np.ascontiguousarray(problem.weights[0], float)
    u = w if raw else w / (y * y)
    U = np.bincount(point_pair, u, minlength=len(pair_N))         # per design point
    UY = np.bincount(point_pair, u * y, minlength=len(pair_N))
    moments = [np.ascontiguousarray(np.column_stack([F @ U, (F * F) @ U, F @ UY])) for F in (XA, ZB)]
    cross = np.ascontiguousarray((XA * U) @ ZB.T)
    args = (*moments, cross, float(U.sum()), float(UY.sum()), point_pair, np.ascontiguousarray(y),
            np.ascontiguousarray(problem.target, float), w, HUBER if obj.kind == "huber" else MSE,
            float(obj.delta), raw, int(opt["inner_steps"]))
    workers = workers or 1
    parts = np.array_split(np.arange(len(ia)), workers)

    def run(idx):
        c, v = np.empty((len(idx), 3)), np.empty(len(idx))
        profile_grid(XA, ZB, ia[idx], ib[idx], *args, c, v)
        coef[idx], value[idx] = c, v

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, parts))
    else:
        run(parts[0])
    shape = (len(grid),) if tied else (len(grid), len(grid))
    value = value * problem.scale[0]
    return {"alpha": grid, "beta": grid, "tied": tied, "objective": value.reshape(shape),
            "coefficients": coef.reshape(shape + (3,)),
            "description": "inner optimum of (E, A, B) >= 0 at each grid exponent: non-negative least "
                           f"squares, then up to {int(opt['inner_steps'])} reweighted steps on the objective"}


def _local_minima(values: np.ndarray) -> np.ndarray:
    """Flat indices of the grid points no higher than any neighbour (8-neighbourhood in
    2-D), best first; non-finite points never count."""
    v = np.where(np.isfinite(values), values, np.inf)
    padded = np.pad(v, 1, constant_values=np.inf)
    is_min = np.isfinite(v)
    for shift in np.ndindex(*(3,) * v.ndim):
        if all(s == 1 for s in shift):
            continue
        neighbour = padded[tuple(slice(s, s + n) for s, n in zip(shift, v.shape))]
        is_min &= v <= neighbour
    idx = np.flatnonzero(is_min)
    return idx[np.argsort(v.ravel()[idx], kind="stable")]


def profile_fit(problem: Problem, box, options: dict, extra_starts=None):
    """Variable-projection fit of a Chinchilla-family ``problem``: the landscape, then a
    Newton polish (within the bounds ``box``, if any) of its best ``polish`` local minima
    and of ``extra_starts``.
    Returns (starts, theta, objective, converged, iterations, landscape, options used)."""
    law = problem.law
    if chinchilla_form(law) is None:
        raise FitError(f"optimizer 'profile' needs a law whose coefficients enter linearly (the "
                       f"Chinchilla family, alpha = beta tied or free, nothing fixed); {law.name} "
                       "is not one: use optimizer='newton'")
    if problem.objective.kind not in ("huber", "mse"):
        raise FitError("optimizer 'profile' polishes with Newton, which needs a twice-differentiable "
                       "objective; fit MAE with optimizer='L-BFGS-B' or 'grid'")
    if problem.weights.shape[0] != 1:
        raise FitError("optimizer 'profile' fits one data set (one row of weights)")
    unknown = sorted(set(options) - set(PROFILE_DEFAULTS) - set(NEWTON_DEFAULTS))
    if unknown:
        raise FitError(f"unknown profile options {unknown}; valid: "
                       f"{', '.join(PROFILE_DEFAULTS)} and the Newton polish's {', '.join(NEWTON_DEFAULTS)}")
    opt = {**PROFILE_DEFAULTS, **{k: v for k, v in options.items() if k in PROFILE_DEFAULTS}}
    if not (0 <= opt["exponent_min"] < opt["exponent_max"]) or int(opt["grid_size"]) < 3 or int(opt["polish"]) < 1:
        raise FitError(f"profile grid needs 0 <= exponent_min < exponent_max, grid_size >= 3 and "
                       f"polish >= 1; got {opt}")
    newton_options = {"start_exact": True, **{k: v for k, v in options.items() if k in NEWTON_DEFAULTS}}
    workers = newton_options.get("workers")
    if workers is None:  # threads pay only for large grids; a start-up costs ~0.1-10 ms
        size = int(opt["grid_size"]) ** (1 if chinchilla_form(law) == "tied" else 2) * problem.X.shape[0]
        workers = solver_threads() if size > PARALLEL_ABOVE else 1
    land = landscape(problem, opt, workers)
    flat_values = land["objective"].ravel()
    if not np.isfinite(flat_values).any():
        raise FitError(f"the profile objective is not finite anywhere on the exponent grid "
                       f"[{opt['exponent_min']}, {opt['exponent_max']}]")
    chosen = _local_minima(land["objective"])[:int(opt["polish"])]
    coef = land["coefficients"].reshape(-1, 3)[chosen]
    floor = ZERO_COEFFICIENT * float(np.max(problem.y))
    E, A, B = (np.log(np.maximum(coef[:, k], floor)) for k in range(3))
    grid = land["alpha"]
    if land["tied"]:
        starts = np.column_stack([A, B, E, grid[chosen]])
    else:
        i, j = np.unravel_index(chosen, land["objective"].shape)
        starts = np.column_stack([A, B, E, grid[i], grid[j]])
    if extra_starts is not None:
        starts = np.vstack([starts, extra_starts])
    theta, value, conv, its = newton_batch(problem, starts, box, **newton_options)
    land["polished"] = chosen
    return starts, theta, value, conv, its, land, {**opt, **newton_options}


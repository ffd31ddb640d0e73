"""Muennighoff et al. 2023's data-constrained scaling law, its allocation under a data limit,
and the authors' protocol around it.

    L(N, D, U) = E + A / N'^alpha + B / D'^beta
    D' = U + U R_D* (1 - exp(-R_D / R_D*)),   R_D = max(D/U - 1, 0)
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)), R_N = max(N/U_N - 1, 0), U_N = min(N, N_opt(U))

with N_opt(U) = G (G U)^(beta/alpha), G = (alpha A / (beta B))^(1/(alpha+beta)): the parameter
count the base law's compute-optimal allocation pairs with one epoch of U tokens. R_D and
R_N count repetitions beyond the first, not epochs. With D = U and N <= N_opt(U) the law is
the base (Chinchilla) law exactly.

R_D* and R_N* are fitted as their logs (``r_d``, ``r_n``), so every start is a valid point:
the authors' start grid includes R* = 0, where the law is 0/0 for unrepeated runs and their
notebook silently skips the NaN objective. The base law (a = log A, b = log B, e = log E,
alpha, beta) is either fitted jointly (:class:`DataConstrained` with ``base=None``) or held
at given values (``base={"E": ..., ...}``, the authors' protocol with :data:`PUBLISHED_BASE`),
in which case U_N and R_N are computed from that base once per input table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.optimize

from ..core.laws import Law, grid
from ..core.optimal import allocation_constant, compute_optimal

#: The authors' fixed base law (notebook cells 5-8): a tied-exponent Chinchilla fit to 54 points
#: of Chinchilla's C4 IsoFLOP curves. Stored as the notebook prints them (log A, log B, log E).
PUBLISHED_LOG_BASE = {"a": 6.255414, "b": 7.3049974, "e": 0.6254804, "alpha": 0.3526596, "beta": 0.3526596}
PUBLISHED_BASE = {"E": float(np.exp(PUBLISHED_LOG_BASE["e"])), "A": float(np.exp(PUBLISHED_LOG_BASE["a"])),
                  "B": float(np.exp(PUBLISHED_LOG_BASE["b"])), "alpha": PUBLISHED_LOG_BASE["alpha"],
                  "beta": PUBLISHED_LOG_BASE["beta"]}
#: The fitted decay constants (README parameter list; notebook cell 29).
PUBLISHED_DECAY = {"R_D_star": 15.387756, "R_N_star": 5.309743}
#: The authors' start grid for (R_D*, R_N*): linspace(0, 20, 4) each; starts with a 0 give NaN
#: and are skipped by their ``float(l) < min_loss`` comparison, leaving these 9 (cells 28-29).
AUTHORS_STARTS = np.array([(d, n) for d in np.linspace(0, 20, 4)[1:] for n in np.linspace(0, 20, 4)[1:]])

BASE_NAMES = ("a", "b", "e", "alpha", "beta")
DECAY_NAMES = ("r_d", "r_n")


def _decay(x, s):
    """log(1 + R*(1 - exp(-x/R*))) with R* = exp(s), and its derivatives in s and in x.

    x >= 0 is a repetition count. Written with expm1 so that R* -> infinity (no decay:
    the value tends to log(1 + x)) and R* -> 0 (the value tends to 0) stay finite."""
    rstar = np.exp(s)
    z = x / rstar
    q = np.exp(-z)
    h = rstar * -np.expm1(-z)
    d_s = rstar * (-np.expm1(-z) - z * q) / (1.0 + h)
    return np.log1p(h), d_s, q / (1.0 + h)


def useful_params_log(logU, a, b, alpha, beta):
    """log N_opt(U) = (1 + beta/alpha) log G + (beta/alpha) log U, and its gradient in
    (a, b, alpha, beta) as a tuple of arrays."""
    k = beta / alpha
    span = alpha + beta
    num = np.log(alpha) + a - np.log(beta) - b
    logG = num / span
    value = (1 + k) * logG + k * logU
    d_a = (1 + k) / span
    d_alpha = -beta / alpha ** 2 * (logG + logU) + (1 + k) * (1 / (alpha * span) - num / span ** 2)
    d_beta = (logG + logU) / alpha + (1 + k) * (-1 / (beta * span) - num / span ** 2)
    return value, (d_a, -d_a, d_alpha, d_beta)


@dataclass(frozen=True)
class DataConstrained(Law):
    """The data-constrained law with inputs (N, D, U). ``base`` None: all seven parameters
    (a, b, e, alpha, beta, r_d, r_n) are fitted; a dict of E, A, B, alpha, beta: only
    r_d = log R_D* and r_n = log R_N* are, with the base held at those values."""

    base: dict | None = None
    inputs: tuple = field(default=("N", "D", "U"), init=False)
    equation: str = field(default="L = E + A/N'^alpha + B/D'^beta; D' = U + U R_D* (1 - exp(-R_D/R_D*)), "
                          "N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U))", init=False)

    def __hash__(self):
        return hash((self.name, None if self.base is None else tuple(sorted(self.base.items()))))

    @property
    def name(self):
        if self.base is None:
            return "data_constrained"
        shown = ", ".join(f"{k} = {self.base[k]:.6g}" for k in ("E", "A", "B", "alpha", "beta"))
        return f"data_constrained (base fixed: {shown})"

    @property
    def param_names(self):
        return DECAY_NAMES if self.base is not None else BASE_NAMES + DECAY_NAMES

    @property
    def log_coefficients(self):
        decay = {"r_d": "R_D_star", "r_n": "R_N_star"}
        return decay if self.base is not None else {"a": "A", "b": "B", "e": "E", **decay}

    def _fixed_base(self) -> np.ndarray:
        b = self.base
        return np.array([np.log(b["A"]), np.log(b["B"]), np.log(b["E"]), b["alpha"], b["beta"]])

    def full(self, theta) -> np.ndarray:
        """All seven fitted coordinates (the fixed base filled in)."""
        theta = np.atleast_2d(np.asarray(theta, float))
        if self.base is None:
            return theta
        return np.hstack([np.broadcast_to(self._fixed_base(), (theta.shape[0], 5)), theta])

    def log_predict_jac(self, theta, X):
        t = self.full(theta)
        X = np.asarray(X, float)
        logN, logD, logU = (np.log(X[:, j])[None, :] for j in range(3))
        a, b, e, alpha, beta, s_d, s_n = (t[:, j:j + 1] for j in range(7))
        log_opt, d_opt = useful_params_log(logU, a, b, alpha, beta)
        capped = log_opt < logN                      # U_N = N_opt(U) < N: excess parameters
        log_un = np.where(capped, log_opt, logN)
        rep_n = np.expm1(np.maximum(logN - log_un, 0.0))
        rep_d = np.maximum(np.expm1(logD - logU), 0.0)
        g_n, gs_n, gx_n = _decay(rep_n, s_n)
        g_d, gs_d, _ = _decay(rep_d, s_d)
        log_np, log_dp = log_un + g_n, logU + g_d
        terms = np.stack(np.broadcast_arrays(a - alpha * log_np, b - beta * log_dp, e))
        m = terms.max(axis=0)
        w = np.exp(terms - m)
        total = w.sum(axis=0)
        f = m + np.log(total)
        P0, P1, P2 = w / total
        # d log N' / d log U_N where U_N is capped (R_N = N/U_N - 1 moves with it)
        d_un = np.where(capped, 1.0 - gx_n * (rep_n + 1.0), 0.0)
        J = np.stack([P0 - alpha * P0 * d_un * d_opt[0], P1 - alpha * P0 * d_un * d_opt[1], P2,
                      -P0 * log_np - alpha * P0 * d_un * d_opt[2], -P1 * log_dp - alpha * P0 * d_un * d_opt[3],
                      -beta * P1 * gs_d, -alpha * P0 * gs_n], axis=-1)
        return f, (J[..., 5:] if self.base is not None else J)

    def natural(self, theta):
        t = self.full(theta)[0]
        return {"E": float(np.exp(t[2])), "A": float(np.exp(t[0])), "B": float(np.exp(t[1])),
                "alpha": float(t[3]), "beta": float(t[4]),
                "R_D_star": float(np.exp(t[5])), "R_N_star": float(np.exp(t[6]))}

    def from_natural(self, R_D_star, R_N_star, E=None, A=None, B=None, alpha=None, beta=None):
        decay = [np.log(R_D_star), np.log(R_N_star)]
        if self.base is not None:
            return np.array(decay, float)
        return np.array([np.log(A), np.log(B), np.log(E), alpha, beta, *decay], float)

    def default_starts(self):
        """(R_D*, R_N*) on a log grid from 0.5 to 5000 and 0.3 to 300 (a fixed base); with
        the base fitted too, each of those crossed with a small grid of base laws around
        Chinchilla-like values (E near 1.6-2, exponents 0.2-0.5)."""
        decay = grid(r_d=np.log([0.5, 3.0, 15.0, 80.0, 500.0, 5000.0]), r_n=np.log([0.3, 2.0, 10.0, 60.0, 300.0]))
        if self.base is not None:
            return decay
        base = grid(a=[4.0, 8.0], b=[4.0, 8.0], e=[0.5], alpha=[0.25, 0.45], beta=[0.25, 0.45])
        return np.array([np.r_[bb, dd] for bb in base for dd in decay])


def published_law() -> DataConstrained:
    """The law with the authors' fixed base (what cells 28-29 fit)."""
    return DataConstrained(base=PUBLISHED_BASE)


def loss(params: dict, N, D, U):
    """L(N, D, U) from natural parameters (E, A, B, alpha, beta, R_D_star, R_N_star) in float64,
    written as the README writes it (a check on the law's log-sum-exp form)."""
    N, D, U = (np.asarray(v, float) for v in (N, D, U))
    E, A, B, alpha, beta = (params[k] for k in ("E", "A", "B", "alpha", "beta"))
    G = allocation_constant(A, B, alpha, beta)
    rep_d = np.maximum(D / U - 1, 0)
    un = np.minimum(N, (U * G) ** (beta / alpha) * G)
    rep_n = np.maximum(N / un - 1, 0)
    return E + A / _effective(un, rep_n, params["R_N_star"]) ** alpha + B / _effective(U, rep_d, params["R_D_star"]) ** beta


def _effective(unique, repetitions, rstar):
    """U + U R* (1 - exp(-R/R*)) as the README writes it; R* = infinity (no decay) gives U (1 + R)."""
    rstar = np.asarray(rstar, float)
    if np.all(np.isinf(rstar)):
        return unique * (1 + repetitions)
    return unique + unique * rstar * (1 - np.exp(-repetitions / rstar))


# ----------------------------------------------------------------------------- the authors' objective
def float32_objective(params: dict, N, D, U, y, delta: float = 1e-3) -> float:
    """The authors' summed Huber objective computed as their notebook does: features U_N,
    U_D, R_D, R_N from the base law in float64, then everything in float32 (torch.float32 in
    cells 28-29; here numpy float32, so the last digits of a sum may differ from torch's)."""
    f32 = np.float32
    N, D, U = (np.asarray(v, float) for v in (N, D, U))
    G = allocation_constant(params["A"], params["B"], params["alpha"], params["beta"])
    un = np.minimum(N, (U * G) ** (params["beta"] / params["alpha"]) * G)
    rep_n, rep_d = np.maximum(N / un - 1, 0), np.maximum(D / U - 1, 0)
    un, ud, rep_n, rep_d = (np.asarray(v, f32) for v in (un, U, rep_n, rep_d))
    rd, rn = f32(params["R_D_star"]), f32(params["R_N_star"])
    a, b, e = (f32(np.log(params[k])) for k in ("A", "B", "E"))
    alpha, beta = f32(params["alpha"]), f32(params["beta"])
    n_eff = un + un * rn * (f32(1) - np.exp(-rep_n / rn))
    d_eff = ud + ud * rd * (f32(1) - np.exp(-rep_d / rd))
    terms = np.stack([a - alpha * np.log(n_eff), b - beta * np.log(d_eff), np.full_like(n_eff, e)])
    m = terms.max(axis=0)
    pred = m + np.log(np.exp(terms - m).sum(axis=0))
    r = np.abs(pred - np.log(np.asarray(y, f32)))
    huber = np.where(r <= f32(delta), f32(0.5) * r * r, f32(delta) * (r - f32(0.5 * delta)))
    return float(huber.astype(f32).sum(dtype=f32))


def r2(params: dict, N, D, U, y) -> float:
    """sklearn's r2_score of the losses (loss space, not log) over the fitted runs, with the
    law evaluated at the raw (N, D, U) as in the notebook after commit 13701315."""
    y = np.asarray(y, float)
    pred = loss(params, N, D, U)
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def no_decay(params: dict) -> dict:
    """The base law alone on (N, D), cell 33's variant: R_D*, R_N* -> infinity make N' = N
    and D' = D."""
    return {**params, "R_D_star": np.inf, "R_N_star": np.inf}


# ----------------------------------------------------------------------------- allocation
def _point(params, C, N, U):
    D = C / (6.0 * N)
    return {"N": float(N), "D": float(D), "epochs": float(D / U), "loss": float(loss(params, N, D, min(U, D)))}


def allocation_grid_search(params: dict, C: float, U: float, n: int = 500, top: float = 3.0) -> dict:
    """The README's grid search: from the base law's compute-optimal (N_B, D_B) at C, try
    (N_B/i, D_B i) then (N_B i, D_B/i) for i in linspace(1.0001, 3, 500), with the unique
    tokens min(U, D), keeping a point only when it strictly lowers the loss."""
    base = compute_optimal(params, C)
    n_b, d_b = float(base["N_opt"]), float(base["D_opt"])
    best = {"loss": np.inf}
    for i in np.linspace(1.0001, top, n):
        for N, D in ((n_b / i, d_b * i), (n_b * i, d_b / i)):
            value = float(loss(params, N, D, min(U, D)))
            if value < best["loss"]:
                best = {"N": N, "D": D, "epochs": D / U, "loss": value}
    return {**best, "method": f"README grid search: {n} factors in [1.0001, {top:g}] either side of the base-law optimum"}


def allocation_exact(params: dict, C: float, U: float, span: float = 1e3, points: int = 4001) -> dict:
    """The (N, D = C/6N, epochs = D/U) minimizing L(N, D, min(U, D)) along C = 6ND: a dense
    log grid over N in [N_B/span, N_B*span] (N_B the base law's optimum) locates the global
    minimum of this one-dimensional problem, then a bounded Brent search between the grid
    neighbours polishes it to ~1e-12 relative in log N."""
    n_b = float(compute_optimal(params, C)["N_opt"])
    logn = np.linspace(np.log(n_b / span), np.log(n_b * span), points)
    N = np.exp(logn)
    D = C / (6.0 * N)
    values = loss(params, N, D, np.minimum(U, D))
    k = int(np.nanargmin(values))
    lo, hi = logn[max(k - 1, 0)], logn[min(k + 1, points - 1)]
    res = scipy.optimize.minimize_scalar(lambda x: float(loss(params, np.exp(x), C / (6 * np.exp(x)),
                                                              min(U, C / (6 * np.exp(x))))),
                                         bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    best = _point(params, C, np.exp(res.x), U)
    if best["loss"] > values[k]:
        best = _point(params, C, N[k], U)
    edge = k in (0, points - 1)
    return {**best, "method": f"exact: {points}-point log grid over N in [N_B/{span:g}, N_B*{span:g}], then bounded "
            "Brent between the best point's neighbours", "at_grid_edge": edge}


def allocation_table(fits: dict, C: float, U: float) -> pd.DataFrame:
    """One row per named parameter set (basin): R_D*, R_N*, and the grid-search and exact
    allocations at budget C with U unique tokens."""
    rows = []
    for label, params in fits.items():
        g, x = allocation_grid_search(params, C, U), allocation_exact(params, C, U)
        rows.append({"basin": label, "R_D_star": params["R_D_star"], "R_N_star": params["R_N_star"],
                     "grid_params": g["N"], "grid_tokens": g["D"], "grid_epochs": g["epochs"],
                     "exact_params": x["N"], "exact_tokens": x["D"], "exact_epochs": x["epochs"],
                     "exact_loss": x["loss"]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- global fits
#: R_D* and R_N* are searched in [1e-3, 1e6]: a repetition scale beyond 1e6 is no decay at
#: all for any run here (the most repeated has 8999 repetitions), and the bound keeps a
#: start running off towards "no decay" from iterating forever.
DECAY_BOUNDS = {"R_D_star": (1e-3, 1e6), "R_N_star": (1e-3, 1e6)}
#: A fitted R* above this counts as "no decay" (its exp(-R/R*) is above 0.999 for 10 repetitions).
NO_DECAY = 1e4


def start_grid(n_d: int = 25, n_n: int = 20, rd=(0.3, 1e5), rn=(0.05, 1e3)) -> np.ndarray:
    """A log-spaced (log R_D*, log R_N*) start grid wide enough to hold every basin."""
    return grid(r_d=np.linspace(np.log(rd[0]), np.log(rd[1]), n_d), r_n=np.linspace(np.log(rn[0]), np.log(rn[1]), n_n))


def describe_starts(law: DataConstrained, starts) -> dict:
    """Which starts a fit used, in words a record can hold: per fitted parameter its distinct
    values (natural units for R_D*, R_N*: log-spaced values as min, max and count)."""
    starts = np.atleast_2d(np.asarray(starts, float))
    out = {"n_starts": int(len(starts))}
    for j, name in enumerate(law.param_names):
        values = np.unique(starts[:, j])
        natural = np.exp(values) if name in law.log_coefficients else values
        key = law.log_coefficients.get(name, name)
        out[key] = {"min": float(natural.min()), "max": float(natural.max()), "distinct": int(len(values)),
                    "spacing": "log" if name in law.log_coefficients else "linear"}
    return out


def decay_box(law: DataConstrained):
    """:data:`DECAY_BOUNDS` as the solver's (low, high) arrays in the law's fitted coordinates."""
    lo, hi = np.full(law.n_params, -np.inf), np.full(law.n_params, np.inf)
    for name, key in (("r_d", "R_D_star"), ("r_n", "R_N_star")):
        j = law.param_names.index(name)
        lo[j], hi[j] = np.log(DECAY_BOUNDS[key][0]), np.log(DECAY_BOUNDS[key][1])
    return lo, hi


def global_refits(law: Law, X, y, weights, starts, n_best: int = 3, objective=None):
    """The global optimum for each row of ``weights`` (bootstrap multiplicities): the
    objective is evaluated at every start for every row at once (one prediction per start,
    one matrix product), and batched Newton runs from each row's ``n_best`` best starts.

    Why not the usual warm start from the full-data optimum: the objective has several
    basins of nearly equal depth, and a resample's optimum may lie in another one.
    Returns (theta (R, p), objective (R,), converged (R,))."""
    from ..core.newton import newton_batch
    from ..core.objective import Objective, Problem

    objective = objective or Objective("huber", 1e-3, "log", "sum")
    X, y = np.asarray(X, float), np.asarray(y, float)
    weights = np.atleast_2d(np.asarray(weights, float))
    starts = np.atleast_2d(np.asarray(starts, float))
    with np.errstate(all="ignore"):
        (rho,) = objective.terms(law.log_predict(starts, X) - np.log(y)[None, :], derivatives=False)
    values = weights @ np.where(np.isfinite(rho), rho, 1e300).T          # (R, S)
    best = np.argsort(values, axis=1)[:, :n_best]
    rows = np.repeat(np.arange(len(weights)), best.shape[1])
    problem = Problem(law, X, y, objective, weights)
    with np.errstate(all="ignore"):
        theta, value, conv, _ = newton_batch(problem, starts[best.ravel()], bounds=decay_box(law), rows=rows)
    value = np.where(np.isfinite(value), value, np.inf).reshape(len(weights), -1)
    pick = np.argmin(value, axis=1)
    idx = np.arange(len(weights)) * best.shape[1] + pick
    return theta[idx], value[np.arange(len(weights)), pick], conv[idx]


def profile_decay(law: DataConstrained, X, y, parameter: str, values, starts, objective=None) -> dict:
    """The objective along ``parameter`` (R_D_star or R_N_star, natural values), the other
    decay constant re-optimized globally at each value (every start of the other's grid
    evaluated, Newton from the best few). Works for the fixed-base law (two parameters).
    Returns {"parameter", "values", "objective", "other" (the other constant at the optimum)}."""
    from ..core.identifiability import _ProfileProblem
    from ..core.newton import newton_batch
    from ..core.objective import Objective, Problem

    if law.base is None:
        raise ValueError("profile_decay profiles the fixed-base law (two parameters)")
    objective = objective or Objective("huber", 1e-3, "log", "sum")
    X, y = np.asarray(X, float), np.asarray(y, float)
    j = 0 if parameter == "R_D_star" else 1
    fixed = np.log(np.asarray(values, float))
    others = np.unique(np.asarray(starts, float)[:, 1 - j])
    full = np.empty((len(fixed) * len(others), 2))
    full[:, j] = np.repeat(fixed, len(others))
    full[:, 1 - j] = np.tile(others, len(fixed))
    with np.errstate(all="ignore"):
        v = Problem(law, X, y, objective).value(full, None).reshape(len(fixed), len(others))
    k = 3
    best = np.argsort(v, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(fixed)), k)
    inner = _ProfileProblem(Problem(law, X, y, objective), j, fixed)
    lo, hi = decay_box(law)
    with np.errstate(all="ignore"):
        th, val, _, _ = newton_batch(inner, others[best.ravel()][:, None], bounds=(lo[[1 - j]], hi[[1 - j]]), rows=rows)
    val = np.where(np.isfinite(val), val, np.inf).reshape(len(fixed), k)
    pick = np.argmin(val, axis=1)
    return {"parameter": parameter, "values": [float(x) for x in np.exp(fixed)],
            "objective": [float(x) for x in val[np.arange(len(fixed)), pick]],
            "other": [float(x) for x in np.exp(th.reshape(len(fixed), k)[np.arange(len(fixed)), pick])]}


def profile_ranges(profile: dict, within=(0.001, 0.002, 0.01)) -> list[dict]:
    """For each relative threshold, the profiled values whose objective is within it of the
    profile's minimum: their range, whether they form one interval on the grid, and whether
    the range reaches an end of the grid (then the data do not bound it on that side)."""
    values, obj = np.asarray(profile["values"]), np.asarray(profile["objective"])
    best = obj.min()
    out = []
    for tau in within:
        inside = obj <= best * (1 + tau)
        idx = np.flatnonzero(inside)
        out.append({"within": tau, "low": float(values[idx[0]]), "high": float(values[idx[-1]]),
                    "one_interval": bool(inside[idx[0]:idx[-1] + 1].all()),
                    "open_low": bool(inside[0]), "open_high": bool(inside[-1])})
    return out


def distinct_minima(result, tol: float = 1e-2) -> list[dict]:
    """The distinct local minima a multi-start fit reached: converged starts grouped by their
    fitted point (within ``tol`` in every fitted coordinate, i.e. 1% in R*), best first, each
    with its objective, excess over the best and how many starts reached it."""
    ok = np.asarray(result.start_converged, bool) & np.isfinite(result.start_objectives)
    thetas, values = np.asarray(result.start_thetas)[ok], np.asarray(result.start_objectives)[ok]
    order = np.argsort(values)
    minima: list[dict] = []
    for i in order:
        for m in minima:
            if np.max(np.abs(thetas[i] - m["theta"])) < tol:
                m["starts"] += 1
                break
        else:
            minima.append({"theta": thetas[i], "objective": float(values[i]), "starts": 1})
    best = minima[0]["objective"] if minima else np.nan
    return [{**result.law.natural(m["theta"]), "objective": m["objective"],
             "excess": m["objective"] / best - 1, "starts": m["starts"]} for m in minima]


# ----------------------------------------------------------------------------- identifiability
#: A decay constant whose 95% bootstrap interval spans more than this factor is not
#: determined by the data, even when finite: the data do not fix its order of magnitude.
WIDE_FACTOR = 10.0


def decay_identifiability(samples: dict, level: float = 0.95, profiles: dict | None = None) -> list:
    """``not_identified`` diagnostics (error) for R_D* and R_N* from their bootstrap samples
    (a dict of arrays, one fit per resample; an R* at or beyond :data:`NO_DECAY` counts as
    "no decay"): a constant is not identified when its central ``level`` percentile interval
    is unbounded above (more than (1 - level)/2 of the resamples run off to no decay) or spans
    more than :data:`WIDE_FACTOR`. ``profiles`` (name -> :func:`profile_decay` record) adds
    the profile's ranges to the message; the full profile is recorded next to it."""
    from ..core.stats import percentile_interval
    from ..diagnostics import Diagnostic

    out = []
    for name in ("R_D_star", "R_N_star"):
        if name not in samples:
            continue
        draws = np.asarray(samples[name], float)
        draws = draws[~np.isnan(draws)]
        if not draws.size:
            continue
        share = float(np.mean(draws >= NO_DECAY))
        lo, hi = percentile_interval(draws, level)
        unbounded = share > (1 - level) / 2
        if not (unbounded or hi / lo > WIDE_FACTOR):
            continue
        why = (f"{share:.0%} of the {draws.size} resamples run off to no decay (R* >= {NO_DECAY:g}), so there is no "
               "finite upper bound" if unbounded else f"it spans a factor of {hi / lo:.3g} (more than {WIDE_FACTOR:g})")
        text = (f"{name} is not identified: its {level:.0%} bootstrap interval is [{lo:.3g}, "
                f"{'inf' if unbounded else f'{hi:.3g}'}]; {why}")
        if profiles and name in profiles:
            shown = "; ".join(
                f"within {r['within']:.1%} of the minimum: {r['low']:.3g} to "
                f"{'beyond ' if r['open_high'] else ''}{r['high']:.3g}{'' if r['one_interval'] else ' (not one interval)'}"
                for r in profile_ranges(profiles[name]))
            text += f". Profile of the objective over {name} (the other constant re-optimized): {shown}"
        out.append(Diagnostic("not_identified", "error", text, (name,)))
    return out


LAWS: dict[str, Law] = {"data_constrained": DataConstrained()}

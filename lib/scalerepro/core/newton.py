"""The batched trust-region Newton solver behind :func:`scalerepro.core.fit.fit`.

All starts (or bootstrap resamples) are optimised together: each iteration evaluates the
objective, its analytic gradient and its p x p Hessian for a whole chunk of parameter
vectors as ``(starts, points)`` arrays, so thousands of starts cost a few dozen numpy
passes instead of thousands of scipy calls. Far from a minimum the Hessian's
Gauss-Newton part uses the IRLS (majorizing) weights of the robust loss, near it the
exact Hessian; the stopping rule is scale-free, so summing or averaging the loss reaches
the same optimum.

For the Chinchilla family the same iteration runs compiled, one start at a time
(:mod:`scalerepro.core.chinchilla_kernel`), several times faster; this numpy implementation
is the reference it is tested against and the solver of every other law.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .objective import FitError, Problem

NEWTON_DEFAULTS = {"max_iter": 400, "ftol_rel": 1e-13, "gtol": 1e-14, "radius_init": 0.1,
                   "radius_max": 10.0, "radius_grow": 2.0, "shorter_trial": 0.2, "longer_trial": 3.0,
                   "extend_above": 0.75, "secular_iter": 4, "exact_below": 1e-2, "start_exact": False,
                   "chunk": 192, "workers": None, "compiled": True}
# Options that choose how the work is run, not what is computed: a start's result does
# not depend on them (up to rounding between the compiled and numpy implementations).
EXECUTION_OPTIONS = ("chunk", "workers", "compiled")
MODEL, SHORTER, LONGER = 0, 1, 2  # the trial steps of an iteration


def solver_threads() -> int:
    """How many threads a solve may use by default: the cores of this process, or inside a
    Dask worker the threads that worker was given.

    Why: a ``--scheduler local:N`` cluster already runs one task per worker process; a
    solve that then started a thread per core would run N x cores threads on N cores.
    ``distributed`` is only asked when it is already imported (a worker has it)."""
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return max(1, int(distributed.get_worker().state.nthreads))
        except ValueError:  # not inside a worker
            pass
    return os.cpu_count() or 1


def _clip(theta, bounds):
    if bounds is None:
        return theta
    lo, hi = bounds
    return np.clip(theta, lo, hi)


def _trust_steps(lam, Q, g, radius, factors, secular_iter):
    """Minimizers of the saddle-free quadratic model within several radii at once.

    The model uses |eigenvalues| of H (negative curvature is descended, not climbed;
    eigenvalues below machine precision of the largest are floored). For radius r the
    step is -Q diag(1/(|lam| + nu)) Q^T g with nu >= 0 solving ||step|| = r (Newton's
    method on 1/||step|| - 1/r, which is concave in nu, so the iterates rise
    monotonically to the root), or the Newton step (nu = 0) when it is shorter than r.
    The radii are ``factors * min(radius, ||Newton step||)``; a radius beyond the
    Newton step extends the Newton step to that length, which is what gets a start
    through the long, nearly flat valleys of a Huber objective with a small delta.
    Returns steps ``(C, K, p)``, their lengths ``(C, K)``, whether each is the model's
    own (unextended) Newton step ``(C, K)``, the decrease the model predicts for each
    ``(C, K)``, and the model's Newton decrement ``(K,)``.
    """
    curv = np.abs(lam)
    curv = np.maximum(curv, 1e-15 * curv.max(axis=1, keepdims=True) + 1e-300)
    gq = np.einsum("kpi,kp->ki", Q, g)
    newton = gq / curv
    newton_len = np.sqrt((newton * newton).sum(axis=1))
    base = np.minimum(radius, newton_len)
    radii = factors[:, None] * base                                     # (C, K)
    inside = radii >= newton_len
    nu = np.zeros_like(radii)
    for _ in range(secular_iter):
        q = gq / (curv + nu[..., None])
        n2 = (q * q).sum(axis=-1)
        n = np.sqrt(n2)
        dphi = (q * q / (curv + nu[..., None])).sum(axis=-1) / (n2 * n)
        nu = np.where(inside, 0.0, np.maximum(nu - (1.0 / n - 1.0 / radii) / dphi, 0.0))
    q = np.where(inside[..., None], newton * (radii / np.maximum(newton_len, 1e-300))[..., None],
                 gq / (curv + nu[..., None]))
    steps = -np.einsum("kpi,cki->ckp", Q, q)
    model = (gq * q).sum(axis=-1) - 0.5 * (curv * q * q).sum(axis=-1)
    return steps, radii, inside & (factors[:, None] <= 1.0), model, 0.5 * (gq * newton).sum(axis=1)


def newton_batch(problem: Problem, theta0: np.ndarray, bounds=None, rows=None, **options):
    """Saddle-free Newton with a per-start trust region, from every row of ``theta0``.

    Each iteration takes the exact Hessian's eigen-decomposition and tries the step that
    minimizes the saddle-free model within the start's trust radius (see
    :func:`_trust_steps`). If it does not lower the objective, the step for
    ``shorter_trial`` times that radius is tried. If it was held back by the radius (not
    the model's own Newton step) and gained at least ``extend_above`` of what the model
    predicted, the radius was too cautious: the step for ``longer_trial`` times the radius
    is tried too, and the better of the two kept. That is what gets a start through the
    long, nearly flat valleys of a Huber objective with a small delta, where radius-limited
    steps would creep. The start's radius becomes the winning step's (twice it, up to
    ``radius_max``), or a quarter of the shorter radius when nothing wins. (Measured on
    the 4500-start Chinchilla grid with the compiled kernel: trying the longer step after
    every good step costs about a third more time than never trying it, this rule about a
    sixth; never trying it leaves a flat 6-run fit of the loss-to-loss notebook still
    moving at its 2000-iteration cap. ``longer_trial = 0`` turns it off.)

    For a robust loss with a small delta the exact Hessian ignores every point beyond
    delta, so far from a minimum each start first uses the majorizing (IRLS) weights in
    the Hessian's Gauss-Newton part (``Objective.terms``) and switches to the exact
    Hessian once a full model step gains less than ``exact_below`` (relative); a failed
    exact step sends it back. Warm starts (bootstrap resamples from the full-data
    optimum, the polish of a profile fit) begin exact with ``start_exact``. Only
    exact-Hessian steps can declare convergence.

    A start has converged when the full Newton step (positive definite Hessian) is the
    winner and lowers the objective by at most ``ftol_rel`` relative, when even that
    step cannot lower it and its predicted decrease is below ``ftol_rel``, when its
    gradient vanishes (``gtol`` relative to the objective), or when no step of any
    length lowers it (a minimum to machine precision). These tests are scale-free, so
    summing or averaging the loss reaches the same optimum.

    ``rows`` maps each start to its row of the problem's weights (bootstrap resamples).
    For the Chinchilla family (and a Huber or MSE objective) the iteration runs compiled
    (``compiled``, see :mod:`scalerepro.core.chinchilla_kernel`, which also takes the Newton
    step from a Cholesky solve when the Hessian is positive definite and the step fits in
    the radius, the same step without the decomposition); otherwise as numpy passes
    over pools of at most ``chunk`` active starts, where a converged start's slot goes to
    the next waiting one. Either way the starts are dealt to ``workers`` threads
    (default: one per core, as long as there is more than one chunk of starts); every
    start's trajectory is independent of which thread or batch it is in.
    Returns (theta, objective, converged, iterations).
    """
    unknown = sorted(set(options) - set(NEWTON_DEFAULTS))
    if unknown:
        raise FitError(f"unknown Newton options {unknown}; valid: {', '.join(NEWTON_DEFAULTS)}")
    opt = {**NEWTON_DEFAULTS, **options}
    if not 0 < opt["shorter_trial"] < 1 or not (opt["longer_trial"] == 0 or opt["longer_trial"] > 1):
        raise FitError(f"shorter_trial must lie in (0, 1) and longer_trial be 0 (off) or above 1; got "
                       f"{opt['shorter_trial']!r} and {opt['longer_trial']!r}")
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    B = theta0.shape[0]
    rows = np.arange(B) if rows is None else np.asarray(rows)
    if rows.shape != (B,):
        raise FitError(f"rows must give one weight row per start ({B}); got shape {rows.shape}")
    if B == 0:
        return np.empty((0, theta0.shape[1])), np.empty(0), np.empty(0, bool), np.empty(0, int)
    chunk = int(opt.pop("chunk"))
    workers = opt.pop("workers")
    compiled = opt.pop("compiled") and uses_compiled(problem)
    if workers is None:
        workers = min(solver_threads(), -(-B // chunk))
    if compiled:
        from .chinchilla_kernel import solver_for  # numba is imported only when it is used

        solve = solver_for(problem, bounds, opt, tied=chinchilla_form(problem.law) == "tied")
        parts = [np.arange(lo, min(lo + chunk, B)) for lo in range(0, B, chunk)]
    else:
        def solve(theta, rows_):
            return _newton_pool(problem, theta, bounds, rows_, {**opt, "chunk": chunk})

        parts = [np.arange(k, B, max(workers, 1)) for k in range(max(workers, 1))]
    if workers <= 1 or len(parts) == 1:
        results = [solve(theta0[idx], rows[idx]) for idx in parts]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda idx: solve(theta0[idx], rows[idx]), parts))
    out = [np.empty((B,) + r.shape[1:], r.dtype) for r in results[0]]
    for idx, result in zip(parts, results):
        for o, r in zip(out, result):
            o[idx] = r
    return tuple(out)


def chinchilla_form(law) -> str | None:
    """Which form of the Chinchilla family ``law`` is, for the compiled kernel and the profile
    optimizer: ``"free"`` (:class:`~scalerepro.core.laws.Chinchilla`), ``"tied"`` (it with beta
    tied to alpha, or alpha to beta, and nothing else constrained: one exponent for both, the
    free parameters a, b, e and that exponent), or None (any other law)."""
    from .constraints import Constrained
    from .laws import Chinchilla

    if isinstance(law, Chinchilla):
        return "free"
    if (isinstance(law, Constrained) and isinstance(law.base, Chinchilla) and not law.fixed
            and [sorted(pair) for pair in law.tie.items()] == [[3, 4]]):
        return "tied"
    return None


def uses_compiled(problem: Problem) -> bool:
    """Whether :func:`newton_batch` runs ``problem`` compiled: the Chinchilla family with
    a Huber or MSE objective (and numba importable)."""
    if chinchilla_form(problem.law) is None or problem.objective.kind not in ("huber", "mse"):
        return False
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency; a broken install falls back
        return False
    return True


def _newton_pool(problem: Problem, theta0, bounds, rows, opt):
    """One pool of starts for :func:`newton_batch` (options already merged)."""
    theta = _clip(np.array(theta0, dtype=float), bounds)
    B, p = theta.shape
    factors = np.array([1.0, opt["shorter_trial"]] + ([opt["longer_trial"]] if opt["longer_trial"] > 1 else []))
    value = np.full(B, np.inf)
    grad = np.zeros((B, p))
    hess = np.zeros((B, p, p))
    radius = np.full(B, float(opt["radius_init"]))
    iterations = np.zeros(B, int)
    ready = np.zeros(B, bool)
    done = np.zeros(B, bool)
    converged = np.zeros(B, bool)
    exact = np.full(B, bool(opt["start_exact"]))

    def evaluate(idx):
        # A start whose objective or derivatives are not finite stops, unconverged.
        with np.errstate(all="ignore"):
            v, g, H = problem.value_grad_hess(theta[idx], rows[idx], ~exact[idx])
        value[idx], grad[idx], hess[idx] = v, g, H
        done[idx[~(np.isfinite(v) & np.isfinite(g).all(axis=1) & np.isfinite(H).all(axis=(1, 2)))]] = True

    while True:
        a = np.flatnonzero(~done)[:opt["chunk"]]
        if a.size == 0:
            break
        new = a[~ready[a]]
        if new.size:
            ready[new] = True
            evaluate(new)
            a = a[~done[a]]
            if a.size == 0:
                continue
        iterations[a] += 1
        th, v, g, H = theta[a], value[a], grad[a], hess[a]
        if bounds is not None:
            # Projected Newton: a parameter at a bound whose gradient points out of the
            # box is held there (its row and column decoupled), the others move freely.
            held = ((th <= bounds[0]) & (g > 0)) | ((th >= bounds[1]) & (g < 0))
            g = np.where(held, 0.0, g)
            H = np.where(held[:, :, None] | held[:, None, :], 0.0, H)
            H[:, np.arange(p), np.arange(p)] += held
        ex = exact[a]
        with np.errstate(all="ignore"):
            lam, Q = np.linalg.eigh(H)
            steps, radii, newton, model, decrement = _trust_steps(lam, Q, g, radius[a], factors,
                                                                  opt["secular_iter"])
            cand = _clip(th + steps, bounds)
            # the model step; then the shorter step where it fails, the longer where it did well
            trial = np.full((len(factors), a.size), np.inf)
            trial[MODEL] = problem.value(cand[MODEL], rows[a])
            due = {SHORTER: ~(trial[MODEL] < v)}
            if len(factors) > LONGER:
                due[LONGER] = ((trial[MODEL] < v) & (v - trial[MODEL] >= opt["extend_above"] * model[MODEL])
                               & ~newton[MODEL])
            for role, where in due.items():
                if where.any():
                    trial[role, where] = problem.value(cand[role][where], rows[a][where])
        cols = np.arange(a.size)
        pick = np.full(a.size, MODEL)
        for role in range(1, len(factors)):
            pick = np.where(trial[role] < trial[pick, cols], role, pick)
        vt = trial[pick, cols]
        better = vt < v
        scale = np.abs(v)
        gain = v - vt
        # curvature more negative than the Hessian's own rounding (~n eps |H|) is real
        positive = lam[:, 0] > -1e-12 * np.abs(lam).max(axis=1)
        model_newton = better & newton[pick, cols]
        stop = ((ex & model_newton & positive & (gain <= opt["ftol_rel"] * scale))
                | (ex & ~better & positive & (decrement <= opt["ftol_rel"] * scale))
                | (np.abs(g).max(axis=1) <= opt["gtol"] * scale)
                | (~better & (radii[MODEL] <= 1e-13 * np.maximum(1.0, np.abs(th).max(axis=1)))))
        converged[a] = stop
        done[a] = stop | (iterations[a] >= opt["max_iter"])
        radius[a] = np.where(better, np.minimum(opt["radius_grow"] * radii[pick, cols], opt["radius_max"]),
                             radii[SHORTER] / 4.0)
        # Phase: majorized until its own Newton step gains little, exact from then on,
        # back to majorized (re-evaluated) whenever an exact-Hessian step fails.
        exact[a] = (ex & better) | (~ex & model_newton & (gain <= opt["exact_below"] * scale))
        ready[a[ex & ~better & ~done[a]]] = False
        acc = a[better]
        theta[acc] = cand[pick, cols][better]
        value[acc] = vt[better]
        acc = acc[~done[acc]]
        if acc.size:
            evaluate(acc)
    return theta, value, converged, iterations

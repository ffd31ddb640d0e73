"""Robust multi-start fitting of scaling laws: :func:`fit` and its :class:`FitResult`.

By default all starts are optimised together by the batched trust-region Newton solver
(:mod:`scalerepro.core.newton`), whose scale-free stopping rule reaches the same optimum
whether the loss is summed or averaged. For the Chinchilla family a variable-projection
solver (``optimizer="profile"``, :mod:`scalerepro.core.profile`) reaches the same optimum from
a grid over the two exponents alone, twenty and more times faster. The scipy optimizers
are available per start for the cases where the published protocol used them (and where
their absolute tolerances are the point, as in the sum-versus-mean effect), and a
grid-only search for comparison.

Every fit returns a :class:`FitResult` that records how it was made, so the reporting
checklist is filled from records rather than typed by hand.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np
import scipy
import scipy.optimize

from .constraints import constrain, fitted_name
from ..errors import FitWarning
from .laws import Law
from .newton import EXECUTION_OPTIONS, NEWTON_DEFAULTS, newton_batch, uses_compiled
from .objective import FitError, Objective, Problem
from ..summary import Row, Summary

OPTIMIZERS = ("newton", "profile", "L-BFGS-B", "BFGS", "least_squares", "grid")


# ----------------------------------------------------------------------------- result
class FitStatus(str, Enum):
    """How a fit ended: the one stored answer, from which ``FitResult.converged`` and
    ``FitResult.outcome`` are derived. ``NOT_IDENTIFIED`` is set by the identifiability
    checks of a user's fit (:attr:`scalerepro.runs.fit.UserFit.status`), not by the optimizer."""

    CONVERGED = "converged"
    SETTLED_AT_EDGE = "settled at the edge"  # predictions converged, a parameter runs off to 0 or inf
    MAX_ITERATIONS = "max iterations"        # stopped while still moving: nothing is final
    NOT_IDENTIFIED = "not identified"
    GRID_ONLY = "grid only"                  # optimizer="grid": the best grid point, no optimization


@dataclass
class FitResult:
    """A fitted law and the record of how it was fitted."""

    law: Law
    theta: np.ndarray
    objective_value: float
    objective: Objective
    optimizer: dict
    status: FitStatus  # how the best start ended (see fit_status)
    message: str       # the optimizer's own message for the best start
    n_starts: int
    n_starts_converged: int
    best_start: np.ndarray
    start_objectives: np.ndarray
    start_thetas: np.ndarray
    start_converged: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray
    bounds: list | None
    points_used: int
    dropped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    seconds: float = 0.0
    input_ranges: dict = field(default_factory=dict)  # input name -> [min, max] of fitted points
    # why a Newton fit stopped at max_iter, and which parameters kept drifting (see stall_diagnosis)
    stall: dict | None = None
    # optimizer="profile": the (alpha, beta) profile landscape (see scalerepro.core.profile.landscape)
    landscape: dict | None = None
    # the data and objective the fit was made on, so that residuals, the objective elsewhere
    # and a bootstrap need no second copy of X and y from the caller
    problem: Problem | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict[str, float]:
        """Natural parameters (E, A, B, alpha, beta for the Chinchilla form)."""
        return self.law.natural(self.theta)

    @property
    def converged(self) -> bool:
        """Whether the best start met the stopping rule (read from :attr:`status`)."""
        return self.status is FitStatus.CONVERGED

    @property
    def outcome(self) -> str:
        """One short phrase for tables, from :attr:`status`: 'converged', 'settled at the edge:
        <drifts>' (the predictions converged, some parameters run off; see
        :func:`stall_diagnosis`), or 'not converged'."""
        if self.status is FitStatus.CONVERGED:
            return "converged"
        if self.status is FitStatus.SETTLED_AT_EDGE:
            return "settled at the edge: " + ", ".join(
                self.law.describe_drift(name, d) for name, d in self.stall["drifting"].items())
        return "not converged"

    @property
    def hessian_condition(self) -> float:
        return float(np.linalg.cond(self.hessian))

    def predict(self, X) -> np.ndarray:
        return self.law.predict(self.theta, np.asarray(X, float))

    def _data(self) -> Problem:
        if self.problem is None:
            raise FitError("this FitResult does not hold its data (it was not made by fit())")
        return self.problem

    def residuals(self) -> np.ndarray:
        """Observed minus fitted loss, per point, in the objective's space (log or raw loss)."""
        problem = self._data()
        f = self.law.log_predict(self.theta[None, :], problem.X)[0]
        return problem.target - (np.exp(f) if self.objective.space == "raw" else f)

    def objective_at(self, theta=None, reduction: str | None = None):
        """The fit's objective (same data, loss, delta, space and weights) at ``theta``
        (default: the fit's own; one vector ``(p,)`` or several ``(B, p)``, in the law's fitted
        parameterization), summed or averaged as ``reduction`` says (default: as fitted).
        The common yardstick when fits that used different reductions are compared."""
        problem = self._data()
        theta = self.theta if theta is None else np.asarray(theta, float)
        objective = self.objective if reduction is None else replace(self.objective, reduction=reduction)
        weights = None if problem.unit else problem.weights
        values = Problem(self.law, problem.X, problem.y, objective, weights).value(
            np.atleast_2d(theta), np.zeros(len(np.atleast_2d(theta)), int))
        return float(values[0]) if np.ndim(theta) == 1 else values

    def record(self) -> dict:
        """Plain-JSON provenance of the fit (the checklist's source for the fitting group)."""
        return {
            "form": self.law.describe(),
            "params": self.params,
            "theta": dict(zip(self.law.param_names, map(float, self.theta))),
            "objective": self.objective.describe(),
            "objective_value": float(self.objective_value),
            "optimizer": self.optimizer,
            "initialization": {"n_starts": self.n_starts,
                               "n_starts_converged": self.n_starts_converged,
                               "best_start": dict(zip(self.law.param_names, map(float, self.best_start)))},
            "bounds": self.bounds,
            "converged": bool(self.converged),
            "status": self.status.value,
            "message": self.message,
            "stall_diagnosis": self.stall,
            "gradient_max_abs": float(np.max(np.abs(self.gradient))),
            "hessian_condition": self.hessian_condition,
            "points_used": int(self.points_used),
            "input_ranges": self.input_ranges,
            "points_dropped": self.dropped,
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 4),
        }

    def summary(self, bootstrap=None) -> Summary:
        """The fit at a glance, from :meth:`record` (nothing recomputed): the natural
        parameters, with the intervals and standard errors of ``bootstrap`` (a
        :class:`~scalerepro.core.bootstrap.BootstrapResult` of this fit) when given; then the
        status, objective, optimizer, points and warnings. ``print()`` it for text; in
        Jupyter it displays as a table."""
        rec = self.record()
        boot = bootstrap.record() if bootstrap is not None else {}
        intervals, ses = boot.get("intervals", {}), boot.get("standard_errors", {})
        rows = [Row(name, value, intervals.get(name), ses.get(name)) for name, value in rec["params"].items()]
        start = rec["initialization"]
        said = f" ({rec['message']})" if rec["message"] and rec["message"] != rec["status"] else ""
        notes = [f"status: {rec['status']}{said}",
                 f"objective: {rec['objective']['text']} = {rec['objective_value']:.10g}",
                 f"optimizer: {rec['optimizer']['name']}, {start['n_starts']} starts "
                 f"({start['n_starts_converged']} converged)",
                 f"points: {rec['points_used']} used, {len(rec['points_dropped'])} dropped",
                 f"Hessian condition number: {rec['hessian_condition']:.3g}"]
        if boot:
            notes.append(f"intervals: {boot['method']}, {boot['n_resamples']} resamples ({boot['resampling']}), "
                         f"{boot['n_failed']} failed, seed {boot['seed']}")
        notes += [f"warning: {w}" for w in rec["warnings"] + boot.get("warnings", [])]
        return Summary(f"{rec['form']['name']} fit", rows, notes, level=boot.get("level"))

    def __repr__(self):
        return f"FitResult({self.summary()})"


# ----------------------------------------------------------------------------- scipy


def _scipy_single(problem: Problem, theta0, method, bounds, options):
    """One scipy optimization from one start, with the analytic gradient."""

    def fun(t):
        v, g = problem.value_grad(t[None, :], np.array([0]))
        return float(v[0]), g[0]

    if method == "least_squares":
        if problem.objective.kind not in ("huber", "mse") or problem.weights.shape[0] != 1:
            raise FitError("least_squares supports huber or mse objectives on one data set")
        w = problem.weights[0]

        def resid(t):
            f = problem.law.log_predict(t[None, :], problem.X)[0]
            r = (f if problem.objective.space == "log" else np.exp(f)) - problem.target
            return np.sqrt(w) * r

        kwargs = dict(loss="huber" if problem.objective.kind == "huber" else "linear",
                      f_scale=problem.objective.delta if problem.objective.kind == "huber" else 1.0)
        if bounds is not None:
            kwargs["bounds"] = bounds
        res = scipy.optimize.least_squares(resid, theta0, **kwargs, **options)
        return res.x, float(problem.value(res.x[None, :], np.array([0]))[0]), bool(res.success), res.message
    kwargs = {}
    if bounds is not None and method == "L-BFGS-B":
        kwargs["bounds"] = list(zip(bounds[0], bounds[1]))
    res = scipy.optimize.minimize(fun, theta0, jac=True, method=method, options=options or None, **kwargs)
    return res.x, float(res.fun), bool(res.success), str(res.message)


# ----------------------------------------------------------------------------- fit
def _as_bounds(law, bounds):
    """``{name: (low, high)}`` (published or fitted names; published values for a log
    coefficient, e.g. E in (0, 2)) as arrays in the fitted coordinates."""
    if bounds is None:
        return None
    lo, hi = np.full(law.n_params, -np.inf), np.full(law.n_params, np.inf)
    for name, (low, high) in bounds.items():
        j = law.param_names.index(fitted_name(law, name))
        if name not in law.param_names and law.param_names[j] in law.log_coefficients:  # published: a log
            with np.errstate(divide="ignore"):
                low, high = np.log(max(low, 0.0)), np.log(high)
        lo[j], hi[j] = low, high
    return lo, hi


def fit(law: Law, X, y, *, objective: str = "huber", delta: float = 1e-3, space: str = "log",
        reduction: str = "sum", starts=None, optimizer: str = "newton", bounds: dict | None = None,
        options: dict | None = None, dropped: list | None = None, weights=None, warn: bool = True,
        fixed: dict | None = None, tie: dict | None = None) -> FitResult:
    """Fit ``law`` to losses ``y`` at inputs ``X`` (columns in ``law.inputs`` order).

    optimizer: ``"newton"`` (default: every start of the grid run to its own convergence,
    Hoffmann's protocol), ``"profile"`` (variable projection for the Chinchilla family, see
    :mod:`scalerepro.core.profile`: the same optimum from a grid over the exponents alone, and
    the profile landscape in ``FitResult.landscape``), the scipy optimizers one start at a
    time, or ``"grid"`` (no optimization). starts: array ``(S, p)`` in the law's fitted
    parameterization; defaults to the law's published start grid (for ``"profile"``,
    given starts are polished along with the landscape's minima). bounds: optional
    ``{param: (low, high)}``; fixed: ``{param: value}`` held fixed; tie: ``{param: other}``,
    fitted as one (e.g. ``{"beta": "alpha"}``) -- all three in published names (E, A, B,
    alpha, beta) or fitted ones (see :mod:`scalerepro.core.constraints`); with constraints the
    result's law is the constrained one, and starts may have the law's full width.
    dropped: records of
    points removed before the fit (``{"index", "reason"}``), kept in the result so the
    report can say which points were used. Returns the best start's :class:`FitResult`;
    its ``status`` (:class:`FitStatus`) says how that start ended.
    Numerical problems are kept in ``result.warnings`` and also issued as
    :class:`~scalerepro.errors.FitWarning`, unless ``warn=False`` (for callers that report
    them themselves: refits, variants, own-run reports).
    """
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(law.inputs) or X.shape[0] != y.shape[0]:
        raise FitError(f"{law.name} needs X of shape (n, {len(law.inputs)}) with columns "
                       f"{list(law.inputs)} and one loss per row; got X {X.shape}, y {y.shape}")
    bad = ~np.isfinite(X).all(axis=1) | ~np.isfinite(y) | (y <= 0)
    if bad.any():
        raise FitError(f"rows {np.flatnonzero(bad)[:10].tolist()} have non-finite inputs or a "
                       "non-positive loss; clean them (and record why) before fitting")
    if optimizer not in OPTIMIZERS:
        raise FitError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    obj = Objective(objective, delta, space, reduction)
    full_width = law.n_params
    law = constrain(law, fixed, tie)
    explicit_starts = starts is not None
    if starts is None:  # the profile optimizer makes its own starts
        starts = np.empty((0, law.n_params)) if optimizer == "profile" else law.default_starts()
    starts = np.atleast_2d(np.asarray(starts, float))
    if law.n_params != full_width and starts.shape[1] == full_width:  # starts for the unconstrained law
        starts = law.free_starts(starts)
    if starts.shape[1] != law.n_params:
        raise FitError(f"starts must have {law.n_params} columns {list(law.param_names)}")
    problem = Problem(law, X, y, obj, weights)
    box = _as_bounds(law, bounds)
    options = dict(options or {})
    landscape = None

    if optimizer == "newton":
        if obj.kind == "mae":
            raise FitError("the Newton optimizer needs a twice-differentiable objective; "
                           "fit MAE with optimizer='L-BFGS-B' or 'grid'")
        thetas, values, conv, its = newton_batch(problem, starts, box, **options)
        opt_record = {"name": "newton", "description": "batched trust-region Newton (analytic "
                      "gradient and Hessian, saddle-free model, IRLS-majorized far from a minimum, "
                      "per-start trust radius), every start run to its own convergence",
                      "implementation": newton_implementation(problem, options),
                      "tolerances": newton_tolerances(options)}
        messages = np.where(conv, "converged", "max_iter reached")
    elif optimizer == "profile":
        from .profile import profile_fit  # compiled on first use

        starts, thetas, values, conv, its, landscape, used = profile_fit(
            problem, box, options, starts if explicit_starts else None)
        grid = landscape["alpha"]
        opt_record = {"name": "profile", "description": "variable projection: (E, A, B) fitted in closed "
                      f"form (non-negative least squares, then reweighted steps) at each of "
                      f"{landscape['objective'].size} grid exponents in [{grid[0]:g}, {grid[-1]:g}], then "
                      f"batched trust-region Newton on all parameters from the {len(starts)} best local "
                      "minima of that landscape, each run to its own convergence",
                      "implementation": newton_implementation(problem, options),
                      "tolerances": {**newton_tolerances({k: v for k, v in used.items() if k in NEWTON_DEFAULTS}),
                                     **{k: v for k, v in used.items() if k not in NEWTON_DEFAULTS}}}
        messages = np.where(conv, "converged", "max_iter reached")
    elif optimizer == "grid":
        values = problem.value(starts, np.zeros(len(starts), int))
        thetas, conv = starts.copy(), np.zeros(len(starts), bool)
        messages = np.full(len(starts), "grid search only: no optimization")
        opt_record = {"name": "grid", "description": "objective evaluated on the start grid; "
                      "best grid point kept", "tolerances": {}}
    else:
        out = [_scipy_single(problem, s, optimizer, box, options) for s in starts]
        thetas = np.array([o[0] for o in out])
        values = np.array([o[1] for o in out])
        conv = np.array([o[2] for o in out])
        messages = np.array([o[3] for o in out], dtype=object)
        opt_record = {"name": optimizer, "description": f"scipy {scipy.__version__} "
                      f"{optimizer} with analytic gradient, one start at a time",
                      "tolerances": options or "scipy defaults"}
    values = np.where(np.isfinite(values), values, np.inf)
    if not np.isfinite(values).any():
        raise FitError(f"no start of {len(starts)} gave a finite objective for {law.name}")
    best = int(np.argmin(values))
    stall = None
    if optimizer in ("newton", "profile") and not conv[best]:
        stall = stall_diagnosis(problem, thetas[best], values[best], box,
                                {k: v for k, v in options.items() if k in NEWTON_DEFAULTS})
        messages = np.asarray(messages, dtype=object)
        messages[best] = f"max_iter reached; {stall['text']}"
    v, g, H = problem.value_grad_hess(thetas[best:best + 1], np.array([0]))
    result = FitResult(
        law=law, theta=thetas[best], objective_value=float(values[best]), objective=obj,
        optimizer=opt_record, status=fit_status(optimizer, bool(conv[best]), stall), message=str(messages[best]),
        n_starts=len(starts), n_starts_converged=int(conv.sum()), best_start=starts[best],
        start_objectives=values, start_thetas=thetas, start_converged=conv,
        gradient=g[0], hessian=H[0],
        bounds=None if bounds is None else {k: list(v) for k, v in bounds.items()},
        points_used=len(y), dropped=list(dropped or []), seconds=time.perf_counter() - t0,
        input_ranges={name: [float(X[:, j].min()), float(X[:, j].max())]
                      for j, name in enumerate(law.inputs)},
        stall=stall, landscape=landscape, problem=problem)
    result.warnings = numerical_warnings(result, box)
    for message in result.warnings if warn else ():
        warnings.warn(message, FitWarning, stacklevel=2)
    return result


def fit_status(optimizer: str, converged: bool, stall: dict | None) -> FitStatus:
    """How the best start ended: a grid point (no optimization), the stopping rule met, or
    stopped at the iteration cap -- with its predictions settled while some parameters
    drift (the edge of the parameter space, see :func:`stall_diagnosis`) or not."""
    if optimizer == "grid":
        return FitStatus.GRID_ONLY
    if converged:
        return FitStatus.CONVERGED
    if stall and stall["predictions_settled"] and stall["drifting"]:
        return FitStatus.SETTLED_AT_EDGE
    return FitStatus.MAX_ITERATIONS


def newton_tolerances(options: dict) -> dict:
    """The Newton settings a fit record states: every option that can change a result."""
    return {k: v for k, v in {**NEWTON_DEFAULTS, **options}.items() if k not in EXECUTION_OPTIONS}


def newton_implementation(problem: Problem, options: dict) -> str:
    if options.get("compiled", True) and uses_compiled(problem):
        return "compiled per start (numba kernel for the Chinchilla family)"
    return "numpy, vectorised over starts"


PROBE_ITERATIONS = 100
# Largest change of any point's log prediction over the probe for "settled": 1e-6 in log
# loss is 1e-4 % of the predicted loss, far below the run-to-run noise of any loss table.
SETTLED_LOG_PREDICTION = 1e-6
# Smallest movement of a fitted parameter over the probe called a drift (for a log
# coefficient, a 0.1 % change of the coefficient).
DRIFT = 1e-3


def probe_stalled(problem: Problem, theta, rows=None, box=None, options=None):
    """Continue the Newton starts ``theta`` (``(k, p)``, rows of ``problem`` as in
    :func:`newton_batch`) for ``PROBE_ITERATIONS`` more iterations. Returns the probe's
    (theta, objective, converged, iterations) and each start's largest change of a log
    prediction, which is ``<= SETTLED_LOG_PREDICTION`` when its predictions have settled."""
    options = {**(options or {}), "max_iter": PROBE_ITERATIONS}
    th, v, conv, its = newton_batch(problem, theta, box, rows=rows, **options)
    with np.errstate(all="ignore"):
        change = np.max(np.abs(problem.law.log_predict(th, problem.X) - problem.law.log_predict(theta, problem.X)),
                        axis=1)
    return th, v, conv, its, np.where(np.isfinite(change), change, np.inf)


def stall_diagnosis(problem: Problem, theta, value, box=None, options=None) -> dict:
    """Why a Newton start stopped at ``max_iter``: continue it ``PROBE_ITERATIONS`` more
    iterations (a copy; the fit itself is not changed) and see what still moves.

    Two very different situations end at the iteration cap. Either the start is still
    travelling and the fit is unusable; or its predictions have settled and only
    parameters that no longer affect them keep drifting. The typical case is a log
    coefficient heading to -inf because the best fit has that coefficient at 0, the edge
    of the parameter space, which the log parameterization reaches only in the limit
    (an irreducible term E -> 0 on a handful of runs). Then the predictions are converged
    and that parameter is not identified, and the reader must be told which of the two it
    was. Returns a plain-JSON record with a one-line ``text``.
    """
    names = problem.law.param_names
    th, v, conv, its, change = probe_stalled(problem, np.asarray(theta, float)[None, :], None, box, options)
    moved = th[0] - theta
    prediction_change = float(change[0])
    objective_change = float((v[0] - value) / max(abs(value), np.finfo(float).tiny))
    drifting = {name: float(d) for name, d in zip(names, moved) if abs(d) >= DRIFT}
    settled = prediction_change <= SETTLED_LOG_PREDICTION
    change = (f"{int(its[0])} more iterations change the log predictions by at most "
              f"{prediction_change:.1e} and the objective by {objective_change:.1e} relative")
    if not settled:
        text = f"still moving ({change}): neither the parameters nor the predictions are final"
    elif drifting:
        where = ", ".join(problem.law.describe_drift(name, d) for name, d in drifting.items())
        one = len(drifting) == 1
        text = (f"predictions settled ({change}) while {where} {'keeps' if one else 'keep'} drifting: "
                f"the best fit lies at the edge of the parameter space, where "
                f"{'that parameter is' if one else 'those parameters are'} not identified")
    elif conv[0]:
        text = f"slow final convergence: the stopping rule was met {int(its[0])} iterations later"
    else:
        text = f"predictions and parameters settled ({change}) without meeting the stopping rule"
    return {"probe_iterations": int(its[0]), "probe_met_stopping_rule": bool(conv[0]),
            "max_log_prediction_change": prediction_change, "objective_change_rel": objective_change,
            "drifting": drifting, "predictions_settled": settled, "text": text}


CONDITION_WARN = 1e10


def numerical_warnings(result: FitResult, box=None) -> list[str]:
    """The problems a reader must be told about rather than have hidden."""
    out = []
    if result.status in (FitStatus.MAX_ITERATIONS, FitStatus.SETTLED_AT_EDGE):
        usable = ("its predictions can be used, the drifting parameters cannot"
                  if result.status is FitStatus.SETTLED_AT_EDGE else "treat the parameters as unreliable")
        out.append(f"the best start did not converge ({result.message}); {usable}")
    if box is not None:
        lo, hi = box
        at = [n for n, t, l, h in zip(result.law.param_names, result.theta, lo, hi)
              if np.isclose(t, l, atol=1e-8) or np.isclose(t, h, atol=1e-8)]
        if at:
            out.append(f"parameters at a bound: {', '.join(at)}")
    cond = result.hessian_condition
    if not np.isfinite(cond) or cond > CONDITION_WARN:
        out.append(f"ill-conditioned Hessian at the optimum (condition number {cond:.3g})")
    return out

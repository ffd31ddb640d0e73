"""Identifiability after a fit: did the data determine the parameters, or only the objective?

"Converged" means the optimizer met its stopping rule. It does not mean the data pin the
parameters down: on a ladder with D/N fixed, on three design points, or with E running off
to 0, the objective has a valley of equally good parameter vectors and the optimizer stops
somewhere in it. The checks here turn that into a record a reader cannot miss:

- non-physical values: negative exponents, a parameter sitting exactly on a start-grid value
  (it never moved: the data did not inform it), a coefficient beyond 1e30, E -> 0, a
  parameter still drifting when the iteration cap was reached;
- flat directions: starts that reach the best objective (within 1e-6 relative) at materially
  different parameters, and the near-null space of the objective's Hessian (scaled to unit
  diagonal so that units do not matter), named as a combination of parameters;
- for each flagged parameter, the objective's profile (the parameter fixed on a grid, the
  others re-optimized), so a reader can see how flat it is;
- an influence check: each run (bootstrap group) left out in turn, all refits batched and
  warm-started, naming any run whose removal moves a derived quantity (the allocation
  exponent) outside its bootstrap interval;
- the bootstrap's edges (:func:`bootstrap_edges`): a parameter that too many refits ran to
  the edge of the parameter space (E -> 0), so that its interval reaches that limit, is not
  bounded by the data: a ``not_identified`` warning, which the outcome then says too.

Any error-severity finding makes the outcome "not identified", which replaces "converged"
wherever the fit is summarised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import Diagnostic, sorted_by_severity
from ..summary import Summary
from .laws import Law
from .newton import newton_batch
from .objective import Problem

#: Starts whose objective is within this relative distance of the best "reach the best".
SAME_OBJECTIVE = 1e-6
#: A difference of a fitted coordinate above this is material (1% of a coefficient, 0.01 of
#: an exponent); starts at one well-determined optimum agree to ~1e-6.
MATERIAL = 1e-2
#: Scaled-Hessian eigenvalue below this share of the largest: a flat direction. Real,
#: identified Chinchilla fits sit near 1e-5 (a and alpha are strongly correlated); a ladder
#: with D/N fixed near 1e-16.
NULL_RATIO = 1e-10
COEFFICIENT_LIMIT = 1e30
#: E below this share of the smallest observed loss is "E -> 0".
E_FLOOR = 1e-3
#: An exponent above this is steeper than any published language-model scaling law.
STEEP_EXPONENT = 2.5
GRID_TOLERANCE = 1e-7
PROFILE_POINTS = 25
#: Profile points within this relative distance of the best objective fit about as well
#: (a judgment call, not a statistical test):
#: a derived quantity that moves across them depends on the unidentified direction.
FLAT_PROFILE = 2e-2
PROFILE_MAX_ITER = 200
#: Batched runs over all profile points at most: the first from the valley's starts, the
#: others from each point's neighbours' solutions.
PROFILE_PASSES = 4
PROFILE_VALLEY_STARTS = 6
MAX_PROFILES = 3
#: How an outcome says that the bootstrap does not bound a parameter (:func:`bootstrap_edges`):
#: "converged; not bounded by the bootstrap: E".
UNBOUNDED = "not bounded by the bootstrap"
#: Components of a null direction (unit vector, scaled coordinates) at least this large
#: name the parameters it involves.
PARTICIPATION = 0.1


_EXPONENT_OF = {"alpha": "N", "beta": "D"}


def natural_name(law: Law, name: str) -> str:
    """The published name of a fitted parameter: a -> A, e -> E, alpha -> alpha."""
    return law.log_coefficients.get(name, name)


def _label(law: Law, name: str) -> str:
    return f"log {law.log_coefficients[name]}" if name in law.log_coefficients else name


def _show(law: Law, name: str, theta_j: float) -> str:
    if name in law.log_coefficients:
        with np.errstate(over="ignore"):
            return f"{law.log_coefficients[name]} = {np.exp(theta_j):.3g}"
    return f"{name} = {theta_j:.4g}"


@dataclass
class Identifiability:
    """The findings of :func:`check` (plus :func:`influence` when a bootstrap ran)."""

    outcome: str                                # "identified" | "not identified"
    unidentified: list[str]                     # natural parameter names
    diagnostics: list[Diagnostic]
    directions: list[dict] = field(default_factory=list)
    starts_at_best: dict = field(default_factory=dict)
    profiles: list[dict] = field(default_factory=list)
    influence: dict | None = None
    checkpoints: dict | None = None             # final_rows_refit's record, when checkpoints entered
    bootstrap_edges: dict | None = None         # bootstrap_edges' record, when a bootstrap ran
    seconds: float = 0.0

    @property
    def unbounded(self) -> list[str]:
        """Parameters the bootstrap does not bound (:func:`bootstrap_edges`)."""
        return [name for name, row in (self.bootstrap_edges or {}).items() if not row["bounded"]]

    def record(self) -> dict:
        return {"outcome": self.outcome, "unidentified": list(self.unidentified),
                "flat_directions": self.directions, "starts_at_best": self.starts_at_best,
                "profiles": self.profiles, "influence": self.influence, "checkpoints": self.checkpoints,
                "bootstrap_edges": self.bootstrap_edges, "seconds": round(self.seconds, 3)}

    def summary(self) -> Summary:
        """What the data cannot tell, from the record: the verdict, the parameters not
        identified, and each diagnostic (errors first)."""
        rec = self.record()
        title = rec["outcome"] + (f": {', '.join(rec['unidentified'])}" if rec["unidentified"] else "")
        return Summary(f"identifiability: {title}", [], [f"{d.severity}: {d.message}" for d in sorted_by_severity(self.diagnostics)])


# ----------------------------------------------------------------------------- values
def implausible(result, y, starts=None) -> list[Diagnostic]:
    """One diagnostic per parameter whose fitted value is not physical (see module doc)."""
    law, theta = result.law, np.asarray(result.theta, float)
    try:
        grid = law.default_starts() if starts is None else np.atleast_2d(np.asarray(starts, float))
    except NotImplementedError:
        grid = np.empty((0, law.n_params))
    drifting = (result.stall or {}).get("drifting") or {}
    out = []
    for j, name in enumerate(law.param_names):
        nat, t, shown = natural_name(law, name), float(theta[j]), _show(law, name, float(theta[j]))
        reasons, severity = [], "error"
        if name in drifting:
            reasons.append(f"it was still drifting ({law.describe_drift(name, drifting[name])}) when the "
                           "optimizer stopped: the best fit lies at the edge of the parameter space")
        if name in law.log_coefficients:
            if t > np.log(COEFFICIENT_LIMIT):
                reasons.append("a coefficient beyond 1e30 means its term is balanced by an extreme exponent, "
                               "not measured")
            if nat == "E" and np.exp(t) < E_FLOOR * float(np.min(y)) and name not in drifting:
                reasons.append(f"E -> 0 (below {E_FLOOR:g} of the smallest loss): the runs do not bound the "
                               "irreducible loss, and the other terms absorb it")
        else:
            if t < 0:
                grows = _EXPONENT_OF.get(name) if set(law.inputs) == {"N", "D"} else None
                reasons.append(f"a negative exponent makes the loss grow with {grows}" if grows
                               else "a negative exponent makes the loss grow with scale")
            elif t > STEEP_EXPONENT:
                reasons.append(f"an exponent above {STEEP_EXPONENT:g} is steeper than any published scaling law")
        column = np.unique(grid[:, j]) if grid.shape[1] == len(law.param_names) else np.array([])
        if column.size and np.min(np.abs(column - t)) < GRID_TOLERANCE and result.optimizer.get("name") != "grid":
            reasons.append("it sits exactly on a start-grid value: it never moved from its start, so the data "
                           "did not inform it")
        if reasons:
            out.append(Diagnostic("implausible_parameter", severity,
                                  f"{shown} is not physical: {'; '.join(reasons)}", (nat,)))
    return out


# ----------------------------------------------------------------------------- flatness
def starts_at_best(result) -> dict:
    """Which starts reach the best objective, and how far apart their parameters are."""
    law = result.law
    values = np.asarray(result.start_objectives, float)
    thetas = np.asarray(result.start_thetas, float)
    best = float(result.objective_value)
    tol = max(SAME_OBJECTIVE * abs(best), 1e-14)
    at = np.isfinite(values) & (values <= best + tol) & np.isfinite(thetas).all(axis=1)
    spread = np.ptp(thetas[at], axis=0) if at.any() else np.zeros(law.n_params)
    ranges = {}
    for j, name in enumerate(law.param_names):
        lo, hi = float(thetas[at, j].min()), float(thetas[at, j].max())
        if name in law.log_coefficients:
            with np.errstate(over="ignore"):
                lo, hi = float(np.exp(lo)), float(np.exp(hi))
        ranges[natural_name(law, name)] = [lo, hi]
    return {"n_starts": int(len(values)), "n_at_best": int(at.sum()), "tolerance_rel": SAME_OBJECTIVE,
            "max_difference": {natural_name(law, n): float(s) for n, s in zip(law.param_names, spread)},
            "ranges": ranges, "material": [natural_name(law, n) for n, s in zip(law.param_names, spread)
                                           if s > MATERIAL]}


def flat_directions(result) -> list[dict]:
    """Near-null directions of the objective's Hessian at the optimum.

    The Hessian is scaled to unit diagonal first (a change of units of any parameter does
    not change the verdict). Each direction is given in the fitted coordinates, scaled so
    its largest coefficient is 1, and as text: moving the parameters in these proportions
    leaves the objective unchanged to second order.
    """
    law = result.law
    H = np.asarray(result.hessian, float)
    names = list(law.param_names)
    out = []
    if not np.isfinite(H).all():
        return [{"parameters": [natural_name(law, n) for n in names], "combination": "Hessian not finite",
                 "eigenvalue_ratio": None, "coefficients": {}, "main": natural_name(law, names[0])}]
    d = np.sqrt(np.abs(np.diag(H)))
    dead = d <= 1e-300 + 1e-14 * d.max(initial=0.0)
    for j in np.flatnonzero(dead):
        out.append({"parameters": [natural_name(law, names[j])], "combination": _label(law, names[j]),
                    "eigenvalue_ratio": 0.0, "coefficients": {_label(law, names[j]): 1.0},
                    "main": natural_name(law, names[j])})
    live = np.flatnonzero(~dead)
    if live.size < 2:
        return out
    S = H[np.ix_(live, live)] / np.outer(d[live], d[live])
    lam, V = np.linalg.eigh(S)
    ratio = np.abs(lam) / np.abs(lam).max()
    for k in np.flatnonzero(ratio < NULL_RATIO):
        v = V[:, k]
        u = v / d[live]
        involved = np.flatnonzero(np.abs(v) >= PARTICIPATION)
        ref = involved[np.argmax(np.abs(v[involved]))]
        coefficients = {_label(law, names[live[i]]): float(u[i] / u[ref]) for i in involved}
        text = " ".join(f"{'+' if c >= 0 else '-'} {abs(c):.3g} {lab}" for lab, c in coefficients.items())
        out.append({"parameters": [natural_name(law, names[live[i]]) for i in involved],
                    "combination": text.lstrip("+ "), "eigenvalue_ratio": float(ratio[k]),
                    "coefficients": coefficients, "main": natural_name(law, names[live[ref]])})
    return out


# ----------------------------------------------------------------------------- profiles
class _ProfileProblem:
    """``problem`` with fitted parameter ``index`` held at ``values[row]`` for a start whose
    weight row is ``row``: every point of a profile is one row, so all points are solved
    in one batched Newton run instead of one run per point.

    It offers what :func:`newton_batch` calls (``value``, ``value_grad_hess``); ``law`` is
    None because this is not a plain law (``newton_batch`` runs it through numpy)."""

    law = None

    def __init__(self, problem: Problem, index: int, values):
        self.problem, self.index = problem, index
        self.values = np.asarray(values, float)
        self.objective = problem.objective
        self.keep = [i for i in range(problem.law.n_params) if i != index]

    def _full(self, theta, rows):
        return np.insert(np.atleast_2d(theta), self.index, self.values[rows], axis=1)

    def value(self, theta, rows):
        return self.problem.value(self._full(theta, rows), None)

    def value_grad_hess(self, theta, rows, majorize=None):
        v, g, H = self.problem.value_grad_hess(self._full(theta, rows), None, majorize)
        return v, g[:, self.keep], H[:, self.keep][:, :, self.keep]


def _profile_grid(law: Law, name: str, best: float, y) -> np.ndarray:
    """Fitted-coordinate values to profile: the best value and the plausible region.

    E from (almost) 0 to just below the smallest loss, evenly spaced (E is a loss, and the
    question is whether E = 0 fits better than E = 1.5); other coefficients two decades
    either side of the best, log-spaced; exponents from 0 (or the best, if negative) to 1
    (or the best, if larger)."""
    if name in law.log_coefficients:
        if law.log_coefficients[name] == "E":
            values = np.linspace(E_FLOOR * np.min(y), 0.95 * np.min(y), PROFILE_POINTS)
            return np.unique(np.r_[np.log(values), best])
        lo, hi = best - np.log(100.0), best + np.log(100.0)
    else:
        lo, hi = min(best, 0.0) - 0.05, max(best, 1.0) + 0.05
    return np.unique(np.r_[np.linspace(lo, hi, PROFILE_POINTS), best])


def profile(result, X, y, parameter: str, values=None) -> dict:
    """The objective along one parameter, the others re-optimized at each value.

    ``parameter`` is a natural name (E, A, B, alpha, beta); ``values`` fitted-coordinate
    values (default: :func:`_profile_grid`). All points are fitted in one batched Newton
    run from the best fit and the valley's starts, then again from their neighbours'
    solutions while that improves any point. Returns the record the report draws:
    ``{"parameter", "values" (natural units), "objective", "best", "best_objective",
    "scale" (log|linear), "relative_rise"}``.
    """
    law = result.law
    names = list(law.param_names)
    j = next(i for i, n in enumerate(names) if natural_name(law, n) == parameter)
    grid = _profile_grid(law, names[j], float(result.theta[j]), y) if values is None else np.asarray(values, float)
    X, y = np.asarray(X, float), np.asarray(y, float)
    problem = _ProfileProblem(Problem(law, X, y, result.objective), j, grid)
    rest = np.delete(np.asarray(result.theta, float), j)
    # Starts that reached the best objective elsewhere in a flat valley: at each value the
    # few nearest in this parameter are tried too, so the profile follows the whole valley
    # rather than only the basin around the reported best fit.
    thetas = np.asarray(result.start_thetas, float)
    values_at = np.asarray(result.start_objectives, float)
    at_best = thetas[np.isfinite(values_at) & (values_at <= result.objective_value * (1 + SAME_OBJECTIVE) + 1e-14)
                     & np.isfinite(thetas).all(axis=1)]
    nearest = [np.delete(at_best[np.argsort(np.abs(at_best[:, j] - g))[:PROFILE_VALLEY_STARTS]], j, axis=1)
               for g in grid]
    rows = np.concatenate([np.full(1 + len(n), i) for i, n in enumerate(nearest)])
    starts = np.vstack([np.vstack([rest, n]) for n in nearest])
    best_theta = np.tile(rest, (len(grid), 1))
    best_value = np.full(len(grid), np.inf)
    # Then warm starts from each point's neighbours' solutions, all points at once, until no
    # point improves: what walking the grid point by point would give, in a few passes.
    for _ in range(PROFILE_PASSES):
        with np.errstate(all="ignore"):
            th, v, _, _ = newton_batch(problem, starts, rows=rows, max_iter=PROFILE_MAX_ITER)
        v = np.where(np.isfinite(v), v, np.inf)
        improved = False
        for i in np.unique(rows):
            mine = np.flatnonzero(rows == i)
            k = mine[np.argmin(v[mine])]
            if v[k] < best_value[i] - SAME_OBJECTIVE * abs(best_value[i] if np.isfinite(best_value[i]) else v[k]):
                best_value[i], best_theta[i], improved = v[k], th[k], True
        if not improved:
            break
        inner, outer = np.arange(len(grid) - 1), np.arange(1, len(grid))
        rows = np.r_[inner, outer]
        starts = np.vstack([best_theta[outer], best_theta[inner]])
    found = {i: float(best_value[i]) if np.isfinite(best_value[i]) else None for i in range(len(grid))}
    path = {i: law.natural(np.insert(best_theta[i], j, grid[i])) for i in range(len(grid))}
    objective = [found[i] for i in range(len(grid))]
    is_log = names[j] in law.log_coefficients
    evenly = is_log and values is None and law.log_coefficients[names[j]] == "E"  # E's grid is linear
    with np.errstate(over="ignore"):
        natural = np.exp(grid) if is_log else grid
        best = float(np.exp(result.theta[j])) if is_log else float(result.theta[j])
    finite = [o for o in objective if o is not None]
    rise = (max(finite) / result.objective_value - 1) if finite and result.objective_value > 0 else None
    return {"parameter": parameter, "values": [float(v) for v in natural], "objective": objective,
            "best": best, "best_objective": float(result.objective_value), "scale": "log" if is_log and not evenly else "linear",
            "relative_rise": None if rise is None else float(rise),
            "path": [path[i] for i in range(len(grid))]}


def along_profile(record: dict, quantity, within: float = FLAT_PROFILE) -> list[float]:
    """``quantity`` (a function of the natural parameters) at the profile points whose
    objective is within ``within`` (relative) of the best: how much a derived quantity
    moves along a direction the data do not determine."""
    best = record["best_objective"]
    out = []
    for objective, params in zip(record["objective"], record["path"]):
        if objective is not None and objective <= best * (1 + within) + 1e-14:
            with np.errstate(all="ignore"):
                value = float(np.asarray(quantity({k: np.array([v]) for k, v in params.items()}))[0])
            if np.isfinite(value):
                out.append(value)
    return out


# ----------------------------------------------------------------------------- check
def check(result, X, y, starts=None, profiles: bool = True) -> Identifiability:
    """All checks on one fit. ``starts``: the start grid the fit used (default: the law's)."""
    t0 = time.perf_counter()
    law = result.law
    diagnostics = implausible(result, y, starts)
    if not result.converged and not (result.stall or {}).get("predictions_settled"):
        diagnostics.append(Diagnostic("not_converged", "error",
                                      f"the best start did not converge ({result.message}): its parameters and "
                                      "predictions are not final", tuple(natural_name(law, n) for n in law.param_names)))
    spread = starts_at_best(result)
    if spread["material"]:
        detail = ", ".join(f"{name} {lo:.3g} to {hi:.3g}" for name, (lo, hi) in spread["ranges"].items()
                           if name in spread["material"])
        diagnostics.append(Diagnostic(
            "not_identified", "error",
            f"{spread['n_at_best']} of {spread['n_starts']} starts reach the best objective (within "
            f"{SAME_OBJECTIVE:g} relative) at materially different parameters ({detail}): the data do not "
            "choose between them", tuple(spread["material"])))
    directions = flat_directions(result)
    for direction in directions:
        ratio = direction["eigenvalue_ratio"]
        names = direction["parameters"]
        if len(names) == 1:
            text = (f"the objective does not depend on {direction['combination']} (Hessian eigenvalue "
                    f"{ratio if ratio is not None else float('nan'):.1e} of the largest): {names[0]} is not "
                    "determined by the data")
        else:
            text = (f"the objective is flat along {direction['combination']} (fitted coordinates; Hessian "
                    f"eigenvalue {ratio if ratio is not None else float('nan'):.1e} of the largest): moving the "
                    f"parameters in these proportions leaves the fit unchanged, so {', '.join(names)} are not "
                    "determined separately")
        diagnostics.append(Diagnostic("not_identified", "error", text, tuple(names)))
    errors = [d for d in diagnostics if d.severity == "error"]
    unidentified = list(dict.fromkeys(s for d in errors for s in d.subjects))
    flagged = list(dict.fromkeys(
        [s for d in errors if d.code == "implausible_parameter" for s in d.subjects]
        + [d["main"] for d in directions]
        + sorted(spread["material"], key=lambda n: -spread["max_difference"][n])))
    records = []
    if profiles:
        for name in flagged[:MAX_PROFILES]:
            records.append(profile(result, X, y, name))
    return Identifiability(outcome="not identified" if errors else "identified", unidentified=unidentified,
                           diagnostics=diagnostics, directions=directions, starts_at_best=spread,
                           profiles=records, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- bootstrap edges
def _edges(law: Law, name: str, values: np.ndarray, y) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Which bootstrap draws of natural parameter ``name`` lie at its lower and upper edge
    of the parameter space, and the two edges in words. E: below :data:`E_FLOOR` of the
    smallest loss (0 included); another coefficient: 0 or beyond :data:`COEFFICIENT_LIMIT`;
    an exponent: -inf or +inf (a refit that settled while it still drifted)."""
    with np.errstate(invalid="ignore"):
        if name in law.log_coefficients.values():
            floor = E_FLOOR * float(np.min(y)) if name == "E" else 0.0
            return values <= floor, values > COEFFICIENT_LIMIT, "0", "infinity"
        return values == -np.inf, values == np.inf, "-infinity", "infinity"


def bootstrap_edges(boot, law: Law, y, skip=()) -> tuple[dict, list[Diagnostic]]:
    """Does the bootstrap bound each parameter? Refits that ran a parameter to the edge of
    the parameter space (E -> 0, a coefficient to infinity: those the bootstrap keeps as
    settled at their limit, and those that converged there) per parameter, as a record
    and diagnostics.

    A parameter is not bounded by the data when more than ``(1 - level) / 2`` of the refits
    (2.5% for a 95% interval) ran it to an edge, or when its interval reaches an edge: a
    percentile interval's end is the ``(1 - level) / 2`` quantile, so beyond that share of
    runaway refits the end *is* the limit (E's interval starts at 0), and the interval no
    longer says where the parameter lies, only that the data do not bound it. That is a
    ``not_identified`` warning naming the parameter, the share and the interval (not an
    error: the point estimate and the other end stand, read with that caveat). Fewer
    runaway refits leave the interval's ends alone: a ``bootstrap_edge`` info with the count.
    Parameters in ``skip`` (already not identified by the fit's own checks) are recorded,
    not repeated. Returns ``({parameter: {n_at_edge, n_refits, share, lower, upper,
    interval, bounded, threshold}}, diagnostics)``, ``bounded`` False for each warned
    parameter; ``({}, [])`` without refits.
    """
    from .stats import percentile_interval

    tail = (1 - boot.level) / 2
    record, warned, noted = {}, [], []
    for fitted in law.param_names:
        name = natural_name(law, fitted)
        values = np.asarray(boot.samples.get(name, ()), float)
        if name in record or values.size == 0:
            continue
        low, high, low_text, high_text = _edges(law, name, values, y)
        n_low, n_high = int(low.sum()), int(high.sum())
        lo, hi = percentile_interval(values, boot.level)
        ends_low, ends_high, _, _ = _edges(law, name, np.array([lo, hi]), y)
        share = (n_low + n_high) / values.size
        bounded = not (share > tail or ends_low[0] or ends_high[1])
        record[name] = {"n_at_edge": n_low + n_high, "n_refits": int(values.size), "share": share,
                        "lower": n_low, "upper": n_high, "interval": [lo, hi], "bounded": bool(bounded),
                        "threshold": round(tail, 6)}
        if n_low + n_high and name not in skip:
            counts = [(k, text) for k, text in ((n_low, low_text), (n_high, high_text)) if k]
            text = (f"{counts[0][0]} of {values.size} refits ran {name} to {counts[0][1]}"
                    + "".join(f" and {k} to {limit}" for k, limit in counts[1:]) + f" ({share:.1%})")
            (noted if bounded else warned).append((name, text))
    kept = "" if not boot.n_failed else f" ({boot.n_failed} of {boot.n_resamples} refits failed and are not counted)"
    diagnostics = []
    if warned:
        names = ", ".join(name for name, _ in warned)
        parts = "; ".join(f"{text}, so its {boot.level:.0%} interval is [{record[name]['interval'][0]:.4g}, "
                          f"{record[name]['interval'][1]:.4g}]" for name, text in warned)
        diagnostics.append(Diagnostic(
            "not_identified", "warning",
            f"the bootstrap does not bound {names}: {parts}{kept}. With more than {tail:.1%} of the refits at an "
            f"edge of the parameter space an interval's end is that limit: the data do not determine {names} (nor "
            f"what moves with {'it' if len(warned) == 1 else 'them'}); read the point estimate with that caveat",
            tuple(name for name, _ in warned)))
    if noted:
        diagnostics.append(Diagnostic(
            "bootstrap_edge", "info",
            "bootstrap refits at an edge of the parameter space: " + "; ".join(text for _, text in noted) + kept
            + f"; fewer than the {tail:.1%} that would put an interval's end at the limit, so the intervals stand",
            tuple(name for name, _ in noted)))
    return record, diagnostics


# ----------------------------------------------------------------------------- influence
def influence(result, X, y, groups, labels: dict, quantity, interval, name: str) -> tuple[dict, list[Diagnostic]]:
    """Leave each group (run) out in turn and see whether ``quantity`` leaves ``interval``.

    groups: one label per point (None: every point its own group); labels: group -> text
    naming it (run ids, lines). All refits are one batched Newton call (weights 0 for the
    left-out group), warm-started from the full fit. quantity: function of the natural
    parameters (a dict of arrays), e.g. the allocation exponent.
    """
    t0 = time.perf_counter()
    X, y = np.asarray(X, float), np.asarray(y, float)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    keys, index = np.unique(groups, return_inverse=True)
    weights = np.ones((len(keys), len(y)))
    weights[index, np.arange(len(y))] = 0.0
    problem = Problem(result.law, X, y, result.objective, weights)
    start = np.repeat(np.asarray(result.theta, float)[None, :], len(keys), axis=0)
    with np.errstate(all="ignore"):
        th, v, conv, _ = newton_batch(problem, start, rows=np.arange(len(keys)))
        natural = [result.law.natural(t) for t in th]
        values = np.asarray(quantity({k: np.array([p[k] for p in natural]) for k in natural[0]}), float)
    lo, hi = interval
    usable = np.isfinite(values) & np.isfinite(v)
    outside = usable & ((values < lo) | (values > hi))
    full = float(np.asarray(quantity({k: np.array([val]) for k, val in result.params.items()}))[0])
    named = [(labels.get(keys[i], str(keys[i])), float(values[i])) for i in np.flatnonzero(outside)]
    named.sort(key=lambda item: -abs(item[1] - full))
    record = {"quantity": name, "full_fit": full, "interval": [float(lo), float(hi)], "n_left_out": int(len(keys)),
              "n_refits_converged": int(conv.sum()), "range": [float(np.nanmin(values[usable])),
                                                                float(np.nanmax(values[usable]))] if usable.any() else None,
              "influential": [{"left_out": text, name: value} for text, value in named],
              "seconds": round(time.perf_counter() - t0, 3)}
    diagnostics = []
    if not named and usable.any():
        diagnostics.append(Diagnostic(
            "influential_run", "info",
            f"leaving out each of the {len(keys)} runs in turn keeps {name} within its bootstrap interval "
            f"[{lo:.4g}, {hi:.4g}] (range {record['range'][0]:.4g} to {record['range'][1]:.4g})", ()))
    if named:
        shown = "; ".join(f"without {text}: {value:.4g}" for text, value in named[:5])
        more = f"; and {len(named) - 5} more" if len(named) > 5 else ""
        diagnostics.append(Diagnostic(
            "influential_run", "warning",
            f"leaving out a single run moves {name} (full fit {full:.4g}) outside its bootstrap interval "
            f"[{lo:.4g}, {hi:.4g}]: {shown}{more}; check those runs before trusting {name}",
            tuple(text for text, _ in named[:50])))
    return record, diagnostics


# ----------------------------------------------------------------------------- checkpoints
#: Resamples of the paired bootstrap that asks whether the final rows alone fit differently.
CHECKPOINT_RESAMPLES = 200


def final_rows_refit(result, X, y, final, groups, quantities: dict, seed: int = 0,
                     n_resamples: int = CHECKPOINT_RESAMPLES) -> tuple[dict, list[Diagnostic]]:
    """Do the intermediate checkpoints pull the fit? The fit of each run's final row alone
    against the fit of every row, as a paired bootstrap of their difference.

    Why: under a decaying learning-rate schedule a checkpoint before the end lies above the
    loss of a run trained for that many tokens, so fitting every checkpoint can bias the
    data exponent; whether it did on this sweep is measured, not assumed. Comparing the
    final-rows estimate with the full fit's interval would not do: the two estimates share
    data and each has its own noise. So each resample (whole runs, ``groups``) is fitted
    both ways, one batched Newton call each, warm-started from the two full-data fits, and
    a quantity is pulled when 0 lies outside the percentile interval of its difference at
    95% with a Bonferroni share per quantity. quantities: name -> function of the natural
    parameters (dict of arrays), e.g. the exponents and the allocation exponent.
    """
    from .bootstrap import percentile_interval, resample_weights

    t0 = time.perf_counter()
    law = result.law
    X, y, final = np.asarray(X, float), np.asarray(y, float), np.asarray(final, bool)

    def solve(weights, start):
        problem = Problem(law, X, y, result.objective, weights)
        with np.errstate(all="ignore"):
            theta, _, converged, _ = newton_batch(problem, np.repeat(start[None, :], len(weights), axis=0),
                                                  rows=np.arange(len(weights)))
        natural = [law.natural(t) for t in theta]
        return {k: np.array([p[k] for p in natural]) for k in natural[0]}, converged

    final_fit, final_ok = solve(final.astype(float)[None, :], np.asarray(result.theta, float))
    start_final = law.from_natural(**{k: float(v[0]) for k, v in final_fit.items()})
    weights = resample_weights(len(y), n_resamples, seed, groups)
    every, every_ok = solve(weights, np.asarray(result.theta, float))
    only_final, only_final_ok = solve(weights * final, start_final)
    ok = every_ok & only_final_ok
    level = 1 - 0.05 / len(quantities)
    full = {k: np.array([v]) for k, v in result.params.items()}
    rows = {}
    for name, fn in quantities.items():
        difference = np.asarray(fn(only_final), float)[ok] - np.asarray(fn(every), float)[ok]
        difference = difference[np.isfinite(difference)]
        if len(difference) < n_resamples // 2:
            continue
        lo, hi = percentile_interval(difference, level)
        rows[name] = {"full_fit": float(np.asarray(fn(full))[0]), "final_rows": float(np.asarray(fn(final_fit))[0]),
                      "difference_interval": [float(lo), float(hi)], "pulled": bool(not lo <= 0 <= hi)}
    record = {"rows": int(final.sum()), "rows_left_out": int((~final).sum()), "converged": bool(final_ok[0]),
              "n_resamples": int(n_resamples), "n_refits_converged": int(ok.sum()), "level": level,
              "quantities": rows, "seconds": round(time.perf_counter() - t0, 3)}
    if not final_ok[0] or not rows:
        return record, [Diagnostic("checkpoints", "info",
                                   "the refits on each run's final row alone did not converge: whether the "
                                   "intermediate checkpoints pull the fit is not known", ())]
    pulled = [name for name, row in rows.items() if row["pulled"]]
    if not pulled:
        return record, [Diagnostic(
            "checkpoints", "info",
            f"fitting each run's final row alone ({record['rows']} rows) changes {', '.join(rows)} by no more than "
            f"their paired bootstrap noise: the intermediate checkpoints do not measurably pull the fit", ())]
    shown = "; ".join(f"{name} {rows[name]['full_fit']:.4g} -> {rows[name]['final_rows']:.4g} (the change's "
                      f"{level:.1%} paired-bootstrap interval [{rows[name]['difference_interval'][0]:.3g}, "
                      f"{rows[name]['difference_interval'][1]:.3g}] excludes 0)" for name in pulled)
    return record, [Diagnostic(
        "checkpoints", "warning",
        f"fitting each run's final row alone ({record['rows']} rows, without the {record['rows_left_out']} "
        f"intermediate checkpoints) moves {shown}: the checkpoints pull the fit (under a decaying "
        "learning-rate schedule they lie above the loss of a run trained for that many tokens); fit with "
        "--checkpoints final, or check that the schedule allows using them", tuple(pulled))]

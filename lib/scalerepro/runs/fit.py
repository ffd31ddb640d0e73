"""Fit your own runs with the careful protocol: ``scalerepro fit`` and ``fit_your_runs.ipynb``.

A researcher brings a CSV of runs (one row per run or per checkpoint; parameters, tokens or
FLOPs, loss and optionally a run id). The pipeline is the one the replications use, so a
user's fit is made and reported the same way:

1. read and validate the CSV and choose the points that enter the fit
   (:mod:`scalerepro.io.runs_input`: every problem named by line and column; several runs per
   (N, D), checkpoints and dropped outliers handled by explicit options, each dropped row
   recorded with its reason);
2. hold out the K largest-compute runs (all their checkpoints; runs tied at the boundary
   go out together);
3. check the design (:mod:`scalerepro.core.design_checks`): enough distinct points, N and D
   varied independently, decades covered;
4. fit the law, Huber (delta 1e-3) on log loss, summed: the Chinchilla family by the exact
   profile solver, checked against the full start grid, which is run and used whenever the
   profile fit is not plainly the global one or the identifiability checks find anything
   (:func:`fit_and_check`); other forms from their full start grid;
5. check identifiability (:mod:`scalerepro.core.identifiability`): non-physical values, flat
   directions, the objective's profile along a flagged parameter;
6. bootstrap, resampling whole runs or (N, D) groups when rows are not independent, and
   leave each run out in turn to find influential runs;
7. score the held-out runs by absolute relative error of the predicted loss;
8. compute-optimal allocation under C = 6ND when the form has N and D, judged against the
   fitted runs' range;
9. results.json (as for a replication, with a ``fit`` section, ``diagnostics`` and
   ``identifiability``), the filled checklist, and report.html -- written only once
   everything has been computed, each through a temporary file and a rename.

No numpy warning reaches the terminal: every finding is a diagnostic with a code, a
severity and a message (see :mod:`scalerepro.diagnostics`).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import design_checks, identifiability, laws, optimal, prediction, stats
from ..io import runs_input
from ..io.targets import read_targets
from . import approaches as userapproaches
from ..core.bootstrap import BootstrapResult, bootstrap
from ..io.data import sha256_file
from ..diagnostics import Diagnostic, sorted_by_severity
from ..core.fit import FitResult, FitStatus, fit
from ..core.newton import chinchilla_form
from ..analyses.law_registry import get_law
from ..publishing.results import Recorder, json_safe, write_report_and_results
from ..publishing.spec import Spec
from ..summary import Row, Summary
from ..io.validate import InputError

# The CSV contract and the choice of points live in runs_input (shared with the other
# analyses of a user's runs); re-exported here for the notebook and existing callers.
ROLES, PER_ND, CHECKPOINTS = runs_input.ROLES, runs_input.PER_ND, runs_input.CHECKPOINTS
parse_columns, parse_holdout, read_runs = runs_input.parse_columns, runs_input.parse_holdout, runs_input.read_runs
#: A derived optimum more than this factor outside the fitted runs' range is a warning.
FAR_OUTSIDE = 10.0
#: The outcome's words for parameters the bootstrap does not bound (the CLI's headline reads them).
UNBOUNDED = identifiability.UNBOUNDED
#: What the allocation N_opt(C), D_opt(C) depends on (not E).
ALLOCATION_PARAMETERS = ("A", "B", "alpha", "beta")
#: The allocation depends on an unidentified parameter when its exponent a moves by more
#: than this along that parameter's flat profile.
ALLOCATION_EXPONENT_MOVES = 0.02


def has_approach3(law: laws.Law) -> bool:
    """Whether the form is Chinchilla's approach 3 (free alpha and beta), so that its
    allocation can stand beside approaches 1 and 2 (``--approach all``)."""
    return law.has_allocation and "beta" in law.param_names


def default_budgets(train: pd.DataFrame) -> list[float]:
    """The largest training compute among the fitted runs, and 10x and 100x beyond it."""
    top = float(train["C"].max())
    return [top, 10 * top, 100 * top]


@contextlib.contextmanager
def _quiet_numpy():
    """Overflow or an invalid power (e.g. a negative alpha + beta in the allocation) gives
    inf or NaN, which the diagnostics then explain; numpy's own RuntimeWarnings would only
    leak to the terminal as noise."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@dataclass
class UserFit:
    """Everything computed for one CSV; nothing is written until :func:`write_outputs`."""

    path: Path
    sha256: str
    law: laws.Law
    frame: pd.DataFrame              # every row read (validated), in file order
    train: pd.DataFrame              # rows that entered the fit
    held: pd.DataFrame               # rows held out for validation
    result: FitResult | None         # None when only approaches 1 and/or 2 were asked for
    boot: BootstrapResult | None
    holdout: pd.DataFrame
    allocation: pd.DataFrame | None
    options: dict
    warnings: list[str] = field(default_factory=list)
    prepared: runs_input.PreparedRuns | None = None
    identifiability: identifiability.Identifiability | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    about: dict[str, str] = field(default_factory=dict)   # the user's --about answers
    seconds: float = 0.0                                   # wall time of fit_runs
    approaches: list = field(default_factory=list)         # AllocationFit per approach asked (--approach)
    targets: Path | None = None                            # --predict TARGETS.csv
    predictions: pd.DataFrame | None = None                # one row per target (publishing.userpredict)
    target_prediction: prediction.Prediction | None = None  # how the predictions' intervals were made
    chained: object | None = None                          # --metric: a userchained.UserChained

    @property
    def status(self) -> FitStatus:
        """The fit's own status, or NOT_IDENTIFIED when the identifiability checks say so."""
        if self.identifiability is not None and self.identifiability.outcome == "not identified":
            return FitStatus.NOT_IDENTIFIED
        return self.result.status

    @property
    def outcome(self) -> str:
        """'converged', 'not identified: B, beta', 'converged; not bounded by the bootstrap:
        E' (a ``not_identified`` warning of :func:`scalerepro.core.identifiability.bootstrap_edges`),
        or the fit's own outcome."""
        if self.identifiability is not None and self.identifiability.outcome == "not identified":
            return "not identified: " + ", ".join(self.identifiability.unidentified)
        if self.identifiability is not None and self.identifiability.unbounded:
            return f"{self.result.outcome}; {UNBOUNDED}: " + ", ".join(self.identifiability.unbounded)
        return self.result.outcome

    def record(self) -> dict:
        """``results.json`` content, as every result serialises (``record()``): the Recorder's
        layout plus status, diagnostics, identifiability, hold-out, allocation and checklist."""
        with _quiet_numpy():  # standard errors of samples holding a limit (0, inf) are NaN, quietly
            return _results_json(self)

    def summary(self) -> Summary:
        """The fit of one CSV at a glance, from the records of its parts (nothing
        recomputed): the fitted parameters with their bootstrap intervals and each
        approach's exponents, then the status (with the identifiability verdict), how the
        fit was made, the hold-out error and every warning or error diagnostic. ``print()``
        it for text; in Jupyter it displays as a table."""
        rows, notes, level = [], [], None
        if self.result is not None:
            fitted = self.result.summary(self.boot)
            rows, level = list(fitted.rows), fitted.level
            notes = [f"status: {self.status.value} ({self.outcome})"]
            notes += [n for n in fitted.notes if not n.startswith("status:")]
        for approach in self.approaches:
            rec = approach.record()
            intervals = rec["intervals"] or {}
            rows += [Row(f"{name} ({rec['name']})", rec[name], intervals.get(name)) for name in ("a", "b")]
            level = level or rec["level"]
        held = self.holdout_summary()
        if held:
            notes.append(f"hold-out: {held['runs']} runs ({held['rows']} rows), mean |relative error| "
                         f"{held['mean_abs_rel_error']:.3%}, max {held['max_abs_rel_error']:.3%}")
        notes += [f"{d.severity}: {d.message}" for d in self.diagnostics if d.severity != "info"]
        return Summary(f"{self.law.name if self.result is not None else 'allocation'} fit of {self.path.name}",
                       rows, notes, level=level)

    def predict(self, X, interval: str | None = "confidence", level: float = 0.95) -> pd.DataFrame:
        """The fitted law's loss at ``X`` (a table with the law's input columns, e.g. N and D,
        or an array in that order): ``loss_pred`` and, for ``interval="confidence"``, the
        bootstrap interval of the mean law (``ci_low``, ``ci_high``), or for ``"prediction"``
        the interval of one new run (``pi_low``, ``pi_high``), which adds the run-to-run noise
        estimated from the residuals (how, and what it assumes: :mod:`scalerepro.core.prediction`)."""
        if self.result is None:
            raise ValueError("no law was fitted (--approach 1 or 2 alone): nothing to predict with")
        if interval == "confidence" and self.boot is None:
            raise ValueError("a confidence interval needs the fit's bootstrap (n_bootstrap > 0)")
        X = X[list(self.law.inputs)] if isinstance(X, pd.DataFrame) else X
        return prediction.predict(self.result, np.asarray(X, float), self.boot, intervals=(interval,) if interval else (),
                                  level=level, seed=int(self.options.get("seed", 0))).frame()

    def holdout_summary(self) -> dict | None:
        if self.holdout.empty:
            return None
        err = self.holdout["abs_rel_error"]
        # a hold-out table comes only from runs_input.split_holdout, which counts the runs it held out
        return {"kind": "largest-compute", "k": self.options["holdout"], "rows": len(self.holdout),
                "runs": int(self.prepared.options["holdout"]["runs_held_out"]),
                "mean_abs_rel_error": float(err.mean()), "max_abs_rel_error": float(err.max()),
                "median_abs_rel_error": float(err.median())}


def fit_runs(path, form: str = "chinchilla", columns: dict[str, str] | None = None, holdout: int = 0,
             n_bootstrap: int = 1000, seed: int = 0, budgets=None, starts=None, progress: bool = False,
             per_nd: str | None = None, checkpoints: str = "all", drop_highest_loss: int = 0,
             about=None, approach: str = "3", isoflop_budgets=None, client=None,
             duplicate_rows: str = "error", envelope: str | None = None, targets=None) -> UserFit:
    """Validate, choose points, check the design, fit, check identifiability, bootstrap,
    validate on held-out runs, and compute the allocation.

    form: a name from :data:`scalerepro.analyses.law_registry.LAWS`. columns: file column -> role (see
    :func:`parse_columns`). duplicate_rows, per_nd, checkpoints, drop_highest_loss: see
    :mod:`scalerepro.io.runs_input`. starts: optional start grid (default: the law's own grid).
    budgets: compute budgets for the allocation table (default: the largest fitted compute,
    10x and 100x it). about: a YAML file of checklist answers the data cannot give
    (:func:`scalerepro.publishing.checklist.load_about`), read before anything is fitted.
    approach: ``"3"`` (the parametric fit: everything above), ``"1"`` or ``"2"`` (only
    Chinchilla's approach 1 or 2, no law fit), or ``"all"`` (the fit and approaches 1 and 2
    beside it, on the same rows); isoflop_budgets: approach 2's budgets when the file has
    no budget column (:mod:`scalerepro.runs.approaches`).
    client: a Dask client or --scheduler value to bootstrap on (:func:`scalerepro.core.bootstrap.bootstrap`).
    envelope: approach 1's envelope method, "grid" or "lower_hull" (default: grid alone for
    approach 1, both side by side for ``all``; :func:`userapproaches.envelopes`).
    targets: a CSV of (N, D or C[, run]) to predict the loss at, with confidence and prediction
    intervals (:mod:`scalerepro.runs.predict`); read before anything is fitted.
    """
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    from ..publishing.checklist import load_about

    t0 = time.perf_counter()
    chosen = userapproaches.selected(approach)
    envelope_methods = userapproaches.envelopes(chosen, envelope)
    declared = load_about(about) if about is not None else {}
    path = Path(path)
    # approaches 1 and 2 alone read the roles of the Chinchilla form: N, loss, D or C
    law = get_law(form) if 3 in chosen else laws.Chinchilla()
    if targets is not None and 3 not in chosen:
        raise ValueError("--predict needs the parametric fit (approach 3): approaches 1 and 2 fit no law")
    target_rows = read_targets(targets, law.inputs, columns) if targets is not None else None
    if len(chosen) > 1 and not has_approach3(law):
        raise ValueError(f"--approach all sets approach 3 (the parametric fit of L = E + A/N^alpha + B/D^beta) "
                         f"beside approaches 1 and 2; form {form!r} is not that law: use --form chinchilla")
    with _quiet_numpy():
        prepared = runs_input.prepare_runs(path, law, columns, per_nd=per_nd, checkpoints=checkpoints,
                                           drop_highest_loss=drop_highest_loss, duplicate_rows=duplicate_rows,
                                           extra_roles=userapproaches.extra_roles(chosen, isoflop_budgets))
        prepared = runs_input.split_holdout(prepared, holdout)
        train, held = prepared.frame, prepared.held
        options = {"form": form if 3 in chosen else None, "columns": columns or {}, "holdout": holdout,
                   "per_nd": per_nd, "checkpoints": checkpoints, "drop_highest_loss": int(drop_highest_loss),
                   "duplicate_rows": duplicate_rows, "n_bootstrap": n_bootstrap, "seed": seed, "budgets": budgets,
                   "approach": approach,
                   "isoflop_budgets": list(isoflop_budgets) if isoflop_budgets else None,
                   "envelope": list(envelope_methods) or None,
                   **({"about": str(about)} if about is not None else {})}
        if 3 not in chosen:
            fits, found = userapproaches.run(prepared, chosen, isoflop_budgets=isoflop_budgets,
                                             n_bootstrap=n_bootstrap, seed=seed, progress=progress,
                                             envelope=envelope)
            return UserFit(path=path, sha256=sha256_file(path), law=law, frame=prepared.source, train=train,
                           held=held, result=None, boot=None, holdout=_holdout_table(None, law, None),
                           allocation=None, options=options, warnings=list(prepared.notes), prepared=prepared,
                           diagnostics=sorted_by_severity(prepared.all_diagnostics() + found), about=declared,
                           seconds=time.perf_counter() - t0, approaches=fits)
        X = train[list(law.inputs)].to_numpy(float)
        y = train["loss"].to_numpy(float)
        if len(y) <= law.n_params:
            raise InputError(str(path), [f"{len(y)} rows left to fit {law.n_params} parameters of {law.name}; "
                                         "need more runs (or a smaller --holdout)"])
        diagnostics = prepared.all_diagnostics() + design_checks.design_diagnostics(train, law)
        result, ident = fit_and_check(law, X, y, starts, prepared.dropped)
        diagnostics += ident.diagnostics
        diagnostics += outlier_diagnostics(result, train, held, int(drop_highest_loss))
        budgets = [float(c) for c in (default_budgets(train) if budgets is None and "C" in train.columns
                                      else budgets or [])]
        derived = _derived(law)
        boot = None
        if n_bootstrap:
            boot = bootstrap(result, X, y, n_resamples=n_bootstrap, seed=seed, groups=prepared.groups,
                             derived=derived, progress=progress, client=client)
            boot.resampling = prepared.resampling
            diagnostics += _bootstrap_diagnostics(boot, prepared)
            ident.bootstrap_edges, found = identifiability.bootstrap_edges(boot, law, y, skip=ident.unidentified)
            diagnostics += found
            if ident.outcome == "identified":  # a quantity the data do not determine has no influence to measure
                ident.influence, found = _influence(result, X, y, prepared, boot, law)
                diagnostics += found
                ident.checkpoints, found = _checkpoint_pull(result, X, y, prepared, law, seed)
                diagnostics += found
        holdout_table = _holdout_table(result, law, held)
        diagnostics += _holdout_extrapolation(train, held)
        allocation = None
        if law.has_allocation and budgets:
            allocation, found = _allocation(result, boot, budgets, train, ident)
            diagnostics += found
        predicted = pred = None
        if target_rows is not None:
            from .predict import prediction_table
            predicted, pred, found = prediction_table(result, boot, law, train, target_rows, seed=seed)
            diagnostics += found
        fits = []
        if len(chosen) > 1:
            fits, found = userapproaches.run(prepared, chosen, isoflop_budgets=isoflop_budgets,
                                             n_bootstrap=n_bootstrap, seed=seed, law_fit=result, boot=boot,
                                             progress=progress, envelope=envelope)
            diagnostics += found
    options["budgets"] = budgets
    if 3 in chosen and len(chosen) == 1:   # today's record, unchanged
        options = {k: v for k, v in options.items() if k not in ("approach", "isoflop_budgets", "envelope")}
    if targets is not None:
        options["predict"] = str(targets)
    return UserFit(path=path, sha256=sha256_file(path), law=law, frame=prepared.source, train=train, held=held,
                   result=result, boot=boot, holdout=holdout_table, allocation=allocation, options=options,
                   warnings=list(prepared.notes), prepared=prepared, identifiability=ident,
                   diagnostics=sorted_by_severity(diagnostics), about=declared, seconds=time.perf_counter() - t0,
                   approaches=fits, targets=None if targets is None else Path(targets), predictions=predicted,
                   target_prediction=pred)


def fit_and_check(law, X, y, starts=None, dropped=None):
    """The fit (its warnings reported by the fit's record) and its identifiability checks.

    For the Chinchilla family with the default starts the exact profile solver
    (:mod:`scalerepro.core.profile`) fits first: it reaches the full start grid's optimum in
    a few tens of milliseconds where the grid takes about a second. The full grid stays the
    reference: it is run, and its fit used, whenever the profile fit is not plainly the
    global one (:func:`_profile_not_global`) or the identifiability checks find anything
    (they read the spread of the starts at the best objective, which only the full grid
    samples as published). Which solver made the fit, and why, is recorded in the fit's
    ``optimizer.global_check``."""
    reasons = []
    if starts is None and chinchilla_form(law) is not None:
        result = fit(law, X, y, optimizer="profile", dropped=dropped, warn=False)
        reasons = _profile_not_global(result)
        if not reasons:
            ident = identifiability.check(result, X, y)
            if ident.outcome == "identified":
                result.optimizer["global_check"] = (
                    "profile solver used: its optimum converged inside the exponent grid, no point of the full "
                    f"{len(law.default_starts())}-start grid lies below it, and the identifiability checks passed")
                return result, ident
            reasons = ["the identifiability checks flagged it"]
    result = fit(law, X, y, starts=starts, dropped=dropped, warn=False)
    if reasons:
        result.optimizer["global_check"] = "full start grid used: the profile solver's fit was not taken because " + \
            "; ".join(reasons)
    return result, identifiability.check(result, X, y, starts=starts)


def _profile_not_global(result) -> list[str]:
    """Why a profile fit might not be the full grid's optimum ([] when none): it did not
    converge; its exponents lie in the outer cells of the exponent grid, where the global
    optimum could lie beyond it; or a point of the law's full start grid already has a
    lower objective."""
    reasons = []
    if not result.converged:
        reasons.append(f"it did not converge ({result.message})")
    grid = result.landscape["alpha"]
    exponents = {k: v for k, v in result.params.items() if k in ("alpha", "beta")}
    edge = [k for k, v in exponents.items() if not grid[1] <= v <= grid[-2]]
    if edge:
        reasons.append(f"{', '.join(edge)} lie in the outer cells of the exponent grid [{grid[0]:g}, {grid[-1]:g}]")
    starts = result.law.default_starts()
    with np.errstate(all="ignore"):
        below = int(np.sum(result.objective_at(starts) < result.objective_value))
    if below:
        reasons.append(f"{below} points of the full start grid have a lower objective")
    return reasons


def _allocation_exponent(p) -> float:
    """a in N_opt ~ C^a, from natural parameters (a dict of numbers or arrays)."""
    return optimal.allocation_exponents(p["alpha"], p["beta"])[0]


def _exponents(law) -> dict:
    """name -> function of the natural parameters, for each exponent of ``law``."""
    names = [identifiability.natural_name(law, n) for n in law.param_names if n not in law.log_coefficients]
    return {name: (lambda p, k=name: p[k]) for name in names}


def _derived(law) -> dict:
    """Derived quantities whose bootstrap distribution is wanted: the allocation exponent,
    which the influence check compares against its interval. (The per-budget allocation's
    intervals come from :func:`scalerepro.core.optimal.allocation_table` over the samples.)"""
    return {"a": _allocation_exponent} if law.has_allocation else {}


#: A bootstrap over fewer resampling units (runs, groups or points) than this cannot show
#: the uncertainty: most resamples repeat the same few units.
MIN_RESAMPLING_UNITS = 10


def _bootstrap_diagnostics(boot: BootstrapResult, prepared) -> list[Diagnostic]:
    out = []
    if boot.n_resamples and boot.n_failed == boot.n_resamples:
        out.append(Diagnostic("no_interval", "warning", f"all {boot.n_resamples} bootstrap refits failed: no intervals",
                              ()))
    units = len(prepared.frame) if prepared.groups is None else len(np.unique(prepared.groups))
    if units < MIN_RESAMPLING_UNITS:
        out.append(Diagnostic(
            "few_resampling_units", "warning",
            f"the bootstrap resamples only {units} "
            f"{'points' if prepared.groups is None else prepared.unit.replace('whole ', '')}: "
            "its intervals cannot show the uncertainty of the fit", ()))
    return out


def _influence(result, X, y, prepared, boot, law):
    """Leave each run (bootstrap group) out in turn: does the allocation exponent (or, for
    forms without one, each exponent) leave its bootstrap interval?"""
    quantities = _derived(law) or _exponents(law)
    groups = prepared.groups
    frame = prepared.frame
    labels = {}
    if groups is None:
        labels = {i: f"line {line}" for i, line in enumerate(frame["line"])}
    else:
        runs = prepared.runs.to_numpy()
        for g in np.unique(groups):
            members = list(dict.fromkeys(runs[groups == g]))
            labels[g] = ("run " if "run" in frame.columns else "") + ", ".join(map(str, members[:3])) + (
                f" and {len(members) - 3} more" if len(members) > 3 else "")
    records, found = {}, []
    for name, fn in quantities.items():
        values = boot.samples.get(name)
        if values is None or not np.isfinite(values).any():
            continue
        interval = boot.interval(name) if name in boot.samples else None
        if interval is None or not np.all(np.isfinite(interval)):
            continue
        records[name], diagnostics = identifiability.influence(result, X, y, groups, labels, fn, interval, name)
        found += diagnostics
    return records or None, found


def _checkpoint_pull(result, X, y, prepared, law, seed):
    """With intermediate checkpoints in the fit (--checkpoints all), does a fit of each run's
    final row alone differ (:func:`scalerepro.core.identifiability.final_rows_refit`) in the
    exponents and the allocation exponent? (None, []) when there is nothing to compare: no
    intermediate rows, or too few final rows to fit the law."""
    final = runs_input.final_rows(prepared.frame).to_numpy()
    if prepared.options.get("checkpoints") != "all" or final.all() or final.sum() <= law.n_params:
        return None, []
    quantities = {**_exponents(law), **_derived(law)}
    return identifiability.final_rows_refit(result, X, y, final, prepared.groups, quantities, seed=seed)


#: Outliers named one by one in the message (all of them are in its subjects).
OUTLIERS_SHOWN = 10


def outlier_diagnostics(result, train: pd.DataFrame, held: pd.DataFrame | None = None,
                        dropped_already: int = 0) -> list[Diagnostic]:
    """Name the fitted points the law misses by far more than the noise: the robust fit
    (Huber) discounts them silently, so the user is told which ones, with their lines.

    A point's residual in the fit's space (log loss by default) is standardized by the
    median absolute deviation of all residuals (:func:`scalerepro.core.stats.robust_z`),
    which the outliers themselves barely move, and compared with the Bonferroni threshold
    for this many points (:func:`scalerepro.core.stats.outlier_threshold`: a clean sweep with
    Gaussian noise names none 99% of the time). The message also says what
    ``--drop-highest-loss K`` (K = the number named) would drop instead: the K highest
    losses, which need not be the points the law misses.

    train: the fitted rows (columns ``line`` and ``loss``, in the fit's order); held: the
    held-out rows (which ``--drop-highest-loss`` also sees); dropped_already: the K the
    fit was run with."""
    residual = result.residuals()
    z = stats.robust_z(residual)
    threshold = stats.outlier_threshold(len(z))
    flagged = np.flatnonzero(np.abs(np.nan_to_num(z)) > threshold)
    if not flagged.size:
        return []
    flagged = flagged[np.argsort(-np.abs(z[flagged]), kind="stable")]
    lines = train["line"].to_numpy()
    space = "log loss" if result.objective.space == "log" else "loss"
    shown = "; ".join(f"line {lines[i]} (loss {train['loss'].iloc[i]:.4g}, residual {residual[i]:+.3g} in {space}, "
                      f"z = {z[i]:+.1f})" for i in flagged[:OUTLIERS_SHOWN])
    more = f"; and {flagged.size - OUTLIERS_SHOWN} more" if flagged.size > OUTLIERS_SHOWN else ""
    k = int(flagged.size)
    candidates = pd.concat([train, held]) if held is not None and len(held) else train
    highest = candidates["loss"].sort_values(ascending=False, kind="stable").index[:k]
    highest_lines = candidates.loc[highest, "line"].tolist()
    same = set(highest_lines) & set(lines[flagged].tolist())
    option = (f"--drop-highest-loss {dropped_already + k}"
              + (f" (instead of {dropped_already})" if dropped_already else ""))
    agreement = ("the same points" if len(same) == k else
                 f"{len(same)} of them named here" if same else "none of them named here")
    below = int((z[flagged] < 0).sum())
    return [Diagnostic(
        "outliers", "warning",
        f"{k} of {len(z)} fitted points lie more than {threshold:.2f} robust standard deviations from the fit "
        f"(z: residual in {space} over 1.4826 x its median absolute deviation, "
        f"{stats.robust_scale(residual):.3g}; with Gaussian noise a clean fit of {len(z)} points has one beyond "
        f"{threshold:.2f} {stats.OUTLIER_FALSE_ALARM:.0%} of the time): {shown}{more}. The Huber loss discounts them; "
        f"{option} would drop lines {', '.join(map(str, highest_lines))} (the {k} highest "
        f"{'remaining ' if dropped_already else ''}losses): {agreement}"
        + (f"; {below} of the named points {'lies' if below == 1 else 'lie'} below the fit, which dropping "
           "high losses never removes" if below else ""), tuple(f"line {lines[i]}" for i in flagged[:50]))]


def _holdout_table(result, law, held) -> pd.DataFrame:
    if held is None or held.empty:
        return pd.DataFrame(columns=["line", "run", "N", "D", "C", "loss", "predicted", "abs_rel_error"])
    pred = result.predict(held[list(law.inputs)].to_numpy(float))
    return pd.DataFrame({"line": held["line"], "run": held.get("run"),  # None when runs have no ids
                         **{c: held[c] for c in ("N", "D", "C") if c in held.columns},
                         "loss": held["loss"], "predicted": pred,
                         "abs_rel_error": np.abs(pred - held["loss"]) / held["loss"]})


def _holdout_extrapolation(train, held) -> list[Diagnostic]:
    if held is None or held.empty or "C" not in held.columns:
        return []
    factor = float(held["C"].max() / train["C"].max())
    if factor <= 1:
        return []
    return [Diagnostic("extrapolation", "info",
                       f"the held-out runs reach {factor:.3g}x the largest fitted compute "
                       f"({held['C'].max():.3g} vs {train['C'].max():.3g} FLOPs): the hold-out error measures "
                       "extrapolation", ("holdout",))]


def _outside(value, lo, hi) -> float:
    """How many times ``value`` lies beyond [lo, hi] (1 when inside)."""
    if not np.isfinite(value) or value <= 0:
        return float("inf")
    return float(max(value / hi, lo / value, 1.0))


def _allocation(result, boot, budgets, train, ident):
    """The allocation table, judged against the fitted runs' range, and its diagnostics."""
    rows, far, implausible = [], [], []
    dependent = [p for p in ident.unidentified if p in ALLOCATION_PARAMETERS]
    why = [f"{', '.join(dependent)}, which the data do not determine"] if dependent else []
    for record in ident.profiles:  # e.g. E -> 0: the exponents move along E's flat profile
        moved = identifiability.along_profile(record, _allocation_exponent)
        if moved and np.ptp(moved) > ALLOCATION_EXPONENT_MOVES and record["parameter"] not in dependent:
            dependent.append(record["parameter"])
            why.append(f"{record['parameter']}: along its profile, where the objective stays within "
                       f"{identifiability.FLAT_PROFILE:.0%} of the best, a moves from {min(moved):.3g} to "
                       f"{max(moved):.3g}")
    c_max = float(train["C"].max())
    n_range, d_range = (float(train["N"].min()), float(train["N"].max())), (float(train["D"].min()), float(train["D"].max()))
    # the numbers and their bootstrap intervals; what follows judges them
    table = optimal.allocation_table(result.params, budgets, fitted_max_compute=c_max,
                                     samples=boot.samples if boot is not None else None)
    for row in table.to_dict(orient="records"):
        c, n_opt, d_opt, tpp = row["C"], row["N_opt"], row["D_opt"], row["tokens_per_param"]
        beyond = {"C": c / c_max, "N": _outside(n_opt, *n_range), "D": _outside(d_opt, *d_range)}
        row.update(extrapolation=bool(c > c_max * 1.0000001 or beyond["N"] > 1 or beyond["D"] > 1),
                   beyond_fitted={k: (round(v, 4) if np.isfinite(v) else None) for k, v in beyond.items()},
                   identified=not dependent and bool(np.isfinite([n_opt, d_opt]).all()))
        if dependent:
            row["note"] = f"not identified: depends on {', '.join(dependent)}, which the data do not determine"
        elif not np.isfinite([n_opt, d_opt]).all():
            row["note"] = "not computable from the fitted parameters (alpha + beta <= 0 or overflow)"
        rows.append(row)
        worst = max(v for k, v in beyond.items() if k in ("N", "D"))
        if worst > 1 or c > c_max * 1.0000001:
            far.append((c, beyond, worst))
        lo, hi = optimal.PLAUSIBLE_TOKENS_PER_PARAM
        if np.isfinite(tpp) and not lo <= tpp <= hi:
            implausible.append((c, tpp))
    diagnostics = []
    if dependent:
        diagnostics.append(Diagnostic(
            "not_identified", "error",
            "the compute-optimal allocation (N_opt, D_opt, tokens per parameter, exponent a) is not "
            f"identified: it depends on {'; and on '.join(why)}; its numbers are marked not identified",
            ("allocation", *dependent)))
    if far:
        parts = []
        for c, beyond, worst in far:
            text = (f"at the largest fitted compute C = {c:.3g}" if abs(beyond["C"] - 1) < 1e-6 else
                    f"C = {c:.3g} is {beyond['C']:.3g}x the largest fitted compute")
            if worst > 1:
                which = [f"{'N_opt' if k == 'N' else 'D_opt'} {v:.3g}x outside the fitted {k} range"
                         for k, v in beyond.items() if k in ("N", "D") and v > 1]
                text += " (" + ", ".join(which) + ")"
            parts.append(text)
        severity = "warning" if any(w > FAR_OUTSIDE for _, _, w in far) else "info"
        diagnostics.append(Diagnostic(
            "extrapolation", severity,
            "the allocation extrapolates beyond the fitted runs: " + "; ".join(parts)
            + (": read its intervals, not only the point" if severity == "warning" else ""),
            tuple(f"C={c:.3g}" for c, _, _ in far)))
    if implausible:
        diagnostics.append(Diagnostic(
            "implausible_parameter", "warning",
            "implausible allocation: " + "; ".join(f"{tpp:.3g} tokens per parameter at C = {c:.3g}"
                                                   for c, tpp in implausible)
            + f" (outside {optimal.PLAUSIBLE_TOKENS_PER_PARAM[0]:g} to {optimal.PLAUSIBLE_TOKENS_PER_PARAM[1]:g}); "
              "check the identifiability of alpha and beta", tuple(f"C={c:.3g}" for c, _ in implausible)))
    return pd.DataFrame(rows), diagnostics


def _spec(uf: UserFit) -> Spec:
    """A claim-less spec so a user fit is recorded by the same Recorder as a replication."""
    if uf.result is None:
        names = " and ".join(f.name for f in uf.approaches)
        return Spec(name="fit", path=uf.path, title=f"Compute-optimal allocation of {uf.path.name}",
                    notebook=uf.path, parameters={}, profiles={}, claims=[],
                    purpose=f"Estimate N_opt ~ C^a and D_opt ~ C^b from the runs in {uf.path.name} by Chinchilla's "
                            f"{names}" + (", with bootstrap intervals." if uf.options.get("n_bootstrap") else "."))
    return Spec(name="fit", path=uf.path, title=f"Scaling-law fit of {uf.path.name}", notebook=uf.path,
                parameters={}, profiles={}, claims=[],
                purpose=f"Fit {uf.law.equation} to the runs in {uf.path.name} with the careful protocol "
                        "(full start grid, Huber on log loss, bootstrap, hold-out validation)"
                        + (", and Chinchilla's three approaches to the allocation side by side." if uf.approaches
                           else "."))


def status(diagnostics) -> str:
    """A user fit's ``results.json`` status, the report's and ``--strict``'s: "not identified"
    when any diagnostic says so at warning or error severity (a parameter, the allocation, or
    a parameter the bootstrap does not bound), "errors" for other errors, else "ok"."""
    records = [d.record() if isinstance(d, Diagnostic) else d for d in diagnostics]
    if any(d["code"] == "not_identified" and d["severity"] != "info" for d in records):
        return "not identified"
    return "errors" if any(d["severity"] == "error" for d in records) else "ok"


def _results_json(uf: UserFit) -> dict:
    rec = Recorder("fit", out_dir=".", parameters=json_safe(uf.options), spec=_spec(uf))
    rec.add_dataset({"dataset": "user", "file": str(uf.path.resolve()), "sha256": uf.sha256})
    if uf.result is not None:
        rec.add_fit("main", uf.result, bootstrap=uf.boot, main=True)
    for w in uf.warnings:
        rec.warn(w)
    results = rec.results()
    results["timing"].update(seconds=round(uf.seconds, 3), end=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    results["replication"] = None
    results["status"] = status(uf.diagnostics)
    results["diagnostics"] = [d.record() for d in uf.diagnostics]
    results["identifiability"] = uf.identifiability.record() if uf.identifiability else None
    results["data"][0]["rows"] = len(uf.frame)
    results["data"][0]["columns"] = uf.frame.attrs.get("roles", {})
    n_runs = uf.frame["run"].nunique() if "run" in uf.frame.columns else len(uf.frame)
    results["data"][0]["runs"] = int(n_runs)
    if uf.approaches:
        results["approaches"] = [userapproaches.record(f) for f in uf.approaches]
    if uf.result is None:   # approaches 1 and/or 2 only: no law, allocation table or checklist
        results.update(holdout=None, compute_optimal=None, declared=dict(uf.about), tables={}, checklist=None,
                       selection=uf.prepared.selection_record() if uf.prepared is not None else None)
        return json_safe(results)
    main = results["fits"]["main"]
    main["outcome"], main["status"] = uf.outcome, uf.status.value
    if uf.prepared is not None:
        main["selection"] = uf.prepared.selection_record()
    results["fit"]["outcome"] = uf.outcome
    results["fit"]["form"] = uf.law.name
    results["fit"]["equation"] = uf.law.equation
    results["fit"]["intervals"] = {k: v for k, v in (results["fit"]["intervals"] or {}).items()
                                   if k in uf.result.params}
    summary = uf.holdout_summary()
    results["holdout"] = {**summary, "points": uf.holdout.to_dict(orient="records")} if summary else None
    if uf.allocation is not None:
        identified = bool(uf.allocation["identified"].all())
        results["compute_optimal"] = {
            "flops": "C = 6ND", "fitted_max_C": float(uf.train["C"].max()),
            "level": uf.boot.level if uf.boot else None, "budgets": uf.allocation.to_dict(orient="records"),
            "a": float(optimal.allocation_exponents(uf.result.params["alpha"], uf.result.params["beta"])[0]),
            "a_interval": (uf.boot.intervals().get("a") if uf.boot else None),
            "identified": identified,
            "fitted_range": {k: [float(uf.train[k].min()), float(uf.train[k].max())] for k in ("N", "D", "C")}}
        if not identified:
            results["compute_optimal"]["note"] = next((n for n in uf.allocation.get("note", []) if isinstance(n, str)), "")
    else:
        results["compute_optimal"] = None
    if uf.predictions is not None:
        from .predict import record
        results["predictions"] = record(uf.targets, uf.predictions, uf.target_prediction)
    results["chained"] = uf.chained.record() if uf.chained is not None else None
    if uf.chained is not None and uf.chained.selection and "selection" in main:
        main["selection"]["metric_step"] = uf.chained.selection["text"]
    results["declared"] = dict(uf.about)
    if summary:
        ties = "" if summary["runs"] == summary["k"] else f", widened to {summary['runs']} runs tied at the boundary"
        results["declared"]["validation"] = ((f"hold-out of the {summary['k']} largest-compute runs{ties} "
                                              f"({summary['rows']} rows): mean absolute relative error "
                                              f"{summary['mean_abs_rel_error']:.2%}, max {summary['max_abs_rel_error']:.2%}"))
    # for programs reading results.json as tables; the fit report shows them from the sections above
    tables = {"holdout": uf.holdout} if summary else {}
    if uf.allocation is not None:
        tables["compute_optimal"] = uf.allocation
    results["tables"] = {k: v.to_dict(orient="records") for k, v in tables.items()}
    try:
        from ..publishing import checklist
    except ImportError:
        results["checklist"] = None
    else:
        results["checklist"] = checklist.evaluate(json_safe(results))
    return json_safe(results)


def write_outputs(uf: UserFit, out_dir) -> dict:
    """Write ``out_dir/report.html`` and ``out_dir/results.json``. Both are rendered in
    memory first, so an error leaves nothing half-written; each lands by rename."""
    from ..publishing.fit_figures import fit_figures
    from ..publishing.report import render_report

    results = uf.record()
    with _quiet_numpy():
        html = render_report(results, figures=fit_figures(uf, results))
    write_report_and_results(out_dir, html, results)
    if uf.predictions is not None:
        from .predict import write_csv
        write_csv(uf.predictions, Path(out_dir) / "predictions.csv")
    return results


def run(path, out_dir, then=None, **options) -> dict:
    """The whole ``scalerepro fit``: :func:`fit_runs` then :func:`write_outputs`; ``then(uf)``, when
    given, adds to the fit before anything is written (``--metric``: the chained metric law)."""
    uf = fit_runs(path, **options)
    if then is not None:
        then(uf)
    return write_outputs(uf, out_dir)

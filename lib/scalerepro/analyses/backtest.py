"""Backtest: would a fitting method have predicted your largest runs?

A law is judged by extrapolation, as the field's references judge it (Alabdulmohsin et al.
2022 score estimators on held-out larger scales; OLMo's ladder trains on the smaller rungs
and scores the rest; Gadre et al. and Bhagia et al. report prediction error on their
largest targets). Here, as in scikit-learn's ``TimeSeriesSplit`` with compute in place of
time, every fold's test runs lie beyond its training runs:

- **folds by compute**: for each of the K largest distinct compute levels c_k (a run's
  compute is the largest C over its rows), fit on the runs with C < c_k and predict every
  run with C >= c_k. Whole runs go out: runs tied at c_k together, and every checkpoint of
  a held-out run. The test rows are those of the user's selection (``--per-nd``,
  ``--checkpoints``, ``--drop-highest-loss``), the same for every method, so methods are
  compared on the same runs;
- **methods**: a form (a law of the loss from the registry) times an objective (Huber on
  log loss with delta 1e-3, MSE on raw loss, MSE on log loss), each fitted from the best
  :data:`SCREENED_STARTS` points of the form's start grid by its own objective; ``all`` adds the sensitivity variants of
  :func:`scalerepro.analyses.sensitivity.user_variants` (their data choices through
  :func:`~scalerepro.analyses.sensitivity.variant_data`, their starts through
  :func:`~scalerepro.analyses.sensitivity.make_starts`: one list of variants, not two);
- **scores** per method and fold: the mean absolute relative error of the predicted loss
  (MARE), its signed mean (bias: positive when the law predicts too high a loss), and the
  share of test rows inside the 95% prediction interval (:mod:`scalerepro.core.prediction`);
- **ranking** by MARE at the deepest fold (the smallest cutoff, the largest
  extrapolation, that some method could fit), with a paired bootstrap over its held-out runs saying which methods
  differ from the best by less than their noise.

Each (method, fold) is an independent task with its own seed, derived from the run's seed,
the method's name and the cutoff, so it can run on Dask with identical results.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import sensitivity
from .law_registry import LAWS, get_law
from ..core import design_checks, prediction
from ..core.bootstrap import bootstrap
from ..core.fit import FitStatus, fit
from ..diagnostics import Diagnostic, sorted_by_severity
from ..io import runs_input

#: The objectives a backtest compares, by the name a method carries.
OBJECTIVES = {"huber-log": {"objective": "huber", "delta": 1e-3, "space": "log"},
              "mse-raw": {"objective": "mse", "space": "raw"},
              "mse-log": {"objective": "mse", "space": "log"}}
#: The forms every backtest tries first, when the file provides their inputs.
NAMED_FORMS = ("chinchilla", "chinchilla_tied", "kaplan_with_e")
DEFAULT_FOLDS = 4
LEVEL = 0.95
#: Starts of each fit: the best of the form's start grid by the method's own objective (the
#: survey's "search the grid, optimize the best k", as the sensitivity variants do). On both
#: example sweeps every default method reaches its full grid's optimum from them (objective
#: within 1e-13 relative), at a third of the time.
SCREENED_STARTS = 20
#: Bootstrap resamples behind each (method, fold)'s prediction interval.
N_BOOTSTRAP = 200
#: Paired-bootstrap resamples of the held-out runs when two methods' errors are compared.
N_PAIRED = 2000
#: Fewer held-out runs than this give no paired comparison (one run has no spread to resample).
MIN_PAIRED_RUNS = 2
#: Relative tolerance for "the same compute" (as for the hold-out of ``scalerepro fit``).
TIED = runs_input.TIED


# ----------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class Method:
    """A fitting method: a form, an objective, and optionally a sensitivity variant
    (data choices and fit options differing from the default protocol)."""

    form: str
    objective: str = "huber-log"
    variant: sensitivity.Variant | None = None

    @property
    def name(self) -> str:
        if self.variant is not None:
            return f"{self.form}: {self.variant.name}"
        return f"{self.form}/{self.objective}"

    def law(self):
        return self.variant.law() if self.variant is not None else get_law(self.form)

    def fit_options(self) -> dict:
        if self.variant is not None:
            return self.variant.fit_options()
        return {"reduction": "sum", "optimizer": "newton", "delta": 1e-3, **OBJECTIVES[self.objective]}

    def choices(self) -> dict:
        """What the method is, for backtest.json."""
        opts = self.fit_options()
        out = {"form": self.form, "equation": self.law().equation, "objective": opts["objective"],
               "space": opts["space"], "reduction": opts["reduction"], "optimizer": opts["optimizer"]}
        if opts["objective"] == "huber":
            out["delta"] = opts["delta"]
        if self.variant is not None:
            out.update(variant=self.variant.name, group=self.variant.group, data=dict(self.variant.data),
                       starts=self.variant.starts + ("" if self.variant.k is None else f":{self.variant.k}"))
        else:
            out["starts"] = f"best_grid:{SCREENED_STARTS} (the best of the form's start grid by this objective)"
        return out

    def screening(self) -> sensitivity.Variant:
        """The variant whose starts this method's fits use (:func:`sensitivity.make_starts`)."""
        if self.variant is not None:
            return self.variant
        return sensitivity.Variant(self.name, "backtest", fit=self.fit_options(), starts="best_grid", k=SCREENED_STARTS)


def predicts_loss(law) -> bool:
    """Whether a form is a law of the loss (its equation reads ``L = ...``), not of a
    downstream metric (``Acc = ...``, ``Err = ...``) that a loss backtest cannot score."""
    return law.equation.replace(" ", "").startswith("L=")


def available_forms(roles) -> list[str]:
    """The named forms, then every other registered law of the loss, whose inputs are among
    ``roles``; a form registered under two names (the same equation and parameters) once."""
    seen, out = set(), []
    for name in [*NAMED_FORMS, *LAWS]:
        law = LAWS[name]
        key = (type(law).__name__, law.equation, tuple(law.param_names), tuple(law.inputs))
        if key in seen or not set(law.inputs) <= set(roles) or not predicts_loss(law):
            continue
        seen.add(key)
        out.append(name)
    return out


def methods(prepared: runs_input.PreparedRuns, which: str = "default") -> tuple[list[Method], list[dict]]:
    """The methods to compare, and the variants left out with why ([{variant, reason}]).

    which: ``default`` (every available form x every objective), ``all`` (those and the
    sensitivity variants that apply to these runs), or a comma list of forms (``chinchilla``:
    with each objective) and methods (``chinchilla/mse-log``)."""
    roles = [c for c in ("N", "D", "C") if c in prepared.frame.columns]
    forms = available_forms(roles)
    if which in ("default", "all"):
        chosen = [Method(f, o) for f in forms for o in OBJECTIVES]
    else:
        chosen = []
        for item in (s.strip() for s in which.split(",") if s.strip()):
            form, _, objective = item.partition("/")
            if form not in LAWS:
                raise ValueError(f"--methods: unknown form {form!r}; forms these runs can fit: {', '.join(forms)}")
            if form not in forms:
                raise ValueError(f"--methods: form {form!r} needs inputs {', '.join(LAWS[form].inputs)}, which the "
                                 f"file does not give; forms these runs can fit: {', '.join(forms)}")
            if objective and objective not in OBJECTIVES:
                raise ValueError(f"--methods: unknown objective {objective!r} in {item!r}; objectives: "
                                 f"{', '.join(OBJECTIVES)}")
            chosen += [Method(form, o) for o in ([objective] if objective else OBJECTIVES)]
        chosen = list(dict.fromkeys(chosen))
    skipped = []
    if which == "all":
        variants, not_applicable = sensitivity.user_variants(prepared)
        skipped += [{"variant": n["variant"], "reason": n["reason"]} for n in not_applicable]
        defaults = {tuple(sorted(Method("chinchilla", o).fit_options().items())) for o in OBJECTIVES}
        for variant in variants:
            if variant.group == "default":
                continue
            reason = ("alpha = beta is a default form here (chinchilla_tied)" if variant.group == "form"
                      else "fitted by a scipy optimizer one start at a time (its bootstrap too): too slow per fold"
                      if variant.scipy else "a grid point, not a fit" if variant.fit_options()["optimizer"] == "grid"
                      else "the same fit as a default method"
                      if not variant.data and tuple(sorted(variant.fit_options().items())) in defaults else None)
            if reason:
                skipped.append({"variant": variant.name, "reason": reason})
            else:
                chosen.append(Method("chinchilla", "huber-log", variant))
    return chosen, skipped


# ----------------------------------------------------------------------------- folds
@dataclass(frozen=True)
class Fold:
    """Fit on the runs with compute below ``cutoff_C``; predict every run at or above it."""

    cutoff_C: float

    def holds_out(self, run_compute: pd.Series) -> pd.Series:
        return run_compute >= self.cutoff_C * (1 - TIED)


def run_compute(frame: pd.DataFrame) -> pd.Series:
    """Each row's run compute: the largest C over its run's rows."""
    runs = runs_input.run_labels(frame)
    return frame["C"].groupby(runs.to_numpy()).transform("max")


def compute_levels(frame: pd.DataFrame) -> list[float]:
    """The distinct run compute levels, largest first (equal within 1e-6 relative: one level)."""
    levels = []
    for c in sorted(run_compute(frame).unique(), reverse=True):
        if not levels or c < levels[-1] * (1 - TIED):
            levels.append(float(c))
    return levels


def make_folds(frame: pd.DataFrame, k: int = DEFAULT_FOLDS, cutoffs=None) -> list[Fold]:
    """Folds at the ``k`` largest distinct compute levels, largest cutoff first, or at the
    given ``cutoffs`` (each must leave at least one run to predict)."""
    levels = compute_levels(frame)
    if cutoffs:
        bad = [c for c in cutoffs if not c <= levels[0] * (1 + TIED)]
        if bad:
            raise ValueError(f"--cutoffs {', '.join(f'{c:.4g}' for c in bad)}: no run at or above it (the largest run "
                             f"compute is {levels[0]:.4g} FLOPs)")
        return [Fold(float(c)) for c in sorted(set(cutoffs), reverse=True)]
    if k < 1:
        raise ValueError(f"--folds must be >= 1, got {k}")
    if k >= len(levels):
        raise ValueError(f"--folds {k}: the runs have {len(levels)} distinct compute levels; a fold at the smallest "
                         "would fit nothing: use at most " + str(len(levels) - 1))
    return [Fold(c) for c in levels[:k]]


# ----------------------------------------------------------------------------- one task
def task_seed(seed: int, method: Method, fold: Fold) -> int:
    """A (method, fold)'s own seed, from the run's seed and the task's identity."""
    digest = hashlib.sha256(f"{int(seed)}:{method.name}:{fold.cutoff_C!r}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class FoldScore:
    """One method on one fold: the scores, the held-out rows' predictions, diagnostics."""

    method: Method
    fold: Fold
    record: dict                   # cutoff_C, n_fit, n_test, extrapolation_min/max, mare, bias, coverage, status
    points: pd.DataFrame           # run, C, loss, loss_pred, pi_low, pi_high, rel_error, extrapolation
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _method_rows(prepared, method: Method):
    """The rows a method fits from (its variant's data choices applied) and their bootstrap groups."""
    if method.variant is None or not method.variant.data:
        return prepared.frame, prepared.groups
    selection = sensitivity.variant_data(prepared, method.variant).selection
    return selection.frame, selection.groups


def score_fold(prepared: runs_input.PreparedRuns, method: Method, fold: Fold, n_bootstrap: int = N_BOOTSTRAP,
               seed: int = 0) -> FoldScore:
    """Fit ``method`` on the fold's training runs, predict its held-out rows, score them."""
    t0 = time.perf_counter()
    seed = task_seed(seed, method, fold)
    law = method.law()
    frame, groups = _method_rows(prepared, method)
    compute = run_compute(prepared.source).reindex(frame.index)
    train_mask = ~fold.holds_out(compute).to_numpy()
    train = frame[train_mask]
    test = prepared.frame[fold.holds_out(run_compute(prepared.source).reindex(prepared.frame.index)).to_numpy()]
    record = {"cutoff_C": fold.cutoff_C, "n_fit": int(len(train)), "n_test": int(len(test)),
              "n_test_runs": int(runs_input.run_labels(test).nunique()), "extrapolation_min": None,
              "extrapolation_max": None, "mare": None, "bias": None, "coverage": None}
    subject = (method.name, f"cutoff C={fold.cutoff_C:.4g}")
    n_points = len(design_checks.design_points(train, law)) if len(train) else 0
    if n_points <= law.n_params:
        record.update(status="not fitted: too few design points", seconds=time.perf_counter() - t0)
        return FoldScore(method, fold, record, pd.DataFrame(), [Diagnostic(
            "design_points", "error",
            f"{method.name} at cutoff C = {fold.cutoff_C:.4g}: {n_points} distinct design points below the cutoff "
            f"for the {law.n_params} free parameters of {law.name}: this fold cannot be fitted", subject)])
    X = train[list(law.inputs)].to_numpy(float)
    y = train["loss"].to_numpy(float)
    starts = sensitivity.make_starts(method.screening(), law, X, y, None, seed)
    with np.errstate(all="ignore"):
        result = fit(law, X, y, starts=starts, warn=False, **method.fit_options())
        boot = bootstrap(result, X, y, n_resamples=n_bootstrap, seed=seed,
                         groups=None if groups is None else groups[train_mask]) if n_bootstrap else None
        pred = prediction.predict(result, test[list(law.inputs)].to_numpy(float), boot, intervals=("prediction",),
                                  level=LEVEL, seed=seed)
    actual = test["loss"].to_numpy(float)
    rel = (pred.loss - actual) / actual
    factor = test["C"].to_numpy(float) / float(train["C"].max())
    inside = (pred.pi[0] <= actual) & (actual <= pred.pi[1])
    points = pd.DataFrame({"run": runs_input.run_labels(test).to_numpy(), "line": test["line"].to_numpy(),
                           "C": test["C"].to_numpy(float), "loss": actual, "loss_pred": pred.loss,
                           "pi_low": pred.pi[0], "pi_high": pred.pi[1], "rel_error": rel, "extrapolation": factor})
    diagnostics = []
    status = "ok" if result.status is FitStatus.CONVERGED else result.outcome
    if result.status is not FitStatus.CONVERGED:
        diagnostics.append(Diagnostic("not_converged", "warning",
                                      f"{method.name} at cutoff C = {fold.cutoff_C:.4g}: {result.outcome}", subject))
    finite = np.isfinite(rel)
    record.update(extrapolation_min=float(factor.min()), extrapolation_max=float(factor.max()),
                  mare=float(np.mean(np.abs(rel[finite]))) if finite.any() else None,
                  bias=float(np.mean(rel[finite])) if finite.any() else None,
                  coverage=float(np.mean(inside)), status=status, noise_scale=pred.noise.scale,
                  noise_space=pred.noise.space, bootstrap_draws=pred.n_draws, seconds=time.perf_counter() - t0)
    return FoldScore(method, fold, record, points, diagnostics)


# ----------------------------------------------------------------------------- all tasks
@dataclass
class Backtest:
    """Every (method, fold) score, the ranking, and how it was made."""

    folds: list[Fold]
    methods: list[Method]
    scores: dict[tuple[str, float], FoldScore]
    skipped: list[dict]
    ranking: list[str]
    comparison: dict[str, dict]          # method -> paired comparison with the best at the deepest fold
    options: dict
    diagnostics: list[Diagnostic]
    deepest: Fold                        # the fold the ranking is made at (see ranking_fold)
    seconds: float = 0.0

    def method_summary(self, method: Method) -> dict:
        """Pooled over the method's scored folds: MARE, bias, coverage; and at the deepest fold."""
        scored = [self.scores[(method.name, f.cutoff_C)] for f in self.folds]
        points = [s.points for s in scored if not s.points.empty]
        pooled = pd.concat(points) if points else pd.DataFrame(columns=["rel_error", "loss", "pi_low", "pi_high"])
        rel = pooled["rel_error"].to_numpy(float)
        inside = (pooled["pi_low"] <= pooled["loss"]) & (pooled["loss"] <= pooled["pi_high"])
        deepest = self.scores[(method.name, self.deepest.cutoff_C)].record
        return {"mare": float(np.mean(np.abs(rel))) if len(rel) else None,
                "bias": float(np.mean(rel)) if len(rel) else None,
                "coverage": float(np.mean(inside)) if len(rel) else None,
                "mare_deepest": deepest["mare"], "coverage_deepest": deepest["coverage"],
                "folds_fitted": sum(s.record["mare"] is not None for s in scored)}


def _score_task(prepared, n_bootstrap, seed, item):
    method, fold = item
    return score_fold(prepared, method, fold, n_bootstrap, seed)


def _failed(method: Method, fold: Fold, error: dict) -> FoldScore:
    text = f"{error['ename']}: {error['evalue']}"
    record = {"cutoff_C": fold.cutoff_C, "n_fit": None, "n_test": None, "extrapolation_min": None,
              "extrapolation_max": None, "mare": None, "bias": None, "coverage": None, "status": f"failed: {text}"}
    return FoldScore(method, fold, record, pd.DataFrame(), [Diagnostic(
        "task_failed", "error", f"{method.name} at cutoff C = {fold.cutoff_C:.4g} raised {text}; the other "
        "methods and folds are kept", (method.name,))])


def paired_comparison(best: pd.DataFrame, other: pd.DataFrame, seed: int, n: int = N_PAIRED) -> dict:
    """Mean |relative error| of ``other`` minus ``best`` over the held-out runs both
    predicted (each run's rows averaged first), with a paired bootstrap 95% interval over
    runs. With fewer than 2 runs there is no noise to measure: ``within_noise`` is None."""
    a = best.assign(e=best["rel_error"].abs()).groupby("run")["e"].mean()
    b = other.assign(e=other["rel_error"].abs()).groupby("run")["e"].mean()
    d = (b - a).dropna().to_numpy(float)
    if len(d) < MIN_PAIRED_RUNS:
        return {"difference": float(d.mean()) if len(d) else None, "interval": None, "runs": int(len(d)),
                "within_noise": None}
    rng = np.random.default_rng(seed)
    draws = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"difference": float(d.mean()), "interval": [float(lo), float(hi)], "runs": int(len(d)),
            "within_noise": bool(lo <= 0 <= hi) or bool(np.all(d == 0))}


def run_backtest(prepared: runs_input.PreparedRuns, *, which: str = "default", k: int = DEFAULT_FOLDS,
                 cutoffs=None, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0, client=None,
                 progress: bool = False) -> Backtest:
    """Score every method on every fold (one task each, on Dask when ``client`` is given),
    rank them at the deepest fold, and compare each with the best by a paired bootstrap."""
    from ..core import scheduler

    t0 = time.perf_counter()
    folds = make_folds(prepared.frame, k, cutoffs)
    chosen, skipped = methods(prepared, which)
    items = [(m, f) for m in chosen for f in folds]
    task = functools.partial(_score_task, prepared, n_bootstrap, seed)
    with scheduler.session(client) as session:
        outcomes = scheduler.map_tasks(session, task, items, desc="backtest", unit="fit", progress=progress)
    scores = {}
    for outcome in outcomes:
        method, fold = outcome.item
        scores[(method.name, fold.cutoff_C)] = outcome.value if outcome.ok else _failed(method, fold,
                                                                                        outcome.error_record())
    deepest = ranking_fold(folds, chosen, scores)

    def key(method):
        mare = scores[(method.name, deepest.cutoff_C)].record["mare"]
        return (mare is None, mare if mare is not None else 0.0)

    ranked = sorted(chosen, key=key)   # stable: ties keep the methods' order
    comparison = {}
    best = scores[(ranked[0].name, deepest.cutoff_C)].points if ranked else pd.DataFrame()
    for method in ranked:
        other = scores[(method.name, deepest.cutoff_C)].points
        comparison[method.name] = (paired_comparison(best, other, seed) if not best.empty and not other.empty
                                   else {"difference": None, "interval": None, "runs": 0, "within_noise": None})
    diagnostics = [d for s in scores.values() for d in s.diagnostics]
    diagnostics += _fold_diagnostics(prepared, folds, chosen, scores)
    options = {"methods": which, "folds": len(folds), "cutoffs": [f.cutoff_C for f in folds],
               "n_bootstrap": n_bootstrap, "seed": seed, "level": LEVEL,
               "selection": {k_: prepared.options.get(k_) for k_ in ("per_nd", "checkpoints", "drop_highest_loss",
                                                                       "duplicate_rows")}}
    return Backtest(folds=folds, methods=chosen, scores=scores, skipped=skipped,
                    ranking=[m.name for m in ranked], comparison=comparison, options=options,
                    diagnostics=sorted_by_severity(diagnostics), deepest=deepest, seconds=time.perf_counter() - t0)


def ranking_fold(folds, chosen, scores) -> Fold:
    """The fold of the largest extrapolation (the smallest cutoff) that at least one method
    could fit; the smallest cutoff when none could."""
    fitted = [f for f in folds if any(scores[(m.name, f.cutoff_C)].record["mare"] is not None for m in chosen)]
    return min(fitted or folds, key=lambda f: f.cutoff_C)


def _fold_diagnostics(prepared, folds, chosen, scores) -> list[Diagnostic]:
    """One line per fold: where it cuts and how far its test runs lie beyond the fit of the
    user's selection (a variant fitting fewer runs extrapolates further: see its record)."""
    compute = run_compute(prepared.source).reindex(prepared.frame.index)
    out = []
    for fold in folds:
        held = fold.holds_out(compute).to_numpy()
        records = [scores[(m.name, fold.cutoff_C)].record for m in chosen]
        fitted = sum(r["mare"] is not None for r in records)
        reach = (f"reach {prepared.frame['C'][held].max() / prepared.frame['C'][~held].max():.3g}x the largest "
                 "fitted compute" if (~held).any() else "leave nothing to fit")
        out.append(Diagnostic("extrapolation", "info",
                              f"fold at cutoff C = {fold.cutoff_C:.4g}: "
                              f"{runs_input.run_labels(prepared.frame[held]).nunique()} held-out runs {reach}; "
                              f"{fitted} of {len(records)} methods fitted", (f"cutoff C={fold.cutoff_C:.4g}",)))
    return out


def fold_records(backtest: Backtest, prepared) -> list[dict]:
    """The folds of backtest.json: cutoff, and rows fitted and held out under the user's selection."""
    compute = run_compute(prepared.source).reindex(prepared.frame.index)
    out = []
    for fold in backtest.folds:
        held = fold.holds_out(compute).to_numpy()
        out.append({"cutoff_C": fold.cutoff_C, "n_fit": int((~held).sum()), "n_test": int(held.sum()),
                    "n_test_runs": int(runs_input.run_labels(prepared.frame[held]).nunique())})
    return out

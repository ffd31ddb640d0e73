"""Sensitivity of a Chinchilla-form fit to fitting choices, one choice at a time.

Why: Li, Kudugunta and Zettlemoyer (2025, "(Mis)Fitting") show that choices a paper rarely
reports -- the form, the objective, the optimizer and its tolerance, the starts, the Huber
delta, which runs and checkpoints enter the fit, how parameters are counted -- move the
compute-optimal allocation by orders of magnitude. This module states each choice as a
:class:`Variant` (a difference from the default protocol, kept as plain data so the table
says exactly what was changed) and :func:`run_variant` fits one variant; :func:`run_variants`
fits a list and returns one row per variant.

The runs come in as a :class:`~scalerepro.io.runs_input.PreparedRuns` -- the same object
``scalerepro fit`` uses, from a user's CSV or from a registry table -- and a variant's data
choices (several runs per (N, D), checkpoints, dropped losses, subsets, parameter counting)
are applied to its validated rows by :func:`variant_data` through the same
:func:`~scalerepro.io.runs_input.select_runs`, so a choice means the same thing here as in a
fit. Every variant gets the fit's diagnostics: the design checks, the identifiability checks
(a variant the data do not determine says so), and a bootstrap that resamples whole runs or
(N, D) groups whenever rows share one.

The default protocol is the careful one of Besiroglu et al. 2024: Chinchilla form, Huber
(delta 1e-3) on log loss summed over points, all starts of Hoffmann's grid, solved with the
library's batched Newton method. Variants that need a scipy optimizer (the optimizer
variants and MAE, whose objective has no second derivative) run one start at a time, so they
start from the few best grid points by the variant's own objective; the table records the
starts of every variant. Each variant is an independent task: its inputs are the prepared
runs, the variant and the :class:`Options`, and its random numbers come from a seed derived
from the options' seed and the variant's name, not from the order variants run in.
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..core import design_checks, identifiability, laws, optimal
from ..io import runs_input
from ..core.constraints import constrain
from ..core.bootstrap import BootstrapResult, bootstrap
from ..diagnostics import Diagnostic, sorted_by_severity
from ..core.fit import FitResult, fit
from ..core.objective import Objective, Problem
from ..summary import Row, Summary
from ..io.validate import InputError

DEFAULT_BUDGETS = (1e21, 1e23, 1e25)
#: Hoffmann et al. 2022's unrounded estimates (log A, log B, log E, alpha, beta), from the
#: paper's TeX source: the "published values" initialization.
HOFFMANN_THETA = {"a": 6.0073404, "b": 6.0179186, "e": 0.5267228, "alpha": 0.33917084, "beta": 0.2849083}
DEFAULT_FIT = {"objective": "huber", "delta": 1e-3, "space": "log", "reduction": "sum", "optimizer": "newton"}
#: Data choices and their defaults. duplicate_rows, per_nd, checkpoints, drop_highest_loss: as in
#: :mod:`scalerepro.io.runs_input` (the base comes from the prepared runs' options). after:
#: keep only rows at or beyond this fraction of their run's training (steps, else tokens).
#: n_column: count parameters from this other column. fixed: (column, value), keep only runs
#: with that hyperparameter value. max_N / min_N: keep runs with N at most / at least this.
#: tpp_max / tpp_min: keep runs trained to at most / at least this many tokens per parameter
#: (each run's final row decides). tpp_median: "low" / "high", keep runs at or below / above
#: the median tokens per parameter of the selected rows.
DATA_DEFAULTS = {"per_nd": None, "checkpoints": "all", "drop_highest_loss": 0, "after": None, "n_column": None,
                 "duplicate_rows": "error", "fixed": None, "max_N": None, "min_N": None, "tpp_max": None,
                 "tpp_min": None, "tpp_median": None}
#: The survey's own choices (Li et al.'s released analysis code): tokens per parameter at
#: most 18 / at least 22 around Chinchilla's 20, models up to 100M / 400M parameters, and
#: checkpoints after 10%, 20% and 50% of training.
SURVEY_TPP = (18.0, 22.0)
SURVEY_MAX_N = (1e8, 4e8)
SURVEY_AFTER = (0.1, 0.2, 0.5)
#: Starts of the non-default Newton variants on a user's runs: the best of the full grid by
#: the variant's own objective (the survey's "search the grid, optimize the best k").
SCREENED_STARTS = 100
#: The variant groups of :func:`user_variants`, in the order they are listed.
GROUPS = ("form", "objective", "reduction", "optimizer", "initialization", "huber delta", "checkpoints",
          "hyperparameter selection", "data subset", "outliers", "parameter counting")


@dataclass(frozen=True)
class Variant:
    """One fitting protocol, described by how it differs from the default.

    starts: ``"grid"`` (every grid point), ``"best_grid"`` (the ``k`` best grid points by
    the variant's own objective; ``k=1`` is "the single best grid point"), ``"random"``
    (``k`` uniform draws in the grid's box) or ``"hoffmann"`` (Hoffmann et al.'s published
    values). data: overrides of the data choices (see :data:`DATA_DEFAULTS`). bootstrap:
    whether the variant gets a bootstrap interval.
    """

    name: str
    group: str
    tied: bool = False
    fit: dict = field(default_factory=dict)   # overrides of DEFAULT_FIT
    starts: str = "grid"
    k: int | None = None
    data: dict = field(default_factory=dict)  # overrides of the data choices
    bootstrap: bool = False

    def fit_options(self) -> dict:
        return {**DEFAULT_FIT, **self.fit}

    def law(self) -> laws.Law:
        """The Chinchilla form, with alpha = beta as a tie when the variant asks for it."""
        return constrain(laws.Chinchilla(), tie={"beta": "alpha"} if self.tied else None)

    @property
    def scipy(self) -> bool:
        """Fitted by a scipy optimizer one start at a time (and bootstrapped the same way)."""
        return self.fit_options()["optimizer"] not in ("newton", "grid")

    def describe(self) -> dict:
        opts = self.fit_options()
        data = ", ".join(f"{k} {_choice_text(v)}" for k, v in self.data.items()) or "default"
        return {"variant": self.name, "group": self.group, "form": "alpha = beta" if self.tied else "alpha, beta free",
                "objective": opts["objective"] + ("" if opts["objective"] != "huber" else f" (delta {opts['delta']:g})"),
                "space": opts["space"], "reduction": opts["reduction"], "optimizer": opts["optimizer"],
                "starts": self.starts + ("" if self.k is None else f":{self.k}"), "data": data}


def _choice_text(value) -> str:
    if isinstance(value, (tuple, list)):
        return "=".join(_choice_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Options:
    """What every variant of one analysis shares.

    grid_axes: lists for a, b, e, alpha, beta (None: the law's own grid, Hoffmann's 4500
    starts). n_bootstrap: resamples of the default variant (and of every variant flagged for
    a bootstrap unless ``n_bootstrap_variants`` is given); n_bootstrap_scipy: resamples of a
    scipy-fitted variant (one scipy fit each). seed: the analysis seed, from which each
    variant's own seed is derived (:func:`variant_seed`).
    """

    budgets: tuple = DEFAULT_BUDGETS
    grid_axes: dict | None = None
    n_bootstrap: int = 1000
    n_bootstrap_variants: int | None = None
    n_bootstrap_scipy: int = 100
    seed: int = 42

    def resamples(self, variant: Variant) -> int:
        if not variant.bootstrap:
            return 0
        if variant.scipy:
            return self.n_bootstrap_scipy
        if variant.group == "default" or self.n_bootstrap_variants is None:
            return self.n_bootstrap
        return self.n_bootstrap_variants


def variant_seed(seed: int, variant: Variant) -> int:
    """The variant's own seed: the analysis seed for the default (so it matches
    ``scalerepro fit --seed``), otherwise a hash of the seed and the variant's name, so a
    variant's random starts and resamples do not depend on which variants ran before it."""
    if variant.group == "default":
        return int(seed)
    digest = hashlib.sha256(f"{int(seed)}:{variant.name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


# ----------------------------------------------------------------------------- variant sets
def standard_variants(huber_deltas=(1e-4, 1e-2, 1e-1), min_n=(1e8, 3e8), scipy_starts: int = 50,
                      n_random_starts: int = 100) -> list[Variant]:
    """The variants of the Chinchilla replication (issue 6), the default first.

    The default keeps the caller's data choices (the replication drops the 5 highest losses);
    "keep the outliers" drops none. Bootstraps are requested for the default and the objective
    variants.
    """
    scipy = dict(starts="best_grid", k=scipy_starts)
    v = [Variant("default", "default", bootstrap=True),
         Variant("form: alpha = beta", "form", tied=True),
         Variant("objective: Huber on raw loss", "objective", fit={"space": "raw"}, bootstrap=True),
         Variant("objective: MSE on log loss", "objective", fit={"objective": "mse"}, bootstrap=True),
         Variant("objective: MAE on log loss (L-BFGS-B)", "objective",
                 fit={"objective": "mae", "optimizer": "L-BFGS-B"}, bootstrap=True, **scipy),
         Variant("reduction: mean (Newton)", "reduction", fit={"reduction": "mean"}),
         Variant("reduction: mean (L-BFGS-B, default tolerances)", "reduction",
                 fit={"reduction": "mean", "optimizer": "L-BFGS-B"}, **scipy),
         Variant("optimizer: L-BFGS-B", "optimizer", fit={"optimizer": "L-BFGS-B"}, **scipy),
         Variant("optimizer: BFGS", "optimizer", fit={"optimizer": "BFGS"}, **scipy),
         Variant("optimizer: nonlinear least squares", "optimizer", fit={"optimizer": "least_squares"}, **scipy),
         Variant("optimizer: grid search only", "optimizer", fit={"optimizer": "grid"}),
         Variant("initialization: single best grid point", "initialization", starts="best_grid", k=1),
         Variant(f"initialization: {n_random_starts} random starts", "initialization", starts="random",
                 k=n_random_starts),
         Variant("initialization: Hoffmann's published values", "initialization", starts="hoffmann")]
    v += [Variant(f"huber delta: {d:g}", "huber delta", fit={"delta": float(d)}) for d in huber_deltas]
    v += [Variant(f"data: drop N < {t:g}", "data subset", data={"min_N": float(t)}) for t in min_n]
    v += [Variant("data: low tokens per parameter only", "data subset", data={"tpp_median": "low"}),
          Variant("data: high tokens per parameter only", "data subset", data={"tpp_median": "high"}),
          Variant("data: keep the outliers", "data subset", data={"drop_highest_loss": 0})]
    return v


def user_variants(prepared: runs_input.PreparedRuns, *, huber_deltas=(1e-4, 1e-2, 1e-1), scipy_starts: int = 20,
                  screened_starts: int = SCREENED_STARTS, n_random_starts: int = 100, n_column: str | None = None,
                  drop_highest_loss: int = 5) -> tuple[list[Variant], list[dict]]:
    """Every variant group for a user's runs, the default (the user's own options) first.

    The fit groups are the replication's; the data groups are the survey's own choices where
    the replication's stand-ins (a median split, a minimum size) do not fit a user's sweep:
    best run per (N, D) against all rows and fixed hyperparameter values; final checkpoints,
    all, or only after 10/20/50% of training; tokens per parameter at most 18 / at least 22;
    models up to 100M / 400M parameters; the 5 highest losses dropped (or kept, when the
    default drops them); parameters counted from ``n_column`` (with or without embeddings).
    A group that cannot apply to these runs (no checkpoints, one run per (N, D)) is left out
    and listed with the reason. Non-default Newton variants start from the
    ``screened_starts`` best grid points by their own objective, scipy variants from the
    ``scipy_starts`` best; every Newton variant and MAE get a bootstrap.

    Returns (variants, not_applicable) with not_applicable = [{variant, group, reason}].
    """
    screened = dict(starts="best_grid", k=screened_starts)
    scipy = dict(starts="best_grid", k=scipy_starts)
    source, options = prepared.source, prepared.options
    v = [Variant("default", "default", bootstrap=True),
         Variant("form: alpha = beta", "form", tied=True, bootstrap=True, **screened),
         Variant("objective: Huber on raw loss", "objective", fit={"space": "raw"}, bootstrap=True, **screened),
         Variant("objective: MSE on log loss", "objective", fit={"objective": "mse"}, bootstrap=True, **screened),
         Variant("objective: MAE on log loss (L-BFGS-B)", "objective",
                 fit={"objective": "mae", "optimizer": "L-BFGS-B"}, bootstrap=True, **scipy),
         Variant("reduction: mean (Newton)", "reduction", fit={"reduction": "mean"}, bootstrap=True, **screened),
         Variant("reduction: mean (L-BFGS-B, default tolerances)", "reduction",
                 fit={"reduction": "mean", "optimizer": "L-BFGS-B"}, **scipy),
         Variant("optimizer: L-BFGS-B", "optimizer", fit={"optimizer": "L-BFGS-B"}, **scipy),
         Variant("optimizer: BFGS", "optimizer", fit={"optimizer": "BFGS"}, **scipy),
         Variant("optimizer: nonlinear least squares", "optimizer", fit={"optimizer": "least_squares"}, **scipy),
         Variant("optimizer: grid search only", "optimizer", fit={"optimizer": "grid"}),
         Variant(f"initialization: best {screened_starts} grid points (the variants' starts)", "initialization",
                 bootstrap=True, **screened),
         Variant("initialization: single best grid point", "initialization", starts="best_grid", k=1,
                 bootstrap=True),
         Variant(f"initialization: {n_random_starts} random starts", "initialization", starts="random",
                 k=n_random_starts, bootstrap=True),
         Variant("initialization: Hoffmann's published values", "initialization", starts="hoffmann",
                 bootstrap=True)]
    v += [Variant(f"huber delta: {d:g}", "huber delta", fit={"delta": float(d)}, bootstrap=True, **screened)
          for d in huber_deltas]
    not_applicable = []

    def data(name, group, **choices):
        v.append(Variant(name, group, data=choices, bootstrap=True, **screened))

    runs = runs_input.run_labels(source)
    several_rows = bool((runs.value_counts() > 1).any())
    if several_rows:
        data("checkpoints: final only", "checkpoints", checkpoints="final", after=None)
        data("checkpoints: all", "checkpoints", checkpoints="all", after=None)
        for f in SURVEY_AFTER:
            data(f"checkpoints: after {f:.0%} of training", "checkpoints", checkpoints="all", after=f)
    else:
        not_applicable.append({"variant": "checkpoints: final only / all / after a fraction of training",
                               "group": "checkpoints", "reason": "every run has one row (no checkpoints)"})
    final = source[runs_input.final_rows(source)]
    design = final[["N", "D"]].round(decimals=0) if "D" in final.columns else final[["N"]]
    several_runs = bool(design.duplicated().any())
    if several_runs:
        data("hyperparameters: best run per (N, D)", "hyperparameter selection", per_nd="best", fixed=None)
        data("hyperparameters: all rows", "hyperparameter selection", per_nd="all", fixed=None)
        n_points = len(design.drop_duplicates())
        for column in runs_input.swept_columns(source):
            counts = final.groupby(final[column])[list(design.columns)].apply(lambda g: len(g.drop_duplicates()))
            for value, n in counts.items():
                if n >= n_points / 2:
                    data(f"hyperparameters: {column} = {value:g} only", "hyperparameter selection",
                         fixed=(column, float(value)), per_nd=options.get("per_nd") or "best")
    else:
        not_applicable.append({"variant": "hyperparameters: best run per (N, D) / all rows", "group":
                               "hyperparameter selection", "reason": "one run per (N, D) design point"})
    tpp_max, tpp_min = SURVEY_TPP
    data(f"data: tokens per parameter <= {tpp_max:g}", "data subset", tpp_max=tpp_max)
    data(f"data: tokens per parameter >= {tpp_min:g}", "data subset", tpp_min=tpp_min)
    for n in SURVEY_MAX_N:
        data(f"data: models up to {n:.3g} parameters", "data subset", max_N=n)
    dropped = int(options.get("drop_highest_loss") or 0)
    if dropped:
        data("outliers: keep every loss", "outliers", drop_highest_loss=0)
    else:
        data(f"outliers: drop the {drop_highest_loss} highest losses", "outliers", drop_highest_loss=drop_highest_loss)
    if n_column:
        ratio = float((source[n_column] / source["N"]).median())
        which = "with embeddings" if ratio > 1 else "without embeddings" if ratio < 1 else "same as N"
        data(f"counting: N from {n_column!r} ({which})", "parameter counting", n_column=n_column)
    else:
        not_applicable.append({"variant": "counting: parameters with / without embeddings", "group":
                               "parameter counting", "reason": "the file has one parameter-count column "
                               "(give the other with --alt-params COLUMN)"})
    return v, not_applicable


# ----------------------------------------------------------------------------- data
@dataclass
class VariantData:
    """The rows a variant fits: a PreparedRuns (frame, groups, dropped rows with reasons,
    selection diagnostics) after the variant's data choices, and those choices."""

    selection: runs_input.PreparedRuns
    choices: dict

    @property
    def frame(self) -> pd.DataFrame:
        return self.selection.frame

    @property
    def X(self) -> np.ndarray:
        return self.frame[["N", "D"]].to_numpy(float)

    @property
    def y(self) -> np.ndarray:
        return self.frame["loss"].to_numpy(float)

    def fingerprint(self) -> str:
        """Equal for two selections with the same points, values and resampling groups."""
        h = hashlib.sha256()
        for column in ("N", "D", "loss"):
            h.update(np.ascontiguousarray(self.frame[column].to_numpy(float)).tobytes())
        h.update(np.asarray(self.frame.index).tobytes())
        if self.selection.groups is not None:
            h.update(pd.factorize(self.selection.groups)[0].astype(np.int64).tobytes())
        return h.hexdigest()


def data_choices(prepared: runs_input.PreparedRuns, variant: Variant) -> dict:
    """The variant's data choices: the defaults, the prepared runs' options, the variant's."""
    base = {k: prepared.options.get(k, DATA_DEFAULTS[k])
            for k in ("per_nd", "checkpoints", "drop_highest_loss", "duplicate_rows")}
    unknown = sorted(set(variant.data) - set(DATA_DEFAULTS))
    if unknown:
        raise ValueError(f"variant {variant.name!r}: unknown data choices {unknown}; valid: {', '.join(DATA_DEFAULTS)}")
    return {**DATA_DEFAULTS, **base, **variant.data}


def variant_data(prepared: runs_input.PreparedRuns, variant: Variant) -> VariantData:
    """Apply the variant's data choices to the prepared runs' validated rows.

    Order: parameter counting, a fixed hyperparameter value and the checkpoint fraction on
    the rows read; then :func:`~scalerepro.io.runs_input.select_runs` (checkpoints, several
    runs per (N, D), the highest losses); then the size and tokens-per-parameter subsets,
    which keep or drop whole runs. Every row left out is recorded with its reason.
    """
    choices = data_choices(prepared, variant)
    source = prepared.source
    frame = source.copy()
    frame.attrs = dict(source.attrs)
    dropped: list[dict] = []

    def drop(mask, reason):
        """Drop the rows of ``frame`` where mask is True."""
        nonlocal frame
        mask = np.asarray(mask, bool)
        dropped.extend({"index": int(i), "line": int(line), "reason": reason}
                       for i, line in zip(frame.index[mask], frame["line"][mask]))
        attrs = frame.attrs
        frame = frame[~mask]
        frame.attrs = attrs

    if choices["n_column"]:
        column = choices["n_column"]
        frame["N"] = frame[column].astype(float)
        frame["C"] = optimal.training_flops(frame["N"], frame["D"])
    if choices["fixed"]:
        column, value = choices["fixed"]
        drop(~np.isclose(frame[column].astype(float), value, rtol=1e-9, atol=0),
             f"{column} is not {value:g} (a fixed hyperparameter value)")
    if choices["after"]:
        order = "step" if "step" in frame.columns else "D"
        fraction = frame[order] / frame[order].groupby(runs_input.run_labels(frame)).transform("max")
        drop(fraction <= choices["after"] + 1e-12,
             f"checkpoint at or before {choices['after']:.0%} of its run's training")
    selection = runs_input.select_runs(frame, per_nd=choices["per_nd"], checkpoints=choices["checkpoints"],
                                       drop_highest_loss=choices["drop_highest_loss"], path=prepared.path,
                                       duplicate_rows=choices["duplicate_rows"])
    work = selection.frame
    keep = np.ones(len(work), bool)
    reasons = []
    if choices["max_N"] is not None:
        reasons.append((work["N"].to_numpy() > choices["max_N"], f"N above {choices['max_N']:.3g}"))
    if choices["min_N"] is not None:
        reasons.append((work["N"].to_numpy() < choices["min_N"], f"N < {choices['min_N']:g}"))
    if choices["tpp_max"] is not None or choices["tpp_min"] is not None:
        runs = runs_input.run_labels(work)
        final = work[runs_input.final_rows(work)]
        per_run = (final["D"] / final["N"]).groupby(runs_input.run_labels(final)).max()
        tpp = runs.map(per_run).to_numpy(float)
        if choices["tpp_max"] is not None:
            reasons.append((tpp > choices["tpp_max"] * (1 + 1e-9),
                            f"its run is trained to more than {choices['tpp_max']:g} tokens per parameter"))
        if choices["tpp_min"] is not None:
            reasons.append((tpp < choices["tpp_min"] * (1 - 1e-9),
                            f"its run is trained to fewer than {choices['tpp_min']:g} tokens per parameter"))
    if choices["tpp_median"] is not None:
        ratio = (work["D"] / work["N"]).to_numpy()
        median = float(np.median(ratio))
        low = choices["tpp_median"] == "low"
        reasons.append((ratio > median if low else ratio <= median,
                        f"tokens per parameter {'above' if low else 'at or below'} the median {median:.3g}"))
    for mask, reason in reasons:
        new = mask & keep
        dropped_rows = work[new]
        dropped.extend({"index": int(i), "line": int(line), "reason": reason}
                       for i, line in zip(dropped_rows.index, dropped_rows["line"]))
        keep &= ~mask
    groups = selection.groups
    if not keep.all():
        work = work[keep]
        groups = None if groups is None else groups[keep]
    selection = replace(selection, frame=work, groups=groups, dropped=dropped + selection.dropped,
                        source=source, options={**prepared.options, **{k: v for k, v in choices.items()
                                                                       if k in ("per_nd", "checkpoints",
                                                                                "drop_highest_loss")}})
    return VariantData(selection=selection, choices=choices)


def grid_starts(law: laws.Law, axes: dict | None) -> np.ndarray:
    """Hoffmann's grid from ``axes`` (a, b, e, alpha, beta lists; beta is dropped when
    tied), or the law's own grid when ``axes`` is None."""
    if axes is None:
        return law.default_starts()
    return laws.grid(**{k: np.asarray(axes[k], float) for k in law.param_names})


def make_starts(variant: Variant, law, X, y, axes: dict | None, seed: int) -> np.ndarray:
    """Starting points of a variant, in the law's fitted parameterization."""
    full = grid_starts(law, axes)
    if variant.starts == "grid":
        return full
    if variant.starts == "best_grid":
        opts = variant.fit_options()
        objective = Objective(opts["objective"], opts["delta"], opts["space"], opts["reduction"])
        ranked = Problem(law, np.asarray(X, float), np.asarray(y, float), objective).value(full, np.zeros(len(full), int))
        return full[np.argsort(ranked, kind="stable")[:variant.k]]
    if variant.starts == "random":
        rng = np.random.default_rng(seed)
        return rng.uniform(full.min(axis=0), full.max(axis=0), size=(variant.k, full.shape[1]))
    if variant.starts == "hoffmann":
        return np.array([[HOFFMANN_THETA[k] for k in law.param_names]])
    raise ValueError(f"unknown starts {variant.starts!r}")


# ----------------------------------------------------------------------------- allocation
def budget_key(c: float) -> str:
    """A budget as it appears in column names: 1e+23, 3.2e+19."""
    return f"{float(c):.3g}"


def allocation(params: dict, budgets) -> dict:
    """a, and N_opt / tokens per parameter per budget; non-finite when the fit is degenerate
    (e.g. alpha = 0: the loss does not depend on N, so no optimum exists)."""
    out = {}
    with np.errstate(all="ignore"):
        for c in budgets:
            opt = optimal.compute_optimal(params, c)
            out["a"] = opt["a"]
            out[f"N_opt@{budget_key(c)}"] = opt["N_opt"]
            out[f"tokens_per_param@{budget_key(c)}"] = opt["tokens_per_param"]
    return out


def derived_functions(budgets) -> dict:
    """Derived quantities for the bootstrap: a, N_opt and tokens per parameter per budget."""
    return {k: (lambda p, k=k: np.asarray(allocation(p, budgets)[k], float))
            for k in allocation({"A": 1.0, "B": 1.0, "alpha": 0.3, "beta": 0.3}, budgets)}


# ----------------------------------------------------------------------------- one variant
def _interval(row: dict, name: str):
    """A row's 95% bootstrap interval of ``name`` as a list, or None where it has none."""
    lo, hi = row.get(f"{name} 95% low"), row.get(f"{name} 95% high")
    if lo is None or hi is None or not np.isfinite([lo, hi]).all():
        return None
    return [float(lo), float(hi)]


@dataclass
class VariantResult:
    """One variant's outcome: the table row, the fit, its bootstrap and its diagnostics."""

    variant: Variant
    row: dict
    fit: FitResult | None
    boot: BootstrapResult | None
    data: VariantData | None
    identifiability: identifiability.Identifiability | None
    diagnostics: list[Diagnostic]
    error: dict | None = None  # the fit raised: ename, evalue, traceback (see failed_variant)

    @property
    def identified(self) -> bool:
        return bool(self.row.get("identified"))

    def record(self, budgets, in_spread: bool) -> dict:
        """One variant as plain JSON: choices, points, parameters, allocation per budget with
        intervals, outcome, diagnostics, bootstrap, seconds."""
        row, v = self.row, self.variant
        record = {"variant": v.name, "group": v.group,
                  "choices": {**{k: row[k] for k in ("form", "objective", "space", "reduction", "optimizer", "starts")},
                              "data": self.data.choices if self.data is not None else None},
                  "n_points": row["n_points"], "n_runs": row["n_runs"], "n_starts": row.get("n_starts"),
                  "resampling": row["resampling"], "outcome": row["outcome"], "identified": row["identified"],
                  "in_spread": in_spread, "converged": row.get("converged"), "seconds": round(row["seconds"], 3)}
        if self.fit is not None:
            record.update(params=self.fit.params, objective_value=self.fit.objective_value, message=self.fit.message,
                          a=row["a"], a_interval=_interval(row, "a"),
                          allocation=[{"C": c,
                                       "N_opt": row[f"N_opt@{budget_key(c)}"],
                                       "N_opt_interval": _interval(row, f"N_opt@{budget_key(c)}"),
                                       "tokens_per_param": row[f"tokens_per_param@{budget_key(c)}"],
                                       "tokens_per_param_interval":
                                           _interval(row, f"tokens_per_param@{budget_key(c)}")}
                                      for c in budgets],
                          warnings=list(self.fit.warnings))
        if self.boot is not None:
            record["bootstrap"] = {"n_resamples": self.boot.n_resamples, "n_failed": self.boot.n_failed,
                                   "seed": self.boot.seed, "resampling": self.boot.resampling,
                                   "warm_start": self.boot.warm_start, "seconds": round(self.boot.seconds, 3),
                                   "edges": self.identifiability.bootstrap_edges if self.identifiability else None}
        else:
            record["bootstrap"] = None
            record["no_interval"] = ("a scipy optimizer variant: its bootstrap would be one scipy fit per resample "
                                     "per start; its spread is about where the optimizer stops" if v.scipy else
                                     "grid search only: a grid point, not an optimum" if
                                     v.fit_options()["optimizer"] == "grid" else "not fitted")
        if self.data is not None:
            record["dropped_by_reason"] = self.data.selection.selection_record()["dropped_by_reason"]
        if self.error is not None:  # the variant's fit raised (sensitivity.failed_variant)
            record["error"] = self.error
        record["diagnostics"] = [d.record() for d in self.diagnostics]
        return record


def _outcome(result: FitResult, errors: list[Diagnostic]) -> str:
    """'identified', 'not converged', or 'not identified: <parameters or design>'."""
    if not errors:
        return "identified"
    if any(d.code == "not_converged" for d in errors) and all(d.code == "not_converged" for d in errors):
        return "not converged"
    subjects = list(dict.fromkeys(s for d in errors for s in d.subjects
                                  if s in result.params or s in ("N", "D")))
    return "not identified" + (": " + ", ".join(subjects) if subjects else "")


def run_variant(prepared: runs_input.PreparedRuns, variant: Variant, options: Options = Options(),
                data: VariantData | None = None) -> VariantResult:
    """Fit one variant: its points, starts, fit, diagnostics, bootstrap and allocation.

    An independent task: everything it needs is in its arguments (``data`` is the
    variant's :func:`variant_data` when the caller already has it), and its random numbers
    come from :func:`variant_seed`. Diagnostics: the selection's warnings and dropped rows,
    the design checks, the identifiability checks (without profiles) and the bootstrap's;
    a variant with an error among them is not identified (``row["identified"]`` False).
    """
    t0 = time.perf_counter()
    budgets = tuple(float(c) for c in options.budgets)
    seed = variant_seed(options.seed, variant)
    law = variant.law()
    data = variant_data(prepared, variant) if data is None else data
    X, y = data.X, data.y
    row = {**variant.describe(), "n_points": len(y), "n_runs": int(runs_input.run_labels(data.frame).nunique()),
           "resampling": data.selection.resampling}
    diagnostics = [d for d in data.selection.diagnostics if d.severity != "info"]
    if data.selection.dropped:
        counts = pd.Series([d["reason"] for d in data.selection.dropped]).value_counts(sort=False)
        diagnostics.append(Diagnostic("dropped_points", "info", f"{len(data.selection.dropped)} of "
                                      f"{len(data.selection.source)} rows do not enter this variant's fit: "
                                      + "; ".join(f"{n} {why}" for why, n in counts.items()), ()))
    diagnostics += design_checks.design_diagnostics(data.frame, law)
    if len(y) <= law.n_params:
        diagnostics.append(Diagnostic("design_points", "error", f"{len(y)} points for {law.n_params} parameters: "
                                      "nothing to fit", tuple(law.param_names)))
        row.update(identified=False, outcome="not fitted: too few points", converged=False,
                   seconds=time.perf_counter() - t0)
        return VariantResult(variant, row, None, None, data, None, sorted_by_severity(diagnostics))
    starts = make_starts(variant, law, X, y, options.grid_axes, seed)
    with np.errstate(all="ignore"):  # warnings are kept in result.warnings and the table
        result = fit(law, X, y, starts=starts, dropped=data.selection.dropped, warn=False, **variant.fit_options())
        ident = identifiability.check(result, X, y, starts=starts, profiles=False)
    if variant.fit_options()["objective"] == "mae":
        # MAE has no curvature: its Hessian says nothing about flat directions
        ident.diagnostics = [d for d in ident.diagnostics if not (d.code == "not_identified"
                                                                 and "Hessian" in d.message)]
    if variant.fit_options()["optimizer"] == "grid":  # a grid point: not an optimum, no flatness to judge
        ident.diagnostics = [d for d in ident.diagnostics if d.code == "implausible_parameter"]
    diagnostics += ident.diagnostics
    row.update({"n_starts": result.n_starts, **result.params, **allocation(result.params, budgets),
                "converged": result.converged, "objective_value": result.objective_value,
                "message": result.message, "warnings": "; ".join(result.warnings)})
    implausible = [(c, row[f"tokens_per_param@{budget_key(c)}"]) for c in budgets
                   if np.isfinite(row[f"tokens_per_param@{budget_key(c)}"])
                   and not optimal.PLAUSIBLE_TOKENS_PER_PARAM[0] <= row[f"tokens_per_param@{budget_key(c)}"]
                   <= optimal.PLAUSIBLE_TOKENS_PER_PARAM[1]]
    if implausible:
        diagnostics.append(Diagnostic(
            "implausible_parameter", "warning",
            "implausible allocation: " + "; ".join(f"{t:.3g} tokens per parameter at C = {c:.3g}" for c, t in implausible)
            + f" (outside {optimal.PLAUSIBLE_TOKENS_PER_PARAM[0]:g} to {optimal.PLAUSIBLE_TOKENS_PER_PARAM[1]:g})", ("allocation",)))
    boot = None
    n_resamples = options.resamples(variant)
    if n_resamples:
        derived = derived_functions(budgets)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            boot = bootstrap(result, X, y, n_resamples=n_resamples, seed=seed, groups=data.selection.groups,
                             derived=derived)
        boot.resampling = data.selection.resampling
        row["bootstrap_resamples"] = boot.n_resamples - boot.n_failed
        for name in derived:
            if name == "a" or name.startswith(("tokens_per_param", "N_opt")):
                lo, hi = boot.interval(name, 0.95) if len(boot.samples[name]) else (np.nan, np.nan)
                row[f"{name} 95% low"], row[f"{name} 95% high"] = lo, hi
        if boot.n_failed:
            diagnostics.append(Diagnostic("bootstrap_failures", "warning" if boot.failed_share > 0.1 else "info",
                                          f"{boot.n_failed} of {boot.n_resamples} bootstrap refits failed and are "
                                          "left out of the intervals", ()))
        ident.bootstrap_edges, found = identifiability.bootstrap_edges(boot, law, y, skip=ident.unidentified)
        diagnostics += found
    errors = [d for d in diagnostics if d.severity == "error"]
    row["outcome"] = _outcome(result, errors)
    if not errors and ident.unbounded:  # identified by the fit's checks, but its bootstrap runs away
        row["outcome"] += f"; {identifiability.UNBOUNDED}: " + ", ".join(ident.unbounded)
    row["bounded"] = not ident.unbounded
    row["identified"] = not errors
    row["seconds"] = time.perf_counter() - t0
    return VariantResult(variant, row, result, boot, data, ident, sorted_by_severity(diagnostics))


# ----------------------------------------------------------------------------- many variants
@dataclass
class SensitivityResult:
    """``table``: one row per variant fitted (choices, parameters, a, allocations,
    convergence, outcome, bootstrap intervals); ``fits`` and ``boots``: the FitResult /
    BootstrapResult per name; ``results``: the :class:`VariantResult` per name; ``skipped``:
    ``{variant, group, reason}`` for variants not fitted (coinciding with another)."""

    table: pd.DataFrame
    fits: dict[str, FitResult]
    boots: dict[str, BootstrapResult]
    budgets: tuple
    results: dict[str, VariantResult] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)

    def long(self) -> pd.DataFrame:
        """Tidy allocations: one row per (variant, budget)."""
        rows = []
        for _, r in self.table.iterrows():
            for c in self.budgets:
                rows.append({"variant": r["variant"], "group": r["group"], "C": c,
                             "N_opt": r[f"N_opt@{budget_key(c)}"],
                             "tokens_per_param": r[f"tokens_per_param@{budget_key(c)}"],
                             "converged": r["converged"], "identified": r.get("identified")})
        return pd.DataFrame(rows)

    def summary(self) -> Summary:
        """The spread at a glance, from :attr:`table` (nothing recomputed): each variant's
        allocation exponent a with its 95% bootstrap interval where it has one, then the
        variants that are not identified (with why) and those skipped. ``print()`` it for
        text; in Jupyter it displays as a table."""
        def interval(row):
            low, high = row.get("a 95% low"), row.get("a 95% high")
            return None if low is None or pd.isna(low) or pd.isna(high) else (low, high)

        records = self.table.to_dict(orient="records")
        rows = [Row(r["variant"], r.get("a"), interval(r)) for r in records]
        notes = [f"{r['variant']}: {r['outcome']}" for r in records if not r.get("identified")]
        notes += [f"skipped {s['variant']}: {s['reason']}" for s in self.skipped]
        return Summary(f"sensitivity of the allocation exponent a = beta / (alpha + beta): {len(records)} variants",
                       rows, notes, level=0.95)


def plan_variants(prepared: runs_input.PreparedRuns, variants: list[Variant]):
    """Each variant's data, with the variants that coincide with an earlier one left out.

    Two variants coincide when they fit the same points (values and resampling groups) with
    the same form, fit options and starts: e.g. "checkpoints: final only" on runs without
    checkpoints, or "keep every loss" when the default drops none. Returns (planned, skipped)
    with planned = [(variant, data)] and skipped = [{variant, group, reason}]; a variant whose
    data choices leave nothing to fit is skipped with the reason.
    """
    planned, skipped, seen = [], [], {}
    default_points = None
    for variant in variants:
        try:
            data = variant_data(prepared, variant)
        except InputError as exc:
            skipped.append({"variant": variant.name, "group": variant.group, "reason": f"cannot select its rows: {exc}"})
            continue
        if data.frame.empty:
            skipped.append({"variant": variant.name, "group": variant.group, "reason": "its data choices keep no rows"})
            continue
        points = data.fingerprint()
        if variant.group == "default":
            default_points = points
        elif variant.data and points == default_points:
            base = data_choices(prepared, replace(variant, data={}))
            given = {k: v for k, v in variant.data.items() if v is not None}
            same = [f"{k} {_choice_text(v)}" for k, v in given.items() if base[k] == v]
            why = (f"the default already uses {', '.join(same)}" if same and len(same) == len(given)
                   else "its data choices select exactly the default's points")
            skipped.append({"variant": variant.name, "group": variant.group, "reason": why})
            continue
        key = (variant.tied, tuple(sorted(variant.fit_options().items())), variant.starts, variant.k, points)
        if key in seen:
            first = seen[key]
            why = ("coincides with the default under these options" if first == "default"
                   else f"coincides with {first!r} (same points and fit)")
            skipped.append({"variant": variant.name, "group": variant.group, "reason": why})
            continue
        seen[key] = variant.name
        planned.append((variant, data))
    return planned, skipped


def _announced(task, progress, planned_item):
    progress(planned_item[0].name)
    return task(planned_item)


def _announce_done(progress, outcome):
    progress(outcome.item[0].name)


def failed_variant(variant: Variant, data: VariantData, error: dict) -> VariantResult:
    """The result of a variant whose fit raised (``error``: ename, evalue, traceback): its
    choices and points, not identified, the error as an error diagnostic and in the table."""
    text = f"{error['ename']}: {error['evalue']}"
    row = {**variant.describe(), "n_points": len(data.y),
           "n_runs": int(runs_input.run_labels(data.frame).nunique()), "resampling": data.selection.resampling,
           "converged": False, "identified": False, "outcome": f"failed: {error['ename']}", "error": text,
           "seconds": 0.0}
    diagnostic = Diagnostic("task_failed", "error", f"fitting this variant raised {text}; the other variants are kept",
                            ())
    return VariantResult(variant, row, None, None, data, None, [diagnostic], error=error)


def _task(prepared, options, planned_item):
    variant, data = planned_item
    return run_variant(prepared, variant, options, data)


def run_variants(prepared: runs_input.PreparedRuns, variants: list[Variant], options: Options = Options(), *,
                 progress=None, client=None) -> SensitivityResult:
    """Fit every variant (:func:`run_variant`) that does not coincide with an earlier one
    (:func:`plan_variants`) and tabulate the outcomes, in the variants' order.

    ``client``: fit one variant per task on Dask workers -- a ``dask.distributed.Client`` or a
    ``--scheduler`` value (``local:N``, an address) opened for this call
    (:func:`scalerepro.core.scheduler.session`); each variant's seed is :func:`variant_seed`, so
    the table is the same as in this process. A variant that raises is recorded
    (:func:`failed_variant`) and the others are kept. ``progress``: optional callable taking
    each variant's name, as it starts in this process, or as it finishes on Dask.
    """
    from ..core import scheduler

    planned, skipped = plan_variants(prepared, variants)
    task = functools.partial(_task, prepared, options)
    with scheduler.session(client) as client:
        on_done = None
        if progress is not None and client is None:
            task = functools.partial(_announced, task, progress)
        elif progress is not None:
            on_done = functools.partial(_announce_done, progress)
        outcomes = scheduler.map_tasks(client, task, planned, desc="variants", unit="variant", progress=False,
                                       on_done=on_done)
    results = {}
    for outcome in outcomes:
        variant, data = outcome.item
        results[variant.name] = outcome.value if outcome.ok else failed_variant(variant, data, outcome.error_record())
    table = pd.DataFrame([r.row for r in results.values()])
    return SensitivityResult(table=table, fits={k: r.fit for k, r in results.items() if r.fit is not None},
                             boots={k: r.boot for k, r in results.items() if r.boot is not None},
                             budgets=tuple(float(c) for c in options.budgets), results=results, skipped=skipped)


def spread(table: pd.DataFrame, column: str, only_converged: bool = False, only_identified: bool = False) -> dict:
    """max / min of ``column`` over variants with a finite positive value, with which
    variants set the extremes and which were excluded (and why)."""
    values = pd.to_numeric(table[column], errors="coerce")
    usable = np.isfinite(values) & (values > 0)
    excluded = {v: "no finite allocation" for v in table.loc[~usable, "variant"]}
    if only_identified and "identified" in table.columns:
        bad = usable & ~table["identified"].fillna(False).astype(bool)
        for v, why in zip(table.loc[bad, "variant"], table.loc[bad, "outcome"]):
            excluded[v] = why
        usable &= ~bad
    if only_converged:
        for v in table.loc[usable & ~table["converged"].astype(bool), "variant"]:
            excluded[v] = "not converged"
        usable &= table["converged"].astype(bool)
    if usable.sum() < 2:
        return {"ratio": float("nan"), "max_variant": None, "min_variant": None, "excluded": excluded,
                "n_variants": int(usable.sum())}
    sub = table.loc[usable]
    hi, lo = sub.loc[values[usable].idxmax()], sub.loc[values[usable].idxmin()]
    return {"ratio": float(hi[column] / lo[column]), "max": float(hi[column]), "min": float(lo[column]),
            "max_variant": hi["variant"], "min_variant": lo["variant"], "excluded": excluded,
            "n_variants": int(usable.sum())}


def stopping_points(result: FitResult) -> pd.DataFrame:
    """Where every start of ``result`` stopped, one row per start, lowest summed objective
    first: the natural parameters, ``a`` = beta / (alpha + beta), the summed objective there
    (the yardstick common to sum and mean fits), the largest gradient component of the
    objective the optimizer minimised (what L-BFGS-B compares with its absolute ``gtol``)
    and of the summed objective, and the optimizer's own convergence flag.

    Why: an optimizer that stops on absolute tolerances stops each start wherever its
    gradient first looks small, so a fit that keeps the best start reports the best of
    those early stops, and its answer depends on which starts it was given.
    """
    problem = result.problem
    thetas = np.asarray(result.start_thetas, float)
    rows = np.zeros(len(thetas), int)
    summed = Problem(result.law, problem.X, problem.y, replace(result.objective, reduction="sum"))
    with np.errstate(all="ignore"):
        _, grad = problem.value_grad(thetas, rows)
        summed_value, summed_grad = summed.value_grad(thetas, rows)
    frame = pd.DataFrame([result.law.natural(t) for t in thetas])
    frame["a"] = frame["beta"] / (frame["alpha"] + frame["beta"])
    frame["summed objective"] = summed_value
    frame["max |gradient|, as minimised"] = np.abs(grad).max(axis=1)
    frame["max |gradient|, summed"] = np.abs(summed_grad).max(axis=1)
    frame["converged (optimizer's flag)"] = np.asarray(result.start_converged, bool)
    return frame.sort_values("summed objective", kind="stable").reset_index(drop=True)

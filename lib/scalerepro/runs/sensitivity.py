"""How fitting choices move the allocation on your own runs: ``scalerepro sensitivity``.

A researcher about to trust a fit of their sweep wants to know which choices it rests on.
This runs the (Mis)Fitting survey's choices one at a time on the user's CSV:

1. read, validate and choose the default's points exactly as ``scalerepro fit`` does
   (:func:`scalerepro.io.runs_input.prepare_runs`: the same ``--columns``, ``--duplicate-rows``, ``--per-nd``,
   ``--checkpoints``, ``--drop-highest-loss``; nothing is dropped unless asked);
2. build every variant group (:func:`scalerepro.analyses.sensitivity.user_variants`), leaving out a
   variant that coincides with the default under these options, or one whose group cannot
   apply (no checkpoints, one run per (N, D)), each with its reason;
3. fit each variant as an independent task (:func:`scalerepro.analyses.sensitivity.run_variant`):
   the default from Hoffmann's full 4500-point grid, the other Newton variants from the best
   grid points by their own objective, scipy variants from fewer; design and identifiability
   diagnostics per variant; a bootstrap over whole runs or (N, D) groups;
4. the spread of the allocation at each budget over the variants the diagnostics allow (a
   variant the data do not identify is listed but left out unless ``include_unidentified``);
5. ``results.json`` (one record per variant) and ``report.html`` (the spread table and the
   figure of the allocation across variants), written only once everything is computed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core import laws
from ..io import runs_input
from ..analyses import sensitivity
from . import approaches as userapproaches
from ..io.data import sha256_file
from ..diagnostics import Diagnostic, sorted_by_severity
from ..publishing.results import environment, json_safe, write_report_and_results
from ..summary import Summary
from ..io.validate import InputError

#: Resamples per variant: the default's as many as ``scalerepro fit``; the other Newton
#: variants fewer (each is one batched refit of all resamples); scipy-fitted ones (MAE)
#: fewer still, as each resample is a separate scipy fit.
N_BOOTSTRAP, N_BOOTSTRAP_VARIANTS, N_BOOTSTRAP_SCIPY = 1000, 200, 50


def default_budgets(frame: pd.DataFrame) -> list[float]:
    """The largest training compute among the default's rows, and 10x and 100x beyond it."""
    top = float(frame["C"].max())
    return [top, 10 * top, 100 * top]


def alternative_counts(prepared: runs_input.PreparedRuns, alt_params: str | None) -> tuple[str | None, list]:
    """The other parameter-count column for the counting variant, and a diagnostic saying
    which it is (or why there is none).

    ``alt_params`` names it; otherwise a column named like a parameter count (params,
    non_embedding_params, ...) other than N's is used when there is exactly one. Its values
    must be positive numbers, one per run. Raises InputError naming the column and line.
    """
    source = prepared.source
    path = str(prepared.path or "<runs>")
    roles = source.attrs.get("roles", {})
    n_name = roles.get("N", "N")
    if alt_params is None:
        names = {runs_input._normal(c) for c in runs_input.COMMON_NAMES["N"]}
        candidates = [c for c in source.columns if c not in (*runs_input.ROLES, "line") and c != n_name
                      and (runs_input._normal(c) in names or "param" in str(c).lower())
                      and pd.api.types.is_numeric_dtype(source[c])]
        if len(candidates) != 1:
            if candidates:
                return None, [Diagnostic("parameter_counting", "info", "several other parameter-count columns ("
                                         + ", ".join(map(repr, candidates)) + "): choose one for the counting "
                                         "variant with --alt-params COLUMN", ())]
            return None, []
        alt_params, found = candidates[0], "found automatically; choose another with --alt-params"
    else:
        found = "--alt-params"
        if alt_params not in source.columns or alt_params in (*runs_input.ROLES, "line"):
            extras = [c for c in source.columns if c not in (*runs_input.ROLES, "line")]
            raise InputError(path, [f"--alt-params {alt_params!r} is not a column of the file besides the roles; "
                                    f"other columns: {', '.join(map(repr, extras)) or 'none'}"])
    values = pd.to_numeric(source[alt_params], errors="coerce")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        line = int(source.loc[bad, "line"].iloc[0])
        raise InputError(path, [f"column {alt_params!r} (the other parameter count): line {line} has "
                                f"{source.loc[bad, alt_params].iloc[0]!r}; need a positive number on every row "
                                f"({int(bad.sum())} rows are not)"])
    per_run = values.groupby(runs_input.run_labels(source)).agg(lambda v: v.max() / v.min() - 1)
    if (per_run > runs_input.SAME).any():
        raise InputError(path, [f"column {alt_params!r} (the other parameter count): {int((per_run > 1e-9).sum())} "
                                "runs have rows with different values; a parameter count is one number per run"])
    ratio = float((values / source["N"]).median())
    return alt_params, [Diagnostic("parameter_counting", "info",
                                   f"the counting variant reads N from {alt_params!r} ({found}); it is "
                                   f"{ratio:.3g}x N at the median, so it counts "
                                   f"{'more' if ratio > 1 else 'fewer'} parameters (with or without embeddings)",
                                   (alt_params,))]


def _group_key(name: str) -> str:
    return str(name).strip().lower().replace("_", " ").replace("-", " ")


def check_groups(groups) -> set[str]:
    """The normalized group names; raises ValueError naming an unknown one and the valid ones."""
    wanted = {_group_key(g) for g in groups}
    unknown = sorted(wanted - {_group_key(g) for g in sensitivity.GROUPS} - {"default"})
    if unknown:
        raise ValueError(f"--groups: unknown group(s) {', '.join(unknown)}; valid: "
                         + ", ".join(g.replace(" ", "_") for g in sensitivity.GROUPS))
    return wanted


def select_groups(variants, not_applicable, groups):
    """The default and the variants of the named groups. Raises ValueError naming an
    unknown group and the valid ones."""
    wanted = check_groups(groups)
    keep = [v for v in variants if v.group == "default" or _group_key(v.group) in wanted]
    return keep, [n for n in not_applicable if _group_key(n["group"]) in wanted]


#: The screened default may sit this far (relative objective) above the full grid's optimum.
SAME_OPTIMUM = 1e-6


def screening_check(result: sensitivity.SensitivityResult, k: int) -> list[Diagnostic]:
    """Does the default, started only from the ``k`` best grid points (as the other Newton
    variants are), reach the optimum of the full grid? Checked on the user's own runs."""
    full = result.results.get("default")
    screened = next((r for r in result.results.values()
                     if r.variant.group == "initialization" and r.variant.starts == "best_grid"
                     and r.variant.k == k and not r.variant.fit and not r.variant.data), None)
    if full is None or screened is None or full.fit is None or screened.fit is None:
        return []
    excess = screened.fit.objective_value / full.fit.objective_value - 1
    if excess <= SAME_OPTIMUM:
        return [Diagnostic("screened_starts", "info",
                           f"the {k} best grid points reach the full {full.fit.n_starts}-start grid's optimum on the "
                           f"default (objective within {SAME_OPTIMUM:g} relative): the other Newton variants start "
                           "from their own best grid points", ())]
    return [Diagnostic("screened_starts", "warning",
                       f"started from the {k} best grid points only, the default stops {excess:.2g} (relative "
                       f"objective) above the full {full.fit.n_starts}-start grid's optimum: the other Newton "
                       "variants, started the same way, may stop short of their own optimum too; rerun with a "
                       "larger --screened-starts", (screened.variant.name,))]


@dataclass
class UserSensitivity:
    """Everything computed for one CSV; nothing is written until :func:`write_outputs`."""

    path: Path
    sha256: str
    prepared: runs_input.PreparedRuns
    result: sensitivity.SensitivityResult
    options: dict
    not_applicable: list[dict]
    diagnostics: list[Diagnostic]
    seconds: float
    started: str
    warnings: list[str] = field(default_factory=list)
    envelopes: list = field(default_factory=list)     # approach 1 by each envelope method (AllocationFit)

    def record(self) -> dict:
        """``results.json`` content, as every result serialises (``record()``): each variant's
        record, the spread, what was skipped, the diagnostics, timing and environment."""
        return _results_json(self)

    def summary(self) -> Summary:
        """The variants' allocation exponents (:meth:`SensitivityResult.summary
        <scalerepro.analyses.sensitivity.SensitivityResult.summary>`), titled with the file, with the
        warning and error diagnostics of the whole run added."""
        spread = self.result.summary()
        notes = spread.notes + [f"{d.severity}: {d.message}" for d in self.diagnostics if d.severity != "info"]
        return Summary(f"{spread.title}, on {self.path.name}", spread.rows, notes, level=spread.level)


def sensitivity_runs(path, columns: dict[str, str] | None = None, *, per_nd: str | None = None,
                     checkpoints: str = "all", drop_highest_loss: int = 0, budgets=None, alt_params=None,
                     n_bootstrap: int = N_BOOTSTRAP, n_bootstrap_variants: int = N_BOOTSTRAP_VARIANTS,
                     n_bootstrap_scipy: int = N_BOOTSTRAP_SCIPY, scipy_starts: int = 20,
                     screened_starts: int = sensitivity.SCREENED_STARTS, grid_axes: dict | None = None,
                     seed: int = 0, include_unidentified: bool = False, groups=None,
                     progress: bool = False, client=None, duplicate_rows: str = "error") -> UserSensitivity:
    """Prepare the runs, fit every variant, and compute the spread (see the module doc).

    grid_axes: start-grid axes (a, b, e, alpha, beta lists; default Hoffmann's 4500-point
    grid). groups: only these variant groups (and the default); names as in the report,
    case and ``_``/``-`` for spaces ignored. client: a Dask client or ``--scheduler`` value to fit
    one variant per task on (:func:`scalerepro.analyses.sensitivity.run_variants`). Raises
    :class:`~scalerepro.io.validate.InputError` for bad input, before any fit.
    """
    for name, value in (("n_bootstrap", n_bootstrap), ("n_bootstrap_variants", n_bootstrap_variants),
                        ("n_bootstrap_scipy", n_bootstrap_scipy)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    path = Path(path)
    law = laws.Chinchilla()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prepared = runs_input.prepare_runs(path, law, columns, per_nd=per_nd, checkpoints=checkpoints,
                                           drop_highest_loss=drop_highest_loss, duplicate_rows=duplicate_rows)
        n_column, found = alternative_counts(prepared, alt_params)
        variants, not_applicable = sensitivity.user_variants(prepared, scipy_starts=scipy_starts,
                                                             screened_starts=screened_starts, n_column=n_column)
        if groups:
            variants, not_applicable = select_groups(variants, not_applicable, groups)
        budgets = [float(c) for c in (default_budgets(prepared.frame) if budgets is None else budgets)]
        options = sensitivity.Options(budgets=tuple(budgets), grid_axes=grid_axes, n_bootstrap=n_bootstrap,
                                      n_bootstrap_variants=n_bootstrap_variants,
                                      n_bootstrap_scipy=n_bootstrap_scipy, seed=seed)
        bar = tqdm(total=len(variants), desc="variants", disable=not progress, unit="variant")

        def tick(name):
            bar.set_postfix_str(name[:40])
            bar.update(1)

        result = sensitivity.run_variants(prepared, variants, options, progress=tick, client=client)
        bar.update(bar.total - bar.n)
        bar.close()
    envelope_fits, envelope_notes = envelope_choice(prepared, n_bootstrap=n_bootstrap_variants, seed=seed)
    diagnostics = (list(prepared.diagnostics) + found + screening_check(result, screened_starts)
                   + envelope_notes)
    summary = runs_input.dropped_summary(prepared.dropped, len(prepared.source))
    if summary is not None:  # the rows are listed in results.json under points_dropped
        diagnostics.append(Diagnostic(summary.code, summary.severity, summary.message.replace(
            "fits.main.points_dropped", "points_dropped"), summary.subjects))
    unidentified = [r.variant.name for r in result.results.values() if not r.identified]
    if unidentified:
        diagnostics.append(Diagnostic(
            "not_identified", "warning",
            f"{len(unidentified)} of {len(result.results)} variants are not identified or not fitted by these runs "
            + ("and are included in the spread (--include-unidentified)" if include_unidentified
               else "and are left out of the spread (see each variant's diagnostics; --include-unidentified "
                    "puts them back)") + ": " + "; ".join(unidentified[:8])
            + (f" and {len(unidentified) - 8} more" if len(unidentified) > 8 else ""), tuple(unidentified)))
    runaway = [(r.variant.name, r.identifiability.unbounded) for r in result.results.values()
               if r.identified and r.identifiability is not None and r.identifiability.unbounded]
    if runaway:
        diagnostics.append(Diagnostic(
            "not_identified", "warning",
            f"the bootstraps of {len(runaway)} of {len(result.results)} variants do not bound a parameter (too many "
            "refits ran it to the edge of the parameter space, so its interval reaches that limit; see each "
            "variant's diagnostics): " + "; ".join(f"{name} ({', '.join(params)})" for name, params in runaway[:8])
            + (f" and {len(runaway) - 8} more" if len(runaway) > 8 else ""), tuple(name for name, _ in runaway)))
    return UserSensitivity(
        path=path, sha256=sha256_file(path), prepared=prepared, result=result,
        options={"columns": columns or {}, "duplicate_rows": duplicate_rows, "per_nd": per_nd,
                 "checkpoints": checkpoints,
                 "drop_highest_loss": int(drop_highest_loss), "budgets": budgets, "alt_params": n_column,
                 "n_bootstrap": n_bootstrap, "n_bootstrap_variants": n_bootstrap_variants,
                 "n_bootstrap_scipy": n_bootstrap_scipy, "scipy_starts": scipy_starts,
                 "screened_starts": screened_starts, "seed": seed, "include_unidentified": include_unidentified,
                 "groups": list(groups) if groups else "all",
                 "start_grid": "Hoffmann et al. (4500 points)" if grid_axes is None else grid_axes},
        not_applicable=not_applicable, diagnostics=sorted_by_severity(diagnostics),
        seconds=time.perf_counter() - t0, started=started, warnings=list(prepared.notes), envelopes=envelope_fits)


# ----------------------------------------------------------------------------- records
def spread_records(table: pd.DataFrame, budgets, include_unidentified: bool) -> dict:
    """Max / min of N_opt and tokens per parameter at each budget over the variants in the
    spread, overall and for each group together with the default."""
    out = {"budgets": [], "by_group": [], "include_unidentified": include_unidentified}
    groups = [g for g in dict.fromkeys(table["group"]) if g != "default"]
    for c in budgets:
        entry = {"C": c}
        for q in ("N_opt", "tokens_per_param"):
            entry[q] = sensitivity.spread(table, f"{q}@{sensitivity.budget_key(c)}",
                                          only_identified=not include_unidentified)
        out["budgets"].append(entry)
    middle = budgets[len(budgets) // 2]
    column = f"tokens_per_param@{sensitivity.budget_key(middle)}"
    for g in groups:
        sub = table[(table["group"] == g) | (table["variant"] == "default")]
        s = sensitivity.spread(sub, column, only_identified=not include_unidentified)
        out["by_group"].append({"group": g, "C": middle, "variants": int(len(sub) - 1), **s})
    return out


def status(default) -> str:
    """The analysis' status, the report's and ``--strict``'s: that of its default fit, the
    baseline every variant is measured against: "not identified" when the fit's checks say
    so or its bootstrap does not bound a parameter, else "ok"."""
    if default is None:
        return "not identified"
    return "ok" if default.identified and default.row.get("bounded", True) else "not identified"


def _results_json(us: UserSensitivity) -> dict:
    result = us.result
    budgets = list(result.budgets)
    include = us.options["include_unidentified"]
    table = result.table
    spread = spread_records(table, budgets, include)
    excluded = set(spread["budgets"][0]["tokens_per_param"]["excluded"]) if spread["budgets"] else set()
    records = [vr.record(budgets, in_spread=vr.variant.name not in excluded)
               for vr in result.results.values()]
    default = result.results.get("default")
    frame = us.prepared.source
    n_runs = int(runs_input.run_labels(frame).nunique())
    out = {
        "kind": "sensitivity", "title": f"Sensitivity of the compute-optimal allocation: {us.path.name}",
        "replication": None, "status": status(default),
        "purpose": ("The (Mis)Fitting survey's fitting choices, one at a time, on these runs: how far does each "
                    "move the compute-optimal allocation? A variant the data do not identify is listed but left "
                    "out of the spread" + (" (included here: --include-unidentified)" if include else "") + "."),
        "data": [{"dataset": "user", "file": str(us.path.resolve()), "sha256": us.sha256, "rows": len(frame),
                  "runs": n_runs, "columns": frame.attrs.get("roles", {})}],
        "options": us.options,
        "selection": us.prepared.selection_record(),
        "points_dropped": us.prepared.dropped,
        "budgets": budgets,
        "default": next((r for r in records if r["variant"] == "default"), None),
        "variants": records,
        "skipped": result.skipped + us.not_applicable,
        "spread": spread,
        "approach1_envelopes": [userapproaches.record(f) for f in us.envelopes],
        "diagnostics": [d.record() for d in us.diagnostics],
        "warnings": list(us.warnings),
        "timing": {"start": us.started, "seconds": round(us.seconds, 3),
                   "default_fit_seconds": round(default.fit.seconds, 3) if default and default.fit else None},
        "environment": environment(),
    }
    return json_safe(out)


def figures(us: UserSensitivity) -> list[dict]:
    """The report's figures: the allocation across variants at the middle budget."""
    from ..publishing.sensitivity_figures import allocation_figure, to_data_uri

    budgets = list(us.result.budgets)
    middle = budgets[len(budgets) // 2]
    fig = allocation_figure(us.result.table, middle, title=f"One fitting choice at a time ({us.path.name})")
    return [{"name": "allocation", "uri": to_data_uri(fig),
             "caption": f"Compute-optimal N and tokens per parameter at C = {middle:.3g} FLOP for each variant "
                        "(log scale), with bootstrap 95% intervals; the default is the star and the dashed line; "
                        "hollow markers are variants the diagnostics say not to use."}]


def write_outputs(us: UserSensitivity, out_dir) -> dict:
    """Write ``out_dir/report.html`` and ``out_dir/results.json``; both are rendered in
    memory first, so an error leaves nothing half-written."""
    from ..publishing.report import render_sensitivity_report
    results = us.record()
    html = render_sensitivity_report(results, figures(us))
    write_report_and_results(out_dir, html, results)
    return results


def run(path, out_dir, **options) -> dict:
    """The whole ``scalerepro sensitivity``: :func:`sensitivity_runs` then :func:`write_outputs`."""
    return write_outputs(sensitivity_runs(path, **options), out_dir)


# ----------------------------------------------------------------------------- approach 1's envelope
def envelope_choice(prepared: runs_input.PreparedRuns, *, n_bootstrap: int, seed: int) -> tuple[list, list]:
    """Approach 1 on the default's rows by each envelope method (Hoffmann's grid, McLeish et
    al.'s lower convex hull), side by side: a fitting choice of approach 1 that moves its
    exponent (:func:`scalerepro.analyses.approaches.approach1`). Returns ``(fits,
    diagnostics)``; when approach 1 cannot be made on these rows, no fits and one info
    diagnostic saying why."""
    from ..analyses import approaches

    runs = prepared.frame[[c for c in ("N", "D", "C", "loss", "run") if c in prepared.frame.columns]]
    fits = []
    try:
        for method in approaches.ENVELOPES:
            fits.append(approaches.approach1(runs, envelope=method, n_resamples=n_bootstrap, seed=seed))
    except approaches.ApproachError as exc:
        return [], [Diagnostic("envelope_choice", "info", f"approach 1's envelope choice not shown: {exc}", ())]
    a = {f.envelope: f.a for f in fits}
    return fits, [Diagnostic(
        "envelope_choice", "info",
        f"approach 1's envelope is a fitting choice: a = {a['grid']:.4f} by the per-compute grid minimum, "
        f"{a['lower_hull']:.4f} by the lower convex hull (approach1_envelopes in results.json)", ("envelope",))]

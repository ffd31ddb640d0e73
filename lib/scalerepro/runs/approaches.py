"""Chinchilla's three approaches on a user's runs: ``scalerepro fit --approach 1|2|3|all``.

Approach 3 is the careful parametric fit :mod:`scalerepro.runs.fit` makes anyway; approaches
1 (lower envelope) and 2 (IsoFLOP profiles) come from :mod:`scalerepro.analyses.approaches`. This
module is the glue between the CSV and those functions: which roles each approach needs
(and one error naming the column and the option that supplies a missing one), which rows
it sees, and how its results and diagnostics are recorded beside the fit's.

Every approach sees the same rows: those the fit's options chose (``--duplicate-rows``, ``--per-nd``,
``--checkpoints``, ``--drop-highest-loss``, and ``--holdout`` with ``all``), so a
disagreement between approaches is about the method, not the data. Within them:

- approach 1 needs N, loss and C or D (the other derived under C = 6ND, recorded as a
  ``derived_compute`` diagnostic); ``--envelope grid`` (the default) takes Hoffmann's
  per-compute minimum -- with a ``run`` column and several rows per run over the
  interpolated training curves, otherwise per compute bin -- and ``--envelope lower_hull``
  McLeish et al.'s lower convex hull of all checkpoints. ``--approach all`` without
  ``--envelope`` shows both, since the choice moves the exponent;
- approach 2 needs each row's IsoFLOP budget: a ``budget`` column, or ``--budgets`` to put
  every row on the nearest listed budget in log C. A row more than
  :data:`MAX_BUDGET_RATIO` from every listed budget is left out with a warning naming its
  line rather than refused: a sweep file often holds runs of another design (the runs of
  an approach-3 grid, a pilot), which approaches 1 and 3 still use, and refusing the file
  would make the user split it; the warning still shows a budget missing from the list.
  With a budget column, rows more than that factor from their own budget (a run's early
  checkpoints, or a budget that does not match C) are left out the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analyses import approaches
from ..analyses.approaches import ApproachError
from ..diagnostics import Diagnostic
from ..io.validate import InputError

CHOICES = ("1", "2", "3", "all")
#: A row farther than this factor in C from its IsoFLOP budget is not on that slice.
MAX_BUDGET_RATIO = 1.5
SHORT_NAMES = {1: "1 lower envelope", 2: "2 IsoFLOP profiles", 3: "3 parametric fit"}


def selected(choice: str) -> tuple[int, ...]:
    """``"all"`` -> (1, 2, 3); ``"2"`` -> (2,)."""
    if choice not in CHOICES:
        raise ValueError(f"--approach must be one of {', '.join(CHOICES)}, got {choice!r}")
    return (1, 2, 3) if choice == "all" else (int(choice),)


def parse_budgets(text: str) -> list[float]:
    """``"6e18,3e19,1e20"`` -> sorted FLOP values; ValueError naming a bad entry."""
    values = []
    for item in str(text).split(","):
        if not item.strip():
            continue
        try:
            value = float(item)
        except ValueError:
            value = float("nan")
        if not (0 < value < float("inf")):
            raise ValueError(f"--budgets expects positive FLOP values separated by commas, e.g. 6e18,3e19; "
                             f"got {item.strip()!r}")
        values.append(value)
    if not values:
        raise ValueError("--budgets is empty; give the IsoFLOP budgets in FLOPs, e.g. --budgets 6e18,3e19,1e20")
    if len(set(values)) < len(values):
        raise ValueError(f"--budgets lists a budget twice: {text}")
    return sorted(values)


def extra_roles(chosen, isoflop_budgets) -> tuple[str, ...]:
    """Roles to require of the file beyond the law's: ``budget`` for approach 2 without
    ``--budgets`` (its absence is then one error naming the role and both options)."""
    return ("budget",) if 2 in chosen and not isoflop_budgets else ()


def _role_frame(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in ("N", "D", "C", "loss", "run", "step", "budget", "line") if c in frame.columns]
    return frame[keep]


def _derived_note(frame: pd.DataFrame, chosen) -> list[Diagnostic]:
    derived = frame.attrs.get("derived") or []
    names = ", ".join(f"approach {a}" for a in chosen if a in (1, 2))
    if not names:
        return []
    if "C" in derived:
        text = "the file gives no training FLOPs: C = 6ND is computed from N and D"
    elif "D" in derived:
        text = "the file gives no training tokens: D = C / (6N) is computed from C and N"
    else:
        return []
    return [Diagnostic("derived_compute", "info", f"{names}: {text}", ("C" if "C" in derived else "D",))]


def _off_budget(runs: pd.DataFrame, path) -> tuple[pd.DataFrame, list[Diagnostic]]:
    """With a budget column: leave out rows whose C is more than MAX_BUDGET_RATIO from
    their budget (a run's early checkpoints; a budget that does not match C)."""
    gap = np.abs(np.log(runs["C"].to_numpy() / runs["budget"].to_numpy()))
    off = gap > np.log(MAX_BUDGET_RATIO)
    if not off.any():
        return runs, []
    rows = runs[off]
    finals = rows
    if "run" in runs.columns:   # a checkpoint before a run's last row is expected to be off
        last = runs.groupby("run")["C"].transform("max")
        finals = rows[rows["C"] >= last[off]]
    names = [f"line {int(v)}" for v in rows["line"]] if "line" in rows.columns else [str(i) for i in rows.index]
    if len(rows) == len(runs):
        raise InputError(str(path), ["approach 2: every row's C is more than "
                                     f"{MAX_BUDGET_RATIO:g}x from its budget column: is the budget column "
                                     "in FLOPs, and the right column? (or give --budgets C1,C2,...)"])
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    which = (f"{len(finals)} of them a run's last row" if len(finals)
             else "all of them earlier checkpoints of their runs")
    return runs[~off], [Diagnostic(
        "dropped_points", "warning" if len(finals) else "info",
        f"approach 2: {len(rows)} row(s) have C more than {MAX_BUDGET_RATIO:g}x from their budget and are left "
        f"out of the IsoFLOP slices ({which}): {shown}", tuple(names[:50]))]


def _tagged(fit: approaches.AllocationFit) -> list[Diagnostic]:
    """The approach's diagnostics for the fit's list, each message saying which approach."""
    return [Diagnostic(d.code, d.severity, f"{fit.name}: {d.message}", d.subjects) for d in fit.diagnostics]


def envelopes(chosen, envelope: str | None) -> tuple[str, ...]:
    """Approach 1's envelope methods to run: the one asked for; without ``--envelope`` the
    default alone for ``--approach 1`` and both side by side for ``all``."""
    if 1 not in chosen:
        if envelope is not None:
            raise ValueError("--envelope chooses approach 1's envelope; use --approach 1 or all")
        return ()
    if envelope is not None:
        if envelope not in approaches.ENVELOPES:
            raise ValueError(f"--envelope must be one of {', '.join(approaches.ENVELOPES)}, got {envelope!r}")
        return (envelope,)
    return approaches.ENVELOPES if len(chosen) > 1 else (approaches.DEFAULT_ENVELOPE,)


def run(prepared, chosen, *, isoflop_budgets=None, n_bootstrap: int = 1000, seed: int = 0, law_fit=None,
        boot=None, progress: bool = False, envelope: str | None = None) -> tuple[list, list[Diagnostic]]:
    """The approaches in ``chosen`` on the rows the fit's options chose
    (``prepared.frame``: a :class:`scalerepro.io.runs_input.PreparedRuns`). Approach 3 is
    taken from the fit already made (``law_fit`` and its ``boot``), not refitted. Returns
    ``(AllocationFit list in approach order, diagnostics for the fit's list)``; an approach
    that cannot be made raises :class:`InputError` naming the file and what is wrong."""
    path = prepared.path or "<runs>"
    frame = prepared.frame
    runs = _role_frame(frame)
    fits, diagnostics = [], _derived_note(prepared.source, chosen)
    try:
        for method in envelopes(chosen, envelope):
            fits.append(approaches.approach1(runs.drop(columns="budget", errors="ignore"), envelope=method,
                                             n_resamples=n_bootstrap, seed=seed, progress=progress))
        if 2 in chosen:
            if isoflop_budgets:
                fit = approaches.approach2(runs.drop(columns="budget", errors="ignore"), budgets=isoflop_budgets,
                                           max_ratio=MAX_BUDGET_RATIO, n_resamples=n_bootstrap, seed=seed,
                                           progress=progress)
            else:
                on_budget, notes = _off_budget(runs, path)
                diagnostics += notes
                fit = approaches.approach2(on_budget, n_resamples=n_bootstrap, seed=seed, progress=progress)
            fits.append(fit)
        if 3 in chosen:
            fits.append(approaches.from_law_fit(law_fit, boot, runs))
    except ApproachError as exc:
        raise InputError(str(path), [str(exc)]) from None
    for fit in fits:
        if fit.approach != 3:   # approach 3's findings are the fit's own, already in the list
            diagnostics += _tagged(fit)
    return fits, diagnostics


def record(fit: approaches.AllocationFit) -> dict:
    """One entry of results.json's ``approaches`` list."""
    rec = fit.record()
    iv = rec.pop("intervals") or {}
    out = {"approach": fit.approach, "envelope": fit.envelope, "name": fit.name, "a": fit.a, "a_interval": iv.get("a"), "b": fit.b,
           "b_interval": iv.get("b"), "level": fit.level if iv else None,
           "interval_method": fit.method.get("interval"), "no_interval_reason": fit.no_interval_reason,
           "points_used": rec["points_used"], "points_dropped": rec["points_dropped"],
           "points_kind": points_kind(fit), "k_N": rec["k_N"], "k_D": rec["k_D"], "method": rec["method"],
           "bootstrap": rec["bootstrap"], "diagnostics": rec["diagnostics"]}
    if fit.approach != 3:       # approach 3's points are the fitted rows, recorded with the fit
        out["points"] = rec["points"]
    return out


def points_kind(fit) -> str:
    if fit.envelope == "lower_hull":
        return "hull points"
    return {1: "envelope points", 2: "budgets", 3: "rows"}[fit.approach]


def short_name(record: dict) -> str:
    """The terminal table's name of one approach record ("1 lower convex hull" for the hull)."""
    return "1 lower convex hull" if record.get("envelope") == "lower_hull" else SHORT_NAMES[record["approach"]]


def table_rows(records: list[dict]) -> list[dict]:
    """Rows of the terminal table: a and b with their intervals, side by side."""
    def iv(r, q):
        v = r[f"{q}_interval"]
        return "none" if v is None else f"[{v[0]:.4f}, {v[1]:.4f}]"
    return [{"approach": short_name(r), "a": f"{r['a']:.4f}", "a interval": iv(r, "a"),
             "b": f"{r['b']:.4f}", "b interval": iv(r, "b"),
             "points": f"{r['points_used']} {r['points_kind']}",
             "interval": (r["interval_method"] or "none").split(",")[0]} for r in records]


TABLE_COLUMNS = ["approach", "a", "a interval", "b", "b interval", "points", "interval"]

"""A user's CSV of runs in, the points that enter a fit out: one code path for every analysis.

Real sweeps are not one row per design point. A learning-rate sweep has several runs per
(N, D); seeds and reruns repeat a point; runs log checkpoints; a protocol may drop the
highest losses. Each of these is a choice that moves the fit, so none is made silently:
:func:`prepare_runs` applies the user's options and returns a :class:`PreparedRuns` with
the rows that enter the fit, every dropped row with its reason and file line, the
diagnostics about the choices, and the groups a bootstrap must resample together.
``scalerepro fit`` uses it, and so do the analyses that vary these choices (sensitivity)
or fit the same runs another way (the approaches), so a choice means the same everywhere.

Roles (``--columns ROLE=COLUMN``): ``N`` parameters; ``D`` training tokens or ``C``
training FLOPs (D = C / 6N); ``loss``; optional ``run`` (a run id shared by a run's
checkpoints; a column named ``run_id`` or ``run`` is recognised) and ``step`` (orders a
run's checkpoints). Any other column (learning rate, seed, ...) is kept and reported when
it is what distinguishes runs at the same (N, D).

Options:

- ``duplicate_rows``: rows of one run that repeat a checkpoint (the same run and the same
  (N, D, C) or the same step), as resumed or restarted jobs log them. ``error`` (the default)
  refuses them, naming ``--duplicate-rows``; ``last`` keeps the later row (larger step, then
  later in the file), ``first`` the earlier one, ``mean`` averages their losses on the earlier
  row's line. Every other row is recorded as dropped with the line kept; repeats whose losses
  disagree beyond the run's checkpoint-to-checkpoint noise are a warning.
- ``per_nd``: what to do with several runs at one (N, D) design point. ``None`` refuses
  (an error counting every group); ``best`` keeps the run with the lowest final loss (the
  others are dropped with that reason); ``mean`` averages the replicates row by row;
  ``all`` keeps every row and makes the bootstrap resample (N, D) groups.
- ``checkpoints``: ``all`` (every row of a run enters; the bootstrap resamples whole runs)
  or ``final`` (each run's last row: largest step, else largest D).
- ``drop_highest_loss``: drop the K highest losses (the Chinchilla protocol drops 5).
- :func:`split_holdout` holds out the largest-compute runs, never splitting runs tied at
  the boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..core import laws, optimal
from ..diagnostics import Diagnostic
from .validate import InputError, read_runs_csv

ROLES = {"N": "model size in parameters", "D": "training tokens", "C": "training FLOPs (6ND)",
         "loss": "loss in nats per token", "run": "run id shared by a run's checkpoints",
         "step": "training step (orders a run's checkpoints)",
         "budget": "IsoFLOP budget in FLOPs the run was planned at (approach 2)"}
ROLES["U"] = "unique training tokens (the data-constrained law; D / U = epochs)"
RUN_ID_NAMES = ("run_id", "run")   # recognised as the run role without --columns
PER_ND = ("best", "mean", "all")
DUPLICATE_ROWS = ("error", "last", "first", "mean")
#: Repeats of one checkpoint whose losses spread by more than this many times their run's
#: checkpoint-to-checkpoint noise are a warning (see _disagreeing_repeats).
REPEAT_DISAGREES = 4.0
CHECKPOINTS = ("final", "all")
HOLDOUT_KINDS = ("largest-compute",)
#: Column names sweeps commonly use for each role, for the suggestions of a missing role.
COMMON_NAMES = {
    "N": ("params", "n_params", "num_params", "nparams", "model_size", "model_params", "parameters",
          "param_count", "non_embedding_params", "size"),
    "D": ("tokens", "n_tokens", "num_tokens", "train_tokens", "training_tokens", "token_num",
          "tokens_seen", "data", "dataset_size"),
    "C": ("flops", "compute", "train_flops", "training_flop", "training_flops", "total_flops"),
    "loss": ("val_loss", "eval_loss", "validation_loss", "valid_loss", "test_loss", "final_loss",
             "train_loss", "loss"),
    "run": ("run_name", "name", "run", "run_id", "id", "model"),
    "step": ("step", "steps", "global_step", "iteration", "iter", "checkpoint"),
    "budget": ("budget", "flops_budget", "compute_budget", "isoflop", "isoflop_budget", "target_flops",
               "budget_flops"),
}
COMMON_NAMES["U"] = ("unique", "unique_tokens", "n_unique_tokens", "unique_data", "tokens_per_epoch", "U_D")
# Relative tolerance for "the same" N, D or compute (values written with ~10 digits).
SAME = 1e-9
TIED = 1e-6
HYPERPARAMETER_NAMES = re.compile(r"lr|learn|rate|decay|wd|warmup|batch|beta|momentum|dropout|clip", re.I)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def parse_columns(text: str | None) -> dict[str, str]:
    """``"N=params,D=tokens,loss=val_loss,run=name"`` -> ``{"params": "N", ...}``
    (column in the file -> role). Raises ValueError naming the bad entry."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        role, sep, column = (s.strip() for s in item.partition("="))
        if not sep or not role or not column:
            raise ValueError(f"--columns expects ROLE=COLUMN pairs separated by commas, got {item!r}")
        if role not in ROLES:
            raise ValueError(f"--columns: unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        if role in mapping.values():
            raise ValueError(f"--columns: role {role!r} is given twice")
        mapping[column] = role
    return mapping


def parse_holdout(text: str | None) -> int:
    """``"largest-compute:K"`` -> K (0 when not given)."""
    if text is None or text.strip() in ("", "none", "0"):
        return 0
    kind, sep, k = text.partition(":")
    if kind not in HOLDOUT_KINDS or not sep or not k.strip().isdigit():
        raise ValueError(f"--holdout expects largest-compute:K with K a whole number, got {text!r}")
    return int(k)


def check_options(per_nd=None, checkpoints="all", drop_highest_loss=0, duplicate_rows="error") -> None:
    if duplicate_rows not in DUPLICATE_ROWS:
        raise ValueError(f"--duplicate-rows must be one of {', '.join(DUPLICATE_ROWS)}, got {duplicate_rows!r}")
    if per_nd is not None and per_nd not in PER_ND:
        raise ValueError(f"--per-nd must be one of {', '.join(PER_ND)}, got {per_nd!r}")
    if checkpoints not in CHECKPOINTS:
        raise ValueError(f"--checkpoints must be one of {', '.join(CHECKPOINTS)}, got {checkpoints!r}")
    if int(drop_highest_loss) != drop_highest_loss or drop_highest_loss < 0:
        raise ValueError(f"--drop-highest-loss must be a whole number >= 0, got {drop_highest_loss!r}")


# ----------------------------------------------------------------------------- reading
def suggest_columns(role: str, header) -> list[str]:
    """Columns of ``header`` a sweep commonly uses for ``role`` (best guesses first)."""
    normal = {_normal(c): c for c in header}
    found = [normal[_normal(name)] for name in COMMON_NAMES.get(role, ()) if _normal(name) in normal]
    if role == "loss":
        found += [c for c in header if "loss" in str(c).lower()]
    return list(dict.fromkeys(found))


def _missing_roles_error(path, header, missing: list[str], columns: dict[str, str]) -> InputError:
    """One error for every role the file does not provide, with suggestions and CLI syntax."""
    problems, example = [], []
    mapped = {r: c for c, r in columns.items()}
    for role in missing:
        guesses = [c for c in suggest_columns(role, header) if c not in columns]
        if role in mapped:
            problem = f"role {role} ({ROLES[role]}) is mapped to {mapped[role]!r}, which is not a column of the file"
        else:
            problem = f"no column for role {role} ({ROLES[role]})"
            if role == "D":
                problem += " or C (training FLOPs; D = C / 6N)"
            if role == "budget":
                problem += ("; approach 2 needs it: map it with --columns budget=COLUMN, or give "
                            "--budgets C1,C2,... to put each run on the nearest listed budget")
        if guesses:
            problem += "; likely: " + " or ".join(repr(g) for g in guesses[:3])
        problems.append(problem)
        example.append(f"{role}={guesses[0] if guesses else '<column>'}")
    if "run" not in mapped and not any(c in header for c in RUN_ID_NAMES):
        run_guess = [c for c in suggest_columns("run", header) if c not in columns]
        if run_guess:
            example.append(f"run={run_guess[0]}")
    present = ", ".join(repr(c) for c in header[:20]) + (" ..." if len(header) > 20 else "")
    example_text = ",".join(example)
    if any("," in part or " " in part for part in example):
        example_text = f'"{example_text}"'
    problems.append(f"map roles to the file's columns with --columns ROLE=COLUMN,... e.g. --columns {example_text} "
                    f"(roles: N parameters; D tokens or C FLOPs; loss; optional run and step); "
                    f"columns present: {present}")
    return InputError(str(path), problems)


def read_runs(path, law: laws.Law, columns: dict[str, str] | None = None, *, extra_roles=()) -> pd.DataFrame:
    """The validated table with columns named by role (N, D, C, loss, run, step) and
    ``line`` (the file line of each row, header = line 1), other columns kept as they are.

    D is derived as C / (6N) when the law needs D and the file gives FLOPs instead; C is
    derived as 6ND when absent (it decides the hold-out); ``frame.attrs["derived"]`` names
    what was derived. ``extra_roles`` are required beyond the law's (e.g. ``budget`` for
    approach 2); ``budget`` is read only when asked, so a file's own column of that name is
    otherwise kept as it is. Rows sharing one run id must have one N. Raises
    :class:`InputError` naming the file, line and column.
    """
    path = Path(path)
    columns = dict(columns or {})
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception:  # read_runs_csv below reports why the file cannot be read
        header = None
    if header is not None:
        present = {columns.get(c, c) for c in header if c in columns or c in ROLES}
        if "run" not in present:
            found = next((c for c in RUN_ID_NAMES if c in header and c not in columns), None)
            if found:
                columns[found] = "run"
                present.add("run")
        needed = _roles_of(law)
        if "D" in needed and "D" not in present and "C" in present:
            needed = [("C" if r == "D" else r) for r in needed]
        if "C" in needed and "C" not in present and {"N", "D"} <= present:
            needed = [r for r in needed if r != "C"] + ["N", "D"]  # C = 6ND, derived below
        needed += [r for r in extra_roles if r not in needed]
        missing = [r for r in [*needed, "loss"] if r not in present]
        if missing and len(header) > 1:
            raise _missing_roles_error(path, header, missing, columns)
    else:
        present, needed = set(), _roles_of(law)
    required = {r: ROLES[r] for r in needed}
    required["loss"] = ROLES["loss"]
    optional = [r for r in ("N", "D", "C", "step") if r in present and r not in required]
    required.update({r: ROLES[r] for r in optional})
    text = ()
    if "run" in present:
        required["run"] = ROLES["run"]
        text = ("run",)
    positive = [r for r in required if r not in ("run", "step")]
    # rows repeating a run's checkpoint are found, and refused or resolved, by select_runs (--duplicate-rows)
    frame = read_runs_csv(path, columns, required=required, positive=positive, text=text, unique=(),
                          run_id=None)
    derived = []
    if "D" not in frame.columns and {"C", "N"} <= set(frame.columns):
        frame["D"] = optimal.tokens_from_flops(frame["C"], frame["N"])
        derived.append("D")
    if "C" not in frame.columns and {"N", "D"} <= set(frame.columns):
        frame["C"] = optimal.training_flops(frame["N"], frame["D"])
        derived.append("C")
    if "M" in law.inputs:  # a law in (N, M): the token multiplier is derived, never read
        if "M" in frame.columns:
            raise InputError(str(path), ["column 'M' clashes with the token multiplier M = D/N that form "
                                         f"{law.name} derives; rename it"])
        frame["M"] = frame["D"] / frame["N"]
        derived.append("M")
    if "run" in frame.columns:
        frame["run"] = frame["run"].astype(str)
    frame["line"] = frame.index + 2
    frame.attrs["derived"] = derived
    frame.attrs["design_extra"] = ["U"] if "U" in law.inputs else []
    frame.attrs["roles"] = {role: next((c for c, r in columns.items() if r == role), role)
                            for role in ROLES if role in frame.columns}
    if "run" in frame.columns and "N" in frame.columns:
        _check_runs_have_one_size(frame, path)
    return frame


def _roles_of(law: laws.Law) -> list[str]:
    """The roles a law's inputs need: its inputs, with a token multiplier M read as N and D."""
    needed = [r for r in law.inputs if r != "M"]
    return needed + [r for r in ("N", "D") if "M" in law.inputs and r not in needed]


def _check_runs_have_one_size(frame: pd.DataFrame, path) -> None:
    sizes = frame.groupby("run")["N"].agg(lambda n: n.max() / n.min() - 1)
    mixed = sizes[sizes > SAME].index
    if len(mixed):
        column = frame.attrs["roles"]["run"]
        examples = []
        for run in mixed[:3]:
            lines = frame.loc[frame["run"] == run, "line"].tolist()
            examples.append(f"{run!r} (lines {', '.join(map(str, lines[:6]))}{' ...' if len(lines) > 6 else ''})")
        raise InputError(str(path), [f"column {column!r} (run): {len(mixed)} run id(s) have rows with different N, "
                                     f"e.g. {'; '.join(examples)}: a run id must name one training run (its "
                                     "checkpoints); if this column is not a run id, map the run role to the "
                                     "right column with --columns run=COLUMN"])


# ----------------------------------------------------------------------------- selection
@dataclass
class PreparedRuns:
    """The rows that enter a fit, and the record of how they were chosen."""

    frame: pd.DataFrame                 # rows entering the fit; columns by role + "line" + extras
    dropped: list[dict]                 # {"index", "line", "reason", ...} per row left out
    diagnostics: list[Diagnostic]
    groups: np.ndarray | None           # bootstrap group label per row of frame, or None (points)
    unit: str                           # what one bootstrap draw is: "points", "whole runs", ...
    options: dict                       # per_nd, checkpoints, drop_highest_loss (and holdout)
    source: pd.DataFrame                # every row read, validated
    path: Path | None = None
    held: pd.DataFrame | None = None    # rows held out for validation (split_holdout)
    notes: list[str] = field(default_factory=list)

    @property
    def resampling(self) -> str:
        """What the bootstrap resamples, in words (recorded as the bootstrap's resampling)."""
        if self.groups is None:
            return "points"
        return f"{self.unit} (cluster): {len(np.unique(self.groups))} groups"

    @property
    def runs(self) -> pd.Series:
        """Each row's run: its run id, or its own line when the file has no run ids."""
        return _run_labels(self.frame)

    def all_diagnostics(self) -> list[Diagnostic]:
        """The selection's diagnostics plus one summary of what was dropped and why."""
        summary = dropped_summary(self.dropped, len(self.source))
        return [*self.diagnostics, *([summary] if summary else [])]

    def selection_record(self) -> dict:
        """What the fit record and the checklist say about which points entered the fit."""
        return {"rows_read": int(len(self.source)), "rows_used": int(len(self.frame)),
                "rows_held_out": int(0 if self.held is None else len(self.held)),
                "duplicate_rows": self.options.get("duplicate_rows", "error"),
                "per_nd": self.options.get("per_nd"), "checkpoints": self.options.get("checkpoints"),
                "drop_highest_loss": int(self.options.get("drop_highest_loss") or 0),
                "holdout": self.options.get("holdout"), "bootstrap_resamples": self.resampling,
                "dropped_by_reason": _reason_counts(self.dropped)}


def run_labels(frame: pd.DataFrame) -> pd.Series:
    """Each row's run: its run id, or its own line when the file has no run ids."""
    return _run_labels(frame)


def final_rows(frame: pd.DataFrame) -> pd.Series:
    """True for each run's last row (largest step, else largest D, else largest C)."""
    return _final_rows(frame)


def swept_columns(frame: pd.DataFrame) -> list[str]:
    """Extra numeric columns named like a hyperparameter (learning rate, ...) that differ
    between runs at the same (N, D): what a sweep varied."""
    design = _design_key(frame)
    return [c for c in _varying_columns(frame, design, frame.attrs.get("roles", {}).values())
            if HYPERPARAMETER_NAMES.search(str(c)) and pd.api.types.is_numeric_dtype(frame[c])]


def _run_labels(frame: pd.DataFrame) -> pd.Series:
    if "run" in frame.columns:
        return frame["run"].astype(str)
    return ("line " + frame["line"].astype(str)).rename("run")


def _key(values) -> np.ndarray:
    """Values rounded to 10 significant digits: equal for the same design point written
    twice, or derived twice (D = C / 6N)."""
    return np.array([float(f"{v:.10g}") for v in np.asarray(values, float)])


def _reason_counts(dropped: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dropped:
        out[d["reason"]] = out.get(d["reason"], 0) + 1
    return out


def dropped_summary(dropped: list[dict], n_rows: int) -> Diagnostic | None:
    """One ``dropped_points`` info: how many rows did not enter the fit, by reason."""
    if not dropped:
        return None
    reasons = "; ".join(f"{n} {why}" for why, n in _reason_counts(dropped).items())
    lines = sorted(d["line"] for d in dropped)
    return Diagnostic("dropped_points", "info",
                      f"{len(dropped)} of {n_rows} rows do not enter the fit: {reasons} "
                      "(each listed with its line in results.json, fits.main.points_dropped)",
                      tuple(f"line {n}" for n in lines[:50]))


def _final_rows(frame: pd.DataFrame) -> pd.Series:
    """True for each run's last row (largest step, else largest D, else largest C)."""
    order = "step" if "step" in frame.columns else "D" if "D" in frame.columns else "C"
    runs = _run_labels(frame)
    return frame[order] == frame[order].groupby(runs).transform("max")


def _design_key(frame: pd.DataFrame) -> pd.Series:
    """A run's design point as text: (N, D) of its final row (and U, the unique tokens, when
    the law reads them: runs at one (N, D) on different U are then distinct), or C."""
    cols = [c for c in ("N", "D") if c in frame.columns] or ["C"]
    cols += [c for c in frame.attrs.get("design_extra", ()) if c in frame.columns]
    final = frame[_final_rows(frame)]
    runs = _run_labels(final)
    keys = pd.Series([", ".join(f"{c}={v:.10g}" for c, v in zip(cols, vals))
                      for vals in zip(*(_key(final[c]) for c in cols))], index=final.index)
    per_run = pd.Series(keys.to_numpy(), index=runs.to_numpy())
    per_run = per_run[~per_run.index.duplicated()]
    return _run_labels(frame).map(per_run)


def _short(key: str) -> str:
    """A design key for messages: its numbers to 4 significant digits."""
    return re.sub(r"=([0-9.eE+-]+)", lambda m: f"={float(m.group(1)):.4g}", key)


def _lines_text(lines, limit: int = 6) -> str:
    lines = sorted(int(n) for n in lines)
    return ", ".join(map(str, lines[:limit])) + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def _varying_columns(frame: pd.DataFrame, design: pd.Series, roles) -> list[str]:
    """Extra columns that differ between runs at the same design point (what was swept).

    Not a role's column, nor one set aside for a role's explicit mapping (``loss (file)``),
    nor an exact copy of a role's column (a second loss column equal to the loss): runs
    always differ in their loss, which says nothing about what was swept."""
    aside = set(frame.attrs.get("set_aside", {}).values())
    extras = [c for c in frame.columns if c not in (*ROLES, "line") and c not in roles and c not in aside
              and not _copies_a_role(frame, c)]
    varying = []
    for c in extras:
        if frame.groupby(design.to_numpy())[c].nunique(dropna=False).max() > 1:
            varying.append(c)
    return varying


def _copies_a_role(frame: pd.DataFrame, column) -> bool:
    """Whether ``column`` holds the same values as a role's column on every row (numbers
    to the relative :data:`SAME` that makes two writings of one value equal)."""
    values = frame[column]
    for role in (r for r in ROLES if r in frame.columns):
        other = frame[role]
        if values.astype(str).equals(other.astype(str)):
            return True
        a, b = pd.to_numeric(values, errors="coerce"), pd.to_numeric(other, errors="coerce")
        if a.notna().all() and b.notna().all() and np.allclose(a, b, rtol=SAME, atol=0):
            return True
    return False


def _duplicate_error(frame: pd.DataFrame, design: pd.Series, dup: pd.Series, path) -> InputError:
    runs = _run_labels(frame)
    final = frame[_final_rows(frame)]
    groups = final.groupby(design[final.index].to_numpy(), sort=False)
    shown = []
    for key, g in list(((k, g) for k, g in groups if g.shape[0] > 1))[:3]:  # in file order
        shown.append(f"lines {_lines_text(g['line'], 4)} at {_short(key)}")
    n_groups = int(dup.sum())
    n_runs = int(runs[design.isin(dup[dup].index)].nunique())
    swept = _varying_columns(frame, design, frame.attrs.get("roles", {}).values())
    what = f" (they differ in {', '.join(repr(c) for c in swept[:4])})" if swept else ""
    more = f"; and {n_groups - len(shown)} more group(s)" if n_groups > len(shown) else ""
    return InputError(str(path), [
        f"several runs per (N, D): {n_runs} runs share their (N, D) design point with another run, in "
        f"{n_groups} group(s){what}: {'; '.join(shown)}{more}. A hyperparameter sweep, reruns or seeds? "
        "Choose how they enter the fit: --per-nd best (keep the lowest-loss run of each (N, D); the others "
        "are recorded as dropped), --per-nd mean (average the replicates), or --per-nd all (keep every row; "
        "the bootstrap then resamples whole (N, D) groups)"])


def select_runs(frame: pd.DataFrame, *, per_nd: str | None = None, checkpoints: str = "all",
                drop_highest_loss: int = 0, path=None, duplicate_rows: str = "error") -> PreparedRuns:
    """Apply the options to a table from :func:`read_runs` (see the module docstring).

    Order: rows repeating a run's checkpoint, then checkpoints, then several runs per (N, D),
    then the K highest losses. Raises :class:`InputError` when a run repeats a checkpoint and
    ``duplicate_rows`` is ``error``, when runs share a design point and ``per_nd`` is None,
    or when ``drop_highest_loss`` would leave nothing.
    """
    check_options(per_nd, checkpoints, drop_highest_loss, duplicate_rows)
    path = path or frame.attrs.get("file", "<runs>")
    source = frame
    work = frame.copy()
    dropped: list[dict] = []
    diagnostics: list[Diagnostic] = []

    def drop(rows: pd.DataFrame, reason: str, **extra):
        for i, line in zip(rows.index, rows["line"]):
            dropped.append({"index": int(i), "line": int(line), "reason": reason,
                            **{k: (v[i] if isinstance(v, (dict, pd.Series)) else v) for k, v in extra.items()}})

    # 0. rows repeating a run's checkpoint (resumed or restarted jobs)
    work, found = _resolve_repeats(work, duplicate_rows, path, drop)
    diagnostics += found

    # 1. checkpoints
    runs = _run_labels(work)
    multi = runs.map(runs.value_counts()) > 1
    if multi.any():
        final = _final_rows(work)
        n_ckpt, n_runs = int((~final & multi).sum()), int(runs[multi].nunique())
        if checkpoints == "final":
            drop(work[~final], "intermediate checkpoint (--checkpoints final)")
            work = work[final]
            diagnostics.append(Diagnostic(
                "checkpoints", "info",
                f"--checkpoints final: each of the {runs.nunique()} runs enters with its last row; "
                f"{n_ckpt} intermediate checkpoints of {n_runs} runs are left out", ()))
        else:
            diagnostics.append(Diagnostic(
                "checkpoints", "info",
                f"{n_ckpt} intermediate checkpoints of {n_runs} runs enter the fit (--checkpoints all), so the "
                "bootstrap resamples whole runs. Under a decaying learning-rate schedule a checkpoint before the "
                "end lies above the loss of a run trained for that many tokens; compare with --checkpoints final",
                ()))

    # 2. several runs per (N, D)
    design = _design_key(work)
    runs = _run_labels(work)
    runs_per_point = runs.groupby(design.to_numpy()).nunique()
    dup = runs_per_point > 1
    if dup.any():
        if per_nd is None:
            raise _duplicate_error(work, design, dup, path)
        swept = _varying_columns(work, design, source.attrs.get("roles", {}).values())
        in_dup = design.isin(dup[dup].index)
        n_groups, n_runs = int(dup.sum()), int(runs[in_dup].nunique())
        what = f"; the runs differ in {', '.join(repr(c) for c in swept[:4])}" if swept else ""
        if per_nd == "best":
            final = work[_final_rows(work)]
            best = final["loss"].groupby(design[final.index].to_numpy()).idxmin()
            best_run = pd.Series(_run_labels(final).loc[best.to_numpy()].to_numpy(), index=best.index)
            best_line = pd.Series(final.loc[best.to_numpy(), "line"].to_numpy(), index=best.index)
            keep = runs.to_numpy() == design.map(best_run).to_numpy()
            drop(work[~keep], "not the lowest-loss run at its (N, D) (--per-nd best)",
                 kept_line=design.map(best_line).astype(int))
            action = f"--per-nd best kept the lowest-loss run of each and dropped {int(runs[~keep].nunique())} runs"
            diagnostics += _edge_of_sweep(work, design, keep, swept)
            work = work[keep]
        elif per_nd == "mean":
            work, merged = _average_replicates(work, design, runs)
            for into, rows in merged:
                drop(rows, "averaged with the other runs at its (N, D) (--per-nd mean)", into_line=int(into))
            action = "--per-nd mean averaged the replicates row by row (loss mean, same N and D)"
        else:
            action = "--per-nd all keeps every row; the bootstrap resamples whole (N, D) groups"
        diagnostics.append(Diagnostic(
            "duplicate_nd", "info",
            f"{n_groups} (N, D) design points have several runs ({n_runs} runs in all){what}: {action}",
            tuple(_short(k) for k in sorted(dup[dup].index)[:50])))

    # 3. the K highest losses
    k = int(drop_highest_loss)
    if k:
        if k >= len(work):
            raise InputError(str(path), [f"--drop-highest-loss {k} would drop all {len(work)} remaining rows"])
        order = work["loss"].sort_values(ascending=False, kind="stable")
        drop(work.loc[order.index[:k]], f"among the {k} highest losses (--drop-highest-loss {k})",
             loss=work["loss"])
        if len(order) > k and order.iloc[k - 1] == order.iloc[k]:
            tied = work.loc[order.index[order == order.iloc[k - 1]], "line"]
            diagnostics.append(Diagnostic(
                "dropped_points", "warning",
                f"--drop-highest-loss {k}: the {k}th and {k + 1}th highest losses are equal "
                f"({order.iloc[k - 1]:g}, lines {_lines_text(tied)}): which of them is dropped is arbitrary",
                tuple(f"line {n}" for n in tied)))
        work = work.drop(order.index[:k])

    groups, unit = _bootstrap_groups(work, per_nd, design)
    out = PreparedRuns(frame=work, dropped=dropped, diagnostics=diagnostics, groups=groups, unit=unit,
                       options={"per_nd": per_nd, "checkpoints": checkpoints, "drop_highest_loss": k,
                                "duplicate_rows": duplicate_rows},
                       source=source, path=Path(path) if path else None)
    return out


def _repeat_groups(frame: pd.DataFrame) -> pd.Series:
    """Per row, the label of the checkpoint it repeats, or -1 for a row that repeats nothing.

    Rows of one run repeat a checkpoint when they have the same (N, D, C) (to 10 significant
    digits) or the same step; chains of either link (connected components), so a row that
    shares its step with one row and its D with another is one checkpoint with both. Without
    run ids every row is its own run and nothing repeats."""
    none = pd.Series(-1, index=frame.index)
    if "run" not in frame.columns or len(frame) < 2:
        return none
    runs = frame["run"].astype(str).to_numpy()
    values = [_key(frame[c]) for c in ("N", "D", "C") if c in frame.columns]
    keys = [list(zip(runs, *values))]
    if "step" in frame.columns:
        keys.append(list(zip(runs, frame["step"].to_numpy())))
    codes = [pd.factorize(pd.Series(k, dtype=object))[0] for k in keys]
    if all(c.max() + 1 == len(frame) for c in codes):
        return none
    offsets = np.cumsum([0] + [c.max() + 1 for c in codes])
    n = len(frame)
    rows = np.concatenate([np.arange(n)] * len(codes))
    cols = np.concatenate([c + o for c, o in zip(codes, offsets)]) + n
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + offsets[-1],) * 2)
    component = connected_components(graph, directed=False)[1][:n]
    sizes = np.bincount(component)
    return pd.Series(np.where(sizes[component] > 1, component, -1), index=frame.index)


def _later_order(frame: pd.DataFrame) -> list[str]:
    """Columns that put a checkpoint's repeats from earlier to later: the step when the file
    has one (a restart that re-logs a step writes the same step, so the file line decides)."""
    return ["step", "line"] if "step" in frame.columns else ["line"]


def _repeat_text(rows: pd.DataFrame) -> str:
    """'lines 3036, 3114 (run 'x', step 2000)' for one repeated checkpoint."""
    where = f"step {rows['step'].iloc[0]:g}" if "step" in rows.columns else _short(", ".join(
        f"{c}={rows[c].iloc[0]:.10g}" for c in ("N", "D") if c in rows.columns))
    return f"lines {_lines_text(rows['line'], 4)} (run {rows['run'].iloc[0]!r}, {where})"


def _repeats_error(frame: pd.DataFrame, labels: pd.Series, path) -> InputError:
    repeated = frame[labels >= 0]
    groups = list(repeated.groupby(labels[labels >= 0].to_numpy(), sort=False))
    shown = [_repeat_text(g) for _, g in groups[:3]]
    more = f"; and {len(groups) - len(shown)} more" if len(groups) > len(shown) else ""
    return InputError(str(path), [
        f"repeated checkpoints: {len(repeated)} rows repeat a checkpoint of their run (the same run and the same "
        f"N, D, C or step), {len(groups)} checkpoint(s) of {repeated['run'].nunique()} run(s): "
        f"{'; '.join(shown)}{more}. Resumed or restarted jobs log a step again. Choose which row enters the "
        "fit: --duplicate-rows last (the later row: larger step, then later in the file), --duplicate-rows first "
        "(the earlier row) or --duplicate-rows mean (their mean loss); the others are recorded as dropped"])


def _resolve_repeats(frame: pd.DataFrame, mode: str, path, drop) -> tuple[pd.DataFrame, list[Diagnostic]]:
    """Refuse (``error``) or resolve rows repeating a run's checkpoint; ``drop(rows, reason,
    **extra)`` records each row left out. Returns the rows kept and the diagnostics."""
    labels = _repeat_groups(frame)
    if not (labels >= 0).any():
        return frame, []
    if mode == "error":
        raise _repeats_error(frame, labels, path)
    repeated = frame[labels >= 0]
    out = frame.copy()
    folded = []
    reasons = {"last": "repeats a checkpoint of its run; the later row is kept (--duplicate-rows last)",
               "first": "repeats a checkpoint of its run; the earlier row is kept (--duplicate-rows first)",
               "mean": "repeats a checkpoint of its run; averaged into the earlier row (--duplicate-rows mean)"}
    for _, g in repeated.groupby(labels[repeated.index].to_numpy(), sort=False):  # in file order
        g = g.sort_values(_later_order(g), kind="stable")
        kept = g.index[-1] if mode == "last" else g.index[0]
        others = g.drop(index=kept)
        if mode == "mean":
            out.loc[kept, "loss"] = float(g["loss"].mean())
            drop(others, reasons[mode], into_line=int(g.loc[kept, "line"]), loss=others["loss"])
        else:
            drop(others, reasons[mode], kept_line=int(g.loc[kept, "line"]), loss=others["loss"])
        folded += list(others.index)
    out = out.drop(index=folded)
    n_groups = int(labels[labels >= 0].nunique())
    kept_what = {"last": "kept the later row of each", "first": "kept the earlier row of each",
                 "mean": "averaged the losses of each on its earlier row's line"}[mode]
    runs = sorted(repeated["run"].unique())
    diagnostics = [Diagnostic(
        "duplicate_rows", "info",
        f"{n_groups} checkpoint(s) of {len(runs)} run(s) are logged more than once ({len(repeated)} rows; resumed "
        f"or restarted jobs): --duplicate-rows {mode} {kept_what} and left out the other {len(folded)} rows",
        tuple(f"run {r}" for r in runs[:50]))]
    diagnostics += _disagreeing_repeats(frame, labels)
    return out, diagnostics


def _disagreeing_repeats(frame: pd.DataFrame, labels: pd.Series) -> list[Diagnostic]:
    """A warning naming the repeated checkpoints whose losses disagree beyond their run's noise.

    The noise is a robust scale of the run's successive-checkpoint loss differences: 1.4826
    times their median absolute deviation (the standard deviation for normal errors). Each
    difference is the training trend plus the difference of two evaluation errors, so this
    scale estimates sqrt(2) s for evaluation noise of sd s (more where the trend changes),
    and the loss difference of two honest logs of one checkpoint has that same sd sqrt(2) s.
    :data:`REPEAT_DISAGREES` (4) scales is a four-sigma outlier for an honest repeat (a
    false alarm about 6e-5 per repeat), so a repeat beyond it came from another trajectory:
    a restart that diverged. A run with fewer than four distinct checkpoints takes the
    median of the other runs' scales; with none, any difference beyond the digits written
    (1e-6 relative) counts.
    """
    order = ["step"] if "step" in frame.columns else [c for c in ("D", "C") if c in frame.columns][:1]
    distinct = frame[(labels < 0) | ~labels.duplicated()].sort_values([*order, "line"], kind="stable")
    runs = distinct["run"].to_numpy()
    changes = distinct.groupby(runs)["loss"].diff()
    by_run = changes.groupby(runs)
    deviation = (changes - by_run.transform("median")).abs().groupby(runs)
    scale = (1.4826 * deviation.median()).where(by_run.count() >= 3).dropna()
    pooled = float(scale.median()) if len(scale) else 0.0
    found, subjects = [], []
    for _, g in frame[labels >= 0].groupby(labels[labels >= 0].to_numpy(), sort=False):
        run = g["run"].iloc[0]
        noise = float(scale.get(run, pooled))
        spread = float(g["loss"].max() - g["loss"].min())
        if spread > max(REPEAT_DISAGREES * noise, 1e-6 * float(g["loss"].abs().max())):
            found.append(f"{_repeat_text(g)}: losses {', '.join(f'{v:.5g}' for v in g['loss'])} (spread "
                         f"{spread:.3g}; the run's checkpoint-to-checkpoint noise {noise:.3g})")
            subjects += [f"line {n}" for n in g["line"]]
    if not found:
        return []
    more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
    return [Diagnostic(
        "duplicate_rows", "warning",
        f"{len(found)} repeated checkpoint(s) disagree in loss by more than {REPEAT_DISAGREES:g}x their run's "
        f"checkpoint-to-checkpoint noise (a robust scale of its successive-checkpoint loss differences) -- a "
        f"restarted run that diverged, or a different evaluation? {'; '.join(found[:5])}{more}. "
        "The row --duplicate-rows keeps decides which trajectory enters the fit; check these runs' logs",
        tuple(subjects[:50]))]


def _edge_of_sweep(frame, design, keep, swept) -> list[Diagnostic]:
    """Warn when the best run's hyperparameter is the smallest or largest value swept at its
    (N, D): the sweep may not bracket the optimum, and the 'best' loss overstates it."""
    out = []
    for column in swept:
        if not HYPERPARAMETER_NAMES.search(str(column)) or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].groupby(design.to_numpy())
        lo, hi = design.map(values.min()), design.map(values.max())
        kept = frame[column][keep]
        edge = (kept == lo[keep]) | (kept == hi[keep])
        several = design[keep].map(values.nunique()) > 2
        at_edge = sorted(design[keep][edge & several].unique())
        # counted in design points, not rows: a run with checkpoints has many rows
        n_points = int(design[keep][several].nunique())
        if at_edge:
            share = len(at_edge) / max(n_points, 1)
            n_hi = int(design[keep][(kept == hi[keep]) & several].nunique())
            n_lo = int(design[keep][(kept == lo[keep]) & several].nunique())
            out.append(Diagnostic(
                "hyperparameter_edge", "warning" if share > 0.1 else "info",
                f"at {len(at_edge)} of {n_points} (N, D) points the lowest-loss run used the largest or smallest "
                f"{column!r} swept ({n_hi} the largest, {n_lo} the smallest): there the sweep may not bracket "
                "the optimum, and the kept loss overstates the best achievable one",
                tuple(_short(k) for k in at_edge[:50])))
    return out


def _average_replicates(frame, design, runs):
    """Rows at the same design point and the same D (checkpoints) averaged into one row,
    which keeps the first row's line, index and run label; ``n_replicates`` counts them.
    Returns (frame, merged) with merged = [(line kept, rows folded into it), ...]."""
    at = _key(frame["D"] if "D" in frame.columns else frame["C"])
    out = frame.assign(n_replicates=1)
    merged = []
    for _, g in frame.groupby([design.to_numpy(), at], sort=False):
        if len(g) > 1:
            out.loc[g.index[0], ["loss", "n_replicates"]] = [float(g["loss"].mean()), len(g)]
            merged.append((int(g["line"].iloc[0]), g.iloc[1:]))
    folded = [i for _, rows in merged for i in rows.index]
    return out.drop(index=folded), merged


def _bootstrap_groups(frame: pd.DataFrame, per_nd, design) -> tuple[np.ndarray | None, str]:
    """Group label per row for the cluster bootstrap, and what one group is in words.

    Rows that share a run, or (with ``--per-nd all``) a design point, are one piece of
    evidence and are resampled together: the groups are the connected components of the
    rows linked by run and by design point, so an LR sweep with checkpoints resamples
    each (N, D) point's runs together.
    """
    runs = _run_labels(frame).to_numpy()
    by_design = per_nd == "all"
    if len(set(runs)) == len(runs) and not (by_design and len(set(design[frame.index])) < len(runs)):
        return None, "points"
    labels = [runs] + ([design[frame.index].to_numpy()] if by_design else [])
    codes = [pd.factorize(lab)[0] for lab in labels]
    offsets = np.cumsum([0] + [c.max() + 1 for c in codes])
    n = len(frame)
    rows = np.concatenate([np.arange(n)] * len(codes))
    cols = np.concatenate([c + o for c, o in zip(codes, offsets)])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols + n)), shape=(n + offsets[-1],) * 2)
    _, component = connected_components(graph, directed=False)
    groups = component[:n]
    return groups, "whole (N, D) groups" if by_design else "whole runs"


def from_frame(frame: pd.DataFrame, name: str, *, per_nd: str | None = None, checkpoints: str = "all",
               drop_highest_loss: int = 0, duplicate_rows: str = "error") -> PreparedRuns:
    """A table already in memory (a registry dataset, in file order) through the same
    selection as a CSV: role-named columns (N, D and/or C, loss; optional run, step) get
    ``line`` (the file line, header = line 1) and C = 6ND when absent, then
    :func:`select_runs`. ``name`` labels the rows in messages and records."""
    check_options(per_nd, checkpoints, drop_highest_loss, duplicate_rows)
    table = frame.reset_index(drop=True).copy()
    table["line"] = np.arange(len(table)) + 2
    if "C" not in table.columns and {"N", "D"} <= set(table.columns):
        table["C"] = optimal.training_flops(table["N"], table["D"])
    table.attrs = {**frame.attrs, "roles": {r: r for r in ROLES if r in table.columns}}
    prepared = select_runs(table, per_nd=per_nd, checkpoints=checkpoints, drop_highest_loss=drop_highest_loss,
                           path=name, duplicate_rows=duplicate_rows)
    prepared.path = None
    prepared.options["source"] = name
    return prepared


def prepare_runs(path, law: laws.Law, columns: dict[str, str] | None = None, *, per_nd: str | None = None,
                 checkpoints: str = "all", drop_highest_loss: int = 0, extra_roles=(),
                 duplicate_rows: str = "error") -> PreparedRuns:
    """Read, validate and select: :func:`read_runs` then :func:`select_runs`."""
    check_options(per_nd, checkpoints, drop_highest_loss, duplicate_rows)
    frame = read_runs(path, law, columns, extra_roles=extra_roles)
    prepared = select_runs(frame, per_nd=per_nd, checkpoints=checkpoints,
                           drop_highest_loss=drop_highest_loss, path=path, duplicate_rows=duplicate_rows)
    prepared.diagnostics[:0] = set_aside_diagnostics(frame)
    prepared.options["columns"] = dict(columns or {})
    prepared.notes = list(frame.attrs.get("warnings", []))
    return prepared


def set_aside_diagnostics(frame: pd.DataFrame) -> list[Diagnostic]:
    """One ``column_mapping`` info per file column that --columns displaced: the explicit
    mapping wins, and the other column is kept under the name given here (see
    :func:`scalerepro.io.validate.set_aside_names`)."""
    roles = frame.attrs.get("roles", {})
    return [Diagnostic("column_mapping", "info",
                       f"--columns maps {role} to {roles.get(role, role)!r}; the file's own column {role!r} is "
                       f"not used for it and is kept as {new!r}", (role, new))
            for role, new in frame.attrs.get("set_aside", {}).items()]


# ----------------------------------------------------------------------------- hold-out
def split_holdout(prepared: PreparedRuns, k: int) -> PreparedRuns:
    """Hold out the ``k`` largest-compute runs (all their rows), never splitting a tie.

    A run's compute is the largest C over its rows. Every run tied (within 1e-6 relative)
    with the k-th largest goes out too: choosing some of the tied runs would be arbitrary,
    and the others, trained at the same compute, would make the hold-out error partly
    in-sample. The count is recorded (``holdout_ties``). Returns a new PreparedRuns whose
    ``frame`` is the training rows and ``held`` the held-out rows.
    """
    if k <= 0:
        return replace(prepared, held=prepared.frame.iloc[:0])  # the selection record reads no hold-out as None
    frame = prepared.frame
    runs = _run_labels(frame)
    per_run = frame["C"].groupby(runs.to_numpy()).max().sort_values(ascending=False)  # only the values decide
    path = str(prepared.path or "<runs>")
    if k >= len(per_run):
        raise InputError(path, [f"--holdout largest-compute:{k} would hold out all {len(per_run)} runs; "
                                "keep some to fit"])
    boundary = per_run.iloc[k - 1]
    held_runs = per_run.index[per_run >= boundary * (1 - TIED)]
    if len(held_runs) >= len(per_run):
        raise InputError(path, [f"--holdout largest-compute:{k}: all {len(per_run)} runs are tied at the "
                                f"boundary compute C = {boundary:.4g}, so holding out {k} without splitting the "
                                "tie would leave nothing to fit; choose another K"])
    mask = runs.isin(held_runs).to_numpy()
    diagnostics = list(prepared.diagnostics)
    reason = f"held out: among the {k} largest-compute runs (--holdout largest-compute:{k})"
    if len(held_runs) > k:
        tied = per_run.index[np.isclose(per_run, boundary, rtol=TIED, atol=0)]
        reason = (f"held out: among the {len(held_runs)} largest-compute runs (--holdout largest-compute:{k}, "
                  "widened to keep tied runs together)")
        diagnostics.append(Diagnostic(
            "holdout_ties", "warning",
            f"--holdout largest-compute:{k}: {len(tied)} runs are tied at the boundary compute C = {boundary:.4g}, "
            f"so all {len(held_runs)} runs at or above it are held out together (splitting the tie would train on "
            "runs at the held-out compute and make the hold-out error partly in-sample)",
            tuple(sorted(map(str, held_runs)))))
    held, train = frame[mask], frame[~mask]
    dropped = prepared.dropped + [{"index": int(i), "line": int(line), "reason": reason}
                                  for i, line in zip(held.index, held["line"])]
    groups = None if prepared.groups is None else prepared.groups[~mask]
    return replace(prepared, frame=train, held=held, dropped=dropped, diagnostics=diagnostics, groups=groups,
                   options={**prepared.options, "holdout": {"kind": "largest-compute", "k": int(k),
                                                            "runs_held_out": int(len(held_runs))}})

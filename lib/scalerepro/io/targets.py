"""A CSV of prediction targets for ``scalerepro fit --predict``: where would a run land?

One row per target: N, plus D or C (D = C / 6N, C = 6ND, as for the runs), and optionally a
run name; no loss. Columns are found by role name or through the same ``--columns``
mapping as the runs (``params`` -> N, ...), so the runs' export format can be reused. A
missing column is one :class:`~scalerepro.io.validate.InputError` naming it, raised before
anything is fitted or written.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core import optimal
from .validate import InputError, read_runs_csv

ROLES = {"N": "model size in parameters", "D": "training tokens", "C": "training FLOPs (6ND)",
         "run": "run name (optional)"}


def read_targets(path, inputs, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """The targets with columns by role (the law's ``inputs``, N, D and C when they can be
    derived, ``run`` when given) and ``line`` (the file line, header = line 1)."""
    path = Path(path)
    columns = {c: r for c, r in (columns or {}).items() if r in ROLES}
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception:   # read_runs_csv below says why the file cannot be read
        header = []
    present = {columns.get(c, c) for c in header if columns.get(c, c) in ROLES}
    if "run" not in present and "run_id" in header:
        columns["run_id"], present = "run", present | {"run"}
    columns = {c: r for c, r in columns.items() if c in header}
    needed = list(inputs)
    if "D" in needed and "D" not in present and "C" in present:
        needed = ["C" if r == "D" else r for r in needed] + (["N"] if "N" not in needed else [])
    if "C" in needed and "C" not in present and {"N", "D"} <= present:
        needed = [r for r in needed if r != "C"] + ["N", "D"]
    missing = [r for r in dict.fromkeys(needed) if r not in present]
    if header and missing:
        mapped = {r: c for c, r in columns.items()}
        hint = "; a targets file needs N plus D or C per row (optional: run), named as roles or as in --columns"
        raise InputError(str(path), [
            f"no column {r!r} ({ROLES[r]}{' or C, training FLOPs' if r == 'D' else ''}) among the targets' "
            f"columns {', '.join(map(repr, header))}" + (f" (mapped from {mapped[r]!r})" if r in mapped else "")
            + (hint if i == len(missing) - 1 else "") for i, r in enumerate(missing)])
    required = {r: ROLES[r] for r in dict.fromkeys(needed)}
    optional = [r for r in ("N", "D", "C") if r in present and r not in required]
    required.update({r: ROLES[r] for r in optional})
    text = ()
    if "run" in present:
        required["run"], text = ROLES["run"], ("run",)
    frame = read_runs_csv(path, columns, required=required, positive=[r for r in required if r != "run"],
                          text=text, unique=(), run_id="run")
    if "D" not in frame.columns and {"C", "N"} <= set(frame.columns):
        frame["D"] = optimal.tokens_from_flops(frame["C"], frame["N"])
    if "C" not in frame.columns and {"N", "D"} <= set(frame.columns):
        frame["C"] = optimal.training_flops(frame["N"], frame["D"])
    if "run" in frame.columns:
        frame["run"] = frame["run"].astype(str)
    frame["line"] = frame.index + 2
    return frame

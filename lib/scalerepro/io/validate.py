"""Check a table of training runs before anything is fitted to it.

Why: a scaling-law fit happily returns numbers for a table with a misnamed column, a
";"-separated file read as one column, tokens in billions or a duplicated run, and the
numbers are silently wrong. Every loader and ``scalerepro fit`` therefore passes its table
through :func:`validate_runs`, which collects *all* problems and raises one
:class:`InputError` that names the file, the column and the lines, so the user can fix the
file in one go. Plausible-but-suspicious units (tokens in billions, loss in bits) are not
errors: they are :class:`UnitWarning` s, issued with :func:`warnings.warn` and also returned.

Line convention: line numbers count the header as line 1, so data row k (1-based) is line
k + 1 -- the row number a spreadsheet shows and the line number a text editor shows.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LINE_CONVENTION, InputError, UnitWarning


__all__ = [
    "InputError",
    "UnitWarning",
    "LINE_CONVENTION",
    "RUN_COLUMNS",
    "validate_runs",
    "read_runs_csv",
]


#: The columns a table of runs needs for a loss(N, D) fit, and what each must hold.
RUN_COLUMNS: dict[str, str] = {
    "N": "model size in parameters (a raw count, not millions)",
    "D": "training tokens (a raw count, not billions)",
    "loss": "final loss in nats per token",
}

_MAX_LISTED = 8
_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _show(value) -> str:
    """A cell as a user would recognise it: numbers as 1e+09, everything else quoted."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return f"{float(value):g}"
    return repr(value)


def _line_list(positions: Sequence[int], values: Sequence | None = None) -> str:
    """'lines 2, 5 (value 'x')' for 0-based data positions, truncated after a few."""
    items = []
    for k, pos in enumerate(positions[:_MAX_LISTED]):
        item = str(int(pos) + 2)
        if values is not None:
            item += f" ({_show(values[k])})"
        items.append(item)
    more = len(positions) - _MAX_LISTED
    word = "line" if len(positions) == 1 else "lines"
    return f"{word} {', '.join(items)}" + (f" and {more} more" if more > 0 else "")


def _to_number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _coerce(raw: pd.Series) -> pd.Series:
    """Numeric view of a column: unparseable entries become NaN, booleans count as unparseable."""
    if pd.api.types.is_bool_dtype(raw):
        return pd.Series(np.nan, index=raw.index)
    if pd.api.types.is_numeric_dtype(raw):
        return raw.astype(float)
    values = raw.map(lambda v: math.nan if isinstance(v, (bool, np.bool_)) else _to_number(v))
    return values.astype(float)


def _suggest(column: str, available: Sequence[str]) -> str:
    """' (did you mean 'n'?)' from case-insensitive and fuzzy matches, or ''."""
    exact = [c for c in available if c.strip().lower() == column.strip().lower()]
    fuzzy = difflib.get_close_matches(column, available, n=3, cutoff=0.6)
    fuzzy_lower = difflib.get_close_matches(column.lower(), [c.lower() for c in available], n=3, cutoff=0.6)
    fuzzy += [c for c in available if c.lower() in fuzzy_lower]
    matches = list(dict.fromkeys(exact + fuzzy))
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches[:3]) + "?)"


def _separator_problem(columns: Sequence[str]) -> str | None:
    """Say so when a file with another delimiter was read as a single column."""
    if len(columns) != 1:
        return None
    header = columns[0]
    for sep, word in _SEPARATORS.items():
        if sep in header:
            return (
                f"the file was read as a single column named {header!r}: it looks "
                f"{word}-separated ({sep!r}), not comma-separated; save it with commas or "
                f"pass sep={sep!r}"
            )
    return None


def _column_problems(raw: pd.Series, num: pd.Series, column: str, positive: bool) -> list[str]:
    problems = []
    missing = raw.isna().to_numpy()
    nonnumeric = ~missing & num.isna().to_numpy()
    if nonnumeric.any():
        pos = np.flatnonzero(nonnumeric)
        problems.append(
            f"column {column!r}: non-numeric values at {_line_list(pos, [raw.iloc[p] for p in pos[:_MAX_LISTED]])}"
        )
    if missing.any():
        problems.append(f"column {column!r}: empty or NaN at {_line_list(np.flatnonzero(missing))}")
    values = num.to_numpy()
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(f"column {column!r}: infinite values at {_line_list(np.flatnonzero(infinite))}")
    if positive:
        nonpositive = values <= 0
        if nonpositive.any():
            pos = np.flatnonzero(nonpositive)
            problems.append(
                f"column {column!r}: zero or negative values (must be > 0) at "
                f"{_line_list(pos, [values[p] for p in pos[:_MAX_LISTED]])}"
            )
    return problems


def _duplicate_problems(key: pd.DataFrame) -> list[str]:
    """One problem per group of identical runs (same values in every key column)."""
    dup = key.duplicated(keep=False).to_numpy()
    if not dup.any():
        return []
    positions = pd.Series(np.arange(len(key)))[dup]
    groups = positions.groupby([key[c].to_numpy()[dup] for c in key.columns], sort=False)
    problems = []
    names = ", ".join(map(str, key.columns))
    for values, members in list(groups)[:_MAX_LISTED]:
        values = values if isinstance(values, tuple) else (values,)
        shown = ", ".join(f"{c}={_show(v)}" for c, v in zip(key.columns, values))
        problems.append(
            f"duplicate runs: {_line_list(members.to_numpy())} have the same {names} ({shown})"
        )
    return problems


def _unit_warnings(num: Mapping[str, pd.Series], roles: Mapping[str, str], file: str) -> list[str]:
    """Messages for values that are valid but look like a unit slip."""
    messages = []
    col = {role: roles[role] for role in roles if roles[role] in num}
    if "N" in col and num[col["N"]].max() < 1e4:
        messages.append(
            f"{file}: column {col['N']!r} (N) is at most {num[col['N']].max():g}: N should be a raw "
            "parameter count; is it in millions or billions?"
        )
    if "D" in col and "N" in col and num[col["D"]].max() < 1e6 and num[col["N"]].max() > 1e6:
        messages.append(
            f"{file}: column {col['D']!r} (D) is at most {num[col['D']].max():g} while N reaches "
            f"{num[col['N']].max():g}: D should be a raw token count; is it in billions?"
        )
    if {"N", "D", "C"} <= col.keys():
        ratio = float(np.median(num[col["C"]] / (6.0 * num[col["N"]] * num[col["D"]])))
        if not 1 / 3 <= ratio <= 3:
            messages.append(
                f"{file}: median C / (6 N D) is {ratio:.3g}, not about 1: C, N and D disagree; "
                "check their units (1 PF-day = 8.64e19 FLOP)"
            )
    if "loss" in col:
        name = col["loss"]
        median = float(np.median(num[name]))
        if "bit" in name.lower():
            messages.append(
                f"{file}: column {name!r} looks like a loss in bits; the laws and published "
                "constants use nats (multiply bits by ln 2 = 0.6931)"
            )
        elif "perplex" in name.lower() or "ppl" in name.lower():
            messages.append(f"{file}: column {name!r} looks like perplexity; fit the log of it (nats)")
        elif median > 10:
            messages.append(
                f"{file}: median loss in {name!r} is {median:g} > 10 nats/token: is it perplexity, "
                "or a summed rather than per-token loss?"
            )
    return messages


def validate_runs(
    df: pd.DataFrame,
    required: Mapping[str, str],
    file: str = "<DataFrame>",
    *,
    positive: Iterable[str] = (),
    text: Iterable[str] = (),
    unique: Sequence[str] = (),
    run_id: str | None = None,
    roles: Mapping[str, str] | None = None,
) -> list[UnitWarning]:
    """Raise one :class:`InputError` listing every problem in ``df``, else return unit warnings.

    ``required`` maps each needed column to its meaning (used in messages). Required columns
    are numeric unless listed in ``text``; those in ``positive`` must be > 0. ``unique``
    names the columns that identify a run (plus ``run_id`` when that column exists): rows
    equal on all of them are reported as duplicates. ``roles`` maps the roles N, D, C, loss
    to column names for the unit-slip checks (default: columns literally named N, D, C, loss).
    ``file`` is only used in messages. Line numbers follow :data:`LINE_CONVENTION`.
    """
    file = str(file)
    columns = [str(c) for c in df.columns]
    if not columns:
        raise InputError(file, ["empty file: no header and no data"])
    separator = _separator_problem(columns)
    if separator and len(required) > 1:
        raise InputError(file, [separator])

    text = set(text)
    positive = set(positive)
    problems = [
        f"missing column {c!r} ({meaning}){_suggest(c, columns)}; columns present: "
        + ", ".join(repr(x) for x in columns[:20])
        + (" ..." if len(columns) > 20 else "")
        for c, meaning in required.items()
        if c not in columns
    ]
    if len(df) == 0:
        problems.append("header only: the file has column names but no data rows")
    if problems:
        raise InputError(file, problems)

    repeated = sorted({c for c in columns if columns.count(c) > 1} & set(required))
    if repeated:
        raise InputError(file, [f"column {c!r} appears more than once in the header" for c in repeated])

    df = df.set_axis(columns, axis=1).reset_index(drop=True)
    numeric = {}
    clean = {}
    for column in required:
        if column in text:
            clean[column] = not df[column].isna().any()
            if not clean[column]:
                problems.append(f"column {column!r}: empty at {_line_list(np.flatnonzero(df[column].isna()))}")
            continue
        numeric[column] = _coerce(df[column])
        found = _column_problems(df[column], numeric[column], column, column in positive)
        clean[column] = not found
        problems += found

    key_columns = list(unique) + ([run_id] if run_id and run_id in df.columns else [])
    if key_columns and all(clean.get(c, True) for c in key_columns):
        key = pd.DataFrame({c: numeric[c] if c in numeric else df[c].astype(str) for c in key_columns})
        problems += _duplicate_problems(key)
    if problems:
        raise InputError(file, problems)

    roles = dict(roles) if roles is not None else {r: r for r in ("N", "D", "C", "loss")}
    issued = []
    for message in _unit_warnings(numeric, roles, file):
        warning = UnitWarning(message)
        warnings.warn(warning, stacklevel=2)
        issued.append(warning)
    return issued


def _read_problem(path: Path, sep: str, error: Exception) -> str:
    """Turn a pandas/OS read failure into one sentence, with a delimiter hint when it fits."""
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a CSV file"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text (a spreadsheet file such as .xlsx? export it as CSV)"
    if isinstance(error, pd.errors.EmptyDataError):
        return "empty file: no header and no data"
    if isinstance(error, OSError):
        return f"cannot read the file: {error.strerror or error}"
    message = f"cannot parse as CSV with sep={sep!r}: {str(error).strip()}"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
    except OSError:
        header = ""
    hint = _separator_problem([header.rstrip("\r\n")]) if sep not in header else None
    return message + (f"; {hint}" if hint else "")


def read_runs_csv(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    required: Mapping[str, str] | None = None,
    positive: Iterable[str] | None = None,
    text: Iterable[str] = (),
    unique: Sequence[str] = ("N", "D"),
    run_id: str = "run_id",
    sep: str = ",",
) -> pd.DataFrame:
    """Read a user's CSV of runs, rename columns, validate, and return numeric columns.

    ``columns`` maps names in the file to the names the fit uses, e.g.
    ``{"params": "N", "tokens": "D", "val_loss": "loss"}``. ``required`` defaults to
    :data:`RUN_COLUMNS` (N, D, loss) and ``positive`` to all its numeric columns (those not
    in ``text``). Messages name the
    columns as they are spelled in the file. Any read or validation failure is an
    :class:`InputError`; unit slips are warned about and listed in ``df.attrs["warnings"]``.
    A file column already named like a mapping's target is kept under another name
    (:func:`set_aside_names`), listed in ``df.attrs["set_aside"]``.
    """
    path = Path(path)
    columns = dict(columns or {})
    required = dict(RUN_COLUMNS if required is None else required)
    text = set(text)
    positive = set(required) - text if positive is None else set(positive)
    try:
        df = pd.read_csv(path, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as error:  # UnicodeDecodeError is a ValueError
        raise InputError(str(path), [_read_problem(path, sep, error)]) from error

    header = [str(c) for c in df.columns]
    set_aside = set_aside_names(header, columns)
    if set_aside:
        df = df.rename(columns=set_aside)
    in_file = {dst: src for src, dst in columns.items()}

    def spelled(name: str) -> str:
        return in_file.get(name, name)

    try:
        warnings_ = validate_runs(
            df,
            {spelled(c): meaning for c, meaning in required.items()},
            str(path),
            positive=[spelled(c) for c in positive],
            text=[spelled(c) for c in text],
            unique=[spelled(c) for c in unique],
            run_id=spelled(run_id),
            roles={r: spelled(r) for r in ("N", "D", "C", "loss")},
        )
    except InputError as error:
        unmapped = [c for c in required if c not in in_file and c not in header]
        if not unmapped:
            raise
        example = ", ".join(f"'<column in file>': {c!r}" for c in unmapped)
        hint = f"if the file names these columns differently, map them: columns={{{example}}}"
        raise InputError(error.file, error.problems + [hint]) from None
    df = df.rename(columns=columns)
    for column in set(required) - text:
        df[column] = _coerce(df[column])
    df.attrs.update(file=str(path), warnings=[str(w) for w in warnings_], set_aside=set_aside)
    return df


#: What a file column named like a mapped target is renamed to: ``loss`` -> ``loss (file)``.
SET_ASIDE = "{} (file)"


def set_aside_names(header: Sequence[str], columns: Mapping[str, str]) -> dict[str, str]:
    """An explicit mapping wins: ``{name in the file: new name}`` for each file column that
    is named like a mapping's target (``loss`` when ``{"C4 Eval Loss": "loss"}`` is asked)
    and is not itself mapped elsewhere. It is kept, under :data:`SET_ASIDE` (numbered if
    that name is taken too), rather than refusing the mapping: the user said which column
    holds the role, and editing the file to remove the other one is not theirs to do."""
    taken = set(header)
    out: dict[str, str] = {}
    for src, dst in columns.items():
        if dst in taken and dst != src and src in header and dst not in columns and dst not in out:
            new, k = SET_ASIDE.format(dst), 2
            while new in taken or new in columns:
                new, k = f"{dst} (file {k})", k + 1
            out[dst] = new
            taken.add(new)
    return out

"""Choosing which points enter a fit, and recording why the others did not."""

from __future__ import annotations

import pandas as pd


def drop_largest(frame: pd.DataFrame, column: str, n: int, reason: str) -> tuple[pd.DataFrame, list[dict]]:
    """Drop the ``n`` rows with the largest ``column`` and return (kept, dropped records).

    Each record names the row index, the value and ``reason``, so a FitResult can carry
    which points were excluded and why.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > len(frame):
        raise ValueError(f"cannot drop {n} rows from a table of {len(frame)}")
    dropped = frame.nlargest(n, column)
    records = [{"index": int(i), column: float(v), "reason": reason} for i, v in dropped[column].items()]
    return frame.drop(dropped.index), records


def keep_where(frame: pd.DataFrame, mask, reason: str) -> tuple[pd.DataFrame, list[dict]]:
    """Keep rows where ``mask`` is true; the others are recorded with ``reason``."""
    mask = pd.Series(mask, index=frame.index).astype(bool)
    return frame[mask], [{"index": int(i), "reason": reason} for i in frame.index[~mask]]

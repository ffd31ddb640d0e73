"""Design checks before a fit: can these runs determine this law at all?

An optimizer returns numbers for any table. Whether the numbers mean anything is decided
before the fit, by the design: how many distinct design points there are for the free
parameters, whether N and D were varied independently (on a ladder with D/N fixed the N and
D terms are interchangeable), and how many orders of magnitude the runs cover. Each finding
is a :class:`~scalerepro.diagnostics.Diagnostic`; ``error`` means the design cannot
determine the law's parameters whatever the optimizer does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..diagnostics import Diagnostic

#: Fewer distinct design points than this many per free parameter is a warning.
POINTS_PER_PARAMETER = 3
#: D/N varying by less than this many decades over the design: N and D are not separable.
COLLINEAR_DECADES = 0.2
#: |corr(log N, log D)| above this over the design points: N and D hard to separate.
COLLINEAR_CORRELATION = 0.98
#: An input covering fewer decades than this: its exponent rests on a narrow range.
NARROW_DECADES = 1.0


def _decades(values) -> float:
    values = np.asarray(values, float)
    return float(np.log10(values.max() / values.min())) if len(values) else 0.0


def design_points(frame: pd.DataFrame, law) -> pd.DataFrame:
    """The distinct design points of the law's inputs (and of N and D when present),
    values rounded to 10 significant digits."""
    columns = list(dict.fromkeys([c for c in ("N", "D") if c in frame.columns and c in law.inputs]
                                 + list(law.inputs)))
    rounded = frame[columns].apply(lambda s: s.map(lambda v: float(f"{v:.10g}")))
    return rounded.drop_duplicates()


def design_diagnostics(frame: pd.DataFrame, law) -> list[Diagnostic]:
    """Diagnostics of the rows that will be fitted (``frame`` with role columns)."""
    out = []
    points = design_points(frame, law)
    k, p = len(points), law.n_params
    coverage = ", ".join(f"{c} {_decades(frame[c]):.1f} ({frame[c].min():.3g} to {frame[c].max():.3g})"
                         for c in ("N", "D", "C") if c in frame.columns)
    where = f"; decades covered: {coverage}" if coverage else ""
    if k <= p:
        out.append(Diagnostic(
            "design_points", "error",
            f"only {k} distinct design points for the {p} free parameters of {law.name}: the law can pass "
            "through every point in many ways, so its parameters are not determined by these runs; add runs "
            f"at new {'(N, D)' if 'D' in law.inputs else 'inputs'}{where}", tuple(law.param_names)))
    elif k < POINTS_PER_PARAMETER * p:
        out.append(Diagnostic(
            "design_points", "warning",
            f"{k} distinct design points for {p} free parameters (fewer than {POINTS_PER_PARAMETER} per "
            "parameter): a few runs decide the fit; read the intervals and the identifiability checks "
            f"before using it{where}", tuple(law.param_names)))
    else:
        out.append(Diagnostic("design_points", "info",
                              f"{k} distinct design points for {p} free parameters{where}", ()))
    if {"N", "D"} <= set(law.inputs) and k >= 2:
        out += _collinearity(points)
    if {"N", "M"} <= set(law.inputs) and k >= 2:
        out += _multiplier_support(points)
    for column in dict.fromkeys([*law.inputs]):
        if column in frame.columns and 0 < _decades(frame[column]) < NARROW_DECADES:
            out.append(Diagnostic(
                "narrow_range", "warning",
                f"{column} covers only {_decades(frame[column]):.2f} decades ({frame[column].min():.3g} to "
                f"{frame[column].max():.3g}): the exponent of the {column} term rests on a narrow range",
                (column,)))
        elif column in frame.columns and _decades(frame[column]) == 0:
            out.append(Diagnostic("narrow_range", "error",
                                  f"every run has the same {column} ({frame[column].iloc[0]:.3g}): the {column} "
                                  "term of the law cannot be fitted", (column,)))
    return out


def _multiplier_support(points: pd.DataFrame) -> list[Diagnostic]:
    """A law in (N, M) splits its prefactor a M^eta + b_p M^-eta only through runs at more
    than one M; when one or two runs sit off the main M, they alone decide that split (and
    every prediction at another M), as in Gadre et al.'s five-run fit."""
    counts = points["M"].value_counts()
    off = int(len(points) - counts.iloc[0])
    if len(counts) >= 2 and off <= 2:
        return [Diagnostic(
            "multiplier_support", "warning",
            f"only {off} design point(s) lie off M = {counts.index[0]:.3g}: they alone split the prefactor into "
            "the a_p and b_p terms, so predictions at other multipliers hinge on them; add runs at several M "
            "and check leave-one-run-out", ("M",))]
    return []


def _collinearity(points: pd.DataFrame) -> list[Diagnostic]:
    """D/N nearly constant (a ladder): the N and D terms cannot be told apart."""
    log_n, log_d = np.log10(points["N"].to_numpy()), np.log10(points["D"].to_numpy())
    ratio = log_d - log_n
    spread = float(ratio.max() - ratio.min())
    tpp = f"tokens per parameter {10 ** ratio.min():.3g} to {10 ** ratio.max():.3g}"
    if spread < COLLINEAR_DECADES:
        return [Diagnostic(
            "collinear_design", "error",
            f"D/N is nearly constant over the {len(points)} design points ({tpp}): along this line "
            "A/N^alpha and B/D^beta have the same shape, so the N and D terms (A, alpha, B, beta and the "
            "allocation) cannot be separated; add runs at other tokens per parameter", ("N", "D"))]
    if np.ptp(log_n) > 0 and np.ptp(log_d) > 0:
        r = float(np.corrcoef(log_n, log_d)[0, 1])
        if abs(r) > COLLINEAR_CORRELATION:
            return [Diagnostic(
                "collinear_design", "warning",
                f"log N and log D move together over the design points (correlation {r:.3f}, {tpp}): "
                "the N and D terms are hard to separate, so alpha, beta and the allocation are uncertain",
                ("N", "D"))]
    return []

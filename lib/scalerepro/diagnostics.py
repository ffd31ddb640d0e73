"""Diagnostics: what a careful analyst would tell a researcher about a fit of their own runs.

Every analysis of a user's data (``scalerepro fit``, the approaches, sensitivity) records a
list of diagnostics in its ``results.json``: ``{code, severity, message, subjects}``. The
code names the check (stable, for programs and tests), the severity says how much it
matters, the message says it in words with the numbers, and ``subjects`` names what it is
about (runs, lines, parameters, budgets) so a report can point at them.

Severities:

- ``info``: worth knowing, changes nothing (e.g. how many runs were dropped and why);
- ``warning``: the result can be used with the stated caveat;
- ``error``: the result (or the part named in ``subjects``) must not be used as printed,
  e.g. a parameter the data do not identify. ``--strict`` turns errors into exit status 1.

This module holds only the record type and the list of known codes; the checks live next
to the analyses that run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DiagnosticError

SEVERITIES = ("info", "warning", "error")

#: Every code an analysis may emit, with what it means. A new check adds its code here,
#: so the README and the report can explain it and a test can check that none is unknown.
CODES = {
    "duplicate_nd": "several rows share one (N, D) design point (hyperparameter sweep, reruns, seeds)",
    "dropped_points": "points left out of the fit, each with its reason",
    "duplicate_rows": "rows repeating a run's checkpoint (resumed or restarted jobs): how --duplicate-rows "
                      "resolved them, and repeats whose losses disagree beyond the run's checkpoint-to-checkpoint "
                      "noise",
    "checkpoints": "how runs' intermediate checkpoints enter the fit (all of them, or each run's final row), "
                   "and whether a fit of the final rows alone leaves the bootstrap intervals",
    "hyperparameter_edge": "the best run of a hyperparameter sweep used the smallest or largest value swept, "
                           "so the sweep may not bracket the optimum",
    "design_points": "too few distinct design points for the number of free parameters",
    "collinear_design": "log N and log D move together (D/N nearly constant): the N and D terms "
                        "cannot be separated",
    "multiplier_support": "a law in (N, M): only one or two runs lie off the main token multiplier, so they "
                          "alone split the prefactor and decide predictions at other M",
    "narrow_range": "the data cover too few orders of magnitude in N, D or C",
    "implausible_parameter": "a fitted value outside the physically plausible range (negative "
                             "exponent, start-grid value, coefficient beyond 1e30, E -> 0)",
    "not_identified": "the objective is flat along a parameter direction: that parameter (and "
                      "anything derived from it) is not determined by the data",
    "influential_run": "leaving one run out moves a derived quantity outside its bootstrap interval",
    "holdout_ties": "runs tied at the hold-out boundary were held out together",
    "extrapolation": "a prediction or allocation far beyond the fitted range",
    "optimum_at_edge": "an IsoFLOP budget's loss minimum lies at the edge of its sampled sizes",
    "off_centre_grid": "an IsoFLOP budget's sizes are not centred on its minimum (biases a parabola)",
    "few_sizes": "an IsoFLOP budget has too few model sizes to locate its minimum",
    "derived_compute": "training FLOPs (or tokens) derived under C = 6ND because the file gives only one of them",
    "parameter_counting": "which column gives the other parameter count (with or without embeddings) "
                          "for a counting variant",
    "screened_starts": "whether the best grid points that start the non-default variants reach the full "
                       "grid's optimum on the default",
    "not_converged": "the optimizer stopped without meeting its stopping rule",
    "task_failed": "one unit of work (a variant's fit) raised; its error is recorded and the others are kept",
    "no_interval": "no uncertainty interval was computed",
    "bootstrap_failures": "bootstrap resamples that could not be refitted, left out of the interval",
    "few_resampling_units": "the bootstrap resamples so few runs or groups that its intervals understate "
                            "the uncertainty",
    "hull_points_per_run": "approach 1 by lower convex hull: some runs give several hull points and so weigh "
                           "more in the line through them",
    "envelope_choice": "approach 1's envelope method (per-compute grid minimum or lower convex hull) and how far "
                       "the choice moves the exponent",
    "bootstrap_edge": "bootstrap refits that ran a parameter to the edge of the parameter space (E -> 0, a "
                      "coefficient to infinity), too few to put its interval's end at that limit",
    "column_mapping": "a file column named like a role (N, D, C, loss, run, step) that --columns gave to "
                      "another column, kept under another name",
    "outliers": "points whose residual, standardized by a robust (MAD) scale in the fit's space, exceeds "
                "the threshold a clean fit of that many points passes 99% of the time; and what "
                "--drop-highest-loss would drop instead",
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding about an analysis of a user's data."""

    code: str
    severity: str
    message: str
    subjects: tuple = field(default=())

    def __post_init__(self):
        if self.code not in CODES:
            raise DiagnosticError(f"unknown diagnostic code {self.code!r}; known: {', '.join(CODES)}")
        if self.severity not in SEVERITIES:
            raise DiagnosticError(f"unknown severity {self.severity!r}; valid: {', '.join(SEVERITIES)}")
        object.__setattr__(self, "subjects", tuple(self.subjects))

    def record(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "subjects": list(self.subjects)}

    @classmethod
    def from_record(cls, record: dict) -> "Diagnostic":
        return cls(record["code"], record["severity"], record["message"], tuple(record.get("subjects", ())))

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} [{self.code}]"


def worst(diagnostics) -> str | None:
    """The highest severity among ``diagnostics`` (Diagnostic objects or dicts), or None."""
    levels = [d.severity if isinstance(d, Diagnostic) else d["severity"] for d in diagnostics]
    return max(levels, key=SEVERITIES.index) if levels else None


def sorted_by_severity(diagnostics) -> list:
    """Errors first, then warnings, then info; the order of checks kept within a severity."""
    def level(d):
        return SEVERITIES.index(d.severity if isinstance(d, Diagnostic) else d["severity"])
    return sorted(diagnostics, key=level, reverse=True)

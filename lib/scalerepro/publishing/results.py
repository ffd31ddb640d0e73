"""The Recorder: what a notebook calls to record its numbers as ``results.json``.

The notebook computes; the Recorder only collects what was computed (datasets with their
hashes, fit records, claims, tables, warnings) and applies the spec's rules to the claims, so
verdicts come from ``replications/NAME.yaml`` and never from code in a notebook cell.
The output is deterministic for the same inputs: durations are kept apart under ``timing``
and keys keep their (fixed) construction order, readable top-down, so two runs can be diffed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import secrets
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

from . import checklist as checklistmod
from . import spec as specmod
from ..errors import RecorderError

PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn", "jinja2",
            "pyyaml", "papermill", "nbclient", "ipykernel", "scalerepro")


def environment() -> dict:
    """Python, platform and package versions of the process doing the computing."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "packages": versions}


def json_safe(obj):
    """Plain JSON: numpy scalars/arrays to Python, tuples to lists, NaN and inf to null."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``.

    A reader (or a crash) sees either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as JSON (see :func:`json_safe`), written as :func:`write_text_atomic` does."""
    write_text_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def write_report_and_results(out_dir, html: str, results: dict) -> None:
    """``out_dir/report.html`` and ``out_dir/results.json`` of a command run on a user's
    runs, each landing by rename (both are rendered before either is written)."""
    write_text_atomic(Path(out_dir) / "report.html", html)
    write_json_atomic(Path(out_dir) / "results.json", results)


def _number(value, what):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise RecorderError(f"{what} must be a number, got {value!r}") from None
    return value if math.isfinite(value) else None


def _interval(interval, what):
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise RecorderError(f"{what} must be (low, high), got {interval!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise RecorderError(f"{what} must be finite with low <= high, got {interval!r}")
    return [lo, hi]


class Recorder:
    """Collects one replication's numbers and writes ``out_dir/results.json``."""

    def __init__(self, replication: str, out_dir, parameters: dict | None = None, spec=None):
        self.spec = spec if spec is not None else specmod.load_spec(replication)
        self.replication = replication
        self.out_dir = Path(out_dir)
        self.parameters = dict(parameters or {})
        self.data: list[dict] = []
        self.fits: dict[str, dict] = {}
        self.main_fit: str | None = None
        self.claims: dict[str, dict] = {}
        self.figures: list[dict] = []
        self.tables: dict[str, list] = {}
        self.warnings: list[str] = []
        self.checklist = None
        self.seconds: dict[str, float] = {}
        self.diagnostics: list[dict] = []

    # ------------------------------------------------------------------ recording

    @classmethod
    def for_notebook(cls, replication: str, namespace: Mapping) -> "Recorder":
        """The Recorder of a notebook run, its parameters read from the notebook's namespace
        (``globals()``: the parameters cell and papermill's overrides) under the names the
        spec declares, and ``out_dir`` from there too, so no notebook lists its parameters a
        second time. A spec parameter the notebook does not define is an error naming it."""
        spec = specmod.load_spec(replication)
        missing = [name for name in [*spec.parameters, "out_dir"] if name not in namespace]
        if missing:
            raise RecorderError(f"the notebook of {replication} does not define {', '.join(missing)} "
                                f"(parameters of replications/{replication}.yaml, and out_dir)")
        return cls(replication, out_dir=namespace["out_dir"],
                   parameters={name: namespace[name] for name in spec.parameters}, spec=spec)

    def add_dataset(self, frame_or_info) -> None:
        """Record a dataset's name, file and sha256 (``data.load`` puts them in ``df.attrs``)."""
        info = getattr(frame_or_info, "attrs", frame_or_info)
        if not isinstance(info, dict) or "dataset" not in info:
            raise RecorderError("add_dataset needs a DataFrame from scalerepro.io.data.load "
                                "(with attrs 'dataset', 'file', 'sha256') or such a dict")
        entry = {k: info.get(k) for k in ("dataset", "file", "sha256")}
        if entry not in self.data:
            self.data.append(entry)

    def add_fit(self, name: str, fit_result, bootstrap=None, main: bool = False) -> None:
        """Store a fit's provenance record (and its bootstrap summary, if any).

        The first fit added, or the one marked ``main``, becomes ``results["fit"]``.
        """
        record = dict(fit_result.record())
        self.seconds[f"fit.{name}"] = record.pop("seconds", None)
        boot = bootstrap.record() if bootstrap is not None else None
        if boot is not None:
            boot = dict(boot)
            self.seconds[f"bootstrap.{name}"] = boot.pop("seconds", None)
        record["bootstrap"] = boot
        self.fits[name] = record
        if main or self.main_fit is None:
            self.main_fit = name

    def claim(self, claim_id: str, reproduced, interval=None, note: str = "") -> dict:
        """Record a reproduced value for a spec claim; the verdict is the spec rule's."""
        ids = [c["id"] for c in self.spec.claims]
        if claim_id not in ids:
            raise RecorderError(f"unknown claim id {claim_id!r} for {self.replication}; "
                                f"valid: {', '.join(ids)}")
        self.claims[claim_id] = {"reproduced": _number(reproduced, f"claim {claim_id!r} reproduced"),
                                 "reproduced_interval": _interval(interval, f"claim {claim_id!r} interval"),
                                 "note": str(note)}
        return self._evaluate(self.spec.claim(claim_id))

    def add_figure(self, name: str, figure, caption: str = "") -> Path:
        """Save a matplotlib figure as ``out_dir/figures/NAME.png`` and record its caption."""
        path = self.out_dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120, bbox_inches="tight")
        self.figures = [f for f in self.figures if f["name"] != name]
        self.figures.append({"name": name, "file": f"figures/{name}.png", "caption": caption})
        return path

    def add_table(self, name: str, frame) -> None:
        """Store a DataFrame as a list of row records."""
        self.tables[name] = frame.to_dict(orient="records")

    def add_diagnostic(self, diagnostic) -> None:
        """Record a finding about the analysis (a :class:`~scalerepro.diagnostics.Diagnostic`),
        shown first in the report; e.g. a parameter the data do not identify."""
        record = diagnostic.record()
        if record not in self.diagnostics:
            self.diagnostics.append(record)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(str(message))

    # ------------------------------------------------------------------ output
    def _evaluate(self, c: dict) -> dict:
        got = self.claims.get(c["id"])
        if got is None:
            if c["rule"]["kind"] == "not_testable":
                verdict, why = specmod.evaluate_claim(c, None)
            else:
                verdict, why = "inconclusive", "not measured by the notebook"
            got = {"reproduced": None, "reproduced_interval": None,
                   "note": "" if verdict == "not_testable" else "not measured by the notebook"}
        else:
            verdict, why = specmod.evaluate_claim(c, got["reproduced"], got["reproduced_interval"])
        return {"id": c["id"], "source": c["source"], "published": c.get("published"),
                "published_interval": c.get("published_interval"),
                "interval_level": c.get("interval_level"), "rule": c["rule"],
                "reproduced": got["reproduced"], "reproduced_interval": got["reproduced_interval"],
                "verdict": verdict, "why": why,
                "note": "; ".join(n for n in (got["note"], c.get("note", "")) if n)}

    def results(self) -> dict:
        fit = None
        if self.main_fit is not None:
            rec = self.fits[self.main_fit]
            fit = {"name": self.main_fit, "form": rec["form"], "params": rec["params"],
                   "intervals": (rec["bootstrap"] or {}).get("intervals")}
        warnings = list(self.warnings)
        for name, rec in self.fits.items():
            warnings += [f"fit {name}: {w}" for w in rec.get("warnings", [])]
            warnings += [f"fit {name} bootstrap: {w}" for w in (rec["bootstrap"] or {}).get("warnings", [])]
        return {"replication": self.replication, "title": self.spec.title,
                "paper": self.spec.paper, "purpose": self.spec.purpose,
                "parameters": self.parameters, "data": self.data, "fits": self.fits, "fit": fit,
                "claims": [self._evaluate(c) for c in self.spec.claims],
                "checklist": self.checklist, "figures": self.figures, "tables": self.tables,
                "warnings": warnings, "notebook_environment": environment(),
                "timing": {"computations_seconds": self.seconds},
                **({"diagnostics": list(self.diagnostics)} if self.diagnostics else {})}

    def write(self) -> dict:
        """Evaluate every spec claim, fill the checklist and write ``out_dir/results.json`` atomically."""
        results = self.results()
        if results["checklist"] is None:
            results["checklist"] = checklistmod.evaluate(json_safe(results), self.spec)
        write_json_atomic(self.out_dir / "results.json", results)
        return json_safe(results)

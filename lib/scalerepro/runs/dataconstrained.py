"""``scalerepro fit --form data_constrained``: Muennighoff et al.'s law on a user's runs.

The runs need N, D, the unique tokens U (``--columns U=COLUMN``) and the loss. The base law
(E, A, B, alpha, beta) is either given (``--base E=...,A=...,B=...,alpha=...,beta=...``, the
authors' protocol: only R_D* and R_N* are fitted) or fitted jointly with them. The pipeline:

1. read and validate the CSV (:mod:`scalerepro.io.runs_input`; U <= D on every row);
2. design checks: the generic ones, plus what this law needs -- repeated data at several
   repetition levels for R_D*, and for a joint fit enough unrepeated runs (D = U) spread in N
   and D/N to determine the base law, which is what decides U_N;
3. the fit from a full start grid (Huber, delta 1e-3, on log loss, summed), every start to
   convergence, and the distinct local minima it found;
4. a bootstrap by run in which every resample is refitted globally (the objective has
   several shallow basins, so a warm start from the full-data optimum would understate the
   spread), and the ``not_identified`` check of R_D* and R_N* on it;
5. with ``--unique-tokens U --budget C``: the allocation (N, D, epochs) minimizing the
   predicted loss along C = 6ND, exactly, with its bootstrap interval.

Writes ``results.json`` and ``report.html``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analyses import data_constrained as dc
from ..core import design_checks
from ..core.bootstrap import resample_weights
from ..core.fit import FitResult, fit
from ..core.stats import percentile_interval
from ..diagnostics import Diagnostic, sorted_by_severity
from ..io import runs_input
from ..io.data import sha256_file
from ..io.validate import InputError
from ..publishing.results import json_safe, write_report_and_results

BASE_KEYS = ("E", "A", "B", "alpha", "beta")
#: Distinct repetition levels (epochs > 1) below which R_D* rests on too few points.
MIN_REPETITION_LEVELS = 3
#: Unrepeated runs per base-law parameter a joint fit needs (as design_checks asks per parameter).
UNREPEATED_PER_PARAMETER = design_checks.POINTS_PER_PARAMETER


def parse_base(text: str | None) -> dict | None:
    """``"E=1.87,A=520.8,B=1487.7,alpha=0.353,beta=0.353"`` -> dict (positive numbers, all five)."""
    if text is None:
        return None
    base = {}
    for item in text.split(","):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in BASE_KEYS:
            raise ValueError(f"--base: {item!r} is not NAME=VALUE with NAME one of {', '.join(BASE_KEYS)}")
        try:
            base[key] = float(value)
        except ValueError:
            raise ValueError(f"--base: {key}={value!r} is not a number") from None
        if not (np.isfinite(base[key]) and base[key] > 0):
            raise ValueError(f"--base: {key} must be a positive finite number, got {value!r}")
    missing = [k for k in BASE_KEYS if k not in base]
    if missing:
        raise ValueError(f"--base needs all of {', '.join(BASE_KEYS)}; missing {', '.join(missing)}")
    return base


def design_diagnostics(frame: pd.DataFrame, law: dc.DataConstrained) -> list[Diagnostic]:
    """What these runs can determine of the data-constrained law (see the module doc)."""
    out = design_checks.design_diagnostics(frame, law)
    epochs = frame["D"] / frame["U"]
    levels = np.unique(np.round(epochs[epochs > 1 + 1e-9], 6))
    if len(levels) < MIN_REPETITION_LEVELS:
        out.append(Diagnostic(
            "design_points", "error",
            f"only {len(levels)} distinct repetition levels (epochs > 1: {', '.join(f'{e:.3g}' for e in levels) or 'none'}): "
            f"R_D*, the scale on which repeated data lose value, needs runs at {MIN_REPETITION_LEVELS} or more "
            "repetition counts, the more spread the better (e.g. 2, 8, 32 epochs)", ("R_D_star",)))
    elif epochs.max() < 4:
        out.append(Diagnostic(
            "narrow_range", "warning",
            f"at most {epochs.max():.3g} epochs: repeated data barely lose value this early, so R_D* is only "
            "bounded from below; runs at many more epochs determine it", ("R_D_star",)))
    if law.base is None:
        single = frame[epochs <= 1 + 1e-9]
        points = single[["N", "D"]].drop_duplicates()
        need = UNREPEATED_PER_PARAMETER * 5
        problems = []
        if len(points) < need:
            problems.append(f"{len(points)} distinct unrepeated (D = U) design points, fewer than {need} "
                            f"({UNREPEATED_PER_PARAMETER} per base parameter)")
        if len(points) >= 2:
            ratio = np.log10(points["D"].to_numpy() / points["N"].to_numpy())
            if np.ptp(ratio) < design_checks.COLLINEAR_DECADES:
                problems.append(f"their D/N spans only {np.ptp(ratio):.2f} decades, so the N and D terms of the "
                                "base law cannot be separated")
        if problems:
            out.append(Diagnostic(
                "design_points", "error",
                "the design does not allow fitting the base law jointly: " + "; ".join(problems) + ". The base "
                "law decides U_N (the parameters worth having for U unique tokens), so R_N* and R_D* inherit its "
                "error: give it with --base E=...,A=...,B=...,alpha=...,beta=... (the authors fixed theirs from "
                "Chinchilla's C4 runs) or add unrepeated runs across N and D", ("E", "A", "B", "alpha", "beta")))
        else:
            out.append(Diagnostic("design_points", "info",
                                  f"{len(points)} distinct unrepeated (D = U) design points spread in N and D/N: "
                                  "the base law is fitted jointly with R_D* and R_N*", ()))
    return out


@dataclass
class DataConstrainedFit:
    """Everything computed for one CSV; nothing is written until :func:`write_outputs`."""

    path: Path
    sha256: str
    law: dc.DataConstrained
    train: pd.DataFrame
    result: FitResult
    minima: list[dict]
    samples: dict | None
    diagnostics: list[Diagnostic]
    allocation: list[dict]
    options: dict
    resampling: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def unidentified(self) -> list[str]:
        return list(dict.fromkeys(s for d in self.diagnostics if d.severity == "error" and d.code == "not_identified"
                                  for s in d.subjects))

    def intervals(self, level: float = 0.95) -> dict:
        if not self.samples:
            return {}
        out = {}
        for name, draws in self.samples.items():
            if self.law.base is not None and name in BASE_KEYS:
                continue  # held fixed: no interval
            draws = np.asarray(draws, float)
            draws = draws[np.isfinite(draws)]
            if draws.size:
                out[name] = [float(v) for v in percentile_interval(draws, level)]
        return out

    def record(self) -> dict:
        status = "not identified" if any(d.severity == "error" for d in self.diagnostics) else self.result.outcome
        fit_record = self.result.record()
        return json_safe({
            "replication": None, "title": f"data-constrained fit of {self.path.name}",
            "command": "scalerepro fit --form data_constrained", "options": self.options,
            "data": [{"file": str(self.path), "sha256": self.sha256, "rows_used": int(len(self.train))}],
            "law": {"name": self.law.name, "equation": self.law.equation,
                    "base": "fixed (--base)" if self.law.base is not None else "fitted jointly"},
            "params": self.result.params, "intervals": self.intervals(), "status": status,
            "unidentified": self.unidentified,
            "bootstrap": None if self.samples is None else {
                "n_resamples": self.options["n_bootstrap"], "seed": self.options["seed"], "level": 0.95,
                "resampling": self.resampling, "method": "percentile; each resample refitted globally (the objective "
                "at every start, Newton from its 3 best)",
                "share_no_decay": {k: float(np.mean(np.asarray(v) >= dc.NO_DECAY)) for k, v in self.samples.items()
                                   if k in ("R_D_star", "R_N_star")}},
            "local_minima": self.minima, "allocation": self.allocation, "fits": {"main": fit_record},
            "diagnostics": [d.record() for d in sorted_by_severity(self.diagnostics)],
            "warnings": list(self.notes), "timing": {"seconds": round(self.seconds, 3)}})


def _check_unique(frame: pd.DataFrame, path: Path) -> None:
    bad = frame[frame["U"] > frame["D"] * (1 + 1e-9)]
    if len(bad):
        raise InputError(str(path), [f"line {int(line)}: unique tokens U = {u:.4g} exceed training tokens D = {d:.4g} "
                                     "(U is the number of distinct tokens seen, at most D)"
                                     for line, u, d in zip(bad["line"][:10], bad["U"][:10], bad["D"][:10])])


def fit_runs(path, columns: dict | None = None, base: dict | None = None, n_bootstrap: int = 200, seed: int = 0,
             unique_tokens: float | None = None, budgets=None, per_nd: str | None = None, checkpoints: str = "all",
             drop_highest_loss: int = 0) -> DataConstrainedFit:
    """Validate, check the design, fit, bootstrap by run, check identifiability, allocate."""
    t0 = time.perf_counter()
    path = Path(path)
    law = dc.DataConstrained(base=base)
    prepared = runs_input.prepare_runs(path, law, columns, per_nd=per_nd, checkpoints=checkpoints,
                                       drop_highest_loss=drop_highest_loss)
    train = prepared.frame
    _check_unique(train, path)
    X, y = train[list(law.inputs)].to_numpy(float), train["loss"].to_numpy(float)
    if len(y) <= law.n_params:
        raise InputError(str(path), [f"{len(y)} rows left to fit {law.n_params} parameters of {law.name}; need more runs"])
    diagnostics = prepared.all_diagnostics() + design_diagnostics(train, law)
    starts = dc.start_grid() if base is not None else law.default_starts()
    with np.errstate(all="ignore"):
        result = fit(law, X, y, starts=starts, bounds=dc.DECAY_BOUNDS, dropped=prepared.dropped, warn=False)
    samples = None
    if n_bootstrap:
        weights = resample_weights(len(y), n_bootstrap, seed, prepared.groups)
        boot_starts = dc.start_grid(16, 12) if base is not None else starts
        with np.errstate(all="ignore"):
            theta, _, _ = dc.global_refits(law, X, y, weights, boot_starts)
        natural = [law.natural(t) for t in theta]
        samples = {k: np.array([p[k] for p in natural]) for k in natural[0]}
        diagnostics += dc.decay_identifiability(samples)
    if not result.converged:
        diagnostics.append(Diagnostic("not_converged", "error", f"the best start did not converge ({result.message})",
                                      tuple(result.params)))
    allocation = []
    if unique_tokens is not None:
        for C in budgets or []:
            exact = dc.allocation_exact(result.params, C, unique_tokens)
            row = {"C": C, "U": unique_tokens, "N": exact["N"], "D": exact["D"], "epochs": exact["epochs"],
                   "loss": exact["loss"]}
            if samples is not None:
                with np.errstate(all="ignore"):
                    drawn = [dc.allocation_exact({k: v[i] for k, v in samples.items()}, C, unique_tokens, points=801)
                             for i in range(len(samples["R_D_star"]))]
                for key in ("N", "D", "epochs"):
                    values = np.array([d[key] for d in drawn])
                    row[f"{key}_interval"] = [float(v) for v in percentile_interval(values[np.isfinite(values)], 0.95)]
            allocation.append(row)
    options = {"form": "data_constrained", "starts": dc.describe_starts(law, starts),
               "columns": columns or {}, "base": base, "n_bootstrap": n_bootstrap,
               "seed": seed, "unique_tokens": unique_tokens, "budgets": list(budgets or []), "per_nd": per_nd,
               "checkpoints": checkpoints, "drop_highest_loss": drop_highest_loss}
    return DataConstrainedFit(path=path, sha256=sha256_file(path), law=law, train=train, result=result,
                              minima=dc.distinct_minima(result), samples=samples,
                              diagnostics=sorted_by_severity(diagnostics), allocation=allocation, options=options,
                              resampling=prepared.resampling, seconds=time.perf_counter() - t0,
                              notes=list(prepared.notes))


def write_outputs(found: DataConstrainedFit, out_dir) -> dict:
    """``out_dir/results.json`` and a plain ``report.html`` (the record as tables)."""
    from html import escape

    results = found.record()
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v:.6g}</td><td>{escape(str(results['intervals'].get(k, '')))}</td></tr>"
                   for k, v in results["params"].items())
    diags = "".join(f"<li><b>{escape(d['severity'])}</b> [{escape(d['code'])}] {escape(d['message'])}</li>"
                    for d in results["diagnostics"])
    alloc = "".join(f"<tr><td>{a['C']:.4g}</td><td>{a['U']:.4g}</td><td>{a['N']:.4g}</td><td>{a['D']:.4g}</td>"
                    f"<td>{a['epochs']:.4g}</td><td>{escape(str(a.get('epochs_interval', '')))}</td></tr>"
                    for a in results["allocation"])
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(results['title'])}</title></head><body>"
            f"<h1>{escape(results['title'])}</h1><p>{escape(results['law']['equation'])}; base "
            f"{escape(results['law']['base'])}; status: <b>{escape(results['status'])}</b></p>"
            f"<h2>Diagnostics</h2><ul>{diags}</ul><h2>Parameters (95% bootstrap intervals by run)</h2>"
            f"<table><tr><th>parameter</th><th>estimate</th><th>interval</th></tr>{rows}</table>"
            + (f"<h2>Allocation under a data limit</h2><table><tr><th>C</th><th>U</th><th>N</th><th>D</th>"
               f"<th>epochs</th><th>epochs interval</th></tr>{alloc}</table>" if alloc else "")
            + "</body></html>")
    write_report_and_results(out_dir, html, results)
    return results


def run(path, out_dir, **options) -> dict:
    """The whole ``scalerepro fit --form data_constrained``."""
    return write_outputs(fit_runs(path, **options), out_dir)

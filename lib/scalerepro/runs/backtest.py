"""Would the law have predicted your largest runs? ``scalerepro backtest``.

The command's orchestration (the ``runs`` layer): the figures and the HTML are rendered by
:mod:`scalerepro.publishing.backtest_figures` and :func:`scalerepro.publishing.report.render_backtest_report`.

1. read, validate and choose the points exactly as ``scalerepro fit`` does
   (:func:`scalerepro.io.runs_input.prepare_runs`: the same ``--columns``, ``--duplicate-rows``, ``--per-nd``,
   ``--checkpoints``, ``--drop-highest-loss``);
2. fold by compute and score every method on every fold
   (:func:`scalerepro.analyses.backtest.run_backtest`: one task per (method, fold), on Dask
   with ``client``);
3. ``backtest.json`` (folds, methods with their per-fold scores, ranking, diagnostics) and
   ``report.html`` (the ranking table and three figures), both rendered before either is
   written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..analyses import backtest
from ..core import laws
from ..diagnostics import sorted_by_severity
from ..io import runs_input
from ..io.data import sha256_file
from ..publishing.results import environment, json_safe, write_json_atomic, write_text_atomic


@dataclass
class UserBacktest:
    path: Path
    sha256: str
    prepared: runs_input.PreparedRuns
    result: backtest.Backtest
    started: str
    seconds: float


def backtest_runs(path, columns: dict[str, str] | None = None, per_nd: str | None = None, checkpoints: str = "all",
                  drop_highest_loss: int = 0, duplicate_rows: str = "error", methods: str = "default",
                  folds: int = backtest.DEFAULT_FOLDS,
                  cutoffs=None, n_bootstrap: int = backtest.N_BOOTSTRAP, seed: int = 0, client=None,
                  progress: bool = False) -> UserBacktest:
    """Read the runs as ``scalerepro fit`` does and backtest ``methods`` on compute folds
    (``folds`` largest compute levels, or ``cutoffs``); see :mod:`scalerepro.analyses.backtest`."""
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path = Path(path)
    prepared = runs_input.prepare_runs(path, laws.Chinchilla(), columns, per_nd=per_nd, checkpoints=checkpoints,
                                       drop_highest_loss=drop_highest_loss, duplicate_rows=duplicate_rows)
    result = backtest.run_backtest(prepared, which=methods, k=folds, cutoffs=cutoffs, n_bootstrap=n_bootstrap,
                                   seed=seed, client=client, progress=progress)
    return UserBacktest(path, sha256_file(path), prepared, result, started, time.perf_counter() - t0)


def record(ub: UserBacktest) -> dict:
    """backtest.json: ``folds``, ``methods`` (name, choices, per-fold scores with the held-out
    rows' predictions, pooled MARE and coverage, the comparison with the best), ``ranking``,
    ``diagnostics``, and how it was made."""
    bt = ub.result
    methods = []
    for method in bt.methods:
        folds = []
        for fold in bt.folds:
            score = bt.scores[(method.name, fold.cutoff_C)]
            folds.append({**score.record, "diagnostics": [d.record() for d in score.diagnostics],
                          "points": score.points.to_dict(orient="records")})
        methods.append({"name": method.name, "choices": method.choices(), "folds": folds,
                        **bt.method_summary(method), "vs_best": bt.comparison.get(method.name)})
    diagnostics = sorted_by_severity(ub.prepared.all_diagnostics() + bt.diagnostics)
    out = {"command": "backtest", "title": f"Backtest of fitting methods on {ub.path.name}",
           "data": {"file": str(ub.path.resolve()), "sha256": ub.sha256, "rows": int(len(ub.prepared.source)),
                    "rows_used": int(len(ub.prepared.frame)),
                    "runs": int(runs_input.run_labels(ub.prepared.frame).nunique())},
           "options": bt.options, "folds": backtest.fold_records(bt, ub.prepared), "methods": methods,
           "ranking": list(bt.ranking), "ranked_at": {"cutoff_C": bt.deepest.cutoff_C,
                                                      "by": "mean |relative error| at the deepest fold"},
           "skipped": bt.skipped, "diagnostics": [d.record() for d in diagnostics],
           "timing": {"start": ub.started, "seconds": round(ub.seconds, 3)}, "environment": environment()}
    return json_safe(out)


def ranking_rows(results: dict) -> list[dict]:
    """The terminal table: methods in ranking order, error at the deepest fold, pooled
    error and bias, coverage, and whether the difference from the best is within noise."""
    by_name = {m["name"]: m for m in results["methods"]}
    rows = []
    for rank, name in enumerate(results["ranking"], 1):
        m = by_name[name]
        vs = m.get("vs_best") or {}
        if rank == 1:
            noise = "best"
        elif vs.get("within_noise") is None:
            noise = ("not scored" if vs.get("difference") is None
                     else f"worse by {100 * vs['difference']:.2g} pts on {vs['runs']} run: noise unknown")
        elif vs["within_noise"]:
            noise = "within noise of the best"
        else:
            noise = f"worse by {100 * vs['difference']:.2g} pts [{100 * vs['interval'][0]:.2g}, {100 * vs['interval'][1]:.2g}]"
        pct = lambda v: "—" if v is None else f"{100 * v:.2f}%"  # noqa: E731
        rows.append({"rank": rank, "method": name, "MARE deepest": pct(m["mare_deepest"]), "MARE all": pct(m["mare"]),
                     "bias": pct(m["bias"]), "95% PI coverage": pct(m["coverage"]),
                     "folds": f"{m['folds_fitted']}/{len(m['folds'])}", "vs best (paired bootstrap)": noise})
    return rows


RANKING_COLUMNS = ["rank", "method", "MARE deepest", "MARE all", "bias", "95% PI coverage", "folds",
                   "vs best (paired bootstrap)"]


def write_outputs(ub: UserBacktest, out_dir) -> dict:
    """Write ``out_dir/backtest.json`` and ``out_dir/report.html``, both rendered first."""
    from ..publishing.backtest_figures import backtest_figures
    from ..publishing.report import render_backtest_report

    results = record(ub)
    html = render_backtest_report(results, backtest_figures(results), ranking_rows(results), RANKING_COLUMNS)
    write_text_atomic(Path(out_dir) / "report.html", html)
    write_json_atomic(Path(out_dir) / "backtest.json", results)
    return results


def run(path, out_dir, **options) -> dict:
    """The whole ``scalerepro backtest``: :func:`backtest_runs` then :func:`write_outputs`."""
    return write_outputs(backtest_runs(path, **options), out_dir)

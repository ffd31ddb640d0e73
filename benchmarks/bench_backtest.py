"""Benchmark: ``scalerepro backtest`` against one default ``scalerepro fit``, in one run.

The data: the README's learning-rate sweep ``data/examples/lr_sweep.csv`` read with
``--columns N=params,D=tokens,loss=eval_loss,run=run_name --per-nd best`` (80 runs). The
fit is ``scalerepro fit`` with its defaults (full start grid, 1000 bootstrap resamples,
identifiability checks, influence and the allocation); the backtest is ``scalerepro
backtest`` with its defaults (every form the columns can fit x three objectives, four
compute folds, 200 resamples behind each prediction interval). Both are timed in this
process, outputs included, after one warm-up of each (numba's kernels compiled or loaded
from its cache, outside the timings); machines and loads differ, so the target is a ratio:

    ratio = backtest_s / fit_s     (target <= 20)

in wall time and in processor time (``cpu_ratio``; this machine is shared, and processor
time is what the load does not inflate). Prints one JSON object; the exit status is 1
when the wall ratio misses the target.

Run as ``python benchmarks/bench_backtest.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from scalerepro.io import runs_input
from scalerepro.runs import fit as userfit
from scalerepro.runs import backtest as userbacktest

CSV = Path(__file__).resolve().parents[1] / "data" / "examples" / "lr_sweep.csv"
COLUMNS = runs_input.parse_columns("N=params,D=tokens,loss=eval_loss,run=run_name")
TARGET = 20.0


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        fit = lambda: userfit.run(CSV, Path(out) / "fit", columns=COLUMNS, per_nd="best")  # noqa: E731
        backtest = lambda: userbacktest.run(CSV, Path(out) / "backtest", columns=COLUMNS, per_nd="best")  # noqa: E731
        warm = timed(fit)[0] + timed(backtest)[0]
        fit_s = timed(fit)
        backtest_s = timed(backtest)
        record = json.loads((Path(out) / "backtest" / "backtest.json").read_text())
    result = {"fit_s": round(fit_s[0], 2), "backtest_s": round(backtest_s[0], 2),
              "ratio": round(backtest_s[0] / fit_s[0], 2), "target": TARGET,
              "fit_cpu_s": round(fit_s[1], 2), "backtest_cpu_s": round(backtest_s[1], 2),
              "cpu_ratio": round(backtest_s[1] / fit_s[1], 2), "warm_up_s": round(warm, 2),
              "methods": len(record["methods"]), "folds": len(record["folds"]),
              "load_average": os.getloadavg()}
    print(json.dumps(result, indent=2))
    return 0 if result["ratio"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

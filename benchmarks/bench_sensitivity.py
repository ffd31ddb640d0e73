"""Benchmark: the whole ``scalerepro sensitivity`` against one default fit, in one process.

On the synthetic 261-run learning-rate sweep with checkpoints (``tests/sweeps.py``,
``lr_sweep_checkpoints``: 81 (N, D) points, 3-4 learning rates each, 10 checkpoints per run,
2610 rows, from a known law), read as a user would (``--per-nd best``, every checkpoint:
810 rows enter the default fit), this times

- one default fit: Hoffmann's 4500 starts, batched Newton, on the default's rows;
- the whole command with its default options (every variant group, bootstraps, results.json
  and report.html written to a temporary directory).

Machines differ up to 3x in speed, so the target is the ratio: the whole command within 10
times the one fit (issue 15). It prints one JSON object

    rows, default_rows, variants_fitted, default_fit_s, command_s, ratio, target_ratio,
    default_variant_s (its fit, identifiability checks and 1000 resamples), scipy_variants_s,
    slowest_variants

and exits with status 1 when the ratio exceeds the target. Run as
``python benchmarks/bench_sensitivity.py`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import sweeps  # noqa: E402
from scalerepro.core import laws  # noqa: E402
from scalerepro.io import runs_input
from scalerepro.runs import sensitivity as usersensitivity
from scalerepro.core.fit import FitWarning, fit  # noqa: E402

TARGET_RATIO = 10.0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic sweep")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        csv = sweeps.write(sweeps.lr_sweep_checkpoints(args.seed), Path(tmp) / "lr_sweep_checkpoints.csv")
        columns = runs_input.parse_columns(sweeps.SWEEP_COLUMNS)
        law = laws.Chinchilla()
        prepared = runs_input.prepare_runs(csv, law, columns, per_nd="best")
        X, y = prepared.frame[["N", "D"]].to_numpy(float), prepared.frame["loss"].to_numpy(float)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            default = fit(law, X, y)
        fit_s = time.perf_counter() - t0
        if not default.converged or default.n_starts != 4500:
            raise SystemExit(f"the default fit did not converge from 4500 starts: {default.message}")
        t0 = time.perf_counter()
        results = usersensitivity.run(csv, Path(tmp) / "out", columns=columns, per_nd="best")
        command_s = time.perf_counter() - t0
    slowest = sorted(results["variants"], key=lambda v: -v["seconds"])[:5]
    scipy = [v for v in results["variants"] if v["choices"]["optimizer"] not in ("newton", "grid")]
    out = {"rows": results["selection"]["rows_read"], "default_rows": len(y),
           "variants_fitted": len(results["variants"]), "default_fit_s": round(fit_s, 2),
           "command_s": round(command_s, 2), "ratio": round(command_s / fit_s, 2), "target_ratio": TARGET_RATIO,
           "default_variant_s": results["default"]["seconds"],
           "scipy_variants_s": round(sum(v["seconds"] for v in scipy), 2),
           "slowest_variants": {v["variant"]: v["seconds"] for v in slowest}}
    return out


if __name__ == "__main__":
    result = main()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.exit(0 if result["ratio"] <= TARGET_RATIO else 1)

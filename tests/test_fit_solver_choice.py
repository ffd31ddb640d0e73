"""``scalerepro fit`` fits the Chinchilla family with the exact profile solver and keeps the
full start grid as the reference: its results, verdicts and diagnostics are those of the full
grid (compared to tolerance, not to the last bit), and the grid's fit is used whenever the
profile fit is not plainly the global one or the identifiability checks find anything."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import sweeps
from conftest import load_or_skip
from scalerepro.core import laws
from scalerepro.runs import fit as userfit

ROOT = Path(__file__).resolve().parents[1]
LR_SWEEP = ROOT / "data" / "examples" / "lr_sweep.csv"
LR_COLUMNS = userfit.parse_columns("N=params,D=tokens,loss=eval_loss,run=run_name")
#: How each fit was made differs by design (solver, starts, timing); everything else must agree.
HOW_MADE = {"optimizer", "initialization", "timing", "seconds", "starts_at_best", "hessian_condition",
            "gradient_max_abs", "end", "checklist"}
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _same(a, b, where="", rel=1e-6):
    """Equal records, numbers to ``rel`` (also the numbers inside text: diagnostic messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), where
        for key in a:
            if key not in HOW_MADE:
                _same(a[key], b[key], f"{where}/{key}", rel)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]", rel)
    elif isinstance(a, float) and isinstance(b, float) and not (math.isnan(a) and math.isnan(b)):
        assert a == pytest.approx(b, rel=rel, abs=1e-12), where
    elif isinstance(a, str) and isinstance(b, str):
        assert NUMBER.sub("#", a) == NUMBER.sub("#", b), where
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            assert float(x) == pytest.approx(float(y), rel=1e-3), (where, a, b)  # printed to 4 digits
    else:
        assert a == b, where


def _both(path, **options):
    """The command's fit (profile solver, checked) and the full start grid's, on the same rows."""
    chosen = userfit.fit_runs(path, **options)
    grid = userfit.fit_runs(path, starts=laws.Chinchilla().default_starts(), **options)
    return chosen, grid


def _assert_identical(chosen, grid):
    assert chosen.result.optimizer["name"] == "profile", chosen.result.optimizer.get("global_check")
    assert chosen.result.optimizer["global_check"].startswith("profile solver used")
    assert grid.result.optimizer["name"] == "newton" and grid.result.n_starts == 4500
    assert chosen.result.objective_value == pytest.approx(grid.result.objective_value, rel=1e-10)
    assert chosen.status == grid.status and chosen.outcome == grid.outcome
    assert [(d.code, d.severity, d.subjects) for d in chosen.diagnostics] == \
        [(d.code, d.severity, d.subjects) for d in grid.diagnostics]
    _same(chosen.record(), grid.record())


def test_chinchilla_points_profile_fit_is_the_full_grid_fit(tmp_path):
    df = load_or_skip("besiroglu2024_chinchilla")
    df = df.drop(df["loss"].nlargest(5).index)
    path = tmp_path / "chinchilla240.csv"
    df[["N", "D", "loss"]].to_csv(path, index=False)
    _assert_identical(*_both(path))


def test_lr_sweep_example_profile_fit_is_the_full_grid_fit():
    _assert_identical(*_both(LR_SWEEP, columns=LR_COLUMNS, per_nd="best"))


def test_a_fit_the_checks_flag_is_the_full_grid_fit(tmp_path):
    # 9 points, E -> 0: not identified, so the full grid's fit (and its spread of starts) is used
    path = sweeps.write(sweeps.few_points(), tmp_path / "few.csv")
    uf = userfit.fit_runs(path, n_bootstrap=0)
    assert uf.outcome.startswith("not identified")
    assert uf.result.optimizer["name"] == "newton" and uf.result.n_starts == 4500
    assert uf.result.optimizer["global_check"].startswith("full start grid used")
    grid = userfit.fit_runs(path, n_bootstrap=0, starts=laws.Chinchilla().default_starts())
    assert [d.record() for d in uf.diagnostics] == [d.record() for d in grid.diagnostics]

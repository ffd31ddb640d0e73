"""One summary for every result type (scalerepro.summary.Summary): the same numbers as the
result's record, as aligned text (print) and as an escaped HTML table (Jupyter)."""

import numpy as np
import pandas as pd
import pytest

from conftest import CHINCHILLA_TRUTH, synthetic_chinchilla_fit
from scalerepro.summary import Row, Summary


def row_values(text: str) -> dict[str, str]:
    """name -> value cell of each table line of a summary's text (two spaces of indent)."""
    out = {}
    for line in text.splitlines()[2:]:   # title, header
        cells = line.split()
        if len(cells) >= 2 and line.startswith("  ") and not line.startswith("   "):
            out.setdefault(cells[0], cells[1])
    return out


@pytest.fixture(scope="module")
def fitted():
    return synthetic_chinchilla_fit(n=60, seed=3, n_starts=6, n_resamples=60, boot_seed=1)


# ----------------------------------------------------------------------------- Summary itself
def test_text_is_aligned_and_shows_only_the_columns_it_has():
    s = Summary("a title", [Row("E", 1.8), Row("alpha_long_name", 0.35)], ["status: converged"])
    lines = str(s).splitlines()
    assert lines[0] == "a title"
    assert "interval" not in str(s) and "SE" not in str(s)
    assert lines[2].index("1.8") + len("1.8") == lines[3].index("0.35") + len("0.35")   # right-aligned values
    assert lines[-1] == "  status: converged"
    assert repr(s) == str(s)
    with_interval = str(Summary("t", [Row("a", 0.5, (0.4, 0.6), 0.05), Row("b", 2.0)], level=0.9))
    assert "90% interval" in with_interval and "[0.4, 0.6]" in with_interval and "0.05" in with_interval
    assert with_interval.splitlines()[3].split() == ["b", "2", "—", "—"]


def test_html_is_a_table_and_escapes_text():
    s = Summary("fit of <runs>.csv", [Row("a<b", 1.0, (0.5, 1.5))], ["warning: x < 0 & y > 1"], level=0.95)
    page = s._repr_html_()
    assert "<table>" in page and "<th>95% interval</th>" in page and "[0.5, 1.5]" in page
    assert "fit of &lt;runs&gt;.csv" in page and "a&lt;b" in page and "x &lt; 0 &amp; y &gt; 1" in page
    assert "<runs>" not in page and "a<b" not in page


def test_numbers_of_every_kind_render():
    s = str(Summary("t", [Row("f32", np.float32(0.25)), Row("i", np.int64(7)), Row("nan", float("nan")),
                          Row("inf", np.inf), Row("none", None), Row("flag", True), Row("word", "n/a")]))
    assert row_values(s) == {"f32": "0.25", "i": "7", "nan": "nan", "inf": "inf", "none": "—", "flag": "True",
                             "word": "n/a"}


# ----------------------------------------------------------------------------- the result types
def test_fit_summary_shows_the_fitted_parameters_interval_and_status(fitted):
    result, boot = fitted
    text, page = str(result.summary(boot)), result.summary(boot)._repr_html_()
    values = row_values(text)
    start = result.law.natural(result.best_start)
    for name, value in result.params.items():
        assert values[name] == f"{value:.6g}", name                 # the fitted value, as recorded
        assert value == pytest.approx(CHINCHILLA_TRUTH[name], rel=0.1), name   # near the truth it was drawn from
        assert f"{start[name]:.6g}" != values[name], name           # and not the start it began from
        assert f"<td style=\"text-align:right\">{value:.6g}</td>" in page
        low, high = boot.interval(name)
        assert f"[{low:.6g}, {high:.6g}]" in text and f"[{low:.6g}, {high:.6g}]" in page
    assert "95% interval" in text and "SE" in text
    assert "status: converged" in text and "status: converged" in page
    assert "60 resamples" in text and f"{result.objective_value:.10g}" in text
    without = str(result.summary())
    assert "interval" not in without.splitlines()[1] and row_values(without)["E"] == values["E"]
    assert repr(result).startswith("FitResult(chinchilla fit")


def test_fit_summary_says_when_a_fit_did_not_converge(fitted):
    from scalerepro.core.fit import fit

    result, _ = fitted
    problem = result.problem
    stopped = fit(result.law, problem.X, problem.y, starts=result.best_start[None, :] + 0.5,
                  options={"max_iter": 2}, warn=False)
    assert "status: max iterations" in str(stopped.summary())


def test_bootstrap_summary_shows_estimate_interval_and_se(fitted):
    result, boot = fitted
    text = str(boot.summary())
    assert text.startswith("bootstrap: 60 resamples")
    values = row_values(text)
    se = boot.standard_errors()
    for name in result.params:
        low, high = boot.interval(name)
        assert values[name] == f"{boot.point_estimate[name]:.6g}"
        assert f"[{low:.6g}, {high:.6g}]" in text and f"{se[name]:.6g}" in text
    assert "seed 1" in text and "0 failed" in text


def test_allocation_summary_with_and_without_interval():
    from scalerepro.analyses import approaches as ap
    from test_approaches import CHINCHILLA, isoflop_sweep

    runs = isoflop_sweep(CHINCHILLA, sizes=12)
    runs["loss"] *= np.exp(np.random.default_rng(2).normal(0, 0.003, len(runs)))
    with_ci = ap.approach2(runs, n_resamples=40)
    text = str(with_ci.summary())
    assert text.startswith("approach 2 (IsoFLOP profiles)")
    assert row_values(text)["a"] == f"{with_ci.a:.6g}"
    assert f"[{with_ci.a_interval[0]:.6g}, {with_ci.a_interval[1]:.6g}]" in text
    none = ap.approach2(runs, n_resamples=0)
    assert "no interval: no bootstrap" in str(none.summary())


def test_user_fit_summary_carries_status_diagnostics_and_intervals(tmp_path):
    from scalerepro.runs import fit as userfit
    from sweeps import few_points, write

    uf = userfit.fit_runs(write(few_points(), tmp_path / "few.csv"), n_bootstrap=30, seed=0)
    s = uf.summary()
    text, page = str(s), s._repr_html_()
    assert text.startswith("chinchilla fit of few.csv")
    assert f"status: {uf.status.value} ({uf.outcome})" in text
    assert uf.status.value == "not identified" and "not identified" in page
    assert row_values(text)["alpha"] == f"{uf.result.params['alpha']:.6g}"
    assert "interval" in text.splitlines()[1]
    errors = [d for d in uf.diagnostics if d.severity == "error"]
    assert errors and all(f"error: {d.message}" in text for d in errors)


def test_sensitivity_summary_lists_each_variant_and_why_some_are_out():
    from scalerepro.analyses.sensitivity import SensitivityResult

    table = pd.DataFrame([
        {"variant": "default", "a": 0.51, "a 95% low": 0.48, "a 95% high": 0.55, "identified": True,
         "outcome": "identified"},
        {"variant": "MSE", "a": 0.62, "a 95% low": np.nan, "a 95% high": np.nan, "identified": False,
         "outcome": "not identified: E"},
        {"variant": "raised", "identified": False, "outcome": "failed: FitError"},
    ])
    s = SensitivityResult(table=table, fits={}, boots={}, budgets=(1e21,),
                          skipped=[{"variant": "final only", "group": "data", "reason": "no checkpoints"}]).summary()
    text = str(s)
    lines = text.splitlines()
    assert lines[2].split() == ["default", "0.51", "[0.48,", "0.55]"]
    assert lines[3].split() == ["MSE", "0.62", "—"] and lines[4].split() == ["raised", "nan", "—"]
    assert "MSE: not identified: E" in text and "raised: failed: FitError" in text
    assert "skipped final only: no checkpoints" in text
    assert "default: identified" not in text

    from pathlib import Path

    from scalerepro.diagnostics import Diagnostic
    from scalerepro.runs.sensitivity import UserSensitivity

    user = UserSensitivity(path=Path("runs.csv"), sha256="", prepared=None, result=SensitivityResult(
        table=table, fits={}, boots={}, budgets=(1e21,)), options={}, not_applicable=[], seconds=0.0, started="",
        diagnostics=[Diagnostic("not_identified", "warning", "2 of 3 variants are not identified", ()),
                     Diagnostic("dropped_points", "info", "nothing dropped", ())]).summary()
    assert user.title.endswith("3 variants, on runs.csv") and user.table() == s.table()
    assert "warning: 2 of 3 variants are not identified" in str(user) and "nothing dropped" not in str(user)


def test_isoflop_power_law_summary_shows_the_exponent_and_its_replicate_interval():
    from scalerepro.analyses.isoflop import find_optimum, fit_power_law
    from test_isoflop import synthetic_budgets

    rng = np.random.default_rng(0)
    optima = [find_optimum(n, loss, c, n_replicates=40, noise_sd=0.002, rng=rng)
              for c, n, loss, _ in synthetic_budgets(a=0.6, skew=0.15)]
    fit = fit_power_law(optima)
    text = str(fit.summary())
    assert text.startswith("x* = k C^a")
    assert row_values(text)["a"] == f"{fit.exponent:.6g}" and abs(fit.exponent - 0.6) < 0.03
    assert f"[{fit.interval[0]:.6g}, {fit.interval[1]:.6g}]" in text
    assert f"budgets: {len(optima)} used, 0 dropped" in text


def test_loss_to_loss_map_summary_shows_its_parameters():
    from scalerepro.analyses.loss_to_loss import ShiftedPowerLaw

    x = np.linspace(2.5, 4.0, 12)
    y = 1.7 * (x - 1.5) ** 0.8 + 0.4          # a known map, fitted with its shifts given
    law = ShiftedPowerLaw.fit_ols(x, y, 1.5, 0.4)
    values = row_values(str(law.summary()))
    assert float(values["kappa"]) == pytest.approx(0.8, rel=1e-6) and float(values["K"]) == pytest.approx(1.7, rel=1e-6)
    assert float(values["r2"]) == pytest.approx(1.0)
    assert "(ols, 12 points)" in str(law.summary()).splitlines()[0]


def test_identifiability_summary_names_what_the_data_cannot_tell(tmp_path):
    from scalerepro.runs import fit as userfit
    from sweeps import few_points, write

    uf = userfit.fit_runs(write(few_points(), tmp_path / "few.csv"), n_bootstrap=0, seed=0)
    ident = uf.identifiability
    text = str(ident.summary())
    assert ident.unidentified and text.startswith(f"identifiability: not identified: {', '.join(ident.unidentified)}")
    severities = [line.split(":")[0].strip() for line in text.splitlines()[1:] if line.strip()]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)

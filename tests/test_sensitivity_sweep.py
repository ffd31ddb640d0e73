"""The survey's variant groups on a real-looking sweep (issue 15).

A learning-rate sweep with checkpoints from a known law (``sweeps.lr_sweep_checkpoints``:
81 (N, D) points, 3 learning rates each and a 4th at the two largest sizes, 261 runs of
10 checkpoints) read as ``scalerepro fit`` reads it. Each data group must change exactly
what it says, the bootstrap must resample whole runs (or (N, D) groups), a variant that
coincides with the default must not be listed twice, and a variant the data do not identify
must say so and stay out of the spread.
"""

import json

import numpy as np
import pandas as pd
import pytest

import sweeps
from scalerepro.core import bootstrap as bootstrapmod
from scalerepro import cli
from scalerepro.core import laws
from scalerepro.io import runs_input
from scalerepro.analyses import sensitivity
from scalerepro.runs import sensitivity as usersensitivity
from scalerepro.analyses.sensitivity import Options, Variant

CI_GRID = dict(a=[0, 10, 20], b=[0, 10, 20], e=[-1, 0, 1], alpha=[0, 0.5, 1], beta=[0, 0.5, 1])


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    return sweeps.write(sweeps.lr_sweep_checkpoints(), tmp_path_factory.mktemp("sweep") / "sweep.csv")


@pytest.fixture(scope="module")
def prepared(sweep_csv):
    return runs_input.prepare_runs(sweep_csv, laws.Chinchilla(), runs_input.parse_columns(sweeps.SWEEP_COLUMNS),
                                   per_nd="best")


def data(prepared, **choices):
    return sensitivity.variant_data(prepared, Variant("v", "test", data=choices))


def final_rows(frame):
    return frame[runs_input.final_rows(frame)]


def test_the_sweep_has_the_published_shape(prepared):
    source = prepared.source
    assert len(source) == 2610 and source["run"].nunique() == 261
    final = final_rows(source)
    assert final.groupby(["N", "D"]).ngroups == 81
    assert len(prepared.frame) == 810  # the default: the best run of each (N, D), all its checkpoints
    # the best learning rate falls below the swept ones at large sizes: counted per (N, D) point, not per row
    edge, = [d for d in prepared.diagnostics if d.code == "hyperparameter_edge"]
    assert " of 81 (N, D) points" in edge.message and edge.severity == "warning"


def test_best_per_nd_and_all_rows_select_different_point_sets(prepared):
    best, every = data(prepared, per_nd="best"), data(prepared, per_nd="all")
    assert len(best.frame) == 810 and len(every.frame) == 2610
    assert set(best.frame.index) < set(every.frame.index)
    # best: one run per (N, D), and it is the run with the lowest final loss there
    final = final_rows(prepared.source)
    lowest = final.loc[final.groupby(["N", "D"])["loss"].idxmin(), "run"]
    assert set(best.frame["run"]) == set(lowest) and best.frame["run"].nunique() == 81
    assert all(d["reason"].startswith("not the lowest-loss run") for d in best.selection.dropped)
    # all rows resample whole (N, D) groups; best resamples whole runs
    assert len(np.unique(every.selection.groups)) == 81 and "(N, D) groups" in every.selection.resampling
    assert len(np.unique(best.selection.groups)) == 81 and "whole runs" in best.selection.resampling


def test_a_fixed_learning_rate_keeps_only_its_runs(prepared):
    fixed = data(prepared, fixed=("learning_rate", 2e-3))
    assert set(fixed.frame["learning_rate"]) == {2e-3} and fixed.frame["run"].nunique() == 81
    assert len(fixed.frame) == 810


def test_final_all_and_late_checkpoints(prepared):
    final, every = data(prepared, checkpoints="final"), data(prepared, checkpoints="all")
    late = data(prepared, checkpoints="all", after=0.5)
    assert len(final.frame) == 81 and final.frame["run"].is_unique
    assert (final.frame["step"] == 1000).all()
    assert len(every.frame) == 810
    assert final.selection.groups is None  # one row per run: points are runs
    assert sorted(late.frame["step"].unique()) == [600, 700, 800, 900, 1000]
    assert all("before 50%" in d["reason"] for d in late.selection.dropped
               if "lowest-loss" not in d["reason"])


def test_tokens_per_parameter_filter_drops_the_right_runs(prepared):
    low, high = data(prepared, tpp_max=18.0), data(prepared, tpp_min=22.0)
    for kept, keep in ((low, lambda t: t <= 18), (high, lambda t: t >= 22)):
        final = final_rows(kept.frame)
        tpp = final["D"] / final["N"]
        assert keep(tpp.round(6)).all()
        assert len(final) == 36 and len(kept.frame) == 360  # 4 of 9 ratios, whole runs with their checkpoints
    # early checkpoints of a long run have a small D/N, but the run's own ratio decides
    early = prepared.frame[(prepared.frame["step"] == 100)]
    long_runs = early.loc[early["run"].str.contains("tpp80"), "run"]
    assert not set(long_runs) & set(low.frame["run"])
    reasons = {d["reason"] for d in low.selection.dropped} - {"not the lowest-loss run at its (N, D) (--per-nd best)"}
    assert reasons == {"its run is trained to more than 18 tokens per parameter"}


def test_model_size_and_counting(prepared):
    small = data(prepared, max_N=1e8)
    assert small.frame["N"].max() <= 1e8 and small.frame["N"].nunique() == 3
    counted = data(prepared, n_column="params")
    assert (counted.frame["N"] == counted.frame["params"]).all()
    assert np.allclose(counted.frame["C"], 6 * counted.frame["N"] * counted.frame["D"])
    assert (counted.frame["N"] > prepared.frame["N"]).all()


def test_user_variants_list_each_group_once_and_skip_what_coincides(prepared):
    variants, not_applicable = sensitivity.user_variants(prepared, n_column="params")
    groups = {v.group for v in variants}
    assert {"hyperparameter selection", "checkpoints", "data subset", "parameter counting", "outliers"} <= groups
    assert not not_applicable
    planned, skipped = sensitivity.plan_variants(prepared, variants)
    names = [v.name for v, _ in planned]
    assert names[0] == "default" and len(names) == len(set(names))
    why = {s["variant"]: s["reason"] for s in skipped}
    assert why["checkpoints: all"].startswith("the default already uses checkpoints all")
    assert why["hyperparameters: best run per (N, D)"].startswith("the default already uses per_nd best")
    assert "outliers: drop the 5 highest losses" in names  # the default drops nothing
    assert not any(n.startswith("outliers: keep") for n in names)
    # learning rates at most (N, D) points get a fixed-value variant; the 4th rate (18 points) does not
    assert {n for n in names if "learning_rate =" in n} == {
        "hyperparameters: learning_rate = 0.001 only", "hyperparameters: learning_rate = 0.002 only",
        "hyperparameters: learning_rate = 0.004 only"}


def test_groups_that_cannot_apply_are_left_out_with_the_reason(tmp_path):
    runs = sweeps.lr_sweep().rename(columns={"params": "N", "tokens": "D", "eval_loss": "loss"})
    runs = runs[runs["learning_rate"] == 1e-3]  # one run per (N, D), no checkpoints
    path = sweeps.write(runs, tmp_path / "runs.csv")
    prepared = runs_input.prepare_runs(path, laws.Chinchilla())
    variants, not_applicable = sensitivity.user_variants(prepared)
    assert {n["group"] for n in not_applicable} == {"checkpoints", "hyperparameter selection", "parameter counting"}
    assert not any(v.group in ("checkpoints", "hyperparameter selection") for v in variants)


def test_the_bootstrap_resamples_whole_runs(prepared, monkeypatch):
    seen = []
    real = bootstrapmod.resample_weights

    def spy(n, r, seed, groups=None):
        weights = real(n, r, seed, groups)
        seen.append((groups, weights))
        return weights

    monkeypatch.setattr(bootstrapmod, "resample_weights", spy)
    variant = Variant("late", "checkpoints", data={"after": 0.5}, starts="best_grid", k=5, bootstrap=True)
    result = sensitivity.run_variant(prepared, variant, Options(grid_axes=CI_GRID, n_bootstrap_variants=30,
                                                                budgets=(1e21,)))
    (groups, weights), = seen
    runs = result.data.frame["run"].to_numpy()
    assert groups is not None and len(np.unique(groups)) == len(np.unique(runs)) == 81
    for run in np.unique(runs)[:20]:  # every row of a run is drawn together
        block = weights[:, runs == run]
        assert (block == block[:, :1]).all()
    assert result.boot.resampling.startswith("whole runs") and result.row["resampling"].startswith("whole runs")
    assert np.isfinite([result.row["tokens_per_param@1e+21 95% low"], result.row["tokens_per_param@1e+21 95% high"]]).all()


def test_a_variant_is_the_same_alone_or_among_others(prepared):
    """Each variant is a seed-determined task: order and company do not change it."""
    options = Options(grid_axes=CI_GRID, n_bootstrap=20, n_bootstrap_variants=20, budgets=(1e21,))
    a = Variant("random", "initialization", starts="random", k=5, bootstrap=True)
    b = Variant("final", "checkpoints", data={"checkpoints": "final"}, starts="best_grid", k=5, bootstrap=True)
    alone = sensitivity.run_variant(prepared, a, options).row
    together = sensitivity.run_variants(prepared, [Variant("default", "default", starts="best_grid", k=5), b, a],
                                        options).results["random"].row
    for key in ("alpha", "beta", "a 95% low", "a 95% high"):
        assert alone[key] == together[key]


def test_an_unidentified_variant_says_so_and_stays_out_of_the_spread(tmp_path):
    """Few runs for five parameters: the best fit has E -> 0 (the issue's 'E = 5.7e-8 marked
    converged'); it must come out 'not identified' and be left out of the spread."""
    path = sweeps.write(sweeps.few_points(), tmp_path / "few.csv")
    us = usersensitivity.sensitivity_runs(path, budgets=[1e21], n_bootstrap=0, n_bootstrap_variants=0,
                                          screened_starts=10, grid_axes=CI_GRID, groups=["form"])
    results = us.record()
    assert [v["variant"] for v in results["variants"]] == ["default", "form: alpha = beta"]
    default = results["default"]
    assert default["identified"] is False and default["outcome"].startswith("not identified")
    assert "E" in default["outcome"]
    assert any(d["code"] == "implausible_parameter" and d["severity"] == "error" for d in default["diagnostics"])
    assert default["in_spread"] is False
    spread = results["spread"]["budgets"][0]["tokens_per_param"]
    assert "default" in spread["excluded"]
    assert any(d["code"] == "not_identified" and d["severity"] == "warning" for d in results["diagnostics"])
    us.options["include_unidentified"] = True
    included = us.record()["spread"]["budgets"][0]["tokens_per_param"]
    assert "default" not in included["excluded"]


def test_cli_writes_results_and_report(sweep_csv, tmp_path, capsys):
    small = pd.read_csv(sweep_csv)
    small = small[small["non_embedding_params"] <= 2e8]  # 5 sizes, fast
    path = sweeps.write(small, tmp_path / "small.csv")
    out = tmp_path / "out"
    code = cli.main(["sensitivity", path, "--columns", sweeps.SWEEP_COLUMNS, "--per-nd", "best",
                     "--checkpoints", "final", "--budget", "1e21", "--budget", "1e22", "--n-bootstrap", "20",
                     "--n-bootstrap-variants", "10", "--n-bootstrap-scipy", "2", "--scipy-starts", "2",
                     "--screened-starts", "10", "--groups", "checkpoints,parameter_counting,initialization",
                     "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tokens per parameter spread" in printed and "wrote" in printed
    # approach 1's envelope method, a fitting choice shown beside the variants
    assert "1 lower envelope" in printed and "1 lower convex hull" in printed
    assert cli.main(["sensitivity", path, "--columns", sweeps.SWEEP_COLUMNS, "--per-nd", "best",
                     "--groups", "nosuch", "--out", str(tmp_path / "x")]) == 2
    assert "unknown group(s) nosuch; valid:" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["budgets"] == [1e21, 1e22]
    assert [r["envelope"] for r in results["approach1_envelopes"]] == ["grid", "lower_hull"]
    choice, = [d for d in results["diagnostics"] if d["code"] == "envelope_choice"]
    assert f"{results['approach1_envelopes'][1]['a']:.4f} by the lower convex hull" in choice["message"]
    names = [v["variant"] for v in results["variants"]]
    assert names[0] == "default" and "checkpoints: all" in names and "counting: N from 'params' (with embeddings)" in names
    for v in results["variants"]:
        assert {"choices", "params", "allocation", "outcome", "diagnostics", "seconds"} <= set(v)
        assert [a["C"] for a in v["allocation"]] == [1e21, 1e22]
    assert results["default"]["bootstrap"]["n_resamples"] == 20
    dropped, = [d for d in results["diagnostics"] if d["code"] == "dropped_points"]
    assert "points_dropped" in dropped["message"] and "fits.main" not in dropped["message"]
    assert len(results["points_dropped"]) == results["selection"]["rows_read"] - results["selection"]["rows_used"]
    screening, = [d for d in results["diagnostics"] if d["code"] == "screened_starts"]
    assert screening["severity"] == "info" and "reach the full 4500-start grid's optimum" in screening["message"]
    assert results["default"]["choices"]["starts"] == "grid"
    assert any(s["variant"] == "checkpoints: final only" for s in results["skipped"])
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Spread of the allocation" in html
    assert '<section id="envelopes">' in html and "approach 1 (lower convex hull)" in html


def test_cli_bad_input_is_one_clear_error(sweep_csv, tmp_path, capsys):
    assert cli.main(["sensitivity", sweep_csv, "--columns", sweeps.SWEEP_COLUMNS, "--out", str(tmp_path)]) == 2
    assert "several runs per (N, D)" in capsys.readouterr().err  # the same message as `scalerepro fit`
    assert cli.main(["sensitivity", sweep_csv, "--columns", sweeps.SWEEP_COLUMNS, "--per-nd", "best",
                     "--alt-params", "nosuch", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--alt-params 'nosuch'" in err and "'params'" in err
    assert not (tmp_path / "results.json").exists()

"""Rows repeating a run's checkpoint (issue 35): ``--duplicate-rows error|last|first|mean``.

The file is :func:`sweeps.restarted_checkpoint_log`: 20 runs with 10 checkpoints each, four
of them restarted from an earlier checkpoint so that some steps are logged twice, the repeat
later in the file; three restarts replay nearly the same losses, one diverged (6% higher).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import sweeps
from scalerepro import cli
from scalerepro.analyses import sensitivity
from scalerepro.core import laws
from scalerepro.io import runs_input
from scalerepro.io.validate import InputError
from scalerepro.runs import fit as userfit

STARTS = laws.Chinchilla().default_starts()[::9]
COLUMNS = runs_input.parse_columns(sweeps.RESTART_COLUMNS)
LAW = laws.Chinchilla()


@pytest.fixture(scope="module")
def log():
    return sweeps.restarted_checkpoint_log()


@pytest.fixture(scope="module")
def csv(log, tmp_path_factory):
    return sweeps.write(log, tmp_path_factory.mktemp("restarts") / "checkpoints.csv")


def repeats(log) -> pd.DataFrame:
    """The repeated (run, step) rows, with their file lines (header = line 1), found by pandas."""
    out = log.assign(line=np.arange(len(log)) + 2)
    return out[out.duplicated(["run_name", "step"], keep=False)]


def prepare(csv, mode):
    return runs_input.prepare_runs(csv, LAW, COLUMNS, duplicate_rows=mode)


def test_the_log_has_the_shape_of_a_restarted_sweep(log):
    twice = repeats(log)
    assert len(log) == 210 and log["run_name"].nunique() == 20
    assert twice["run_name"].nunique() == 4 and len(twice) == 20  # 10 steps logged twice
    assert twice.groupby(["run_name", "step"]).size().eq(2).all()


def test_without_the_option_one_error_names_duplicate_rows_and_the_lines(csv, log):
    with pytest.raises(InputError) as info:
        prepare(csv, "error")
    assert len(info.value.problems) == 1
    message = info.value.problems[0]
    assert "--duplicate-rows last" in message and "--duplicate-rows first" in message
    assert "--duplicate-rows mean" in message
    assert "20 rows repeat a checkpoint of their run" in message and "10 checkpoint(s) of 4 run(s)" in message
    first = repeats(log).iloc[[0]]
    step, run = first["step"].iloc[0], first["run_name"].iloc[0]
    lines = repeats(log).query("run_name == @run and step == @step")["line"].tolist()
    assert f"lines {lines[0]}, {lines[1]} (run {run!r}, step {step:g})" in message


def test_the_cli_error_names_the_option_and_the_option_is_accepted(csv, tmp_path, capsys):
    assert cli.main(["fit", csv, "--columns", sweeps.RESTART_COLUMNS, "--n-bootstrap", "0"]) == 2
    assert "--duplicate-rows" in capsys.readouterr().err
    out = tmp_path / "fit"
    assert cli.main(["fit", csv, "--columns", sweeps.RESTART_COLUMNS, "--n-bootstrap", "0",
                     "--duplicate-rows", "last", "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    main = record["fits"]["main"]
    assert main["selection"]["duplicate_rows"] == "last"
    assert sum("--duplicate-rows last" in d["reason"] for d in main["points_dropped"]) == 10
    assert "repeated checkpoints: --duplicate-rows last" in (out / "report.html").read_text()


def test_last_fits_as_the_file_with_the_repeats_removed_by_hand(csv, log, tmp_path):
    by_hand = sweeps.write(log.drop_duplicates(["run_name", "step"], keep="last"), tmp_path / "by_hand.csv")
    ours = userfit.fit_runs(csv, columns=COLUMNS, duplicate_rows="last", n_bootstrap=0, starts=STARTS)
    theirs = userfit.fit_runs(by_hand, columns=COLUMNS, n_bootstrap=0, starts=STARTS)
    assert len(ours.train) == len(theirs.train) == 200
    np.testing.assert_array_equal(ours.train["loss"].to_numpy(), theirs.train["loss"].to_numpy())
    for name, value in theirs.result.params.items():
        assert ours.result.params[name] == pytest.approx(value, rel=1e-9), name
    assert ours.prepared.groups is not None and len(np.unique(ours.prepared.groups)) == 20  # whole runs


@pytest.mark.parametrize("mode, kept", [("last", "later"), ("first", "earlier")])
def test_each_dropped_row_is_listed_with_its_line_and_the_line_kept(csv, log, mode, kept):
    prepared = prepare(csv, mode)
    twice = repeats(log)
    pairs = twice.groupby(["run_name", "step"])["line"].agg(list)
    expected = {(a, b) if mode == "last" else (b, a) for a, b in pairs}   # (line dropped, line kept)
    listed = {(d["line"], d["kept_line"]) for d in prepared.dropped}
    assert listed == expected
    assert all(f"the {kept} row is kept (--duplicate-rows {mode})" in d["reason"] for d in prepared.dropped)
    assert set(prepared.frame["line"]) == set(range(2, len(log) + 2)) - {a for a, _ in expected}
    summary = [d for d in prepared.all_diagnostics() if d.code == "dropped_points"]
    assert len(summary) == 1 and summary[0].message.startswith("10 of 210 rows do not enter the fit")
    assert set(summary[0].subjects) == {f"line {a}" for a, _ in expected}
    assert prepared.selection_record()["duplicate_rows"] == mode


def test_mean_averages_the_losses_on_the_earlier_line(csv, log):
    prepared = prepare(csv, "mean")
    twice = repeats(log)
    for (run, step), g in twice.groupby(["run_name", "step"]):
        row = prepared.frame[prepared.frame["line"] == g["line"].min()]
        assert row["loss"].iloc[0] == pytest.approx(g["val_loss"].mean(), rel=1e-12)
        assert not (prepared.frame["line"] == g["line"].max()).any()
    assert {(d["line"], d["into_line"]) for d in prepared.dropped} == {
        (g["line"].max(), g["line"].min()) for _, g in twice.groupby(["run_name", "step"])}
    others = prepared.frame[~prepared.frame["line"].isin(twice["line"])]
    source = log.assign(line=np.arange(len(log)) + 2).set_index("line")
    np.testing.assert_array_equal(others["loss"].to_numpy(), source.loc[others["line"], "val_loss"].to_numpy())


def test_the_diverged_restart_is_a_warning_and_the_faithful_ones_are_not(csv, log):
    prepared = prepare(csv, "last")
    warnings = [d for d in prepared.diagnostics if d.code == "duplicate_rows" and d.severity == "warning"]
    assert len(warnings) == 1
    diverged = repeats(log).query("run_name == @sweeps.DIVERGED_RUN")["line"]
    assert set(warnings[0].subjects) == {f"line {n}" for n in diverged}
    assert "3 repeated checkpoint(s) disagree" in warnings[0].message
    assert sweeps.DIVERGED_RUN in warnings[0].message
    info = [d for d in prepared.diagnostics if d.code == "duplicate_rows" and d.severity == "info"]
    assert len(info) == 1 and "10 checkpoint(s) of 4 run(s)" in info[0].message


def test_a_faithful_log_is_no_warning(tmp_path):
    """The same restarts, none of them diverged: the re-logged losses differ only by the
    replay's jitter, far inside each run's checkpoint-to-checkpoint noise."""
    restarts = {i: (crash, resume, 1.0) for i, (crash, resume, _) in sweeps.RESTARTS.items()}
    path = sweeps.write(sweeps.restarted_checkpoint_log(restarts=restarts, jitter=5e-4), tmp_path / "faithful.csv")
    prepared = prepare(path, "last")
    assert [d.severity for d in prepared.diagnostics if d.code == "duplicate_rows"] == ["info"]


def test_a_smaller_divergence_than_the_runs_noise_is_no_warning_and_a_larger_one_is(tmp_path):
    """Around the tolerance: 4 robust scales of the run's successive-checkpoint differences."""
    base = sweeps.checkpoint_runs().rename(columns={"run": "run_name", "N": "params", "D": "tokens",
                                                    "loss": "val_loss"})
    run = base[base["run_name"] == sweeps.DIVERGED_RUN]
    changes = run["val_loss"].diff().dropna()
    noise = 1.4826 * (changes - changes.median()).abs().median()
    last = run.iloc[[-1]]
    for factor, severities in [(3, ["info"]), (5, ["info", "warning"])]:
        relogged = last.assign(val_loss=last["val_loss"] + factor * noise)
        path = sweeps.write(pd.concat([base, relogged]), tmp_path / f"x{factor}.csv")
        prepared = prepare(path, "last")
        assert [d.severity for d in prepared.diagnostics if d.code == "duplicate_rows"] == severities, factor


def frame_of(rows) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["run", "step", "N", "D", "loss"])
    table["C"] = 6 * table["N"] * table["D"]
    table["line"] = np.arange(len(table)) + 2
    return table


def test_later_means_the_larger_step_then_the_later_line():
    """The same (N, D) logged at two steps (a step counter that moved on): the larger step is
    later even when it comes first in the file; at equal steps the file order decides."""
    table = frame_of([["a", 200, 1e8, 2e9, 3.0], ["a", 100, 1e8, 2e9, 3.1], ["a", 300, 1e8, 3e9, 2.9],
                      ["a", 300, 1e8, 3e9, 2.8], ["b", 100, 2e8, 2e9, 2.7]])
    last = runs_input.select_runs(table, duplicate_rows="last")
    assert sorted(last.frame["line"]) == [2, 5, 6]
    assert {(d["line"], d["kept_line"]) for d in last.dropped} == {(3, 2), (4, 5)}
    first = runs_input.select_runs(table, duplicate_rows="first")
    assert sorted(first.frame["line"]) == [3, 4, 6]


def test_same_step_with_different_tokens_is_a_repeat_and_without_run_ids_nothing_is():
    table = frame_of([["a", 100, 1e8, 2e9, 3.0], ["a", 100, 1e8, 2.1e9, 3.0], ["a", 200, 1e8, 4e9, 2.9]])
    with pytest.raises(InputError, match="--duplicate-rows"):
        runs_input.select_runs(table)
    assert sorted(runs_input.select_runs(table, duplicate_rows="last").frame["line"]) == [3, 4]
    no_ids = table.drop(columns="run")
    assert len(runs_input.select_runs(no_ids).frame) == 3


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="--duplicate-rows must be one of error, last, first, mean"):
        runs_input.check_options(duplicate_rows="latest")


def test_sensitivity_variants_resolve_the_repeats_as_the_default_does(csv):
    prepared = prepare(csv, "last")
    variants, _ = sensitivity.user_variants(prepared, scipy_starts=2, screened_starts=5)
    final = next(v for v in variants if v.data.get("checkpoints") == "final")
    data = sensitivity.variant_data(prepared, final)
    assert data.choices["duplicate_rows"] == "last"
    assert len(data.frame) == 20
    assert sum("--duplicate-rows last" in d["reason"] for d in data.selection.dropped) == 10
    with pytest.raises(InputError, match="--duplicate-rows"):
        sensitivity.variant_data(prepared, replace(final, data={**final.data, "duplicate_rows": "error"}))


def test_sensitivity_cli_takes_the_option(csv, tmp_path):
    out = tmp_path / "sens"
    code = cli.main(["sensitivity", csv, "--columns", sweeps.RESTART_COLUMNS, "--duplicate-rows", "last",
                     "--groups", "checkpoints", "--n-bootstrap", "0", "--n-bootstrap-variants", "0",
                     "--n-bootstrap-scipy", "0", "--screened-starts", "5", "--no-progress", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "results.json").read_text())
    assert record["options"]["duplicate_rows"] == "last"
    assert sum("--duplicate-rows last" in d["reason"] for d in record["points_dropped"]) == 10


def test_a_run_without_its_own_noise_scale_takes_the_other_runs_and_with_none_any_difference_counts():
    """Three runs with 7 checkpoints (successive differences -0.006, -0.014, ...: robust scale
    1.4826 x 0.004); a run with a single, repeated checkpoint borrows that scale."""
    scale = 1.4826 * 0.004
    rows = [[f"r{i}", k, 1e8 * (i + 1), 1e9 * k, 3 - 0.01 * k + 0.002 * (-1) ** k] for i in range(3)
            for k in range(1, 8)]
    for factor, severities in [(3, ["info"]), (5, ["info", "warning"])]:
        short = [["short", 1, 5e8, 1e9, 3.0], ["short", 1, 5e8, 1e9, 3.0 + factor * scale]]
        found = runs_input.select_runs(frame_of(rows + short), duplicate_rows="last").diagnostics
        assert [d.severity for d in found if d.code == "duplicate_rows"] == severities, factor
    alone = [["a", 1, 1e8, 1e9, 3.0], ["a", 1, 1e8, 1e9, 3.0], ["b", 1, 2e8, 1e9, 2.9], ["b", 1, 2e8, 1e9, 2.9001]]
    found = [d for d in runs_input.select_runs(frame_of(alone), duplicate_rows="last").diagnostics
             if d.severity == "warning"]
    assert len(found) == 1 and found[0].subjects == ("line 4", "line 5")

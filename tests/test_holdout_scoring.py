"""Hold-out scoring of `scalerepro fit`, checked against values worked out by hand.

A tiny CSV of eight runs (two checkpoints each, one run id per run, no ties in compute):
the six smaller runs lie exactly on a known Chinchilla law, so the fit recovers that law and
its prediction at the two held-out runs is the law's value there. The held-out losses are
the law's values times chosen factors, so each hold-out error is |1 - factor| / factor, and
each held-out row's line in the file is known from how the file was written.
"""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from scalerepro.core import laws
from scalerepro.runs import fit as userfit

TRUTH = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)

# (line in the file, run id, N, D, factor on the law's loss). Line 1 is the header. Compute
# C = 6ND per run (its largest checkpoint): big1 9.6e20 and big2 6e20 are the two largest;
# the next is r5 at 8.6e19, so largest-compute:2 holds out big1 and big2, lines 4, 5, 12, 13.
ROWS = [
    (2, "r1", 3e7, 3e8, 1.0), (3, "r1", 3e7, 6e8, 1.0),
    (4, "big1", 2e9, 4e10, 1.10), (5, "big1", 2e9, 8e10, 0.80),
    (6, "r2", 6e7, 1.2e9, 1.0), (7, "r2", 6e7, 3e9, 1.0),
    (8, "r3", 1.5e8, 1.5e9, 1.0), (9, "r3", 1.5e8, 6e9, 1.0),
    (10, "r4", 3e8, 3e9, 1.0), (11, "r4", 3e8, 1.2e10, 1.0),
    (12, "big2", 1e9, 5e10, 1.0), (13, "big2", 1e9, 1e11, 1.25),
    (14, "r5", 6e8, 6e9, 1.0), (15, "r5", 6e8, 2.4e10, 1.0),
    (16, "r6", 1e8, 4e9, 1.0), (17, "r6", 1e8, 1e10, 1.0),
]
HELD_LINES = [4, 5, 12, 13]
# |predicted - observed| / observed with predicted = law and observed = law x factor:
# 1.10 -> 0.1 / 1.1 = 1/11, 0.80 -> 0.2 / 0.8 = 0.25, 1.0 -> 0, 1.25 -> 0.25 / 1.25 = 0.2.
# (Dividing by the prediction instead would give 0.1, 0.2, 0 and 0.25.)
HELD_ERRORS = [1 / 11, 0.25, 0.0, 0.2]
# No noise is injected: the training rows are the law's values to float rounding (1e-16
# relative), so the fit's optimum is the truth itself (measured: parameters within 1e-14
# relative, held-out predictions within 1e-15). 1e-6 leaves room for a looser stopping rule
# and is still 1e4 times smaller than the smallest difference a wrong formula makes (0.009).
TOL = 1e-6


def law_loss(N, D):
    """The Chinchilla law written out, independent of scalerepro.core.laws."""
    return TRUTH["E"] + TRUTH["A"] / N ** TRUTH["alpha"] + TRUTH["B"] / D ** TRUTH["beta"]


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("holdout") / "runs.csv"
    assert [r[0] for r in ROWS] == list(range(2, 2 + len(ROWS)))
    pd.DataFrame({"run_id": [r[1] for r in ROWS], "N": [r[2] for r in ROWS], "D": [r[3] for r in ROWS],
                  "loss": [law_loss(r[2], r[3]) * r[4] for r in ROWS]}).to_csv(path, index=False)
    return path


@pytest.fixture
def results(runs_csv, tmp_path):
    """results.json of `scalerepro fit --holdout largest-compute:2`, started near the truth
    (the start grid is the fitter's business, tested elsewhere) with a small bootstrap.
    Made for each test (half a second), so mutation testing sees which test reads what."""
    out = tmp_path / "out"
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :] + 0.05
    userfit.run(runs_csv, out, holdout=2, n_bootstrap=20, seed=0, starts=start)
    return json.loads((out / "results.json").read_text())


def test_held_out_rows_are_the_two_largest_runs_by_line(results):
    points = results["holdout"]["points"]
    assert [p["line"] for p in points] == HELD_LINES
    assert [p["run"] for p in points] == ["big1", "big1", "big2", "big2"]
    assert results["holdout"]["kind"] == "largest-compute"
    assert results["holdout"]["k"] == 2 and results["holdout"]["rows"] == 4
    assert results["fits"]["main"]["points_used"] == 12
    dropped = results["fits"]["main"]["points_dropped"]
    assert [d["line"] for d in dropped] == HELD_LINES and all("held out" in d["reason"] for d in dropped)


def test_held_out_errors_are_relative_to_the_observed_loss(results):
    points = results["holdout"]["points"]
    by_line = {r[0]: r for r in ROWS}
    for p in points:
        _, _, N, D, factor = by_line[p["line"]]
        assert (p["N"], p["D"]) == (N, D) and p["C"] == pytest.approx(6 * N * D, rel=1e-15)
        assert p["loss"] == pytest.approx(law_loss(N, D) * factor, rel=1e-12)
        assert p["predicted"] == pytest.approx(law_loss(N, D), rel=TOL)
    assert [p["abs_rel_error"] for p in points] == pytest.approx(HELD_ERRORS, abs=TOL)


def test_hold_out_summary_is_computed_from_the_errors(results):
    h = results["holdout"]
    assert h["mean_abs_rel_error"] == pytest.approx(np.mean(HELD_ERRORS), abs=TOL)
    assert h["max_abs_rel_error"] == pytest.approx(0.25, abs=TOL)
    assert h["median_abs_rel_error"] == pytest.approx((1 / 11 + 0.2) / 2, abs=TOL)
    assert results["tables"]["holdout"] == h["points"]
    assert results["declared"]["validation"] == ("hold-out of the 2 largest-compute runs (4 rows): "
                                                 "mean absolute relative error 13.52%, max 25.00%")


def test_fit_on_the_training_runs_recovers_the_law(results):
    params = results["fit"]["params"]
    for name, value in TRUTH.items():
        assert params[name] == pytest.approx(value, rel=TOL), name


def test_runs_with_ids_are_resampled_as_clusters(results):
    # the six training runs (big1 and big2 are held out), each resampled whole
    assert results["fits"]["main"]["bootstrap"]["resampling"] == "whole runs (cluster): 6 groups"


def test_no_holdout_leaves_no_table(runs_csv, tmp_path):
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :]
    results = userfit.run(runs_csv, tmp_path, holdout=0, n_bootstrap=0, starts=start)
    assert results["holdout"] is None and "holdout" not in results["tables"]
    assert results["fits"]["main"]["points_used"] == len(ROWS)
    assert json.loads((tmp_path / "results.json").read_text()) == results


def test_without_a_hold_out_the_table_is_empty_with_the_same_columns(runs_csv):
    # UserFit.holdout is read in notebooks (concatenated, filtered by column): with no
    # hold-out it is an empty table of the same columns, not a frame without them.
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :]
    none = userfit.fit_runs(runs_csv, holdout=0, n_bootstrap=0, starts=start)
    two = userfit.fit_runs(runs_csv, holdout=2, n_bootstrap=0, starts=start)
    columns = ["line", "run", "N", "D", "C", "loss", "predicted", "abs_rel_error"]
    assert none.holdout.empty and list(none.holdout.columns) == columns
    assert list(two.holdout.columns) == columns and len(two.holdout) == 4


def test_runs_without_ids_are_held_out_by_line_with_no_run_name(runs_csv, tmp_path):
    # The same file without its run_id column: each row is its own run, so the 2
    # largest-compute rows are held out (line 5, big1's 6 x 2e9 x 8e10 = 9.6e20, and line 13,
    # big2's 6 x 1e9 x 1e11 = 6e20), and the table has no run name to give.
    bare = tmp_path / "bare.csv"
    pd.read_csv(runs_csv).drop(columns="run_id").to_csv(bare, index=False)
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :]
    results = userfit.run(bare, tmp_path / "out", holdout=2, n_bootstrap=0, starts=start)
    points = results["holdout"]["points"]
    assert [p["line"] for p in points] == [5, 13] and [p["run"] for p in points] == [None, None]


@pytest.mark.parametrize("text, k", [(None, 0), ("", 0), (" none ", 0), ("0", 0),
                                     ("largest-compute:3", 3), ("largest-compute: 12 ", 12)])
def test_holdout_option_is_parsed(text, k):
    assert userfit.parse_holdout(text) == k


@pytest.mark.parametrize("text", ["largest-compute", "largest-compute:", "largest-compute:x",
                                  "largest-compute:-1", "smallest:2", "3"])
def test_bad_holdout_option_is_named(text):
    with pytest.raises(ValueError, match=f"--holdout expects largest-compute:K with K a whole number, "
                                         f"got {text!r}"):
        userfit.parse_holdout(text)


def test_runs_tied_at_the_cut_are_held_out_together(tmp_path):
    # A ninth run, "tie", reaches C = 6 x 2e9 x 5e10 = 6e20 exactly as big2 does: holding out
    # the 2 largest-compute runs must take big1 and both runs tied for second place.
    rows = ROWS + [(18, "tie", 2e9, 5e10, 1.0)]
    path = tmp_path / "tied.csv"
    pd.DataFrame({"run_id": [r[1] for r in rows], "N": [r[2] for r in rows], "D": [r[3] for r in rows],
                  "loss": [law_loss(r[2], r[3]) * r[4] for r in rows]}).to_csv(path, index=False)
    start = laws.Chinchilla().from_natural(**TRUTH)[None, :]
    h = userfit.run(path, tmp_path / "out", holdout=2, n_bootstrap=0, starts=start)["holdout"]
    assert (h["k"], h["runs"], h["rows"]) == (2, 3, 5)
    assert [p["line"] for p in h["points"]] == HELD_LINES + [18]


def test_a_hold_out_that_would_leave_nothing_to_fit_names_the_file(runs_csv):
    from scalerepro.errors import InputError
    from scalerepro.io import runs_input

    prepared = runs_input.prepare_runs(runs_csv, laws.Chinchilla())
    with pytest.raises(InputError, match=rf"(?s)^{re.escape(str(runs_csv))}: .*would hold out all 8 runs; keep some to fit"):
        runs_input.split_holdout(prepared, 8)
    unnamed = dataclasses.replace(prepared, path=None)   # runs given as a table, not a file
    with pytest.raises(InputError, match=r"(?s)^<runs>: .*largest-compute:9 would hold out all 8 runs"):
        runs_input.split_holdout(unnamed, 9)


def tied_csv(tmp_path, rows):
    path = tmp_path / "tied.csv"
    pd.DataFrame({"run_id": [r[1] for r in rows], "N": [r[2] for r in rows], "D": [r[3] for r in rows],
                  "loss": [law_loss(r[2], r[3]) * r[4] for r in rows]}).to_csv(path, index=False)
    return path


def test_split_holdout_records_what_it_held_out_and_why(tmp_path):
    """The split itself, on the tied file above: the rows it drops (index, line, reason), the
    tie diagnostic, the option record, and the resampling groups of the training rows."""
    from scalerepro.io import runs_input

    path = tied_csv(tmp_path, ROWS + [(18, "tie", 2e9, 5e10, 1.0)])
    prepared = runs_input.prepare_runs(path, laws.Chinchilla())
    split = runs_input.split_holdout(prepared, 2)
    reason = ("held out: among the 3 largest-compute runs (--holdout largest-compute:2, widened to keep tied "
              "runs together)")
    held = [d for d in split.dropped if d["reason"].startswith("held out")]
    assert [(d["line"], d["reason"]) for d in held] == [(line, reason) for line in HELD_LINES + [18]]
    assert [d["index"] for d in held] == list(split.held.index)
    ties = [d for d in split.diagnostics if d.code == "holdout_ties"]
    assert len(ties) == 1 and ties[0].severity == "warning" and ties[0].subjects == ("big1", "big2", "tie")
    assert ties[0].message == ("--holdout largest-compute:2: 2 runs are tied at the boundary compute C = 6e+20, "
                               "so all 3 runs at or above it are held out together (splitting the tie would "
                               "train on runs at the held-out compute and make the hold-out error partly "
                               "in-sample)")
    assert split.options["holdout"] == {"kind": "largest-compute", "k": 2, "runs_held_out": 3}
    assert split.groups is not None and len(split.groups) == len(split.frame) == len(prepared.frame) - 5
    # no hold-out: every row is fitted, and the held rows are an empty table (the fit's figures
    # mark held-out points by its index), not None
    kept = runs_input.split_holdout(prepared, 0)
    assert kept.frame is prepared.frame and kept.dropped == prepared.dropped
    assert kept.held.empty and list(kept.held.columns) == list(prepared.frame.columns)
    untied = runs_input.split_holdout(runs_input.prepare_runs(tied_csv(tmp_path, ROWS), laws.Chinchilla()), 2)
    assert not [d for d in untied.diagnostics if d.code == "holdout_ties"]
    assert {d["reason"] for d in untied.dropped} == {
        "held out: among the 2 largest-compute runs (--holdout largest-compute:2)"}


def test_a_tie_is_within_one_millionth_of_the_boundary_compute(tmp_path):
    # --holdout largest-compute:3 with the third-largest compute at big2's 6e20. "close"
    # (6e20 x (1 - 5e-7)) is tied with it and goes out too; "above" (6e20 x (1 + 5e-6), the
    # second largest) is held out as one of the 3 but is not tied: 5e-6 is beyond 1e-6.
    from scalerepro.io import runs_input

    rows = ROWS + [(18, "above", 1e9, 1e11 * (1 + 5e-6), 1.0), (19, "close", 1e9, 1e11 * (1 - 5e-7), 1.0)]
    split = runs_input.split_holdout(runs_input.prepare_runs(tied_csv(tmp_path, rows), laws.Chinchilla()), 3)
    assert set(split.held["run"]) == {"big1", "above", "big2", "close"}
    (ties,) = [d for d in split.diagnostics if d.code == "holdout_ties"]
    assert ties.message.startswith("--holdout largest-compute:3: 2 runs are tied at the boundary compute "
                                   "C = 6e+20, so all 4 runs at or above it are held out together")


def test_a_hold_out_of_runs_all_tied_is_refused_with_the_reason(tmp_path):
    from scalerepro.errors import InputError
    from scalerepro.io import runs_input

    rows = [(2 + i, f"r{i}", n, 5e19 / n, 1.0) for i, n in enumerate([5e8, 1e9, 2e9])]  # one compute, 3e20
    prepared = runs_input.prepare_runs(tied_csv(tmp_path, rows), laws.Chinchilla())
    with pytest.raises(InputError, match=r"(?s)tied\.csv: .*--holdout largest-compute:1: all 3 runs are tied at "
                                         r"the boundary compute C = 3e\+20, so holding out 1 without splitting the "
                                         r"tie would leave nothing to fit; choose another K"):
        runs_input.split_holdout(prepared, 1)

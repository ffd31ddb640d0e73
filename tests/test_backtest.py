"""`scalerepro backtest`: compute folds, method choice on sweeps from known laws, a fold too
small to fit, the backtest.json contract, and Dask giving the same numbers."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerepro import cli
from scalerepro.analyses import backtest
from scalerepro.core import laws
from scalerepro.core.constraints import constrain
from scalerepro.io import runs_input

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "example_runs.csv"
THREE = "chinchilla/huber-log,chinchilla_tied/huber-log,kaplan_with_e/huber-log"


def sweep(law, truth, seed, noise):
    """8 sizes (2e7 to 2e9) x 5 tokens per parameter (5 to 80): 40 runs of ``law`` at
    ``truth`` with multiplicative log-normal noise ``noise``."""
    N, tpp = (a.ravel() for a in np.meshgrid(np.geomspace(2e7, 2e9, 8), [5, 10, 20, 40, 80]))
    D = N * tpp
    y = law.predict(law.from_natural(**truth), np.c_[N, D]) * np.exp(
        noise * np.random.default_rng(seed).standard_normal(len(N)))
    return pd.DataFrame({"run": [f"r{i}" for i in range(len(N))], "N": N, "D": D, "loss": y})


def deepest_ranking(frame, seed):
    """The three named forms (Huber on log loss) ranked on one fold holding out the 8
    largest compute levels (20% of the runs, up to 5.5x beyond the fitted compute)."""
    prepared = runs_input.from_frame(frame, "simulated")
    cutoff = backtest.compute_levels(prepared.frame)[7]
    bt = backtest.run_backtest(prepared, which=THREE, cutoffs=[cutoff], n_bootstrap=0, seed=seed)
    return bt


# Seeds 0-4 are the first five, not picked; the noise, 0.2% of the loss, is that of repeated
# evaluations of one well-tuned run. The forms' extrapolation errors differ by 0.2-0.7 points
# of relative error on Kaplan-with-E data (measured: Chinchilla 0.29-0.51%, tied 0.42-0.71%,
# Kaplan-with-E 0.11-0.29%), about the size of the noise on 8 held-out runs, so a single
# sweep can rank another form first by chance: the tests ask for the true form first in at
# least 4 of 5 sweeps and never worse than the best beyond the paired bootstrap's noise.
SEEDS = range(5)
NOISE = 0.002


def test_kaplan_with_e_data_rank_kaplan_with_e_first():
    truth = dict(E=1.9, A=6.7e7, B=8.9e8, alpha=0.41, beta=0.455)
    firsts = 0
    for seed in SEEDS:
        bt = deepest_ranking(sweep(laws.KaplanWithE(), truth, seed, NOISE), seed)
        firsts += bt.ranking[0] == "kaplan_with_e/huber-log"
        assert bt.comparison["kaplan_with_e/huber-log"]["within_noise"], (seed, bt.ranking)
    assert firsts >= 4     # measured: 4 of 5 (seed 1: Chinchilla first, Kaplan-with-E within noise)


def test_tied_data_rank_the_tied_form_no_worse_than_the_untied():
    law = constrain(laws.Chinchilla(), tie={"beta": "alpha"})
    truth = dict(E=1.8, A=480.0, B=2100.0, alpha=0.36)
    for seed in SEEDS:
        bt = deepest_ranking(sweep(law, truth, seed, NOISE), seed)
        tied, untied = bt.ranking.index("chinchilla_tied/huber-log"), bt.ranking.index("chinchilla/huber-log")
        # measured: tied first in 4 of 5, and within noise of the untied in the fifth
        assert tied < untied or bt.comparison["chinchilla_tied/huber-log"]["within_noise"], (seed, bt.ranking)
        assert bt.ranking[-1] == "kaplan_with_e/huber-log"


def test_folds_hold_out_whole_runs_and_ties_together():
    frame = pd.DataFrame({"run": ["a", "a", "b", "c", "d", "f", "e"], "N": [1, 1, 2, 2, 3, 3, 4.0],
                          "D": [10, 40, 10, 10, 40, 40, 40.0], "loss": [3, 2.9, 2.8, 2.8, 2.5, 2.5, 2.4]})
    frame["C"] = 6 * frame["N"] * frame["D"]
    frame["line"] = np.arange(len(frame)) + 2
    assert backtest.compute_levels(frame) == [960.0, 720.0, 240.0, 120.0]   # d and f tie, so do b and c
    folds = backtest.make_folds(frame, 3)
    assert [f.cutoff_C for f in folds] == [960.0, 720.0, 240.0]
    assert list(folds[1].holds_out(backtest.run_compute(frame))) == [False] * 4 + [True] * 3   # d and f together
    held = folds[-1].holds_out(backtest.run_compute(frame))
    assert list(held) == [True, True, False, False, True, True, True]   # both checkpoints of run a (C 60 and 240)
    with pytest.raises(ValueError, match="4 distinct compute levels"):
        backtest.make_folds(frame, 4)
    with pytest.raises(ValueError, match="no run at or above"):
        backtest.make_folds(frame, cutoffs=[1e6])


@pytest.fixture(scope="module")
def example_backtest(tmp_path_factory):
    out = tmp_path_factory.mktemp("backtest")
    # the 14th compute level leaves fewer design points than the Kaplan-with-E form's 5 parameters
    levels = backtest.compute_levels(runs_input.prepare_runs(EXAMPLE, laws.Chinchilla()).frame)
    cutoffs = f"{levels[0]:.6g},{levels[-3]:.6g}"
    code = cli.main(["backtest", str(EXAMPLE), "--methods", "chinchilla/huber-log,kaplan_with_e/mse-log",
                     "--cutoffs", cutoffs, "--n-bootstrap", "50", "--out", str(out), "--no-progress"])
    assert code == 0
    return out, json.loads((out / "backtest.json").read_text()), levels


def test_backtest_json_follows_the_contract(example_backtest):
    out, record, _ = example_backtest
    assert set(record) >= {"folds", "methods", "ranking", "diagnostics"}
    assert all(set(f) >= {"cutoff_C", "n_fit", "n_test"} for f in record["folds"])
    assert {m["name"] for m in record["methods"]} == set(record["ranking"]) == {"chinchilla/huber-log",
                                                                               "kaplan_with_e/mse-log"}
    for method in record["methods"]:
        assert set(method) >= {"name", "choices", "folds", "mare", "coverage"}
        assert method["choices"]["form"] in ("chinchilla", "kaplan_with_e")
        for fold in method["folds"]:
            assert set(fold) >= {"cutoff_C", "n_fit", "n_test", "extrapolation_max", "mare", "bias", "coverage",
                                 "status"}
    top = next(f for f in record["methods"][0]["folds"] if f["cutoff_C"] == record["folds"][0]["cutoff_C"])
    assert top["status"] == "ok" and top["n_test"] == 3 and top["extrapolation_max"] == pytest.approx(2.0)
    assert 0 <= top["coverage"] <= 1 and top["mare"] < 0.05
    assert "<img" in (out / "report.html").read_text()


def test_a_fold_too_small_to_fit_carries_design_points(example_backtest):
    _, record, levels = example_backtest
    small = min(f["cutoff_C"] for f in record["folds"])
    for method in record["methods"]:
        fold = next(f for f in method["folds"] if f["cutoff_C"] == small)
        assert fold["status"] == "not fitted: too few design points" and fold["mare"] is None
        assert [d["code"] for d in fold["diagnostics"]] == ["design_points"]
    found = [d for d in record["diagnostics"] if d["code"] == "design_points" and d["severity"] == "error"]
    assert {d["subjects"][0] for d in found} == {"chinchilla/huber-log", "kaplan_with_e/mse-log"}


def test_unknown_method_is_one_line(capsys, tmp_path):
    assert cli.main(["backtest", str(EXAMPLE), "--methods", "chinchilla/mae", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown objective 'mae'" in err and "Traceback" not in err and not (tmp_path / "o").exists()


def test_methods_all_adds_sensitivity_variants_without_a_second_list():
    prepared = runs_input.prepare_runs(EXAMPLE, laws.Chinchilla())
    chosen, skipped = backtest.methods(prepared, "all")
    names = [m.name for m in chosen]
    assert "chinchilla/huber-log" in names and "kaplan_with_e/mse-raw" in names
    variants = [m.variant.name for m in chosen if m.variant is not None]
    assert "checkpoints: final only" in variants and any(v.startswith("outliers") for v in variants)
    assert any("scipy" in s["reason"] for s in skipped)


def test_dask_gives_the_same_scores(tmp_path):
    pytest.importorskip("distributed")
    prepared = runs_input.prepare_runs(EXAMPLE, laws.Chinchilla())
    here = backtest.run_backtest(prepared, which="chinchilla_tied/huber-log", k=2, n_bootstrap=20, seed=3)
    there = backtest.run_backtest(prepared, which="chinchilla_tied/huber-log", k=2, n_bootstrap=20, seed=3,
                                  client="local:2")
    for key, score in here.scores.items():
        a = {k: v for k, v in score.record.items() if k != "seconds"}
        b = {k: v for k, v in there.scores[key].record.items() if k != "seconds"}
        assert a == b

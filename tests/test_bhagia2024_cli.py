"""Own ladder: ``scalerepro fit RUNS.csv --columns loss=bpb --checkpoints final --metric acc
--metric-law sigmoid --metric-rows checkpoints`` fits step 1 on each run's final row and the
sigmoid on every checkpoint (Bhagia et al.'s row choices), recovers both laws from a simulated
ladder and prints chained predictions with intervals."""

import json

import numpy as np
import pytest

from bhagia_sim import STEP2, TARGET, simulate_ladder, true_accuracy, true_loss
from scalerepro import cli
from scalerepro.analyses import bhagia2024 as bh


LADDER = (7, 20, 0.001, 0.003)  # seed, checkpoints per run, loss noise, accuracy noise


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("ladder") / "ladder.csv"
    simulate_ladder(*LADDER).to_csv(path, index=False)
    return path


def test_fit_ladder_with_sigmoid_metric(ladder_csv, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["fit", str(ladder_csv), "--columns", "loss=bpb", "--checkpoints", "final",
                     "--metric", "acc", "--metric-law", "sigmoid", "--metric-rows", "checkpoints",
                     "--metric-skip", "0.1", "--metric-smooth", "1", "--target", f"{TARGET[0]}:{TARGET[1]}",
                     "--budget", "1e22", "--n-bootstrap", "100", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    # step 1 on the 16 final rows; the loss law's prediction at the target is the truth's
    assert results["fits"]["main"]["points_used"] == 16
    chained = results["chained"]
    # step 2 on the checkpoints after the first 10% of each run: 16 runs x (20 - 2) rows
    assert chained["selection"]["rows"] == "checkpoints" and chained["rows_used"] == 16 * 18
    # the CLI's metric step is the library's step 2 on the same rows (10% skip, no smoothing)
    direct = bh.fit_step2(bh.step2_points(simulate_ladder(*LADDER), "bpb", "acc", skip=0.1, window=1, anchor=None), 0.25, optimizer="newton")
    for name, value in direct.params.items():
        assert chained["params"][name] == pytest.approx(value, rel=1e-5, abs=1e-8), name
    # the ladder's losses (0.99-1.8) pin the midpoint and slope; the top of the sigmoid (b, with a)
    # lies beyond them and is extrapolated (b ends on its bound 1 against a true 0.95)
    for name in ("L0", "k"):
        assert chained["params"][name] == pytest.approx(STEP2[name], rel=0.05), name
    budget, row = sorted(chained["predictions"], key=lambda p: p["source"] == "target")
    # --budget: the loss law's compute-optimal model at C = 1e22, then the chain at it
    assert budget["source"].startswith("compute-optimal") and budget["C"] == pytest.approx(1e22, rel=1e-6)
    assert budget["metric_lo"] < budget["metric_pred"] < budget["metric_hi"]
    loss = true_loss([TARGET[0]], [TARGET[1]])[0]
    assert row["loss_pred"] == pytest.approx(loss, rel=0.01)
    assert row["metric_pred"] == pytest.approx(true_accuracy([loss])[0], abs=0.01)
    assert row["metric_lo"] < row["metric_pred"] < row["metric_hi"]
    assert "falls with the loss (an accuracy" in text
    assert "metric step rows: every checkpoint of the fitted runs, first 10% of each run dropped" in text
    assert f"{row['metric_pred']:.4g} [" in text
    # the row choice of each step is in the checklist
    points = next(i for i in results["checklist"] if i["id"] == "points")
    assert "checkpoints: final" in points["value"] and "metric step: every checkpoint" in points["value"]


def test_an_anchor_does_not_hide_the_metric_extrapolation(ladder_csv, tmp_path):
    """The target's predicted loss (0.79) lies below every ladder checkpoint's (>= 0.99): the
    extrapolation warning stands although the anchor point sits at loss 0."""
    code = cli.main(["fit", str(ladder_csv), "--columns", "loss=bpb", "--checkpoints", "final", "--metric", "acc",
                     "--metric-law", "sigmoid", "--metric-rows", "checkpoints", "--metric-anchor", "0:1",
                     "--target", f"{TARGET[0]}:{TARGET[1]}", "--n-bootstrap", "0", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["chained"]["selection"]["anchor"] == [0.0, 1.0]
    assert any(d["code"] == "extrapolation" and "acc law is extrapolated" in d["message"]
               for d in results["diagnostics"])


def test_metric_row_options_need_checkpoints(ladder_csv, tmp_path, capsys):
    code = cli.main(["fit", str(ladder_csv), "--columns", "loss=bpb", "--checkpoints", "final", "--metric", "acc",
                     "--metric-law", "sigmoid", "--metric-smooth", "5", "--n-bootstrap", "0", "--out", str(tmp_path)])
    assert code != 0 and "use them with --metric-rows checkpoints" in capsys.readouterr().err
    code = cli.main(["fit", str(ladder_csv), "--columns", "loss=bpb", "--metric-rows", "checkpoints",
                     "--n-bootstrap", "0", "--out", str(tmp_path)])
    assert code != 0 and "belong to --metric COLUMN" in capsys.readouterr().err

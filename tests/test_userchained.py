"""Own runs: ``scalerepro fit RUNS.csv --form overtrain --metric err`` recovers both of Gadre et
al.'s laws from a CSV simulated from them and prints the chained prediction with its interval."""

import json

import numpy as np
import pandas as pd
import pytest

from scalerepro import cli
from scalerepro.analyses.gadre2024_laws import OvertrainLaw
from scalerepro.core.metric_laws import ExponentialMetric

LAW, METRIC = OvertrainLaw(), ExponentialMetric()
LOSS_TRUTH = {"E": 1.84, "eta": 0.136, "a_p": 212.0, "b_p": 367.0}
ERR_TRUTH = {"eps": 0.857, "k": 2.21, "gamma": 0.715}
TARGET = (1.4e9, 1.4e9 * 640)


def simulated_csv(path, accuracy=False, names=("params", "tokens", "val_loss")):
    rng = np.random.default_rng(11)
    N = np.r_[np.repeat([1e7, 3e7, 8e7, 1.5e8, 4e8], 6), 1.4e9]
    M = np.r_[np.tile([5.0, 10, 20, 40, 80, 160], 5), 20.0]
    loss = LAW.predict(LAW.from_natural(**LOSS_TRUTH), np.column_stack([N, M]))
    err = METRIC.predict(METRIC.from_natural(**ERR_TRUTH), loss[:, None])
    frame = pd.DataFrame({names[0]: N, names[1]: N * M, names[2]: loss * np.exp(rng.normal(0, 1e-3, len(N))),
                          "err": err + rng.normal(0, 5e-4, len(N))})
    if accuracy:
        frame["acc"] = 1 - frame.pop("err")
    frame.to_csv(path, index=False)
    return path


def test_fit_overtrain_with_metric_recovers_both_laws(tmp_path, capsys):
    csv = simulated_csv(tmp_path / "runs.csv", names=("N", "D", "loss"))  # the roles' own names
    out = tmp_path / "out"
    code = cli.main(["fit", str(csv), "--form", "overtrain", "--metric", "err", "--target", f"{TARGET[0]}:{TARGET[1]}", "--n-bootstrap", "200",
                     "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    params = results["fit"]["params"]
    for name, value in LOSS_TRUTH.items():
        assert params[name] == pytest.approx(value, rel=0.05), name
    chained = results["chained"]
    for name, value in ERR_TRUTH.items():
        assert chained["params"][name] == pytest.approx(value, rel=0.05), name
        lo, hi = chained["intervals"][name]
        assert lo <= chained["params"][name] <= hi
    # the chained prediction at the target, with its interval, against the truth
    (row,) = chained["predictions"]
    truth = METRIC.predict(METRIC.from_natural(**ERR_TRUTH),
                           LAW.predict(LAW.from_natural(**LOSS_TRUTH), np.array([[TARGET[0], 640.0]]))[:, None])[0]
    assert row["metric_lo"] < row["metric_pred"] < row["metric_hi"]
    assert row["metric_pred"] == pytest.approx(truth, rel=0.01)
    assert row["M"] == pytest.approx(640)
    assert "chained prediction (err law at the predicted loss)" in text
    assert "an error: it falls as the loss falls" in text
    assert f"{row['metric_pred']:.4g} [" in text
    assert results["fits"]["main"]["form"]["inputs"] == ["N", "M"]
    # the 1.4B M = 640 target's predicted loss lies below every fitted loss: said, as a warning
    codes = {(d["code"], d["severity"]) for d in results["diagnostics"] if "err" in d["subjects"]}
    assert ("extrapolation", "warning") in codes and ("design_points", "info") in codes
    report = (out / "report.html").read_text()
    assert "The downstream metric (--metric) against each run" in report and "chained_metric" not in text


def test_metric_law_on_an_accuracy_points_the_other_way(tmp_path, capsys):
    csv = simulated_csv(tmp_path / "runs.csv", accuracy=True)
    code = cli.main(["fit", str(csv), "--form", "overtrain", "--columns", "N=params,D=tokens,loss=val_loss",
                     "--metric", "acc", "--n-bootstrap", "0", "--out", str(tmp_path / "out")])
    assert code == 0
    text = capsys.readouterr().out
    assert "an accuracy: it rises as the loss falls" in text
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["chained"]["params"]["k"] == pytest.approx(-2.21, rel=0.05)
    assert len(results["chained"]["predictions"]) == 3  # the default budgets


@pytest.mark.parametrize("argv, message", [
    (["--metric", "nope"], "--metric 'nope': no such column"),
    (["--metric", "err", "--metric-law", "overtrain"], "a metric law takes one input"),
    (["--target", "1e9:2e10"], "--target and --metric-law belong to --metric"),
    (["--form", "exponential"], "--form exponential: a law from loss to a downstream metric"),
])
def test_metric_options_fail_with_one_clear_line(tmp_path, capsys, argv, message):
    csv = simulated_csv(tmp_path / "runs.csv")
    code = cli.main(["fit", str(csv), "--form", "overtrain", "--columns", "N=params,D=tokens,loss=val_loss",
                     "--n-bootstrap", "0", "--out", str(tmp_path / "out"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_target_must_be_n_colon_d(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit", "runs.csv", "--metric", "err", "--target", "1e9"])
    assert exit_.value.code == 2 and "expected N:D" in capsys.readouterr().err


def test_a_column_named_m_is_not_silently_replaced(tmp_path, capsys):
    csv = simulated_csv(tmp_path / "runs.csv")
    frame = pd.read_csv(csv).assign(M=1.0)
    frame.to_csv(csv, index=False)
    code = cli.main(["fit", str(csv), "--form", "overtrain", "--columns", "N=params,D=tokens,loss=val_loss",
                     "--n-bootstrap", "0", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "column 'M' clashes with the token multiplier" in capsys.readouterr().err

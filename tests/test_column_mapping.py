"""An explicit column mapping wins over a file column of the role's name (issue 28).

The file is a learning-rate sweep from a known law (``sweeps.lr_sweep``: 80 (N, D) points,
3 learning rates each) exported the way the issue's public sweep was: the loss to fit in a
column "C4 Eval Loss", beside a competing ``loss`` column (a training loss, a few percent
higher) and an exact copy of the eval loss. ``--columns loss="C4 Eval Loss"`` must be
obeyed, not refused; the other ``loss`` is kept as ``loss (file)`` and said so in an info
diagnostic; and neither it nor the copy is listed as what the runs at one (N, D) differ in.
"""

import json

import numpy as np
import pandas as pd
import pytest

import sweeps
from scalerepro import cli
from scalerepro.core import laws
from scalerepro.io import runs_input
from scalerepro.io.validate import InputError
from scalerepro.runs import fit as userfit
from scalerepro.runs import sensitivity as usersensitivity

MAPPED = 'N=params,D=tokens,loss=C4 Eval Loss,run=run_name'
START = np.array([[6.0, 7.6, 0.6, 0.35, 0.37]])


@pytest.fixture(scope="module")
def competing(tmp_path_factory):
    """(file with a competing 'loss' column, the same runs with only the loss to fit)."""
    sweep = sweeps.lr_sweep()
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"run_name": sweep["run_name"], "params": sweep["params"], "tokens": sweep["tokens"],
                          "learning_rate": sweep["learning_rate"],
                          "loss": (sweep["eval_loss"] * 1.03 * np.exp(0.01 * rng.standard_normal(len(sweep)))).round(5),
                          "C4 Eval Loss": sweep["eval_loss"], "eval_loss_copy": sweep["eval_loss"]})
    out = tmp_path_factory.mktemp("competing")
    plain = sweep.rename(columns={"eval_loss": "C4 Eval Loss"})
    return sweeps.write(frame, out / "competing.csv"), sweeps.write(plain, out / "plain.csv")


def test_the_mapped_column_is_fitted_and_the_other_kept_with_an_info(competing):
    path, plain = competing
    columns = runs_input.parse_columns(MAPPED)
    uf = userfit.fit_runs(path, columns=columns, per_nd="best", n_bootstrap=0, starts=START)
    reference = userfit.fit_runs(plain, columns=columns, per_nd="best", n_bootstrap=0, starts=START)
    # the fit is the fit of "C4 Eval Loss": the same as on the file without the competitor
    assert uf.result.params == pytest.approx(reference.result.params, rel=1e-12)
    assert uf.frame["loss"].equals(pd.read_csv(path)["C4 Eval Loss"])
    assert uf.frame["loss (file)"].equals(pd.read_csv(path)["loss"])
    notes = [d for d in uf.diagnostics if d.code == "column_mapping"]
    assert len(notes) == 1 and notes[0].severity == "info"
    assert "'C4 Eval Loss'" in notes[0].message and "'loss (file)'" in notes[0].message
    assert notes[0].subjects == ("loss", "loss (file)")
    # what the runs at one (N, D) differ in: the learning rate, not a loss column
    duplicate = next(d for d in uf.diagnostics if d.code == "duplicate_nd")
    assert "the runs differ in 'learning_rate':" in duplicate.message


@pytest.mark.parametrize("role, column", [("N", "params"), ("D", "tokens"), ("run", "run_name"), ("C", "flops"),
                                          ("step", "global_step")])
def test_every_role_can_displace_a_column_of_its_name(competing, tmp_path, role, column):
    frame = pd.read_csv(competing[1]).assign(flops=lambda f: 6 * f["params"] * f["tokens"], global_step=1000)
    frame[role] = np.arange(len(frame)) + 1.0 if role != "run" else [f"r{i % 7}" for i in range(len(frame))]
    path = sweeps.write(frame, tmp_path / "runs.csv")
    mapping = MAPPED + ("" if column in MAPPED else f",{role}={column}")
    prepared = runs_input.prepare_runs(path, laws.Chinchilla(), runs_input.parse_columns(mapping), per_nd="best")
    assert prepared.source[role].equals(pd.read_csv(path)[column].astype(prepared.source[role].dtype))
    assert prepared.source[f"{role} (file)"].equals(pd.read_csv(path)[role])
    assert [d.subjects for d in prepared.diagnostics if d.code == "column_mapping"] == [(role, f"{role} (file)")]


def test_duplicate_message_leaves_out_role_columns_and_their_copies(competing):
    with pytest.raises(InputError) as info:
        runs_input.prepare_runs(competing[0], laws.Chinchilla(), runs_input.parse_columns(MAPPED))
    message = str(info.value)
    assert "(they differ in 'learning_rate')" in message
    for noise in ("loss (file)", "eval_loss_copy", "C4 Eval Loss"):
        assert repr(noise) not in message
    # without a mapping (the file's 'loss' is the eval loss): its exact copy is left out; a
    # different loss column is no role's copy and stays listed (only roles and copies go)
    frame = pd.read_csv(competing[0]).drop(columns=["loss"]).rename(columns={"C4 Eval Loss": "loss"})
    frame["train_loss"] = pd.read_csv(competing[0])["loss"]
    path = sweeps.write(frame, competing[0].replace("competing.csv", "unmapped.csv"))
    with pytest.raises(InputError) as info:
        runs_input.prepare_runs(path, laws.Chinchilla(), runs_input.parse_columns("N=params,D=tokens,run=run_name"))
    message = str(info.value)
    assert "'learning_rate'" in message and "'train_loss'" in message and "'eval_loss_copy'" not in message


def test_cli_fit_and_sensitivity_obey_the_mapping(competing, tmp_path, capsys):
    path, _ = competing
    out = tmp_path / "fit"
    assert cli.main(["fit", path, "--columns", MAPPED, "--per-nd", "best", "--n-bootstrap", "0",
                     "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"][0]["columns"]["loss"] == "C4 Eval Loss"
    assert any(d["code"] == "column_mapping" for d in results["diagnostics"])
    assert "info [column_mapping]" in capsys.readouterr().out
    us = usersensitivity.sensitivity_runs(path, runs_input.parse_columns(MAPPED), per_nd="best", budgets=[1e21],
                                          n_bootstrap=0, n_bootstrap_variants=0, screened_starts=10,
                                          grid_axes=dict(a=[0, 6], b=[0, 8], e=[0, 0.6], alpha=[0.3], beta=[0.3]),
                                          groups=["outliers"])
    assert any(d.code == "column_mapping" for d in us.diagnostics)
    assert us.prepared.frame["loss"].equals(us.prepared.source["loss"].loc[us.prepared.frame.index])
    assert us.prepared.source["loss"].equals(pd.read_csv(path)["C4 Eval Loss"])

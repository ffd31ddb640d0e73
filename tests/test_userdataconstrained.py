"""``scalerepro fit --form data_constrained`` on simulated runs: the base law given or fitted
jointly, the design checks that say when a joint fit is not allowed, the allocation with
epochs, and one clear error for bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from scalerepro import cli
from scalerepro.analyses import data_constrained as dc

TRUTH = {**dc.PUBLISHED_BASE, "R_D_star": 15.0, "R_N_star": 5.0}
BASE = "E=1.869144,A=520.825,B=1487.716,alpha=0.3526596,beta=0.3526596"
COLUMNS = "N=params,D=tokens,U=unique,loss=val_loss,run=name"


def write_runs(path, unrepeated_sizes=(), seed=0):
    """3 sizes x 3 unique-token budgets x 9 epoch levels, plus single-epoch runs at the
    (N, D) pairs given, losses from TRUTH with 0.5% noise."""
    rows = [(n, u * e, u) for n in (3e7, 2e8, 1e9) for u in (1e8, 1e9, 1e10) for e in (1, 2, 4, 8, 16, 32, 64, 128, 256)]
    rows += [(n, d, d) for n, d in unrepeated_sizes]
    frame = pd.DataFrame(rows, columns=["params", "tokens", "unique"]).drop_duplicates()
    frame.insert(0, "name", [f"run{i}" for i in range(len(frame))])
    rng = np.random.default_rng(seed)
    frame["val_loss"] = dc.loss(TRUTH, frame.params, frame.tokens, frame.unique) * np.exp(0.005 * rng.standard_normal(len(frame)))
    frame.to_csv(path, index=False)
    return path


def test_fixed_base_fit_and_allocation_with_epochs(tmp_path, capsys):
    csv = write_runs(tmp_path / "runs.csv")
    out = tmp_path / "out"
    code = cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", COLUMNS, "--base", BASE,
                     "--unique-tokens", "25e9", "--budget", "1e22", "--n-bootstrap", "60", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "epochs" in text and "base law fixed" in text and "(fixed)" in text
    results = json.loads((out / "results.json").read_text())
    assert results["params"]["R_D_star"] == pytest.approx(15.0, rel=0.1)
    assert results["params"]["R_N_star"] == pytest.approx(5.0, rel=0.1)
    lo, hi = results["intervals"]["R_D_star"]
    assert lo < 15.0 < hi and "E" not in results["intervals"]
    [alloc] = results["allocation"]
    truth = dc.allocation_exact(TRUTH, 1e22, 25e9)
    assert alloc["epochs"] == pytest.approx(alloc["D"] / 25e9) and alloc["epochs"] == pytest.approx(truth["epochs"], rel=0.05)
    assert alloc["epochs_interval"][0] <= alloc["epochs"] <= alloc["epochs_interval"][1]
    assert not [d for d in results["diagnostics"] if d["severity"] == "error"]
    assert (out / "report.html").is_file()


def test_a_joint_fit_the_design_does_not_allow_is_flagged(tmp_path, capsys):
    csv = write_runs(tmp_path / "runs.csv")    # only 9 unrepeated design points
    code = cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", COLUMNS, "--n-bootstrap", "0",
                     "--out", str(tmp_path / "out"), "--strict"])
    assert code == 1
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    [flag] = [d for d in results["diagnostics"] if d["severity"] == "error"]
    assert flag["code"] == "design_points" and "--base" in flag["message"] and "jointly" in flag["message"]
    assert results["status"] == "not identified" and results["law"]["base"] == "fitted jointly"


def test_a_joint_fit_on_a_design_that_allows_it(tmp_path, capsys):
    extra = [(n, r * n) for n in np.geomspace(2e7, 2e9, 5) for r in (3.0, 20.0, 80.0)]
    csv = write_runs(tmp_path / "runs.csv", unrepeated_sizes=extra)
    code = cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", COLUMNS, "--n-bootstrap", "0",
                     "--out", str(tmp_path / "out")])
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert not [d for d in results["diagnostics"] if d["severity"] == "error"]
    assert any("fitted jointly" in d["message"] for d in results["diagnostics"])
    for name in ("alpha", "beta", "R_D_star", "R_N_star"):
        assert results["params"][name] == pytest.approx(TRUTH[name], rel=0.15), name


@pytest.mark.parametrize("extra, message", [
    (["--base", "E=1.8,A=500"], "--base needs all of"),
    (["--base", "E=1.8,A=-1,B=1,alpha=0.3,beta=0.3"], "A must be a positive"),
    (["--unique-tokens", "1e9"], "--unique-tokens needs at least one --budget"),
    (["--budget", "1e22"], "give --unique-tokens U with --budget"),
    (["--holdout", "largest-compute:2"], "not available with --form data_constrained"),
])
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    csv = write_runs(tmp_path / "runs.csv")
    assert cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", COLUMNS, *extra,
                     "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_base_without_the_form_is_refused(tmp_path, capsys):
    csv = write_runs(tmp_path / "runs.csv")
    assert cli.main(["fit", str(csv), "--base", BASE, "--out", str(tmp_path / "out")]) == 2
    assert "--form data_constrained" in capsys.readouterr().err


def test_more_unique_than_total_tokens_names_the_line(tmp_path, capsys):
    csv = write_runs(tmp_path / "runs.csv")
    frame = pd.read_csv(csv)
    frame.loc[3, "unique"] = frame.loc[3, "tokens"] * 2
    frame.to_csv(csv, index=False)
    assert cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", COLUMNS, "--base", BASE,
                     "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "line 5" in err and "unique tokens" in err


def test_the_authors_runs_through_the_cli(tmp_path, capsys):
    """End to end on the 182 runs with the authors' base: the global optimum (95.4, 1.71) of the
    reference note, and R_D* flagged as not identified."""
    from conftest import data_or_skip
    from scalerepro.io import muennighoff2023

    csv = tmp_path / "muennighoff.csv"
    data_or_skip(muennighoff2023.load).to_csv(csv, index=False)
    code = cli.main(["fit", str(csv), "--form", "data_constrained", "--base", BASE, "--n-bootstrap", "40",
                     "--unique-tokens", "25e9", "--budget", "1e22", "--out", str(tmp_path / "out")])
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["params"]["R_D_star"] == pytest.approx(95.365, rel=2e-3)
    assert results["params"]["R_N_star"] == pytest.approx(1.7059, rel=2e-3)
    assert "R_D_star" in results["unidentified"]
    assert results["allocation"][0]["epochs"] == pytest.approx(18.0, abs=0.05)


def test_a_missing_unique_token_column_is_named_with_a_suggestion(tmp_path, capsys):
    csv = write_runs(tmp_path / "runs.csv")
    assert cli.main(["fit", str(csv), "--form", "data_constrained", "--columns", "N=params,D=tokens,loss=val_loss",
                     "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no column for role U" in err and "U=unique" in err

"""`scalerepro fit` / userfit: recovery on the simulated example, validation errors, outputs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerepro import cli
from scalerepro.core import laws
from scalerepro.runs import fit as userfit
from scalerepro.core.fit import fit
from scalerepro.analyses.law_registry import get_law
from scalerepro.io.validate import InputError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "example_runs.csv"
sys.path.insert(0, str(EXAMPLE.parent))
import make_example_runs  # noqa: E402


@pytest.fixture(scope="module")
def example_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    code = cli.main(["fit", str(EXAMPLE), "--holdout", "largest-compute:3", "--out", str(out),
                     "--n-bootstrap", "400", "--seed", "0"])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def test_example_file_is_what_the_generator_makes():
    assert make_example_runs.make_runs().equals(pd.read_csv(EXAMPLE))


def test_example_fit_recovers_known_parameters_within_95_intervals(example_results):
    _, results = example_results
    fit = results["fit"]
    assert fit["form"] == "chinchilla"
    assert set(fit["params"]) == set(fit["intervals"]) == {"E", "A", "B", "alpha", "beta"}
    for name, true in make_example_runs.TRUE.items():
        lo, hi = fit["intervals"][name]
        assert lo <= true <= hi, f"{name}: true {true} outside 95% CI [{lo}, {hi}]"
    assert results["fits"]["main"]["bootstrap"]["resampling"] == "whole runs (cluster): 42 groups"


def test_outputs_holdout_allocation_provenance(example_results):
    out, results = example_results
    assert results["status"] == "ok"
    h = results["holdout"]
    assert h["k"] == 3 and h["rows"] == 9  # the three largest runs have three checkpoints each
    errors = [p["abs_rel_error"] for p in h["points"]]
    assert h["mean_abs_rel_error"] == pytest.approx(np.mean(errors)) and max(errors) < 0.05
    assert results["fits"]["main"]["points_used"] == 99 - 9
    alloc = results["compute_optimal"]["budgets"]
    assert len(alloc) == 3 and all(r["tokens_per_param_interval"][0] <= r["tokens_per_param"]
                                   <= r["tokens_per_param_interval"][1] for r in alloc)
    data = results["data"][0]
    assert data["file"] == str(EXAMPLE.resolve()) and data["sha256"] == userfit.sha256_file(EXAMPLE)
    assert data["runs"] == 45 and data["columns"]["run"] == "run_id"
    validation = next(i for i in results["checklist"] if i["id"] == "validation")
    assert validation["status"] == "declared" and validation["value"].startswith("hold-out of the 3 largest")
    html = (out / "report.html").read_text()
    assert "example_runs.csv" in html and "alpha" in html


def test_flops_column_and_column_mapping(tmp_path):
    frame = pd.read_csv(EXAMPLE)
    renamed = pd.DataFrame({"name": frame["run_id"], "params": frame["N"], "flops": 6 * frame["N"] * frame["D"],
                            "val_loss": frame["loss"]})
    path = tmp_path / "runs.csv"
    renamed.to_csv(path, index=False)
    uf = userfit.fit_runs(path, columns=userfit.parse_columns("N=params,C=flops,loss=val_loss,run=name"),
                          n_bootstrap=0, starts=np.array([[6.0, 7.6, 0.6, 0.35, 0.37]]))
    assert np.allclose(uf.frame["D"], frame["D"], rtol=1e-9)
    # D = C / (6N) equals the file's D to float rounding, so the fit must be the fit of the
    # original file from the same start, to the solver's precision (measured: identical)
    direct = userfit.fit_runs(EXAMPLE, n_bootstrap=0, starts=np.array([[6.0, 7.6, 0.6, 0.35, 0.37]]))
    assert uf.result.params == pytest.approx(direct.result.params, rel=1e-9)
    assert uf.boot is None


def test_bad_row_error_names_line_and_column(tmp_path):
    text = EXAMPLE.read_text().splitlines()
    cells = text[5].split(",")
    cells[3] = "oops"
    text[5] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"column 'loss': non-numeric values at line 6 \('oops'\)"):
        userfit.run(bad, out)
    assert not out.exists()  # nothing half-written
    proc = subprocess.run([sys.executable, "-m", "scalerepro.cli", "fit", str(bad), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "line 6" in proc.stderr and "'loss'" in proc.stderr
    assert not out.exists()


def test_tokens_in_billions_are_flagged(tmp_path):
    frame = pd.read_csv(EXAMPLE).assign(D=lambda f: f["D"] / 1e9)
    path = tmp_path / "billions.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="billions"):
        uf = userfit.fit_runs(path, n_bootstrap=0, starts=np.array([[6.0, 7.6, 0.6, 0.35, 0.37]]))
    assert any("billions" in w for w in uf.warnings)


def test_parse_errors():
    assert userfit.parse_columns("N=params, D=tokens") == {"params": "N", "tokens": "D"}
    assert userfit.parse_holdout("largest-compute:4") == 4 and userfit.parse_holdout(None) == 0
    for bad in ("N", "X=a", "N=a,N=b"):
        with pytest.raises(ValueError, match="--columns"):
            userfit.parse_columns(bad)
    with pytest.raises(ValueError, match="largest-compute:K"):
        userfit.parse_holdout("smallest:2")
    assert cli.main(["fit", str(EXAMPLE), "--form", "nope"]) == 2


def test_holdout_of_everything_is_refused(tmp_path):
    with pytest.raises(InputError, match="would hold out all"):
        userfit.fit_runs(EXAMPLE, holdout=45, n_bootstrap=0)




def test_compute_only_power_law_derives_c_from_n_and_d(tmp_path):
    # `--form power_law` is L = E + A C^-alpha; the example file has N and D, so C = 6ND.
    uf = userfit.fit_runs(EXAMPLE, form="power_law", n_bootstrap=0)
    assert uf.law.inputs == ("C",)
    np.testing.assert_allclose(uf.frame["C"], 6 * uf.frame["N"] * uf.frame["D"])
    assert uf.result.converged and all(np.isfinite(v) for v in uf.result.params.values())
    # a fit made directly on C = 6ND computed here, from the best start, ends where it did
    frame = pd.read_csv(EXAMPLE)
    C = 6 * frame["N"].to_numpy() * frame["D"].to_numpy()
    direct = fit(get_law("power_law"), C[:, None], frame["loss"].to_numpy(),
                 starts=uf.result.best_start[None, :])
    assert uf.result.params == pytest.approx(direct.params, rel=1e-9)


def test_the_tied_form_from_the_command_line_is_the_tie(tmp_path):
    # `--form chinchilla_tied` is Chinchilla with beta tied to alpha: the same fit as
    # fit(..., tie=) on the same rows, recorded as tied, with its allocation
    out = tmp_path / "tied"
    assert cli.main(["fit", str(EXAMPLE), "--form", "chinchilla_tied", "--n-bootstrap", "0", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    main = results["fits"]["main"]
    assert main["form"]["tied"] == {"beta": "alpha"} and main["form"]["fitted_parameters"] == ["a", "b", "e", "alpha"]
    assert main["params"]["alpha"] == main["params"]["beta"]
    # the exact profile solver covers the tie (no point of the 900-start grid lies below it): the same optimum
    assert main["optimizer"]["name"] == "profile" and main["optimizer"]["global_check"].startswith("profile solver used")
    assert "compiled" in main["optimizer"]["implementation"] and results["compute_optimal"]
    frame = pd.read_csv(EXAMPLE)
    direct = fit(laws.Chinchilla(), frame[["N", "D"]].to_numpy(float), frame["loss"].to_numpy(float),
                 tie={"beta": "alpha"}, warn=False)
    assert main["params"] == pytest.approx(direct.params, rel=1e-9)


def test_fit_warnings_reach_the_terminal(tmp_path, capsys, monkeypatch):
    # Six runs on one line D = 20 N from a law without E: the fit is degenerate (E -> 0 and
    # A, B not separable). The terminal must say so, not only the report.
    # Every start stalls here (runs to max_iter), so 100 of the grid's 4500 starts keep the
    # test fast; which starts are used does not change what is reported.
    grid = laws.Chinchilla().default_starts()
    monkeypatch.setattr(laws.Chinchilla, "default_starts", lambda self: grid[::45])
    N = np.geomspace(1e7, 1e9, 6)
    path = tmp_path / "six.csv"
    pd.DataFrame({"N": N, "D": 20 * N, "loss": 400 * N ** -0.3 + 400 * (20 * N) ** -0.3}).to_csv(path, index=False)
    assert cli.main(["fit", str(path), "--out", str(tmp_path / "out"), "--n-bootstrap", "50"]) == 0
    out, err = capsys.readouterr()
    assert "warning: fit main: the best start did not converge" in err and "E -> 0" in err
    assert "warning: fit main: ill-conditioned Hessian" in err
    assert "50 of 50 bootstrap refits stopped at max_iter with their predictions settled" in err
    # Every refit settles at E -> 0 too, so the bootstrap alone would say E in [0, 0]: false
    # comfort. The diagnostics say what is wrong, and no interval is printed for E.
    assert re.search(r"^E\s+\S+\s+\(not identified\)\s+not identified$", out, re.MULTILINE), out
    assert "outcome: NOT IDENTIFIED" in out and "ERROR [collinear_design]" in out
    main = json.loads((tmp_path / "out" / "results.json").read_text())["fits"]["main"]
    assert main["status"] == "not identified" and main["outcome"].startswith("not identified")


def test_run_ids_with_different_sizes_are_refused(tmp_path):
    frame = pd.read_csv(EXAMPLE)
    frame.loc[frame.index[:2], "run_id"] = "same"  # two different sizes under one run id
    frame.loc[1, "N"] = 2 * frame.loc[0, "N"]
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"column 'run_id' \(run\): 1 run id\(s\) have rows with different N, "
                                         r"e.g. 'same' \(lines 2, 3\)"):
        userfit.fit_runs(path, n_bootstrap=0)


def test_drop_highest_loss_records_each_point_with_its_line(tmp_path):
    uf = userfit.fit_runs(EXAMPLE, drop_highest_loss=3, n_bootstrap=0, starts=np.array([[6.0, 7.6, 0.6, 0.35, 0.37]]))
    frame = pd.read_csv(EXAMPLE)
    highest = frame["loss"].nlargest(3)
    dropped = uf.result.dropped
    assert sorted(d["line"] for d in dropped) == sorted(highest.index + 2)
    assert all(d["reason"] == "among the 3 highest losses (--drop-highest-loss 3)" for d in dropped)
    assert sorted(d["loss"] for d in dropped) == sorted(highest)
    assert uf.result.points_used == 99 - 3
    with pytest.raises(InputError, match="would drop all 99"):
        userfit.fit_runs(EXAMPLE, drop_highest_loss=99, n_bootstrap=0)
    with pytest.raises(ValueError, match="--drop-highest-loss"):
        userfit.fit_runs(EXAMPLE, drop_highest_loss=-1, n_bootstrap=0)


@pytest.mark.slow
def test_readme_walkthrough_is_what_the_cli_prints(tmp_path, capsys):
    # The README's own-runs section shows a command and its output: both must stay true.
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("$ .venv/bin/scalerepro fit data/examples/lr_sweep.csv --columns N=params,D=tokens,"
                                "loss=eval_loss,run=run_name \\"):]
    block = block[:block.index("```")]
    command = " ".join(line.strip().rstrip("\\") for line in block.splitlines()[:2]).split()[2:]
    shown = block.splitlines()[2:]
    command = [str(ROOT / a) if a.endswith(".csv") else a for a in command]
    assert cli.main([*command, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for line in shown:
        if "(...)" in line or line.startswith("wrote ") or not line.strip():
            continue
        assert line in printed, f"README line not printed by the CLI: {line!r}"


def test_report_shows_the_diagnostics_first(example_results):
    out, results = example_results
    html = (out / "report.html").read_text()
    assert results["diagnostics"] and 'id="diagnostics"' in html
    assert html.index('id="diagnostics"') < html.index('id="law"') < html.index('id="fit-details"')
    for d in results["diagnostics"]:
        assert d["code"] in html

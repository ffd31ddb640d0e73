"""Scale-out on Dask (``--scheduler``): the same results as in-process, failures recorded.

One LocalCluster of 2 worker processes (``scheduler.session("local:2")``, what
``--scheduler local:2`` opens) serves the module, and so the session: commands connect to it
by address (``--scheduler ADDRESS``), so no test pays for starting another. Data are small
synthetic sweeps, except the replications' own ``ci`` runs, whose in-process results the
notebook tests already produce (conftest caches them for the session).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dask.distributed import get_task_stream

from conftest import IN_CI, law_runs, run_replication_ci
from scalerepro import cli
from scalerepro.publishing import runner
from scalerepro.runs import sensitivity as usersensitivity
from scalerepro.core import scheduler
from scalerepro.analyses import sensitivity
from scalerepro.core.bootstrap import bootstrap
from scalerepro.core.fit import fit
from scalerepro.analyses.law_registry import get_law
from scalerepro.analyses.sensitivity import Variant

FIXTURES = Path(__file__).parent / "fixtures" / "replications"
TRUTH = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


@pytest.fixture(scope="module")
def client():
    with scheduler.session("local:2") as c:
        yield c


@pytest.fixture
def fixture_specs(monkeypatch):
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(FIXTURES))


# ----------------------------------------------------------------------------- the option
@pytest.mark.parametrize("text, workers, address", [
    ("local:2", 2, None), ("local:16", 16, None), ("tcp://10.0.0.5:8786", None, "tcp://10.0.0.5:8786"),
    ("node12:8786", None, "node12:8786"), ("tls://sched.cluster.org:8786", None, "tls://sched.cluster.org:8786"),
])
def test_parse(text, workers, address):
    parsed = scheduler.parse(text)
    assert (parsed.local_workers, parsed.address) == (workers, address)
    assert scheduler.parse(None) is None


@pytest.mark.parametrize("text", ["local:0", "local", "local:two", "two words", "tcp://host:port"])
def test_bad_option_is_one_line_before_any_run(text, tmp_path, capsys, fixture_specs):
    assert cli.main(["run", "tiny", "--out", str(tmp_path), "--scheduler", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalerepro: error: --scheduler") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_without_dask_the_error_names_the_extra(tmp_path, capsys, monkeypatch, fixture_specs):
    real = scheduler.importlib.util.find_spec
    monkeypatch.setattr(scheduler.importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    for argv in (["run", "tiny", "--out", str(tmp_path / "run")],
                 ["fit", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "fit")]):
        assert cli.main([*argv, "--scheduler", "local:2"]) == 2
        err = capsys.readouterr().err
        assert "pip install 'scalerepro[cluster]'" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "distributed", None)  # installed but unimportable: same line
    with pytest.raises(scheduler.SchedulerError, match=r"pip install 'scalerepro\[cluster\]'"):
        with scheduler.session(scheduler.Scheduler("local:2", local_workers=2)):
            pass


def test_no_scheduler_at_the_address_is_one_line(tmp_path, capsys, monkeypatch, fixture_specs):
    monkeypatch.setattr(scheduler, "CONNECT_TIMEOUT", "1s")
    assert cli.main(["run", "tiny", "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalerepro: error: cannot connect to a Dask scheduler at tcp://127.0.0.1:9")
    assert "dask worker tcp://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


def test_no_scheduler_imports_no_dask(tmp_path):
    """The default path stays in-process and never pays for importing Dask."""
    code = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        os.environ["SCALEREPRO_REPLICATIONS_DIR"] = {str(FIXTURES)!r}
        import scalerepro.cli
        assert not [m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")], "import"
        assert scalerepro.cli.main(["run", "tiny", "--profile", "ci", "--out", {str(tmp_path)!r},
                                    "--no-progress"]) == 0
        from scalerepro.core.bootstrap import bootstrap
        from scalerepro.core.fit import fit
        from scalerepro.analyses.law_registry import get_law
        law = get_law("power_law")
        X = np.geomspace(1e17, 1e21, 12)[:, None]
        result = fit(law, X, 1.7 + 300 * X[:, 0] ** -0.12)
        bootstrap(result, X, 1.7 + 300 * X[:, 0] ** -0.12, n_resamples=20)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
        assert not loaded, loaded[:3]
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "tiny" / "results.json").read_text())["status"] == "ok"


def test_make_reproduce_passes_the_scheduler_through():
    root = Path(__file__).resolve().parents[1]
    dry = subprocess.run(["make", "-n", "-C", str(root), "reproduce", "SCHEDULER=local:2"],
                         capture_output=True, text=True, check=True).stdout
    run_line = next(line for line in dry.splitlines() if "scalerepro run --all" in line)
    assert "--scheduler local:2" in run_line and "[cluster]" in dry
    plain = subprocess.run(["make", "-n", "-C", str(root), "reproduce"], capture_output=True, text=True,
                           check=True).stdout
    assert "--scheduler" not in plain and "[cluster]" not in plain


def test_readme_documents_running_on_a_cluster():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    for needed in ("--scheduler local:", "dask scheduler", "dask worker", "dask-jobqueue", "SLURMCluster",
                   "pip install 'scalerepro[cluster]'", "make reproduce SCHEDULER=", "shared filesystem"):
        assert needed in section, needed


# ----------------------------------------------------------------------------- tasks
def _half(x):
    if x == 3:
        raise ValueError(f"no half of {x}")
    return x / 2


@pytest.mark.parametrize("on_dask", [False, True])
def test_a_task_that_raises_is_recorded_and_the_others_kept(on_dask, request):
    client = request.getfixturevalue("client") if on_dask else None
    seen = []
    outcomes = scheduler.map_tasks(client, _half, range(6), desc="t", progress=False,
                                   on_done=lambda o: seen.append(o.item))
    assert [o.item for o in outcomes] == list(range(6)) and sorted(seen) == list(range(6))
    assert [o.value for o in outcomes if o.ok] == [0, 0.5, 1, 2, 2.5]
    record = outcomes[3].error_record()
    assert record["ename"] == "ValueError" and record["evalue"] == "no half of 3" and record["cell"] is None
    assert "_half" in record["traceback"] and "raise ValueError" in record["traceback"]


@pytest.mark.parametrize("on_dask", [False, True])
def test_the_progress_bar_counts_finished_tasks(on_dask, request, capsys, monkeypatch):
    client = request.getfixturevalue("client") if on_dask else None
    bars = []

    class Bar(scheduler.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(scheduler, "tqdm", Bar)
    counted = []  # what the bar showed as each task's outcome arrived
    scheduler.map_tasks(client, _half, range(6), desc="halves", unit="resample", sizes=[5] * 6,
                        progress=True, on_done=lambda outcome: counted.append(bars[0].n))
    assert counted == [5, 10, 15, 20, 25, 30]  # the failed task (3) counts as finished too
    shown = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.startswith("halves") and "30/30" in line and "resample" in line for line in shown), shown


def _threads(_):
    from scalerepro.core.newton import solver_threads
    return solver_threads()


def test_a_solve_on_a_worker_uses_the_workers_threads_not_every_core(client):
    # local:N runs N single-threaded workers: a solve there that took one thread per
    # core would run N x cores threads on N cores
    import os

    outcomes = scheduler.map_tasks(client, _threads, range(4), desc="t", progress=False)
    assert [o.value for o in outcomes] == [1, 1, 1, 1]
    assert _threads(None) == (os.cpu_count() or 1)  # in-process: every core, as before


# ----------------------------------------------------------------------------- bootstrap
@pytest.fixture(scope="module")
def chinchilla_fit():
    """A Chinchilla fit on 60 synthetic runs, three checkpoints per run (a cluster bootstrap)."""
    law = get_law("chinchilla")
    X, y = law_runs(law, TRUTH, 60, 0.01, seed=5, log10_N=(7, 10), log10_D=(9, 12))
    theta = law.from_natural(**TRUTH)
    result = fit(law, X, y, starts=theta[None, :] + np.random.default_rng(1).normal(0, 0.05, (16, 5)))
    assert result.converged
    return result, X, y, np.repeat(np.arange(20), 3)


@pytest.mark.parametrize("grouped", [False, True])
def test_bootstrap_on_dask_gives_identical_intervals(chinchilla_fit, client, grouped):
    result, X, y, groups = chinchilla_fit
    groups = groups if grouped else None
    derived = {"a": lambda p: p["beta"] / (p["alpha"] + p["beta"])}
    here = bootstrap(result, X, y, n_resamples=240, seed=11, groups=groups, derived=derived)
    with get_task_stream(client) as tasks:
        there = bootstrap(result, X, y, n_resamples=240, seed=11, groups=groups, derived=derived, client=client)
    # the refits ran on the workers, about two chunks per worker thread (2 workers: at least 4)
    assert sum("_refit_chunk" in task["key"] for task in tasks.data) >= 4
    assert np.array_equal(here.theta_samples, there.theta_samples)  # the same weights, refit alike
    assert here.intervals() == there.intervals() and here.n_failed == there.n_failed
    assert here.record()["intervals"]["a"] == there.record()["intervals"]["a"]
    # and it was really chunked: several tasks, not one
    other = bootstrap(result, X, y, n_resamples=240, seed=12, groups=groups, client=client)
    assert other.intervals() != here.intervals()


def test_fit_command_on_dask_equals_in_process(tmp_path, client, capsys, monkeypatch):
    law = get_law("chinchilla")
    X, y = law_runs(law, TRUTH, 40, 0.01, seed=2, log10_N=(7, 9.5), log10_D=(9, 11.5))
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"N": X[:, 0], "D": X[:, 1], "loss": y}).to_csv(csv, index=False)
    _no_figures(monkeypatch)
    tables = {}
    for where, extra in (("here", []), ("there", ["--scheduler", client.scheduler.address])):
        assert cli.main(["fit", str(csv), "--n-bootstrap", "120", "--seed", "3", "--out", str(tmp_path / where),
                         *extra]) == 0
        tables[where] = capsys.readouterr().out.split("wrote")[0]
    results = {w: json.loads((tmp_path / w / "results.json").read_text()) for w in tables}
    assert tables["here"] == tables["there"]
    assert results["here"]["fit"]["intervals"] == results["there"]["fit"]["intervals"]
    assert results["here"]["fit"]["intervals"]["alpha"][0] is not None


def _no_figures(monkeypatch):
    """Reports without their figures: drawing them takes longer than the fits compared here,
    and they are drawn from the same results (the reports' own tests cover them)."""
    from scalerepro.publishing import fit_figures

    monkeypatch.setattr(fit_figures, "fit_figures", lambda *a, **k: [])
    monkeypatch.setattr(usersensitivity, "figures", lambda *a, **k: [])


# ----------------------------------------------------------------------------- sensitivity
def test_sensitivity_on_dask_gives_the_same_table(client):
    from test_sensitivity import CI_GRID, prepared_runs

    prepared, _ = prepared_runs(seed=4)
    variants = [Variant("default", "default", bootstrap=True),
                Variant("random starts", "initialization", starts="random", k=20, bootstrap=True),
                Variant("no such starts", "initialization", starts="nonexistent"),
                Variant("mae", "objective", fit={"objective": "mae", "optimizer": "L-BFGS-B"},
                        starts="best_grid", k=3, bootstrap=True),
                Variant("alpha = beta", "form", tied=True, bootstrap=True)]
    options = sensitivity.Options(grid_axes=CI_GRID, n_bootstrap=60, n_bootstrap_variants=30, n_bootstrap_scipy=4,
                                  seed=7)
    here = sensitivity.run_variants(prepared, variants, options)
    there = sensitivity.run_variants(prepared, variants, options, client=client)
    pd.testing.assert_frame_equal(here.table.drop(columns="seconds"), there.table.drop(columns="seconds"))
    assert list(there.table["variant"]) == [v.name for v in variants]
    for name, boot in here.boots.items():  # per-variant seeds: the same resamples wherever they ran
        assert np.array_equal(boot.theta_samples, there.boots[name].theta_samples), name
    # the variant that raised is recorded; the others' rows, fits and bootstraps are kept
    failed = there.results["no such starts"]
    assert failed.row["outcome"] == "failed: ValueError" and not failed.identified and failed.fit is None
    assert failed.row["error"] == "ValueError: unknown starts 'nonexistent'" and "make_starts" in failed.error["traceback"]
    assert [d.code for d in failed.diagnostics] == ["task_failed"] and failed.diagnostics[0].severity == "error"
    record = failed.record(options.budgets, in_spread=False)  # its results.json entry
    assert record["error"]["ename"] == "ValueError" and record["diagnostics"][0]["code"] == "task_failed"
    assert record["outcome"] == "failed: ValueError" and record["bootstrap"] is None
    assert set(there.fits) == {v.name for v in variants} - {"no such starts"}
    assert set(there.boots) == {"default", "random starts", "mae", "alpha = beta"}


def test_sensitivity_command_on_dask_equals_in_process(tmp_path, client, capsys, monkeypatch):
    from test_sensitivity import synthetic_runs

    _no_figures(monkeypatch)

    runs, _ = synthetic_runs(seed=5)
    csv = tmp_path / "runs.csv"
    runs.to_csv(csv, index=False)
    argv = ["sensitivity", str(csv), "--groups", "form", "--n-bootstrap", "40",
            "--n-bootstrap-variants", "20", "--screened-starts", "20", "--seed", "3", "--no-progress"]
    printed, variants = {}, {}
    for where, extra in (("here", []), ("there", ["--scheduler", client.scheduler.address])):
        assert cli.main([*argv, "--out", str(tmp_path / where), *extra]) == 0
        printed[where] = capsys.readouterr().out.split("wrote")[0]
        records = json.loads((tmp_path / where / "results.json").read_text())["variants"]
        variants[where] = [{k: v for k, v in r.items() if k != "seconds" and k != "bootstrap"} for r in records]
    assert printed["here"] == printed["there"] and variants["here"] == variants["there"]
    assert [v["variant"] for v in variants["there"]] == ["default", "form: alpha = beta"]


# ----------------------------------------------------------------------------- run
def test_run_all_on_dask_keeps_results_and_records_a_failed_notebook(tmp_path, client, capsys, fixture_specs):
    out = tmp_path / "out"
    assert cli.main(["run", "--all", "--profile", "ci", "--out", str(out), "--no-progress",
                     "--scheduler", client.scheduler.address]) == 1
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[-2].split()[:2] == ["tiny", "ok"] and table[-1].split()[:2] == ["tiny_broken", "failed"]
    assert "1 of 2 replication(s) failed: tiny_broken" in captured.err
    results = json.loads((out / "tiny" / "results.json").read_text())
    assert results["status"] == "ok" and [c["verdict"] for c in results["claims"]][:2] == ["replicated"] * 2
    failure = json.loads((out / "tiny_broken" / "failed.json").read_text())
    assert failure["error"]["cell"] == 4 and failure["error"]["evalue"] == "requested failure"
    assert (out / "tiny_broken" / "failed_report.html").is_file()


def _raise_for_tiny(prepared, out_root, data_dir=None):
    if prepared.spec.name == "tiny":
        raise MemoryError("worker ran out of memory")
    return runner.execute_task(prepared, out_root, data_dir)


def test_a_task_that_raises_outside_the_notebook_is_recorded_like_a_failed_one(tmp_path, client, capsys,
                                                                              monkeypatch, fixture_specs):
    out = tmp_path / "out"
    assert cli.main(["run", "tiny", "--profile", "ci", "--out", str(out), "--no-progress"]) == 0
    good = (out / "tiny" / "results.json").read_text()
    monkeypatch.setattr(runner, "execute_task", _raise_for_tiny)  # pickled by reference: workers run it
    assert cli.main(["run", "--all", "--profile", "ci", "--out", str(out), "--no-progress",
                     "--scheduler", client.scheduler.address]) == 1
    assert "tiny failed: MemoryError: worker ran out of memory" in capsys.readouterr().err
    failure = json.loads((out / "tiny" / "failed.json").read_text())
    assert failure["error"]["ename"] == "MemoryError" and "_raise_for_tiny" in failure["error"]["traceback"]
    assert failure["status"] == "failed" and failure["profile"] == "ci" and failure["error"]["cell"] is None
    assert (out / "tiny" / "results.json").read_text() == good  # the last good run stays
    assert (out / "tiny" / "failed_report.html").is_file() and not (out / "tiny" / ".attempts").exists()
    assert json.loads((out / "tiny_broken" / "failed.json").read_text())["error"]["cell"] == 4


@pytest.mark.slow
def test_run_all_ci_on_local_cluster_matches_in_process(tmp_path, client, capsys):
    """Every replication at the ci profile, one notebook per task on the module's
    ``local:2`` cluster: the same claims, reproduced values and verdicts as the in-process runs."""
    from scalerepro.io import data
    from scalerepro.publishing.spec import list_specs, load_spec

    names = list_specs()
    for dataset in {d for name in names for d in load_spec(name).datasets}:
        try:
            data.fetch(dataset)
        except data.DataError as exc:
            if IN_CI:
                raise
            pytest.skip(f"upstream data not available: {exc}")
    assert cli.main(["run", "--all", "--profile", "ci", "--out", str(tmp_path / "dask"), "--no-progress",
                     "--scheduler", client.scheduler.address]) == 0, capsys.readouterr().err
    for name in names:
        expected = run_replication_ci(name, tmp_path / "here" / name)
        got = json.loads((tmp_path / "dask" / name / "results.json").read_text())
        assert got["claims"] == expected["claims"], name

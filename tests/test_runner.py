"""Runner: validation before any kernel, atomic publish, failure records, locks, signals,
and finding a kernel with no set-up.

These tests execute the trivial fixture notebook (about a second per run) with the
``scalerepro`` kernel that ``make dev-env`` registers, or, where a test hides it, with this
interpreter's own ipykernel.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from scalerepro import cli
from scalerepro.publishing import runner
from scalerepro.publishing.spec import SpecError

FIXTURES = Path(__file__).parent / "fixtures"


pytestmark = pytest.mark.usefixtures("fixture_specs")


def checkout_of(notebook):
    """What git itself says of the checkout tracking ``notebook``: its commit and whether
    tracked files are modified; None when no checkout tracks it (an unpacked archive)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(notebook.parent), *args], capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        git("ls-files", "--error-unmatch", notebook.name)
    except (OSError, subprocess.CalledProcessError):
        return None
    commit = git("rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _cli(*args, out):
    return subprocess.Popen([sys.executable, "-m", "scalerepro.cli", "run", "tiny", "--no-progress",
                             "--out", str(out), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())


def test_bad_parameter_fails_before_any_output(tmp_path):
    with pytest.raises(SpecError, match=r"'n_bootstrap' = -3 violates min 0"):
        runner.run("tiny", "ci", tmp_path, {"n_bootstrap": "-3"})
    assert list(tmp_path.iterdir()) == []


def _copy_fixture(tmp_path, mutate_spec=None, mutate_notebook=None):
    """A private replications dir holding a modified copy of the tiny spec and notebook."""
    root = tmp_path / "repo"
    (root / "replications").mkdir(parents=True)
    (root / "notebooks").mkdir()
    raw = yaml.safe_load((FIXTURES / "replications" / "tiny.yaml").read_text())
    nb = nbformat.read(FIXTURES / "notebooks" / "tiny.ipynb", as_version=4)
    if mutate_spec:
        mutate_spec(raw)
    if mutate_notebook:
        mutate_notebook(nb)
    (root / "replications" / "tiny.yaml").write_text(yaml.safe_dump(raw))
    nbformat.write(nb, root / "notebooks" / "tiny.ipynb")
    return root / "replications"


def test_notebook_parameters_must_match_the_spec(tmp_path, monkeypatch):
    def add_param(raw):
        raw["parameters"]["seed"] = {"type": "int", "default": 0}

    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_copy_fixture(tmp_path, add_param)))
    with pytest.raises(SpecError, match=r"parameters cell does not match tiny.yaml: missing \['seed'\]"):
        runner.prepare("tiny", "ci")


def test_success_failure_success(tmp_path):
    out = tmp_path / "out"
    results = runner.run("tiny", "ci", out, {"scale": "1.02"}, progress=False)
    d = out / "tiny"
    assert sorted(p.name for p in d.iterdir()) == [".lock", "executed.html", "executed.ipynb",
                                                   "report.html", "results.json"]
    on_disk = json.loads((d / "results.json").read_text())
    assert on_disk == results
    assert results["status"] == "ok" and results["profile"] == "ci"
    assert results["parameters"] == {"scale": 1.02, "n_bootstrap": 5, "reduction": "sum",
                                     "fail": False, "sleep": 0.0}
    assert [c["verdict"] for c in results["claims"]] == ["replicated", "replicated", "inconclusive",
                                                         "not_testable"]
    assert results["claims"][0]["reproduced"] == pytest.approx(2.04)
    assert results["data"] == [{"dataset": "tiny_data", "file": "tiny.csv", "sha256": "0" * 64}]
    env = results["environment"]
    assert env["git"] == checkout_of(FIXTURES / "notebooks" / "tiny.ipynb")  # None outside a checkout
    assert env["packages"]["papermill"] and env["python"]
    assert env["kernel"]["name"] == "scalerepro" and env["kernel"]["source"] == "registered"
    assert Path(env["kernel"]["executable"]).is_file()
    assert results["timing"]["seconds"] > 0 and results["timing"]["start"] <= results["timing"]["end"]
    assert "replicated" in (d / "report.html").read_text()

    good = {name: (d / name).read_bytes() for name in ("results.json", "report.html", "executed.ipynb")}
    with pytest.raises(runner.RunFailed, match=r"tiny failed in cell 4 \(In \[4\]\): RuntimeError: requested failure"):
        runner.run("tiny", "ci", out, {"fail": "true"}, progress=False)
    assert {name: (d / name).read_bytes() for name in good} == good  # last good run untouched
    failed = json.loads((d / "failed.json").read_text())
    assert failed["status"] == "failed" and failed["parameters"]["fail"] is True
    err = failed["error"]
    assert (err["cell"], err["execution_count"], err["ename"], err["evalue"]) == (4, 4, "RuntimeError",
                                                                                "requested failure")
    assert 'raise RuntimeError("requested failure")' in err["source"] and "Traceback" in err["traceback"]
    assert "\x1b[" not in err["traceback"]
    failed_html = (d / "failed_report.html").read_text()
    assert 'id="error"' in failed_html and "requested failure" in failed_html
    assert (d / "failed.ipynb").is_file() and not (d / ".attempts").exists()

    runner.run("tiny", "ci", out, progress=False)
    assert not (d / "failed.json").exists() and not (d / "failed_report.html").exists()


def test_notebook_that_writes_no_results_is_a_failure(tmp_path, monkeypatch):
    def drop_write(nb):
        nb.cells = nb.cells[:-1]

    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_copy_fixture(tmp_path, None, drop_write)))
    with pytest.raises(runner.RunFailed, match="without writing results.json"):
        runner.run("tiny", None, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "tiny" / "results.json").exists()
    assert json.loads((tmp_path / "out" / "tiny" / "failed.json").read_text())["error"]["ename"] == "ResultsError"


@pytest.mark.slow
def _wait_until_locked(lock: Path, proc, timeout: float = 60.0):
    """Until ``proc`` holds the run's lock (a fixed head start loses the race on a busy machine)."""
    deadline = time.time() + timeout
    while True:
        assert time.time() < deadline and proc.poll() is None, "the first run never took the lock"
        if lock.exists():
            with open(lock, "a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                except BlockingIOError:
                    return
        time.sleep(0.05)


def test_concurrent_runs_wait_for_each_other(tmp_path):
    first = _cli("-p", "sleep=1.5", out=tmp_path)
    _wait_until_locked(tmp_path / "tiny" / ".lock", first)
    second = _cli("-p", "scale=1.01", out=tmp_path)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert "waiting for it to finish" in outputs[1][1]
    results = json.loads((tmp_path / "tiny" / "results.json").read_text())
    assert results["status"] == "ok" and results["parameters"]["scale"] == 1.01  # the later run
    assert not (tmp_path / "tiny" / ".attempts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_records_failure_and_keeps_previous_results(tmp_path, sig):
    runner.run("tiny", None, tmp_path, progress=False)
    good = (tmp_path / "tiny" / "results.json").read_bytes()
    proc = _cli("-p", "sleep=60", out=tmp_path)
    deadline = time.time() + 60
    while not list((tmp_path / "tiny").glob(".attempts/*/executed.ipynb")):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(2.0)  # let the kernel reach the sleeping cell
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert (tmp_path / "tiny" / "results.json").read_bytes() == good
    failed = json.loads((tmp_path / "tiny" / "failed.json").read_text())
    assert failed["error"]["ename"] == "KeyboardInterrupt"
    assert not (tmp_path / "tiny" / ".attempts").exists()


def test_stale_attempt_of_a_killed_run_is_cleaned(tmp_path):
    stale = tmp_path / "tiny" / ".attempts" / "20000101T000000-1"
    stale.mkdir(parents=True)
    (stale / "results.json").write_text("{")
    runner.run("tiny", None, tmp_path, progress=False)
    assert not (tmp_path / "tiny" / ".attempts").exists()


def test_kernel_death_is_a_recorded_failure_and_keeps_previous_results(tmp_path, monkeypatch):
    def kill_kernel(nb):
        nb.cells[3].source = "import os\nos._exit(1)"

    runner.run("tiny", None, tmp_path / "out", progress=False)
    good = (tmp_path / "out" / "tiny" / "results.json").read_bytes()
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_copy_fixture(tmp_path, None, kill_kernel)))
    with pytest.raises(runner.RunFailed):
        runner.run("tiny", None, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "tiny" / "results.json").read_bytes() == good
    failed = json.loads((tmp_path / "out" / "tiny" / "failed.json").read_text())
    assert failed["status"] == "failed" and failed["error"]["ename"]
    assert not (tmp_path / "out" / "tiny" / ".attempts").exists()


# ------------------------------------------------------------------- finding a kernel
@pytest.fixture
def no_registered_kernel(monkeypatch, tmp_path):
    """As after a plain pip or conda install: no ``scalerepro`` kernel anywhere Jupyter looks,
    and a Jupyter data path holding a broken ``python3`` kernel (another Python's, since deleted),
    which the fallback must not pick up."""
    monkeypatch.delenv("SCALEREPRO_KERNEL", raising=False)
    monkeypatch.setattr(runner, "DEFAULT_KERNEL", "scalerepro-not-registered")
    _register(tmp_path / "jupyter", "python3", "/nonexistent/other-env/bin/python")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def _register(jupyter_dir: Path, name: str, program: str):
    kernel_dir = jupyter_dir / "kernels" / name
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [program, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python"}))


def test_without_a_registered_kernel_runs_in_this_interpreter(tmp_path, monkeypatch, no_registered_kernel):
    def report_interpreter(nb):
        nb.cells.insert(3, nbformat.v4.new_code_cell("import sys\nrec.warn('kernel python ' + sys.executable)"))

    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_copy_fixture(tmp_path, None, report_interpreter)))
    results = runner.run("tiny", "ci", tmp_path / "out", progress=False)
    assert results["status"] == "ok"
    assert results["environment"]["kernel"] == {"name": "python3", "source": "this interpreter",
                                                "executable": sys.executable}
    assert f"kernel python {sys.executable}" in results["warnings"]
    assert "this interpreter" in (tmp_path / "out" / "tiny" / "report.html").read_text()


def test_without_ipykernel_the_error_names_the_fix(tmp_path, monkeypatch, capsys, no_registered_kernel):
    monkeypatch.setitem(sys.modules, "ipykernel.kernelspec", None)  # import fails as if not installed
    with pytest.raises(runner.SetupError, match=r"no kernel named 'scalerepro-not-registered' is registered "
                                                r"and ipykernel is not installed in .*pip install 'scalerepro\[notebook\]'"):
        runner.prepare("tiny", "ci")
    assert cli.main(["run", "tiny", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalerepro: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_papermill_the_error_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "papermill", None)
    with pytest.raises(runner.SetupError, match=r"papermill is not installed in .*pip install 'scalerepro\[notebook\]'"):
        runner.prepare("tiny", "ci")


def test_registered_kernel_is_preferred_and_a_stale_one_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SCALEREPRO_KERNEL", raising=False)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setattr(runner, "DEFAULT_KERNEL", "scalerepro-elsewhere")
    _register(tmp_path / "jupyter", "scalerepro-elsewhere", sys.executable)
    assert runner.find_kernel() == runner.Kernel("scalerepro-elsewhere", "registered", sys.executable)

    monkeypatch.setattr(runner, "DEFAULT_KERNEL", "scalerepro-stale")
    _register(tmp_path / "jupyter", "scalerepro-stale", "/nonexistent/deleted-venv/bin/python")
    with pytest.raises(runner.SetupError, match=r"kernel 'scalerepro-stale' \(.*\) runs "
                                                r"/nonexistent/deleted-venv/bin/python, which does not exist; "
                                                r"register the kernel again .* or remove it"):
        runner.find_kernel()


def test_scalerepro_kernel_variable_must_name_an_installed_kernel(monkeypatch):
    monkeypatch.setenv("SCALEREPRO_KERNEL", "no-such-kernel")
    with pytest.raises(runner.SetupError, match=r"\$SCALEREPRO_KERNEL names kernel 'no-such-kernel', "
                                                r"which is not installed \(available: .*scalerepro"):
        runner.find_kernel()


def test_kernel_reads_the_spec_the_runner_checked_and_the_environment_is_restored(tmp_path, monkeypatch):
    """A relative replications directory, while the kernel runs in the notebooks directory."""
    replications = _copy_fixture(tmp_path)
    monkeypatch.chdir(replications.parent)
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", "replications")
    monkeypatch.delenv("SCALEREPRO_DATA_DIR", raising=False)
    assert runner.run("tiny", "ci", tmp_path / "out", progress=False)["status"] == "ok"
    assert os.environ["SCALEREPRO_REPLICATIONS_DIR"] == "replications"

    spec = runner.load_spec("tiny")
    monkeypatch.delenv("SCALEREPRO_REPLICATIONS_DIR")  # as when the specs come from the package
    with runner._kernel_environment(spec):
        assert os.environ["SCALEREPRO_REPLICATIONS_DIR"] == str(replications.resolve())
    assert "SCALEREPRO_REPLICATIONS_DIR" not in os.environ and "SCALEREPRO_DATA_DIR" not in os.environ


def test_git_commit_is_recorded_only_for_a_tracked_notebook(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "tracked.ipynb").write_text("{}")
    git("add", "tracked.ipynb")
    git("commit", "-qm", "x")
    (tmp_path / "site-packages").mkdir()  # e.g. a virtualenv inside a working tree
    (tmp_path / "site-packages" / "installed.ipynb").write_text("{}")
    assert len(runner.git_info(tmp_path / "tracked.ipynb")["commit"]) == 40
    assert runner.git_info(tmp_path / "site-packages" / "installed.ipynb") is None

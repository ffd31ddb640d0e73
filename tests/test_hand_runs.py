"""Notebooks run by hand, as in JupyterLab, next to the batch results of ``scalerepro run``.

A researcher opens ``notebooks/NAME.ipynb`` and runs it top to bottom with its default
parameters (working directory ``notebooks/``, nothing injected). That must never write over
the results ``scalerepro run`` / ``make reproduce`` published in ``out/NAME/``: a hand run
writes to ``out/NAME/interactive/``. The check runs in a copy of the checkout's layout
(notebooks/, replications/, data/examples/) so that the real ``out/`` is never touched.
"""

import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, load_or_skip, noisy_outputs

HAND_RUNS = ("kaplan2020", "fit_your_runs")  # the first also has a batch run here


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_by_hand(notebook: Path) -> Path:
    """Execute every cell with the notebook's own defaults in its directory, as JupyterLab's
    "Run All" does (no papermill, no parameters); return the executed copy's path."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, kernel_name=os.environ.get("SCALEREPRO_KERNEL", "scalerepro"), timeout=1200,
                   startup_timeout=180, resources={"metadata": {"path": str(notebook.parent)}}).execute()
    executed = notebook.with_name(f".executed.{notebook.name}")
    nbformat.write(nb, executed)
    return executed


def test_noisy_outputs_finds_paths_and_raw_warnings(tmp_path):
    import nbformat

    def executed(*outputs):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x", outputs=list(outputs))]
        path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
        nbformat.write(nb, path)
        return path

    path_repr = nbformat.v4.new_output("execute_result", data={"text/plain": "PosixPath('out/figures/a.png')"},
                                       execution_count=1)
    raw = nbformat.v4.new_output("stream", name="stderr", text=(
        "/tmp/ipykernel_1/2.py:5: FitWarning: ill-conditioned Hessian at the optimum\n  res = fit(...)\n"))
    assert len(noisy_outputs(executed(path_repr, raw))) == 2
    explained = nbformat.v4.new_output("stream", name="stdout", text=(
        "WARNING: the best start did not converge\nrw/tuned: ill-conditioned Hessian (6e+10)\n"))
    progress = nbformat.v4.new_output("stream", name="stderr", text="100%|##########| 200/200\n")
    assert noisy_outputs(executed(explained, progress)) == []


def test_files_under_sees_every_byte(tmp_path):
    (tmp_path / "a" / "figures").mkdir(parents=True)
    (tmp_path / "a" / "results.json").write_text("{}")
    (tmp_path / "a" / "figures" / "x.png").write_bytes(b"\x89PNG")
    before = files_under(tmp_path)
    (tmp_path / "a" / "figures" / "x.png").write_bytes(b"\x89PNG!")
    assert files_under(tmp_path) != before


@pytest.mark.slow
def test_hand_runs_leave_batch_results_byte_identical(tmp_path, monkeypatch):
    load_or_skip("porian2024_discrepancies", "summary_df.pickle.xz")
    from scalerepro.publishing import runner

    checkout = tmp_path / "checkout"
    for part in ("notebooks", "replications", "data/examples"):
        shutil.copytree(ROOT / part, checkout / part)
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(checkout / "replications"))
    out = checkout / "out"  # where `make reproduce` publishes
    runner.run("kaplan2020", "ci", out, progress=False)
    batch = files_under(out)
    assert "kaplan2020/results.json" in batch and "kaplan2020/report.html" in batch

    monkeypatch.delenv("SCALEREPRO_REPLICATIONS_DIR")  # a hand run has only the installed specs
    notebooks_before = sorted(p.name for p in (checkout / "notebooks").iterdir())
    executed = {name: run_by_hand(checkout / "notebooks" / f"{name}.ipynb") for name in HAND_RUNS}

    after = files_under(out)
    assert {path: after.get(path) for path in batch} == batch, "a hand run changed the batch results"
    written = sorted(set(after) - set(batch))
    assert all(any(path.startswith(f"{name}/interactive/") for name in HAND_RUNS) for path in written), written
    for name in HAND_RUNS:
        assert f"{name}/interactive/results.json" in written, name
        assert noisy_outputs(executed[name]) == [], name
    left_beside = sorted(p.name for p in (checkout / "notebooks").iterdir() if not p.name.startswith(".executed."))
    assert left_beside == notebooks_before, "a hand run wrote next to the notebooks"

"""Shared fixtures: upstream data through the loader, papermill notebook runs, synthetic
runs from a known law, and the one full-grid Chinchilla fit the session shares."""

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# CI services set CI to "true", "1" or "yes" (any case); all of them mean CI here.
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# Property tests draw the same examples on every run: a failure in CI is reproducible on a
# laptop, and a run cannot pass by the luck of the draw.
settings.register_profile("scalerepro", derandomize=True, database=None)
settings.load_profile("scalerepro")


def data_or_skip(load, *args):
    """``load(*args)`` for upstream data. Off CI a missing file skips the test; in CI it is a
    failure, because CI must test against the real data."""
    from scalerepro.io import data

    try:
        return load(*args)
    except data.DataError as exc:
        if IN_CI:
            raise
        pytest.skip(f"upstream data not available: {exc}")


def load_or_skip(name, file=None):
    """A registered table through ``scalerepro.io.data.load`` (see :func:`data_or_skip`)."""
    from scalerepro.io import data

    return data_or_skip(data.load, name, *([file] if file else []))


@pytest.fixture
def fixture_specs(monkeypatch):
    """Specs from tests/fixtures/replications (the tiny ones), not the repository's."""
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(FIXTURES / "replications"))


@pytest.fixture(scope="session")
def chinchilla_points():
    """Besiroglu et al.'s 245 runs less the five known outliers: (kept, dropped records)."""
    from scalerepro.core.selection import drop_largest

    runs = load_or_skip("besiroglu2024_chinchilla")
    return drop_largest(runs, "loss", 5, "outlier")


@pytest.fixture(scope="session")
def chinchilla_grid_fit(chinchilla_points):
    """The 4500-start Chinchilla fit on the real runs, made once per session (it is the
    slowest computation the fast tests share)."""
    from scalerepro.core import laws
    from scalerepro.core.fit import fit

    kept, dropped = chinchilla_points
    return fit(laws.Chinchilla(), kept[["N", "D"]].to_numpy(float), kept["loss"].to_numpy(float),
               dropped=dropped)


def run_notebook(notebook: str, tmp_path: Path, results_file: str = "results.json", **parameters) -> dict:
    """Execute notebooks/NOTEBOOK with papermill into tmp_path and return its results.json
    (or the record ``results_file`` it writes, e.g. backtest.json)."""
    import papermill as pm

    from scalerepro.publishing.runner import ipc_kernel_manager

    out_dir = tmp_path / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(ROOT / "notebooks" / notebook), str(tmp_path / notebook),
        parameters={**parameters, "out_dir": str(out_dir)},
        kernel_name=os.environ.get("SCALEREPRO_KERNEL", "scalerepro"),
        cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_manager_class=ipc_kernel_manager())
    assert noisy_outputs(tmp_path / notebook) == []
    return json.loads((out_dir / results_file).read_text())


# How Python's warnings module prints a warning: "file.py:12: FitWarning: message".
RAW_WARNING = re.compile(r"\b[A-Z]\w*Warning: ")


def noisy_outputs(executed_notebook) -> list[str]:
    """Cell outputs a reader should not see: the repr of a path (the value of a call such as
    ``rec.add_figure`` left at the end of a cell) and a raw Python warning, which names
    neither the configuration it belongs to nor what it means (a notebook catches the
    warnings it expects and says what they mean in its own words)."""
    nb = json.loads(Path(executed_notebook).read_text())
    found = []
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + [v for k, v in output.get("data", {}).items()
                                                if k.startswith("text/")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else str(text)
                for problem in ("PosixPath(", "WindowsPath("):
                    if problem in text:
                        found.append(f"cell {index} ({cell.get('id')}): {problem}... in the output")
                if match := RAW_WARNING.search(text):
                    line = text[text.rfind("\n", 0, match.start()) + 1:].split("\n")[0]
                    found.append(f"cell {index} ({cell.get('id')}): raw warning {line[:200]!r}")
    return found


_CI_RUNS: dict[tuple, Path] = {}  # (notebook, parameters) -> the directory of its first run


def run_replication_ci(name: str, tmp_path: Path) -> dict:
    """Execute replication NAME's notebook at its ``ci`` profile; return its results.json.

    Executed once per session: the notebook's own test and test_scheduler's comparison with
    a Dask run share it. Later calls get a copy of the executed notebook and outputs in
    ``tmp_path``, laid out as the first run wrote them."""
    import shutil

    from scalerepro.publishing import spec

    s = spec.load_spec(name)
    parameters = spec.resolve_parameters(s, "ci", {})
    key = (str(s.notebook), json.dumps(parameters, sort_keys=True, default=str))
    if key not in _CI_RUNS:
        run_notebook(s.notebook.name, tmp_path, **parameters)
        _CI_RUNS[key] = tmp_path
    elif _CI_RUNS[key] != tmp_path:
        shutil.copytree(_CI_RUNS[key] / "out", tmp_path / "out", dirs_exist_ok=True)
        shutil.copy2(_CI_RUNS[key] / s.notebook.name, tmp_path / s.notebook.name)
    return json.loads((tmp_path / "out" / "results.json").read_text())


CHINCHILLA_TRUTH = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)  # near Besiroglu et al.'s refit


def law_runs(law, truth: dict, n: int, noise: float, seed: int, log10_N, log10_D):
    """Runs with N and D log-uniform over the given decades, loss from ``law`` at the
    natural parameters ``truth`` times log-normal noise: data with a known answer."""
    import numpy as np

    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(*log10_N, n)
    D = 10 ** rng.uniform(*log10_D, n)
    y = law.predict(law.from_natural(**truth), np.c_[N, D]) * np.exp(noise * rng.standard_normal(n))
    return np.c_[N, D], y


def synthetic_chinchilla_fit(n: int, seed: int, n_starts: int, n_resamples: int, boot_seed: int,
                             dropped=None):
    """A real Chinchilla fit on synthetic runs (:data:`CHINCHILLA_TRUTH`, 1% log-normal
    noise) from starts scattered around the truth, and a small bootstrap."""
    import numpy as np

    from scalerepro.core.bootstrap import bootstrap
    from scalerepro.core.fit import fit
    from scalerepro.analyses.law_registry import get_law

    law = get_law("chinchilla")
    X, y = law_runs(law, CHINCHILLA_TRUTH, n, 0.01, seed, log10_N=(7, 10), log10_D=(9, 12))
    theta = law.from_natural(**CHINCHILLA_TRUTH)
    starts = theta[None, :] + np.random.default_rng([seed, 1]).normal(0, 0.05, (n_starts, 5))
    result = fit(law, X, y, starts=starts, dropped=dropped)
    assert result.converged
    return result, bootstrap(result, X, y, n_resamples=n_resamples, seed=boot_seed)


def executed_images(path: Path) -> int:
    """Number of PNG figures in an executed notebook."""
    nb = json.loads(Path(path).read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))

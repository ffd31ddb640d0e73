"""Shared fixtures: upstream data through the loader, and papermill notebook runs."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"


def load_or_skip(name, file=None):
    """Upstream data through the loader. Off CI a missing file skips the test; in CI
    (CI=true) it is a failure, because CI must test against the real data."""
    from scalerepro import data

    try:
        return data.load(name, file) if file else data.load(name)
    except data.DataError as exc:
        if IN_CI:
            raise
        pytest.skip(f"upstream data not available: {exc}")


def run_notebook(notebook: str, tmp_path: Path, **parameters) -> dict:
    """Execute notebooks/NOTEBOOK with papermill into tmp_path and return its results.json."""
    import papermill as pm

    from scalerepro.runner import ipc_kernel_manager

    out_dir = tmp_path / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(ROOT / "notebooks" / notebook), str(tmp_path / notebook),
        parameters={**parameters, "out_dir": str(out_dir)},
        kernel_name=os.environ.get("SCALEREPRO_KERNEL", "scalerepro"),
        cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_manager_class=ipc_kernel_manager())
    return json.loads((out_dir / "results.json").read_text())


def run_replication_ci(name: str, tmp_path: Path) -> dict:
    """Execute replication NAME's notebook at its ``ci`` profile; return its results.json."""
    from scalerepro import spec

    s = spec.load_spec(name)
    return run_notebook(s.notebook.name, tmp_path, **spec.resolve_parameters(s, "ci", {}))


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
    """A real Chinchilla fit on synthetic runs (truth E 1.8, A 480, B 2100, alpha 0.35,
    beta 0.37, 1% log-normal noise) started near the truth, and a small bootstrap."""
    import numpy as np

    from scalerepro.bootstrap import bootstrap
    from scalerepro.fit import fit
    from scalerepro.laws import get_law

    law = get_law("chinchilla")
    rng = np.random.default_rng(seed)
    X = np.column_stack([10 ** rng.uniform(7, 10, n), 10 ** rng.uniform(9, 12, n)])
    theta = law.from_natural(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    y = law.predict(theta, X) * np.exp(rng.normal(0, 0.01, n))
    result = fit(law, X, y, starts=theta[None, :] + rng.normal(0, 0.05, (n_starts, 5)), dropped=dropped)
    assert result.converged
    return result, bootstrap(result, X, y, n_resamples=n_resamples, seed=boot_seed)


def executed_images(path: Path) -> int:
    """Number of PNG figures in an executed notebook."""
    nb = json.loads(Path(path).read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))

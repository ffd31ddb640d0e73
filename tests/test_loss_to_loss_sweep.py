"""Loss-to-loss on the real sweep: library-level known answers (the notebook's own run is
checked in test_notebooks.py) and the notebook's strip plot."""

import itertools
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import load_or_skip

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "loss_to_loss.ipynb"

NAME = "brandfonbrener2024_loss_to_loss"
# Published stage-1 Kaplan-form E (curve_fitting.ipynb) and four train-to-train cells.
E_PUBLISHED = {"fineweb-100b": 2.1700, "fineweb-edu-100b": 1.9669, "proof-pile-2": 1.3191,
               "slimpajama-chunk1": 1.9672, "smollm-corpus": 1.5340, "starcoder": 0.8452}
T2T_PUBLISHED = {("fineweb-100b", "starcoder"): (1.0904, 0.6230),
                 ("proof-pile-2", "slimpajama-chunk1"): (0.9068, 1.6622),
                 ("starcoder", "slimpajama-chunk1"): (0.8807, 1.5757),
                 ("smollm-corpus", "fineweb-edu-100b"): (0.9937, 0.9348)}


@pytest.fixture(scope="module")
def sweep():
    return load_or_skip(NAME, "sweep.csv")


@pytest.fixture(scope="module")
def shifts(sweep):
    from scalerepro.core import laws
    from scalerepro.core.fit import fit

    out = {}
    for d, g in sweep.groupby("data"):
        X = g[["params", "tokens"]].to_numpy(np.float32).astype(float)
        y = g["val_loss"].to_numpy(np.float32).astype(float)
        result = fit(laws.KaplanWithE(), X, y, reduction="mean")
        assert result.converged, d
        out[(d, "val_loss")] = result.params["E"]
    return out


def test_stage1_E_matches_published(shifts):
    for d, published in E_PUBLISHED.items():
        assert shifts[(d, "val_loss")] == pytest.approx(published, abs=0.01), d


def test_train_to_train_matches_published(sweep, shifts):
    from scalerepro.analyses.loss_to_loss import fit_pairs

    table = fit_pairs(sweep, "data", ["params", "tokens"], "val_loss", shifts=shifts,
                      pairs=list(T2T_PUBLISHED))
    for row in table.itertuples():
        kappa, K = T2T_PUBLISHED[(row.dataset_0, row.dataset_1)]
        assert row.kappa == pytest.approx(kappa, abs=0.01)
        assert row.K == pytest.approx(K, rel=0.02)
        assert row.r2 > 0.99 and row.n_pairs >= 75




def notebook_cell(cell_id: str) -> str:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    return next(c.source for c in nb.cells if c.id == cell_id)


def test_strip_plot_puts_each_own_law_marker_over_its_target():
    """The strip plot of extrapolation errors (cell e00ac215), run on inputs ordered as in the
    notebook (targets first appear as fineweb_edu ... starcoder, fineweb, while DATASETS starts
    with fineweb): every red marker must sit over the tick of its own dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.colors as mcolors
    import seaborn as sns

    keys = {"fineweb-100b": "fineweb", "fineweb-edu-100b": "fineweb_edu", "proof-pile-2": "proof_pile_2",
            "slimpajama-chunk1": "slimpajama", "smollm-corpus": "smollm", "starcoder": "starcoder"}
    datasets = list(keys)
    pairs = list(itertools.permutations(datasets, 2))
    t2t_ext = pd.DataFrame({"dataset_0": [a for a, _ in pairs], "dataset_1": [b for _, b in pairs],
                            "rel_error_%": np.linspace(0.1, 2.0, len(pairs))})
    own_error = {d: 3.0 + 0.5 * i for i, d in enumerate(datasets)}   # distinct, above every pair
    own = pd.DataFrame({"dataset": datasets, "rel_error_%": [own_error[d] for d in datasets]})
    figures = []
    namespace = dict(t2t_ext=t2t_ext, own=own, KEYS=keys, DATASETS=datasets, pd=pd, np=np, plt=plt, sns=sns,
                     rec=SimpleNamespace(add_figure=lambda name, fig, caption="": figures.append(fig)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # plt.show() on the Agg backend
        exec(notebook_cell("e00ac215"), namespace)
    ax = figures[0].axes[0]
    ticks = {round(t): label.get_text() for t, label in zip(ax.get_xticks(), ax.get_xticklabels())}
    red = mcolors.to_rgba("tab:red")
    markers = [tuple(xy) for coll in ax.collections if len(coll.get_offsets())
               and np.allclose(coll.get_facecolor()[0], red) for xy in coll.get_offsets()]
    assert len(markers) == len(datasets)
    by_key = {keys[d]: e for d, e in own_error.items()}
    for x, y in markers:
        assert x == pytest.approx(round(x)), "own-law markers are drawn without jitter"
        assert y == pytest.approx(by_key[ticks[round(x)]]), f"marker {y} sits over {ticks[round(x)]}"
    plt.close("all")

"""The fit report's figures are drawn faster without changing what they show."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from scalerepro.publishing import fit_figures
from scalerepro.runs import fit as userfit

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "example_runs.csv"


def test_dropping_unseen_minor_ticks_leaves_every_figure_pixel_for_pixel(tmp_path):
    uf = userfit.fit_runs(EXAMPLE, holdout=3, n_bootstrap=100)
    results = uf.record()
    dropped_somewhere = False
    for name, draw, _ in fit_figures.FIGURES:
        fig = draw(uf, results)
        if fig is None:
            continue
        plain = io.BytesIO()
        draw(uf, results).savefig(plain, format="png", dpi=fit_figures.DPI)    # every minor tick kept
        minor = sum(len(axis.get_minorticklocs()) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis))
        fast = base64.b64decode(fit_figures.to_data_uri(fig).split(",", 1)[1])
        left = sum(len(axis.get_minorticklocs()) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis))
        dropped_somewhere |= left < minor
        assert fast == plain.getvalue(), name
    assert dropped_somewhere   # the log axes of this fit have minor ticks to drop


def test_every_figure_of_a_fit_is_drawn():
    uf = userfit.fit_runs(EXAMPLE, holdout=3, n_bootstrap=100)
    drawn = fit_figures.fit_figures(uf, uf.record())
    assert [f["name"] for f in drawn] == ["loss_vs_compute", "residuals", "predicted_vs_actual",
                                          "bootstrap_exponents", "bootstrap_tokens", "frontier"]
    assert all("uri" in f for f in drawn), [f.get("error") for f in drawn]


def test_labelled_minor_ticks_are_kept():
    # a log axis spanning less than a decade labels its minor ticks: those must stay
    def draw():
        fig, (ax,) = fit_figures._figure()
        ax.plot([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
        ax.set_xscale("log")
        return fig
    plain = io.BytesIO()
    draw().savefig(plain, format="png", dpi=fit_figures.DPI)
    fig = draw()
    assert base64.b64decode(fit_figures.to_data_uri(fig).split(",", 1)[1]) == plain.getvalue()
    assert len(fig.axes[0].xaxis.get_minorticklocs())

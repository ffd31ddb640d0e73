"""The figure of a sensitivity analysis: the compute-optimal allocation across variants.

One row per variant, grouped by the kind of choice it changes (the default first), the
allocation at one budget on a log axis with its bootstrap 95% interval, the default marked
(a star and a dashed line through its value). Hollow markers are variants the diagnostics
say not to use (not identified, or not converged when identifiability was not checked).
Both ``scalerepro sensitivity`` and the sensitivity notebook draw it from the same table
(:attr:`scalerepro.analyses.sensitivity.SensitivityResult.table`).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from ..analyses.sensitivity import budget_key

LABELS = {"N_opt": "compute-optimal N (parameters)", "tokens_per_param": "compute-optimal tokens per parameter"}


def _usable(table: pd.DataFrame) -> np.ndarray:
    column = "identified" if "identified" in table.columns else "converged"
    return table[column].fillna(False).astype(bool).to_numpy()


def allocation_figure(table: pd.DataFrame, budget: float, quantities=("N_opt", "tokens_per_param"),
                      default: str = "default", title: str | None = None):
    """A matplotlib Figure with one panel per quantity (columns ``<quantity>@<budget>`` and,
    when bootstrapped, ``... 95% low`` / ``... 95% high`` of the table)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    groups = list(dict.fromkeys(table["group"]))
    order = table.assign(_g=table["group"].map({g: i for i, g in enumerate(groups)})).sort_values(
        "_g", kind="stable")
    palette = dict(zip(groups, sns.color_palette("tab10" if len(groups) <= 10 else "tab20", len(groups))))
    usable = _usable(order)
    key = budget_key(budget)
    fig, axes = plt.subplots(1, len(quantities), figsize=(4.6 * len(quantities) + 3.2, 0.3 * len(order) + 1.6),
                             sharey=True, squeeze=False)
    ypos = np.arange(len(order))[::-1]
    for ax, quantity in zip(axes[0], quantities):
        column = f"{quantity}@{key}"
        values = pd.to_numeric(order[column], errors="coerce").to_numpy(float)
        finite = np.isfinite(values) & (values > 0)
        lo_col, hi_col = f"{column} 95% low", f"{column} 95% high"
        if default in set(order["variant"]):
            base = float(order.loc[order["variant"] == default, column].iloc[0])
            if np.isfinite(base) and base > 0:
                ax.axvline(base, color="0.35", lw=1, ls="--", zorder=1)
        for y0, (_, r), ok, fin, value in zip(ypos, order.iterrows(), usable, finite, values):
            color = palette[r["group"]]
            if lo_col in order.columns:
                lo, hi = r.get(lo_col), r.get(hi_col)
                if lo is not None and hi is not None and np.isfinite([lo, hi]).all() and lo > 0:
                    ax.plot([lo, hi], [y0, y0], color=color, lw=2.2, alpha=0.5, zorder=2, solid_capstyle="butt")
            if not fin:
                ax.annotate("no finite allocation", (0.01, y0), xycoords=("axes fraction", "data"), va="center",
                            fontsize=7, color="0.4")
                continue
            is_default = r["variant"] == default
            ax.scatter(value, y0, s=110 if is_default else 38, marker="*" if is_default else "o",
                       color=color if ok else "white", edgecolor=color, linewidth=1.3, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel(f"{LABELS.get(quantity, quantity)}\nat C = {float(budget):.3g} FLOP")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(ypos, list(order["variant"]), fontsize=8)
    handles = [plt.Line2D([], [], marker="o", ls="", color=palette[g], label=g) for g in groups if g != "default"]
    handles += [plt.Line2D([], [], marker="*", ls="", color="0.3", markersize=11, label="default"),
                plt.Line2D([], [], marker="o", ls="", markerfacecolor="white", color="0.3",
                           label="not identified / not converged"),
                plt.Line2D([], [], color="0.3", lw=2.2, alpha=0.5, label="bootstrap 95% interval")]
    axes[0][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def to_data_uri(fig, dpi: int = 110) -> str:
    """A figure as a PNG data URI (for a self-contained report); the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

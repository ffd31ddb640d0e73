"""The three figures of ``scalerepro backtest``, drawn from backtest.json (nothing refitted).

1. error against extrapolation factor: each held-out row's |relative error| against how
   far its compute lies beyond the fold's largest fitted compute, one line per method
   (the top methods of the ranking, so the figure stays readable);
2. predicted against actual loss at the deepest fold (the largest extrapolation), with
   each prediction's 95% interval;
3. coverage per method: the share of held-out rows inside the 95% prediction interval,
   against the nominal 95%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .sensitivity_figures import to_data_uri

#: Methods drawn in the per-method figures (the ranking's first ones).
SHOWN = 8
#: Relative errors below this are drawn at it (a log axis has no zero).
FLOOR = 1e-5


def _points(method: dict) -> pd.DataFrame:
    frames = [pd.DataFrame(f["points"]).assign(cutoff_C=f["cutoff_C"]) for f in method["folds"] if f.get("points")]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def error_figure(record: dict):
    import matplotlib.pyplot as plt

    shown = [m for m in _ranked(record)[:SHOWN]]
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for method in shown:
        pts = _points(method)
        if pts.empty:
            continue
        error = 100 * np.maximum(pts["rel_error"].abs(), FLOOR)
        ax.scatter(pts["extrapolation"], error, s=14, alpha=0.75, label=method["name"])
    from matplotlib import ticker

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%gx"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("extrapolation factor: C of the held-out row / largest fitted C")
    ax.set_ylabel("|relative error| of the predicted loss (%)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def predicted_figure(record: dict):
    import matplotlib.pyplot as plt

    deepest = record["ranked_at"]["cutoff_C"]
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    low, high = np.inf, -np.inf
    for i, method in enumerate(_ranked(record)[:SHOWN]):
        fold = next(f for f in method["folds"] if f["cutoff_C"] == deepest)
        pts = pd.DataFrame(fold.get("points") or [])
        if pts.empty:
            continue
        offset = 1 + 0.002 * (i - SHOWN / 2)   # side by side, not on top of one another
        ax.errorbar(pts["loss"] * offset, pts["loss_pred"],
                    yerr=[pts["loss_pred"] - pts["pi_low"], pts["pi_high"] - pts["loss_pred"]],
                    fmt="o", ms=4, capsize=2, lw=1, label=method["name"])
        low, high = min(low, pts["loss"].min(), pts["pi_low"].min()), max(high, pts["loss"].max(), pts["pi_high"].max())
    if np.isfinite([low, high]).all():
        ax.plot([low, high], [low, high], color="0.4", ls="--", lw=1, label="predicted = actual")
    ax.set_xlabel("actual loss of the held-out run")
    ax.set_ylabel("predicted loss, with its 95% prediction interval")
    ax.set_title(f"deepest fold: fitted on runs below C = {deepest:.3g} FLOP", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def coverage_figure(record: dict, level: float = 0.95):
    import matplotlib.pyplot as plt

    methods = _ranked(record)
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(methods) + 1.4))
    y = np.arange(len(methods))[::-1]
    values = [np.nan if m["coverage"] is None else 100 * m["coverage"] for m in methods]
    ax.barh(y, values, color="tab:blue", alpha=0.7)
    ax.axvline(100 * level, color="0.3", ls="--", lw=1, label=f"nominal {level:.0%}")
    ax.set_yticks(y, [m["name"] for m in methods], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("held-out rows inside the 95% prediction interval (%), over every fold")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _ranked(record: dict) -> list[dict]:
    by_name = {m["name"]: m for m in record["methods"]}
    return [by_name[name] for name in record["ranking"]]


def backtest_figures(record: dict) -> list[dict]:
    """The report's figures as ``{name, caption, uri}``."""
    shown = min(SHOWN, len(record["methods"]))
    return [
        {"name": "error_vs_extrapolation", "uri": to_data_uri(error_figure(record)),
         "caption": f"|Relative error| of each held-out row against its extrapolation factor, for the {shown} "
                    "best-ranked methods (every fold; log scales)."},
        {"name": "predicted_vs_actual", "uri": to_data_uri(predicted_figure(record)),
         "caption": f"Predicted against actual loss at the deepest fold (the largest extrapolation), the {shown} "
                    "best-ranked methods, with 95% prediction intervals; points on the dashed line are exact."},
        {"name": "coverage", "uri": to_data_uri(coverage_figure(record)),
         "caption": "Share of held-out rows inside each method's 95% prediction interval, pooled over folds "
                    "(dashed: the nominal 95%). Far below it: the method is overconfident beyond its data."},
    ]

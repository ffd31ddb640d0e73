"""Figures of a fit of a user's own runs, embedded in its report.

A table of parameters cannot show a bad fit; these figures can. Each answers one question a
researcher asks of a fit:

- ``loss_vs_compute``: do the fitted law's curves go through the runs, and through the
  held-out ones it never saw?
- ``residuals``: which runs does the law miss, and is the miss systematic (by size)?
- ``predicted_vs_actual``: how well are the held-out runs predicted?
- ``bootstrap_exponents`` / ``bootstrap_tokens``: how well do the data pin down the
  exponents, the allocation exponent and tokens per parameter at each budget?
- ``profile``: along a parameter the data do not identify, how flat is the objective?
  (drawn from ``results["identifiability"]["profiles"]`` when the fit recorded one)
- ``frontier``: the compute-optimal N_opt(C) and tokens per parameter, with their
  bootstrap band, inside and beyond the fitted range.
- ``approaches`` (``--approach``): do Chinchilla's approaches agree? N_opt(C) with one
  line and band per approach, and the data's own optima (per-budget minima, envelope).

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, no
display needed) in seaborn's whitegrid style (matplotlib's own copy of it: importing seaborn
would cost every ``scalerepro fit`` a third of a second for styling alone), and returned as
PNG data URIs. A figure that
cannot be drawn does not stop the report: its entry carries the error instead.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context, style
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter, NullLocator

from ..core import optimal
from ..core.stats import percentile_interval

CMAP = "viridis"
#: seaborn's "whitegrid" style with its "notebook" context at font scale 0.85.
STYLE = (style.library["seaborn-v0_8-whitegrid"],
         {"font.size": 10.2, "axes.labelsize": 10.2, "axes.titlesize": 10.2, "legend.title_fontsize": 10.2,
          "xtick.labelsize": 9.35, "ytick.labelsize": 9.35, "legend.fontsize": 9.35, "axes.linewidth": 1.25,
          "grid.linewidth": 1.0, "lines.linewidth": 1.5})
DPI = 100
MAX_CURVES = 9          # fitted-law curves in the loss figure (model sizes beyond that are subsampled)
MAX_RUN_LABELS = 60     # runs named on the residual axis; more are shown by rank
ROLE_STYLE = {"fitted": dict(marker="o", s=22, edgecolor="none", alpha=0.9),
              "held out": dict(marker="X", s=80, edgecolor="black", linewidth=0.8),
              "left out": dict(marker="x", s=30, alpha=0.7)}


# ----------------------------------------------------------------------------- helpers
def _figure(ncols: int = 1, width: float = 7.5, height: float = 4.6, margins: dict | None = None):
    """A figure of ``ncols`` axes side by side. margins: ``{left, right, bottom, top, wspace}``
    in inches for a figure whose labels have a known extent (one-line titles, short tick
    labels): they are set once, where matplotlib's constrained layout would measure every
    label twice more per figure (about a third of its drawing time). Without them the layout
    is constrained, for figures whose titles and labels vary in extent."""
    with rc_context(STYLE[0]), rc_context(STYLE[1]):
        fig = Figure(figsize=(width, height), layout=None if margins else "constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
    if margins:
        fig.subplots_adjust(left=margins["left"] / width, right=1 - margins["right"] / width,
                            bottom=margins["bottom"] / height, top=1 - margins["top"] / height,
                            wspace=margins.get("wspace", 0.2))
    return fig, axes


def _drop_unseen_minor_ticks(fig: Figure) -> None:
    """Remove the minor ticks that draw nothing: on a log axis spanning many decades (or with
    its minor labels switched off) matplotlib still builds a tick object, label and layout
    for each of 8 minor ticks per decade, which this style draws without a mark, a grid line
    or a label. The image is the same pixel for pixel (tests/test_fit_figures.py checks it),
    at about a sixth less drawing time."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locs = axis.get_minorticklocs()
            if len(locs) and not any(axis.get_minor_formatter().format_ticks(locs)):
                axis.set_minor_locator(NullLocator())


def to_data_uri(fig: Figure) -> str:
    _drop_unseen_minor_ticks(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _roles(uf) -> pd.Series:
    """'fitted', 'held out' or 'left out' (in the file, in neither: --per-nd, --checkpoints,
    --drop-highest-loss) for every row."""
    role = pd.Series("left out", index=uf.frame.index)
    role[uf.frame.index.isin(uf.train.index)] = "fitted"
    role[uf.frame.index.isin(uf.held.index)] = "held out"
    return role


def _size_norm(frame: pd.DataFrame):
    logn = np.log10(frame["N"])
    return Normalize(logn.min(), logn.max() if logn.max() > logn.min() else logn.min() + 1)


def _colorbar(fig, ax, norm, label="log10 N (parameters)"):
    import matplotlib.cm as cm

    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=CMAP), ax=ax, label=label, pad=0.01)


def _scatter_roles(ax, x, y, roles, colour_values=None, norm=None):
    """Points by role: fitted dots, held-out crosses with a black edge, left-out grey x's."""
    for role, style in ROLE_STYLE.items():
        mask = (roles == role).to_numpy()
        if not mask.any():
            continue
        kwargs = dict(style)
        if role == "left out" or colour_values is None:
            kwargs["color"] = "0.45" if role == "left out" else "C0"
        else:
            kwargs.update(c=np.asarray(colour_values)[mask], cmap=CMAP, norm=norm)
        ax.scatter(np.asarray(x)[mask], np.asarray(y)[mask], label=f"{role} ({mask.sum()})", zorder=3,
                   **kwargs)


def _representative_sizes(sizes: np.ndarray, k: int = MAX_CURVES) -> np.ndarray:
    sizes = np.unique(sizes)
    if len(sizes) <= k:
        return sizes
    return sizes[np.unique(np.round(np.linspace(0, len(sizes) - 1, k)).astype(int))]


def _plain_log_ticks(axis):
    """Ticks at 1, 2, 5 x 10^k written as plain numbers, for a log axis spanning less than
    a few decades (losses, tokens per parameter), where 10^k labels alone are too sparse."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def _fitted_max_c(uf) -> float | None:
    return float(uf.train["C"].max()) if "C" in uf.train.columns else None


def _beyond(ax, fitted_max):
    """Shade what lies beyond the largest fitted compute."""
    if fitted_max is None:
        return
    ax.axvline(fitted_max, color="0.3", lw=0.8, ls=":")
    ax.axvspan(fitted_max, ax.get_xlim()[1], color="0.85", alpha=0.35, zorder=0, lw=0)
    ax.text(fitted_max, 0.98, " beyond the fitted range", transform=ax.get_xaxis_transform(), fontsize=7,
            va="top", ha="left", color="0.3")


# ----------------------------------------------------------------------------- figures
def loss_vs_compute(uf, results=None) -> Figure | None:
    """Loss against compute, coloured by model size, with the fitted law's curves."""
    frame, law = uf.frame, uf.law
    x_name = "C" if "C" in frame.columns else law.inputs[0]
    roles = _roles(uf)
    fig, (ax,) = _figure(margins=dict(left=0.7, right=0.1, bottom=0.55, top=0.3))
    norm = _size_norm(frame) if "N" in frame.columns else None
    if "run" in frame.columns:  # a run's checkpoints joined by a faint line
        for _, rows in frame.sort_values(x_name).groupby("run"):
            if len(rows) > 1:
                ax.plot(rows[x_name], rows["loss"], color="0.8", lw=0.6, zorder=1)
    if set(law.inputs) == {"N", "D"}:
        spread = np.log(frame["D"].max() / frame["D"].min()) * 0.1
        for n in _representative_sizes(frame["N"].to_numpy()):
            d = frame.loc[frame["N"] == n, "D"]
            if d.empty:
                continue
            grid = np.exp(np.linspace(np.log(d.min()) - spread, np.log(d.max()) + spread, 80))
            X = np.column_stack([np.full_like(grid, n) if name == "N" else grid for name in law.inputs])
            ax.plot(optimal.training_flops(n, grid), uf.result.predict(X), lw=1.1, zorder=2,
                    color=colormaps[CMAP](norm(np.log10(n))))
        if uf.allocation is not None:
            c = np.geomspace(frame["C"].min(), frame["C"].max() * 3, 80)
            with np.errstate(all="ignore"):
                best = optimal.compute_optimal(uf.result.params, c)["loss"]
            ax.plot(c, best, color="black", lw=1.2, ls="--", zorder=2, label="compute-optimal loss (fit)")
    elif len(law.inputs) == 1:
        name = law.inputs[0]
        grid = np.geomspace(frame[name].min(), frame[name].max() * 3, 120)
        ax.plot(grid, uf.result.predict(grid[:, None]), color="black", lw=1.2, zorder=2, label="fitted law")
    _scatter_roles(ax, frame[x_name], frame["loss"], roles, np.log10(frame["N"]) if norm else None, norm)
    ax.set(xscale="log", yscale="log", xlabel="training compute C = 6ND (FLOP)" if x_name == "C" else x_name,
           ylabel="loss")
    _plain_log_ticks(ax.yaxis)
    _beyond(ax, _fitted_max_c(uf) if x_name == "C" else None)
    if norm:
        _colorbar(fig, ax, norm)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Runs and the fitted law (one curve per model size)" if set(law.inputs) == {"N", "D"}
                 else "Runs and the fitted law", fontsize=10)
    return fig


def outlier_lines(uf) -> list[int]:
    """The file lines the ``outliers`` diagnostic names (its subjects read ``line N``)."""
    return [int(s.split()[1]) for d in getattr(uf, "diagnostics", None) or [] if d.code == "outliers"
            for s in d.subjects if str(s).startswith("line ")]


def residuals(uf, results=None) -> Figure:
    """Relative residual of every row, runs ordered by size then tokens; the points the
    ``outliers`` diagnostic names are ringed in red and labelled with their lines."""
    frame, law = uf.frame, uf.law
    roles = _roles(uf)
    predicted = uf.result.predict(frame[list(law.inputs)].to_numpy(float))
    resid = 100 * (frame["loss"].to_numpy() - predicted) / predicted
    run = frame["run"] if "run" in frame.columns else pd.Series(frame.index.astype(str), index=frame.index)
    order_keys = [k for k in ("N", "D", "C") if k in frame.columns]
    order = (frame.assign(_run=run).groupby("_run")[order_keys].max().sort_values(order_keys).index)
    position = pd.Series(np.arange(len(order)), index=order)
    x = position[run].to_numpy()
    named = len(order) <= MAX_RUN_LABELS   # run names on the axis: their extent varies, so the layout measures it
    fig, (ax,) = _figure(width=max(7.5, min(12.0, 0.14 * len(order) + 3)),
                         margins=None if named else dict(left=0.7, right=0.1, bottom=0.55, top=0.3))
    norm = _size_norm(frame) if "N" in frame.columns else None
    ax.axhline(0, color="0.3", lw=0.8)
    _scatter_roles(ax, x, resid, roles, np.log10(frame["N"]) if norm else None, norm)
    flagged = frame["line"].isin(outlier_lines(uf)).to_numpy() if "line" in frame.columns else np.zeros(len(frame), bool)
    if flagged.any():
        ax.scatter(x[flagged], resid[flagged], s=120, facecolor="none", edgecolor="#c0392b", linewidth=1.4, zorder=4,
                   label=f"outliers ({flagged.sum()}, see the diagnostic)")
        for xi, ri, line in zip(x[flagged], resid[flagged], frame["line"].to_numpy()[flagged]):
            ax.annotate(f"line {line}", (xi, ri), xytext=(4, 4), textcoords="offset points", fontsize=7,
                        color="#c0392b")
    if named:
        ax.set_xticks(np.arange(len(order)), [str(r) for r in order], rotation=90, fontsize=6)
        ax.set_xlabel("run (ordered by N, then D)")
    else:
        ax.set_xlabel(f"run, by rank ({len(order)} runs ordered by N, then D)")
    ax.set_ylabel("(actual - predicted) / predicted  [%]")
    if norm:
        _colorbar(fig, ax, norm)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("Residuals by run: a pattern across sizes means the form misses something", fontsize=10)
    return fig


def predicted_vs_actual(uf, results=None) -> Figure:
    """Predicted against actual loss over all rows, and zoomed on the held-out runs (the
    out-of-sample test), with 1% and 5% error bands."""
    frame, law = uf.frame, uf.law
    roles = _roles(uf)
    predicted = uf.result.predict(frame[list(law.inputs)].to_numpy(float))
    actual = frame["loss"].to_numpy()
    held = (roles == "held out").to_numpy()
    fig, axes = _figure(ncols=2 if held.any() else 1, width=11.0 if held.any() else 6.0, height=4.8,
                        margins=dict(left=0.7, right=0.1, bottom=0.55, top=0.3, wspace=0.15))
    norm = _size_norm(frame) if "N" in frame.columns else None
    colours = np.log10(frame["N"]) if norm else None
    for ax, zoom in zip(axes, (False, True)):
        shown = held if zoom else np.ones_like(held)
        lo = min(actual[shown].min(), predicted[shown].min())
        hi = max(actual[shown].max(), predicted[shown].max())
        pad = (hi - lo) * 0.08 + (0.02 * hi if zoom else 0)
        lo, hi = lo - pad, hi + pad
        line = np.array([lo, hi])
        for share, shade in ((0.05, 0.08), (0.01, 0.16)):
            ax.fill_between(line, line * (1 - share), line * (1 + share), color="0.5", alpha=shade, lw=0,
                            label=f"within {share:.0%}")
        ax.plot(line, line, color="0.3", lw=0.8, label="predicted = actual")
        _scatter_roles(ax, frame["loss"], predicted, roles, colours, norm)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="actual loss", ylabel="predicted loss", aspect="equal")
        ax.legend(fontsize=7, loc="upper left")
    if held.any():
        err = np.abs(predicted[held] - actual[held]) / actual[held]
        axes[0].set_title("All rows", fontsize=10)
        axes[1].set_title(f"Held-out runs: mean |error| {err.mean():.2%}, max {err.max():.2%}", fontsize=10)
    else:
        axes[0].set_title("Predicted against actual (no runs held out: in-sample only)", fontsize=10)
    if norm:
        _colorbar(fig, axes[-1], norm)
    return fig


#: Margins (inches) of the rows of histograms; the top one is set by :func:`_room_for_titles`.
HISTOGRAMS = dict(left=0.65, right=0.15, bottom=0.5, top=0.0, wspace=0.3)
#: Height (inches) of one line of a histogram's title (9 pt), and of the figure's title above.
TITLE_LINE, SUPTITLE = 0.17, 0.35


def _room_for_titles(fig, axes):
    """Leave room above a row of histograms for their titles, whose line count (two to four:
    the value, its interval, the budget, values at a limit) is known once they are written."""
    lines = max(ax.get_title().count("\n") + 1 for ax in axes)
    fig.subplots_adjust(top=1 - (SUPTITLE + TITLE_LINE * lines + 0.08) / fig.get_figheight())


def _histogram(ax, values, estimate, level, name, log=False):
    values = np.asarray(values, float)
    finite = values[np.isfinite(values) & ((values > 0) if log else True)]
    if finite.size == 0:
        ax.text(0.5, 0.5, f"{name}: no finite bootstrap values", ha="center", transform=ax.transAxes)
        return
    bins = 40
    if log:  # 40 bins even in log space
        lo, hi = np.log10(finite.min()), np.log10(finite.max())
        bins = 10 ** (np.linspace(lo, hi, 41) if hi > lo else np.array([lo - 0.01, hi + 0.01]))
        ax.set_xscale("log")
    counts, edges = np.histogram(finite, bins=bins)
    ax.stairs(counts, edges, fill=True, color="C0", alpha=0.75, lw=0)   # one patch, not one per bar
    ax.set_ylim(0, counts.max() * 1.05)
    if log:
        _plain_log_ticks(ax.xaxis)
    lo, hi = percentile_interval(values, level)
    ax.axvspan(lo, hi, color="C1", alpha=0.15, lw=0)
    ax.axvline(estimate, color="black", lw=1.2)
    note = "" if finite.size == values.size else f"\n({values.size - finite.size} at a limit, not drawn)"
    ax.set_title(f"{name} = {estimate:.3g}\n{level:.0%} interval [{lo:.3g}, {hi:.3g}]{note}", fontsize=9)
    ax.set_ylabel("resamples")
    ax.set_xlabel(name)


def bootstrap_exponents(uf, results=None) -> Figure | None:
    """Bootstrap distributions of the law's exponents and of the allocation exponent a."""
    if uf.boot is None or not uf.boot.samples or not len(next(iter(uf.boot.samples.values()))):
        return None
    names = [k for k in uf.result.params if k.startswith(("alpha", "beta"))]
    samples = {k: uf.boot.samples[k] for k in names}
    estimates = {k: uf.result.params[k] for k in names}
    if uf.allocation is not None:
        with np.errstate(all="ignore"):
            samples["a (N_opt ~ C^a)"] = optimal.allocation_exponents(samples["alpha"], samples["beta"])[0]
        estimates["a (N_opt ~ C^a)"] = float(uf.allocation["a"].iloc[0])
    if not samples:
        return None
    fig, axes = _figure(ncols=len(samples), width=max(6.5, 3.2 * len(samples) + 0.6), height=3.6, margins=HISTOGRAMS)
    for ax, (name, values) in zip(axes, samples.items()):
        _histogram(ax, values, estimates[name], uf.boot.level, name)
    fig.suptitle(f"Bootstrap distributions ({uf.boot.n_resamples} resamples, {uf.boot.resampling}); "
                 "line: fit, band: interval", fontsize=10)
    _room_for_titles(fig, axes)
    return fig


def bootstrap_tokens(uf, results=None) -> Figure | None:
    """Bootstrap distribution of tokens per parameter at each budget."""
    if uf.boot is None or uf.allocation is None or not len(uf.boot.samples.get("alpha", [])):
        return None
    budgets = uf.allocation["C"].to_numpy()
    with np.errstate(all="ignore"):
        drawn = optimal.compute_optimal({k: v[:, None] for k, v in uf.boot.samples.items()}, budgets[None, :])
    tpp = np.broadcast_to(drawn["tokens_per_param"], (len(uf.boot.samples["alpha"]), len(budgets)))
    fig, axes = _figure(ncols=len(budgets), width=max(6.5, 3.2 * len(budgets) + 0.6), height=3.6, margins=HISTOGRAMS)
    for ax, j in zip(axes, range(len(budgets))):
        factor = uf.allocation["extrapolation_factor"].iloc[j]
        where = "within the fitted range" if factor <= 1 + 1e-9 else f"{factor:.3g}x the fitted range"
        _histogram(ax, tpp[:, j], uf.allocation["tokens_per_param"].iloc[j], uf.boot.level,
                   "tokens per parameter", log=True)
        ax.set_title(f"C = {budgets[j]:.3g} ({where})\n" + ax.get_title(), fontsize=9)
    fig.suptitle("Tokens per parameter at each budget (bootstrap)", fontsize=10)
    _room_for_titles(fig, axes)
    return fig


def profile(uf, results=None) -> Figure | None:
    """The objective along each parameter the fit could not identify (others re-optimized),
    from ``results["identifiability"]["profiles"]`` or else the fit's own identifiability."""
    record = (results or {}).get("identifiability")
    if record is None and getattr(uf, "identifiability", None) is not None:
        record = {"profiles": uf.identifiability.profiles}
    profiles = (record or {}).get("profiles") or []
    if not profiles:
        return None
    fig, axes = _figure(ncols=len(profiles), width=max(6.0, 4.2 * len(profiles) + 0.6), height=3.8)
    for ax, p in zip(axes, profiles):
        values, objective = np.asarray(p["values"], float), np.asarray(p["objective"], float)
        ax.plot(values, objective, marker="o", ms=3, lw=1.2, label="objective, others re-optimized")
        if p.get("best") is not None:
            ax.axvline(p["best"], color="black", lw=1, ls="--", label=f"fit: {p['best']:.3g}")
        if p.get("best_objective") is not None:
            ax.axhline(p["best_objective"], color="0.5", lw=0.8, ls=":", label="best objective")
        ax.legend(fontsize=7)
        finite = objective[np.isfinite(objective)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
            ax.set_yscale("log")
        if p.get("scale") == "log" and (values[np.isfinite(values)] > 0).all():
            ax.set_xscale("log")
        ax.set(xlabel=p["parameter"], ylabel="objective (others re-optimized)")
        ax.set_title(f"Profile of {p['parameter']}: flat means not identified", fontsize=9)
    return fig


def frontier(uf, results=None) -> Figure | None:
    """N_opt(C) and tokens per parameter over compute, with the bootstrap band."""
    if uf.allocation is None:
        return None
    budgets = uf.allocation["C"].to_numpy()
    fitted_max = _fitted_max_c(uf)
    c = np.geomspace(min(uf.train["C"].min(), budgets.min()), max(budgets.max(), fitted_max) * 2, 120)
    with np.errstate(all="ignore"):
        point = optimal.compute_optimal(uf.result.params, c)
    fig, (left, right) = _figure(ncols=2, width=11.0, height=4.4,
                                 margins=dict(left=0.8, right=0.15, bottom=0.55, top=0.45, wspace=0.22))
    level = uf.boot.level if uf.boot is not None else None
    for ax, key, label in ((left, "N_opt", "compute-optimal N_opt (parameters)"),
                           (right, "tokens_per_param", "tokens per parameter D_opt / N_opt")):
        if uf.boot is not None and len(uf.boot.samples.get("alpha", [])):
            with np.errstate(all="ignore"):
                drawn = optimal.compute_optimal({k: v[:, None] for k, v in uf.boot.samples.items()}, c[None, :])
            values = np.broadcast_to(drawn[key], (len(uf.boot.samples["alpha"]), len(c)))
            band = np.array([percentile_interval(col[~np.isnan(col)], level) if (~np.isnan(col)).any()
                             else (np.nan, np.nan) for col in values.T])
            ax.fill_between(c, band[:, 0], band[:, 1], color="C0", alpha=0.2, lw=0,
                            label=f"{level:.0%} bootstrap band")
        ax.plot(c, point[key], color="C0", lw=1.6, label="fit")
        ax.scatter(budgets, uf.allocation[key], color="C3", zorder=4, s=25, label="budgets in the table")
        if key == "N_opt":
            ax.scatter(uf.train["C"], uf.train["N"], color="0.5", s=14, marker="o", edgecolor="white", linewidth=0.5,
                            label="fitted runs (C, N)", zorder=3)
        ax.set(xscale="log", yscale="log", xlabel="training compute C = 6ND (FLOP)", ylabel=label)
        if key == "tokens_per_param":
            _plain_log_ticks(ax.yaxis)
        _beyond(ax, fitted_max)
        ax.legend(fontsize=7, loc="lower right" if key == "N_opt" else "lower left")
    unidentified = "identified" in uf.allocation and not uf.allocation["identified"].all()
    fig.suptitle("Compute-optimal frontier under C = 6ND" + (": NOT IDENTIFIED by these runs (see the "
                 "allocation table)" if unidentified else ""), fontsize=10, color="#8a1c12" if unidentified else None)
    return fig


def approaches(uf, results=None) -> Figure | None:
    """N_opt against C: one line and bootstrap band per approach asked for, approach 2's
    per-budget optima as ringed points and approach 1's envelope as small dots
    (:func:`scalerepro.analyses.approaches.plot_allocation`), on this module's style."""
    fits = list(getattr(uf, "approaches", None) or [])
    if not fits:
        return None
    from ..analyses.approaches import plot_allocation

    fig, (ax,) = _figure(width=8.0, height=5.0)
    cs = np.concatenate([f.points["C"].to_numpy() for f in fits if "C" in f.points and len(f.points)])
    plot_allocation(fits, ax=ax, flops=np.geomspace(cs.min() / 1.5, cs.max() * 1.5, 120))
    ax.set_xlabel("training compute C (FLOP)")
    levels = {f.level for f in fits if f.a_interval is not None}
    ax.set_title("Compute-optimal model size by Chinchilla's approaches"
                 + (f" (bands: {levels.pop():.0%} bootstrap)" if len(levels) == 1 else ""), fontsize=10)
    return fig


# ----------------------------------------------------------------------------- all of them
FIGURES = (
    ("loss_vs_compute", loss_vs_compute,
     "Loss against training compute, coloured by model size, with the fitted law's curves (one per model "
     "size; dashed: the compute-optimal loss). Crosses are the held-out runs the law never saw; the shaded "
     "region lies beyond the largest fitted compute."),
    ("residuals", residuals,
     "Relative residual of every row (a run's checkpoints share a column), runs ordered by model size. "
     "Residuals that trend with size or tokens mean the functional form misses something. Points ringed in "
     "red are the outliers the diagnostics name, labelled with their lines in the file."),
    ("predicted_vs_actual", predicted_vs_actual,
     "Predicted against actual loss; points on the diagonal are predicted exactly. The held-out runs "
     "are the out-of-sample test."),
    ("bootstrap_exponents", bootstrap_exponents,
     "Bootstrap distributions of the exponents and of the allocation exponent a: the black line is "
     "the fit, the band the percentile interval. A wide or lopsided distribution means the data pin "
     "the value down poorly."),
    ("bootstrap_tokens", bootstrap_tokens,
     "Bootstrap distribution of tokens per parameter at each budget of the allocation table (log "
     "scale)."),
    ("profile", profile,
     "Profile of the objective along each parameter the fit did not identify: the other parameters "
     "are re-optimized at each value; a flat profile means the data do not determine it."),
    ("frontier", frontier,
     "The compute-optimal model size N_opt(C) and tokens per parameter, with their bootstrap band; "
     "red points are the budgets of the allocation table, the shaded region lies beyond the fitted "
     "range."),
    ("approaches", approaches,
     "Compute-optimal model size N_opt against compute by each of Chinchilla's approaches asked for: one "
     "line and bootstrap band per approach. Ringed points are the data's per-budget optima (approach 2), "
     "small dots the lower envelope's winners (approach 1, thinned). Lines that disagree beyond their bands "
     "mean the approaches answer differently on these runs."),
)


def chained_metric(uf, results=None) -> Figure | None:
    """--metric: the metric against the measured loss with the fitted metric law, and each target's
    chained prediction (at its predicted loss) with its loss and metric intervals."""
    if uf.chained is None:
        return None
    ch = uf.chained
    step = ch.chained.step2
    table = ch.table()
    fig, (ax,) = _figure(width=7.0, height=4.6)
    ax.scatter(step.X[:, 0], step.y, s=18, color="0.35", label=f"runs (measured loss, {ch.column})")
    losses = np.r_[step.X[:, 0], table["loss_pred"].to_numpy()]
    grid = np.linspace(losses.min() * 0.98, losses.max() * 1.02, 200)
    ax.plot(grid, ch.chained.metric_at_loss(grid), color="tab:blue", lw=1.2, label=ch.chained.fit2.law.equation)
    if len(table):
        xerr = yerr = None
        if ch.boot is not None:
            xerr = [table["loss_pred"] - table["loss_lo"], table["loss_hi"] - table["loss_pred"]]
            yerr = [table["metric_pred"] - table["metric_lo"], table["metric_hi"] - table["metric_pred"]]
        ax.errorbar(table["loss_pred"], table["metric_pred"], xerr=xerr, yerr=yerr, fmt="D", color="tab:red",
                    capsize=3, label="chained predictions (95% bootstrap intervals)" if ch.boot else "chained predictions")
    ax.set(xlabel="loss", ylabel=ch.column, title=f"{ch.column} against loss; the law {ch.direction()}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return fig


FIGURES = FIGURES + (
    ("chained_metric", chained_metric,
     "The downstream metric (--metric) against each run's measured loss, the fitted metric law, and the "
     "chained prediction at each target: the law evaluated at the loss the loss law predicts, with the "
     "bootstrap intervals of both (runs resampled through both fits)."),
)
#: Figures that need no law fit (``--approach 1`` or ``2`` alone).
WITHOUT_LAW = ("approaches",)


def fit_figures(uf, results: dict | None = None) -> list[dict]:
    """Every figure that applies to this fit, in report order, as
    ``{name, caption, uri}`` (or ``{name, caption, error}`` when drawing it failed).

    uf: a :class:`scalerepro.runs.fit.UserFit`; results: its results.json content (the
    profile figure reads ``results["identifiability"]``)."""
    out = []
    for name, draw, caption in FIGURES:
        if uf.result is None and name not in WITHOUT_LAW:
            continue
        try:
            fig = draw(uf, results)
            if fig is None:
                continue
            out.append({"name": name, "caption": caption, "uri": to_data_uri(fig)})
        except Exception as exc:  # one failed figure must not cost the user the report
            out.append({"name": name, "caption": caption, "error": f"{type(exc).__name__}: {exc}"})
    return out

"""Chinchilla's three approaches to the compute-optimal allocation, with one result type.

Hoffmann et al. (2022) estimate how model size and data should grow with compute,
N_opt = k_N C^a and D_opt = k_D C^b, in three ways, and the disagreement between them is
part of the finding:

1. **Lower envelope** (:func:`approach1`): over all runs and their checkpoints, the run with
   the lowest loss at each compute; log N and log D of those winners fitted against log C.
2. **IsoFLOP profiles** (:func:`approach2`): at each fixed budget, the loss minimum over model
   size (Hoffmann's parabola in log N, or Porian et al.'s Akima spline), then the same
   power-law fit through the per-budget optima.
3. **Parametric fit** (:func:`approach3`): L = E + A/N^alpha + B/D^beta fitted to all runs
   (:mod:`scalerepro.core.fit`), a = beta/(alpha+beta) and b = alpha/(alpha+beta)
   (:mod:`scalerepro.core.optimal`).

Each returns an :class:`AllocationFit`: a and b with their coefficients, intervals or an
explicit ``None`` with the reason (never a zero-width interval), the points the exponents
were fitted to, how the fit was made, and diagnostics (:mod:`scalerepro.diagnostics`).
Inputs are DataFrames with role-named columns -- ``N`` (parameters), ``D`` (tokens), ``C``
(FLOPs; derived as 6ND when absent, or D as C/(6N)), ``loss``, and optionally ``run`` (rows
sharing it are checkpoints of one run) and ``budget`` (the IsoFLOP budget of a row) -- the
table ``scalerepro fit`` reads, so a command line only maps columns.

Intervals are percentile intervals of a bootstrap that resamples runs, seeded by default
(:data:`DEFAULT_SEED`) and vectorised over resamples: whole runs with their checkpoints for
approaches 1 and 3, IsoFLOP points within each budget for approach 2 (so every budget keeps
its number of sizes, as in the design).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import isoflop
from ..core import identifiability, laws, optimal
from ..core.bootstrap import bootstrap
from ..diagnostics import Diagnostic
from ..errors import ApproachError
from ..core.fit import fit
from ..summary import Row, Summary

DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 1000
#: Hoffmann et al. evaluate the envelope at 1500 log-spaced FLOP values (section 3.1).
ENVELOPE_GRID = 1500
#: Fewer sizes than this leaves a parabola (3 coefficients) at most one residual degree of
#: freedom, too few to see whether the curve is a parabola at all.
MIN_SIZES = 5
APPROACH_NAMES = {1: "lower envelope", 2: "IsoFLOP profiles", 3: "parametric fit"}
#: Approach 1's envelope methods (see :func:`approach1`): Hoffmann et al.'s per-compute
#: minimum over a grid, McLeish et al.'s lower convex hull.
ENVELOPES = ("grid", "lower_hull")
DEFAULT_ENVELOPE = "grid"
METHODS_2 = ("parabola", "akima")
_CHUNK_ELEMENTS = 2_000_000   # (resamples x grid x runs) booleans per envelope chunk


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class AllocationFit:
    """N_opt = k_N C^a and D_opt = k_D C^b as estimated by one of Chinchilla's approaches.

    ``a_interval`` / ``b_interval`` are percentile intervals at ``level``, or None when no
    interval was computed -- ``no_interval_reason`` then says why, and a ``no_interval``
    diagnostic is recorded. ``samples`` holds the bootstrap draws of a, b, log k_N and
    log k_D (successful resamples only), which also give bands for N_opt(C) and D_opt(C).
    ``points`` is the table the exponents were fitted to (the envelope points, the
    per-budget optima, or the runs of the parametric fit), with a ``used`` column.
    """

    approach: int
    method: dict
    a: float
    b: float
    log_kn: float
    log_kd: float
    level: float
    a_interval: tuple | None
    b_interval: tuple | None
    no_interval_reason: str | None
    samples: dict
    n_resamples: int
    n_failed: int
    seed: int | None
    points: pd.DataFrame
    diagnostics: tuple = ()
    law_fit: object = field(default=None, repr=False)   # approach 3's FitResult

    @property
    def envelope(self) -> str | None:
        """Approach 1's envelope method ("grid" or "lower_hull"); None for approaches 2, 3."""
        return self.method.get("envelope_method") if self.approach == 1 else None

    @property
    def name(self) -> str:
        if self.envelope == "lower_hull":
            return "approach 1 (lower convex hull)"
        return f"approach {self.approach} ({APPROACH_NAMES[self.approach]})"

    def n_opt(self, C):
        return np.exp(self.log_kn) * np.asarray(C, dtype=float) ** self.a

    def d_opt(self, C):
        return np.exp(self.log_kd) * np.asarray(C, dtype=float) ** self.b

    def band(self, C, quantity: str = "N", level: float | None = None):
        """Pointwise bootstrap interval of N_opt(C) (``quantity="N"``) or D_opt(C), as
        ``(low, high)`` arrays, or None when there are no bootstrap samples."""
        exponent, coef = {"N": ("a", "log_kn"), "D": ("b", "log_kd")}[quantity]
        if not self.samples or self.samples[exponent].size < 2:
            return None
        logc = np.log(np.atleast_1d(np.asarray(C, dtype=float)))
        logs = self.samples[coef][:, None] + self.samples[exponent][:, None] * logc[None, :]
        lo, hi = _percentiles(logs, self.level if level is None else level)
        return np.exp(lo), np.exp(hi)

    def record(self) -> dict:
        """How the estimate was made and what it is, for results.json and the report."""
        used = self.points["used"] if "used" in self.points else pd.Series(True, index=self.points.index)
        return {"approach": self.approach, "name": self.name, "method": dict(self.method),
                "a": self.a, "b": self.b, "k_N": float(np.exp(self.log_kn)), "k_D": float(np.exp(self.log_kd)),
                "level": self.level,
                "intervals": None if self.a_interval is None else {"a": list(self.a_interval),
                                                                   "b": list(self.b_interval)},
                "no_interval_reason": self.no_interval_reason,
                "bootstrap": {"n_resamples": self.n_resamples, "n_failed": self.n_failed, "seed": self.seed},
                "points_used": int(used.sum()), "points_dropped": int((~used.astype(bool)).sum()),
                "points": self.points.to_dict(orient="records"),
                "diagnostics": [d.record() for d in self.diagnostics]}

    def summary(self) -> Summary:
        """The allocation at a glance, from :meth:`record`: a and b with their intervals,
        k_N and k_D, then where the intervals come from (or why there are none), the
        points used and the diagnostics. ``print()`` it for text; in Jupyter it displays as
        a table."""
        rec = self.record()
        intervals = rec["intervals"] or {}
        rows = [Row(name, rec[name], intervals.get(name)) for name in ("a", "b", "k_N", "k_D")]
        boot = rec["bootstrap"]
        notes = [f"intervals: {rec['method'].get('interval')}; {boot['n_failed']} of {boot['n_resamples']} "
                 "resamples failed" if rec["intervals"] else f"no interval: {rec['no_interval_reason']}",
                 f"points: {rec['points_used']} used, {rec['points_dropped']} dropped"]
        notes += [f"{d['severity']}: {d['message']}" for d in rec["diagnostics"]]
        return Summary(rec["name"], rows, notes, level=rec["level"])


def _percentiles(values: np.ndarray, level: float):
    """Central ``level`` percentile range along axis 0; order statistics when some draws
    are infinite (a coefficient run off to its limit), where interpolation is undefined."""
    tail = 50.0 * (1.0 - level)
    method = "linear" if np.isfinite(values).all() else "inverted_cdf"
    lo, hi = np.percentile(values, [tail, 100.0 - tail], axis=0, method=method)
    return lo, hi


def _result(approach, method, point, draws, *, level, seed, n_resamples, points, diagnostics,
            law_fit=None, why_none=None, failed_elsewhere=0) -> AllocationFit:
    """Assemble an AllocationFit from the point estimate ``(a, b, log_kn, log_kd)`` and the
    bootstrap draws (dict of arrays, NaN where a resample failed; ``failed_elsewhere``
    resamples failed before reaching ``draws``)."""
    diagnostics = list(diagnostics)
    a, b, log_kn, log_kd = (float(v) for v in point)
    samples, n_failed, a_iv, b_iv = {}, 0, None, None
    if draws is not None:
        ok = np.all([~np.isnan(draws[k]) for k in ("a", "b", "log_kn", "log_kd")], axis=0)
        n_failed = int((~ok).sum()) + int(failed_elsewhere)
        samples = {k: np.asarray(v, dtype=float)[ok] for k, v in draws.items()}
        if ok.sum() >= 2:
            a_iv = tuple(float(v) for v in _percentiles(samples["a"], level))
            b_iv = tuple(float(v) for v in _percentiles(samples["b"], level))
        else:
            why_none = f"only {int(ok.sum())} of {n_resamples} bootstrap resamples could be refitted"
        if n_failed:
            diagnostics.append(Diagnostic(
                "bootstrap_failures", "warning" if n_failed > 0.05 * n_resamples else "info",
                f"{n_failed} of {n_resamples} bootstrap resamples could not be refitted (see the method) "
                "and are left out of the interval; if many, the interval is too narrow", ("bootstrap",)))
    elif why_none is None:
        why_none = "no bootstrap was run (n_resamples = 0)"
    if a_iv is None:
        diagnostics.append(Diagnostic("no_interval", "warning", f"no interval for a and b: {why_none}",
                                      ("a", "b")))
    return AllocationFit(approach, method, a, b, log_kn, log_kd, level, a_iv, b_iv,
                         None if a_iv is not None else why_none, samples, n_resamples, n_failed,
                         seed if draws is not None else None, points, tuple(diagnostics), law_fit)


# ---------------------------------------------------------------------------- input
def prepare_runs(runs: pd.DataFrame, *, need=("N", "loss")) -> pd.DataFrame:
    """A copy of ``runs`` with C = 6ND or D = C/(6N) filled in, checked: the role columns
    present, numeric, finite and positive. Raises :class:`ApproachError` naming the column
    and the first offending rows."""
    if not isinstance(runs, pd.DataFrame):
        raise ApproachError(f"runs must be a pandas DataFrame with role-named columns, got {type(runs).__name__}")
    missing = [r for r in need if r not in runs.columns]
    if missing:
        raise ApproachError(f"runs need the column(s) {missing} (roles: N, D, C, loss, optional run and "
                            f"budget); got {list(runs.columns)}")
    if "C" not in runs.columns and "D" not in runs.columns:
        raise ApproachError(f"runs need C (training FLOPs) or D (training tokens); got {list(runs.columns)}")
    if len(runs) == 0:
        raise ApproachError("runs is empty")
    out = runs.copy()
    for role in ("N", "D", "C", "loss", "budget"):
        if role not in out.columns:
            continue
        values = pd.to_numeric(out[role], errors="coerce").astype(float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            rows = list(out.index[bad][:5])
            raise ApproachError(f"column {role!r}: {int(bad.sum())} value(s) not a positive finite number, "
                                f"first at row(s) {rows}: {list(out.loc[bad, role].iloc[:5])}")
        out[role] = values
    if "C" not in out.columns:
        out["C"] = optimal.training_flops(out["N"], out["D"])
    if "D" not in out.columns:
        out["D"] = optimal.tokens_from_flops(out["C"], out["N"])
    return out


def _run_labels(runs: pd.DataFrame) -> np.ndarray:
    """One label per row: the ``run`` column, or the row itself when there is none."""
    return runs["run"].to_numpy() if "run" in runs.columns else np.arange(len(runs))


def _masked_line(x: np.ndarray, y: np.ndarray, mask: np.ndarray):
    """Least-squares slope and intercept of y on x per row of ``(B, G)`` arrays, over the
    entries where ``mask``; NaN for rows with fewer than two distinct x."""
    m = mask.astype(float)
    x = np.where(mask, x, 0.0)
    y = np.where(mask, y, 0.0)
    n = m.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (m * x).sum(axis=-1) / n
        ym = (m * y).sum(axis=-1) / n
        dx = m * (x - xm[..., None])
        sxx = (dx * dx).sum(axis=-1)
        slope = (dx * (y - ym[..., None])).sum(axis=-1) / sxx
        icpt = ym - slope * xm
    bad = (n < 2) | ~(sxx > 1e-12 * np.maximum(n, 1))
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, icpt)


def _run_weights(labels: np.ndarray, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique run labels and ``(R, n_runs)`` multiplicities of a bootstrap over runs."""
    unique = pd.unique(labels)
    k = len(unique)
    rng = np.random.default_rng(seed)
    return unique, rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)


# ---------------------------------------------------------------------------- approach 1
@dataclass(frozen=True)
class _Envelope:
    """The candidates for the envelope: at G compute values, the loss of each of R runs
    (+inf where the run does not reach that compute), with its log N, log D and log C."""

    mode: str
    loss: np.ndarray     # (G, R)
    log_n: np.ndarray    # (R,)
    log_d: np.ndarray    # (G, R)
    log_c: np.ndarray    # (G, R)
    runs: np.ndarray     # (R,) run labels


def _envelope_design(runs: pd.DataFrame, n_grid: int, bins_per_decade: float) -> tuple[_Envelope, list]:
    labels = _run_labels(runs)
    notes = []
    sizes = pd.Series(labels).value_counts()
    if "run" in runs.columns and (sizes >= 2).any():
        # Hoffmann's envelope: each run's loss curve interpolated (linearly in log C, log
        # loss) at log-spaced FLOP values; at each, the lowest curve wins.
        curves = [(r, g.sort_values("C")) for r, g in runs.groupby(labels, sort=False) if len(g) >= 2]
        varying = [r for r, g in curves if g["N"].nunique() > 1]
        if varying:
            raise ApproachError(f"column 'N' changes within run(s) {varying[:5]}: the checkpoints of one run "
                                "share its model size; check the run column")
        single = int((sizes < 2).sum())
        if single:
            notes.append(Diagnostic("dropped_points", "info",
                                    f"{single} run(s) with a single checkpoint form no loss curve and are "
                                    "left out of the envelope", ("run",)))
        log_c_all = np.log(runs["C"].to_numpy())
        grid = np.linspace(log_c_all.min(), log_c_all.max(), n_grid)
        loss = np.full((n_grid, len(curves)), np.inf)
        log_d = np.zeros((n_grid, len(curves)))
        log_n = np.empty(len(curves))
        for j, (_, g) in enumerate(curves):
            lc = np.log(g["C"].to_numpy())
            inside = (grid >= lc[0]) & (grid <= lc[-1])
            loss[inside, j] = np.exp(np.interp(grid[inside], lc, np.log(g["loss"].to_numpy())))
            log_d[:, j] = np.interp(grid, lc, np.log(g["D"].to_numpy()))
            log_n[j] = np.log(g["N"].iloc[0])
        return _Envelope("curves", loss, log_n, log_d, np.repeat(grid[:, None], len(curves), axis=1),
                         np.array([r for r, _ in curves])), notes
    # Final losses only: the lowest-loss run in each log-spaced compute bin.
    log_c = np.log10(runs["C"].to_numpy())
    edges = _bin_edges(log_c, bins_per_decade)
    which = np.clip(np.searchsorted(edges, log_c, side="right") - 1, 0, len(edges) - 2)
    n_bins = len(edges) - 1
    member = np.zeros((n_bins, len(runs)), bool)
    member[which, np.arange(len(runs))] = True
    loss = np.where(member, runs["loss"].to_numpy()[None, :], np.inf)
    tile = np.ones((n_bins, 1))
    return _Envelope("bins", loss, np.log(runs["N"].to_numpy()), tile * np.log(runs["D"].to_numpy()),
                     tile * np.log(runs["C"].to_numpy()), labels), notes


def _bin_edges(log10_c: np.ndarray, bins_per_decade: float, phases: int = 16) -> np.ndarray:
    """Edges of log-spaced compute bins, shifted so that no run sits on an edge if that
    can be helped. A sweep planned at round budgets (1e18, 1e19, ...) has many runs at one
    C, and C = 6ND recomputed from rounded tokens scatters them by a few parts per million:
    an edge through that C would split one IsoFLOP slice over two bins. Of ``phases``
    shifts, the first with the fewest runs within 2% of a bin width of an edge (no shift
    when none is close)."""
    width = 1.0 / bins_per_decade
    best = None
    for phase in np.arange(phases) * width / phases:
        lo = np.floor((log10_c.min() - phase) / width) * width + phase
        edges = np.arange(lo, log10_c.max() + width, width)
        near = int((np.abs(log10_c[:, None] - edges[None, :]).min(axis=1) < 0.02 * width).sum())
        if best is None or near < best[0]:
            best = (near, edges)
    return best[1]


def _envelope_pick(env: _Envelope, include: np.ndarray, drop_edges: bool = True):
    """For ``(B, R)`` included-run masks: the winning run per compute value ``(B, G)`` and
    whether it is a proper minimum -- runs both smaller and larger than the winner compete
    at that compute; otherwise the minimum is at the edge of the sizes available there
    (every winner counts when not ``drop_edges``)."""
    L = np.where(include[:, None, :], env.loss[None], np.inf)               # (B, G, R)
    win = L.argmin(axis=2)
    candidate = np.isfinite(L)
    has = candidate.any(axis=2)
    win_n = env.log_n[win]
    smaller = (candidate & (env.log_n[None, None, :] < win_n[..., None])).any(axis=2)
    larger = (candidate & (env.log_n[None, None, :] > win_n[..., None])).any(axis=2)
    return win, has, (has & smaller & larger) if drop_edges else has


def _envelope_fit(env: _Envelope, win, valid):
    g = np.arange(env.loss.shape[0])[None, :]
    x = env.log_c[g, win]
    a, icpt_n = _masked_line(x, env.log_n[win], valid)
    b, icpt_d = _masked_line(x, env.log_d[g, win], valid)
    return a, b, icpt_n, icpt_d


def lower_hull(C, loss) -> np.ndarray:
    """Indices of the lower-convex-hull points of (log C, log loss), ordered by C, exactly as
    McLeish et al. 2025 take them (``get_resource_hull`` in their ``plotters/approach_1.py``).

    One auxiliary point (2 C_max, 2 L_max) is added above and to the right of every point so
    that the hull's lower edge runs from the smallest-C point to the largest; the convex hull
    is Qhull's (``scipy.spatial.ConvexHull``: collinear points are not vertices); the
    auxiliary point is dropped, the vertices are sorted by C, and a vertex is kept only if
    its loss is below that of the vertex before it in that sorted list (the first is always
    kept; one pass). That last rule removes the upper hull's vertices and cuts the lower
    hull at its minimum loss. Fewer than three distinct points have no hull: all of them
    are returned (in C order) and the caller decides.
    """
    from scipy.spatial import ConvexHull, QhullError

    C = np.asarray(C, dtype=float)
    loss = np.asarray(loss, dtype=float)
    vantage = np.log([[2.0 * C.max(), 2.0 * loss.max()]])
    points = np.vstack([vantage, np.column_stack([np.log(C), np.log(loss)])])
    try:
        vertices = ConvexHull(points).vertices
    except QhullError:          # fewer than 3 points, or all on one line
        vertices = np.arange(points.shape[0])
    idx = vertices[vertices != 0] - 1
    idx = idx[np.argsort(C[idx], kind="stable")]
    previous = np.concatenate([[np.inf], loss[idx][:-1]])
    keep = loss[idx] < previous
    keep[0] = True
    return idx[keep]


def _hull_line(runs: pd.DataFrame, rows: np.ndarray):
    """a, b, log k_N, log k_D by least squares over the hull of ``rows`` (NaN when the hull
    has fewer than two points at distinct C)."""
    sub = runs.iloc[rows]
    idx = lower_hull(sub["C"].to_numpy(), sub["loss"].to_numpy())
    log_c = np.log(sub["C"].to_numpy()[idx])[None]
    mask = np.ones_like(log_c, bool)
    a, icpt_n = _masked_line(log_c, np.log(sub["N"].to_numpy()[idx])[None], mask)
    b, icpt_d = _masked_line(log_c, np.log(sub["D"].to_numpy()[idx])[None], mask)
    return rows[idx], (float(a[0]), float(b[0]), float(icpt_n[0]), float(icpt_d[0]))


def _approach1_hull(runs: pd.DataFrame, *, n_resamples: int, seed: int, level: float,
                    progress: bool) -> AllocationFit:
    """Approach 1 with McLeish et al.'s lower convex hull (see :func:`approach1`)."""
    labels = _run_labels(runs)
    every = np.arange(len(runs))
    hull_rows, point = _hull_line(runs, every)
    if np.isnan(point[0]):
        raise ApproachError(f"approach 1 (lower hull): the hull has {len(hull_rows)} point(s) at distinct compute; "
                            "a line needs at least 2")
    keep = [c for c in ("C", "N", "D", "loss", "run") if c in runs.columns]
    points = runs.iloc[hull_rows][keep].reset_index(drop=True).assign(used=True)
    if "run" not in points.columns:
        points["run"] = labels[hull_rows]
    diagnostics = []
    hull_runs = pd.unique(labels[hull_rows])
    if len(hull_runs) < len(hull_rows):
        counts = pd.Series(labels[hull_rows]).value_counts()
        many = counts[counts > 1]
        diagnostics.append(Diagnostic(
            "hull_points_per_run", "info",
            f"{len(hull_rows)} hull points come from {len(hull_runs)} runs; with one vote per hull point, the runs "
            f"with several consecutive checkpoints on the hull weigh more: "
            + ", ".join(f"{r} ({n})" for r, n in many.items()), tuple(str(r) for r in many.index)))
    draws = None
    if n_resamples:
        # One Qhull call per resample (a hull is not a vectorisable reduction); about a
        # millisecond each for a thousand checkpoints. Duplicated runs do not change a hull.
        unique, counts = _run_weights(labels, n_resamples, seed)
        col = pd.Index(unique).get_indexer(labels)
        draws = {k: np.full(n_resamples, np.nan) for k in ("a", "b", "log_kn", "log_kd")}
        for i in tqdm(range(n_resamples), desc="approach 1 (hull) bootstrap", disable=not progress):
            rows = every[counts[i][col] > 0]
            if rows.size >= 2:
                _, values = _hull_line(runs, rows)
                for k, v in zip(("a", "b", "log_kn", "log_kd"), values):
                    draws[k][i] = v
    method = {"approach": "lower envelope of loss against compute (Hoffmann et al. 2022, approach 1)",
              "envelope": ("lower convex hull of (log C, log loss) over every checkpoint of every run, "
                           "Qhull with an auxiliary point (2 C_max, 2 L_max), vertices with falling loss "
                           "(McLeish et al. 2025)"),
              "envelope_method": "lower_hull",
              "edge_rule": "none: every hull vertex is used",
              "fit": "least squares of log N and of log D on log C over the hull vertices, one vote each",
              "interval": (f"bootstrap over whole runs, {n_resamples} resamples, seed {seed}, percentiles"
                           if n_resamples else "none")}
    return _result(1, method, point, draws, level=level, seed=seed, n_resamples=n_resamples, points=points,
                   diagnostics=diagnostics)


def approach1(runs: pd.DataFrame, *, envelope: str = DEFAULT_ENVELOPE, n_grid: int = ENVELOPE_GRID,
              bins_per_decade: float = 4, drop_edges: bool = True, n_resamples: int = DEFAULT_RESAMPLES,
              seed: int = DEFAULT_SEED, level: float = 0.95, progress: bool = False) -> AllocationFit:
    """Approach 1: the lower envelope of loss against compute, then N_opt, D_opt ~ C^a, C^b.

    ``envelope`` chooses how the envelope is taken -- a fitting choice that moves the
    exponent (by 0.03-0.05 on the Gemstone runs, about as much as the embedding question):

    - ``"grid"`` (default; Hoffmann et al.'s per-compute minimum). With checkpoints (a
      ``run`` column, several rows per run): each run's loss curve is interpolated linearly
      in (log C, log loss) between its checkpoints (no extrapolation), and at ``n_grid``
      log-spaced compute values from the smallest to the largest checkpoint C the run with
      the lowest loss wins. With final losses only, the minimum per compute bin
      (``bins_per_decade`` log-spaced bins). Edge points: with ``drop_edges`` (default) a
      winner is used only if runs both smaller and larger compete at that compute --
      otherwise the minimum is at the edge of the sizes available there (the smallest
      model still winning at low compute, the largest at high compute) and bounds N_opt
      from one side only, so it would pull the slope towards the ladder's ends.
      ``drop_edges=False`` keeps them (the plain per-compute minimum).
    - ``"lower_hull"`` (McLeish et al. 2025's): the lower convex hull of (log C, log loss)
      over every checkpoint of every run, as their code takes it (:func:`lower_hull`); each
      hull vertex is one point, and no edge rule applies (the paper has none).

    Then log N and log D of the envelope points are fitted to log C by least squares (equal
    weights per point: a run winning a long stretch of the grid gets many votes, a run
    with several hull vertices one per vertex).

    The estimate is limited by the size ladder: every winner is one of the two sizes
    bracketing the true optimum, so log N is off by less than one ladder step.
    Interval: a bootstrap over whole runs (with all their checkpoints).
    """
    if envelope not in ENVELOPES:
        raise ApproachError(f"envelope must be one of {', '.join(ENVELOPES)}, got {envelope!r}")
    runs = prepare_runs(runs)
    if envelope == "lower_hull":
        return _approach1_hull(runs, n_resamples=n_resamples, seed=seed, level=level, progress=progress)
    env, diagnostics = _envelope_design(runs, n_grid, bins_per_decade)
    all_runs = np.ones((1, env.loss.shape[1]), bool)
    win, has, valid = _envelope_pick(env, all_runs, drop_edges)
    a, b, icpt_n, icpt_d = (float(v[0]) for v in _envelope_fit(env, win, valid))
    g = np.arange(env.loss.shape[0])
    w = win[0]
    points = pd.DataFrame({"C": np.exp(env.log_c[g, w]), "N": np.exp(env.log_n[w]),
                           "D": np.exp(env.log_d[g, w]), "loss": env.loss[g, w],
                           "run": env.runs[w], "used": valid[0]})[has[0]].reset_index(drop=True)
    n_edge = int((has[0] & ~valid[0]).sum())
    if n_edge:
        edge = points.loc[~points["used"], "C"]
        diagnostics.append(Diagnostic(
            "optimum_at_edge", "info" if n_edge < 0.5 * has[0].sum() else "warning",
            f"{n_edge} of {int(has[0].sum())} envelope points are the smallest or largest run available at "
            f"their compute (C {edge.min():.3g} to {edge.max():.3g}); they are left out of the fit",
            ("C",)))
    if np.isnan(a):
        raise ApproachError("approach 1: fewer than two envelope points have runs both smaller and larger "
                            "competing at their compute; the runs do not bracket the optimum anywhere")
    draws = None
    if n_resamples:
        labels, counts = _run_weights(env.runs, n_resamples, seed)
        include_all = counts > 0                      # duplicates do not change a minimum
        col = pd.Index(labels).get_indexer(env.runs)
        draws = {k: np.full(n_resamples, np.nan) for k in ("a", "b", "log_kn", "log_kd")}
        G, R = env.loss.shape
        chunk = max(1, _CHUNK_ELEMENTS // (G * R))
        for lo in tqdm(range(0, n_resamples, chunk), desc="approach 1 bootstrap", disable=not progress):
            rows = slice(lo, min(lo + chunk, n_resamples))
            wb, _, vb = _envelope_pick(env, include_all[rows][:, col], drop_edges)
            for k, v in zip(("a", "b", "log_kn", "log_kd"), _envelope_fit(env, wb, vb)):
                draws[k][rows] = v
    method = {"approach": "lower envelope of loss against compute (Hoffmann et al. 2022, approach 1)",
              "envelope": (f"each run's loss curve interpolated linearly in (log C, log loss) at {n_grid} "
                           "log-spaced FLOP values; lowest curve per value" if env.mode == "curves" else
                           f"lowest-loss run per compute bin ({bins_per_decade:g} bins per decade of C)"),
              "envelope_method": "grid",
              "edge_rule": ("a winner is used only if smaller and larger runs compete at its compute"
                            if drop_edges else "none: every winner is used"),
              "fit": "least squares of log N and of log D on log C over the envelope points",
              "interval": (f"bootstrap over whole runs, {n_resamples} resamples, seed {seed}, percentiles"
                           if n_resamples else "none")}
    return _result(1, method, (a, b, icpt_n, icpt_d), draws, level=level, seed=seed,
                   n_resamples=n_resamples, points=points, diagnostics=diagnostics)


# ---------------------------------------------------------------------------- approach 2
def assign_budgets(runs: pd.DataFrame, budgets, *, max_ratio: float = 1.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Put each row on the nearest listed IsoFLOP budget (nearest in log C).

    Rows whose C differs from every budget by more than a factor ``max_ratio`` belong to
    no IsoFLOP slice and are returned separately, as are checkpoints of a run other than
    the one nearest each budget (a run contributes one point per budget). Returns
    ``(assigned rows with a budget column, left-out rows with a reason)``.
    """
    budgets = np.sort(np.asarray(list(budgets), dtype=float))
    if budgets.size == 0 or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise ApproachError(f"budgets must be positive FLOP values, got {list(budgets)}")
    runs = prepare_runs(runs)
    log_c = np.log(runs["C"].to_numpy())
    gap = np.abs(log_c[:, None] - np.log(budgets)[None, :])
    nearest = gap.argmin(axis=1)
    far = gap[np.arange(len(runs)), nearest] > np.log(max_ratio)
    out = runs.assign(budget=budgets[nearest], _gap=gap[np.arange(len(runs)), nearest])
    left = out[far].assign(reason=f"C more than {max_ratio:g}x from every listed budget")
    out = out[~far]
    if "run" in out.columns:
        best = out.groupby(["budget", "run"], sort=False)["_gap"].idxmin()
        extra = out.drop(index=best.to_numpy())
        left = pd.concat([left, extra.assign(reason="another checkpoint of this run is nearer the budget")])
        out = out.loc[best.to_numpy()]
    return out.drop(columns="_gap").sort_index(), left.drop(columns="_gap")


def _row_names(rows: pd.DataFrame) -> list[str]:
    """'line 12' (the file line, when the runs came from a file) or 'row 10' (the index)."""
    if "line" in rows.columns:
        return [f"line {int(v)}" for v in rows["line"]]
    return [f"row {i}" for i in rows.index]


def _binning_diagnostics(assigned, left, budgets, max_ratio) -> list:
    """What binning to listed budgets left out. Rows far from every budget are a warning
    that names them: they may belong to a budget missing from the list (or be runs of
    another design in the same file, which approaches 1 and 3 still use). Other
    checkpoints of a run already on a budget are expected and only counted. A listed
    budget that no row reaches is a warning too (a typo in the list?)."""
    out = []
    for reason, rows in left.groupby("reason", sort=False):
        names = _row_names(rows)
        far = reason.startswith("C more than")
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        out.append(Diagnostic("dropped_points", "warning" if far else "info",
                              f"{len(rows)} row(s) left out of the IsoFLOP slices: {reason}"
                              + (f": {shown}; if they belong to an IsoFLOP slice, add its budget to the list"
                                 if far else ""), tuple(names[:50])))
    reached = set(np.round(np.log(assigned["budget"].to_numpy()), 9)) if len(assigned) else set()
    empty = [float(c) for c in np.sort(np.asarray(list(budgets), float)) if round(np.log(c), 9) not in reached]
    if empty:
        out.append(Diagnostic("dropped_points", "warning",
                              f"{len(empty)} listed budget(s) have no run within {max_ratio:g}x: "
                              + ", ".join(f"{c:.3g}" for c in empty), tuple(f"budget {c:.3g}" for c in empty)))
    return out


def _vertices(x: np.ndarray, y: np.ndarray, W: np.ndarray):
    """Vertex of the least-squares parabola of y on x for each row of multiplicities
    ``W (B, K)``, all at once through the 3x3 normal equations; returns (vertex, loss at the
    vertex, usable) with usable = at least 3 distinct x, opening upward, and the vertex
    inside the range of the x present in that row."""
    xm = x.mean()
    P = np.stack([np.ones_like(x), x - xm, (x - xm) ** 2], axis=1)             # (K, 3)
    M = np.einsum("bk,ki,kj->bij", W, P, P)
    r = np.einsum("bk,ki,k->bi", W, P, y)
    enough = (W > 0).sum(axis=1) >= 3
    M[~enough] = np.eye(3)
    coef = np.linalg.solve(M, r[..., None])[..., 0]
    c0, c1, c2 = coef.T
    with np.errstate(divide="ignore", invalid="ignore"):
        v = -c1 / (2 * c2)
    present = W > 0
    lo = np.where(present, x, np.inf).min(axis=1)
    hi = np.where(present, x, -np.inf).max(axis=1)
    ok = enough & (c2 > 0) & (v + xm >= lo) & (v + xm <= hi)
    return np.where(ok, v + xm, np.nan), np.where(ok, c0 + c1 * v + c2 * v * v, np.nan), ok


def _akima_vertex(x, loss, flops, keep):
    """Porian et al.'s spline argmin over the sizes in ``keep`` (log x), or NaN."""
    if keep.sum() < 3:
        return np.nan, np.nan
    o = isoflop.find_optimum(np.exp(x[keep]), loss[keep], flops, n_replicates=0)
    return (np.log(o.x_star), o.loss_star) if o.interior else (np.nan, np.nan)


def _budget_table(runs: pd.DataFrame) -> tuple[list, list]:
    """Per budget (ascending): log N, log D and loss of one point per model size (the
    best of several runs at one size, e.g. a learning-rate sweep)."""
    out, notes = [], []
    for c, g in runs.groupby("budget", sort=True):
        best = g.loc[g.groupby("N", sort=True)["loss"].idxmin()]
        if len(best) < len(g):
            notes.append(Diagnostic("duplicate_nd", "info",
                                    f"budget {c:.3g}: {len(g)} runs at {len(best)} model sizes; the lowest loss "
                                    "per size is used (the best of its sweep)", (f"budget {c:.3g}",)))
        out.append((float(c), np.log(best["N"].to_numpy()), np.log(best["D"].to_numpy()), best["loss"].to_numpy()))
    return out, notes


def _budget_diagnostics(c, log_n, loss, vertex, min_sizes) -> list:
    """few_sizes, optimum_at_edge and off_centre_grid for one budget's point fit."""
    subject = (f"budget {c:.3g}",)
    k = log_n.size
    out = []
    if k < 3:
        return [Diagnostic("few_sizes", "warning", f"budget {c:.3g}: {k} model size(s); a minimum needs at "
                           "least 3 -- left out", subject)]
    if k < min_sizes:
        out.append(Diagnostic("few_sizes", "warning",
                              f"budget {c:.3g}: only {k} model sizes; the curve through them has "
                              f"{k - 3} residual degree(s) of freedom, so noise moves its minimum freely "
                              f"and its shape cannot be checked (at least {min_sizes} recommended)", subject))
    if np.isnan(vertex):
        out.append(Diagnostic("optimum_at_edge", "warning",
                              f"budget {c:.3g}: the fitted curve has no minimum inside the sampled sizes "
                              f"({np.exp(log_n.min()):.3g} to {np.exp(log_n.max()):.3g}); the budget is left "
                              "out -- sample sizes beyond the edge", subject))
        return out
    best = int(np.argmin(loss))
    if best in (0, k - 1):
        side = "smallest" if best == 0 else "largest"
        out.append(Diagnostic("optimum_at_edge", "warning",
                              f"budget {c:.3g}: the lowest loss is at the {side} sampled size "
                              f"({np.exp(log_n[best]):.3g}); the minimum is extrapolated from one side", subject))
    # Off-centre: for a loss surface with alpha != beta the parabola's vertex is biased by
    # about (beta - alpha)(3 delta^2 - lam)/6 in log N (see approach2); flag a grid whose
    # offset term 3 delta^2 outweighs the width term lam that every grid has.
    centred = log_n - log_n.mean()
    lam = float(np.sum(centred ** 4) / np.sum(centred ** 2))
    delta = float(vertex - log_n.mean())
    if 3 * delta ** 2 > lam:
        position = (vertex - log_n.min()) / (log_n.max() - log_n.min())
        out.append(Diagnostic("off_centre_grid", "warning",
                              f"budget {c:.3g}: the minimum ({np.exp(vertex):.3g}) sits at {position:.0%} of "
                              f"the sampled log-size range, {abs(delta) / np.log(10):.2f} decades from the "
                              "grid's centre; the parabola's vertex is biased when the loss surface is "
                              "asymmetric, and offsets that change with compute bias the exponent", subject))
    return out


def approach2(runs: pd.DataFrame, *, budgets=None, method: str = "parabola", loss_space: str = "linear",
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, level: float = 0.95,
              min_sizes: int = MIN_SIZES, noise_sd=None, max_ratio: float = 1.5,
              progress: bool = False) -> AllocationFit:
    """Approach 2: the loss minimum over model size at each IsoFLOP budget, then power laws.

    Budgets come from a ``budget`` column, or from ``budgets`` (each row put on the nearest
    listed budget, see :func:`assign_budgets`). At each budget, one point per model size
    (the best of several runs at a size). ``method="parabola"`` (Hoffmann et al.): the
    vertex of the least-squares parabola of the loss (``loss_space="linear"``, as in their
    Figure 3; or ``"log"``) against log N, and separately against log D; ``"akima"``
    (Porian et al.): the argmin of an Akima spline of log loss. A budget without a minimum
    inside its sampled sizes is left out. log N_opt and log D_opt are then fitted to log C
    by least squares.

    Interval: a bootstrap of the IsoFLOP points within each budget (each keeps its number
    of points), refitting every parabola and the power laws per resample, vectorised. With
    ``method="akima"`` and ``noise_sd`` (the seed-to-seed SD of the losses), Porian et al.'s
    noise replicates and weighted fit are used instead.

    Known bias (Czech 2026; derived here): on L = E + A/N^alpha + B/D^beta at fixed C, with
    u = log(N/N_opt), L - E = K (exp(-alpha u)/alpha + exp(beta u)/beta) exactly, whose
    Taylor series has the cubic term K (beta^2 - alpha^2) u^3 / 6. Fitting a parabola to
    sizes centred delta (in log) away from the optimum, with lam = sum v^4 / sum v^2 over the
    sizes' log-offsets v from their mean, puts the vertex at about
    u = (beta - alpha)(3 delta^2 - lam) / 6. The shape in u does not depend on C, so the same
    grid around the optimum at every budget shifts every vertex by the same amount: k_N is
    biased, a is exact. Offsets that change with C bias a: when |delta| grows with C, a
    moves down if alpha > beta (Chinchilla's surface) and up if beta > alpha.
    """
    if method not in METHODS_2:
        raise ApproachError(f"unknown approach-2 method {method!r}; valid: {', '.join(METHODS_2)}")
    if loss_space not in ("linear", "log"):
        raise ApproachError(f"loss_space must be 'linear' or 'log', got {loss_space!r}")
    diagnostics = []
    if budgets is not None:
        runs, left = assign_budgets(runs, budgets, max_ratio=max_ratio)
        diagnostics += _binning_diagnostics(runs, left, budgets, max_ratio)
    elif "budget" not in runs.columns:
        raise ApproachError("approach 2 needs IsoFLOP budgets: a 'budget' column, or budgets=[...] to put each "
                            "run on the nearest listed budget")
    runs = prepare_runs(runs, need=("N", "loss", "budget"))
    table, notes = _budget_table(runs)
    diagnostics += notes
    if method == "akima" and noise_sd is not None and n_resamples:
        return _approach2_replicates(runs, table, diagnostics, noise_sd=noise_sd, n_resamples=n_resamples,
                                     seed=seed, level=level, min_sizes=min_sizes)

    def transform(loss):
        return np.log(loss) if (loss_space == "log" or method == "akima") else loss

    # Point fit: every point once.
    rows = []
    for c, log_n, log_d, loss in table:
        ones = np.ones((1, log_n.size))
        if method == "parabola" and log_n.size >= 3:
            vn, ln, _ = _vertices(log_n, transform(loss), ones)
            vd, _, _ = _vertices(log_d, transform(loss), ones)
            vn, vd, ln = float(vn[0]), float(vd[0]), float(ln[0])
            ln = float(np.exp(ln)) if loss_space == "log" else ln
        elif method == "akima":
            (vn, ln), (vd, _) = (_akima_vertex(log_n, loss, c, np.ones(log_n.size, bool)),
                                 _akima_vertex(log_d, loss, c, np.ones(log_n.size, bool)))
        else:
            vn = vd = ln = np.nan
        diagnostics += _budget_diagnostics(c, log_n, loss, vn, min_sizes)
        rows.append({"C": c, "N": np.exp(vn), "D": np.exp(vd), "loss": ln, "n_sizes": int(log_n.size),
                     "N_min": float(np.exp(log_n.min())), "N_max": float(np.exp(log_n.max())),
                     "used": bool(np.isfinite(vn) and np.isfinite(vd))})
    points = pd.DataFrame(rows)
    log_c = np.log(points["C"].to_numpy())
    used = points["used"].to_numpy()
    if used.sum() < 2:
        raise ApproachError(f"approach 2: {int(used.sum())} of {len(points)} budgets have a minimum inside their "
                            "sampled sizes; the power law needs at least 2 (see the diagnostics: "
                            + "; ".join(d.message for d in diagnostics if d.severity != "info") + ")")
    a, icpt_n = (float(v[0]) for v in _masked_line(log_c[None], np.log(points["N"].to_numpy())[None], used[None]))
    b, icpt_d = (float(v[0]) for v in _masked_line(log_c[None], np.log(points["D"].to_numpy())[None], used[None]))

    draws = None
    if n_resamples:
        rng = np.random.default_rng(seed)
        vn_all = np.full((n_resamples, len(table)), np.nan)
        vd_all = np.full((n_resamples, len(table)), np.nan)
        for j, (c, log_n, log_d, loss) in enumerate(tqdm(table, desc="approach 2 bootstrap", disable=not progress)):
            k = log_n.size
            if k < 3:
                continue
            W = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples).astype(float)
            if method == "parabola":
                vn_all[:, j] = _vertices(log_n, transform(loss), W)[0]
                vd_all[:, j] = _vertices(log_d, transform(loss), W)[0]
            else:  # a spline passes through every point: what matters is which sizes are present
                for i, keep in enumerate(W > 0):
                    vn_all[i, j] = _akima_vertex(log_n, loss, c, keep)[0]
                    vd_all[i, j] = _akima_vertex(log_d, loss, c, keep)[0]
        ok = np.isfinite(vn_all) & np.isfinite(vd_all)
        x = np.broadcast_to(log_c, vn_all.shape)
        ra, rn = _masked_line(x, vn_all, ok)
        rb, rd = _masked_line(x, vd_all, ok)
        draws = {"a": ra, "b": rb, "log_kn": rn, "log_kd": rd}
    name = {"parabola": f"parabola of {'log ' if loss_space == 'log' else ''}loss in log N (and in log D), "
                        "vertex (Hoffmann et al. 2022)",
            "akima": "argmin of an Akima spline of log loss on a fine log grid (Porian et al. 2024)"}[method]
    method_record = {"approach": "IsoFLOP profiles (Hoffmann et al. 2022, approach 2)",
                     "optimum": name,
                     "edge_rule": "a budget is used only if its minimum lies inside its sampled sizes",
                     "fit": "least squares of log N_opt and of log D_opt on log C over the budgets",
                     "interval": (f"bootstrap of the IsoFLOP points within each budget, {n_resamples} resamples, "
                                  f"seed {seed}, percentiles" if n_resamples else "none")}
    return _result(2, method_record, (a, b, icpt_n, icpt_d), draws, level=level, seed=seed,
                   n_resamples=n_resamples, points=points, diagnostics=diagnostics)


def _approach2_replicates(runs, table, diagnostics, *, noise_sd, n_resamples, seed, level, min_sizes):
    """Approach 2 as Porian et al.: spline argmins, noise replicates, weighted fits."""
    from . import porian

    frame = pd.DataFrame({"config": "runs", "flops": runs["budget"], "n": runs["N"],
                          "tokens": runs["D"], "loss": runs["loss"]})
    frame = frame.loc[frame.groupby(["flops", "n"])["loss"].idxmin()]
    opt_n, opt_t, fit_n, fit_d = porian.refit(frame, noise_sd=noise_sd, rng=np.random.default_rng(seed),
                                              n_replicates=n_resamples, level=level)
    for c, log_n, _, loss in table:
        o = next((o for o in opt_n if o.flops == c), None)
        vertex = np.log(o.x_star) if o is not None and o.usable else np.nan
        diagnostics += _budget_diagnostics(c, log_n, loss, vertex, min_sizes)
    by_c = {o.flops: (o, t) for o, t in zip(opt_n, opt_t)}
    points = pd.DataFrame([{"C": c, "N": by_c[c][0].x_star if c in by_c else np.nan,
                            "D": by_c[c][1].x_star if c in by_c else np.nan,
                            "loss": by_c[c][0].loss_star if c in by_c else np.nan, "n_sizes": int(log_n.size),
                            "N_min": float(np.exp(log_n.min())), "N_max": float(np.exp(log_n.max())),
                            "used": c in by_c and by_c[c][0].usable and by_c[c][1].usable}
                           for c, log_n, _, _ in table])
    r = min(fit_n.replicate_exponents.size, fit_d.replicate_exponents.size)
    draws = None
    if r >= 2:
        # Porian's replicate fits give exponents only; coefficients are not resampled.
        draws = {"a": fit_n.replicate_exponents[:r], "b": fit_d.replicate_exponents[:r],
                 "log_kn": np.full(r, np.log(fit_n.coefficient)), "log_kd": np.full(r, np.log(fit_d.coefficient))}
    method_record = {"approach": "IsoFLOP profiles (Hoffmann et al. 2022, approach 2)",
                     "optimum": "median argmin of an Akima spline of log loss over noise replicates (Porian et al. 2024)",
                     "edge_rule": "a budget is used only if its minimum lies inside its sampled sizes and most "
                                  "replicates agree",
                     "fit": "weighted least squares of log N_opt and log D_opt on log C (weights 1/sd^2)",
                     "interval": f"noise replicates (SD {noise_sd!r}), {n_resamples} per budget, seed {seed}"}
    return _result(2, method_record, (fit_n.exponent, fit_d.exponent, np.log(fit_n.coefficient),
                                      np.log(fit_d.coefficient)),
                   draws, level=level, seed=seed, n_resamples=r, points=points, diagnostics=diagnostics,
                   why_none=fit_n.no_interval_reason)


# ---------------------------------------------------------------------------- approach 3
def _allocation_draws(params: dict) -> dict:
    """a, b, log k_N and log k_D from (arrays of) natural Chinchilla parameters."""
    with np.errstate(all="ignore"):
        alloc = optimal.compute_optimal(params, 1.0)       # N_opt(C = 1) = k_N, D_opt(C = 1) = k_D
        return {"a": np.asarray(alloc["a"], float), "b": np.asarray(alloc["b"], float),
                "log_kn": np.log(np.asarray(alloc["N_opt"], float)),
                "log_kd": np.log(np.asarray(alloc["D_opt"], float))}


def from_law_fit(result, boot=None, runs: pd.DataFrame | None = None, *, level: float = 0.95) -> AllocationFit:
    """Approach 3 from an existing fit of L = E + A/N^alpha + B/D^beta (a
    :class:`scalerepro.core.fit.FitResult`) and its bootstrap, e.g. the Chinchilla notebook's:
    a = beta/(alpha+beta), b = alpha/(alpha+beta), k_N = G 6^-a and k_D = 6^-b / G under
    C = 6ND (:func:`scalerepro.core.optimal.compute_optimal`)."""
    missing = {"E", "A", "B", "alpha", "beta"} - set(result.params)
    if missing:
        raise ApproachError(f"approach 3 needs a Chinchilla-form fit (E, A, B, alpha, beta); "
                            f"{result.law.name} lacks {sorted(missing)}")
    point = _allocation_draws(result.params)
    draws = None
    if boot is not None and boot.n_resamples:
        draws = {k: np.asarray(v, float) for k, v in _allocation_draws(boot.samples).items()}
        draws = {k: np.where(np.isfinite(draws["a"]), v, np.nan) for k, v in draws.items()}
    # The runs the law was fitted to (the caller's table; the FitResult keeps only counts).
    points = pd.DataFrame() if runs is None else \
        runs[[c for c in ("N", "D", "C", "loss", "run") if c in runs.columns]].reset_index(drop=True)
    points = points.assign(used=True)
    diagnostics = [] if result.converged else [Diagnostic("not_converged", "warning",
                                                           f"the law fit did not converge: {result.message}",
                                                           ("fit",))]
    if boot is not None and boot.n_resamples and result.problem is not None:
        # refits that ran E (or a coefficient) to the edge: a not_identified warning when too
        # many for the interval to bound it (its a and b move with it)
        diagnostics += identifiability.bootstrap_edges(boot, result.law, result.problem.y)[1]
    method = {"approach": "parametric fit (Hoffmann et al. 2022, approach 3)",
              "law": "L = E + A/N^alpha + B/D^beta",
              "fit": f"{result.objective.describe()['text']}; {result.optimizer['name']}, {result.n_starts} starts",
              "allocation": "a = beta/(alpha+beta), b = alpha/(alpha+beta) under C = 6ND",
              "interval": (f"bootstrap ({boot.resampling}), {boot.n_resamples} resamples, seed {boot.seed}, "
                           "percentiles" if boot is not None and boot.n_resamples else "none")}
    return _result(3, method, tuple(float(point[k]) for k in ("a", "b", "log_kn", "log_kd")), draws,
                   level=level, seed=boot.seed if boot is not None else None,
                   n_resamples=boot.n_resamples if boot is not None else 0, points=points,
                   diagnostics=diagnostics, law_fit=result, failed_elsewhere=boot.n_failed if boot is not None else 0)


def approach3(runs: pd.DataFrame, *, starts=None, delta: float = 1e-3, n_resamples: int = DEFAULT_RESAMPLES,
              seed: int = DEFAULT_SEED, level: float = 0.95, progress: bool = False) -> AllocationFit:
    """Approach 3: fit L = E + A/N^alpha + B/D^beta to every run (Huber ``delta`` on log
    loss, summed, from the law's start grid or ``starts``), then the allocation it implies.
    Interval: the project's bootstrap (:func:`scalerepro.core.bootstrap.bootstrap`), resampling
    whole runs when a ``run`` column groups checkpoints."""
    runs = prepare_runs(runs)
    law = laws.Chinchilla()
    X, y = runs[["N", "D"]].to_numpy(), runs["loss"].to_numpy()
    result = fit(law, X, y, delta=delta, starts=starts)
    boot = None
    if n_resamples:
        groups = runs["run"].to_numpy() if "run" in runs.columns else None
        boot = bootstrap(result, X, y, n_resamples=n_resamples, seed=seed, groups=groups, level=level,
                         progress=progress)
    return from_law_fit(result, boot, runs, level=level)


# ---------------------------------------------------------------------------- side by side
def compare(fits) -> pd.DataFrame:
    """One row per approach: a and b with their intervals, points used, interval method."""
    def iv(v):
        return f"({v[0]:.3f}, {v[1]:.3f})" if v is not None else "none"
    return pd.DataFrame([{"approach": f.name, "a": f.a, "a interval": iv(f.a_interval), "b": f.b,
                          "b interval": iv(f.b_interval), "level": f.level if f.a_interval else None,
                          "points used": f.record()["points_used"], "interval": f.method.get("interval")}
                         for f in fits])


def plot_allocation(fits, ax=None, *, flops=None, show_points: bool = True):
    """N_opt against C: one line and bootstrap band per approach, with the points each was
    fitted to (envelope points thinned, per-budget optima as markers). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    fits = list(fits)
    if flops is None:
        cs = np.concatenate([f.points["C"].to_numpy() for f in fits if "C" in f.points and len(f.points)])
        flops = np.geomspace(cs.min() / 2, cs.max() * 2, 100)
    colours = {1: "tab:blue", 2: "tab:orange", 3: "tab:green", "lower_hull": "tab:purple"}
    markers = {1: ".", 2: "o", 3: "x", "lower_hull": "+"}
    for f in fits:
        key = f.envelope if f.envelope == "lower_hull" else f.approach
        colour = colours[key]
        label = f"{f.name}: a = {f.a:.3f}" + (f" ({f.a_interval[0]:.3f}, {f.a_interval[1]:.3f})"
                                                if f.a_interval is not None else "")
        ax.plot(flops, f.n_opt(flops), color=colour, lw=1.8, label=label)
        band = f.band(flops)
        if band is not None:
            ax.fill_between(flops, *band, color=colour, alpha=0.18, lw=0)
        if show_points and f.approach in (1, 2) and len(f.points):
            p = f.points[f.points["used"]]
            if len(p) > 200:
                p = p.iloc[np.linspace(0, len(p) - 1, 200).astype(int)]
            ax.scatter(p["C"], p["N"], color=colour, marker=markers[key], s=22, zorder=3,
                       edgecolor="k" if f.approach == 2 else None, linewidth=0.5 if f.approach == 2 else 1.0,
                       label={2: "per-budget optima (approach 2)", "lower_hull": "hull vertices (approach 1)"}.get(
                           key, "envelope winners (approach 1)"))
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="compute-optimal parameters N_opt")
    ax.legend(fontsize=8)
    return ax

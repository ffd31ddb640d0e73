"""Porian et al. 2024's released IsoFLOP results as tidy tables, and their analysis rerun.

Each upstream pickle is a DataFrame with one row per training configuration and the
IsoFLOP points, optima and fits nested inside as DataFrames, dicts and lists. These
functions flatten what a replication needs into long tables with one row per point or
per budget, so that every later step (the optimum finder, plots, claims) works from plain
columns. They take the raw frame (``scalerepro.io.data.load_pickle_frame``) and never load
files themselves.

Configuration columns: ``dataset`` (rw = RefinedWeb, owt2 = OpenWebText2), ``hparams``
(base/tuned), ``warmup`` (long/short), ``decay`` (kaplan/chinchilla/const),
``param_count`` (kaplan = non-embedding parameters and FLOPs without attention or the
unembedding layer; standard = all parameters incl. the last layer; attention = standard
plus attention FLOPs) and ``loss_split`` (train: smoothed training loss; val: validation
loss). Upstream calls the last one ``val``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PorianFormatError
from .isoflop import IsoflopOptimum, PowerLawFit, find_optimum, fit_power_law

CONFIG_COLUMNS = ("dataset", "hparams", "warmup", "decay", "param_count", "loss_split")
RAW_REQUIRED = ("dataset", "hparams", "warmup", "decay", "param_count", "val", "data",
                "optimal_pairs", "fit_results")

# SD of the Gaussian "seed noise" added to each loss in the replicates: Porian et al.'s
# configs.py (RW_SEED_CONFIG, OWT2_SEED_CONFIG) make it loss-dependent above
# exp(3) ~ 20 nats, far above every loss in these runs, so it is the constant noise_low.
NOISE_SD = {"rw": 0.002, "owt2": 0.01}

# Claim step names for the configurations the paper walks through (Figure 1 / Table 2).
STEPS = {
    ("base", "long", "kaplan", "kaplan", "train"): "kaplan_setup",
    ("base", "long", "kaplan", "standard", "val"): "last_layer_flops",
    ("base", "short", "kaplan", "standard", "val"): "short_warmup",
    ("base", "short", "chinchilla", "standard", "val"): "cosine_decay",
    ("tuned", "short", "const", "standard", "val"): "tuned_constant_lr",
    ("tuned", "long", "const", "kaplan", "train"): "kaplan_counting_tuned",
    ("base", "long", "kaplan", "attention", "train"): "attention_long_warmup",
    ("base", "short", "kaplan", "attention", "train"): "attention_short_warmup",
    ("base", "short", "chinchilla", "attention", "train"): "attention_cosine_decay",
    ("tuned", "short", "const", "attention", "train"): "attention_tuned_constant_lr",
}


def _check(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    if not isinstance(raw, pd.DataFrame):
        raise PorianFormatError(f"{source}: expected a DataFrame, got {type(raw).__name__}")
    missing = [c for c in RAW_REQUIRED if c not in raw.columns]
    if missing:
        raise PorianFormatError(f"{source}: missing column(s) {missing}; has {list(raw.columns)}")
    return raw


def _config(row) -> dict:
    cfg = {c: row[c] for c in CONFIG_COLUMNS[:-1]}
    cfg["loss_split"] = row["val"]
    key = tuple(cfg[c] for c in CONFIG_COLUMNS[1:])
    cfg["step"] = STEPS.get(key, "/".join(key))
    cfg["config"] = "/".join(str(cfg[c]) for c in CONFIG_COLUMNS)
    return cfg


def configurations(raw: pd.DataFrame, source: str = "frame") -> pd.DataFrame:
    """One row per configuration: the configuration columns, ``step`` and ``config``."""
    _check(raw, source)
    return pd.DataFrame([_config(row) for _, row in raw.iterrows()])


def isoflop_points(raw: pd.DataFrame, source: str = "frame") -> pd.DataFrame:
    """Tidy IsoFLOP points: configuration columns, ``flops`` (FLOP), ``n`` (parameters as
    counted by ``param_count``), ``tokens`` and ``loss`` (nats/token at exactly that
    budget, interpolated by Porian et al. from the run's loss curve; one point per size,
    the best over seeds/repeats). Budgets with fewer than 3 sizes carry no points."""
    _check(raw, source)
    rows = []
    for i, row in raw.iterrows():
        cfg = _config(row)
        for j, b in row["data"].iterrows():
            if not isinstance(b["orig_n"], pd.Series):
                continue
            n, t, loss = (np.asarray(b[k], dtype=float) for k in ("orig_n", "orig_t", "orig_loss"))
            if not (n.shape == t.shape == loss.shape):
                raise PorianFormatError(f"{source}: row {i} budget {b['flops']:g}: orig_n/orig_t/orig_loss lengths differ")
            rows.append(pd.DataFrame({**cfg, "flops": float(b["flops"]), "n": n, "tokens": t, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def published_optima(raw: pd.DataFrame, source: str = "frame") -> pd.DataFrame:
    """Porian et al.'s own per-budget optima: ``n`` and ``tokens`` (median over noise
    replicates; NaN where the optimum was at the edge of the sizes), ``loss``, and the
    SDs of their logs (``n_star_std`` is the weight of the power-law fit)."""
    _check(raw, source)
    out = []
    for _, row in raw.iterrows():
        op = row["optimal_pairs"]
        frame = pd.DataFrame({"flops": op["flops"].astype(float),
                              "n": pd.to_numeric(op["n"], errors="coerce"),
                              "tokens": pd.to_numeric(op["t"], errors="coerce"),
                              "loss": pd.to_numeric(op["loss"], errors="coerce"),
                              "n_star_std": pd.to_numeric(op["n_star_std"], errors="coerce"),
                              "t_star_std": pd.to_numeric(op["t_star_std"], errors="coerce"),
                              "loss_star_std": pd.to_numeric(op["loss_star_std"], errors="coerce")})
        for k, v in reversed(list(_config(row).items())):
            frame.insert(0, k, v)
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def published_fits(raw: pd.DataFrame, source: str = "frame", level: float = 0.95) -> pd.DataFrame:
    """Porian et al.'s stored fits per configuration: the weighted exponent ``a`` (the
    published one) with the percentile interval of their stored replicate fits, the
    unweighted ``a_ols``, and the unweighted loss-at-optimum fit L*(C) = E + A C^-alpha."""
    _check(raw, source)
    tail = 50.0 * (1.0 - level)
    out = []
    for _, row in raw.iterrows():
        fr = row["fit_results"]
        reps = np.array([d["n_exponent"] for d in fr["bootstrap_weighted"] if "n_exponent" in d])
        lo, hi = np.percentile(reps, [tail, 100 - tail]) if reps.size else (np.nan, np.nan)
        basic = fr["basic"]
        out.append({**_config(row), "a": float(fr["weighted"]["n_exponent"]), "a_low": float(lo),
                    "a_high": float(hi), "a_ols": float(basic["n_exponent"]),
                    "b": float(fr["weighted"]["t_exponent"]),
                    "loss_E": float(basic.get("E", np.nan)), "loss_A": float(basic.get("A", np.nan)),
                    "loss_alpha": float(basic.get("alpha", np.nan))})
    return pd.DataFrame(out)


def refit(points: pd.DataFrame, *, noise_sd: float, rng, n_replicates: int = 1000,
          method: str = "akima", weighted: bool = True, level: float = 0.95, **finder
          ) -> tuple[list[IsoflopOptimum], list[IsoflopOptimum], PowerLawFit, PowerLawFit]:
    """Porian et al.'s analysis of one configuration's IsoFLOP points (``isoflop_points``
    rows of a single config): per budget in increasing order, the optimum over N and then
    over tokens (the rng is consumed in that order, which is what makes
    ``RandomState(42)`` per file reproduce their numbers exactly), then the weighted power
    laws N*(C) and D*(C). As upstream, the replicate interval uses only budgets whose N
    and D replicates are both valid, and as many replicate fits as the smaller count.
    ``finder`` passes ``grid_multiplier`` / ``min_std_factor`` to ``find_optimum``.
    Returns (N optima, D optima, N fit, D fit)."""
    configs = points["config"].unique() if "config" in points else []
    if len(configs) != 1:
        raise ValueError(f"refit expects the points of exactly one configuration, got {len(configs)}: {list(configs)[:5]}")
    opt_n, opt_t = [], []
    for c, g in points.groupby("flops", sort=True):
        if len(g) < 3:
            continue
        kw = dict(method=method, n_replicates=n_replicates, noise_sd=noise_sd, rng=rng, **finder)
        opt_n.append(find_optimum(g["n"].to_numpy(), g["loss"].to_numpy(), c, **kw))
        opt_t.append(find_optimum(g["tokens"].to_numpy(), g["loss"].to_numpy(), c, **kw))
    both = {o.flops for o, t in zip(opt_n, opt_t) if o.has_replicates and t.has_replicates}
    limit = None
    if n_replicates and both:
        limit = min(o.n_interior for o in opt_n + opt_t if o.flops in both)
    kw = dict(weighted=weighted, level=level, replicate_budgets=both, replicate_limit=limit)
    return opt_n, opt_t, fit_power_law(opt_n, **kw), fit_power_law(opt_t, **kw)

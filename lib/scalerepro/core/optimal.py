"""Compute accounting and compute-optimal allocation for L = E + A/N^alpha + B/D^beta.

Under C = 6 N D, minimising the loss at fixed C gives (Hoffmann et al. 2022, eq. 4)
N_opt = G (C/6)^a and D_opt = (1/G) (C/6)^b with a = beta/(alpha+beta),
b = alpha/(alpha+beta) and G = (alpha A / (beta B))^(1/(alpha+beta)). All functions take
scalars or arrays (e.g. bootstrap samples) and broadcast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import percentile_interval

FLOPS_PER_PARAM_TOKEN = 6.0
#: Tokens per parameter outside this range is not a plausible language-model allocation
#: (fits of own runs and sensitivity variants warn outside it).
PLAUSIBLE_TOKENS_PER_PARAM = (1.0, 1e4)


def training_flops(N, D, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN):
    """C = 6 N D: forward and backward pass, embeddings and attention ignored."""
    return flops_per_param_token * np.asarray(N, float) * np.asarray(D, float)


def tokens_from_flops(C, N, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN):
    """D = C / (6 N), the inverse of :func:`training_flops`."""
    return np.asarray(C, float) / (flops_per_param_token * np.asarray(N, float))


def allocation_exponents(alpha, beta):
    """(a, b): N_opt grows as C^a and D_opt as C^b, a + b = 1."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    return beta / (alpha + beta), alpha / (alpha + beta)


def allocation_constant(A, B, alpha, beta):
    """G = (alpha A / (beta B))^(1/(alpha+beta))."""
    A, B, alpha, beta = (np.asarray(v, float) for v in (A, B, alpha, beta))
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def compute_optimal(params: dict, C, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN) -> dict:
    """N_opt, D_opt, tokens per parameter and the loss at the optimum for budget(s) C.

    params: E, A, B, alpha, beta (scalars or arrays of equal shape).
    """
    A, B, alpha, beta = (np.asarray(params[k], float) for k in ("A", "B", "alpha", "beta"))
    a, b = allocation_exponents(alpha, beta)
    G = allocation_constant(A, B, alpha, beta)
    budget = np.asarray(C, float) / flops_per_param_token
    n_opt = G * budget ** a
    d_opt = budget ** b / G
    out = {"a": a, "b": b, "G": G, "N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt}
    if "E" in params:
        out["loss"] = np.asarray(params["E"], float) + A / n_opt ** alpha + B / d_opt ** beta
    return out


#: The per-budget quantities of :func:`allocation_table`, in the order tables show them.
ALLOCATION_QUANTITIES = ("a", "b", "N_opt", "D_opt", "tokens_per_param", "loss")


def allocation_table(params: dict, budgets, fitted_max_compute: float, samples: dict | None = None,
                     level: float = 0.95) -> pd.DataFrame:
    """The compute-optimal allocation at each budget, with bootstrap intervals.

    One row per budget C: ``C``; ``extrapolation_factor`` = C / ``fitted_max_compute``
    (the largest compute among the runs the law was fitted to, not among held-out runs:
    above 1 the allocation is an extrapolation by that factor); then each of
    :data:`ALLOCATION_QUANTITIES` at the fitted ``params``. With ``samples`` (bootstrap
    samples of the natural parameters, e.g. ``BootstrapResult.samples``) each quantity
    also gets ``<name>_interval``, the central ``level`` percentile interval of that
    quantity over the resamples, and ``undefined_samples`` counts resamples whose
    allocation is not a number (a coefficient at 0 or infinity in both terms); they are
    left out of the intervals and ``None`` means no resample defined one.
    """

    budgets = np.asarray(list(budgets), float)
    with np.errstate(all="ignore"):  # a coefficient at its limit gives nan: counted, not warned
        point = compute_optimal(params, budgets)
        if samples is not None:
            columns = {k: np.asarray(v, float)[:, None] for k, v in samples.items()}
            drawn = compute_optimal(columns, budgets[None, :])
            shape = np.broadcast_shapes(*(v.shape for v in drawn.values()))
            drawn = {q: np.broadcast_to(v, shape) for q, v in drawn.items()}
    quantities = [q for q in ALLOCATION_QUANTITIES if q in point]
    rows = []
    for j, c in enumerate(budgets):
        row = {"C": float(c), "extrapolation_factor": float(c / fitted_max_compute)}
        for q in quantities:
            row[q] = float(np.broadcast_to(point[q], budgets.shape)[j])
            if samples is not None:
                values = drawn[q][:, j]
                defined = values[~np.isnan(values)]
                row[f"{q}_interval"] = list(percentile_interval(defined, level)) if defined.size else None
        if samples is not None:
            row["undefined_samples"] = int(np.isnan(np.stack([drawn[q][:, j] for q in quantities])).any(axis=0).sum())
        rows.append(row)
    return pd.DataFrame(rows)

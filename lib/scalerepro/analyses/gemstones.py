"""McLeish et al. 2025 (Gemstones): the fitting tables with a chosen parameter and FLOP count.

The authors' two approaches count differently, and the counting moves the answer as much as
the method does:

- approach 1 (lower convex hull, 477-step tables) uses C = F(width, depth) D with their
  detailed per-token FLOP count, and "no embeddings" = N - 2 V w (both vocabulary matrices);
- approach 3 (parametric fit, 10-checkpoint tables) uses the file's N and, for its closed-form
  allocation, C = 6ND; "no embeddings" = N - V w (one matrix).

:func:`table` gives the role-named frame (``run``, ``N``, ``D``, ``C``, ``loss``) that
:mod:`scalerepro.analyses.approaches` and ``scalerepro fit`` read, with the counting
conventions as required arguments and recorded in ``df.attrs["counting"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import accounting
from ..io import mcleish2025

#: ``params`` choices -> number of vocabulary matrices counted (accounting.gemstone_params).
PARAMS = {"total": 2, "minus_one_vocab": 1, "minus_both_vocab": 0}
FLOPS = ("detailed", "6ND")


def table(subset: str, *, params: str, flops: str) -> pd.DataFrame:
    """The Gemstones table ``subset`` with N counted as ``params`` ("total" = the file's
    ``params_active_precise``; "minus_one_vocab" = approach 3's no-embedding count N - V w;
    "minus_both_vocab" = approach 1's N - 2 V w) and C as ``flops`` ("detailed" = the
    authors' count F(w, depth) D, used by their approach 1; "6ND" = 6 x total N x D). The
    file's own count is kept as ``N_total``; provenance stays in ``df.attrs``."""
    if params not in PARAMS:
        raise ValueError(f"params must be one of {list(PARAMS)}, got {params!r}")
    if flops not in FLOPS:
        raise ValueError(f"flops must be one of {list(FLOPS)}, got {flops!r}")
    raw = mcleish2025.checkpoints(subset)
    out = raw.rename(columns={"N": "N_total"}).copy()
    out["N"] = accounting.gemstone_params(out["width"].to_numpy(), out["depth"].to_numpy(),
                                          vocab_matrices=PARAMS[params]).astype(float)
    convention = "detailed" if flops == "detailed" else "6N"
    out["C"] = accounting.gemstone_training_flops(out["width"].to_numpy(), out["depth"].to_numpy(),
                                                  out["D"].to_numpy(), convention=convention)
    out.attrs = dict(raw.attrs)
    out.attrs["counting"] = {"params": params, "flops": flops}
    return out


def checkpoint_csv(subset: str, path, *, params: str, flops: str) -> pd.DataFrame:
    """Write the ``scalerepro fit`` input for ``subset`` (columns run, step, N, D, C, loss)
    to ``path``; returns the frame written."""
    frame = table(subset, params=params, flops=flops)[["run", "step", "N", "D", "C", "loss"]]
    frame.to_csv(path, index=False, float_format="%.17g")
    return frame


def allocation_from_parameters(alpha, beta, log_A, log_B, C):
    """N_opt(C) of L = E + A N^-alpha + B D^-beta under C = 6ND, as the authors' closed form
    (Hoffmann eq. 4; ``plotting_utils.py``): N_opt = G (C/6)^(beta/(alpha+beta)) with
    G = (alpha A / (beta B))^(1/(alpha+beta))."""
    G = (alpha * np.exp(log_A) / (beta * np.exp(log_B))) ** (1.0 / (alpha + beta))
    return G * (np.asarray(C, float) / 6.0) ** (beta / (alpha + beta))

"""Generate ``isoflop_sweep.csv``: a simulated IsoFLOP sweep with a known answer.

Why: the README's walk-through of ``scalerepro fit --approach all`` (Chinchilla's three
estimates of the allocation side by side) needs a sweep planned by compute budget, whose
truth is known. Nine budgets from 1e18 to 1e21 FLOPs; at each, the sizes of one global
ladder (8 per decade) within a factor 5 of where the planner expected the optimum, trained
on D = C / (6N) tokens. The planner guessed N_opt ~ C^0.5 from the smallest budget (the
truth is a = beta / (alpha + beta) = 0.514), so the grids drift slightly off-centre as
compute grows, as real grids do. The loss follows the same Chinchilla-form law as
``example_runs.csv`` and ``lr_sweep.csv`` (alpha != beta) times 0.3% log-normal noise. The
columns are named as an export would name them (run_name, params, tokens, budget_flops,
eval_loss), so a fit maps them with ``--columns``.

Run ``python data/examples/make_isoflop_sweep.py`` to regenerate the file (deterministic).
"""

from pathlib import Path

import numpy as np
import pandas as pd

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
BUDGETS = tuple(float(f"{c:.3g}") for c in np.geomspace(1e18, 1e21, 9))
LADDER = tuple(float(f"{n:.3g}") for n in 10 ** np.arange(6, 12, 1 / 8))
GUESSED_EXPONENT = 0.5
WITHIN = 5.0
SEED = 0


def law(N, D, E, A, B, alpha, beta):
    return E + A / N**alpha + B / D**beta


def true_n_opt(C, E, A, B, alpha, beta):
    """The law's compute-optimal size under C = 6ND (Hoffmann et al., eq. 4)."""
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * (C / 6) ** (beta / (alpha + beta))


def make_runs(seed: int = SEED, noise: float = 0.003):
    rng = np.random.default_rng(seed)
    ladder = np.array(LADDER)
    first = BUDGETS[0]
    rows = []
    for c in BUDGETS:
        planned = true_n_opt(first, **TRUE) * (c / first) ** GUESSED_EXPONENT
        for n in ladder[np.abs(np.log(ladder / planned)) <= np.log(WITHIN)]:
            d = float(f"{c / (6 * n):.6g}")
            loss = law(n, d, **TRUE) * np.exp(noise * rng.standard_normal())
            rows.append({"run_name": f"c{c:.3g}-n{n:.3g}", "params": float(n), "tokens": d, "budget_flops": c,
                         "eval_loss": round(float(loss), 5)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    out = Path(__file__).with_name("isoflop_sweep.csv")
    make_runs().to_csv(out, index=False)
    print(f"wrote {out}")

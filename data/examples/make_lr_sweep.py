"""Generate ``lr_sweep.csv``: a simulated learning-rate sweep with a known answer.

Why: the README's walk-through of ``scalerepro fit`` on a real-looking sweep, and the tests
of how a fit handles several runs per (N, D), need a sweep whose truth is known. Sixteen
model sizes (20M to 2B parameters) are each trained for 5, 10, 20, 40 and 80 tokens per
parameter at three learning rates (3e-4, 1e-3, 3e-3): 80 (N, D) design points, 240 runs.
The loss follows a Chinchilla-form law (the same truth as ``example_runs.csv``) times a
U-shaped learning-rate penalty 1 + 0.08 log10(lr / lr*(N))^2 around a best learning rate
lr*(N) = 3e-3 (N / 2e7)^-0.3 that falls with size, times 0.4% log-normal noise. The rows
come one learning rate at a time, as a sweep launched that way would log them, and the
columns are named as an export would name them (run_name, params, tokens, learning_rate,
eval_loss), so a fit needs ``--columns`` and ``--per-nd``.

Run ``python data/examples/make_lr_sweep.py`` to regenerate the file (deterministic).
"""

from pathlib import Path

import numpy as np
import pandas as pd

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
TOKENS_PER_PARAM = (5, 10, 20, 40, 80)
PENALTY = 0.08
SEED = 0


def law(N, D, E, A, B, alpha, beta):
    return E + A / N**alpha + B / D**beta


def best_lr(N):
    """The loss-minimizing learning rate falls with model size (3e-3 at 2e7 parameters)."""
    return 3e-3 * (np.asarray(N, float) / 2e7) ** -0.3


def make_runs(seed: int = SEED, sizes: int = 16, tokens_per_param=TOKENS_PER_PARAM, noise: float = 0.004):
    rng = np.random.default_rng(seed)
    rows = []
    for lr in LEARNING_RATES:
        for n in np.geomspace(2e7, 2e9, sizes):
            n = float(f"{n:.4g}")
            for tpp in tokens_per_param:
                d = float(f"{tpp * n:.6g}")
                penalty = 1 + PENALTY * np.log10(lr / best_lr(n)) ** 2
                loss = law(n, d, **TRUE) * penalty * np.exp(noise * rng.standard_normal())
                rows.append({"run_name": f"n{n:.3g}-tpp{tpp}-lr{lr:g}", "params": n, "tokens": d,
                             "learning_rate": lr, "eval_loss": round(float(loss), 5)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    out = Path(__file__).with_name("lr_sweep.csv")
    make_runs().to_csv(out, index=False)
    print(f"wrote {out}")

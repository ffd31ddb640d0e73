"""Simulated model ladders from known step-1 and step-2 laws (shared by the Bhagia tests)."""

import numpy as np
import pandas as pd

from scalerepro.analyses.bhagia2024_laws import Sigmoid, TaskLoss

# MMLU-like truth (the paper's Table 5, with b moved off its bound so that it is identified)
STEP1 = {"A": 38.07, "B": 100.09, "alpha": 0.2262, "beta": 0.2361, "E": 0.4541}
STEP2 = {"a": -0.742, "L0": 0.616, "k": 4.833, "b": 0.95}
SIZES = (190e6, 370e6, 760e6, 1.3e9)
MULTIPLIERS = (1, 2, 5, 10)
TARGET = (6.9e9, 3.9e12)


def true_loss(N, D):
    law = TaskLoss()
    return law.predict(law.from_natural(**STEP1), np.column_stack([np.ravel(N), np.ravel(D)]).astype(float))


def true_accuracy(loss):
    return Sigmoid().value_jac(np.array([STEP2[k] for k in ("a", "L0", "k", "b")]),
                               np.asarray(loss, float).reshape(-1, 1))[0][0]


def simulate_ladder(seed: int, checkpoints: int = 30, loss_noise: float = 0.004,
                    acc_noise: float = 0.006) -> pd.DataFrame:
    """4 sizes x 4 lengths (D = 20 N x multiplier), ``checkpoints`` evenly spaced checkpoints
    per run: task loss from the step-1 law with multiplicative noise, accuracy from the
    sigmoid at the noiseless loss plus additive noise. Columns run, N, D, step, bpb, acc."""
    rng = np.random.default_rng(seed)
    rows = []
    for N in SIZES:
        for mult in MULTIPLIERS:
            D = 20 * N * mult * np.arange(1, checkpoints + 1) / checkpoints
            loss = true_loss(np.full_like(D, N), D)
            rows.append(pd.DataFrame({
                "run": f"{N / 1e6:g}M-{mult}xC", "N": N, "D": D, "step": np.arange(1, checkpoints + 1),
                "bpb": loss * np.exp(loss_noise * rng.standard_normal(len(D))),
                "acc": true_accuracy(loss) + acc_noise * rng.standard_normal(len(D))}))
    return pd.concat(rows, ignore_index=True)

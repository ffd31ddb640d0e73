"""A synthetic learning-rate sweep with flat directions, from a known Chinchilla law.

Shaped like the sweeps users bring (``scalerepro fit`` on their own runs): 9 model
sizes over less than a decade (8x) times a fixed ladder of 9 tokens-per-parameter ratios
over a narrow range (4x), so N and D move together and A, alpha and B, beta trade off
against each other (the fit's Hessian has a condition number near 1e8, and its
weakest direction is mostly log A); at each of the 81 (N, D) design points three
learning rates (0.5x, 1x, 2x the best; off-best rates cost 1% of loss per octave
squared), and two more (0.25x, 4x) at the 9 largest budgets, several of which tie in
compute. 261 runs, 1% log-normal noise, seeded.
"""

from __future__ import annotations

import numpy as np

from scalerepro.core.laws import Chinchilla

TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def lr_sweep(seed: int = 0, noise: float = 0.01):
    """(X, y, truth): X columns (N, D), y the final losses of the 261 runs."""
    law = Chinchilla()
    N = 4e7 * 8.0 ** (np.arange(9) / 8)
    tokens_per_param = 5.0 * 4.0 ** (np.arange(9) / 8)
    NN, RR = np.meshgrid(N, tokens_per_param, indexing="ij")
    NN, DD = NN.ravel(), (NN * RR).ravel()
    largest = set(np.argsort(6 * NN * DD)[-9:].tolist())
    runs = np.array([(NN[k], DD[k], lr) for k in range(len(NN))
                     for lr in [0.5, 1.0, 2.0] + ([0.25, 4.0] if k in largest else [])])
    X = runs[:, :2]
    lr_penalty = 1.0 + 0.01 * np.log2(runs[:, 2]) ** 2
    rng = np.random.default_rng(seed)
    y = law.predict(law.from_natural(**TRUTH), X) * lr_penalty * np.exp(noise * rng.standard_normal(len(X)))
    return X, y, dict(TRUTH)

"""The forms of Bhagia et al. 2024 ("Establishing Task Scaling Laws via Compute-Efficient
Model Ladders"), as :class:`~scalerepro.core.laws.Law` objects the fitter can use.

- :class:`TaskLoss` (step 1): task loss L(N, D) = A/N^alpha + B/D^beta + E in the paper's
  own parameterization (a = ln A, b = ln B, alpha, beta, E with E linear, so that the
  bound E >= 0 can be reached, as it is for CommonsenseQA).
- :class:`Sigmoid` (step 2): accuracy from task loss, Acc(L) = a / (1 + exp(-k (L - L0))) + b,
  with a < 0 so accuracy falls as the loss grows. A general law of a metric from a loss,
  registered as ``sigmoid``.
- :class:`TaskLossFlops`: the FLOPs variant of step 1, L(C) = exp(a) / C^alpha + E.
- :class:`SingleStep`: accuracy straight from (N, D),
  Acc = p / (1 + exp(-(A/N^alpha + B/D^beta + E))) + q.

Every law predicts the log of its output (here a loss or an accuracy), as the fitter
expects; a fit in raw space (step 2's least squares) exponentiates it back. An accuracy
that a parameter vector makes non-positive has no log: its objective is infinite, which
the optimizers treat as a step to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.laws import Law, grid


def _logistic(z):
    """1 / (1 + exp(-z)) without overflow warnings for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


@dataclass(frozen=True)
class TaskLoss(Law):
    """Step 1: L(N, D) = exp(a - alpha ln N) + exp(b - beta ln D) + E (paper eq. 1, its code's
    parameterization; bounds a, b, alpha, beta, E >= 0 in the paper)."""

    name: str = field(default="bhagia2024_task_loss", init=False)
    equation: str = field(default="L = A/N^alpha + B/D^beta + E", init=False)
    inputs: tuple = field(default=("N", "D"), init=False)
    param_names: tuple = field(default=("a", "b", "alpha", "beta", "E"), init=False)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        a, b, alpha, beta, E = (theta[:, j:j + 1] for j in range(5))
        tN, tD = np.exp(a - alpha * logN), np.exp(b - beta * logD)
        total = tN + tD + E
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.log(total)
        pN, pD, pE = tN / total, tD / total, 1.0 / total
        J = np.stack([pN, pD, -logN * pN, -logD * pD, np.broadcast_to(pE, pN.shape)], axis=-1)
        return f, J

    def log_predict_hess(self, theta, X):
        """Analytic Hessian (the bootstrap refits call it every Newton step): with S the sum of
        the three terms, Hess log S = Hess S / S - J J^T, and Hess S has only the two
        (coefficient, exponent) blocks of the power terms."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        f, J = self.log_predict_jac(theta, X)
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        pN, pD = J[..., 0], J[..., 1]
        H = -J[..., :, None] * J[..., None, :]
        for (i, j), p, lx in (((0, 2), pN, logN), ((1, 3), pD, logD)):
            H[..., i, i] += p
            H[..., i, j] -= lx * p
            H[..., j, i] -= lx * p
            H[..., j, j] += lx * lx * p
        return f, J, H

    def natural(self, theta):
        a, b, alpha, beta, E = map(float, np.asarray(theta, dtype=float))
        return {"A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": alpha, "beta": beta, "E": E}

    def from_natural(self, A, B, alpha, beta, E):
        return np.array([np.log(A), np.log(B), alpha, beta, E], dtype=float)

    def default_starts(self):
        """The paper's single start (step1.py): (a, b, alpha, beta, E) = (3, 6, 0.1, 0.2, 1)."""
        return np.array([[3.0, 6.0, 0.1, 0.2, 1.0]])


@dataclass(frozen=True)
class TaskLossFlops(Law):
    """FLOPs variant of step 1 (App. C.1): L(C) = exp(a) / C^alpha + E."""

    name: str = field(default="bhagia2024_task_loss_flops", init=False)
    equation: str = field(default="L = A/C^alpha + E", init=False)
    inputs: tuple = field(default=("C",), init=False)
    param_names: tuple = field(default=("a", "alpha", "E"), init=False)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        logC = np.log(X[:, 0])
        a, alpha, E = (theta[:, j:j + 1] for j in range(3))
        tC = np.exp(a - alpha * logC)
        total = tC + E
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.log(total)
        pC = tC / total
        return f, np.stack([pC, -logC * pC, np.broadcast_to(1.0 / total, pC.shape)], axis=-1)

    def natural(self, theta):
        a, alpha, E = map(float, np.asarray(theta, dtype=float))
        return {"A": float(np.exp(a)), "alpha": alpha, "E": E}

    def from_natural(self, A, alpha, E):
        return np.array([np.log(A), alpha, E], dtype=float)

    def default_starts(self):
        """The paper's start (step1_flops.py): (a, alpha, E) = (3, 0.1, 1)."""
        return np.array([[3.0, 0.1, 1.0]])


@dataclass(frozen=True)
class Sigmoid(Law):
    """Step 2: Acc(L) = a / (1 + exp(-k (L - L0))) + b (paper eq. 2).

    With a in [-1, 0] and b in [0, 1] accuracy decreases from b (at low loss) to a + b
    (at high loss, the chance level); k is the steepness, L0 the midpoint. The input is
    named ``L`` (the intermediate feature: task loss, C4 loss, ...)."""

    name: str = field(default="sigmoid", init=False)
    equation: str = field(default="Acc = a / (1 + exp(-k (L - L0))) + b", init=False)
    inputs: tuple = field(default=("L",), init=False)
    param_names: tuple = field(default=("a", "L0", "k", "b"), init=False)

    @staticmethod
    def direction(params: dict) -> str:
        """Which way the metric moves with the loss: dAcc/dL = a k s (1 - s) has the sign of a k."""
        slope = params["a"] * params["k"]
        if slope < 0:
            return "falls with the loss (an accuracy: it rises as the loss falls)"
        if slope > 0:
            return "rises with the loss (an error: it falls as the loss falls)"
        return "flat in the loss"

    def value_jac(self, theta, X):
        """The accuracy itself (not its log) and its Jacobian."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        x = np.asarray(X, dtype=float)[:, 0]
        a, L0, k, b = (theta[:, j:j + 1] for j in range(4))
        s = _logistic(k * (x - L0))
        slope = a * s * (1.0 - s)
        acc = a * s + b
        J = np.stack([s, -k * slope, (x - L0) * slope, np.ones_like(s)], axis=-1)
        return acc, J

    def log_predict_jac(self, theta, X):
        acc, J = self.value_jac(theta, X)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(acc > 0, np.log(np.where(acc > 0, acc, 1.0)), np.nan)
            return f, J / acc[..., None]

    def log_predict_hess(self, theta, X):
        """Analytic Hessian: Hess log Acc = Hess Acc / Acc - J J^T (J the log Jacobian)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        acc, G = self.value_jac(theta, X)
        x = np.asarray(X, dtype=float)[:, 0]
        a, L0, k = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        s = G[..., 0]
        d1 = s * (1.0 - s)
        d2 = d1 * (1.0 - 2.0 * s)
        u = x - L0
        HA = np.zeros(G.shape + (4,))
        HA[..., 0, 1] = HA[..., 1, 0] = -k * d1
        HA[..., 0, 2] = HA[..., 2, 0] = u * d1
        HA[..., 1, 1] = k * k * a * d2
        HA[..., 1, 2] = HA[..., 2, 1] = -a * d1 - k * a * u * d2
        HA[..., 2, 2] = u * u * a * d2
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(acc > 0, np.log(np.where(acc > 0, acc, 1.0)), np.nan)
            J = G / acc[..., None]
            return f, J, HA / acc[..., None, None] - J[..., :, None] * J[..., None, :]

    def default_starts(self):
        """The paper's start for a 4-way task (task_minimum - 1 = -0.75), and a grid around it."""
        return grid(a=[-0.75, -0.5, -0.25], L0=[0.5, 0.9, 1.3], k=[1.0, 3.0, 10.0], b=[0.9, 1.0])


@dataclass(frozen=True)
class SingleStep(Law):
    """Single-step variant (App. C.5): Acc(N, D) = p / (1 + exp(-(A/N^alpha + B/D^beta + E))) + q,
    fitted as (a, b, alpha, beta, E, p, q) with a = ln A, b = ln B."""

    name: str = field(default="bhagia2024_single_step", init=False)
    equation: str = field(default="Acc = p / (1 + exp(-(A/N^alpha + B/D^beta + E))) + q", init=False)
    inputs: tuple = field(default=("N", "D"), init=False)
    param_names: tuple = field(default=("a", "b", "alpha", "beta", "E", "p", "q"), init=False)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        a, b, alpha, beta, E, p, q = (theta[:, j:j + 1] for j in range(7))
        tN, tD = np.exp(a - alpha * logN), np.exp(b - beta * logD)
        s = _logistic(tN + tD + E)
        slope = p * s * (1.0 - s)
        acc = p * s + q
        J = np.stack([slope * tN, slope * tD, -logN * slope * tN, -logD * slope * tD, slope,
                      s, np.ones_like(s)], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(acc > 0, np.log(np.where(acc > 0, acc, 1.0)), np.nan)
            return f, J / acc[..., None]

    def natural(self, theta):
        out = super().natural(theta)
        out["A"], out["B"] = float(np.exp(out.pop("a"))), float(np.exp(out.pop("b")))
        return out

    def from_natural(self, A, B, alpha, beta, E, p, q):
        return np.array([np.log(A), np.log(B), alpha, beta, E, p, q], dtype=float)

    def default_starts(self):
        """The paper's start (single_step.py) for a 4-way task: (3, 5, 0.2, 0.3, 0, -0.75, 1)."""
        return np.array([[3.0, 5.0, 0.2, 0.3, 0.0, -0.75, 1.0]])


#: The forms registered by :mod:`scalerepro.analyses.law_registry`.
BHAGIA_LAWS: dict[str, Law] = {
    "sigmoid": Sigmoid(),
    "bhagia2024_task_loss": TaskLoss(),
    "bhagia2024_task_loss_flops": TaskLossFlops(),
    "bhagia2024_single_step": SingleStep(),
}

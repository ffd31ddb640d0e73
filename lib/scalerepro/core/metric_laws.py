"""Laws from a loss to a downstream metric (an average error or accuracy).

They are the second step of a chained prediction (:mod:`scalerepro.core.chained`): the
loss a loss law predicts goes in, the metric comes out. Each takes one input column,
``L`` (the loss), and like every :class:`~scalerepro.core.laws.Law` predicts the *log* of
its output, so the fitter's log-space objectives (Huber on log metric) and its raw-space
ones (least squares on the metric itself, ``objective="mse", space="raw"``) both apply.

Their coefficients are fitted raw (not as logs): a metric law's amplitude may take either
sign, which is how one form serves an error (rising with the loss) and an accuracy
(falling with it). :meth:`direction` says which way a fitted law points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .laws import Law


@dataclass(frozen=True)
class ExponentialMetric(Law):
    """Err(L) = eps - k exp(-gamma L) (Gadre et al. 2024, eq. 4).

    Because exp(-gamma L) = PPL^-gamma with PPL = e^L, this is a power law in perplexity,
    saturating at eps as the loss grows. With k, gamma > 0 the metric rises with the loss
    (an error: it falls as the loss falls); with k < 0 it falls with the loss (an accuracy).
    Where eps - k exp(-gamma L) <= 0 the log prediction is undefined (NaN), which the
    fitter treats as an infinite objective, so a step there is rejected.
    """

    name: str = field(default="exponential", init=False)
    equation: str = field(default="Err = eps - k exp(-gamma L)", init=False)
    inputs: tuple = field(default=("L",), init=False)
    param_names: tuple = field(default=("eps", "k", "gamma"), init=False)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        L = np.asarray(X, float)[:, 0][None, :]
        eps, k, gamma = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        with np.errstate(over="ignore", invalid="ignore"):
            decay = np.exp(-gamma * L)
            value = eps - k * decay
            inv = np.where(value > 0, 1.0 / np.where(value > 0, value, 1.0), np.nan)
            f = np.where(value > 0, np.log(np.where(value > 0, value, 1.0)), np.nan)
            J = np.stack([inv, -decay * inv, k * L * decay * inv], axis=-1)
        return f, J

    def natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"eps": float(theta[0]), "k": float(theta[1]), "gamma": float(theta[2])}

    def from_natural(self, eps, k, gamma):
        return np.array([eps, k, gamma], dtype=float)

    def default_starts(self):
        """scipy's default start (1, 1, 1), which Gadre et al.'s ``curve_fit`` call uses, one
        flatter error start, and an accuracy start (k < 0, eps = 0). Few on purpose: a start
        whose curve crosses zero at the data sits on an undefined log prediction and only
        costs iterations."""
        return np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 0.5], [0.0, -2.0, 0.5]])

    @staticmethod
    def direction(params: dict) -> str:
        """Which way the metric moves with the loss: dErr/dL = k gamma exp(-gamma L)."""
        slope = params["k"] * params["gamma"]
        if slope > 0:
            return "rises with the loss (an error: it falls as the loss falls)"
        if slope < 0:
            return "falls with the loss (an accuracy: it rises as the loss falls)"
        return "flat in the loss"


#: The metric laws defined here, by name (registered in :mod:`scalerepro.analyses.law_registry`).
METRIC_LAWS: dict[str, Law] = {"exponential": ExponentialMetric()}

"""Gadre et al. 2024's over-training loss law, as a :class:`~scalerepro.core.laws.Law` in (N, M).

The paper writes the loss in compute C = 6 N D and token multiplier M = D / N:

    L(C, M) = E + (a_p M^eta + b_p M^-eta) C^-eta     (the paper's a and b).

Substituting N = sqrt(C / (6 M)) and D = sqrt(C M / 6) shows that this is exactly the
Chinchilla form with one shared exponent (alpha = beta):

    L(N, D) = E + A N^-alpha + B D^-alpha,   alpha = 2 eta,  a_p = A 6^eta,  b_p = B 6^eta,

and the authors' code writes it as E + alpha_c N^b + beta_c 6^(b/2) (M N)^b with
b = -alpha, alpha_c = A and beta_c = b_p. At fixed M, L - E is a pure power law in C with
the same exponent eta for every M (parallel lines in log-log); M only moves the prefactor
a_p M^eta + b_p M^-eta, which is smallest at M* = (b_p / a_p)^(1 / (2 eta)).

The law takes (N, M) as inputs (D = M N) and is fitted in Chinchilla's log-sum-exp
parameterization (log A, log B, log E, alpha), by delegating to the tied Chinchilla law;
:meth:`OvertrainLaw.natural` reports the paper's parameters as ``E, eta, a_p, b_p`` (the
suffix because ``a`` and ``b`` name the allocation exponents N_opt ~ C^a, D_opt ~ C^b
throughout the library, which a fit of own runs samples next to the parameters) and the tied
Chinchilla form's ``A, B, alpha = beta``; :meth:`OvertrainLaw.code_form` the code's.
"""

from __future__ import annotations

import numpy as np

from ..core import optimal
from ..core.constraints import constrain
from ..core.laws import Chinchilla, Law
from ..core.metric_laws import METRIC_LAWS


class OvertrainLaw(Law):
    """L(N, M) = E + A N^-alpha + B (M N)^-alpha, i.e. L(C, M) = E + (a_p M^eta + b_p M^-eta) C^-eta."""

    name = "overtrain"
    equation = "L = E + (a_p M^eta + b_p M^-eta) C^-eta = E + A/N^alpha + B/D^alpha, D = M N"
    inputs = ("N", "M")
    param_names = ("log_A", "log_B", "log_E", "alpha")
    log_coefficients = {"log_A": "A", "log_B": "B", "log_E": "E"}

    def __init__(self):
        self.tied = constrain(Chinchilla(), tie={"beta": "alpha"})

    def __eq__(self, other):
        return type(other) is type(self)

    def __hash__(self):
        return hash(type(self))

    @staticmethod
    def nd(X) -> np.ndarray:
        """(N, M) columns as Chinchilla's (N, D = M N)."""
        X = np.asarray(X, float)
        return np.column_stack([X[:, 0], X[:, 0] * X[:, 1]])

    def log_predict(self, theta, X):
        return self.tied.log_predict(theta, self.nd(X))

    def log_predict_jac(self, theta, X):
        return self.tied.log_predict_jac(theta, self.nd(X))

    def objective_derivatives(self, theta, X, coefficients):
        return self.tied.objective_derivatives(theta, self.nd(X), coefficients)

    def natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        A, B, E, alpha = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2]), float(theta[3])
        eta = alpha / 2
        return {"E": float(E), "eta": eta, "a_p": float(A * 6 ** eta), "b_p": float(B * 6 ** eta),
                "A": float(A), "B": float(B), "alpha": alpha, "beta": alpha}

    def from_natural(self, E, eta=None, a_p=None, b_p=None, A=None, B=None, alpha=None, beta=None):
        """From the paper's (E, eta, a_p, b_p) or the tied Chinchilla form's (E, A, B, alpha[, beta = alpha])."""
        if beta is not None and alpha is not None and not np.isclose(beta, alpha):
            raise ValueError(f"the over-training law has one exponent: beta ({beta}) must equal alpha ({alpha})")
        if alpha is None:
            alpha, A, B = 2 * eta, a_p * 6 ** -eta, b_p * 6 ** -eta
        return np.array([np.log(A), np.log(B), np.log(E), alpha], dtype=float)

    @staticmethod
    def code_form(params: dict) -> dict:
        """The authors' code parameters (alpha_c, beta_c, b) of natural ``params``."""
        return {"alpha_c": params["A"], "beta_c": params["b_p"], "b": -params["alpha"], "E": params["E"]}

    @staticmethod
    def optimal_multiplier(params: dict):
        """The token multiplier that minimises the loss at fixed compute: (b_p / a_p)^(1 / (2 eta))."""
        return (np.asarray(params["b_p"]) / np.asarray(params["a_p"])) ** (1 / (2 * np.asarray(params["eta"])))

    def compute_optimal(self, params: dict, C) -> dict:
        """Hoffmann et al.'s allocation with alpha = beta (N, D both grow as C^0.5)."""
        return optimal.compute_optimal({**params, "beta": params["alpha"]}, C)

    def default_starts(self):
        """Gadre et al.'s 128-start grid (alpha_c, beta_c in {100, 300, 1000, 3000}, b in
        {-0.1, -0.3}, E in {0, 1, 2, 10}) in this parameterization; E = 0 (log E = -inf)
        becomes E = 0.01."""
        return gadre_start_grid(self)


def gadre_start_grid(law: OvertrainLaw) -> np.ndarray:
    """The authors' ``curve_fit_powlaw_ours`` grid, in loop order, as fitted vectors of ``law``."""
    rows = []
    for alpha_c in (100.0, 300.0, 1000.0, 3000.0):
        for beta_c in (100.0, 300.0, 1000.0, 3000.0):
            for b in (-0.1, -0.3):
                for E in (0.0, 1.0, 2.0, 10.0):
                    rows.append(law.from_natural(E=max(E, 0.01), eta=-b / 2, a_p=alpha_c * 6 ** (-b / 2), b_p=beta_c))
    return np.array(rows)


GADRE_LAWS: dict[str, Law] = {"overtrain": OvertrainLaw(), **METRIC_LAWS}

"""Kaplan et al. 2020's scaling laws as :class:`~scalerepro.core.laws.Law` objects, with their
published constants loaded from ``kaplan2020_constants.yaml`` (data, with its source).

Kaplan's forms have no irreducible loss term: every one is a pure power law, or a
combination of two, in a single "critical" scale (N_c, D_c, C_c, S_c). They are fitted
here as log L, with the log of each scale as the fitted parameter so that the
optimizer moves on a scale-free axis:

* L(N) = (N_c/N)^alpha_N, L(D) = (D_c/D)^alpha_D, L(C) = (C_c/C)^alpha_C (one input);
* L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D;
* L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from ..core.laws import Law, grid


@dataclass(frozen=True)
class KaplanPower(Law):
    """L(x) = (x_c / x)^alpha for one input x (N, D or C)."""

    variable: str
    scale: str
    exponent: str
    name: str = "kaplan_power"

    @property
    def inputs(self):
        return (self.variable,)

    @property
    def equation(self):
        return f"L = ({self.scale}/{self.variable})^{self.exponent}"

    @property
    def param_names(self):
        return (f"log_{self.scale}", self.exponent)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        u = theta[:, 0:1] - np.log(np.asarray(X, float)[:, 0])[None, :]
        f = theta[:, 1:2] * u
        return f, np.stack([np.broadcast_to(theta[:, 1:2], u.shape), u], axis=-1)

    def natural(self, theta):
        return {self.scale: float(np.exp(theta[0])), self.exponent: float(theta[1])}

    def from_natural(self, **kw):
        return np.array([np.log(kw[self.scale]), kw[self.exponent]])

    def default_starts(self):
        return grid(log_scale=np.arange(10.0, 71.0, 10.0), alpha=np.array([0.03, 0.1, 0.3]))


@dataclass(frozen=True)
class KaplanND(Law):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. eq. 1.5)."""

    name: str = "kaplan2020_nd"
    equation: str = "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
    inputs: tuple = ("N", "D")
    param_names: tuple = ("log_N_c", "log_D_c", "alpha_N", "alpha_D")
    log_coefficients = {"log_N_c": "N_c", "log_D_c": "D_c"}

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        X = np.asarray(X, float)
        an, ad = theta[:, 2:3], theta[:, 3:4]
        w = theta[:, 0:1] - np.log(X[:, 0])[None, :]
        u, v = an / ad * w, theta[:, 1:2] - np.log(X[:, 1])[None, :]
        s = np.logaddexp(u, v)
        p = np.exp(u - s)
        J = np.stack([p * an, ad * (1 - p), p * w, s - p * u], axis=-1)
        return ad * s, J

    def natural(self, theta):
        return {"N_c": float(np.exp(theta[0])), "D_c": float(np.exp(theta[1])),
                "alpha_N": float(theta[2]), "alpha_D": float(theta[3])}

    def from_natural(self, N_c, D_c, alpha_N, alpha_D):
        return np.array([np.log(N_c), np.log(D_c), alpha_N, alpha_D])

    def default_starts(self):
        return grid(log_N_c=np.arange(10.0, 51.0, 10.0), log_D_c=np.arange(10.0, 51.0, 10.0),
                    alpha_N=np.array([0.05, 0.1, 0.3]), alpha_D=np.array([0.05, 0.1, 0.3]))


@dataclass(frozen=True)
class KaplanNS(Law):
    """L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (Kaplan et al. eq. 1.6, S = S_min)."""

    name: str = "kaplan2020_ns"
    equation: str = "L = (N_c/N)^alpha_N + (S_c/S)^alpha_S"
    inputs: tuple = ("N", "S")
    param_names: tuple = ("log_N_c", "log_S_c", "alpha_N", "alpha_S")
    log_coefficients = {"log_N_c": "N_c", "log_S_c": "S_c"}

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        X = np.asarray(X, float)
        wn = theta[:, 0:1] - np.log(X[:, 0])[None, :]
        ws = theta[:, 1:2] - np.log(X[:, 1])[None, :]
        u, v = theta[:, 2:3] * wn, theta[:, 3:4] * ws
        s = np.logaddexp(u, v)
        p = np.exp(u - s)
        J = np.stack([p * theta[:, 2:3], (1 - p) * theta[:, 3:4], p * wn, (1 - p) * ws], axis=-1)
        return s, J

    def natural(self, theta):
        return {"N_c": float(np.exp(theta[0])), "S_c": float(np.exp(theta[1])),
                "alpha_N": float(theta[2]), "alpha_S": float(theta[3])}

    def from_natural(self, N_c, S_c, alpha_N, alpha_S):
        return np.array([np.log(N_c), np.log(S_c), alpha_N, alpha_S])

    def default_starts(self):
        return grid(log_N_c=np.arange(10.0, 51.0, 10.0), log_S_c=np.arange(0.0, 21.0, 5.0),
                    alpha_N=np.array([0.05, 0.1, 0.3]), alpha_S=np.array([0.3, 0.7, 1.0]))


@dataclass(frozen=True)
class ComputeWithE(Law):
    """L(C) = E + A C^-alpha: Kaplan's L(C) plus an irreducible loss, the form Porian et
    al. 2024 fit to the loss at the compute-optimal point. Fitted as
    log L = logaddexp(a - alpha log C, e) with a = log A, e = log E."""

    name: str = "kaplan2020_c_with_e"
    equation: str = "L = E + A C^-alpha"
    inputs: tuple = ("C",)
    param_names: tuple = ("a", "e", "alpha")
    log_coefficients = {"a": "A", "e": "E"}

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        logc = np.log(np.asarray(X, float)[:, 0])[None, :]
        u = theta[:, 0:1] - theta[:, 2:3] * logc
        f = np.logaddexp(u, theta[:, 1:2])
        p = np.exp(u - f)
        return f, np.stack([p, 1 - p, -p * logc], axis=-1)

    def natural(self, theta):
        return {"E": float(np.exp(theta[1])), "A": float(np.exp(theta[0])), "alpha": float(theta[2])}

    def from_natural(self, E, A, alpha):
        return np.array([np.log(A), np.log(E), alpha])

    def default_starts(self):
        """Porian et al.'s start grid (analysis.py, fit_loss_with_saturation)."""
        return grid(a=np.arange(0.0, 30.0, 5.0), e=np.arange(-1.0, 1.5, 0.5), alpha=np.arange(0.0, 0.4, 0.1))


KAPLAN_LAWS: dict[str, Law] = {
    "kaplan2020_n": KaplanPower("N", "N_c", "alpha_N", name="kaplan2020_n"),
    "kaplan2020_d": KaplanPower("D", "D_c", "alpha_D", name="kaplan2020_d"),
    "kaplan2020_c": KaplanPower("C", "C_c", "alpha_C", name="kaplan2020_c"),
    "kaplan2020_nd": KaplanND(),
    "kaplan2020_ns": KaplanNS(),
    "kaplan2020_c_with_e": ComputeWithE(),
}


@lru_cache(maxsize=1)
def constants() -> dict:
    """Kaplan et al.'s published constants and allocation rules, with sources."""
    text = resources.files(__package__).joinpath("kaplan2020_constants.yaml").read_text()
    return yaml.safe_load(text)


def published(name: str) -> tuple[Law, np.ndarray]:
    """The law and the fitted-parameter vector of Kaplan's published constants."""
    law = KAPLAN_LAWS[name]
    return law, law.from_natural(**{k: float(v) for k, v in constants()["laws"][name]["constants"].items()})

"""Constraints on a law's parameters as data: some held fixed, some tied to others.

``fit(law, X, y, fixed={"E": 1.69}, tie={"beta": "alpha"})`` fits :class:`Constrained`,
the law with those parameters removed from the fitted vector and filled back in before
every prediction. Names are the published ones (``E``, ``A``, ``B``, ``alpha``, ``beta``)
or the fitted ones (``e`` = log E, ...); a fixed value is given in published units. The
map from the free parameters to the law's is linear (a fixed coefficient is a constant,
a tie a copied column), so the Jacobian, gradient and Hessian of the constrained law are
the law's own times that map: no numerical derivatives.
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError
from .laws import Law


def fitted_name(law: Law, name: str) -> str:
    """The fitted-parameter name of ``name`` (published or fitted), or an error listing both kinds."""
    if name in law.param_names:
        return name
    for fitted, published in law.log_coefficients.items():
        if published == name and fitted in law.param_names:
            return fitted
    valid = sorted(set(law.param_names) | {law.log_coefficients.get(n, n) for n in law.param_names})
    raise FitError(f"{law.name} has no parameter {name!r}; valid: {', '.join(valid)}")


def to_fitted(law: Law, name: str, value: float) -> float:
    """A published value in the fitted coordinate (log for a log coefficient)."""
    fitted = fitted_name(law, name)
    if fitted != name and fitted in law.log_coefficients:
        if not value > 0:
            raise FitError(f"{name} = {value!r}: a coefficient fitted as a log must be positive")
        return float(np.log(value))
    return float(value)


class Constrained(Law):
    """``base`` with parameters held fixed (``{index: fitted value}``) or tied (``{index: source index}``)."""

    def __init__(self, base: Law, fixed: dict[int, float], tie: dict[int, int]):
        self.base, self.fixed, self.tie = base, dict(fixed), dict(tie)
        self.free = [i for i in range(base.n_params) if i not in self.fixed and i not in self.tie]
        names = base.param_names
        self.param_names = tuple(names[i] for i in self.free)
        self.inputs, self.equation = base.inputs, base.equation
        self.log_coefficients = {k: v for k, v in base.log_coefficients.items() if k in self.param_names}
        parts = [f"{base.log_coefficients.get(names[i], names[i])} = "
                 + (f"{np.exp(v):.6g}" if names[i] in base.log_coefficients else f"{v:.6g}") for i, v in self.fixed.items()]
        parts += [f"{names[i]} = {names[j]}" for i, j in self.tie.items()]
        self.name = f"{base.name} ({', '.join(parts)})"
        # d(full theta) / d(free theta): identity on the free columns, a tie copies its source
        self.map = np.zeros((base.n_params, len(self.free)))
        for k, i in enumerate(self.free):
            self.map[i, k] = 1.0
        for i, j in self.tie.items():
            self.map[i] = self.map[j]

    def full(self, theta) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, float))
        out = theta @ self.map.T
        for i, v in self.fixed.items():
            out[:, i] = v
        return out

    def log_predict_jac(self, theta, X):
        f, J = self.base.log_predict_jac(self.full(theta), X)
        return f, J @ self.map

    def objective_derivatives(self, theta, X, coefficients):
        f, g, H = self.base.objective_derivatives(self.full(theta), X, coefficients)
        return f, g @ self.map, np.einsum("pi,bpq,qj->bij", self.map, H, self.map)

    def natural(self, theta):
        return self.base.natural(self.full(theta)[0])

    def from_natural(self, **values):
        return self.base.from_natural(**values)[self.free]

    def default_starts(self):
        return self.free_starts(self.base.default_starts())

    def free_starts(self, starts) -> np.ndarray:
        """Starts given for the base law, as the distinct rows of their free columns in
        lexicographic order (as ``np.unique(..., axis=0)`` orders them, at a tenth of its cost:
        this runs on every constrained fit's 4500-start grid)."""
        free = np.asarray(starts, float)[:, self.free]
        free = free[np.lexsort(free.T[::-1])]
        return free[np.r_[True, (np.diff(free, axis=0) != 0).any(axis=1)]]

    def compute_optimal(self, params, C):
        return self.base.compute_optimal(params, C)

    @property
    def has_allocation(self) -> bool:
        return self.base.has_allocation

    def describe(self) -> dict:
        names = self.base.param_names
        return {**self.base.describe(), "name": self.name, "fitted_parameters": list(self.param_names),
                "fixed": {self.base.log_coefficients.get(names[i], names[i]):
                          float(np.exp(v)) if names[i] in self.base.log_coefficients else float(v)
                          for i, v in self.fixed.items()},
                "tied": {names[i]: names[j] for i, j in self.tie.items()}}


def constrain(law: Law, fixed: dict | None = None, tie: dict | None = None) -> Law:
    """``law`` with ``fixed`` (name -> published value) and ``tie`` (name -> name it equals)."""
    if not fixed and not tie:
        return law
    index = {n: i for i, n in enumerate(law.param_names)}
    fixed_at = {index[fitted_name(law, k)]: to_fitted(law, k, v) for k, v in (fixed or {}).items()}
    tied_to = {index[fitted_name(law, k)]: index[fitted_name(law, v)] for k, v in (tie or {}).items()}
    clash = set(fixed_at) & set(tied_to)
    chained = [k for k, v in tied_to.items() if v in tied_to or v in fixed_at]
    if clash or chained or any(k == v for k, v in tied_to.items()):
        raise FitError("a parameter can be fixed or tied to a free parameter, not both, nor tied to itself "
                       f"(fixed={fixed!r}, tie={tie!r})")
    return Constrained(law, fixed_at, tied_to)

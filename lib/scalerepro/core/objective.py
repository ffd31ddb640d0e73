"""The objectives a scaling law is fitted with, and their derivatives for a batch of
parameter vectors.

An :class:`Objective` is rho(residual) (Huber, MSE or MAE) on log or raw loss residuals,
summed or averaged over points. A :class:`Problem` binds it to a law and a data set (and
optionally one row of point weights per parameter vector, which is how bootstrap
resamples are represented) and evaluates value, gradient and Hessian for many parameter
vectors at once; both the Newton solver and the scipy optimizers use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FitError
from .laws import Law

OBJECTIVES = ("huber", "mse", "mae")
SPACES = ("log", "raw")
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Objective:
    """rho(residual) summed (or averaged) over points, residual in log or raw loss."""

    kind: str = "huber"
    delta: float = 1e-3
    space: str = "log"
    reduction: str = "sum"

    def __post_init__(self):
        for name, value, valid in (("objective", self.kind, OBJECTIVES),
                                   ("space", self.space, SPACES),
                                   ("reduction", self.reduction, REDUCTIONS)):
            if value not in valid:
                raise FitError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        if self.kind == "huber" and not (np.isfinite(self.delta) and self.delta > 0):
            raise FitError(f"huber delta must be a positive finite number, got {self.delta!r}")

    def terms(self, r, derivatives=True, majorize=None):
        """[rho] or [rho, psi, dpsi] in one pass sharing |r| (the fitter's inner loop).

        ``majorize`` (a boolean per row of r) replaces dpsi by psi(r)/r in those rows:
        the curvature of the quadratic that touches rho at r and lies above it
        everywhere (the IRLS weight). For Huber with a small delta dpsi is zero for
        almost every point, so the exact Hessian forgets that a residual beyond delta
        still costs |r|; the majorizer remembers it, which makes far-from-optimum steps
        both longer and safer."""
        if self.kind == "huber":
            a = np.abs(r)
            c = np.minimum(a, self.delta)
            if not derivatives:
                return [c * (a - 0.5 * c)]
            rho = c * (a - 0.5 * c)
            if majorize is None or not majorize.any():
                dpsi = (a <= self.delta).astype(float)
            elif majorize.all():
                with np.errstate(divide="ignore"):
                    dpsi = np.minimum(np.divide(self.delta, a, out=a), 1.0, out=a)
            else:
                dpsi = (a <= self.delta).astype(float)
                with np.errstate(divide="ignore"):
                    dpsi[majorize] = np.minimum(self.delta / a[majorize], 1.0)
            return [rho, np.copysign(c, r, out=c), dpsi]
        if self.kind == "mse":
            return [r * r] if not derivatives else [r * r, 2.0 * r, np.full_like(r, 2.0)]
        return [np.abs(r)] if not derivatives else [np.abs(r), np.sign(r), np.zeros_like(r)]

    def total(self, r, w=None):
        """Sum over each row of (w *) rho(r), written as row dot products so that no
        (rows, points) temporary beyond |r| and min(|r|, delta) is made: for Huber,
        rho = c |r| - c^2 / 2 with c = min(|r|, delta), all terms non-negative."""
        if self.kind != "huber":
            (rho,) = self.terms(r, False)
            return rho.sum(axis=1) if w is None else np.einsum("bn,bn->b", rho, np.broadcast_to(w, rho.shape))
        a = np.abs(r)
        c = np.minimum(a, self.delta)
        if w is not None:
            a *= w
            return np.einsum("bn,bn->b", c, a) - 0.5 * np.einsum("bn,bn,bn->b", c, c, np.broadcast_to(w, c.shape))
        return np.einsum("bn,bn->b", c, a) - 0.5 * np.einsum("bn,bn->b", c, c)

    def describe(self) -> dict:
        out = {"kind": self.kind, "space": self.space, "reduction": self.reduction}
        if self.kind == "huber":
            out["delta"] = self.delta
        out["text"] = (f"{'Huber (delta=%g)' % self.delta if self.kind == 'huber' else self.kind.upper()}"
                       f" on {'log ' if self.space == 'log' else 'raw '}loss residuals, "
                       f"{'summed' if self.reduction == 'sum' else 'averaged'} over points")
        return out


class Problem:
    """Objective, gradient and Hessian for a batch of parameter vectors.

    ``weights`` has shape ``(1, n)`` (one data set for all starts) or ``(B, n)`` (one
    bootstrap resample per row, as multiplicities); ``rows`` picks each vector's row.
    Unit weights are skipped rather than multiplied, since these passes over
    ``(starts, points)`` arrays are the fitter's whole cost.
    """

    def __init__(self, law: Law, X, y, objective: Objective, weights=None):
        self.law, self.X, self.objective = law, X, objective
        self.y = y
        self.target = np.log(y) if objective.space == "log" else y
        w = np.ones((1, len(y))) if weights is None else np.atleast_2d(np.asarray(weights, float))
        if w.shape[1] != len(y) or not np.isfinite(w).all() or (w < 0).any():
            raise FitError(f"weights must be finite, non-negative, with {len(y)} columns "
                           f"(one per point); got shape {w.shape}")
        self.weights = w
        self.unit = w.shape[0] == 1 and bool((w == 1).all())
        self.scale = 1.0 / w.sum(axis=1) if objective.reduction == "mean" else np.ones(w.shape[0])

    def _w(self, rows):
        """Weights (None for unit weights) and reduction scale for the requested rows;
        rows=None means one row per parameter vector, in order."""
        if self.weights.shape[0] == 1:
            return (None if self.unit else self.weights), self.scale[0]
        if rows is None:
            return self.weights, self.scale
        return self.weights[rows], self.scale[rows]

    def _terms(self, f, w, majorize=None):
        """rho, psi and dpsi of the residuals from the log prediction f, weighted."""
        raw = self.objective.space == "raw"
        s = np.exp(f) if raw else None
        r = (s if raw else f) - self.target
        out = self.objective.terms(r, True, majorize)
        if w is not None:
            out = [t * w for t in out]
        return out, s

    def value(self, theta, rows):
        w, scale = self._w(rows)
        f = self.law.log_predict(theta, self.X)
        raw = self.objective.space == "raw"
        v = self.objective.total((np.exp(f) if raw else f) - self.target, w) * scale
        return np.where(np.isfinite(v), v, np.inf)

    def value_grad(self, theta, rows):
        """Objective and gradient only: what scipy's quasi-Newton optimizers need, without
        the Hessian (a finite-difference Hessian for laws without an analytic one)."""
        w, scale = self._w(rows)
        f, J = self.law.log_predict_jac(theta, self.X)
        (rho, psi, _), s = self._terms(f, w)
        if s is not None:
            psi = psi * s
        scale = np.reshape(scale, (-1, 1))
        return rho.sum(axis=1) * scale[:, 0], np.einsum("bn,bnp->bp", psi, J) * scale

    def value_grad_hess(self, theta, rows, majorize=None):
        """Objective, gradient and Hessian; in the rows where ``majorize`` is True the
        Hessian's Gauss-Newton part uses the majorizing weights (see ``Objective.terms``)."""
        w, scale = self._w(rows)
        out = {}

        def coefficients(f):
            # d/dtheta of rho(r(f)) with r = f - log y (log space) or exp(f) - y (raw space):
            # gradient psi * dr/df, Gauss-Newton weight dpsi * (dr/df)^2, curvature psi * d2r/df2.
            (rho, psi, dpsi), s = self._terms(f, w, majorize)
            out["value"] = rho.sum(axis=1) * scale
            if s is None:
                return dpsi, psi, psi
            psi *= s
            dpsi *= s * s
            dpsi += psi
            return dpsi, psi, psi

        _, g, H = self.law.objective_derivatives(theta, self.X, coefficients)
        scale = np.reshape(scale, (-1, 1))
        return out["value"], g * scale, H * scale[..., None]

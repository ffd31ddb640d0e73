"""Functional forms of scaling laws, as objects the fitter can use.

Every law predicts the *log* of a loss from a table of raw inputs, because all of the
published protocols fit residuals in log space, and because the log-sum-exp
parameterization keeps every coefficient positive without bounds.

A law is vectorised over parameter vectors: ``theta`` has shape ``(B, p)`` — one row per
start or per bootstrap resample — and ``X`` has shape ``(n, k)`` with one column per name
in ``inputs``. It returns arrays of shape ``(B, n)`` (prediction), ``(B, n, p)``
(Jacobian) and optionally ``(B, n, p, p)`` (Hessian of the prediction). A law without an
analytic Hessian gets one by differencing its analytic Jacobian, so new forms plug into
the same Newton fitter by writing only ``log_predict_jac``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from . import optimal


class Law:
    """Base class: subclasses set the names and implement ``log_predict_jac``."""

    name: str = "law"
    equation: str = ""
    inputs: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()  # the fitted (internal) parameters, in order
    log_coefficients: dict = {}  # fitted name -> published name, for parameters fitted as a log

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def compute_optimal(self, params: dict, C) -> dict | None:
        """The compute-optimal allocation at budget(s) ``C`` (``N_opt``, ``D_opt``, ``a``, ``b``,
        tokens per parameter, ...) for a form that has one, from its natural ``params``;
        None for a form without one (e.g. a law of compute alone)."""
        return None

    @property
    def has_allocation(self) -> bool:
        """Whether the form provides a compute-optimal allocation (overrides
        :meth:`compute_optimal`): what fits of own runs ask before offering budgets."""
        return type(self).compute_optimal is not Law.compute_optimal

    def log_predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self.log_predict_jac(theta, X)[0]

    def log_predict_jac(self, theta: np.ndarray, X: np.ndarray):
        raise NotImplementedError

    def log_predict_hess(self, theta: np.ndarray, X: np.ndarray):
        """Prediction, Jacobian and Hessian; by default the Hessian is a central
        difference of the analytic Jacobian (accurate to ~1e-8 relative)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        f, J = self.log_predict_jac(theta, X)
        p = theta.shape[1]
        H = np.empty(J.shape + (p,))
        for j in range(p):
            h = 1e-5 * np.maximum(1.0, np.abs(theta[:, j]))
            tp, tm = theta.copy(), theta.copy()
            tp[:, j] += h
            tm[:, j] -= h
            H[..., j] = (self.log_predict_jac(tp, X)[1] - self.log_predict_jac(tm, X)[1]) / (
                2 * h[:, None, None]
            )
        return f, J, 0.5 * (H + np.swapaxes(H, -1, -2))

    def curvature(self, theta: np.ndarray, X: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Sum over points of ``c[b, n]`` times the Hessian of the log prediction:
        the second-order term of the objective's Hessian, shape ``(B, p, p)``.
        Computed in chunks of parameter vectors so that memory stays bounded."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = np.empty((theta.shape[0], self.n_params, self.n_params))
        for lo in range(0, theta.shape[0], 64):
            H = self.log_predict_hess(theta[lo:lo + 64], X)[2]
            out[lo:lo + 64] = np.einsum("bn,bnpq->bpq", c[lo:lo + 64], H)
        return out

    def objective_derivatives(self, theta, X, coefficients):
        """Prediction f, Jacobian J and the objective Hessian
        J^T diag(c_gn) J + sum_n c_curv[n] * Hess f[n], where ``coefficients(f)``
        returns (c_gn, c_curv, c_grad) from the residuals. The fitter calls this once per
        Newton iteration; laws may override it to share work between the pieces."""
        f, J = self.log_predict_jac(theta, X)
        c_gn, c_curv, c_grad = coefficients(f)
        H = np.swapaxes(J * c_gn[..., None], 1, 2) @ J + self.curvature(theta, X, c_curv)
        return f, np.einsum("bn,bnp->bp", c_grad, J), H

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Loss (not log) for one parameter vector: shape ``(n,)``."""
        return np.exp(self.log_predict(np.atleast_2d(theta), np.asarray(X, float))[0])

    def natural(self, theta: np.ndarray) -> dict[str, float]:
        """The published parameterization (e.g. E, A, B, alpha, beta) of one vector."""
        return dict(zip(self.param_names, map(float, theta)))

    def from_natural(self, **values: float) -> np.ndarray:
        """Inverse of :meth:`natural`."""
        return np.array([values[name] for name in self.param_names], dtype=float)

    def describe_drift(self, name: str, direction: float) -> str:
        """A parameter that keeps moving without bound, in words: 'e -> -inf (E -> 0)'."""
        text = f"{name} -> {'+' if direction > 0 else '-'}inf"
        if name in self.log_coefficients:
            text += f" ({self.log_coefficients[name]} -> {'infinity' if direction > 0 else '0'})"
        return text

    def default_starts(self) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no default start grid; pass starts=")

    def describe(self) -> dict:
        return {"name": self.name, "equation": self.equation, "inputs": list(self.inputs),
                "fitted_parameters": list(self.param_names)}


def grid(**axes) -> np.ndarray:
    """Cartesian grid of starts, columns in the order the keywords are given."""
    return np.array(list(itertools.product(*axes.values())), dtype=float)


@dataclass(frozen=True)
class Chinchilla(Law):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2).

    Fitted as log L = logsumexp(a - alpha log N, b - beta log D, e) with a = log A,
    b = log B, e = log E, following Hoffmann et al. and Besiroglu et al. 2024. The
    alpha = beta variant is this law with a tie, ``fit(Chinchilla(), X, y, tie={"beta":
    "alpha"})`` (registered as ``chinchilla_tied``), which the compiled kernel and the
    profile optimizer also run (see :func:`scalerepro.core.newton.chinchilla_form`).
    """

    log_coefficients = {"a": "A", "b": "B", "e": "E"}
    name: str = field(default="chinchilla", init=False)
    equation: str = field(default="L = E + A/N^alpha + B/D^beta", init=False)
    inputs: tuple = field(default=("N", "D"), init=False)
    param_names: tuple = field(default=("a", "b", "e", "alpha", "beta"), init=False)

    def compute_optimal(self, params: dict, C) -> dict:
        """Hoffmann et al.'s eq. 4 under C = 6ND (see :func:`scalerepro.core.optimal.compute_optimal`)."""
        return optimal.compute_optimal({"beta": params["alpha"], **params}, C)

    def _shifted_exp_terms(self, theta, X):
        """exp(t_k - m) for the three terms t_k = (a - alpha log N, b - beta log D, e).

        This is the inner loop of every fit, so it is written for few passes over the
        (B, n) arrays. The shift m is one number per parameter vector (the largest term
        over all points, found from the ranges of log N and log D), which makes
        exp(e - m) a column rather than an array, unless the terms span so many orders of
        magnitude across the points that a point's largest term could underflow; those
        rows shift point by point. Exponents are floored at -700: a term that small
        cannot change a sum whose largest term is at least e^-600, but a subnormal exp
        costs fifty times a normal one. Returns the three arrays (the third may be a
        column), m and the log inputs."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        a, b, e = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        alpha, beta = theta[:, 3:4], theta[:, 4:5]
        spanN = np.stack([alpha * logN.min(), alpha * logN.max()])
        spanD = np.stack([beta * logD.min(), beta * logD.max()])
        m = np.maximum(np.maximum(a - spanN.min(axis=0), b - spanD.min(axis=0)), e)
        floor = np.maximum(np.maximum(a - spanN.max(axis=0), b - spanD.max(axis=0)), e)
        e0 = alpha * logN
        e1 = beta * logD
        wide = (m - floor).ravel() > 600.0
        # the floor is only needed when some term somewhere falls below e^-700
        deep = wide.any() or bool((np.minimum(a - spanN.max(axis=0), b - spanD.max(axis=0)) - m).min() < -700.0)
        if wide.any():
            m = np.repeat(m, len(logN), axis=1)
            m[wide] = np.maximum(np.maximum(a[wide] - e0[wide], b[wide] - e1[wide]), e[wide])
        np.subtract(a - m, e0, out=e0)
        np.subtract(b - m, e1, out=e1)
        e2 = e - m
        for t in (e0, e1, e2):
            if deep:
                np.maximum(t, -700.0, out=t)
            np.exp(t, out=t)
        return (e0, e1, e2), m, logN, logD

    def _softmax_terms(self, theta, X):
        """log-sum-exp of the three terms and their softmax weights, written out for
        three terms because scipy's general logsumexp would dominate the run time."""
        (e0, e1, e2), m, logN, logD = self._shifted_exp_terms(theta, X)
        total = e0 + e1
        total += e2
        f = np.log(total)
        f += m
        np.reciprocal(total, out=total)
        e0 *= total
        e1 *= total
        return f, (e0, e1, e2 * total), logN, logD

    def _jacobian(self, P, logN, logD):
        return np.stack([P[0], P[1], P[2], -logN * P[0], -logD * P[1]], axis=-1)

    def _outer_features(self, logN, logD):
        """For each term k, the per-point outer product m_k m_k^T of dt_k/dtheta."""
        n, p = logN.shape[0], self.n_params
        M = np.zeros((3, n, p))
        M[0, :, 0], M[0, :, 3] = 1.0, -logN
        M[1, :, 1] = 1.0
        M[1, :, 4] = -logD
        M[2, :, 2] = 1.0
        return (M[..., :, None] * M[..., None, :]).reshape(3, n, p * p)

    def log_predict(self, theta, X):
        (e0, e1, e2), m, _, _ = self._shifted_exp_terms(theta, X)
        e0 += e1
        e0 += e2
        np.log(e0, out=e0)
        e0 += m
        return e0

    def log_predict_jac(self, theta, X):
        f, P, logN, logD = self._softmax_terms(theta, X)
        return f, self._jacobian(P, logN, logD)

    def curvature(self, theta, X, c):
        """Fast path: the Hessian of a log-sum-exp of terms linear in theta is
        M^T (diag P - P P^T) M, so the weighted sum over points reduces to three
        (B, n) @ (n, p*p) products plus one batched J^T diag(c) J."""
        f, P, logN, logD = self._softmax_terms(theta, X)
        J = self._jacobian(P, logN, logD)
        outer = self._outer_features(logN, logD)
        p = self.n_params
        first = sum((c * P[k]) @ outer[k] for k in range(3)).reshape(-1, p, p)
        return first - np.swapaxes(J * c[..., None], 1, 2) @ J

    def objective_derivatives(self, theta, X, coefficients):
        """Fast path: every entry of the objective's gradient and Hessian is a weighted
        sum over points of P_k, P_k P_l (k, l the three terms) times one of the features
        1, log N, log D and their pairwise products, so the whole (g, H) for a batch is
        elementwise products into one buffer and two small matrix products (BLAS), not
        a (B, n, p, p) tensor. See ``_chinchilla_assembly`` for the bookkeeping."""
        f, P, logN, logD = self._softmax_terms(theta, X)
        c_gn, c_curv, c_grad = coefficients(f)
        shared = c_grad is c_curv
        T = _chinchilla_assembly(shared)
        B, n = f.shape
        W = np.empty((B, T.shape[0], n))
        for k in range(3):
            np.multiply(c_curv, P[k], out=W[:, k])
        cross = c_gn - c_curv
        row = 3
        for k in range(3):
            ck = cross * P[k]
            for l in range(k, 3):
                np.multiply(ck, P[l], out=W[:, row])
                row += 1
        if not shared:
            for k in range(3):
                np.multiply(c_grad, P[k], out=W[:, row + k])
        F = np.stack([np.ones_like(logN), logN, logD, logN * logN, logD * logD, logN * logD], axis=1)
        # Stacked (per parameter vector) products: each is far below OpenBLAS's threading
        # threshold, whereas one big product would wake its thread pool, whose spinning
        # threads then slow every elementwise pass of the fit several-fold.
        S = ((W @ F).reshape(B, 1, -1) @ T.reshape(-1, T.shape[-1]))[:, 0]
        p = self.n_params
        return f, S[:, p * p:], S[:, :p * p].reshape(B, p, p)

    def log_predict_hess(self, theta, X):
        f, P, logN, logD = self._softmax_terms(theta, X)
        J = self._jacobian(P, logN, logD)
        p = self.n_params
        outer = self._outer_features(logN, logD).reshape(3, -1, p, p)
        H = sum(P[k][..., None, None] * outer[k] for k in range(3))
        return f, J, H - J[..., :, None] * J[..., None, :]

    def natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"E": float(np.exp(theta[2])), "A": float(np.exp(theta[0])),
                "B": float(np.exp(theta[1])), "alpha": float(theta[3]), "beta": float(theta[4])}

    def from_natural(self, E, A, B, alpha, beta=None):
        return np.array([np.log(A), np.log(B), np.log(E), alpha, alpha if beta is None else beta], dtype=float)

    def default_starts(self):
        """Hoffmann et al.'s grid: 4500 starts (900 with alpha = beta tied, whose
        constrained law keeps the distinct rows without beta)."""
        return grid(a=np.arange(0, 26, 5.0), b=np.arange(0, 26, 5.0), e=np.arange(-1, 1.01, 0.5),
                    alpha=np.arange(0, 2.01, 0.5), beta=np.arange(0, 2.01, 0.5))


@functools.lru_cache(maxsize=None)
def _chinchilla_assembly(shared_gradient: bool) -> np.ndarray:
    """Map from per-point weight sums to the Chinchilla objective's Hessian and gradient.

    Term k of the log-sum-exp is linear in theta with dt_k/dtheta = m_k, where
    m_0 = e_a - log N e_alpha, m_1 = e_b - log D e_beta, m_2 = e_e. With P_k the softmax
    weights, Hess f = sum_k P_k m_k m_k^T - J J^T and J = sum_k P_k m_k, so the objective
    Hessian sum_n [c_gn J J^T + c_curv Hess f] equals
    sum_k (c_curv P_k) m_k m_k^T + sum_{k,l} ((c_gn - c_curv) P_k P_l) m_k m_l^T, and the
    gradient is sum_k (c_grad P_k) m_k. Each weight row (u_0..u_2, v_00, v_01, v_02, v_11,
    v_12, v_22, and g_0..g_2 unless the gradient shares u) is summed against the features
    (1, L, M, L^2, M^2, L M) with L = log N, M = log D; this returns T of shape
    (rows, 6, p*p + p) with T[row, feature, out] the coefficient of that sum in each
    output entry (Hessian row-major, then gradient).
    """
    p = 5
    m = [((0, 0, 1.0), (3, 1, -1.0)), ((1, 0, 1.0), (4, 2, -1.0)), ((2, 0, 1.0),)]
    product = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (2, 2): 4, (1, 2): 5}
    pairs = [(k, k) for k in range(3)] + [(k, l) for k in range(3) for l in range(k, 3)]
    rows = len(pairs) + (0 if shared_gradient else 3)
    T = np.zeros((rows, 6, p * p + p))
    for row, (k, l) in enumerate(pairs):
        for mk, ml in ({(k, l), (l, k)} if k != l else {(k, k)}):
            for i, fi, si in m[mk]:
                for j, fj, sj in m[ml]:
                    T[row, product[min(fi, fj), max(fi, fj)], i * p + j] += si * sj
    for k in range(3):
        row = k if shared_gradient else len(pairs) + k
        for i, fi, si in m[k]:
            T[row, fi, p * p + i] += si
    return T


@dataclass(frozen=True)
class KaplanWithE(Law):
    """L(N, D) = ((A/N)^(alpha/beta) + B/D)^beta + E: Kaplan et al. 2020's joint form
    (eq. 1.5) with an irreducible term E, as fitted by Brandfonbrener et al. 2024.

    Fitted as log L = logsumexp(beta * S, e) with S = logsumexp((alpha/beta)(a - log N),
    b - log D), a = log A, b = log B, e = log E, so that, like the Chinchilla form, every
    coefficient stays positive without bounds. Under C = 6ND its compute-optimal N grows
    as C^(beta/(alpha+beta)), the same exponent as the Chinchilla form.
    """

    log_coefficients = {"a": "A", "b": "B", "e": "E"}
    name: str = field(default="kaplan_with_e", init=False)
    equation: str = field(default="L = ((A/N)^(alpha/beta) + B/D)^beta + E", init=False)
    inputs: tuple = field(default=("N", "D"), init=False)
    param_names: tuple = field(default=("a", "b", "e", "alpha", "beta"), init=False)

    def log_predict_jac(self, theta, X):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        X = np.asarray(X, dtype=float)
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        a, b, e = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        alpha, beta = theta[:, 3:4], theta[:, 4:5]
        gap = a - logN                      # log(A/N)
        u = alpha / beta * gap              # log of the parameter term
        v = b - logD                        # log of the data term
        m = np.maximum(u, v)
        eu, ev = np.exp(u - m), np.exp(v - m)
        S = m + np.log(eu + ev)             # log of the sum of the two terms
        p_u = eu / (eu + ev)
        t = beta * S                        # log of the power term
        mt = np.maximum(t, e)
        et, ee = np.exp(t - mt), np.exp(e - mt)
        f = mt + np.log(et + ee)
        w = et / (et + ee)                  # share of the power term in the loss
        J = np.stack([w * alpha * p_u,
                      w * beta * (1.0 - p_u),
                      1.0 - w,
                      w * p_u * gap,
                      w * (S - p_u * u)], axis=-1)
        return f, J

    def natural(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"E": float(np.exp(theta[2])), "A": float(np.exp(theta[0])),
                "B": float(np.exp(theta[1])), "alpha": float(theta[3]), "beta": float(theta[4])}

    def from_natural(self, E, A, B, alpha, beta):
        return np.array([np.log(A), np.log(B), np.log(E), alpha, beta], dtype=float)

    def default_starts(self):
        """Brandfonbrener et al.'s 16 starts: log A, log B in {5, 10, 15, 20}, log E = 0.5,
        alpha = beta = 0.4."""
        return grid(a=[5.0, 10, 15, 20], b=[5.0, 10, 15, 20], e=[0.5], alpha=[0.4], beta=[0.4])


#: The forms defined here, by name; :mod:`scalerepro.analyses.law_registry` adds the papers' own.
CORE_LAWS: dict[str, Law] = {"chinchilla": Chinchilla(), "kaplan_with_e": KaplanWithE(), "kaplan_nd": KaplanWithE()}

"""The Newton solver of :mod:`scalerepro.core.newton`, compiled for the Chinchilla form.

The batched numpy solver spends its time in passes over ``(starts, points)`` arrays, in
temporaries and in Python between them. For the Chinchilla family (the law of every
replication and the default of ``scalerepro fit``) this module runs the same iteration
per start as one compiled loop (numba), with the work cut to what the form needs
(each step measured on the 4500-start Chinchilla grid, see ``benchmarks/bench_fit.py``):

- exponentials are taken once per distinct N and distinct D, the logarithm once per
  distinct (N, D) design point; repeated runs of a design point (learning rates, seeds)
  only add a residual each;
- exp and log are straight-line arithmetic the compiler vectorises (four points per
  instruction), not libm calls, which were two thirds of the time;
- a trial point's per-point values are kept, so the derivatives at an accepted point
  cost no exponential at all; points of zero weight (the runs a bootstrap resample
  leaves out) are skipped;
- when the Hessian is positive definite and its Newton step fits in the trust radius,
  that step comes from a Cholesky solve; otherwise the 5 x 5 eigen-decomposition is a few
  Jacobi sweeps started from the previous iteration's eigenvectors.

Every start is independent of the others, so a start's result does not depend on the
batch or thread it runs in. The numpy solver stays the reference implementation (and
the solver of every other law); tests check that the two agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

HUBER, MSE = 0, 1
# A common shift of all points' log-sum-exp is safe while every point's largest term is
# within e^SHIFT_SPAN of the overall largest; beyond that, each design point is shifted
# by its own largest term (slower, rare: parameters hundreds of units from any fit).
SHIFT_SPAN = 600.0
# Exponents below this are floored: exp of them would be subnormal (fifty times slower)
# and cannot change a sum whose largest term is at least e^-SHIFT_SPAN.
DEEP = -700.0


# exp and log as straight-line arithmetic that the compiler vectorises (four doubles per
# AVX2 instruction): libm's exp and log are calls, one point at a time, and were two
# thirds of a fit's time. These two must be compiled without fast-math, whose
# reassociation would undo their rounding tricks.
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # LN2_HI * k is exact
ROUNDER = 6755399441055744.0  # 1.5 * 2^52: x + ROUNDER - ROUNDER rounds x to an integer
ROUNDER_BITS = int(np.array([ROUNDER]).view(np.int64)[0])


@njit(cache=True, nogil=True, error_model="numpy")
def _exp_nonpositive(x, out, n, rounded, bits):
    """out[:n] = exp(x[:n]) for DEEP <= x <= 0, to within 1 ulp: x = k ln 2 + r with
    |r| <= ln 2 / 2 (Cody-Waite), exp(r) by its Taylor series to r^13 (truncation below
    2e-16), times 2^k written directly into the exponent bits. ``rounded`` (float64) and
    ``bits`` (int64) are work arrays of at least n elements."""
    rounded_bits = rounded.view(np.int64)
    scale = bits.view(np.float64)
    for i in range(n):
        t = x[i] * LOG2E + ROUNDER
        rounded[i] = t
        k = t - ROUNDER
        r = (x[i] - k * LN2_HI) - k * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        out[i] = p * r + 1.0
    for i in range(n):
        bits[i] = (rounded_bits[i] - ROUNDER_BITS + 1023) << 52
    for i in range(n):
        out[i] *= scale[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _add_log_1_to_3(u, out, n):
    """out[:n] += log(u[:n]) for 1 <= u <= 3, to within 1 ulp of the result:
    log u = c + 2 atanh(z) with v = u (c = 0) or u / 2 (c = ln 2), whichever is in
    [0.75, 1.5], and z = (v - 1) / (v + 1), |z| <= 0.2, by its series to z^23."""
    for i in range(n):
        big = u[i] > 1.5
        v = u[i] * 0.5 if big else u[i]
        z = (v - 1.0) / (v + 1.0)
        z2 = z * z
        p = 1.0 / 23.0
        p = p * z2 + 1.0 / 21.0
        p = p * z2 + 1.0 / 19.0
        p = p * z2 + 1.0 / 17.0
        p = p * z2 + 1.0 / 15.0
        p = p * z2 + 1.0 / 13.0
        p = p * z2 + 1.0 / 11.0
        p = p * z2 + 1.0 / 9.0
        p = p * z2 + 1.0 / 7.0
        p = p * z2 + 1.0 / 5.0
        p = p * z2 + 1.0 / 3.0
        p = p * z2 + 1.0
        out[i] += (LN2 if big else 0.0) + 2.0 * z * p


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _evaluate(theta, tied, lN, lD, pair_N, pair_D, point_pair, target, w, span, kind, delta, raw,
              EN, ED, work, bits, pair_out, point_out):
    """Objective at ``theta`` (weighted sum over points, not yet scaled).

    Stores what the derivatives need: per design point the softmax weights P0, P1, P2
    of the three terms and the prediction (log, and raw for raw-space residuals) in
    ``pair_out`` (5, pairs), per point the residual in ``point_out``. Returns inf when
    the objective is not finite. ``work`` (4, n) and ``bits`` (n,) are scratch.

    Every term is shifted by the overall largest one, m, so the exponentials are taken
    once per distinct N and D; a design point's log-sum-exp is then m + its largest
    shifted term + log(sum / largest), the last argument in [1, 3]."""
    a, b, e, alpha = theta[0], theta[1], theta[2], theta[3]
    beta = alpha if tied else theta[4]
    lNmin, lNmax, lDmin, lDmax = span[0], span[1], span[2], span[3]
    n_N, n_D, n_pairs = lN.shape[0], lD.shape[0], pair_N.shape[0]
    P0, P1, P2, F, S = pair_out[0], pair_out[1], pair_out[2], pair_out[3], pair_out[4]
    XN, XD, U, rounded = work[0], work[1], work[2], work[3]
    hiN, loN = max(a - alpha * lNmin, a - alpha * lNmax), min(a - alpha * lNmin, a - alpha * lNmax)
    hiD, loD = max(b - beta * lDmin, b - beta * lDmax), min(b - beta * lDmin, b - beta * lDmax)
    m = max(hiN, max(hiD, e))
    if m - max(loN, max(loD, e)) <= SHIFT_SPAN:
        for j in range(n_N):
            XN[j] = max(a - alpha * lN[j] - m, DEEP)
        for j in range(n_D):
            XD[j] = max(b - beta * lD[j] - m, DEEP)
        _exp_nonpositive(XN, EN, n_N, rounded, bits)
        _exp_nonpositive(XD, ED, n_D, rounded, bits)
        x2 = max(e - m, DEEP)
        e2 = math.exp(x2)
        for k in range(n_pairs):
            jn, jd = pair_N[k], pair_D[k]
            p0, p1 = EN[jn], ED[jd]
            P0[k], P1[k], P2[k] = p0, p1, e2
            F[k] = m + max(XN[jn], max(XD[jd], x2))
            U[k] = (p0 + p1 + e2) / max(p0, max(p1, e2))
    else:
        # terms spanning more than e^SHIFT_SPAN across the points: each design point is
        # shifted by its own largest term (slower, rare)
        for k in range(n_pairs):
            t0 = a - alpha * lN[pair_N[k]]
            t1 = b - beta * lD[pair_D[k]]
            mk = max(t0, max(t1, e))
            P0[k] = math.exp(max(t0 - mk, DEEP))
            P1[k] = math.exp(max(t1 - mk, DEEP))
            P2[k] = math.exp(max(e - mk, DEEP))
            F[k] = mk
            U[k] = P0[k] + P1[k] + P2[k]
    _add_log_1_to_3(U, F, n_pairs)
    for k in range(n_pairs):
        inv = 1.0 / (P0[k] + P1[k] + P2[k])
        P0[k] *= inv
        P1[k] *= inv
        P2[k] *= inv
    if raw:
        for k in range(n_pairs):
            S[k] = math.exp(F[k])
    pred = S if raw else F
    total = 0.0
    for i in range(point_pair.shape[0]):
        r = pred[point_pair[i]] - target[i]
        point_out[i] = r
        if kind == HUBER:
            ar = abs(r)
            c = min(ar, delta)
            total += w[i] * (c * (ar - 0.5 * c))
        else:
            total += w[i] * (r * r)
    if not math.isfinite(total):
        return math.inf
    return total


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _derivatives(tied, lN, lD, pair_N, pair_D, point_pair, w, kind, delta, raw, majorize,
                 pair_in, point_in, CG, U, g, H):
    """Gradient and Hessian (weighted sums, not yet scaled) from what :func:`_evaluate`
    stored. With ``majorize`` the Gauss-Newton part uses the IRLS weight psi(r)/r of the
    Huber loss instead of its second derivative (see ``Objective.terms``).

    The points of a design point share its prediction, so their loss derivatives are
    summed first: CG = sum w dloss/df (gradient and curvature weight) and
    U = sum w (d2loss/df2 - dloss/df) (Gauss-Newton weight). With
    J = (P0, P1, P2, -log N P0, -log D P1) the Jacobian of the log prediction in
    (a, b, e, alpha, beta) and Hess f = sum_k P_k m_k m_k^T - J J^T (a log-sum-exp of
    terms t_k linear in theta, dt_k/dtheta = m_k), the objective's Hessian is
    sum [U J J^T + CG sum_k P_k m_k m_k^T]. The tied form (alpha = beta) is the same
    sums contracted by the chain rule."""
    n_pairs = pair_N.shape[0]
    S = pair_in[4]
    for k in range(n_pairs):
        CG[k] = 0.0
        U[k] = 0.0
    for i in range(point_pair.shape[0]):
        r = point_in[i]
        if kind == HUBER:
            ar = abs(r)
            psi = min(max(r, -delta), delta)
            if ar <= delta:
                dpsi = 1.0
            elif majorize:
                dpsi = delta / ar
            else:
                dpsi = 0.0
        else:
            psi = 2.0 * r
            dpsi = 2.0
        k = point_pair[i]
        if raw:
            # r = exp(f) - y: dr/df = d2r/df2 = S
            CG[k] += w[i] * psi * S[k]
            U[k] += w[i] * dpsi * S[k] * S[k]
        else:
            CG[k] += w[i] * psi
            U[k] += w[i] * (dpsi - psi)
    g0 = g1 = g2 = g3 = g4 = 0.0
    h00 = h01 = h02 = h03 = h04 = h11 = h12 = h13 = h14 = 0.0
    h22 = h23 = h24 = h33 = h34 = h44 = 0.0
    for k in range(n_pairs):
        P0, P1, P2 = pair_in[0, k], pair_in[1, k], pair_in[2, k]
        cg, u = CG[k], U[k]
        ln, ld = lN[pair_N[k]], lD[pair_D[k]]
        J3 = -ln * P0
        J4 = -ld * P1
        g0 += cg * P0
        g1 += cg * P1
        g2 += cg * P2
        g3 += cg * J3
        g4 += cg * J4
        u0, u1, u2, u3, u4 = u * P0, u * P1, u * P2, u * J3, u * J4
        c0, c1 = cg * P0, cg * P1
        h00 += u0 * P0 + c0
        h01 += u0 * P1
        h02 += u0 * P2
        h03 += u0 * J3 - ln * c0
        h04 += u0 * J4
        h11 += u1 * P1 + c1
        h12 += u1 * P2
        h13 += u1 * J3
        h14 += u1 * J4 - ld * c1
        h22 += u2 * P2 + cg * P2
        h23 += u2 * J3
        h24 += u2 * J4
        h33 += u3 * J3 + ln * ln * c0
        h34 += u3 * J4
        h44 += u4 * J4 + ld * ld * c1
    if tied:
        # theta = (a, b, e, alpha) with beta = alpha: d/dalpha = d/dalpha + d/dbeta
        g3 += g4
        h03 += h04
        h13 += h14
        h23 += h24
        h33 += 2.0 * h34 + h44
    g[0], g[1], g[2], g[3] = g0, g1, g2, g3
    H[0, 0], H[0, 1], H[0, 2], H[0, 3] = h00, h01, h02, h03
    H[1, 1], H[1, 2], H[1, 3] = h11, h12, h13
    H[2, 2], H[2, 3] = h22, h23
    H[3, 3] = h33
    if not tied:
        g[4] = g4
        H[0, 4], H[1, 4], H[2, 4], H[3, 4], H[4, 4] = h04, h14, h24, h34, h44
    p = g.shape[0]
    for i in range(p):
        for j in range(i + 1, p):
            H[j, i] = H[i, j]


@njit(cache=True, nogil=True, error_model="numpy")
def _symmetric_eigen(A, lam, V):
    """Eigenvalues ``lam`` and eigenvectors (columns of ``V``) of the small symmetric
    matrix ``A`` (overwritten), by cyclic Jacobi rotations.

    For a 5 x 5 matrix this is faster than a LAPACK call from compiled code, whose fixed
    cost is made for large matrices; and Jacobi's stopping rule (an off-diagonal entry
    counts as zero below eps times the geometric mean of its two diagonal entries) gives
    even the smallest eigenvalues of the badly conditioned Hessians of scaling-law fits
    to high relative accuracy."""
    p = A.shape[0]
    for i in range(p):
        for j in range(p):
            V[i, j] = 1.0 if i == j else 0.0
    for _ in range(60):
        rotated = False
        for i in range(p - 1):
            for j in range(i + 1, p):
                aij = A[i, j]
                if abs(aij) <= 2.2e-16 * math.sqrt(abs(A[i, i] * A[j, j])) or abs(aij) < 1e-300:
                    continue
                rotated = True
                theta = (A[j, j] - A[i, i]) / (2.0 * aij)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(p):
                    aki, akj = A[k, i], A[k, j]
                    A[k, i] = c * aki - s * akj
                    A[k, j] = s * aki + c * akj
                for k in range(p):
                    aik, ajk = A[i, k], A[j, k]
                    A[i, k] = c * aik - s * ajk
                    A[j, k] = s * aik + c * ajk
                A[i, j] = 0.0
                A[j, i] = 0.0
                for k in range(p):
                    vki, vkj = V[k, i], V[k, j]
                    V[k, i] = c * vki - s * vkj
                    V[k, j] = s * vki + c * vkj
        if not rotated:
            break
    for i in range(p):
        lam[i] = A[i, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _trust_steps(lam, Q, g, radius, factors, secular_iter, steps, radii, newton_flag, model, work):
    """``newton._trust_steps`` for one start, as loops over the p parameters: fills
    ``steps`` (C, p), ``radii`` (C,), ``newton_flag`` (C,) and ``model`` (C,), the
    decrease the model predicts for each step; returns the model's Newton decrement."""
    p = g.shape[0]
    curv, gq, newton, q = work[0], work[1], work[2], work[3]
    cmax = 0.0
    for i in range(p):
        curv[i] = abs(lam[i])
        cmax = max(cmax, curv[i])
    floor = 1e-15 * cmax + 1e-300
    newton_len2 = 0.0
    decrement = 0.0
    for i in range(p):
        curv[i] = max(curv[i], floor)
        acc = 0.0
        for k in range(p):
            acc += Q[k, i] * g[k]
        gq[i] = acc
        newton[i] = acc / curv[i]
        newton_len2 += newton[i] * newton[i]
        decrement += acc * newton[i]
    newton_len = math.sqrt(newton_len2)
    base = min(radius, newton_len)
    for c in range(factors.shape[0]):
        rc = factors[c] * base
        radii[c] = rc
        inside = rc >= newton_len
        newton_flag[c] = inside and factors[c] <= 1.0
        if inside:
            stretch = rc / max(newton_len, 1e-300)
            for i in range(p):
                q[i] = newton[i] * stretch
        else:
            nu = 0.0
            for _ in range(secular_iter):
                n2 = 0.0
                dsum = 0.0
                for i in range(p):
                    qi = gq[i] / (curv[i] + nu)
                    n2 += qi * qi
                    dsum += qi * qi / (curv[i] + nu)
                nn = math.sqrt(n2)
                nu = max(nu - (1.0 / nn - 1.0 / rc) / (dsum / (n2 * nn)), 0.0)
            for i in range(p):
                q[i] = gq[i] / (curv[i] + nu)
        decrease = 0.0
        for i in range(p):
            decrease += gq[i] * q[i] - 0.5 * curv[i] * q[i] * q[i]
        model[c] = decrease
        for k in range(p):
            acc = 0.0
            for i in range(p):
                acc += Q[k, i] * q[i]
            steps[c, k] = -acc
    return 0.5 * decrement


@njit(cache=True, nogil=True, error_model="numpy")
def _cholesky_newton(H, g, L, x):
    """x = H^-1 g by Cholesky; returns ||x||, or -1 if H is not numerically positive
    definite (a pivot below 1e-12 of the largest diagonal entry)."""
    p = g.shape[0]
    hmax = 0.0
    for i in range(p):
        hmax = max(hmax, H[i, i])
    for j in range(p):
        d = H[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 1e-12 * hmax:
            return -1.0
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, p):
            acc = H[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            L[i, j] = acc / L[j, j]
    for i in range(p):
        acc = g[i]
        for k in range(i):
            acc -= L[i, k] * x[k]
        x[i] = acc / L[i, i]
    norm2 = 0.0
    for i in range(p - 1, -1, -1):
        acc = x[i]
        for k in range(i + 1, p):
            acc -= L[k, i] * x[k]
        x[i] = acc / L[i, i]
        norm2 += x[i] * x[i]
    return math.sqrt(norm2)


@njit(cache=True, nogil=True, error_model="numpy")
def _model_steps(Hm, gm, radius, factors, secular_iter, Q, V, lam, steps, radii, newton_flag, model, work, work2,
                 A):
    """The eigen-decomposition of Hm (into lam, Q) and the trust-region steps of
    :func:`_trust_steps`; returns the model's Newton decrement. The Jacobi sweeps start
    from the previous decomposition's eigenvectors Q: the Hessian changes little between
    iterations, so Q^T Hm Q is nearly diagonal already."""
    p = gm.shape[0]
    for i in range(p):
        for j in range(p):
            acc = 0.0
            for k in range(p):
                acc += Hm[i, k] * Q[k, j]
            work2[i, j] = acc
    for i in range(p):
        for j in range(p):
            acc = 0.0
            for k in range(p):
                acc += Q[k, i] * work2[k, j]
            A[i, j] = acc
    _symmetric_eigen(A, lam, V)
    for i in range(p):
        for j in range(p):
            acc = 0.0
            for k in range(p):
                acc += Q[i, k] * V[k, j]
            work2[i, j] = acc
    Q[:, :] = work2
    return _trust_steps(lam, Q, gm, radius, factors, secular_iter, steps, radii, newton_flag, model, work)


@njit(cache=True, nogil=True, error_model="numpy")
def _compact(weights_row, lN_all, lD_all, pair_N_all, pair_D_all, point_pair_all, target_all,
             lN, lD, pair_N, pair_D, point_pair, target, w, span, mark_N, mark_D, mark_pair):
    """The data of one weight row without its zero-weight points: fills the leading
    parts of the output arrays and returns their lengths (N values, D values, design
    points, points); ``span`` gets the range of log N and log D."""
    mark_N[:] = -1
    mark_D[:] = -1
    mark_pair[:] = -1
    n_N = n_D = n_pairs = n = 0
    span[0] = span[2] = math.inf
    span[1] = span[3] = -math.inf
    for i in range(point_pair_all.shape[0]):
        if weights_row[i] == 0.0:
            continue
        k = point_pair_all[i]
        if mark_pair[k] < 0:
            jn, jd = pair_N_all[k], pair_D_all[k]
            if mark_N[jn] < 0:
                mark_N[jn] = n_N
                lN[n_N] = lN_all[jn]
                span[0] = min(span[0], lN_all[jn])
                span[1] = max(span[1], lN_all[jn])
                n_N += 1
            if mark_D[jd] < 0:
                mark_D[jd] = n_D
                lD[n_D] = lD_all[jd]
                span[2] = min(span[2], lD_all[jd])
                span[3] = max(span[3], lD_all[jd])
                n_D += 1
            mark_pair[k] = n_pairs
            pair_N[n_pairs] = mark_N[jn]
            pair_D[n_pairs] = mark_D[jd]
            n_pairs += 1
        point_pair[n] = mark_pair[k]
        target[n] = target_all[i]
        w[n] = weights_row[i]
        n += 1
    return n_N, n_D, n_pairs, n


@njit(cache=True, nogil=True, error_model="numpy")
def solve_starts(theta0, rows, weights, scale, lN_all, lD_all, pair_N_all, pair_D_all, point_pair_all,
                 target_all, tied, kind, delta, raw, lo, hi, factors, max_iter, ftol_rel, gtol,
                 radius_init, radius_max, radius_grow, secular_iter, exact_below, extend_above, start_exact,
                 theta_out, value_out, converged_out, iterations_out):
    """Run every start (row of ``theta0``, its weights ``weights[rows[s]]``) to its own
    stop with the iteration of ``newton._newton_pool`` (``newton.newton_batch`` describes
    the method and the options); fills the four outputs."""
    B, p = theta0.shape
    C = factors.shape[0]
    MODEL, SHORTER, LONGER = 0, 1, 2
    n_all, nN_all, nD_all, nP_all = point_pair_all.shape[0], lN_all.shape[0], lD_all.shape[0], pair_N_all.shape[0]
    lN_b, lD_b = np.empty(nN_all), np.empty(nD_all)
    pN_b, pD_b, pp_b = np.empty(nP_all, np.int64), np.empty(nP_all, np.int64), np.empty(n_all, np.int64)
    t_b, w_b = np.empty(n_all), np.empty(n_all)
    mark_N, mark_D, mark_pair = np.empty(nN_all, np.int64), np.empty(nD_all, np.int64), np.empty(nP_all, np.int64)
    span = np.empty(4)
    EN, ED = np.empty(nN_all), np.empty(nD_all)
    size = max(nN_all, max(nD_all, nP_all))
    work_eval, bits = np.empty((4, size)), np.empty(size, np.int64)
    CG, U = np.empty(nP_all), np.empty(nP_all)
    pair_slots = np.empty((C + 1, 5, nP_all))
    point_slots = np.empty((C + 1, n_all))
    g, H, gm, Hm = np.empty(p), np.empty((p, p)), np.empty(p), np.empty((p, p))
    lam, Q, V, work2 = np.empty(p), np.empty((p, p)), np.empty((p, p)), np.empty((p, p))
    L, newton_step, work3 = np.empty((p, p)), np.empty(p), np.empty((p, p))
    steps, cand = np.empty((C, p)), np.empty((C, p))
    radii, trial, model = np.empty(C), np.empty(C), np.empty(C)
    newton_flag, held = np.empty(C, dtype=np.bool_), np.empty(p, dtype=np.bool_)
    work = np.empty((4, p))
    theta = np.empty(p)
    last_row = -1
    sizes = (0, 0, 0, 0)
    for s in range(B):
        row = rows[s]
        if row != last_row:
            sizes = _compact(weights[row], lN_all, lD_all, pair_N_all, pair_D_all, point_pair_all, target_all,
                             lN_b, lD_b, pN_b, pD_b, pp_b, t_b, w_b, span, mark_N, mark_D, mark_pair)
            last_row = row
        lN, lD, pN, pD = lN_b[:sizes[0]], lD_b[:sizes[1]], pN_b[:sizes[2]], pD_b[:sizes[2]]
        pp, tg, ww = pp_b[:sizes[3]], t_b[:sizes[3]], w_b[:sizes[3]]
        sc = scale[row]
        for i in range(p):
            theta[i] = min(max(theta0[s, i], lo[i]), hi[i])
        radius = radius_init
        for i in range(p):
            for j in range(p):
                Q[i, j] = 1.0 if i == j else 0.0
        exact = start_exact
        converged = False
        it = 0
        cur = C  # the slot holding the current point's per-point values
        v = _evaluate(theta, tied, lN, lD, pN, pD, pp, tg, ww, span, kind, delta, raw,
                      EN, ED, work_eval, bits, pair_slots[cur], point_slots[cur]) * sc
        refresh = True
        while True:
            if refresh:
                _derivatives(tied, lN, lD, pN, pD, pp, ww, kind, delta, raw, not exact,
                             pair_slots[cur], point_slots[cur], CG, U, g, H)
                finite = math.isfinite(v)
                for i in range(p):
                    g[i] *= sc
                    finite = finite and math.isfinite(g[i])
                    for j in range(p):
                        H[i, j] *= sc
                        finite = finite and math.isfinite(H[i, j])
                if not finite:  # a start whose objective or derivatives are not finite stops
                    break
            it += 1
            # projected Newton: a parameter at a bound whose gradient points out of the box
            # is held there (its row and column decoupled), the others move freely
            for i in range(p):
                held[i] = (theta[i] <= lo[i] and g[i] > 0) or (theta[i] >= hi[i] and g[i] < 0)
                gm[i] = 0.0 if held[i] else g[i]
                for j in range(p):
                    Hm[i, j] = H[i, j]
            for i in range(p):
                if held[i]:
                    for j in range(p):
                        Hm[i, j] = 0.0
                        Hm[j, i] = 0.0
                    Hm[i, i] = 1.0
            # A positive definite Hessian whose Newton step fits in the trust radius makes
            # that step the model step (a Cholesky solve); the eigen-decomposition is needed
            # only otherwise, or for the shorter step if the model step fails.
            newton_len = _cholesky_newton(Hm, gm, L, newton_step)
            have_eigen = not (0.0 <= newton_len <= radius)
            if have_eigen:
                decrement = _model_steps(Hm, gm, radius, factors, secular_iter, Q, V, lam, steps, radii,
                                         newton_flag, model, work, work2, work3)
            else:
                decrement = 0.0
                for i in range(p):
                    decrement += 0.5 * gm[i] * newton_step[i]
                    for c in range(C):
                        if c != SHORTER:
                            steps[c, i] = -factors[c] * newton_step[i]
                for c in range(C):
                    radii[c] = factors[c] * newton_len
                    newton_flag[c] = factors[c] == 1.0
                model[MODEL] = decrement
            # The model step first. If it fails, the shorter step; if the radius held it back
            # and it gained at least extend_above of what the model predicted, the longer
            # step too, the better one kept (see newton.newton_batch).
            pick = MODEL
            c = MODEL
            while c >= 0:
                if c == SHORTER and not have_eigen:  # the shorter step needs the decomposition
                    _model_steps(Hm, gm, radius, factors, secular_iter, Q, V, lam, steps, radii,
                                 newton_flag, model, work, work2, work3)
                    have_eigen = True
                for i in range(p):
                    cand[c, i] = min(max(theta[i] + steps[c, i], lo[i]), hi[i])
                slot = c if c < cur else c + 1
                trial[c] = _evaluate(cand[c], tied, lN, lD, pN, pD, pp, tg, ww, span, kind, delta, raw,
                                     EN, ED, work_eval, bits, pair_slots[slot], point_slots[slot]) * sc
                if trial[c] < trial[pick]:
                    pick = c
                if c != MODEL:
                    c = -1
                elif not trial[MODEL] < v:
                    c = SHORTER
                elif C > LONGER and not newton_flag[MODEL] and v - trial[MODEL] >= extend_above * model[MODEL]:
                    c = LONGER
                else:
                    c = -1
            vt = trial[pick]
            better = vt < v
            scl = abs(v)
            gain = v - vt
            positive = True
            if have_eigen:
                lmin, lmax = lam[0], 0.0
                for i in range(p):
                    lmin = min(lmin, lam[i])
                    lmax = max(lmax, abs(lam[i]))
                # curvature more negative than the Hessian's own rounding (~n eps |H|) is real
                positive = lmin > -1e-12 * lmax
            model_newton = better and newton_flag[pick]
            gmax, tmax = 0.0, 1.0
            for i in range(p):
                gmax = max(gmax, abs(g[i]))
                tmax = max(tmax, abs(theta[i]))
            stop = ((exact and model_newton and positive and gain <= ftol_rel * scl)
                    or (exact and not better and positive and decrement <= ftol_rel * scl)
                    or (gmax <= gtol * scl)
                    or (not better and radii[MODEL] <= 1e-13 * tmax))
            converged = stop
            if better:
                radius = min(radius_grow * radii[pick], radius_max)
            else:
                radius = radii[SHORTER] / 4.0
            # majorized until its own Newton step gains little, exact from then on, back to
            # majorized (derivatives re-evaluated) whenever an exact-Hessian step fails
            was_exact = exact
            exact = (exact and better) or ((not exact) and model_newton and gain <= exact_below * scl)
            if better:
                for i in range(p):
                    theta[i] = cand[pick, i]
                v = vt
                cur = pick if pick < cur else pick + 1
            if stop or it >= max_iter:
                break
            refresh = better or was_exact
        for i in range(p):
            theta_out[s, i] = theta[i]
        value_out[s] = v
        converged_out[s] = converged
        iterations_out[s] = it


def design(X):
    """The data's design: distinct log N and log D values, each distinct (N, D) point as
    indices into them, and each row's design point."""
    logN, index_N = np.unique(np.log(X[:, 0]), return_inverse=True)
    logD, index_D = np.unique(np.log(X[:, 1]), return_inverse=True)
    pairs, point_pair = np.unique(np.column_stack([index_N, index_D]), axis=0, return_inverse=True)
    return (logN, logD, np.ascontiguousarray(pairs[:, 0], np.int64), np.ascontiguousarray(pairs[:, 1], np.int64),
            np.ascontiguousarray(point_pair.ravel(), np.int64))


def trial_factors(opt):
    """The radius factors of the trial steps: model (1), shorter, and longer if enabled."""
    longer = float(opt["longer_trial"])
    return np.array([1.0, opt["shorter_trial"]] + ([longer] if longer > 1.0 else []))


def solver_for(problem, bounds, opt, tied: bool = False):
    """A function ``(theta0, rows) -> (theta, value, converged, iterations)`` running
    :func:`solve_starts` on ``problem`` with the merged Newton options ``opt``; ``tied``: the
    law is the alpha = beta form, theta (a, b, e, exponent) (see
    :func:`scalerepro.core.newton.chinchilla_form`)."""
    law, objective = problem.law, problem.objective
    p = law.n_params
    logN, logD, pair_N, pair_D, point_pair = design(problem.X)
    lo = np.full(p, -np.inf) if bounds is None else np.asarray(bounds[0], float)
    hi = np.full(p, np.inf) if bounds is None else np.asarray(bounds[1], float)
    weights = np.ascontiguousarray(problem.weights, float)
    scale = np.ascontiguousarray(np.broadcast_to(problem.scale, (weights.shape[0],)), float)
    target = np.ascontiguousarray(problem.target, float)
    single_row = weights.shape[0] == 1

    def solve(theta0, rows):
        theta0 = np.ascontiguousarray(theta0, float)
        B = theta0.shape[0]
        rows = np.zeros(B, np.int64) if single_row else np.ascontiguousarray(rows, np.int64)
        theta, value = np.empty((B, p)), np.empty(B)
        converged, iterations = np.empty(B, np.bool_), np.empty(B, np.int64)
        solve_starts(theta0, rows, weights, scale, logN, logD, pair_N, pair_D, point_pair, target,
                     bool(tied), HUBER if objective.kind == "huber" else MSE,
                     float(objective.delta), objective.space == "raw", lo, hi,
                     trial_factors(opt), int(opt["max_iter"]), float(opt["ftol_rel"]),
                     float(opt["gtol"]), float(opt["radius_init"]), float(opt["radius_max"]),
                     float(opt["radius_grow"]), int(opt["secular_iter"]), float(opt["exact_below"]),
                     float(opt["extend_above"]), bool(opt["start_exact"]),
                     theta, value, converged, iterations)
        return theta, value, converged, iterations

    return solve

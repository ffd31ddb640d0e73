"""Comparing a published parameter vector with a fit, and summarising residuals."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def wald_test(estimate, covariance, published) -> dict:
    """Wald chi-square of H0: true parameters = ``published``.

    W = (theta_hat - theta_0)^T Cov^-1 (theta_hat - theta_0), chi-square with p degrees
    of freedom; Cov is typically the bootstrap covariance of the estimate.
    """
    from scipy import stats as sps  # on first use: scipy.stats costs every command a third of a second

    diff = np.asarray(estimate, float) - np.asarray(published, float)
    cov = np.atleast_2d(np.asarray(covariance, float))
    w = float(diff @ np.linalg.solve(cov, diff))
    df = diff.size
    return {"statistic": w, "df": df, "p_value": float(sps.chi2.sf(w, df)),
            "log10_p_value": float(sps.chi2.logsf(w, df) / np.log(10))}


def likelihood_ratio_test(log_residuals_fit, log_residuals_published, n_free: int) -> dict:
    """LR statistic for the published parameters against the refit, under a Gaussian
    likelihood on log residuals with the variance profiled out: LR = n log(RSS0/RSS1).
    """
    from scipy import stats as sps

    r1 = np.asarray(log_residuals_fit, float)
    r0 = np.asarray(log_residuals_published, float)
    n = r1.size
    lr = float(n * np.log(np.sum(r0 ** 2) / np.sum(r1 ** 2)))
    return {"statistic": lr, "df": n_free, "p_value": float(sps.chi2.sf(lr, n_free)),
            "log10_p_value": float(sps.chi2.logsf(lr, n_free) / np.log(10)),
            "likelihood": "Gaussian on log residuals, variance profiled"}


def residual_summary(predicted, observed) -> dict:
    """Residuals in loss units and in log loss."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    r = predicted - observed
    lr = np.log(predicted) - np.log(observed)
    return {"n": int(r.size), "rmse": float(np.sqrt(np.mean(r ** 2))),
            "mae": float(np.mean(np.abs(r))), "mean": float(np.mean(r)),
            "max_abs": float(np.max(np.abs(r))), "rmse_log": float(np.sqrt(np.mean(lr ** 2)))}


def interval_width_runs_needed(width: float, n_points: int, target_width: float) -> float:
    """Runs needed to shrink an interval from ``width`` to ``target_width`` if it
    narrows as 1/sqrt(n) (Besiroglu et al. 2024's argument about Hoffmann's CI)."""
    return float(n_points * (width / target_width) ** 2)


def percentile_interval(values, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``values``; (nan, nan) when
    there are none (every resample failed: the caller says so).

    Refits settled at an edge put 0 or +-inf among the values (see :func:`bootstrap`);
    interpolating towards an infinite sample is undefined, so then the ends are order
    statistics.
    """
    values = np.asarray(values, float)
    if values.size == 0:
        return float("nan"), float("nan")
    q = 100 * (1 - level) / 2
    method = "linear" if np.isfinite(values).all() else "inverted_cdf"
    lo, hi = np.percentile(values, [q, 100 - q], method=method)
    return float(lo), float(hi)


#: Chance that the outlier check names any point of a clean fit (Gaussian noise in the
#: fit's space): the threshold is Bonferroni's for this family-wise rate over the n points.
OUTLIER_FALSE_ALARM = 0.01
#: The threshold never goes below Iglewicz and Hoaglin's 3.5 for robust z-scores, so a fit
#: of a handful of points does not name one for an ordinary miss.
MIN_OUTLIER_Z = 3.5
#: 1 / Phi^-1(3/4): the median absolute deviation of Gaussian noise times this is its sd.
MAD_TO_SD = 1.482602218505602


def robust_scale(residuals) -> float:
    """The noise's standard deviation estimated from the median absolute deviation of
    ``residuals`` about their median: a few wild points (the ones to be found) barely move
    it, where the plain standard deviation would grow with them and hide them."""
    r = np.asarray(residuals, float)
    return float(MAD_TO_SD * np.median(np.abs(r - np.median(r))))


def robust_z(residuals) -> np.ndarray:
    """Residuals standardized by their median and :func:`robust_scale` (NaN when the scale
    is 0: an exact fit has no noise to compare with)."""
    r = np.asarray(residuals, float)
    scale = robust_scale(r)
    if not scale > 0:
        return np.full(r.shape, np.nan)
    return (r - np.median(r)) / scale


def outlier_threshold(n: int, false_alarm: float = OUTLIER_FALSE_ALARM) -> float:
    """The |robust z| above which one of ``n`` residuals is an outlier: the two-sided
    Gaussian quantile at ``false_alarm / n`` (Bonferroni), so that a clean fit of n points
    names none with probability about 1 - ``false_alarm`` (4.10 for 240 points, 3.5 at
    least)."""
    return float(max(MIN_OUTLIER_Z, -ndtri(false_alarm / (2 * max(int(n), 1)))))

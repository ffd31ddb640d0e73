"""Gadre et al. 2024's method: over-training loss law -> downstream error law, chained.

Three protocols on the testbed's runs (:func:`scalerepro.io.gadre2024.load_runs`):

* :func:`authors_fit` -- the authors' code exactly (``scaling/shared.py``, ``laws.py``): the
  loss law in its code form fitted by ``scipy.optimize.curve_fit`` (Levenberg-Marquardt,
  least squares on raw loss, maxfev 10,000) from their 128-start grid on 5 runs, the best
  start the first with the smallest sqrt(SSR / (n - 2)); the error law by one ``curve_fit``
  from scipy's default start on those runs plus the 1.4B run at M = 20; the target's error
  predicted at its *predicted* loss.
* :func:`toolkit_fit` -- the same two laws under this library's protocol: Huber on log
  residuals, every small-model run (all M) for the loss, a bootstrap over runs through both
  steps (:mod:`scalerepro.core.chained`).
* :func:`leave_one_out` and :func:`swap_overtrained_run` -- how much the 1.4B prediction
  hinges on one run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.optimize

from ..core.chained import ChainedFit, Step, fit_chained
from ..core.fit import FitResult, fit
from ..io.gadre2024 import select
from .gadre2024_laws import GADRE_LAWS, OvertrainLaw

LOSS = "loss_c4_val"
SMALL_MODELS = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
#: (model, M) of the authors' loss fit: the four small models at M = 20 and the smallest at M = 320.
AUTHORS_LOSS_RUNS = tuple((m, 20.0) for m in SMALL_MODELS) + (("d=96_l=8_h=4", 320.0),)
#: The error fit adds the 1.4B model at M = 20.
AUTHORS_ERROR_RUNS = AUTHORS_LOSS_RUNS + (("open_lm_1b", 20.0),)
#: Targets per training set: the over-trained 1.4B run that exists for it, and the 6.9B run.
TARGETS = {"rpj": (("open_lm_1b", 640.0), ("open_lm_7b", 20.0)),
           "c4_original": (("open_lm_1b", 80.0), ("open_lm_7b", 20.0)),
           "rw_original": (("open_lm_1b", 320.0), ("open_lm_7b", 20.0))}
LOSS_LAW: OvertrainLaw = GADRE_LAWS["overtrain"]
ERROR_LAW = GADRE_LAWS["exponential"]
RAW_LEAST_SQUARES = {"objective": "mse", "space": "raw"}


def code_form(NM, alpha_c, beta_c, b, E):
    """``powlaw_ours`` of the authors' laws.py: E + alpha_c N^b + beta_c 6^(b/2) (M N)^b."""
    N, M = NM
    return E + alpha_c * N ** b + beta_c * 6 ** (b / 2) * (M * N) ** b


def error_form(L, k, gamma, eps):
    """The error law as the authors' ``fit_ds`` lambda: parameters in the order (k, gamma, eps)."""
    return eps - k * np.exp(-gamma * L)


def authors_start_grid() -> list[tuple]:
    """``curve_fit_powlaw_ours``'s 128 starts (alpha_c, beta_c, b, E), in its loop order."""
    return [(a, b_, e, E) for a in (100, 300, 1000, 3000) for b_ in (100, 300, 1000, 3000)
            for e in (-0.1, -0.3) for E in (0, 1, 2, 10)]


def rows(runs: pd.DataFrame, dataset: str, keys) -> pd.DataFrame:
    """The runs of ``dataset`` with these (model, M), in that order."""
    return pd.DataFrame([select(runs, dataset, model, M) for model, M in keys])


def curve_fit_loss(N, M, loss) -> dict:
    """The authors' loss fit: 128 curve_fit calls, first best sqrt(SSR/(n-2)) kept (strict <)."""
    best, best_score, scores = None, np.inf, []
    x = np.vstack([np.asarray(N, float), np.asarray(M, float)])
    y = np.asarray(loss, float)
    for p0 in authors_start_grid():
        popt, _ = scipy.optimize.curve_fit(code_form, x, y, p0=p0, maxfev=10000)
        score = np.sqrt(np.sum((code_form(x, *popt) - y) ** 2) / (len(y) - 2))
        scores.append(score)
        if score < best_score:
            best, best_score = popt, score
    alpha_c, beta_c, b, E = map(float, best)
    out = {"code": {"alpha_c": alpha_c, "beta_c": beta_c, "b": b, "E": E},
           "predict": lambda N, M: code_form((np.asarray(N, float), np.asarray(M, float)), *best),
           "sse": float(np.sum((code_form(x, *best) - y) ** 2)), "start_scores": np.array(scores)}
    # the law's parameterization needs E, alpha_c, beta_c > 0 (unbounded curve_fit need not give them)
    positive = min(alpha_c, beta_c, E) > 0
    out["theta"] = LOSS_LAW.from_natural(E=E, A=alpha_c, B=beta_c * 6 ** (b / 2), alpha=-b) if positive else None
    out["params"] = (LOSS_LAW.natural(out["theta"]) if positive else
                     {"E": E, "eta": -b / 2, "a_p": alpha_c * 6 ** (-b / 2), "b_p": beta_c, "A": alpha_c,
                      "B": beta_c * 6 ** (b / 2), "alpha": -b})
    return out


def curve_fit_error(loss, err) -> dict:
    """The authors' error fit: one curve_fit from scipy's default start (k, gamma, eps) = (1, 1, 1)."""
    popt, _ = scipy.optimize.curve_fit(error_form, np.asarray(loss, float), np.asarray(err, float), maxfev=10000)
    k, gamma, eps = map(float, popt)
    return {"params": {"eps": eps, "k": k, "gamma": gamma}, "theta": ERROR_LAW.from_natural(eps, k, gamma),
            "sse": float(np.sum((error_form(np.asarray(loss, float), *popt) - np.asarray(err, float)) ** 2))}


def _targets(runs, dataset):
    frame = rows(runs, dataset, TARGETS[dataset])
    return frame, frame[["N", "M"]].to_numpy(float)


def _prediction_table(frame, loss_pred, err_pred, downstream) -> pd.DataFrame:
    out = pd.DataFrame({"target": [f"{m} M={M:g}" for m, M in zip(frame["model"], frame["M"])],
                        "N": frame["N"].to_numpy(), "M": frame["M"].to_numpy(), "C": frame["C"].to_numpy(),
                        "loss": frame[LOSS].to_numpy(), "loss_pred": loss_pred,
                        "err": frame[downstream].to_numpy(), "err_pred": err_pred})
    out["loss_rel_error_%"] = 100 * np.abs(out["loss_pred"] - out["loss"]) / out["loss"]
    out["err_rel_error_%"] = 100 * np.abs(out["err_pred"] - out["err"]) / out["err"]
    return out


def authors_fit(runs: pd.DataFrame, dataset: str = "rpj", downstream: str = "err17", library: bool = True) -> dict:
    """The authors' protocol on one training set: fits (curve_fit), the chained predictions, and
    (``library``) the same optimum by this library's fit (raw least squares from the same grid)."""
    loss_runs, err_runs = rows(runs, dataset, AUTHORS_LOSS_RUNS), rows(runs, dataset, AUTHORS_ERROR_RUNS)
    lf = curve_fit_loss(loss_runs["N"], loss_runs["M"], loss_runs[LOSS])
    ef = curve_fit_error(err_runs[LOSS], err_runs[downstream])
    frame, X = _targets(runs, dataset)
    loss_pred = lf["predict"](X[:, 0], X[:, 1])
    err_pred = error_form(loss_pred, ef["params"]["k"], ef["params"]["gamma"], ef["params"]["eps"])
    chained = None if not library else fit_chained(
        Step(LOSS_LAW, loss_runs[["N", "M"]].to_numpy(float), loss_runs[LOSS].to_numpy(), loss_runs["name"].to_numpy(),
             {**RAW_LEAST_SQUARES, "starts": LOSS_LAW.default_starts(), "warn": False}),
        Step(ERROR_LAW, err_runs[[LOSS]].to_numpy(float), err_runs[downstream].to_numpy(), err_runs["name"].to_numpy(),
             {**RAW_LEAST_SQUARES, "starts": np.array([[1.0, 1.0, 1.0]]), "warn": False}))
    return {"loss": lf, "error": ef, "table": _prediction_table(frame, loss_pred, err_pred, downstream),
            "library": chained, "loss_runs": loss_runs, "error_runs": err_runs}


def toolkit_runs(runs: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The toolkit protocol's runs: every small-model run (all M) for the loss step; those plus
    the 1.4B run at M = 20 (as in the authors' error fit) for the error step."""
    small = runs[(runs["dataset"] == dataset) & runs["model"].isin(SMALL_MODELS)].sort_values(["N", "M"])
    return small, pd.concat([small, rows(runs, dataset, [("open_lm_1b", 20.0)])])


def toolkit_fit(runs: pd.DataFrame, dataset: str = "rpj", downstream: str = "err17", delta: float = 1e-3) -> ChainedFit:
    """Both laws under the library's protocol: Huber (delta) on log residuals, summed."""
    loss_runs, err_runs = toolkit_runs(runs, dataset)
    huber = {"objective": "huber", "delta": delta, "space": "log", "warn": False}
    return fit_chained(
        Step(LOSS_LAW, loss_runs[["N", "M"]].to_numpy(float), loss_runs[LOSS].to_numpy(), loss_runs["name"].to_numpy(), huber),
        Step(ERROR_LAW, err_runs[[LOSS]].to_numpy(float), err_runs[downstream].to_numpy(), err_runs["name"].to_numpy(), huber))


def toolkit_table(chained: ChainedFit, runs, dataset, downstream, boot=None) -> pd.DataFrame:
    frame, X = _targets(runs, dataset)
    pred = chained.predict(X)
    out = _prediction_table(frame, pred["loss"], pred["metric"], downstream)
    if boot is not None:
        out["loss_lo"], out["loss_hi"] = boot.loss_intervals().T
        out["err_lo"], out["err_hi"] = boot.metric_intervals().T
        out["loss_in_interval"] = (out["loss_lo"] <= out["loss"]) & (out["loss"] <= out["loss_hi"])
        out["err_in_interval"] = (out["err_lo"] <= out["err"]) & (out["err"] <= out["err_hi"])
    return out


def _refit(result: FitResult, X, y, starts) -> FitResult:
    o = result.objective
    return fit(result.law, X, y, objective=o.kind, delta=o.delta, space=o.space, reduction=o.reduction,
               starts=starts, warn=False)


def leave_one_out(chained: ChainedFit, target_X) -> pd.DataFrame:
    """Refit the loss step without each of its runs in turn (warm-started from the full fit and
    from the law's grid), and predict the target(s) loss and chained error."""
    step = chained.step1
    out = []
    starts = np.vstack([chained.fit1.theta, chained.fit1.law.default_starts()[::32]])
    for run in dict.fromkeys(step.runs):
        keep = step.runs != run
        r = _refit(chained.fit1, step.X[keep], step.y[keep], starts)
        loss = r.predict(target_X)
        out.append({"left_out": run, "loss_pred": loss, "err_pred": chained.fit2.predict(loss[:, None]),
                    "converged": r.converged})
    return pd.DataFrame(out)


def swap_overtrained_run(runs: pd.DataFrame, dataset: str = "rpj", downstream: str = "err17") -> pd.DataFrame:
    """Gotcha 1: the authors' 5-run loss fit with its one over-trained run (0.011B at M = 320)
    replaced by each other small-model run at M != 20; the 1.4B and 6.9B loss errors."""
    base = rows(runs, dataset, AUTHORS_LOSS_RUNS[:4])
    frame, X = _targets(runs, dataset)
    small = runs[(runs["dataset"] == dataset) & runs["model"].isin(SMALL_MODELS) & (runs["M"] != 20)]
    out = []
    for run in small.itertuples():
        five = pd.concat([base, small[small["name"] == run.name]])
        lf = curve_fit_loss(five["N"], five["M"], five[LOSS])
        pred = lf["predict"](X[:, 0], X[:, 1])
        out.append({"overtrained_run": run.model, "M": run.M, "E": lf["code"]["E"], "beta_c": lf["code"]["beta_c"],
                    **{f"loss_rel_error_%_{m}": 100 * abs(p - o) / o
                       for m, p, o in zip(frame["model"], pred, frame[LOSS])}})
    return pd.DataFrame(out)


def protocol_variants(runs: pd.DataFrame, dataset: str = "rpj", downstream: str = "err17",
                      base: dict | None = None) -> pd.DataFrame:
    """The authors' protocol with one detail changed at a time (the reference note's gotchas 2-4):
    N without embeddings (D unchanged, so M = D / N_no_embed); least squares on log loss (this
    library's fit from the same 128 starts); the error law at the target's measured loss instead
    of the predicted one. Relative errors (%) at both targets. ``base``: :func:`authors_fit`'s
    result for the same set and split, if already made."""
    base = base or authors_fit(runs, dataset, downstream, library=False)
    frame, X = _targets(runs, dataset)
    table = base["table"]
    out = [{"variant": "the authors' protocol", **_errors(table["loss_rel_error_%"], table["err_rel_error_%"], frame)}]
    loss_runs = rows(runs, dataset, AUTHORS_LOSS_RUNS)
    no_embed = curve_fit_loss(loss_runs["N_no_embed"], loss_runs["D"] / loss_runs["N_no_embed"], loss_runs[LOSS])
    pred = no_embed["predict"](frame["N_no_embed"].to_numpy(), (frame["D"] / frame["N_no_embed"]).to_numpy())
    out.append({"variant": "N without embeddings (params_no_embed)",
                **_errors(_rel(pred, frame[LOSS]), None, frame)})
    log_fit = fit(LOSS_LAW, loss_runs[["N", "M"]].to_numpy(float), loss_runs[LOSS].to_numpy(), objective="mse",
                  space="log", starts=LOSS_LAW.default_starts(), warn=False)
    out.append({"variant": "least squares on log loss", **_errors(_rel(log_fit.predict(X), frame[LOSS]), None, frame)})
    e = base["error"]["params"]
    measured = error_form(frame[LOSS].to_numpy(), e["k"], e["gamma"], e["eps"])
    out.append({"variant": "error law at the measured (not predicted) loss",
                **_errors(None, _rel(measured, frame[downstream]), frame)})
    return pd.DataFrame(out)


def _rel(pred, observed) -> np.ndarray:
    observed = np.asarray(observed, float)
    return 100 * np.abs(np.asarray(pred, float) - observed) / observed


def _errors(loss_err, err_err, frame) -> dict:
    out = {}
    for i, model in enumerate(frame["model"]):
        out[f"loss_rel_error_%_{model}"] = None if loss_err is None else float(np.asarray(loss_err)[i])
        out[f"err_rel_error_%_{model}"] = None if err_err is None else float(np.asarray(err_err)[i])
    return out

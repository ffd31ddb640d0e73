"""Two-step (chained) predictions: a loss law feeds a law from loss to a downstream metric.

Gadre et al. 2024 (and Bhagia et al. 2024's task ladder) predict a large model's downstream
metric in two steps: step 1 fits the loss from the run's size (N, D, M, ...) on small runs;
step 2 fits the metric from the loss; the target's metric is step 2's law evaluated at the
loss step 1 *predicts* for it, not at a measured loss (which a model not yet trained does
not have). The error of step 1 therefore propagates into step 2.

The interval must carry both steps' uncertainty, and the two fits share runs (a run's loss
enters step 1 and, with its metric, step 2). :meth:`ChainedFit.bootstrap` therefore draws
whole runs with replacement once per resample, over the union of both steps' run labels,
and refits both steps on that same draw: each row weighted by its run's multiplicity. Rows
without a run label (an anchor point, say) keep weight 1 in every resample. Both steps are
refitted by :func:`scalerepro.core.bootstrap.bootstrap` with the precomputed weights,
vectorised over resamples; only resamples where both refits succeeded give a prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError
from ..summary import Row, Summary
from .bootstrap import BootstrapResult, bootstrap
from .fit import FitResult, fit
from .laws import Law
from .stats import percentile_interval


@dataclass
class Step:
    """One step of a chained prediction: ``law`` fitted to ``y`` at inputs ``X``.

    ``runs``: the run each row comes from (resampled as a whole by the bootstrap); None or ""
    marks a row kept in every resample (an anchor point). ``runs=None`` labels row i "row i",
    its own run: two steps built on the same rows in the same order (step 2's input being the
    loss of step 1's rows) then share each run, as they should; steps whose rows differ must be
    given labels (:func:`fit_chained` refuses otherwise). ``fit_kwargs``: passed to
    :func:`scalerepro.core.fit.fit` (objective, space, reduction, starts, optimizer, bounds, ...)."""

    law: Law
    X: np.ndarray
    y: np.ndarray
    runs: np.ndarray | None = None
    fit_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.X = np.atleast_2d(np.asarray(self.X, float))
        if self.X.shape[0] == 1 and len(self.law.inputs) == 1 and np.ndim(self.y) == 1 and len(self.y) > 1:
            self.X = self.X.T  # a single input given as a flat vector
        self.y = np.asarray(self.y, float)
        self.unlabelled = self.runs is None
        if self.unlabelled:
            self.runs = np.array([f"row {i}" for i in range(len(self.y))], dtype=object)
        self.runs = np.array(["" if r is None or (isinstance(r, float) and np.isnan(r)) else str(r)
                              for r in self.runs], dtype=object)
        if len(self.runs) != len(self.y) or self.X.shape[0] != len(self.y):
            raise FitError(f"{self.law.name} step: X has {self.X.shape[0]} rows, y {len(self.y)}, "
                           f"runs {len(self.runs)}; give one of each per row")


def run_weights(steps: list[Step], n_resamples: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """One draw of whole runs per resample, shared by all steps: each step's ``(R, n)``
    multiplicities (anchor rows 1) and the run labels drawn from (their union, sorted)."""
    labels = np.array(sorted({r for s in steps for r in s.runs if r}), dtype=object)
    if labels.size == 0:
        raise FitError("no run labels to resample: every row is an anchor")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=n_resamples).astype(float)
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for s in steps:
        w = np.ones((n_resamples, len(s.y)))
        labelled = np.array([bool(r) for r in s.runs])
        if labelled.any():
            w[:, labelled] = counts[:, [index[r] for r in s.runs[labelled]]]
        out.append(w)
    return out, labels


@dataclass
class ChainedBootstrap:
    """Bootstrap intervals of a chained prediction at each target."""

    targets: np.ndarray               # (T, k) step-1 inputs of the targets
    loss_samples: np.ndarray          # (R_ok, T) predicted losses, resamples where both steps succeeded
    metric_samples: np.ndarray        # (R_ok, T) step 2 at those predicted losses
    point_loss: np.ndarray            # (T,) full-data predictions
    point_metric: np.ndarray
    step1: BootstrapResult
    step2: BootstrapResult
    n_resamples: int
    n_runs: int                       # distinct run labels drawn from
    seed: int
    level: float
    seconds: float
    input_names: tuple = ()

    @property
    def n_used(self) -> int:
        return len(self.loss_samples)

    @property
    def n_failed(self) -> int:
        return self.n_resamples - self.n_used

    def _intervals(self, samples, level=None):
        level = self.level if level is None else level
        return np.array([percentile_interval(samples[:, t], level) for t in range(samples.shape[1])]).reshape(-1, 2)

    def loss_intervals(self, level: float | None = None) -> np.ndarray:
        """``(T, 2)`` percentile intervals of the predicted loss."""
        return self._intervals(self.loss_samples, level)

    def metric_intervals(self, level: float | None = None) -> np.ndarray:
        """``(T, 2)`` percentile intervals of the chained metric prediction."""
        return self._intervals(self.metric_samples, level)

    def warnings(self) -> list[str]:
        out = []
        if self.n_failed:
            out.append(f"{self.n_failed} of {self.n_resamples} resamples had a refit that failed in one step "
                       f"(loss step {self.step1.n_failed}, metric step {self.step2.n_failed}) and were excluded")
        return out

    def record(self) -> dict:
        return {
            "method": "nonparametric bootstrap over runs, both steps refitted on the same draw; percentile intervals",
            "resampling": f"whole runs with replacement ({self.n_runs} runs, union of both steps; "
                          "rows without a run label kept with weight 1)",
            "n_resamples": self.n_resamples, "n_used": self.n_used, "n_failed": self.n_failed,
            "seed": self.seed, "level": self.level,
            "targets": [dict(zip(self.input_names, map(float, t))) for t in self.targets],
            "loss": {"point": self.point_loss.tolist(), "intervals": self.loss_intervals().tolist()},
            "metric": {"point": self.point_metric.tolist(), "intervals": self.metric_intervals().tolist()},
            "step1_bootstrap": self.step1.record(), "step2_bootstrap": self.step2.record(),
            "warnings": self.warnings(), "seconds": round(self.seconds, 4),
        }

    def summary(self) -> Summary:
        rec = self.record()
        rows = []
        for t, target in enumerate(rec["targets"]):
            where = ", ".join(f"{k}={v:.4g}" for k, v in target.items())
            rows.append(Row(f"loss at {where}", rec["loss"]["point"][t], tuple(rec["loss"]["intervals"][t])))
            rows.append(Row(f"metric at {where}", rec["metric"]["point"][t], tuple(rec["metric"]["intervals"][t])))
        notes = [f"method: {rec['method']}", f"resampling: {rec['resampling']}, seed {rec['seed']}",
                 f"{rec['n_used']} of {rec['n_resamples']} resamples used"]
        notes += [f"warning: {w}" for w in rec["warnings"]]
        return Summary(f"chained prediction: bootstrap of {rec['n_resamples']} resamples", rows, notes, level=self.level)


@dataclass
class ChainedFit:
    """Both steps' fits; the metric at a target is step 2's law at step 1's predicted loss."""

    step1: Step
    step2: Step
    fit1: FitResult
    fit2: FitResult

    def predict(self, X_target) -> dict:
        """``{"loss": (T,), "metric": (T,)}`` at step-1 inputs ``X_target`` ``(T, k)``."""
        X_target = np.atleast_2d(np.asarray(X_target, float))
        loss = self.fit1.predict(X_target)
        return {"loss": loss, "metric": self.fit2.predict(loss[:, None])}

    def metric_at_loss(self, loss) -> np.ndarray:
        """Step 2 alone, at given (e.g. measured) losses: what the chain is *not*."""
        return self.fit2.predict(np.asarray(loss, float).reshape(-1, 1))

    def bootstrap(self, X_target, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                  progress: bool = False, client=None) -> ChainedBootstrap:
        """Refit both steps on ``n_resamples`` draws of whole runs (the same draw for both) and
        give percentile intervals of the predicted loss and metric at each target."""
        t0 = time.perf_counter()
        X_target = np.atleast_2d(np.asarray(X_target, float))
        (w1, w2), labels = run_weights([self.step1, self.step2], n_resamples, seed)
        b1 = bootstrap(self.fit1, weights=w1, seed=seed, level=level, progress=progress, client=client)
        b2 = bootstrap(self.fit2, weights=w2, seed=seed, level=level, progress=progress, client=client)
        both = b1.succeeded & b2.succeeded
        theta1 = _aligned(b1, both)
        theta2 = _aligned(b2, both)
        law1, law2 = self.fit1.law, self.fit2.law
        with np.errstate(all="ignore"):
            loss = np.exp(law1.log_predict(theta1, X_target)) if len(theta1) else np.empty((0, len(X_target)))
            metric = np.array([law2.predict(t, l[:, None]) for t, l in zip(theta2, loss)]).reshape(loss.shape)
        point = self.predict(X_target)
        return ChainedBootstrap(
            targets=X_target, loss_samples=loss, metric_samples=metric, point_loss=point["loss"],
            point_metric=point["metric"], step1=b1, step2=b2, n_resamples=n_resamples, n_runs=len(labels),
            seed=seed, level=level, seconds=time.perf_counter() - t0, input_names=tuple(law1.inputs))

    def record(self) -> dict:
        """How each step was fitted (the fits' own records) and the chain's structure."""
        return {"method": "chained prediction: step 2's law evaluated at step 1's predicted loss",
                "step1": {**self.fit1.record(), "runs": sorted(set(self.step1.runs) - {""}),
                          "anchor_rows": int((self.step1.runs == "").sum())},
                "step2": {**self.fit2.record(), "runs": sorted(set(self.step2.runs) - {""}),
                          "anchor_rows": int((self.step2.runs == "").sum())}}

    def summary(self, bootstrap: ChainedBootstrap | None = None) -> Summary:
        rows = [Row(f"step 1 {k}", v) for k, v in self.fit1.params.items()]
        rows += [Row(f"step 2 {k}", v) for k, v in self.fit2.params.items()]
        notes = [f"step 1: {self.fit1.law.equation}; {self.fit1.objective.describe()['text']}; "
                 f"{self.fit1.points_used} points; {self.fit1.outcome}",
                 f"step 2: {self.fit2.law.equation}; {self.fit2.objective.describe()['text']}; "
                 f"{self.fit2.points_used} points; {self.fit2.outcome}",
                 "the metric at a target is step 2 evaluated at step 1's predicted loss"]
        out = Summary("chained fit (loss law -> metric law)", rows, notes)
        if bootstrap is not None:
            extra = bootstrap.summary()
            out = Summary(out.title, out.rows + extra.rows, out.notes + extra.notes, level=extra.level)
        return out


def _aligned(result: BootstrapResult, keep: np.ndarray) -> np.ndarray:
    """Fitted vectors of the resamples in ``keep`` (all of which succeeded in ``result``)."""
    position = np.cumsum(result.succeeded) - 1
    return result.theta_samples[position[keep]]


def fit_chained(step1: Step, step2: Step) -> ChainedFit:
    """Fit both steps, each with its own ``fit_kwargs``. Step 2's law takes one input, the loss."""
    if len(step2.law.inputs) != 1:
        raise FitError(f"step 2's law {step2.law.name} must take one input (the loss); "
                       f"it takes {list(step2.law.inputs)}")
    if (step1.unlabelled or step2.unlabelled) and len(step1.y) != len(step2.y):
        raise FitError(f"the steps have {len(step1.y)} and {len(step2.y)} rows: give each step's runs, so that "
                       "the bootstrap can resample a run through both")
    fit1 = fit(step1.law, step1.X, step1.y, **step1.fit_kwargs)
    fit2 = fit(step2.law, step2.X, step2.y, **step2.fit_kwargs)
    return ChainedFit(step1, step2, fit1, fit2)

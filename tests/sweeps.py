"""Synthetic sweeps shaped like real ones, drawn from a known Chinchilla-form law.

Real sweeps are not the clean one-row-per-run tables a fit wants: a learning-rate sweep has
several runs per (N, D), runs log checkpoints, a "ladder" keeps tokens per parameter fixed,
an IsoFLOP design has many runs tied at the largest compute, and a small study has a
handful of points for five parameters. Each builder here makes one of these shapes with a
known answer (:data:`TRUTH`), named columns as a real export would have them, and
deterministic noise, so tests of ``scalerepro fit`` (and of anything that reads runs the
same way) can check that the right thing happens and that each diagnostic fires where it
should. ``write(frame, path)`` saves one as the CSV a user would bring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import law_runs
from scalerepro.core import laws, optimal

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
sys.path.insert(0, str(EXAMPLES))
import make_lr_sweep  # noqa: E402

TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
CHINCHILLA = laws.Chinchilla()


def law_loss(N, D, truth=TRUTH):
    """The noiseless loss of the known law at (N, D)."""
    N, D = np.broadcast_arrays(np.asarray(N, float), np.asarray(D, float))
    return CHINCHILLA.predict(CHINCHILLA.from_natural(**truth), np.c_[N.ravel(), D.ravel()]).reshape(N.shape)


def write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def lr_sweep(seed: int = 0):
    """A learning-rate sweep: 80 (N, D) points, each trained at 3 learning rates (240 runs),
    with a U-shaped learning-rate effect on the loss; rows ordered by learning rate, so a
    point's three runs are far apart in the file. The generator of the README's example
    ``data/examples/lr_sweep.csv`` (see its docstring). Columns: run_name, params, tokens,
    learning_rate, eval_loss."""
    return make_lr_sweep.make_runs(seed)


def lr_sweep_flat_e(seed: int = 0, sizes=tuple(np.geomspace(2e7, 2e8, 5)), tokens_per_param=(10, 20, 40),
                    noise: float = 0.01):
    """A learning-rate sweep whose E direction is flat: 5 sizes over one decade (20M to
    200M), 10 to 40 tokens per parameter, 3 learning rates each (45 runs), 1% noise. The
    losses stay far above E and curve too little over so narrow a range to tell E from the
    other terms: the full-data fit converges with E near the truth, but a bootstrap over
    these runs often runs E to 0 (the issue 28 shape: an interval [0, ...] under an outcome
    "converged"). Same law (:data:`TRUTH`) and learning-rate penalty as :func:`lr_sweep`;
    columns run_name, params, tokens, learning_rate, eval_loss."""
    rng = np.random.default_rng(seed)
    rows = []
    for lr in make_lr_sweep.LEARNING_RATES:
        for N in sizes:
            N = float(f"{N:.4g}")
            for tpp in tokens_per_param:
                D = float(f"{tpp * N:.6g}")
                penalty = 1 + make_lr_sweep.PENALTY * np.log10(lr / make_lr_sweep.best_lr(N)) ** 2
                loss = float(law_loss(N, D)) * penalty * np.exp(noise * rng.standard_normal())
                rows.append({"run_name": f"n{N:.3g}-tpp{tpp}-lr{lr:g}", "params": N, "tokens": D,
                             "learning_rate": lr, "eval_loss": round(loss, 5)})
    return pd.DataFrame(rows)


#: How ``scalerepro fit`` reads :func:`lr_sweep` and :func:`lr_sweep_flat_e`.
LR_COLUMNS = "N=params,D=tokens,loss=eval_loss,run=run_name"


def checkpoint_runs(seed: int = 0, sizes=(2e7, 6e7, 2e8, 6e8, 2e9), tokens_per_param=(10, 20, 40, 80),
                    checkpoints: int = 10, run_noise: float = 0.005, row_noise: float = 0.002,
                    schedule_bump: float = 0.03):
    """20 runs (5 sizes x 4 token budgets), each logging ``checkpoints`` evenly spaced rows.

    A checkpoint before the end of a decaying schedule sits above the law (the learning
    rate has not annealed yet): its loss carries a factor 1 + ``schedule_bump`` (1 - fraction
    done); 0 draws checkpoints on the law itself (a schedule that allows using them).
    Noise has a per-run part shared by the run's rows and a per-row part. Checkpoints of
    a long run coincide in (N, D) with the final row of a shorter run, as they do when
    runs share a batch size. Columns: run, step, N, D, loss.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for N in sizes:
        for tpp in tokens_per_param:
            run = f"N{N:.0e}-tpp{tpp}"
            effect = rng.normal(0, run_noise)
            for k in range(1, checkpoints + 1):
                done = k / checkpoints
                D = done * tpp * N
                loss = float(law_loss(N, D)) * (1 + schedule_bump * (1 - done)) * np.exp(effect + rng.normal(0, row_noise))
                rows.append({"run": run, "step": k * 1000, "N": N, "D": D, "loss": round(loss, 5)})
    return pd.DataFrame(rows)


def fixed_ratio_ladder(seed: int = 0, sizes=(1e8, 3e8, 1e9), tokens_per_param: float = 20, seeds: int = 3,
                       noise: float = 0.003):
    """A ladder: 3 sizes, each trained at D = 20 N, ``seeds`` seeds each. Only 3 distinct
    (N, D) design points, all on one line of constant D/N: the N and D terms of the law
    cannot be told apart. Columns: N, D, seed, loss."""
    rng = np.random.default_rng(seed)
    rows = [{"N": N, "D": tokens_per_param * N, "seed": s,
             "loss": round(float(law_loss(N, tokens_per_param * N)) * np.exp(noise * rng.standard_normal()), 5)}
            for N in sizes for s in range(seeds)]
    return pd.DataFrame(rows)


def isoflop_tied(seed: int = 0, budgets=(1e17, 3e17, 1e18, 3e18, 1e19), per_budget: int = 8,
                 noise: float = 0.004):
    """An IsoFLOP design: ``per_budget`` model sizes at each compute budget, D = C / (6N), so
    8 runs are tied at the largest compute. Columns: N, D, flops, loss (flops exactly the
    budget, as a sweep planned by budget records it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        centre = 0.1 * C ** 0.5
        for N in centre * np.geomspace(1 / 8, 8, per_budget):
            D = C / (6 * N)
            rows.append({"N": N, "D": D, "flops": C,
                         "loss": round(float(law_loss(N, D)) * np.exp(noise * rng.standard_normal()), 5)})
    return pd.DataFrame(rows)


def few_points(seed: int = 4, n: int = 9, noise: float = 0.02):
    """``n`` runs (default 9) scattered over 1.5 decades of N and D, 2% noise: 9 points for 5
    parameters. With the default seed the best fit has E -> 0 (the published failure).
    Columns: N, D, loss."""
    X, y = law_runs(CHINCHILLA, TRUTH, n, noise, seed, log10_N=(7, 8.5), log10_D=(8.5, 10))
    return pd.DataFrame({"N": X[:, 0], "D": X[:, 1], "loss": y})


#: The checkpointed learning-rate sweep's learning rates: three at every (N, D) point, a
#: fourth (``EXTRA_LR``) at the 18 points of the two largest sizes, where the best learning
#: rate falls below the three swept.
SWEEP_LRS = (1e-3, 2e-3, 4e-3)
EXTRA_LR = 5e-4


def lr_sweep_checkpoints(seed: int = 0, sizes=tuple(np.geomspace(2e7, 2e9, 9)),
                         tokens_per_param=(5, 8, 12, 16, 20, 26, 35, 50, 80), checkpoints: int = 10,
                         noise: float = 0.004, row_noise: float = 0.001, schedule_bump: float = 0.03):
    """A learning-rate sweep with checkpoints shaped like a public one: 81 (N, D) points
    (9 sizes x 9 tokens per parameter), three learning rates at each and a fourth at the 18
    points of the two largest sizes: 261 runs, each logging ``checkpoints`` evenly spaced
    rows (2610 rows).

    The loss is the known law (:data:`TRUTH`, in non-embedding parameters) at the tokens
    seen so far, times 1 + 0.03 (1 - fraction done) before the end of a decaying schedule,
    times the U-shaped learning-rate penalty of ``make_lr_sweep`` (best learning rate
    falling with size), times a per-run and a per-row log-normal noise. Columns, named as
    an export would: run_name, step, non_embedding_params (the law's N), params (with the
    embedding matrix: 32000 x d_model), tokens, learning_rate, eval_loss.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i, N in enumerate(sizes):
        N = float(f"{N:.4g}")
        d_model = 64 * round(512 * (N / 2e7) ** 0.35 / 64)
        total = N + 32000 * d_model
        rates = SWEEP_LRS + ((EXTRA_LR,) if i >= len(sizes) - 2 else ())
        for tpp in tokens_per_param:
            D_final = float(f"{tpp * N:.6g}")
            for lr in rates:
                run = f"n{N:.3g}-tpp{tpp}-lr{lr:g}"
                penalty = 1 + make_lr_sweep.PENALTY * np.log10(lr / make_lr_sweep.best_lr(N)) ** 2
                effect = rng.normal(0, noise)
                for k in range(1, checkpoints + 1):
                    done = k / checkpoints
                    D = float(f"{done * D_final:.6g}")
                    loss = (float(law_loss(N, D)) * (1 + schedule_bump * (1 - done)) * penalty
                            * np.exp(effect + rng.normal(0, row_noise)))
                    rows.append({"run_name": run, "step": k * 100, "non_embedding_params": N, "params": total,
                                 "tokens": D, "learning_rate": lr, "eval_loss": round(loss, 5)})
    return pd.DataFrame(rows)


#: How ``scalerepro fit`` / ``sensitivity`` read :func:`lr_sweep_checkpoints`.
SWEEP_COLUMNS = "N=non_embedding_params,D=tokens,loss=eval_loss,run=run_name,step=step"


def isoflop_ladder(truth=TRUTH, budgets=tuple(np.geomspace(1e18, 1e21, 9)), per_decade: int = 10,
                   within: float = 6.0, noise: float = 0.0, seed: int = 0):
    """An IsoFLOP sweep as labs plan one: one global ladder of model sizes (``per_decade``
    per decade), and at each budget the ladder sizes within a factor ``within`` of the true
    optimum, trained on D = C / (6N) tokens. Each budget's grid is off-centre by at most
    half a ladder step. Columns, named as an export would: run_name, params, tokens, flops
    (= the budget, written as 6ND), isoflop_budget, val_loss."""
    rng = np.random.default_rng(seed)
    params = CHINCHILLA.from_natural(**truth)
    ladder = 10 ** np.arange(6, 13, 1 / per_decade)
    rows = []
    for c in budgets:
        n_opt = float(optimal.compute_optimal(truth, c)["N_opt"])
        for N in ladder[np.abs(np.log(ladder / n_opt)) <= np.log(within)]:
            D = c / (6 * N)
            loss = float(CHINCHILLA.predict(params, np.array([[N, D]]))[0]) * np.exp(noise * rng.standard_normal())
            rows.append({"run_name": f"c{c:.3g}-n{N:.3g}", "params": N, "tokens": D, "flops": 6 * N * D,
                         "isoflop_budget": c, "val_loss": loss})
    return pd.DataFrame(rows)


#: The restarts of :func:`restarted_checkpoint_log`: run index -> (checkpoint after which
#: the job died, checkpoint it resumed from, factor on the loss from the resumed job on).
RESTARTS = {1: (6, 4, 1.0), 7: (9, 7, 1.0), 12: (5, 2, 1.0), 16: (8, 5, 1.06)}
#: The run whose restart diverged (its re-logged losses are 6% higher).
DIVERGED_RUN = "N2e+09-tpp10"


def restarted_checkpoint_log(seed: int = 0, restarts=RESTARTS, jitter: float = 2e-5):
    """A per-checkpoint log as an experiment tracker exports it: the 20 runs of
    :func:`checkpoint_runs` (10 checkpoints each), four of them restarted from an earlier
    checkpoint after their job died, so the steps between the resume point and the crash are
    logged twice, the repeat later in the file (the open_lm logs of issue 35). A resumed job
    that replays the same batches re-logs nearly the same loss (``jitter``, relative,
    rounded to 5 decimals as a tracker writes it); the restart of :data:`DIVERGED_RUN` went
    another way, its losses from the resume on are 6% higher. Columns: run_name, step,
    params, tokens, val_loss. The rows a user would remove by hand are the first of each
    repeated (run_name, step)."""
    rng = np.random.default_rng(seed + 1)
    base = checkpoint_runs(seed).rename(columns={"run": "run_name", "N": "params", "D": "tokens", "loss": "val_loss"})
    pieces = []
    for i, (_, rows) in enumerate(base.groupby("run_name", sort=False)):
        if i not in restarts:
            pieces.append(rows)
            continue
        crash, resume, factor = restarts[i]
        resumed = rows.iloc[resume:].copy()
        drift = factor * (1 + jitter * rng.standard_normal(len(resumed)))
        resumed["val_loss"] = (resumed["val_loss"] * drift).round(5)
        pieces += [rows.iloc[:crash], resumed]
    return pd.concat(pieces, ignore_index=True)


#: How ``scalerepro fit`` reads :func:`restarted_checkpoint_log`.
RESTART_COLUMNS = "N=params,D=tokens,loss=val_loss,run=run_name,step=step"

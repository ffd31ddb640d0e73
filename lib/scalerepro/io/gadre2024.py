"""Gadre et al. 2024's over-training testbed as one tidy table (data set ``gadre2024_overtraining``).

One row per training run (104): the run's ``name`` (the model JSON's file stem), its
training set (``rpj``, ``c4_original``, ``rw_original``; ``training_set`` gives RedPajama,
C4, RefinedWeb), the model, N (``params``, with embeddings: what the authors' fits use) and
``N_no_embed``, D (``tokens``), M = 20 x ``chinchilla_multiplier`` (= D / N exactly, checked),
C = 6 N D, the eight held-out losses (``loss_<eval>``), the 46 downstream top-1 accuracies
(``acc_<task>``) and the average top-1 errors over the 17-task subset (``err17``) and over
all 46 tasks (``err46``): unweighted means of 1 - accuracy, as the authors' ``fit_ds`` does.

Parsing follows the reference note's gotchas: N, D and M come from ``hyperparameters``,
never from ``open_lm_args`` (wrong for several runs); an eval file is matched to its run by
file name (the eval JSON's own ``name`` is the same in all files); an eval's key is the
parent folder of its ``val_data`` path, except the German set (its file stem); only
``eval_metrics.icl`` is read (the 6.9B eval files carry extra aggregates).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from . import data
from .data import DataError

DATASET = "gadre2024_overtraining"
TRAINING_SETS = {"rpj": "RedPajama", "c4_original": "C4", "rw_original": "RefinedWeb"}
LOSS_EVALS = ("openlm", "c4_val", "paloma_c4_en", "paloma_dolma_100_programing_languages",
              "paloma_falcon-refinedweb", "paloma_ptb", "paloma_redpajama", "val_de-en_100")
#: The authors' 17-task subset (``SUBSET`` in scaling/constants.py): data, not derivable.
TASKS_17 = ("bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
            "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
            "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa", "squad", "piqa")
N_TASKS = 46


def _eval_key(val_data: str) -> str:
    path = PurePosixPath(val_data)
    return path.stem if "de-en" in path.name else path.parent.name


def _read_json(file: str) -> dict:
    path = data.fetch(DATASET, file)
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from error


def _run_row(file: str) -> dict:
    name = PurePosixPath(file).stem
    record = _read_json(file)
    hp = record.get("hyperparameters", {})
    missing = [k for k in ("params", "params_no_embed", "tokens", "chinchilla_multiplier", "model") if k not in hp]
    if missing or record.get("name") != name:
        raise DataError(f"{file}: hyperparameters lack {missing} or name {record.get('name')!r} is not the file stem")
    N, D = int(hp["params"]), int(hp["tokens"])
    M = 20 * float(hp["chinchilla_multiplier"])
    if not np.isclose(D, M * N, rtol=1e-9):
        raise DataError(f"{file}: tokens {D} is not 20 x chinchilla_multiplier x params ({M} x {N})")
    row = {"name": name, "dataset": record["dataset_name"], "training_set": TRAINING_SETS.get(record["dataset_name"]),
           "model": PurePosixPath(hp["model"]).stem, "N": float(N), "N_no_embed": float(hp["params_no_embed"]),
           "D": float(D), "M": M, "multiplier": float(hp["chinchilla_multiplier"]), "C": 6.0 * N * D}
    losses = {_eval_key(r["val_data"][0]): float(r["loss"]) for r in record["results"]}
    if set(losses) != set(LOSS_EVALS):
        raise DataError(f"{file}: loss evaluations {sorted(losses)} are not the eight expected {list(LOSS_EVALS)}")
    row.update({f"loss_{k}": losses[k] for k in LOSS_EVALS})
    evals = _read_json(f"exp_data/evals/evaluation_{name}_heavy.json")
    icl = evals["eval_metrics"]["icl"]
    if len(icl) != N_TASKS or not all(0.0 <= float(v) <= 1.0 for v in icl.values()):
        raise DataError(f"evaluation_{name}_heavy.json: expected {N_TASKS} accuracies in [0, 1], got {len(icl)}")
    row.update({f"acc_{task}": float(acc) for task, acc in sorted(icl.items())})
    row["err17"] = float(np.mean([1.0 - float(icl[t]) for t in TASKS_17]))
    row["err46"] = float(np.mean([1.0 - float(v) for v in icl.values()]))
    return row


def load_runs() -> pd.DataFrame:
    """The 104 runs as one validated table, provenance (data set, files, sha256 by manifest,
    license, citation) in ``df.attrs``."""
    model_files = sorted(f for f in data.files(DATASET) if f.startswith("exp_data/models/") and f.endswith(".json"))
    if not model_files:
        raise DataError(f"{DATASET}: the manifest lists no exp_data/models/*.json")
    df = pd.DataFrame([_run_row(f) for f in model_files])
    duplicated = df.duplicated(["dataset", "model", "M"])
    if duplicated.any():
        raise DataError(f"{DATASET}: duplicated (training set, model, M): {df.loc[duplicated, 'name'].tolist()}")
    info = data.dataset_info(DATASET)
    df.attrs.update(dataset=DATASET, file="exp_data/models/*.json + exp_data/evals/*_heavy.json",
                    path=str(data.fetch(DATASET, model_files[0]).parent.parent), license=info.get("license"),
                    citation=info["citation"], url=info.get("repository"), sha256="per file, see the manifest",
                    n_files=2 * len(model_files))
    return df


def load_task_metadata() -> pd.DataFrame:
    """``eval_metadata.csv`` (51 tasks; 46 evaluated): category, type, shots, size, random baseline (fraction)."""
    path = data.fetch(DATASET, "exp_data/eval_metadata.csv")
    meta = pd.read_csv(path).dropna(how="all")
    meta["random_baseline"] = meta["Random baseline"] / 100.0
    return meta


def select(runs: pd.DataFrame, dataset: str, model: str, M: float) -> pd.Series:
    """The one run with this training set, model and token multiplier (targets are picked this
    way, not by comparing FLOPs: see the reference note's gotcha 6)."""
    hit = runs[(runs["dataset"] == dataset) & (runs["model"] == model) & np.isclose(runs["M"], M)]
    if len(hit) != 1:
        raise DataError(f"{len(hit)} runs match dataset={dataset}, model={model}, M={M}")
    return hit.iloc[0]

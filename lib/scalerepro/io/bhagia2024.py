"""Bhagia et al. 2024's OLMo model ladder (allenai/OLMo-ladder) as one tidy table.

The data set ``bhagia2024_olmo_ladder`` holds one CSV per training run (one row per
in-loop evaluation of a checkpoint), two target files (7B-4T, 13B-5T) and
``configs/final.json`` (N and per-token FLOPs per model size, which files are ladder runs
and which targets). :func:`load_ladder` returns one row per evaluated checkpoint of the 16
ladder runs and the two targets, with

- ``run`` (``190M-1xC`` ... ``1.3B-10xC``, ``7B-4T``, ``13B-5T``), ``size`` (the config key),
  ``multiplier`` (tokens in units of 20 N; 0 for the targets), ``target`` (bool);
- ``N`` (the config's ``n``, found by key: every parameter except the input embedding),
  ``flops_per_token`` (the config's ``flops``), ``batch_tokens``;
- ``step`` and ``D``, the tokens seen at that checkpoint: ``throughput/total_tokens`` where
  the file has it; the 13B file lacks it, so there D = step x batch tokens; the 7B file
  lacks ``_step``, so there step = D / batch tokens (an integer: 940,577);
- ``c4_loss`` and, per task of :data:`TASKS`, ``bpb_<task>`` (task loss, bits per byte of the
  correct continuation) and ``acc_<task>`` (length-normalised RC accuracy, a fraction).
  MMLU is the per-row weighted mean of its four test subsets (:data:`MMLU_WEIGHTS`), for
  bpb and accuracy alike.

Rows stay in each file's step order. Provenance (files, sha256, licence) is in ``df.attrs``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from . import data
from ..errors import InputError

DATASET = "bhagia2024_olmo_ladder"
CONFIG_FILE = "src/scripts/paper/configs/final.json"
RUN_FILE = re.compile(r"(?P<prefix>[^/]+)-(?P<mult>\d+)xC\.csv$")

# short name (claim ids) -> (column stem, task_minimum of the paper's code)
TASKS = {
    "mmlu": ("mmlu_avg_test", 0.25),
    "hellaswag": ("hellaswag_val", 0.25),
    "arc_challenge": ("arc_challenge_test", 0.25),
    "arc_easy": ("arc_easy_test", 0.25),
    "piqa": ("piqa_val", 0.5),
    "csqa": ("csqa_val", 0.2),
    "socialiqa": ("socialiqa_val", 1.0 / 3.0),
    "openbookqa": ("openbookqa_test", 0.25),
}
TASK_MINIMUM = {task: minimum for task, (_, minimum) in TASKS.items()}
MMLU_WEIGHTS = {"stem": 0.215, "humanities": 0.335, "social_sciences": 0.219, "other": 0.231}
C4_COLUMN = "eval/c4_en-validation/CrossEntropyLoss"


def bpb_column(stem: str) -> str:
    return f"eval/downstream_bpb/{stem}_rc_5shot_bpb"


def acc_column(stem: str) -> str:
    return f"eval/downstream/{stem}_rc_5shot_len_norm"


def _config() -> dict:
    path = data.fetch(DATASET, CONFIG_FILE)
    return json.loads(path.read_text())


def _read(file: str) -> tuple[pd.DataFrame, dict]:
    path = data.fetch(DATASET, file)
    raw = pd.read_csv(path)
    _, entry = data._entry(DATASET, file)
    return raw, {"file": file, "sha256": entry["sha256"], "url": entry["url"],
                 "license": data.file_license(DATASET, file)}


def _require(raw: pd.DataFrame, file: str, columns) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError(file, [f"missing column {c!r}" for c in missing])
    bad = [c for c in columns if not np.isfinite(pd.to_numeric(raw[c], errors="coerce")).all()]
    if bad:
        raise InputError(file, [f"column {c!r} has empty or non-numeric cells" for c in bad])


def _task_columns(raw: pd.DataFrame, file: str) -> dict[str, np.ndarray]:
    """bpb_<task> and acc_<task> for the 8 tasks (MMLU as its weighted subset mean)."""
    subsets = {name: f"mmlu_{name}_test" for name in MMLU_WEIGHTS}
    needed = [column(stem) for stem in [s for t, (s, _) in TASKS.items() if t != "mmlu"] + list(subsets.values())
              for column in (bpb_column, acc_column)]
    _require(raw, file, needed)
    out = {}
    for task, (stem, _) in TASKS.items():
        for kind, column in (("bpb", bpb_column), ("acc", acc_column)):
            if task == "mmlu":
                value = sum(w * raw[column(subsets[name])].to_numpy(float) for name, w in MMLU_WEIGHTS.items())
            else:
                value = raw[column(stem)].to_numpy(float)
            out[f"{kind}_{task}"] = value
    return out


def _steps_and_tokens(raw: pd.DataFrame, file: str) -> tuple[np.ndarray, np.ndarray]:
    """(step, D) per row; see the module docstring for the two target files."""
    batch = raw["batch_size_in_tokens"].to_numpy(float)
    has_step, has_tokens = "_step" in raw.columns, "throughput/total_tokens" in raw.columns
    if has_tokens:  # some files write the counts as floats ("3812622336.0")
        tokens = raw["throughput/total_tokens"].to_numpy(float)
        steps = raw["_step"].to_numpy(float) if has_step else tokens / batch
    elif has_step:
        steps = raw["_step"].to_numpy(float)
        tokens = steps * batch
    else:
        raise InputError(file, ["neither '_step' nor 'throughput/total_tokens': no token count"])
    if not np.allclose(steps, np.round(steps)):
        raise InputError(file, ["tokens / batch_size_in_tokens is not a whole number of steps"])
    return np.round(steps), tokens


def _run_table(raw: pd.DataFrame, file: str, run: str, size: str, multiplier: int, cfg: dict) -> pd.DataFrame:
    _require(raw, file, ["batch_size_in_tokens", C4_COLUMN])
    steps, tokens = _steps_and_tokens(raw, file)
    table = pd.DataFrame({
        "run": run, "size": size, "multiplier": multiplier, "target": cfg["mode"] == "eval",
        "N": float(cfg["n"]), "flops_per_token": float(cfg["flops"]),
        "batch_tokens": raw["batch_size_in_tokens"].to_numpy(float),
        "step": steps, "D": tokens, "c4_loss": raw[C4_COLUMN].to_numpy(float),
        **_task_columns(raw, file),
    })
    if (np.diff(table["step"]) <= 0).any():
        raise InputError(file, ["rows are not in increasing step order"])
    return table


def load_ladder() -> pd.DataFrame:
    """The 16 ladder runs and the two targets of ``configs/final.json``, one row per
    evaluated checkpoint (see the module docstring for the columns)."""
    config = _config()
    tables, files = [], []
    for size, cfg in config.items():
        for file in cfg["paths"]:
            raw, provenance = _read(file)
            files.append(provenance)
            if cfg["mode"] == "eval":
                run, multiplier = size, 0
            else:
                match = RUN_FILE.search(file)
                if match is None:
                    raise InputError(CONFIG_FILE, [f"ladder file {file!r} is not named SIZE-<k>xC.csv"])
                multiplier = int(match["mult"])
                run = f"{size}-{multiplier}xC"
            tables.append(_run_table(raw, file, run, size, multiplier, cfg))
    df = pd.concat(tables, ignore_index=True)
    info = data.dataset_info(DATASET)
    df.attrs.update(dataset=DATASET, files=files, citation=info["citation"],
                     config=CONFIG_FILE, license="Apache-2.0")
    return df


def final_rows(df: pd.DataFrame, window: int = 5, columns=None) -> pd.DataFrame:
    """One row per run: N and D of its last checkpoint, and the value ``columns`` (default: C4
    loss, every task loss and accuracy present) averaged over its last ``window`` evaluated
    checkpoints (the paper's step-1 points and its 13B actuals; the 7B has one row, which is
    then its value). ``rows_averaged`` says how many rows each mean took."""
    if columns is None:
        columns = [c for c in df.columns if c == "c4_loss" or c.startswith(("bpb_", "acc_"))]
    columns = list(columns)
    grouped = df.groupby("run", sort=False)
    last = grouped.tail(1).set_index("run")
    means = grouped[columns].apply(lambda g: g.tail(window).mean())
    out = last.drop(columns=columns).join(means)
    out["rows_averaged"] = grouped.size().clip(upper=window)
    return out.reset_index()

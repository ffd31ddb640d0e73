"""McLeish et al. 2025 (Gemstones): the authors' fitting tables and committed fits, tidy.

The registered dataset ``mcleish2025_gemstones`` holds the authors' JSON Lines tables
(``wandb_dfs/wandb_df_for_fitting_<subset>.jsonl``, one line per run and checkpoint) and
their committed fits (``parameters/`` for approach 1, ``parameters_delta-3/`` and
``parameters_delta-4/`` for approach 3). Which table feeds which approach matters: approach 1
(the lower convex hull) reads the 477-step tables (``hot_477``: 50 checkpoints per run),
approach 3 the 10-checkpoint tables (``hot``: 10 per run); swapping them moves the hull
slope from 0.499 to 0.602.

:func:`checkpoints` returns one row per (run, checkpoint) with the columns ``run``
(``<width>x<depth>``, the ``cooler_`` prefix of the learning-rate ablation stripped),
``width``, ``depth``, ``N`` (the file's ``params_active_precise``: every parameter, both
vocabulary matrices included), ``D`` (tokens), ``step``, ``loss`` (validation loss at that
checkpoint, not at a run's end), ``num_nodes`` and ``seconds_per_step``. The parameter and
FLOP conventions to choose from are in :mod:`scalerepro.analyses.accounting`
(``gemstone_params``, ``gemstone_flops_per_token``); this module only reads.

The two ``*slim_chinchilla`` tables are Hoffmann et al.'s runs (Epoch AI's extraction), not
Gemstones, and have no width or depth: :func:`checkpoints` refuses them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import data
from ..errors import DataError

DATASET = "mcleish2025_gemstones"
#: The Gemstone fitting tables (``wandb_dfs/wandb_df_for_fitting_<subset>.jsonl``).
SUBSETS = ("hot", "hot_477", "hot_100b+", "hot_100b+_477", "hot_120b+_only", "hot_120b+_only_477",
           "hot_100b+_512x", "lr_ablation_hot", "lr_ablation_hot_477", "cool_end", "cool_begin",
           "hot_sampled_like_chinchilla", "lr_ablation_hot_sampled_like_chinchilla")
#: Sequence length x sequences per step: D = step x TOKENS_PER_STEP in every table except
#: the two ``*_sampled_like_chinchilla`` ones (tokens rounded to multiples of 2e9).
TOKENS_PER_STEP = 2048 * 2048
_COLUMNS = ("run_name", "params_active_precise", "width", "depth", "tokens", "step", "num_nodes",
            "seconds_per_step", "final_loss")


class GemstonesFormatError(DataError):
    """A Gemstones file that does not have the layout this loader reads (names file, line, column)."""


def table_file(subset: str) -> str:
    return f"wandb_dfs/wandb_df_for_fitting_{subset}.jsonl"


def checkpoints(subset: str = "hot") -> pd.DataFrame:
    """The tidy table of one fitting subset (see the module docstring), validated, with
    provenance (dataset, file, sha256, url, license, citation) in ``df.attrs``."""
    if subset not in SUBSETS:
        raise GemstonesFormatError(f"unknown Gemstones subset {subset!r}; the fitting tables are {list(SUBSETS)}")
    file = table_file(subset)
    path = data.fetch(DATASET, file)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GemstonesFormatError(f"{path}, line {line_no}: not JSON ({exc})") from None
            missing = [c for c in _COLUMNS if c not in row]
            if missing:
                raise GemstonesFormatError(f"{path}, line {line_no}: missing column(s) {missing}")
            rows.append(row)
    raw = pd.DataFrame(rows)
    out = pd.DataFrame({
        "run": raw["run_name"].str.replace("cooler_", "", regex=False)
                              .str.extract(r"PyGemma-(\d+x\d+)_pretrain", expand=False),
        "width": raw["width"], "depth": raw["depth"], "N": raw["params_active_precise"],
        "D": raw["tokens"], "step": raw["step"], "loss": raw["final_loss"],
        "num_nodes": raw["num_nodes"], "seconds_per_step": raw["seconds_per_step"]})
    _validate(out, raw, path)
    for col in ("width", "depth", "N", "step", "num_nodes"):
        out[col] = out[col].astype(np.int64)
    for col in ("D", "loss", "seconds_per_step"):
        out[col] = out[col].astype(float)
    out["line"] = np.arange(1, len(out) + 1)
    out = out.sort_values(["run", "step"], kind="stable").reset_index(drop=True)
    file_, entry = data._entry(DATASET, file)
    return data._provenance(out, DATASET, file_, path, entry)


def _validate(out: pd.DataFrame, raw: pd.DataFrame, path) -> None:
    bad_name = out["run"].isna()
    if bad_name.any():
        i = int(np.flatnonzero(bad_name)[0])
        raise GemstonesFormatError(f"{path}, line {i + 1}, column run_name: {raw['run_name'].iloc[i]!r} is not "
                                   "PyGemma-<width>x<depth>_pretrain")
    shape = out["width"].astype(str) + "x" + out["depth"].astype(str)
    mismatch = shape != out["run"]
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise GemstonesFormatError(f"{path}, line {i + 1}: run_name {raw['run_name'].iloc[i]!r} does not match "
                                   f"width x depth {shape.iloc[i]}")
    for col in ("width", "depth", "N", "D", "step", "loss"):
        values = pd.to_numeric(out[col], errors="coerce").astype(float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GemstonesFormatError(f"{path}, line {i + 1}, column {col}: {out[col].iloc[i]!r} is not a positive "
                                       "finite number")
    per_run = out.groupby("run")["N"].nunique()
    if (per_run > 1).any():
        raise GemstonesFormatError(f"{path}: params_active_precise changes within run(s) "
                                   f"{list(per_run.index[per_run > 1])}")


def _read_json(file: str) -> dict:
    path = data.fetch(DATASET, file)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GemstonesFormatError(f"{path}: not JSON ({exc})") from None


def approach1_fit(quantity: str = "params", suffix: str = "") -> dict:
    """A committed approach-1 line ln Y = slope ln C + intercept (natural logs; C the
    authors' detailed FLOPs): ``quantity`` params, tokens or tokens_per_param; ``suffix``
    "" (hot_477), "_100b+", "_120b+_only", "_lr_ablation", "_cooldown", each optionally
    followed by "_no_embeds" (N less both vocabulary matrices). Returns
    ``{"slope", "intercept", "file"}``."""
    file = f"parameters/approach_1_linear_regression_{quantity}{suffix}.json"
    raw = _read_json(file)
    return {"slope": float(raw["coef"][0]), "intercept": float(raw["intercept"]), "file": file}


def approach3_fit(subset: str = "hot", delta: str = "1e-3", *, law: str = "parameters") -> dict:
    """A committed approach-3 fit of L = E + e^a N^-alpha + e^b D^-beta (``law``
    "parameters"; "width_depth" and "width_depth_parameters" are the 3- and 4-term laws),
    Huber ``delta`` "1e-3" or "1e-4". Returns the natural logs as stored (``log_A``,
    ``log_B``, ``log_E``), the exponents, the summed-Huber ``objective``, ``success`` and
    the file. ``subset`` may end in "_no_embeds" (N less ONE vocabulary matrix)."""
    folder = {"1e-3": "parameters_delta-3", "1e-4": "parameters_delta-4"}.get(delta)
    if folder is None:
        raise GemstonesFormatError(f"delta must be '1e-3' or '1e-4' (the committed fits), got {delta!r}")
    stem = {"parameters": "approach_3_parameters_grid_search_0_",
            "width_depth": "approach_3_width_depth_grid_search_0_",
            "width_depth_parameters": "approach_3_width_depth_parameters_grid_search_0_"}[law]
    file = f"{folder}/{stem}{subset}.json"
    raw = _read_json(file)
    exponents, coefficients = raw["exponents"]["0"], raw["coefficients"]["0"]
    out = {"file": file, "success": bool(raw["success"]["0"]), "objective": float(raw["loss"]["0"]),
           "log_E": float(raw["irreducible_error"]["0"]), "exponents": [float(v) for v in exponents],
           "log_coefficients": [float(v) for v in coefficients]}
    if law == "parameters":
        out.update(alpha=out["exponents"][0], beta=out["exponents"][1], log_A=out["log_coefficients"][0],
                   log_B=out["log_coefficients"][1])
    return out

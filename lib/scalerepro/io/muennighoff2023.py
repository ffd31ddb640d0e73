"""Muennighoff et al. 2023's 182 fit runs, read from the authors' notebook without running it.

The fit data exist upstream only as Python dict literals in code cell 25 of
``utils/parametric_fit.ipynb`` (huggingface/datablations): run name -> final validation
loss, plus two lookup tables for the sizes in the names. This module parses that cell with
``ast`` and ``literal_eval`` (never ``exec``), applies the notebook's own name-decoding rule
(names such as ``2b855b11b`` are ambiguous, and the rule, not a grammar, decides them) and
its selection (loss not 0, name not ending in ``dedup``), and returns a tidy table. The
48 runs the authors excluded by commenting them out are not in the dict, so they are not
here either. Cell 26's printout of the decoded table is the check: :func:`printed_table`.

ColPret's CSV copy (:func:`load_colpret`) is a cross-check only: it lacks one fit run and
holds the excluded ones, and its ``tokens_per_epoch`` column is a placeholder.
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd

from . import data
from ..errors import DataError

DATASET = "muennighoff2023_datablations"
NOTEBOOK = "parametric_fit.ipynb"
COLPRET = "colpret_datablations_contour_losses.csv"
#: 0-based indices of the cell holding the dicts and of the cell printing the decoded table.
DATA_CELL, PRINT_CELL = 25, 26
DICTS = ("NAMES_TO_VAL_LOSSES", "TOKENS_MAP", "PARAMS_MAP")
COLUMNS = ["run", "N", "D", "U", "epochs", "loss"]


def _cells(path) -> list[dict]:
    try:
        return json.loads(path.read_text())["cells"]
    except (ValueError, KeyError) as error:
        raise DataError(f"{path}: not a readable notebook ({error})") from error


def notebook_dicts(path=None) -> dict[str, dict]:
    """The three dict literals of cell 25, by literal parsing (the cell is never executed)."""
    path = path or data.fetch(DATASET, NOTEBOOK)
    source = "".join(_cells(path)[DATA_CELL]["source"])
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in DICTS:
            found[node.targets[0].id] = ast.literal_eval(node.value)
    missing = [name for name in DICTS if name not in found]
    if missing:
        raise DataError(f"{path}: cell {DATA_CELL} defines no {', '.join(missing)}; is this the 13701315 notebook?")
    return found


def _billions(text: str, tokens: dict, name: str) -> float:
    """'1b5' -> 1.5, '100m' -> 0.1 (TOKENS_MAP first, else 'b' is the decimal point)."""
    if text in tokens:
        return float(tokens[text])
    try:
        return float(text.replace("b", ".").strip("."))
    except ValueError:
        raise DataError(f"run {name!r}: cannot read {text!r} as a token count in billions") from None


def decode(name: str, params: dict, tokens: dict) -> tuple[float, float, float]:
    """(N, D, U) of a run name by the notebook's rule (cell 26: get_params, get_unique_tokens,
    get_tokens). N is the actual count from PARAMS_MAP, not the nominal size in the name."""
    end = 2
    while name[:end] not in params:
        if end >= len(name):
            raise DataError(f"run {name!r}: no prefix of its name is a PARAMS_MAP key")
        end += 1
    start = -4 if name[-1] in "bm" or name[-2] not in "bm" else -3
    while name[start:].count("b") > 1 or name[start:].count("m") > 1:
        start += 1
    unique = _billions(name[start:], tokens, name) * 1e9
    return float(params[name[:end]]), _billions(name[end:start], tokens, name) * 1e9, unique


def fit_runs(dicts: dict) -> pd.DataFrame:
    """The fit set from the parsed dicts: every run with a loss, except the ``dedup`` ablation."""
    rows = []
    for name, loss in dicts["NAMES_TO_VAL_LOSSES"].items():
        if loss != 0 and not name.endswith("dedup"):
            N, D, U = decode(name, dicts["PARAMS_MAP"], dicts["TOKENS_MAP"])
            rows.append((name, N, D, U, D / U, float(loss)))
    return pd.DataFrame(rows, columns=COLUMNS)


def printed_table(path=None) -> pd.DataFrame:
    """Cell 26's printout (``name N/1e9 D/1e9 U/1e9 loss`` per run), for checking the decoding."""
    path = path or data.fetch(DATASET, NOTEBOOK)
    text = "".join("".join(out.get("text", "")) for out in _cells(path)[PRINT_CELL].get("outputs", []))
    rows = [line.split() for line in text.splitlines() if line.strip()]
    frame = pd.DataFrame([r for r in rows if len(r) == 5], columns=["run", "N", "D", "U", "loss"])
    return frame.astype({c: float for c in ("N", "D", "U", "loss")})


def _check_against_printout(runs: pd.DataFrame, printed: pd.DataFrame, path) -> None:
    """The decoded table must be cell 26's printout (same runs in the same order; N, D, U in
    billions and the loss as printed, to float rounding): the notebook's own check of its rule."""
    if list(printed["run"]) != list(runs["run"]):
        raise DataError(f"{path}: the decoded runs are not the {len(printed)} runs cell {PRINT_CELL} prints")
    for column, scale in (("N", 1e9), ("D", 1e9), ("U", 1e9), ("loss", 1.0)):
        off = ~np.isclose(runs[column] / scale, printed[column], rtol=1e-9, atol=0)
        if off.any():
            raise DataError(f"{path}: run {runs['run'][off].iloc[0]!r} decodes to {column} = "
                            f"{runs[column][off].iloc[0] / scale:g} (x{scale:g}), cell {PRINT_CELL} prints "
                            f"{printed[column][off].iloc[0]:g}")


def load() -> pd.DataFrame:
    """The 182 fit runs: run, N (parameters), D (training tokens), U (unique tokens),
    epochs = D/U, loss (final validation loss); provenance in ``attrs``."""
    path = data.fetch(DATASET, NOTEBOOK)
    runs = fit_runs(notebook_dicts(path))
    if runs["run"].duplicated().any() or not (runs["U"] <= runs["D"] * (1 + 1e-12)).all():
        raise DataError(f"{path}: decoded runs with duplicate names or more unique than total tokens")
    _check_against_printout(runs, printed_table(path), path)
    entry = data.dataset_info(DATASET)["files"][NOTEBOOK]
    data._provenance(runs, DATASET, NOTEBOOK, path, entry)
    runs.attrs["selection"] = (f"code cell {DATA_CELL} dicts parsed literally; loss != 0 and name not ending in "
                               "'dedup' (the notebook's rule); the authors' commented-out runs are not in the dict; "
                               f"decoding checked against cell {PRINT_CELL}'s printout")
    return runs


def load_colpret() -> pd.DataFrame:
    """ColPret's copy as the same columns (U = token_num / epochs; its tokens_per_epoch is a
    placeholder). A cross-check, not the fit set."""
    path = data.fetch(DATASET, COLPRET)
    raw = pd.read_csv(path)
    names = raw["model_args"].map(lambda text: ast.literal_eval(text)["name"])
    out = pd.DataFrame({"run": names, "N": raw["num_params"].astype(float), "D": raw["token_num"].astype(float),
                        "U": raw["token_num"] / raw["epochs"], "epochs": raw["epochs"].astype(float),
                        "loss": raw["openLM_loss"].astype(float)})
    data._provenance(out, DATASET, COLPRET, path, data.dataset_info(DATASET)["files"][COLPRET])
    return out[np.isfinite(out["loss"])].reset_index(drop=True)

"""The restricted unpickler: hostile pickles are refused before they run, real data loads."""

import lzma
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import load_or_skip
from scalerepro.io import safe_pickle
from scalerepro.io.safe_pickle import UnsafePickleError


class _Payload:
    """Unpickling this calls ``func(*args)``: the classic pickle code-execution trick."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _marker_payloads(marker):
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.exec": _Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.open": _Payload(open, str(marker), "w"),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "builtins.open"])
def test_code_execution_payload_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_marker_payloads(marker)[kind])
    # Sanity: the payload really does run under the ordinary unpickler.
    pickle.loads(blob)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(UnsafePickleError) as info:
        safe_pickle.loads(blob, source="evil.pickle")
    assert not marker.exists()
    message = str(info.value)
    assert "evil.pickle" in message
    # os.system pickles as posix.system and open as io.open: the name part is stable.
    assert "refusing to load global" in message and f".{kind.split('.')[1]}" in message


def test_payload_hidden_inside_a_dataframe_in_an_xz_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    frame = {"data": [1.0, 2.0], "hidden": _Payload(os.system, f"touch {marker}")}
    path = tmp_path / "summary_df.pickle.xz"
    with lzma.open(path, "wb") as fh:
        pickle.dump(frame, fh)
    with pytest.raises(UnsafePickleError, match=str(path)):
        safe_pickle.load_xz(path)
    assert not marker.exists()


def test_numpy2_spelling_of_allowed_globals_loads():
    # numpy 2 pickles name numpy._core.multiarray; the allow-list accepts both spellings.
    array = np.arange(5.0)
    assert np.array_equal(safe_pickle.loads(pickle.dumps(array)), array)


def test_allowed_names_only_cover_pandas_numpy_and_slice():
    modules = {module.split(".")[0] for module, _ in safe_pickle.ALLOWED_GLOBALS}
    assert modules == {"pandas", "numpy", "builtins"}
    assert {n for m, n in safe_pickle.ALLOWED_GLOBALS if m == "builtins"} == {"slice"}


@pytest.mark.parametrize(
    "file, rows",
    [
        ("summary_df.pickle.xz", 5),
        ("summary_df_att.pickle.xz", 4),
        ("summary_df_kaplan_tuned_hparams.pickle.xz", 1),
        ("summary_df_owt2.pickle.xz", 5),
    ],
)
def test_real_porian_pickles_load_through_the_allow_list(file, rows):
    df = load_or_skip("porian2024_discrepancies", file)
    assert isinstance(df, pd.DataFrame) and len(df) == rows
    assert {"dataset", "param_count", "data", "optimal_pairs", "fit_results"} <= set(df.columns)
    pairs = df["optimal_pairs"].iloc[0]
    assert isinstance(pairs, pd.DataFrame) and {"flops", "n", "t"} <= set(pairs.columns)
    # FLOP budgets are 1.25e16 * 2^k (Porian et al.)
    k = np.log2(pairs["flops"].to_numpy() / 1.25e16)
    assert np.allclose(k, np.round(k))
    assert df.attrs["sha256"] and df.attrs["license"] == "MIT"

"""Load pickled pandas DataFrames without letting the pickle run arbitrary code.

Why: a pickle is a program. Unpickling calls whatever callables the file names, so a
tampered download (or a hostile "results" file a user is sent) can run ``os.system``. The
Porian et al. 2024 results are published only as pickles, so we read them through an
unpickler whose ``find_class`` resolves a fixed allow-list and refuses everything else.

The allow-list is exactly the set of globals the four Porian pickles reference (derived by
walking them with ``pickletools`` and confirmed by loading them with a recording
``find_class``): the pandas DataFrame/Series/Index reconstruction helpers, numpy array
reconstruction, and ``builtins.slice`` (pandas pickles a block's row placement as a slice).
Pickles written by numpy 1.x name ``numpy.core.*``; numpy 2.x writes ``numpy._core.*`` for
the same objects, so both spellings are accepted, and the ``numpy.core`` names are resolved
from ``numpy._core`` when it exists to avoid numpy's deprecation shim.
"""

from __future__ import annotations

import importlib
import io
import lzma
import pickle
from pathlib import Path
from typing import Any

from ..errors import UnsafePickleError

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "SafeUnpickler", "load_xz", "loads"]

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "slice"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals.managers", "SingleBlockManager"),
        ("pandas.core.series", "Series"),
    }
)


def _canonical_module(module: str) -> str:
    """Map numpy 2's ``numpy._core`` spelling onto the ``numpy.core`` names we list."""
    if module == "numpy._core" or module.startswith("numpy._core."):
        return "numpy.core" + module[len("numpy._core") :]
    return module


def _import_module(module: str):
    """Import ``module``, preferring ``numpy._core`` over the deprecated ``numpy.core``."""
    if module.startswith("numpy.core"):
        try:
            return importlib.import_module("numpy._core" + module[len("numpy.core") :])
        except ImportError:  # numpy < 2 has no numpy._core
            pass
    return importlib.import_module(module)


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves globals in :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file, *, source: str = "<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (_canonical_module(module), name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name}: only pandas/numpy "
                "DataFrame classes are allowed in a data pickle (see "
                "scalerepro.io.safe_pickle.ALLOWED_GLOBALS). The file may be tampered with or "
                "is not the expected data file."
            )
        return getattr(_import_module(module), name)


def loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the allow-list (for tests and in-memory payloads)."""
    return SafeUnpickler(io.BytesIO(data), source=source).load()


def load_xz(path: str | Path) -> Any:
    """Unpickle an xz/lzma-compressed pickle file with the allow-list."""
    path = Path(path)
    with lzma.open(path, "rb") as fh:
        return SafeUnpickler(fh, source=str(path)).load()

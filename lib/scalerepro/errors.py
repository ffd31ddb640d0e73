"""Every error and warning scalerepro raises, in one place.

All errors derive from :class:`ScalereproError`, so a caller (the CLI, a notebook, a
script) can catch the product's own failures with one ``except`` and print their message,
which names the file, row, column or parameter at fault; anything else is a bug and keeps
its traceback. Each error also keeps the built-in base it had before (``ValueError`` for
bad input, ``RuntimeError`` for a run that could not complete), so ``except ValueError``
in existing code still works. All warnings derive from :class:`ScalereproWarning`.

This module imports nothing from the package: every other module may import it.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

#: How every input error counts lines.
LINE_CONVENTION = "line numbers count the header as line 1, as a spreadsheet or text editor shows them"


class ScalereproError(Exception):
    """Base of every error the product raises on purpose; its message is for the user."""


# ------------------------------------------------------------------- what the user gave
class UsageError(ScalereproError, ValueError):
    """Command-line arguments that do not make sense together."""


class InputError(ScalereproError, ValueError):
    """A table of runs cannot be used; ``problems`` lists every reason, one per item."""

    def __init__(self, file: str, problems: Sequence[str]):
        self.file = str(file)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{self.file}: {len(self.problems)} problem(s) in the input ({LINE_CONVENTION}):\n{lines}"
        )


class SpecError(ScalereproError, ValueError):
    """A spec, profile or parameter value that cannot be used; the message says which."""


class ChecklistError(ScalereproError, ValueError):
    """A checklist definition or spec section that cannot be used; the message says which."""


class RecorderError(ScalereproError, ValueError):
    """A record that contradicts the spec (unknown claim id, malformed interval, ...)."""


class DiagnosticError(ScalereproError, ValueError):
    """A diagnostic that does not follow the contract (unknown code or severity)."""


# ------------------------------------------------------------------ fits and analyses
class FitError(ScalereproError, ValueError):
    """A fit that cannot be made as asked (bad option, no finite start, ...)."""


class ApproachError(ScalereproError, ValueError):
    """Runs that cannot be analysed as asked (missing role, bad values, too few budgets)."""


class IsoflopError(ScalereproError, ValueError):
    """An IsoFLOP budget or fit that cannot be analysed as asked."""


class LossToLossError(ScalereproError, ValueError):
    """Input that cannot be fitted as asked (shifts above the data, too few points, ...)."""


class PorianFormatError(ScalereproError, ValueError):
    """A Porian et al. summary frame that does not have the expected structure."""


# ------------------------------------------------------------------------------- data
class DataError(ScalereproError):
    """Base class for every data-access failure."""


class UnknownDatasetError(DataError):
    """The dataset or file is not in the registry."""


class MirrorNotFoundError(DataError):
    """``$SCALEREPRO_DATA_DIR`` is set but is not an existing directory."""


class ChecksumError(DataError):
    """A file's sha256 differs from the registry's."""


class DataUnavailableError(DataError):
    """The file is in neither the mirror nor the cache, and could not be downloaded."""


class UnsafePickleError(ScalereproError, pickle.UnpicklingError):
    """The pickle references a global outside the allow-list; nothing from it was run."""


# ----------------------------------------------------------------------------- runs
class SetupError(ScalereproError, RuntimeError):
    """This Python cannot run notebooks (notebook extras or kernel missing); the message says
    what is missing and the command that fixes it."""


class SchedulerError(ScalereproError, ValueError):
    """A ``--scheduler`` that cannot be used: bad syntax, Dask not installed, no scheduler at
    the address; the message says which and how to fix it."""


class RunFailed(ScalereproError, RuntimeError):
    """A replication that did not complete; ``record`` is what ``failed.json`` holds."""

    def __init__(self, name: str, record: dict):
        self.name, self.record = name, record
        err = record["error"]
        where = ""
        if err.get("cell") is not None:
            where = f" in cell {err['cell']} (In [{err.get('execution_count')}])"
        super().__init__(f"{name} failed{where}: {err['ename']}: {err['evalue']} "
                         f"(see {record.get('failed_json', 'failed.json')})")


# --------------------------------------------------------------------------- warnings
class ScalereproWarning(UserWarning):
    """Base of every warning the product issues."""


class FitWarning(ScalereproWarning):
    """A numerical problem with a fit: not converged, at a bound, ill-conditioned."""


class UnitWarning(ScalereproWarning):
    """A column's values look like they are in unexpected units (a likely unit slip)."""

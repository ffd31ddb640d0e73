"""scalerepro: reproduce and replicate neural scaling-law fits, carefully.

The public surface is :data:`__all__` (``tests/test_public_api.py`` pins it): the fitting
core, the allocation, the three Chinchilla approaches, the data loader, fits of your own
runs, the replication runner, and the common error and warning bases. The two central
functions share their modules' names, so they are imported from there:
``from scalerepro.fit import fit`` and ``from scalerepro.bootstrap import bootstrap``
(as a package attribute, ``scalerepro.fit`` must stay the module). Everything is
imported on first use (PEP 562), so ``import scalerepro`` and the CLI start fast; modules
not listed here are importable too, but may change between versions.
"""

from importlib import import_module

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    # laws and fitting
    "Law": "laws", "Chinchilla": "laws", "get_law": "law_registry", "LAWS": "law_registry",
    "Objective": "objective", "FitResult": "fit", "BootstrapResult": "bootstrap",
    # compute-optimal allocation and the three approaches
    "training_flops": "optimal", "compute_optimal": "optimal", "allocation_exponents": "optimal",
    "allocation_table": "optimal",
    "approach1": "approaches", "approach2": "approaches", "approach3": "approaches",
    # data, own runs, replications
    "load": "data", "fit_runs": "userfit", "Diagnostic": "diagnostics",
    "load_spec": "spec", "run": "runner",
    # errors and warnings
    "ScalereproError": "errors", "ScalereproWarning": "errors", "FitWarning": "errors",
    "InputError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scalerepro' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

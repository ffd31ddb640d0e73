"""scalerepro: reproduce and replicate neural scaling-law fits, carefully.

The public surface is :data:`__all__` (``tests/test_public_api.py`` pins it): the fitting
core, the allocation, the three Chinchilla approaches, the data loader, fits of your own
runs, the replication runner, and the common error and warning bases::

    from scalerepro import Chinchilla, fit, bootstrap

The package is layered (``docs/design.md``): ``core`` (laws, objective, solver, fit,
bootstrap, allocation), ``io`` (data registry and input), ``analyses`` (IsoFLOP, the
approaches, sensitivity, the papers' forms), ``publishing`` (specs, records, checklist,
reports, runner) and the ``cli`` on top; ``errors`` and ``diagnostics`` sit below them
all. Everything is imported on first use (PEP 562), so ``import scalerepro`` and the CLI
start fast; modules not listed here are importable too, but may change between versions.
"""

from importlib import import_module

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    # laws and fitting
    "Law": "core.laws", "Chinchilla": "core.laws", "get_law": "analyses.law_registry", "LAWS": "analyses.law_registry",
    "Objective": "core.objective", "fit": "core.fit", "FitResult": "core.fit",
    "bootstrap": "core.bootstrap", "BootstrapResult": "core.bootstrap",
    # compute-optimal allocation and the three approaches
    "training_flops": "core.optimal", "compute_optimal": "core.optimal", "allocation_exponents": "core.optimal",
    "allocation_table": "core.optimal",
    "approach1": "analyses.approaches", "approach2": "analyses.approaches", "approach3": "analyses.approaches",
    # data, own runs, replications
    "load": "io.data", "fit_runs": "runs.fit", "Diagnostic": "diagnostics",
    "load_spec": "publishing.spec", "run": "publishing.runner",
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

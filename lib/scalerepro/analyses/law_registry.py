"""Law forms by name: what ``scalerepro fit --form`` and fits of users' runs look up.

The registry is built here, explicitly, from the core forms (:data:`scalerepro.core.laws.CORE_LAWS`)
and the forms each paper module offers (:data:`scalerepro.analyses.kaplan_laws.KAPLAN_LAWS`), so
importing a module never changes another module's tables. A new paper's forms are
registered in :func:`_build`; a name registered twice is an error, not a silent override.
"""

from __future__ import annotations

from types import MappingProxyType

from . import bhagia2024_laws, data_constrained, gadre2024_laws, kaplan_laws
from ..core.constraints import constrain
from ..core.laws import CORE_LAWS, Chinchilla, Law


def _register(registry: dict[str, Law], forms: dict[str, Law], source: str) -> None:
    for name, law in forms.items():
        if name in registry:
            raise ValueError(f"law form {name!r} from {source} is already registered")
        registry[name] = law


def _build() -> dict[str, Law]:
    registry: dict[str, Law] = {}
    _register(registry, CORE_LAWS, "scalerepro.core.laws")
    # Hoffmann's form with one exponent for N and D (a sensitivity variant): a tie, not a class
    _register(registry, {"chinchilla_tied": constrain(Chinchilla(), tie={"beta": "alpha"})}, "scalerepro.analyses.law_registry")
    _register(registry, kaplan_laws.KAPLAN_LAWS, "scalerepro.analyses.kaplan_laws")
    # The plain compute law with an irreducible term, under the name users expect.
    _register(registry, {"power_law": kaplan_laws.KAPLAN_LAWS["kaplan2020_c_with_e"]}, "scalerepro.analyses.law_registry")
    _register(registry, data_constrained.LAWS, "scalerepro.analyses.data_constrained")
    # Gadre et al. 2024: the over-training law in (N, M) and the loss -> downstream error law
    _register(registry, gadre2024_laws.GADRE_LAWS, "scalerepro.analyses.gadre2024_laws")
    # Bhagia et al. 2024: accuracy from a task loss (sigmoid) and their step-1 forms
    _register(registry, bhagia2024_laws.BHAGIA_LAWS, "scalerepro.analyses.bhagia2024_laws")
    return registry


#: Every law form by name (read-only).
LAWS = MappingProxyType(_build())


def get_law(name: str) -> Law:
    """Look a law up by name, with the valid names in the error."""
    try:
        return LAWS[name]
    except KeyError:
        raise ValueError(f"unknown law form {name!r}; valid forms: {', '.join(sorted(LAWS))}") from None

"""The law registry is built explicitly: importing a module does not change another's tables."""

import subprocess
import sys

import pytest

from scalerepro.analyses import bhagia2024_laws, data_constrained, gadre2024_laws, kaplan_laws, law_registry
from scalerepro.core import laws


def test_registry_holds_the_core_and_the_papers_forms():
    assert set(law_registry.LAWS) == (set(laws.CORE_LAWS) | set(kaplan_laws.KAPLAN_LAWS)
                                      | {"power_law", "chinchilla_tied"} | set(data_constrained.LAWS)
                                      | set(gadre2024_laws.GADRE_LAWS) | set(bhagia2024_laws.BHAGIA_LAWS))
    assert law_registry.get_law("power_law") is kaplan_laws.KAPLAN_LAWS["kaplan2020_c_with_e"]


def test_importing_a_paper_module_leaves_the_core_table_alone():
    code = ("import scalerepro.core.laws as l; before = set(l.CORE_LAWS); import scalerepro.analyses.kaplan_laws; "
            "assert set(l.CORE_LAWS) == before and not hasattr(l, 'LAWS')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_name_registered_twice_is_an_error():
    registry = {}
    law_registry._register(registry, {"chinchilla": laws.Chinchilla()}, "first")
    with pytest.raises(ValueError, match="'chinchilla' from second is already registered"):
        law_registry._register(registry, {"chinchilla": laws.Chinchilla()}, "second")


def test_the_registry_is_read_only():
    with pytest.raises(TypeError):
        law_registry.LAWS["mine"] = laws.Chinchilla()


def test_a_law_says_whether_it_has_a_compute_optimal_allocation():
    from scalerepro.core import optimal

    assert laws.Chinchilla().has_allocation and law_registry.get_law("chinchilla_tied").has_allocation
    assert not law_registry.get_law("power_law").has_allocation and not laws.KaplanWithE().has_allocation
    params = {"E": 1.8, "A": 480.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}
    assert laws.Chinchilla().compute_optimal(params, 1e24)["N_opt"] == optimal.compute_optimal(params, 1e24)["N_opt"]
    tied = law_registry.get_law("chinchilla_tied").compute_optimal({"E": 1.8, "A": 480.0, "B": 2085.0, "alpha": 0.35}, 1e24)
    assert tied["a"] == 0.5
    assert laws.KaplanWithE().compute_optimal(params, 1e24) is None

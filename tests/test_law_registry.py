"""The law registry is built explicitly: importing a module does not change another's tables."""

import subprocess
import sys

import pytest

from scalerepro import kaplan_laws, laws, law_registry


def test_registry_holds_the_core_and_the_papers_forms():
    assert set(law_registry.LAWS) == set(laws.CORE_LAWS) | set(kaplan_laws.KAPLAN_LAWS) | {"power_law"}
    assert law_registry.get_law("power_law") is kaplan_laws.KAPLAN_LAWS["kaplan2020_c_with_e"]


def test_importing_a_paper_module_leaves_the_core_table_alone():
    code = ("import scalerepro.laws as l; before = set(l.CORE_LAWS); import scalerepro.kaplan_laws; "
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

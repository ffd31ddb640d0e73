"""The public surface (``scalerepro.__all__``) is pinned: a change to it is a decision, made here."""

import subprocess
import sys

import scalerepro

PUBLIC = ["BootstrapResult", "Chinchilla", "Diagnostic", "FitResult", "FitWarning", "InputError", "LAWS", "Law",
          "Objective", "ScalereproError", "ScalereproWarning", "allocation_exponents", "allocation_table",
          "approach1", "approach2", "approach3", "compute_optimal", "fit_runs", "get_law",
          "load", "load_spec", "run", "training_flops"]


def test_public_names_are_pinned_and_resolve():
    assert scalerepro.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(scalerepro, name) is not None, name


def test_import_scalerepro_imports_no_submodule():
    code = "import sys, scalerepro; print(sorted(m for m in sys.modules if m.startswith('scalerepro.')))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        scalerepro.fitt
    except AttributeError as exc:
        assert "fitt" in str(exc)
    else:
        raise AssertionError("scalerepro.fitt resolved")


def test_the_fit_and_bootstrap_modules_stay_modules():
    import types

    from scalerepro.bootstrap import bootstrap
    from scalerepro.fit import fit

    assert isinstance(scalerepro.fit, types.ModuleType) and isinstance(scalerepro.bootstrap, types.ModuleType)
    assert callable(fit) and callable(bootstrap)

"""The public surface (``scalerepro.__all__``) is pinned: a change to it is a decision, made here."""

import subprocess
import sys

import scalerepro

PUBLIC = ["BootstrapResult", "Chinchilla", "Diagnostic", "FitResult", "FitWarning", "InputError", "LAWS", "Law",
          "Objective", "ScalereproError", "ScalereproWarning", "allocation_exponents", "allocation_table",
          "approach1", "approach2", "approach3", "bootstrap", "compute_optimal", "fit", "fit_runs", "get_law",
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


def test_fit_and_bootstrap_are_the_functions_at_the_top():
    """The two central functions are imported from the package itself; their modules live in
    the core layer (``scalerepro.core.fit``), so the names do not clash."""
    from scalerepro.core import bootstrap as bootstrap_module, fit as fit_module

    assert scalerepro.fit is fit_module.fit and scalerepro.bootstrap is bootstrap_module.bootstrap
    assert callable(scalerepro.fit) and callable(scalerepro.bootstrap)

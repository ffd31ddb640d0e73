"""Imports go one way, down the layers: a module never imports one from a layer above it.

The layers are the package's folders, bottom to top (docs/design.md draws them):
  base        errors, the diagnostics record and the summary every layer uses (``scalerepro/*.py``)
  core        laws, the objective, the solver, fit, bootstrap, allocation, statistics,
              identifiability and design checks: arrays in, results out; and where
              independent tasks run (scheduler: in-process or on Dask)
  io          the data registry and loader, validation, safe unpickling, own-run input
  analyses    IsoFLOP and the three approaches, accounting, loss-to-loss, sensitivity,
              and the papers' own forms and tables (Kaplan, Porian), the law registry
  publishing  specs, records, checklist, figures, reports, the runner (rendering)
  runs        the commands on a user's own runs, one module each (fit, approaches,
              sensitivity, backtest; fit's --predict, --metric and --form data_constrained)
  cli         the command line (``scalerepro/cli.py``)
A module at the top of the package other than the base ones and the CLI fails this test:
new work goes into the folder of its layer.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "scalerepro"
ORDER = ["base", "core", "io", "analyses", "publishing", "runs", "cli"]
TOP_LEVEL = {"__init__": "base", "errors": "base", "diagnostics": "base", "summary": "base", "cli": "cli"}


def module_name(path: Path) -> str:
    """``lib/scalerepro/core/fit.py`` -> ``core.fit``; ``lib/scalerepro/errors.py`` -> ``errors``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> str:
    """The layer of a module: its folder, or the base/CLI role of a top-level module."""
    return module.split(".")[0] if "." in module or module in ORDER else TOP_LEVEL.get(module, "unplaced")


FILES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}
MODULES = sorted(FILES)


def resolve(importer: str, level: int, target: str | None) -> str:
    """The package-relative name of ``from <level dots><target> import ...`` in ``importer``."""
    package = importer.split(".") if FILES[importer].name == "__init__.py" and importer != "__init__" else \
        importer.split(".")[:-1]
    base = package[:len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([target] if target else [])])


def imported_modules(module: str, path: Path | None = None) -> set[str]:
    """The package's own modules that ``module`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((path or FILES[module]).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = resolve(module, node.level, node.module)
            found.add(target)
            found.update(f"{target}.{a.name}".lstrip(".") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scalerepro."):
            target = node.module.removeprefix("scalerepro.")
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("scalerepro.") for a in node.names if a.name.startswith("scalerepro."))
    return {m for m in found if m in FILES and m != "__init__"}


def test_every_module_is_in_a_layer():
    unplaced = [m for m in MODULES if layer_of(m) == "unplaced"]
    assert not unplaced, f"move these into the folder of their layer ({', '.join(ORDER[1:-1])}): {unplaced}"


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_from_a_layer_above(module):
    rank = ORDER.index(layer_of(module))
    upward = sorted(m for m in imported_modules(module) if ORDER.index(layer_of(m)) > rank)
    assert not upward, f"{module} ({layer_of(module)}) imports upward: " + ", ".join(
        f"{m} ({layer_of(m)})" for m in upward)


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from ..publishing.report import render\n    import scalerepro.cli\n"
                    "    from . import fit\n")
    assert imported_modules("core.optimal", path) == {"publishing.report", "cli", "core",
                                                      "core.fit"}
    assert layer_of("publishing.report") == "publishing" and layer_of("errors") == "base"
    assert layer_of("helpers") == "unplaced"


def test_no_import_cycle():
    graph = {m: {d for d in imported_modules(m) - {m} if FILES[d].name != "__init__.py"} for m in MODULES}
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)

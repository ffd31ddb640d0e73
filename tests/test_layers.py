"""Imports go one way, down the layers: a module never imports one from a layer above it.

The layers, bottom to top (docs/design.md draws them):
  base        errors and the diagnostics record every layer uses
  core        laws, the objective, the solver, fit, bootstrap, allocation, statistics,
              identifiability and design checks: arrays in, results out; and where
              independent tasks run (scheduler: in-process or on Dask)
  io          the data registry and loader, validation, safe unpickling, own-run input
  analyses    IsoFLOP and the three approaches, accounting, loss-to-loss, sensitivity,
              and the papers' own forms and tables (Kaplan, Porian), the law registry
  publishing  specs, records, checklist, figures, reports, the runner, own-run reports
  cli         the command line
A new module must be placed in LAYERS; this test fails until it is.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "scalerepro"
ORDER = ["base", "core", "io", "analyses", "publishing", "cli"]
LAYERS = {
    "base": ["errors", "diagnostics", "summary", "__init__"],
    "core": ["laws", "objective", "newton", "chinchilla_kernel", "profile", "fit", "bootstrap", "optimal", "stats",
             "selection", "identifiability", "design_checks", "constraints", "scheduler"],
    "io": ["data", "validate", "safe_pickle", "runs_input"],
    "analyses": ["isoflop", "approaches", "accounting", "loss_to_loss", "brandfonbrener", "sensitivity", "kaplan_laws",
                 "porian", "law_registry", "userapproaches"],
    "publishing": ["spec", "results", "checklist", "report", "notebook_html", "runner", "fit_figures",
                   "sensitivity_figures", "userfit", "usersensitivity"],
    "cli": ["cli"],
}
LAYER_OF = {module: ORDER.index(layer) for layer, modules in LAYERS.items() for module in modules}


def imported_modules(path: Path) -> set[str]:
    """The package's own modules that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scalerepro."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("scalerepro."))
    return {m for m in found if (PACKAGE / f"{m}.py").exists()}


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))


def test_every_module_has_a_layer():
    assert not set(MODULES) - set(LAYER_OF), "place these modules in a layer (tests/test_layers.py)"


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_from_a_layer_above(module):
    upward = sorted(m for m in imported_modules(PACKAGE / f"{module}.py")
                    if LAYER_OF.get(m, -1) > LAYER_OF.get(module, len(ORDER)))
    assert not upward, f"{module} ({ORDER[LAYER_OF[module]]}) imports upward: " + ", ".join(
        f"{m} ({ORDER[LAYER_OF[m]]})" for m in upward)


def test_the_check_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from .report import render\n    import scalerepro.cli\n")
    assert imported_modules(path) == {"report", "cli"}


def test_no_import_cycle():
    graph = {m: imported_modules(PACKAGE / f"{m}.py") - {m} for m in MODULES}
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

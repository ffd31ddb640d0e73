"""`make mutants`: mutation testing of the code that decides what users read.

mutmut (from PyPI, in the dev extras) changes one operator, constant or call at a time in
the functions below -- the objective, the allocation, the verdict rules, the bootstrap, the
hold-out scoring and the checklist status -- and runs the fast tests against each change.
A mutant that no test notices ("survived") is either a missing test or an equivalent
mutant (a change that cannot alter any result); the equivalent ones are listed, each with
the reason, in docs/equivalent-mutants.yaml. This script prints every survivor, says which
are explained there, and exits 1 while any is not. See docs/mutation-testing.md.

mutmut 3 imports mutated code only from ``src/`` (or the repository root), so the run
happens in ``build/mutation/``, a staging folder in which ``src`` links to ``lib``; its
results stay there for ``mutmut show NAME`` / ``mutmut browse`` (run in that folder).

Usage: ``python tools/mutants.py [--jobs N] [--only AREA ...]`` (AREA: a key of TARGETS).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "docs" / "equivalent-mutants.yaml"

# Area -> [(module, [functions])]: the functions that compute a number or a verdict a
# user reads ("Class.method" for methods). Text-only helpers (describe, record, warnings)
# are left out.
TARGETS = {
    "objective": [("core.objective", ["Objective.__post_init__", "Objective.terms", "Objective.total",
                                 "Problem.__init__", "Problem._w", "Problem._terms", "Problem.value",
                                 "Problem.value_grad", "Problem.value_grad_hess"])],
    "optimal": [("core.optimal", ["training_flops", "tokens_from_flops", "allocation_exponents",
                             "allocation_constant", "compute_optimal", "allocation_table"])],
    "spec rules": [("publishing.spec", ["evaluate_claim", "_le", "_is_interval", "_is_number", "_check_rule"])],
    "bootstrap": [("core.stats", ["percentile_interval"]),
                  ("core.bootstrap", ["resample_weights", "bootstrap", "BootstrapResult.interval",
                                 "BootstrapResult.intervals", "BootstrapResult.standard_errors",
                                 "BootstrapResult.covariance"])],
    "userfit hold-out": [("io.runs_input", ["split_holdout", "parse_holdout"]),
                         ("runs.fit", ["_holdout_table", "UserFit.holdout_summary"])],
    "checklist status": [("publishing.checklist", ["evaluate", "summary"])],
}
# The fast tests that exercise these functions directly (each takes seconds). The others see
# no mutant or reach the same functions through a whole CLI fit and report: test_userfit.py,
# test_report.py and test_fit_property.py take minutes under mutmut's tracing, and every
# surviving mutant would run them all. Leaving them out can only add survivors (a mutant they
# alone would kill is listed, to be read), never hide one.
TESTS = ["test_spec.py", "test_results.py", "test_checklist.py", "test_optimal_bootstrap.py",
         "test_holdout_scoring.py", "test_laws_fit.py", "test_numerics.py", "test_accounting.py",
         "test_kaplan_with_e.py", "test_fit_allocation.py"]
PYTEST_ARGS = ["-p", "no:cacheprovider", "-m", "not slow and not browser"]
# mutmut stops a mutant's tests after (estimate + TIMEOUT_CONSTANT) x 15 wall seconds, where
# its estimate is the covering tests' call time alone. The module fixtures those tests share
# (a fit, a CLI run) are not in it, so with mutmut's default constant (1 s) correct-but-
# fixture-heavy runs were cut at ~20 s and counted as "timeout". 12 s gives about three minutes.
TIMEOUT_CONSTANT = 12
ALSO_COPY = ["tests", "replications", "data", "notebooks", "environment.yml", "pyproject.toml"]


def patterns(areas) -> list[str]:
    """mutmut mutant-name patterns (``module.x_function__mutmut_N``, ``module.xǁClassǁmethod__mutmut_N``)."""
    return [f"scalerepro.{module}.{'xǁ' + f.replace('.', 'ǁ') if '.' in f else 'x_' + f}__mutmut_*"
            for area in areas for module, functions in TARGETS[area] for f in functions]


def readable(mutant: str) -> str:
    """``scalerepro.publishing.spec.x_evaluate_claim__mutmut_7`` -> ``scalerepro.publishing.spec.evaluate_claim``."""
    name = mutant.partition("__mutmut_")[0]
    module, _, mangled = name.rpartition(".")
    return f"{module}.{mangled.removeprefix('x_').removeprefix('xǁ').replace('ǁ', '.')}"


def stage(areas) -> None:
    """Lay out build/mutation afresh: src -> lib, the files the tests read, mutmut's setup.cfg.

    mutmut's own folder (``mutants/``) is removed first: mutmut does not re-mutate a file it
    once copied unmutated, and with a selection of functions it re-tests them all anyway."""
    shutil.rmtree(STAGE / "mutants", ignore_errors=True)
    STAGE.mkdir(parents=True, exist_ok=True)
    for name, target in [("src", "lib"), *[(p, p) for p in ALSO_COPY]]:
        link = STAGE / name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(ROOT / target, STAGE))
    # mutmut copies the package file by file and skips linked folders (the specs and
    # notebooks the package ships): link them into its copy.
    package = STAGE / "mutants" / "src" / "scalerepro"
    package.mkdir(parents=True)
    for entry in (ROOT / "lib" / "scalerepro").iterdir():
        if entry.is_symlink() and entry.is_dir():
            (package / entry.name).symlink_to(os.readlink(entry))  # relative: to mutmut's copies
    files = sorted({f"src/scalerepro/{module.replace('.', '/')}.py" for a in areas for module, _ in TARGETS[a]})
    config = ["[mutmut]", "source_paths = src", f"timeout_constant = {TIMEOUT_CONSTANT}", "only_mutate =", *[f"    {f}" for f in files],
              "also_copy =", *[f"    {p}" for p in ALSO_COPY], "pytest_add_cli_args =",
              *[f"    {a}" for a in PYTEST_ARGS], "pytest_add_cli_args_test_selection =",
              *[f"    tests/{t}" for t in TESTS], ""]
    (STAGE / "setup.cfg").write_text("\n".join(config))


# One thread per test process. mutmut stops a mutant's tests after a budget of *CPU* seconds;
# numpy's BLAS and numba start one thread per core, so a test can burn CPU at twice its wall
# time on 2 cores and a slow-but-correct test is then reported as a "timeout". With --jobs
# processes already filling the cores, extra threads only oversubscribe them.
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "NUMBA_NUM_THREADS")}


def mutmut(*args, capture=False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **SINGLE_THREADED}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=STAGE, env=env, text=True,
                          capture_output=capture)


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """The removed and added lines of a mutant's diff, stripped."""
    lines = diff.splitlines()
    body = [line for line in lines if not line.startswith(("---", "+++", "@@"))]
    return ([line[1:].strip() for line in body if line.startswith("-")],
            [line[1:].strip() for line in body if line.startswith("+")])


def load_equivalent() -> list[dict]:
    entries = yaml.safe_load(EQUIVALENT.read_text()) or []
    for e in entries:
        if not {"function", "mutant", "why"} <= set(e):
            raise SystemExit(f"{EQUIVALENT}: each entry needs function, mutant and why: {e}")
    return entries


def explanation(function: str, added: list[str], equivalent: list[dict]) -> str | None:
    """How a listed survivor is explained: an equivalent mutant, or one that a test kept out
    of the mutant run (``killed_by``: e.g. it needs a Dask cluster) kills."""
    for e in equivalent:
        if e["function"] == function and e["mutant"].strip() in added:
            if "killed_by" in e:
                return f"killed by {e['killed_by']}, outside the mutant run: {e['why']}"
            return f"equivalent: {e['why']}"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", nargs="+", choices=list(TARGETS), default=list(TARGETS),
                        metavar="AREA", help=f"areas to mutate: {', '.join(TARGETS)}")
    args = parser.parse_args(argv)
    stage(args.only)
    selected = patterns(args.only)
    run = mutmut("run", "--max-children", str(args.jobs), *selected)
    if run.returncode != 0:
        print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return 2
    wanted = re.compile("|".join(p.replace(".", r"\.").replace("*", ".*") for p in selected))
    listing = mutmut("results", "--all", "true", capture=True).stdout
    statuses = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if wanted.fullmatch(name):
            statuses[name] = status
    equivalent = load_equivalent()
    unexplained, explained = [], []
    for name in sorted(n for n, s in statuses.items() if s not in ("killed", "caught by type check")):
        removed, added = changed_lines(mutmut("show", name, capture=True).stdout)
        function = readable(name)
        why = explanation(function, added, equivalent) if statuses[name] == "survived" else None
        entry = (name, statuses[name], function, removed, added, why)
        (explained if why else unexplained).append(entry)
    print("\nMutants that no fast test kills")
    print("===============================")
    for name, status, function, removed, added, why in unexplained + explained:
        tag = why or "NOT EXPLAINED (add a test, or an entry in docs/equivalent-mutants.yaml)"
        print(f"\n{status}: {function}  [{name}]\n  {tag}")
        print("\n".join([f"    - {line}" for line in removed] + [f"    + {line}" for line in added]))
    counts = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    print(f"\n{len(statuses)} mutants in {', '.join(args.only)}: "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f"; {len(explained)} survivors explained (equivalent, or killed outside the run), "
          f"{len(unexplained)} not explained")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())

"""environment.yml (conda), pyproject.toml (pip) and the Makefile set up the same thing.

Conda is not installed here, so environment.yml is checked as text: it provides only Python
and pip and installs the package through pip exactly as ``make notebook-env`` does. That it
then runs with no kernel registered is what tests/test_install.py and the runner's fallback
tests check.
"""

import re
import shlex
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return env, conda, pip


def _make_recipe_pip_installs(target: str) -> list[list[str]]:
    """The ``pip install`` arguments (options dropped) in a Makefile target's recipe."""
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, f"no {target} target in the Makefile"
    installs = []
    for line in recipe.group(1).splitlines():
        words = shlex.split(line)
        if "pip" in words and "install" in words:
            args = words[words.index("install") + 1:]
            installs.append([w for w in args if w not in ("--quiet", "--upgrade")])
    return installs


def test_environment_yml_installs_the_package_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env, conda, pip = _environment_yml()
    python = [d for d in conda if re.split(r"[=<>]", d)[0] == "python"]
    assert python, "environment.yml must pin python"
    assert Version(python[0].split("=")[-1]) in SpecifierSet(project["requires-python"]), python
    # conda provides only Python and pip: every dependency comes from pyproject.toml
    assert {re.split(r"[=<>]", d)[0] for d in conda} == {"python", "pip"}, conda
    installs = [re.fullmatch(r"-e \.(\[(?P<extras>[^\]]*)\])?", line) for line in pip]
    assert installs and all(installs), f"the pip section may only install this package: {pip}"
    extras = {e for m in installs if m["extras"] for e in m["extras"].split(",")}
    assert extras <= set(project["optional-dependencies"]), extras


def test_environment_yml_installs_what_make_notebook_env_installs():
    _, _, pip = _environment_yml()
    assert [shlex.split(line) for line in pip] == _make_recipe_pip_installs("notebook-env")


def test_readme_conda_line_names_this_environment():
    env, _, _ = _environment_yml()
    readme = (ROOT / "README.md").read_text()
    assert "conda env create -f environment.yml" in readme
    assert f"conda activate {env['name']}" in readme
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert f"Python {python.split('=')[-1]}" in readme


def test_ci_runs_the_numerics_tests_on_generic_code_too():
    # issue 28: a test that passed only with this machine's vector width and FMA failed on
    # a user's CPU; CI (.ci/run -> make test) reruns the numerics tests with numba compiling
    # for a generic x86-64 CPU, in a fresh cache so no host code is reused.
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)
    makefile = (ROOT / "Makefile").read_text()
    test = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "$(GENERIC_CPU_TESTS)" in test
    generic = re.search(r"^GENERIC_CPU_TESTS = ((?:.*\\\n)*.*)$", makefile, re.M).group(1)
    assert "NUMBA_CPU_NAME=generic" in generic and "NUMBA_CACHE_DIR=$$cache" in generic and "mktemp -d" in generic
    assert "$(NUMERICS_TESTS)" in generic and "exit $$status" in generic
    listed = re.search(r"^NUMERICS_TESTS := ((?:.*\\\n)*.*)$", makefile, re.M).group(1).replace("\\\n", " ").split()
    assert {"tests/test_fit_speed_correctness.py", "tests/test_numerics.py"} <= set(listed)
    assert all((ROOT / f).is_file() for f in listed)

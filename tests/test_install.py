"""A plain, non-editable ``pip install`` works from any directory with nothing registered.

``test_wheel_in_a_fresh_virtualenv`` builds the sdist and, from it, the wheel
(``python -m build``, as a release would), installs the wheel with pip into a fresh
virtualenv, and runs ``scalerepro list``, ``run chinchilla_approach3 --profile ci`` and
``report`` from a temporary directory outside the checkout, with HOME, the Jupyter data,
config and runtime directories and JUPYTER_PATH all empty: no ``scalerepro`` kernel exists,
so the run must fall back to the virtualenv's own interpreter and say so.

How the fresh virtualenv gets its dependencies, and why that still proves the point:
resolving ``scalerepro[notebook]`` from the registry takes about five minutes on this
machine (network-bound), too slow for ``make test``. Instead the virtualenv sees, through one
``.pth`` file, a folder of links to exactly the installed distributions that the *wheel's own
metadata* requires for ``scalerepro[notebook]``, followed transitively (with their ``share/``
data files linked where pip puts them): nothing else. Not pytest or the other dev tools (a
notebook importing an undeclared package fails), not the checkout's ``lib/`` (the editable
install's hook is not linked), not the ``scalerepro`` kernel that ``make`` registers. pip
then installs ``wheel[notebook]`` with ``--no-index``, so its resolver checks every declared
requirement against what is linked. What is not tested here is that the registry serves
those versions: ``make dev-env`` does that on every run.
"""

import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import IN_CI, load_or_skip

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("replications", "*.yaml"), ("notebooks", "*.ipynb")
NOT_SOURCE = (".git", ".venv", "out", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
              ".hypothesis", "fit_out")


def test_checkout_ships_its_own_specs_and_notebooks():
    """The package's folders are links to the top-level ones, so the checkout, its editable
    install and a wheel built from it all hold the same specs and notebooks."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for folder, pattern in SHIPPED:
        link = ROOT / "lib" / "scalerepro" / folder
        assert link.is_symlink() and link.resolve() == ROOT / folder, link
        assert f"{folder}/{pattern}" in package_data["scalerepro"]


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv(tmp_path):
    from scalerepro.io import data
    from scalerepro.publishing import spec

    for dataset in spec.load_spec("chinchilla_approach3").datasets:
        load_or_skip(dataset)  # off CI without the data this skips; in CI it fails
    sdist, wheel = _build(tmp_path)
    _check_copies_shipped(sdist, wheel)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]))
    (purelib / "_scalerepro_test_dependencies.pth").write_text(
        f"{_link_dependencies(wheel, 'notebook', tmp_path / 'dependencies', venv)}\n")
    _output([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
             f"{wheel}[notebook]"])

    runtime = Path(tempfile.mkdtemp(prefix="sr-"))  # kernel IPC socket paths must stay short
    env = _clean_environment(tmp_path, venv, runtime, data.cache_dir())
    try:
        kernels = json.loads(_output([python, "-c", "import json; from jupyter_client.kernelspec import "
                                      "KernelSpecManager; print(json.dumps(KernelSpecManager().find_kernel_specs()))"],
                                     env=env))
        assert set(kernels) == {"python3"}, kernels  # only what ipykernel's wheel ships: none registered
        installed = _output([python, "-c", "import scalerepro; print(scalerepro.__file__)"], env=env)
        assert Path(installed).parent == purelib / "scalerepro"

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        listed = _output(["scalerepro", "list"], env=env, cwd=elsewhere)
        names = [line.split()[0] for line in listed.splitlines()[1:]]
        assert names == sorted(p.stem for p in (ROOT / "replications").glob("*.yaml"))

        _output(["scalerepro", "run", "chinchilla_approach3", "--profile", "ci", "--out", "out",
                 "--no-progress"], env=env, cwd=elsewhere)
        results = json.loads((elsewhere / "out" / "chinchilla_approach3" / "results.json").read_text())
        assert results["status"] == "ok" and results["profile"] == "ci" and results["claims"]
        assert results["environment"]["kernel"] == {"name": "python3", "source": "this interpreter",
                                                    "executable": str(python)}
        assert results["environment"]["git"] is None  # an installed notebook, not a checkout's

        _output(["scalerepro", "report", "--out", "out"], env=env, cwd=elsewhere)
        assert (elsewhere / "out" / "index.html").is_file()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _output(argv, **kwargs) -> str:
    """Run a command; on failure show its output in the assertion."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout.strip()


def _build(tmp_path: Path) -> tuple[Path, Path]:
    """sdist, then the wheel from the sdist, from a copy of the working tree (the build writes
    egg-info next to the sources, which must not land in the checkout)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp_path / "dist"
    _output([sys.executable, "-m", "build", "--outdir", dist, source])
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    return sdist, wheel


def _check_copies_shipped(sdist: Path, wheel: Path):
    """Both archives hold every spec and notebook as a regular file equal to the checkout's."""
    shipped = [(f"{folder}/{f.name}", f) for folder, pattern in SHIPPED
               for f in sorted((ROOT / folder).glob(pattern))]
    assert shipped
    with zipfile.ZipFile(wheel) as whl:
        for name, original in shipped:
            info = whl.getinfo(f"scalerepro/{name}")
            assert not stat.S_ISLNK(info.external_attr >> 16), f"{name} is a link in the wheel"
            assert whl.read(info) == original.read_bytes(), name
    with tarfile.open(sdist) as tar:
        top = sdist.name.removesuffix(".tar.gz")
        for name, original in shipped:
            member = tar.getmember(f"{top}/lib/scalerepro/{name}")
            assert member.isfile(), f"{name} is not a regular file in the sdist"
            assert tar.extractfile(member).read() == original.read_bytes(), name


def _link_dependencies(wheel: Path, extra: str, folder: Path, venv: Path) -> Path:
    """Link into ``folder`` the top-level site-packages entries of every installed distribution
    the wheel requires with ``extra``, transitively, and their data files under ``share/`` into
    ``venv`` where pip would have put them (nbconvert's templates; ipykernel's own kernel spec).
    Their console scripts are left out: they would start this environment's Python.
    A requirement that is not installed here fails the test."""
    with zipfile.ZipFile(wheel) as whl:
        metadata = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(whl.read(metadata).decode()).get_all("Requires-Dist") or []
    todo, seen, dists = [(r, ("", extra)) for r in requires], set(), {}
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        try:
            dist = dists.setdefault(canonicalize_name(req.name), importlib.metadata.distribution(req.name))
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{req} (required by the wheel) is not installed here: run `make dev-env`")
        for wanted in ("", *req.extras):
            if (dist.name, wanted) not in seen:
                seen.add((dist.name, wanted))
                todo += [(r, ("", wanted)) for r in dist.requires or []]
    folder.mkdir()
    for dist in dists.values():
        for top in {f.parts[0] for f in dist.files or []} - {".."}:
            if not (folder / top).exists():
                (folder / top).symlink_to(Path(dist.locate_file(top)))
        for f in dist.files or []:
            installed = Path(os.path.normpath(dist.locate_file(f)))
            if f.parts[0] == ".." and installed.is_relative_to(Path(sys.prefix) / "share"):
                target = venv / installed.relative_to(sys.prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(installed)
    return folder


def _clean_environment(tmp_path: Path, venv: Path, runtime: Path, cache: Path) -> dict:
    """A new user's shell with the virtualenv activated: empty HOME and Jupyter paths, no
    PYTHONPATH, no SCALEREPRO_* variable but the data mirror and cache."""
    home = tmp_path / "home"
    (home / "empty").mkdir(parents=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "VIRTUAL_ENV": str(venv), "JUPYTER_PATH": str(home / "empty"),
           "JUPYTER_DATA_DIR": str(home / "jupyter-data"), "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(runtime), "SCALEREPRO_CACHE": str(cache)}
    if os.environ.get("SCALEREPRO_DATA_DIR"):
        env["SCALEREPRO_DATA_DIR"] = str(Path(os.environ["SCALEREPRO_DATA_DIR"]).resolve())
    if IN_CI:
        env["CI"] = "true"
    return env

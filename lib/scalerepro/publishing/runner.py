"""Execute a replication notebook with papermill and publish its results safely.

The contract with readers of ``OUT/NAME/`` is that ``results.json`` and ``report.html``
always describe one complete, successful run. So a run executes into a private attempt
directory, and only when everything (notebook, results, report) is written are the files
renamed into place, ``results.json`` last. A failure (a raising cell, a dead kernel,
Ctrl-C, SIGTERM) leaves the previous good files alone and writes ``failed.json`` and
``failed_report.html`` next to them. A per-replication lock serializes concurrent runs
that share an output directory.

A run needs no set-up beyond installing the package with its notebook extras: the kernel
is the registered ``scalerepro`` kernel when there is one, else this interpreter's own (see
``find_kernel``), and the run record says which.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import checklist
from . import report as reportmod
from ..errors import RunFailed, SetupError
from .results import environment, json_safe, write_json_atomic
from .spec import Spec, SpecError, load_spec, resolve_parameters

DEFAULT_KERNEL = "scalerepro"  # registered by `make notebook-env` / `make dev-env`
NATIVE_KERNEL = "python3"  # ipykernel's own spec: it runs sys.executable
INSTALL_FIX = "pip install 'scalerepro[notebook]' (in a checkout: make notebook-env)"
# Published in this order; results.json last so its presence means the rest is current.
PUBLISHED = ("executed.ipynb", "executed.html", "report.html", "results.json")
STALE_AFTER_SUCCESS = ("failed.json", "failed_report.html", "failed.ipynb")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Kernel:
    """The Jupyter kernel a run executes in, and why that one (``environment.kernel``)."""

    name: str
    source: str  # "registered", "this interpreter" or "$SCALEREPRO_KERNEL"
    executable: str  # the program the kernel spec starts

    def record(self) -> dict:
        return {"name": self.name, "source": self.source, "executable": self.executable}


@dataclass
class Prepared:
    """A replication whose spec, parameters, notebook and kernel were checked before any kernel starts."""

    spec: Spec
    profile: str | None
    parameters: dict
    kernel: Kernel


def prepare(name: str, profile: str | None = None, overrides: dict[str, str] | None = None) -> Prepared:
    """Load the spec, resolve and validate parameters, check the notebook declares them, pick the kernel."""
    spec = load_spec(name)
    parameters = resolve_parameters(spec, profile, overrides)
    kernel = find_kernel()
    check_notebook(spec)
    return Prepared(spec, profile, parameters, kernel)


def find_kernel() -> Kernel:
    """The kernel to run notebooks in, found without any set-up.

    ``$SCALEREPRO_KERNEL`` names one explicitly. Otherwise the registered ``scalerepro``
    kernel (what ``make`` sets up, and what JupyterLab shows as "Python (scalerepro)"), and
    failing that this interpreter's own ipykernel, so that ``pip install`` or
    ``conda env create`` is enough. The fallback is ipykernel's native spec built for
    ``sys.executable``, never a ``python3`` kernel registered by some other Jupyter, which
    may run a Python without scalerepro.
    """
    try:
        import papermill  # noqa: F401  (checked here so a missing extra is one clear line)
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError as exc:
        raise SetupError(f"scalerepro run needs the notebook extras: {exc.name} is not installed "
                         f"in {sys.executable}; install them with {INSTALL_FIX}") from None
    registered = KernelSpecManager()
    requested = os.environ.get("SCALEREPRO_KERNEL")
    if requested:
        try:
            spec = registered.get_kernel_spec(requested)
        except NoSuchKernel:
            available = ", ".join(sorted(registered.find_kernel_specs())) or "none"
            raise SetupError(f"$SCALEREPRO_KERNEL names kernel {requested!r}, which is not installed "
                             f"(available: {available})") from None
        return _runnable(Kernel(requested, "$SCALEREPRO_KERNEL", spec.argv[0]), spec.resource_dir)
    if DEFAULT_KERNEL in registered.find_kernel_specs():
        spec = registered.get_kernel_spec(DEFAULT_KERNEL)
        return _runnable(Kernel(DEFAULT_KERNEL, "registered", spec.argv[0]), spec.resource_dir)
    try:
        from ipykernel.kernelspec import get_kernel_dict
    except ImportError:
        raise SetupError(f"no Jupyter kernel to run notebooks in: no kernel named {DEFAULT_KERNEL!r} is "
                         f"registered and ipykernel is not installed in {sys.executable}; "
                         f"install it with {INSTALL_FIX}") from None
    return Kernel(NATIVE_KERNEL, "this interpreter", get_kernel_dict()["argv"][0])


def _runnable(kernel: Kernel, spec_dir: str) -> Kernel:
    """A registered kernel whose program is gone (its virtualenv was deleted) fails here, by name,
    instead of as a kernel that never starts."""
    program = kernel.executable
    # jupyter_client starts a bare "python"/"python3"/"python3.X" as the running interpreter
    if program in ("python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])):
        return Kernel(kernel.name, kernel.source, sys.executable)
    found = shutil.which(program)
    if found is None:
        raise SetupError(f"kernel {kernel.name!r} ({spec_dir}) runs {program}, which does not exist; "
                         f"register the kernel again from the Python that has scalerepro "
                         f"(python -m ipykernel install --user --name {kernel.name}) or remove it "
                         f"(jupyter kernelspec remove {kernel.name})")
    return Kernel(kernel.name, kernel.source, found)


def check_notebook(spec: Spec) -> None:
    """The notebook's ``parameters`` cell must hold exactly the spec's parameters plus ``out_dir``.

    papermill only logs a warning for an injected name the notebook does not use, so a
    renamed parameter would otherwise run silently with its old default.
    """
    import papermill

    if not spec.notebook.is_file():
        raise SpecError(f"{spec.path}: notebook {spec.notebook} does not exist")
    declared = set(papermill.inspect_notebook(str(spec.notebook)))
    expected = set(spec.parameters) | {"out_dir"}
    if declared != expected:
        missing, extra = sorted(expected - declared), sorted(declared - expected)
        raise SpecError(f"{spec.notebook}: parameters cell does not match {spec.path.name}: "
                        f"missing {missing or 'none'}, not in spec {extra or 'none'}")


def run(name: str, profile: str | None = None, out_root="out", overrides: dict[str, str] | None = None,
        progress: bool = True) -> dict:
    """Validate, execute and publish one replication; return its results (raise RunFailed)."""
    return execute(prepare(name, profile, overrides), out_root, progress)


def execute(prepared: Prepared, out_root, progress: bool = True) -> dict:
    spec = prepared.spec
    out_dir = Path(out_root).resolve() / spec.name
    with replication_lock(out_dir), sigterm_as_interrupt(), _kernel_environment(spec):
        attempt = _new_attempt(out_dir)
        started, t0 = now(), time.monotonic()
        try:
            error = _execute_notebook(prepared, attempt, progress)
        except KeyboardInterrupt:
            _fail(prepared, out_dir, attempt, {"cell": None, "ename": "KeyboardInterrupt",
                                               "evalue": "run interrupted (Ctrl-C or SIGTERM)"},
                  _timing(started, t0))
            raise
        timing = _timing(started, t0)
        if error is None:
            try:
                results = _load_results(attempt, spec.name)
            except ValueError as exc:
                error = {"cell": None, "ename": "ResultsError", "evalue": str(exc)}
        if error is not None:
            raise RunFailed(spec.name, _fail(prepared, out_dir, attempt, error, timing))
        results.update(status="ok", profile=prepared.profile, parameters=prepared.parameters,
                       environment=_environment(prepared),
                       timing={**results.get("timing", {}), **timing})
        # The notebook filled the checklist before the runner knew the git commit; answer
        # it again now that the release items can name the exact code that ran.
        results["checklist"] = checklist.evaluate(results, spec)
        write_json_atomic(attempt / "results.json", results)
        results = json_safe(results)
        (attempt / "report.html").write_text(
            reportmod.render_report(results, attempt / "executed.ipynb"))
        reportmod.notebook_to_html(attempt / "executed.ipynb", attempt / "executed.html")
        _publish(attempt, out_dir)
        return results


def execute_task(prepared: Prepared, out_root: str, data_dir: str | None = None) -> dict:
    """One replication as a task on a Dask worker: its results, or its failure record
    (``status`` "failed", what ``failed.json`` holds) when the notebook failed.

    ``out_root`` is the absolute output root as the submitting machine sees it, and
    ``data_dir`` its ``$SCALEREPRO_DATA_DIR``: the worker publishes there (a cluster needs a
    shared filesystem) and reads the same data, whatever its own environment says. Every run
    of one command sets the same value, so concurrent tasks of a multi-threaded worker agree.
    """
    if data_dir:
        os.environ["SCALEREPRO_DATA_DIR"] = data_dir
    try:
        return execute(prepared, out_root, progress=False)
    except RunFailed as exc:  # returned, not raised: the client records it like an in-process failure
        return exc.record


def record_failure(prepared: Prepared, out_root, error: dict, started: str, t0: float) -> dict:
    """Record a failure that no notebook cell reported (a task whose worker died, an error
    raised around the notebook) the way a failed notebook is recorded: ``failed.json`` and
    ``failed_report.html`` next to the last good results, which stay."""
    out_dir = Path(out_root).resolve() / prepared.spec.name
    with replication_lock(out_dir):
        return _fail(prepared, out_dir, _new_attempt(out_dir), error, _timing(started, t0))


# ---------------------------------------------------------------------------- execution
@functools.cache
def ipc_kernel_manager(this_interpreter: bool = False):
    """A kernel manager that talks to the local kernel over IPC sockets in Jupyter's
    runtime directory instead of loopback TCP: no open ports, and no plain-text-TCP
    warning from the kernel on every run.

    With ``this_interpreter`` it looks in no kernel directory, so the only kernel it knows
    is ipykernel's native ``python3`` spec for ``sys.executable``.

    Each kernel gets socket files of its own: jupyter_client's default, ``kernel-ipc-N`` in
    the working directory (the notebooks folder), is shared by every run there, so kernels
    started at once (Dask workers, two terminals) took the same sockets and rejected each
    other's messages ("Invalid Signature")."""
    import uuid

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("ip", str(runtime / f"scalerepro-{uuid.uuid4().hex[:12]}-ipc"))
            if this_interpreter:
                kwargs.setdefault("kernel_spec_manager", KernelSpecManager(kernel_dirs=[]))
            super().__init__(**kwargs)

    return IPCKernelManager


def _execute_notebook(prepared: Prepared, attempt: Path, progress: bool) -> dict | None:
    """Run papermill; return None on success or the error record of a failed execution."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    spec = prepared.spec
    try:
        papermill.execute_notebook(
            str(spec.notebook), str(attempt / "executed.ipynb"),
            parameters={**prepared.parameters, "out_dir": str(attempt)},
            kernel_name=prepared.kernel.name,
            cwd=str(spec.notebook.parent), progress_bar=progress, log_output=False,
            kernel_manager_class=ipc_kernel_manager(prepared.kernel.source == "this interpreter"))
    except PapermillExecutionError as exc:
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        return {"cell": exc.cell_index, "execution_count": exc.exec_count, "ename": exc.ename,
                "evalue": exc.evalue, "source": (exc.source or "")[:2000],
                "traceback": "\n".join(tb.splitlines()[-40:])}
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # dead kernel, kernel that never started, unreadable notebook
        return {"cell": None, "ename": type(exc).__name__, "evalue": str(exc) or repr(exc)}
    return None


def _load_results(attempt: Path, name: str) -> dict:
    path = attempt / "results.json"
    if not path.is_file():
        raise ValueError("the notebook finished without writing results.json (no Recorder.write() call?)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"results.json written by the notebook is not valid JSON: {exc}") from None
    if results.get("replication") != name:
        raise ValueError(f"results.json is for replication {results.get('replication')!r}, expected {name!r}")
    return results


def _fail(prepared: Prepared, out_dir: Path, attempt: Path, error: dict, timing: dict) -> dict:
    """Record a failure next to (never over) the last good results."""
    spec = prepared.spec
    record = {"replication": spec.name, "title": spec.title, "paper": spec.paper,
              "status": "failed", "profile": prepared.profile, "parameters": prepared.parameters,
              "error": error, "claims": [], "fits": {}, "data": [], "warnings": [],
              "environment": _environment(prepared), "timing": timing,
              "failed_json": str(out_dir / "failed.json")}
    executed = attempt / "executed.ipynb"
    html = reportmod.render_report(json_safe(record), executed if executed.is_file() else None)
    tmp_html = attempt / "failed_report.html"
    tmp_html.write_text(html)
    if executed.is_file():
        os.replace(executed, out_dir / "failed.ipynb")
    os.replace(tmp_html, out_dir / "failed_report.html")
    write_json_atomic(out_dir / "failed.json", record)
    _remove_attempt(attempt)
    return record


def _publish(attempt: Path, out_dir: Path) -> None:
    """Rename the attempt's files over the published ones, results.json last."""
    figures = attempt / "figures"
    if figures.is_dir():
        old = out_dir / "figures"
        if old.exists():
            os.replace(old, attempt / "figures.old")
        os.replace(figures, old)
    for name in PUBLISHED:
        if (attempt / name).exists():
            os.replace(attempt / name, out_dir / name)
    for name in STALE_AFTER_SUCCESS:
        (out_dir / name).unlink(missing_ok=True)
    _remove_attempt(attempt)


def _remove_attempt(attempt: Path) -> None:
    shutil.rmtree(attempt, ignore_errors=True)
    with contextlib.suppress(OSError):
        attempt.parent.rmdir()  # only succeeds when no other attempt is left


# ---------------------------------------------------------------------------- plumbing
@contextlib.contextmanager
def replication_lock(out_dir: Path):
    """Hold an exclusive flock on ``out_dir/.lock``; a second run waits and says so."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"scalerepro: another run is writing {out_dir}; waiting for it to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt so the failure record and cleanup still run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _kernel_environment(spec: Spec):
    """Variables the kernel inherits while it runs, restored afterwards.

    The notebook's Recorder loads its spec again: point it at the spec the runner checked,
    which matters when the kernel comes from another environment (a registered kernel) with
    its own copy of the specs. The kernel runs in the notebooks directory, so a relative
    data directory is made absolute.
    """
    wanted = {"SCALEREPRO_REPLICATIONS_DIR": str(spec.path.parent)}
    if os.environ.get("SCALEREPRO_DATA_DIR"):
        wanted["SCALEREPRO_DATA_DIR"] = str(Path(os.environ["SCALEREPRO_DATA_DIR"]).expanduser().resolve())
    saved = {var: os.environ.get(var) for var in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _new_attempt(out_dir: Path) -> Path:
    """A fresh attempt directory; any other attempt is a leftover of a killed run (we hold the lock)."""
    attempts = out_dir / ".attempts"
    if attempts.is_dir():
        for stale in attempts.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
    path = attempts / f"{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    path.mkdir(parents=True)
    return path


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _timing(started: str, t0: float) -> dict:
    return {"start": started, "end": now(), "seconds": round(time.monotonic() - t0, 3)}


def _environment(prepared: Prepared) -> dict:
    env = environment()
    env["kernel"] = prepared.kernel.record()
    env["git"] = git_info(prepared.spec.notebook)
    return env


def git_info(notebook: Path) -> dict | None:
    """Commit of the repository that tracks the notebook, and whether tracked files were modified.

    None for an installed notebook, even one whose site-packages sits inside some checkout
    (a virtualenv in the working tree): that checkout's commit did not write it.
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(notebook.parent), *args], capture_output=True,
                              text=True, timeout=20, check=True).stdout.strip()
    try:
        git("ls-files", "--error-unmatch", notebook.name)
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None

"""Scale-out on Dask: the ``--scheduler local:N | ADDRESS`` option of run, sensitivity and fit.

Why Dask (``dask.distributed``): it is the PyData standard for spreading Python work over
processes and machines, runs papermill and numpy unchanged, and reaches clusters through
``dask scheduler`` / ``dask worker`` or dask-jobqueue (SLURM, PBS, ...). So this module only
parses the option, opens and closes a client for one command, and maps independent tasks
(a notebook, a variant, a chunk of bootstrap resamples) with a progress bar fed from task
completion, recording each task's failure instead of losing the others' results.

Without the option nothing here imports Dask: the default stays in-process at no import cost,
and :func:`map_tasks` with ``client=None`` runs the same tasks in a plain loop, with the same
progress bar and the same failure capture.

Tasks must not depend on which worker runs them: every seed is derived from the run's seed
and the task's identity before submission, so a cluster run equals the in-process run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
import sys
import traceback as tracebacks
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from tqdm.auto import tqdm

from ..errors import SchedulerError

INSTALL_FIX = "pip install 'scalerepro[cluster]' (in a checkout: pip install -e '.[cluster]')"
CONNECT_TIMEOUT = "30s"  # how long to wait for a scheduler at an address before giving up
_LOCAL = re.compile(r"local:(\d+)")
_ADDRESS = re.compile(r"([a-z][a-z0-9+]*://)?[^\s:/]+(:\d+)?")


@dataclass(frozen=True)
class Scheduler:
    """A parsed ``--scheduler``: ``local_workers`` for ``local:N``, else ``address``."""

    text: str
    local_workers: int | None = None
    address: str | None = None


def parse(text: str | None) -> Scheduler | None:
    """``local:N`` (N >= 1 worker processes) or a scheduler address; None for in-process.

    Also checks, without importing it, that Dask is installed: a command fails at once
    rather than after its first hour of work."""
    if text is None:
        return None
    text = text.strip()
    local = _LOCAL.fullmatch(text)
    if local:
        n = int(local.group(1))
        if n < 1:
            raise SchedulerError(f"--scheduler local:N needs N >= 1 worker processes, got {text!r}")
        scheduler = Scheduler(text, local_workers=n)
    elif text.startswith("local") or not _ADDRESS.fullmatch(text):
        raise SchedulerError(f"--scheduler expects local:N (N worker processes on this machine) or the "
                             f"address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786), got {text!r}")
    else:
        scheduler = Scheduler(text, address=text)
    if importlib.util.find_spec("distributed") is None:
        _missing()
    return scheduler


def _missing():
    raise SchedulerError(f"--scheduler needs Dask (dask.distributed), which is not installed in "
                         f"{sys.executable}; install it with {INSTALL_FIX}")


def _distributed():
    """``dask.distributed``, or one clear line naming the extra that provides it."""
    try:
        import distributed
    except ImportError:
        _missing()
    return distributed


@contextlib.contextmanager
def session(scheduler) -> Iterator[Any]:
    """A ``distributed.Client`` for the duration of one command, or None for in-process.

    ``scheduler``: None, a ``--scheduler`` text or :class:`Scheduler`, or a Client already
    open (yielded as it is and left open). ``local:N`` starts a LocalCluster of N
    single-threaded worker processes (each task gets a process of its own, as it would
    in-process) and shuts it down on exit; an address connects to a running scheduler and
    only disconnects, leaving its workers up.
    """
    if isinstance(scheduler, str):
        scheduler = parse(scheduler)
    if scheduler is None or not isinstance(scheduler, Scheduler):
        yield scheduler
        return
    distributed = _distributed()
    if scheduler.local_workers is not None:
        # dashboard on a free port: two commands at once must not fight over 8787
        with distributed.LocalCluster(n_workers=scheduler.local_workers, threads_per_worker=1,
                                      processes=True, dashboard_address=":0",
                                      silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler.address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"cannot connect to a Dask scheduler at {scheduler.address} ({exc}); start one "
                             f"with `dask scheduler` and workers with `dask worker {scheduler.address}`") from None
    with client:
        if not client.nthreads():
            print(f"scalerepro: the Dask scheduler at {scheduler.address} has no workers yet; tasks wait "
                  f"until some connect (`dask worker {scheduler.address}`)", file=sys.stderr, flush=True)
        yield client


@dataclass
class Outcome:
    """One task's result, or the exception it raised (with its traceback as text)."""

    item: Any
    value: Any = None
    error: BaseException | None = None
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def error_record(self) -> dict:
        """The error in the shape a failed notebook records (no cell: it was not a notebook cell)."""
        return {"cell": None, "ename": type(self.error).__name__,
                "evalue": str(self.error) or repr(self.error), "traceback": self.traceback[-4000:]}


def map_tasks(client, fn: Callable, items: Iterable, *, desc: str, progress: bool = True,
              sizes: Iterable[int] | None = None, unit: str = "task",
              on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``fn(item)`` for every item, on the client's workers or (client None) in this process.

    Returns one :class:`Outcome` per item, in the items' order. An exception in a task is
    caught and returned in its outcome, so the other tasks finish and keep their results;
    KeyboardInterrupt is not caught (pending tasks are cancelled). The progress bar counts
    ``sizes`` (e.g. resamples per chunk; default 1 per task) as each task completes, and
    ``on_done`` sees each outcome as it arrives (in completion order on a cluster).
    """
    items = list(items)
    sizes = [1] * len(items) if sizes is None else list(sizes)
    outcomes: list[Outcome | None] = [None] * len(items)
    with tqdm(total=sum(sizes), desc=desc, unit=unit, disable=not progress) as bar:
        def finish(i: int, outcome: Outcome) -> None:
            outcomes[i] = outcome
            bar.update(sizes[i])
            if on_done is not None:
                with tqdm.external_write_mode():  # its prints do not tear the bar
                    on_done(outcome)

        if client is None:
            for i, item in enumerate(items):
                try:
                    outcome = Outcome(item, value=fn(item))
                except Exception as exc:  # recorded, like a failed notebook; the loop goes on
                    outcome = Outcome(item, error=exc, traceback=tracebacks.format_exc())
                finish(i, outcome)
            return outcomes
        from distributed import as_completed

        # pure=False: a task is never merged with an identical one from another command
        futures = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in as_completed(futures):
                i = index[future.key]
                if future.status == "finished":
                    outcome = Outcome(items[i], value=future.result())
                elif future.status == "error":  # raised in the task, or its worker died (KilledWorker)
                    exc = future.exception()
                    tb = "".join(tracebacks.format_exception(type(exc), exc, future.traceback()))
                    outcome = Outcome(items[i], error=exc, traceback=tb)
                else:  # cancelled or lost by the scheduler (e.g. it was restarted)
                    outcome = Outcome(items[i], error=RuntimeError(f"Dask task {future.status}"))
                future.release()
                finish(i, outcome)
        except BaseException:
            client.cancel(futures)
            raise
    return outcomes

"""``scalerepro`` command line: parses arguments and delegates to the library.

Exit codes: 0 success; 1 a replication failed or a data file did not verify (the details
are in ``failed.json`` or the printed table); 2 bad input (unknown name, parameter or
profile; unreadable spec or data; no kernel to run notebooks in), reported as one line
without a traceback.

Each subcommand is one ``add_*`` function that registers its parser and handler; adding a
command (e.g. ``fit``) means writing one such function and listing it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import ScalereproError, UsageError


SCHEDULER_HELP = ("local:N starts N worker processes on this machine; an address (tcp://host:8786) "
                  "connects to a running `dask scheduler` (needs pip install 'scalerepro[cluster]')")


# ----------------------------------------------------------------------------- helpers
def _table(rows: list[dict], columns: list[str]) -> str:
    """Plain aligned text table (no dependency, copy-pasteable)."""
    cells = [[str("" if r.get(c) is None else r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def _counts_text(results: dict) -> str:
    from .publishing.report import verdict_counts

    return ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in verdict_counts(results).items() if n)


# ----------------------------------------------------------------------------- commands
def add_list(sub):
    p = sub.add_parser("list", help="list the replications and their profiles")
    p.set_defaults(func=cmd_list)


def cmd_list(args) -> int:
    from .publishing.spec import list_specs, load_spec

    rows = []
    for name in list_specs():
        spec = load_spec(name)
        rows.append({"name": name, "profiles": ",".join(spec.profiles), "claims": len(spec.claims),
                     "title": spec.title})
    print(_table(rows, ["name", "profiles", "claims", "title"]))
    return 0


def add_run(sub):
    p = sub.add_parser("run", help="execute replication notebooks and write their reports")
    p.add_argument("names", nargs="*", metavar="NAME", help="replications to run (see `scalerepro list`)")
    p.add_argument("--all", action="store_true", help="run every replication, continuing past failures")
    p.add_argument("--profile", default=None, help="parameter profile from the spec (e.g. ci, full)")
    p.add_argument("--out", default="out", help="output root; results go to OUT/NAME/ (default: out)")
    p.add_argument("-p", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="override a notebook parameter (YAML value syntax); repeatable")
    p.add_argument("--no-progress", action="store_true", help="hide the per-cell progress bar")
    p.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                   help="one notebook per Dask task: " + SCHEDULER_HELP)
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from .publishing import runner
    from .publishing.spec import list_specs

    if args.all == bool(args.names):
        raise UsageError("give replication names or --all (not both)")
    dask = _scheduler(args)
    names = list_specs() if args.all else list(dict.fromkeys(args.names))
    overrides = _overrides(args.params)
    # Everything is validated before the first kernel starts.
    prepared = [runner.prepare(name, args.profile, overrides) for name in names]
    rows = _run_on_dask(prepared, args, dask) if dask else [_run_here(item, args) for item in prepared]
    failed = [r["replication"] for r in rows if r["status"] != "ok"]
    if len(rows) > 1:
        print(_table(rows, ["replication", "status", "seconds", "verdicts", "report"]))
    if failed:
        print(f"scalerepro: {len(failed)} of {len(rows)} replication(s) failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def _scheduler(args):
    """The parsed ``--scheduler`` (None: in-process), or a SchedulerError printed as one line;
    scalerepro.core.scheduler imports no Dask."""
    from .core import scheduler

    return scheduler.parse(args.scheduler)


def _run_here(item, args) -> dict:
    """One replication in this process, with the per-cell progress bar."""
    from .publishing import runner

    name = item.spec.name
    print(f"== {name} (profile {args.profile or 'default'})", file=sys.stderr, flush=True)
    try:
        results = runner.execute(item, args.out, progress=not args.no_progress)
    except runner.RunFailed as exc:
        return _run_row(exc.record, args.out)
    return _run_row(results, args.out)


def _run_on_dask(prepared, args, dask) -> list[dict]:
    """One notebook per Dask task; each outcome is printed and recorded as it arrives, a
    failed task exactly like a failed notebook, and the rows come back in the given order."""
    import functools
    import os
    import time
    from pathlib import Path

    from .publishing import runner
    from .core import scheduler

    out_root = str(Path(args.out).resolve())
    data_dir = os.environ.get("SCALEREPRO_DATA_DIR")
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    started, t0 = runner.now(), time.monotonic()
    rows = {}

    def done(outcome):
        item = outcome.item
        record = outcome.value if outcome.ok else runner.record_failure(
            item, out_root, outcome.error_record(), started, t0)
        published = Path(out_root) / item.spec.name / "results.json"
        if record["status"] == "ok" and not published.is_file():
            record = runner.record_failure(item, out_root, {
                "cell": None, "ename": "OutputNotShared",
                "evalue": f"the worker wrote {published} on a filesystem this machine does not see; "
                          "--out must be on a filesystem shared with the Dask workers"}, started, t0)
        rows[item.spec.name] = _run_row(record, args.out)

    task = functools.partial(runner.execute_task, out_root=out_root, data_dir=data_dir)
    with runner.sigterm_as_interrupt(), scheduler.session(dask) as client:
        print(f"== {len(prepared)} replication(s) on Dask ({dask.text}, {len(client.nthreads())} workers), "
              f"profile {args.profile or 'default'}", file=sys.stderr, flush=True)
        scheduler.map_tasks(client, task, prepared, desc="replications", unit="notebook",
                            progress=not args.no_progress, on_done=done)
    return [rows[item.spec.name] for item in prepared]


def _run_row(record: dict, out) -> dict:
    """Print one replication's outcome and return its row of the closing table."""
    from .publishing import runner

    name = record["replication"]
    if record["status"] != "ok":
        print(f"{name}: FAILED: {runner.RunFailed(name, record)}", file=sys.stderr, flush=True)
        return {"replication": name, "status": "failed", "seconds": record["timing"]["seconds"],
                "verdicts": "", "report": f"{out}/{name}/failed_report.html"}
    print(f"{name}: ok ({_counts_text(record)}) -> {out}/{name}/report.html", flush=True)
    return {"replication": name, "status": "ok", "seconds": record["timing"]["seconds"],
            "verdicts": _counts_text(record), "report": f"{out}/{name}/report.html"}


def add_report(sub):
    p = sub.add_parser("report", help="write OUT/index.html and OUT/summary.json over all runs")
    p.add_argument("--out", default="out", help="output root used by `scalerepro run` (default: out)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .publishing.report import VERDICTS, render_index

    summary = render_index(args.out)
    rows = [{"replication": r["name"], "status": r["status"], **r["counts"]} for r in summary["replications"]]
    print(_table(rows, ["replication", "status", *VERDICTS]))
    print(f"wrote {args.out}/index.html and {args.out}/summary.json")
    return 1 if summary["failed"] else 0


def add_data(sub):
    p = sub.add_parser("data", help="registered datasets: where they are, whether they verify")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{list,verify}")
    for name, func, doc in (("list", cmd_data_list, "where each registered file is (no hashing)"),
                            ("verify", cmd_data_verify, "hash each file against the registry")):
        q = dsub.add_parser(name, help=doc)
        q.add_argument("dataset", nargs="?", default=None, help="one dataset (default: all)")
        q.set_defaults(func=func)


def cmd_data_list(args) -> int:
    from .io import data

    print(_table(data.list_status(args.dataset), ["dataset", "file", "status", "size", "path"]))
    return 0


def cmd_data_verify(args) -> int:
    from .io import data

    rows = data.verify(args.dataset)
    print(_table(rows, ["dataset", "file", "status", "location", "license", "optional"]))
    bad = [f"{r['dataset']}/{r['file']}" for r in rows if r["status"] != "ok"
           and not (r["status"] == "missing" and r["optional"])]
    if bad:
        print(f"scalerepro: {len(bad)} file(s) did not verify: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


FIT_DESCRIPTION = """\
Fit a scaling law to your own runs with the careful protocol (full start grid, Huber on log
loss, bootstrap over runs, hold-out on the largest runs), check the design and whether the
data determine the parameters, and write results.json and report.html.

The CSV has one row per run or per checkpoint. Roles and the columns they are read from:
  N     model size in parameters (raw count)
  D     training tokens (raw count)   or   C  training FLOPs (D = C / 6N)
  loss  loss in nats per token
  run   optional: run id shared by a run's checkpoints (a column run_id or run is used as is)
  step  optional: training step, orders a run's checkpoints
  budget  approach 2: the IsoFLOP budget (FLOPs) a run was planned at (or --budgets)
  U     --form data_constrained: unique training tokens (D / U = epochs), e.g. --columns U=unique
Columns named N, D, C, loss are used as they are; map others with --columns, e.g.
  --columns N=params,D=tokens,loss=val_loss,run=run_name
Any other column (learning rate, seed, ...) is kept and reported when runs at the same
(N, D) differ in it.

Chinchilla's three estimates of the allocation N_opt ~ C^a, D_opt ~ C^b (--approach):
  3    the parametric fit above (default)
  1    lower envelope of loss against compute (N, loss, C or D; run for checkpoints),
       --envelope grid (default) or lower_hull
  2    loss minimum per IsoFLOP budget (a budget column, or --budgets C1,C2,...)
  all  the fit and approaches 1 and 2 on the same rows, a and b side by side

Findings are printed as diagnostics (error, warning, info) and recorded in results.json.
"""


DUPLICATE_ROWS_HELP = ("rows of one run that repeat a checkpoint (same run and same N, D, C or step; resumed or "
                      "restarted jobs): refuse them (error; default), keep the later row (last: larger step, then "
                      "later in the file), the earlier one (first), or average their losses (mean); the others "
                      "are recorded as dropped")


def _add_row_selection(p, *, columns: str, per_nd: str, checkpoints: str, drop_highest_loss: str) -> None:
    """The options that choose which rows of a runs file enter a fit, defined once for every
    command that reads runs (fit, sensitivity, backtest) so their names, choices and defaults
    cannot drift apart; only the help says what each means for that command."""
    p.add_argument("--columns", default=None, metavar="ROLE=COLUMN,...", help=columns)
    p.add_argument("--duplicate-rows", choices=("error", "last", "first", "mean"), default="error",
                   help=DUPLICATE_ROWS_HELP)
    p.add_argument("--per-nd", choices=("best", "mean", "all"), default=None, help=per_nd)
    p.add_argument("--checkpoints", choices=("final", "all"), default="all", help=checkpoints)
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K", help=drop_highest_loss)


def add_fit(sub):
    p = sub.add_parser("fit", help="fit a scaling law to your own runs (CSV) with the careful protocol",
                       description=FIT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", metavar="RUNS.csv", nargs="?", help="one row per run or checkpoint: N, D (or C), loss[, run, step]")
    p.add_argument("--form", default=None, help="law form: chinchilla (default), chinchilla_tied, kaplan_nd, power_law "
                                                "(L = E + A C^-alpha), ...")
    p.add_argument("--approach", choices=("1", "2", "3", "all"), default="3",
                   help="Chinchilla's approach to the allocation: 3 the parametric fit (default), 1 the lower "
                        "envelope, 2 IsoFLOP profiles, all: the three side by side")
    p.add_argument("--envelope", choices=("lower_hull", "grid"), default=None,
                   help="approach 1's envelope: grid (Hoffmann et al.'s per-compute minimum over the interpolated "
                        "training curves; default) or lower_hull (McLeish et al.'s lower convex hull of all "
                        "checkpoints); --approach all without it shows both")
    p.add_argument("--budgets", default=None, metavar="C1,C2,...",
                   help="approach 2 without a budget column: the IsoFLOP budgets in FLOPs, e.g. 6e18,3e19,1e20; "
                        "each row goes to the nearest in log C, rows more than 1.5x from every budget are left "
                        "out with a warning (not --budget, the allocation table's budgets)")
    _add_row_selection(p, columns="map roles N, D, C, loss, run, step, budget to the file's columns, e.g. "
                                  "N=params,D=tokens,loss=val_loss",
                       per_nd="several runs at one (N, D) (LR sweep, seeds, reruns): keep the lowest-loss run "
                              "(best), average them (mean), or keep all rows and resample (N, D) groups in the "
                              "bootstrap (all)",
                       checkpoints="rows of one run: every checkpoint (all; the bootstrap resamples whole runs; "
                                   "default) or only each run's last row (final)",
                       drop_highest_loss="drop the K highest losses before fitting (the Chinchilla protocol drops "
                                         "5); recorded")
    p.add_argument("--holdout", default=None, metavar="largest-compute:K",
                   help="validate on the K largest-compute runs (held out of the fit; runs tied at the boundary "
                        "go out together)")
    p.add_argument("--out", default="fit_out", help="output directory for results.json and report.html")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--budget", type=_budget, action="append", default=None, metavar="C",
                   help="compute budget in FLOP for the allocation table, e.g. 1e24; repeatable "
                        "(default: the largest fitted compute, 10x and 100x it)")
    p.add_argument("--about", default=None, metavar="FILE.yaml",
                   help="what the data cannot say (training data, hyperparameters, counting, metric), "
                        "declared in the report's checklist; see --about-template")
    p.add_argument("--about-template", action="store_true",
                   help="print a commented template for --about and exit")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any diagnostic has severity error, or the status is 'not identified' "
                        "(a parameter the bootstrap does not bound); outputs are still written")
    p.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                   help="bootstrap resamples in chunks on Dask: " + SCHEDULER_HELP)
    p.add_argument("--predict", default=None, metavar="TARGETS.csv",
                   help="predict the loss at each row (N plus D or C, optional run name) with the confidence "
                        "interval of the law and the prediction interval of one new run; writes predictions.csv")
    p.add_argument("--base", default=None, metavar="E=...,A=...,B=...,alpha=...,beta=...",
                   help="--form data_constrained: hold the base law at these values and fit only R_D*, R_N* "
                        "(the authors' protocol); without it the base law is fitted jointly where the design allows")
    p.add_argument("--unique-tokens", type=_budget, default=None, metavar="U",
                   help="--form data_constrained: unique-token limit of the allocation at each --budget "
                        "(prints N, D and epochs)")
    p.add_argument("--metric", default=None, metavar="COLUMN",
                   help="a downstream column (average error or accuracy) fitted against each run's loss and "
                        "chained to the loss fit: its prediction at each --budget / --target is the metric law at "
                        "the predicted loss, with a bootstrap interval over runs through both fits")
    p.add_argument("--metric-law", default="exponential", metavar="LAW",
                   help="law from loss to metric (default exponential: Err = eps - k exp(-gamma L); k > 0 for an "
                        "error, which falls as the loss falls; k < 0 for an accuracy)")
    p.add_argument("--target", type=_target, action="append", default=None, metavar="N:D",
                   help="a model to predict with --metric: parameters and tokens, e.g. 1.4e9:9.2e11; repeatable")
    p.add_argument("--metric-rows", choices=("fitted", "checkpoints"), default="fitted",
                   help="rows of the metric step: the loss fit's own rows (fitted; default) or every checkpoint of "
                        "the fitted runs (checkpoints), e.g. with --checkpoints final for Bhagia et al.'s ladder "
                        "(sigmoid law: accuracy as a fraction)")
    p.add_argument("--metric-skip", type=float, default=0.0, metavar="FRACTION",
                   help="--metric-rows checkpoints: drop the first ceil(FRACTION x rows) of each run (Bhagia: 0.1)")
    p.add_argument("--metric-smooth", type=int, default=1, metavar="K",
                   help="--metric-rows checkpoints: trailing moving average of width K per run (Bhagia: 5)")
    p.add_argument("--metric-anchor", type=_anchor, default=None, metavar="LOSS:METRIC",
                   help="one point added to the metric step and kept in every resample (Bhagia: 0:1)")
    p.set_defaults(func=cmd_fit)


def _anchor(text: str) -> tuple[float, float]:
    try:
        loss, metric = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOSS:METRIC, e.g. 0:1, got {text!r}") from None
    return loss, metric


def _target(text: str) -> tuple[float, float]:
    try:
        N, D = (float(v) for v in text.split(":"))
    except ValueError:
        N = D = float("nan")
    if not (0 < N < float("inf") and 0 < D < float("inf")):
        raise argparse.ArgumentTypeError(f"expected N:D (two positive numbers), got {text!r}")
    return N, D


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number of FLOPs such as 1e24, got {text!r}")
    return value


def _interval_text(interval) -> str:
    """'[lo, hi]', or 'none' when the bootstrap gave no interval (every resample failed)."""
    if not interval:
        return ""
    if any(v is None for v in interval):
        return "none (see warnings)"
    return "[{:.4g}, {:.4g}]".format(*interval)


def _diagnostics_text(diagnostics: list[dict], width: int = 100) -> str:
    """Diagnostics as an indented block, errors first, each wrapped to ``width``."""
    import textwrap
    from collections import Counter

    counts = Counter(d["severity"] for d in diagnostics)
    head = "diagnostics: " + ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}"
                                       for s in ("error", "warning", "info") if counts[s])
    lines = [head]
    for d in diagnostics:
        label = d["severity"].upper() if d["severity"] == "error" else d["severity"]
        lines.append(textwrap.fill(f"{label} [{d['code']}] {d['message']}", width=width,
                                   initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False))
    return "\n".join(lines)


def _with_interval(value, interval, digits: int = 4) -> str:
    text = "—" if value is None else f"{value:.{digits}g}"
    if interval is None:
        return text
    ends = ["—" if v is None else f"{v:.{digits}g}" for v in interval]
    return f"{text} [{ends[0]}, {ends[1]}]"


ALLOCATION_ROWS = (("a", "a (N_opt ~ C^a)"), ("b", "b (D_opt ~ C^b)"), ("N_opt", "N_opt (parameters)"),
                   ("D_opt", "D_opt (tokens)"), ("tokens_per_param", "tokens per parameter"),
                   ("loss", "loss at the optimum"))


def _allocation_text(co: dict) -> str:
    """The allocation table: one column per budget, one row per quantity, each value with
    its bootstrap interval (when there is one) and how far the budget lies beyond the fit."""
    budgets = co["budgets"]
    names = [f"C = {row['C']:.4g}" for row in budgets]
    rows = [{"": "beyond the fitted range",
             **{n: ("within" if row["extrapolation_factor"] <= 1 + 1e-9 else f"{row['extrapolation_factor']:.4g}x")
                for n, row in zip(names, budgets)}}]
    for key, label in ALLOCATION_ROWS:
        rows.append({"": label, **{n: _with_interval(row.get(key), row.get(f"{key}_interval"))
                                   for n, row in zip(names, budgets)}})
    if any(row.get("identified") is False for row in budgets):  # the fit's identifiability checks
        rows.insert(1, {"": "identified", **{n: "yes" if row.get("identified", True) else "NO: see the note"
                                             for n, row in zip(names, budgets)}})
    level = f"{co['level']:.0%} bootstrap intervals" if co.get("level") else "no bootstrap intervals"
    head = (f"compute-optimal allocation under {co['flops']} ({level}); the fitted runs reach "
            f"C = {co['fitted_max_C']:.4g}")
    notes = dict.fromkeys(row["note"] for row in budgets if row.get("note"))
    return "\n".join([head, _table(rows, ["", *names]), *(f"note: {note}" for note in notes)])


def _check_approach_options(args, law) -> list[float] | None:
    """What --approach excludes, said before anything is read; returns --budgets parsed.

    --scheduler spreads the parametric fit's bootstrap refits; approaches 1 and 2 refit a
    parabola or a line per resample, in-process in seconds, so a scheduler given to them
    alone would be silently unused: refused instead."""
    from .runs import approaches as userapproaches
    from .runs import fit as userfit

    chosen = userapproaches.selected(args.approach)
    userapproaches.envelopes(chosen, args.envelope)      # --envelope without approach 1: refused here
    isoflop_budgets = userapproaches.parse_budgets(args.budgets) if args.budgets is not None else None
    if isoflop_budgets and 2 not in chosen:
        raise ValueError(f"--budgets puts runs on IsoFLOP budgets for approach 2; --approach {args.approach} does "
                         "not use them (use --approach 2 or all)")
    if isoflop_budgets and "budget" in userfit.parse_columns(args.columns).values():
        raise ValueError("give the IsoFLOP budgets as a column (--columns budget=COLUMN) or as --budgets, not both")
    if 3 not in chosen:
        law_only = [name for name, given in (("--form", args.form is not None), ("--holdout", args.holdout),
                                             ("--predict", args.predict),
                                             ("--budget", args.budget), ("--about", args.about),
                                             ("--scheduler", args.scheduler)) if given]
        if law_only:
            raise ValueError(f"{', '.join(law_only)} belong(s) to the parametric fit (approach 3); --approach "
                             f"{args.approach} makes no law fit (use --approach 3 or all)")
    elif len(chosen) > 1 and not userfit.has_approach3(law):
        raise ValueError(f"--approach all sets the parametric fit of L = E + A/N^alpha + B/D^beta beside "
                         f"approaches 1 and 2; form {args.form!r} is not that law (use --form chinchilla)")
    return isoflop_budgets


def _approaches_text(results: dict) -> str:
    from .runs.approaches import TABLE_COLUMNS, table_rows

    records = results["approaches"]
    levels = {r["level"] for r in records if r["level"]}
    head = ("compute-optimal allocation N_opt ~ C^a, D_opt ~ C^b by Chinchilla's approaches"
            + (f" ({levels.pop():.0%} bootstrap intervals)" if len(levels) == 1 else ""))
    return "\n".join([head, _table(table_rows(records), TABLE_COLUMNS)])


def cmd_fit(args) -> int:
    from .publishing import checklist
    from .runs import fit as userfit
    from .analyses.law_registry import get_law

    if args.about_template:
        print(checklist.about_template())
        return 0
    if args.csv is None:
        raise UsageError("fit needs RUNS.csv (or --about-template)")
    if args.form == "data_constrained":
        return _fit_data_constrained(args)
    if args.base is not None or args.unique_tokens is not None:
        raise UsageError("--base and --unique-tokens belong to --form data_constrained")
    try:
        columns, holdout = userfit.parse_columns(args.columns), userfit.parse_holdout(args.holdout)
        law = get_law(args.form or "chinchilla")
        if tuple(law.inputs) == ("L",):
            raise ValueError(f"--form {args.form}: a law from loss to a downstream metric; fit a loss law with "
                             f"--form and chain it with --metric COLUMN --metric-law {args.form}")
        userfit.runs_input.check_options(args.per_nd, args.checkpoints, args.drop_highest_loss, args.duplicate_rows)
        isoflop_budgets = _check_approach_options(args, law)
        dask = _scheduler(args)  # opened by the bootstrap itself, after the input checked out
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.budget and not law.has_allocation:
        raise UsageError(f"--budget: form {args.form!r} has no compute-optimal allocation in N and D")
    if (args.target or args.metric_law != "exponential") and not args.metric:
        raise UsageError("--target and --metric-law belong to --metric COLUMN")
    if (args.metric_rows != "fitted" or args.metric_skip or args.metric_smooth != 1 or args.metric_anchor) \
            and not args.metric:
        raise UsageError("--metric-rows, --metric-skip, --metric-smooth and --metric-anchor belong to --metric COLUMN")
    results = userfit.run(args.csv, args.out, form=args.form or "chinchilla", columns=columns, holdout=holdout,
                          n_bootstrap=args.n_bootstrap, seed=args.seed, per_nd=args.per_nd,
                          checkpoints=args.checkpoints, drop_highest_loss=args.drop_highest_loss,
                          duplicate_rows=args.duplicate_rows, budgets=args.budget, about=args.about,
                          approach=args.approach,
                          isoflop_budgets=isoflop_budgets, client=dask, envelope=args.envelope, targets=args.predict,
                          then=(lambda uf: _chain_metric(args, uf)) if args.metric else None)
    if results.get("fit") is None:
        return _report_approaches_only(args, results)
    fit, main = results["fit"], results["fits"]["main"]
    selection = main.get("selection") or {}
    held = selection.get("rows_held_out") or 0
    print(f"{selection.get('rows_read', main['points_used'])} rows read, {main['points_used']} enter the fit"
          + (f", {held} held out" if held else "")
          + (f", {len(main['points_dropped']) - held} left out (see dropped_points)"
             if len(main["points_dropped"]) > held else "")
          + f"; bootstrap resamples {selection.get('bootstrap_resamples', 'points')}")
    unidentified = set((results.get("identifiability") or {}).get("unidentified") or [])
    edges = (results.get("identifiability") or {}).get("bootstrap_edges") or {}
    rows = []
    for k, v in fit["params"].items():
        estimate = f"{v:.6g}" + ("  (not identified)" if k in unidentified else
                                 "  (not bounded)" if not edges.get(k, {}).get("bounded", True) else "")
        interval = ("not identified" if k in unidentified and fit["intervals"]
                    else _interval_text((fit["intervals"] or {}).get(k)))
        rows.append({"parameter": k, "estimate": estimate, "95% interval": interval})
    print(_table(rows, ["parameter", "estimate"] + (["95% interval"] if fit["intervals"] else [])), flush=True)
    outcome = fit["outcome"]
    if outcome == "converged":
        outcome += "; the identifiability checks found no problem"
    elif outcome.startswith("not identified"):
        outcome = f"NOT IDENTIFIED ({outcome.partition(': ')[2]}): the data do not determine these parameters"
    elif userfit.UNBOUNDED in outcome:
        head, _, names = outcome.partition(f"; {userfit.UNBOUNDED}: ")
        outcome = (f"{head}, but NOT BOUNDED by the bootstrap ({names}): too many refits ran "
                   f"{'it' if ',' not in names else 'them'} to the edge (see the not_identified warning)")
    print(f"outcome: {outcome}")
    if results.get("holdout"):
        h = results["holdout"]
        runs = f"the {h['k']} largest-compute runs" if h["runs"] == h["k"] else \
            f"{h['runs']} largest-compute runs (asked for {h['k']}; tied runs go out together)"
        print(f"hold-out ({h['rows']} rows of {runs}): mean absolute relative error "
              f"{h['mean_abs_rel_error']:.2%}, max {h['max_abs_rel_error']:.2%}")
    if results.get("compute_optimal"):
        print(_allocation_text(results["compute_optimal"]))
    if results.get("approaches"):
        print(_approaches_text(results))
    if results.get("predictions"):
        print(_predictions_text(results["predictions"], args.out))
    if results.get("chained"):
        print(_chained_text(results["chained"]))
    return _epilogue(args, results)


def _predictions_text(record: dict, out) -> str:
    """The predictions table: each target's loss with both intervals and how far it extrapolates."""
    rows = [{"target": p.get("run") or f"N={p.get('N', 0):.3g}, D={p.get('D', 0):.3g}",
             "loss": f"{p['loss_pred']:.4g}", "confidence": _interval_text([p["ci_low"], p["ci_high"]]),
             "prediction": _interval_text([p["pi_low"], p["pi_high"]]),
             "C / fitted max": "" if p.get("extrapolation") is None else f"{p['extrapolation']:.3g}x",
             "outside": p.get("outside_fitted") or ""} for p in record["points"]]
    head = (f"predicted loss at {record['n_targets']} targets ({record['level']:.0%} intervals: confidence of the law, "
            f"prediction of one new run) -> {out}/predictions.csv")
    return "\n".join([head, _table(rows, ["target", "loss", "confidence", "prediction", "C / fitted max", "outside"])])


def _fit_data_constrained(args) -> int:
    """``fit --form data_constrained``: Muennighoff et al.'s law on the runs (roles N, D, U,
    loss), the base law given (--base) or fitted jointly, and the allocation under
    --unique-tokens at each --budget."""
    from .runs import dataconstrained as userdataconstrained
    from .runs import fit as userfit

    unsupported = [name for name, given in (("--approach", args.approach != "3"), ("--holdout", args.holdout),
                                            ("--about", args.about), ("--scheduler", args.scheduler),
                                            ("--budgets", args.budgets), ("--predict", args.predict)) if given]
    try:
        if unsupported:
            raise ValueError(f"{', '.join(unsupported)} not available with --form data_constrained")
        if args.unique_tokens is not None and not args.budget:
            raise ValueError("--unique-tokens needs at least one --budget C (FLOPs)")
        if args.budget and args.unique_tokens is None:
            raise ValueError("--form data_constrained allocates under a data limit: give --unique-tokens U with --budget")
        columns, base = userfit.parse_columns(args.columns), userdataconstrained.parse_base(args.base)
        userfit.runs_input.check_options(args.per_nd, args.checkpoints, args.drop_highest_loss)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    results = userdataconstrained.run(args.csv, args.out, columns=columns, base=base, n_bootstrap=args.n_bootstrap,
                                      seed=args.seed, unique_tokens=args.unique_tokens, budgets=args.budget,
                                      per_nd=args.per_nd, checkpoints=args.checkpoints,
                                      drop_highest_loss=args.drop_highest_loss)
    print(f"{results['data'][0]['rows_used']} rows enter the fit; {results['law']['equation']}; base law "
          f"{results['law']['base']}")
    fixed = results["options"]["base"] or {}
    rows = [{"parameter": k, "estimate": f"{v:.6g}" + ("  (fixed)" if k in fixed else "")
             + ("  (not identified)" if k in results["unidentified"] else ""),
             "95% interval": _interval_text(results["intervals"].get(k))} for k, v in results["params"].items()]
    print(_table(rows, ["parameter", "estimate", "95% interval"]))
    print(f"outcome: {results['status']}")
    if results["allocation"]:
        table = [{"C": f"{a['C']:.4g}", "U": f"{a['U']:.4g}",
                  "N (parameters)": _with_interval(a["N"], a.get("N_interval")),
                  "D (tokens)": _with_interval(a["D"], a.get("D_interval")),
                  "epochs": _with_interval(a["epochs"], a.get("epochs_interval"))} for a in results["allocation"]]
        print("allocation minimizing the predicted loss along C = 6ND with U unique tokens (exact; 95% bootstrap "
              "intervals)")
        print(_table(table, ["C", "U", "N (parameters)", "D (tokens)", "epochs"]))
    return _epilogue(args, results)


def _chain_metric(args, uf) -> None:
    """--metric: fit the metric law and chain it to the loss fit (scalerepro.runs.chained)."""
    from .diagnostics import sorted_by_severity
    from .runs import chained as userchained

    if uf.result is None:
        raise UsageError("--metric chains to the parametric loss fit (--approach 3 or all)")
    budgets = args.budget if args.budget or args.target else (uf.options.get("budgets") or [])
    try:
        uf.chained = userchained.chain_metric(uf, args.metric, args.metric_law, budgets=budgets, targets=args.target,
                                              n_bootstrap=args.n_bootstrap, seed=args.seed, rows=args.metric_rows,
                                              skip=args.metric_skip, smooth=args.metric_smooth, anchor=args.metric_anchor)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    uf.diagnostics = sorted_by_severity(uf.diagnostics + uf.chained.diagnostics)


def _chained_text(chained: dict) -> str:
    """The metric law and the chained predictions with their intervals."""
    lines = [f"{chained['metric']}: {chained['equation']} ({chained['outcome']}), fitted on {chained['rows_used']} rows; "
             f"the law {chained['direction']}"]
    if chained.get("selection"):
        lines.append(f"metric step rows: {chained['selection']['text']}")
    rows = [{"parameter": k, "estimate": f"{v:.6g}", "95% interval": _interval_text((chained["intervals"] or {}).get(k))}
            for k, v in chained["params"].items()]
    lines.append(_table(rows, ["parameter", "estimate"] + (["95% interval"] if chained["intervals"] else [])))
    lines.append(f"chained prediction ({chained['metric']} law at the predicted loss):")
    boot = chained["bootstrap"] is not None
    rows = [{"target": p["source"], "N": f"{p['N']:.4g}", "D": f"{p['D']:.4g}", "M = D/N": f"{p['M']:.4g}",
             "loss": _with_interval(p["loss_pred"], (p["loss_lo"], p["loss_hi"]) if boot else None),
             chained["metric"]: _with_interval(p["metric_pred"], (p["metric_lo"], p["metric_hi"]) if boot else None)}
            for p in chained["predictions"]]
    lines.append(_table(rows, ["target", "N", "D", "M = D/N", "loss", chained["metric"]]))
    return "\n".join(lines)


def _report_approaches_only(args, results: dict) -> int:
    selection = results.get("selection") or {}
    print(f"{selection.get('rows_read')} rows read, {selection.get('rows_used')} used (approach {args.approach}; "
          "no law fitted)")
    print(_approaches_text(results))
    return _epilogue(args, results)


def _epilogue(args, results: dict) -> int:
    """Diagnostics, warnings, where the outputs are, and the exit status (--strict): the end of
    both ``fit`` and ``sensitivity``."""
    if results.get("diagnostics"):
        print(_diagnostics_text(results["diagnostics"]))
    # the same warnings as the report's warning box: a terminal user must see them too
    for message in results.get("warnings", []):
        print(f"warning: {message}", file=sys.stderr, flush=True)
    print(f"wrote {args.out}/results.json and {args.out}/report.html")
    errors = [d for d in results.get("diagnostics", []) if d["severity"] == "error"]
    if args.strict and errors:
        print(f"scalerepro: --strict: {len(errors)} diagnostic(s) of severity error", file=sys.stderr)
        return 1
    if args.strict and results.get("status") == "not identified":
        print("scalerepro: --strict: status 'not identified' (see the not_identified warning)", file=sys.stderr)
        return 1
    return 0


SENSITIVITY_DESCRIPTION = """\
How far do fitting choices move the compute-optimal allocation of your runs? Fits the
Chinchilla form to RUNS.csv with the careful protocol (the default) and then with one
choice changed at a time -- the (Mis)Fitting survey's: form, objective, reduction,
optimizer, initialization, Huber delta; best run per (N, D) against all rows and fixed
learning rates; final checkpoints, all, or only after 10/20/50% of training; tokens per
parameter <= 18 or >= 22; models up to 100M / 400M; the 5 highest losses; parameters with
or without embeddings (--alt-params). Each variant gets the fit's diagnostics and a
bootstrap over whole runs or (N, D) groups; a variant the data do not identify is listed
but left out of the spread. Writes results.json and report.html.

The CSV is read exactly as by `scalerepro fit` (same roles, --columns, --duplicate-rows, --per-nd,
--checkpoints, --drop-highest-loss); the default keeps your options and drops nothing
unless asked.
"""


def add_sensitivity(sub):
    p = sub.add_parser("sensitivity", help="how fitting choices move the allocation of your own runs (CSV)",
                       description=SENSITIVITY_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", metavar="RUNS.csv", help="one row per run or checkpoint: N, D (or C), loss[, run, step]")
    _add_row_selection(p, columns="map roles N, D, C, loss, run, step to the file's columns (as for `scalerepro fit`)",
                       per_nd="several runs at one (N, D): the default keeps the lowest-loss run (best), averages "
                              "them (mean) or keeps all rows (all); the variants try the others",
                       checkpoints="rows of one run in the default: every checkpoint (all; default) or the last "
                                   "row (final)",
                       drop_highest_loss="the default drops the K highest losses (default 0: nothing dropped)")
    p.add_argument("--budget", dest="budgets", type=float, action="append", default=None, metavar="C",
                   help="compute budget in FLOPs for the allocation; repeatable (default: the largest fitted "
                        "compute, 10x and 100x it)")
    p.add_argument("--alt-params", default=None, metavar="COLUMN",
                   help="the other parameter count (with or without embeddings) for the counting variant "
                        "(default: found when exactly one other column is named like a parameter count)")
    p.add_argument("--groups", default=None, metavar="GROUP,...",
                   help="only these variant groups besides the default, e.g. checkpoints,hyperparameter_selection "
                        "(groups: form, objective, reduction, optimizer, initialization, huber_delta, checkpoints, "
                        "hyperparameter_selection, data_subset, outliers, parameter_counting)")
    p.add_argument("--include-unidentified", action="store_true",
                   help="include variants the data do not identify in the spread")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="resamples of the default (default 1000)")
    p.add_argument("--n-bootstrap-variants", type=int, default=200,
                   help="resamples of every other Newton-fitted variant (default 200)")
    p.add_argument("--n-bootstrap-scipy", type=int, default=50,
                   help="resamples of the MAE variant, one scipy fit each (default 50)")
    p.add_argument("--scipy-starts", type=int, default=20,
                   help="best grid points that start each scipy-fitted variant (default 20)")
    p.add_argument("--screened-starts", type=int, default=100,
                   help="best grid points that start each other Newton variant (default 100; the default "
                        "variant uses the whole 4500-point grid)")
    p.add_argument("--seed", type=int, default=0, help="seed; each variant's own seed derives from it (default 0)")
    p.add_argument("--out", default="sensitivity_out", help="output directory for results.json and report.html")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any diagnostic has severity error, or the status is 'not identified' "
                        "(the default fit is not identified or its bootstrap does not bound a parameter); outputs "
                        "are still written")
    p.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                   help="one variant per Dask task: " + SCHEDULER_HELP)
    p.set_defaults(func=cmd_sensitivity)


def cmd_sensitivity(args) -> int:
    from .io import runs_input
    from .runs import sensitivity as usersensitivity

    try:
        columns = runs_input.parse_columns(args.columns)
        runs_input.check_options(args.per_nd, args.checkpoints, args.drop_highest_loss, args.duplicate_rows)
        for name in ("n_bootstrap", "n_bootstrap_variants", "n_bootstrap_scipy"):
            if getattr(args, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
        for name in ("scipy_starts", "screened_starts"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.budgets and not all(c > 0 for c in args.budgets):
            raise ValueError(f"--budget must be a positive number of FLOPs, got {args.budgets}")
        groups = [g for g in (args.groups or "").split(",") if g.strip()] or None
        if groups:
            usersensitivity.check_groups(groups)
        dask = _scheduler(args)  # opened once the input checked out, for the variants' fits
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    results = usersensitivity.run(
        args.csv, args.out, columns=columns, duplicate_rows=args.duplicate_rows, per_nd=args.per_nd,
        checkpoints=args.checkpoints,
        drop_highest_loss=args.drop_highest_loss, budgets=args.budgets, alt_params=args.alt_params,
        n_bootstrap=args.n_bootstrap, n_bootstrap_variants=args.n_bootstrap_variants,
        n_bootstrap_scipy=args.n_bootstrap_scipy, scipy_starts=args.scipy_starts,
        screened_starts=args.screened_starts, seed=args.seed, include_unidentified=args.include_unidentified,
        groups=groups, progress=not args.no_progress, client=dask)
    budgets = results["budgets"]
    c = budgets[len(budgets) // 2]
    rows = []
    for v in results["variants"]:
        alloc = next((a for a in v.get("allocation") or [] if a["C"] == c), {})
        tpp = alloc.get("tokens_per_param")
        rows.append({"variant": v["variant"], "points": v["n_points"],
                     "tokens/param": "" if tpp is None else f"{tpp:.3g}",
                     "95% interval": _interval_text(alloc.get("tokens_per_param_interval")),
                     "outcome": v["outcome"] + ("" if v["in_spread"] else " (not in spread)")})
    print(f"{results['selection']['rows_read']} rows read; the default fits {results['selection']['rows_used']}; "
          f"{len(results['variants'])} variants fitted, {len(results['skipped'])} not (see report)")
    print(f"allocation at C = {c:.3g} FLOP:")
    print(_table(rows, ["variant", "points", "tokens/param", "95% interval", "outcome"]), flush=True)
    for b in results["spread"]["budgets"]:
        s = b["tokens_per_param"]
        if s.get("max_variant"):
            print(f"C = {b['C']:.3g}: tokens per parameter spread {s['ratio']:.3g}x over {s['n_variants']} variants "
                  f"({s['min']:.3g} {s['min_variant']} to {s['max']:.3g} {s['max_variant']})")
    if results.get("approach1_envelopes"):     # approach 1's envelope method, a fitting choice too
        print(_approaches_text({"approaches": results["approach1_envelopes"]}))
    return _epilogue(args, results)


BACKTEST_DESCRIPTION = """\
Would your law have predicted your largest runs? For each of the K largest distinct compute
levels (--folds, default 4; or --cutoffs), fit every method on the runs below it and predict
every run at or above it (whole runs held out: tied runs together, all checkpoints of a
held-out run). Methods: each form your columns can fit (chinchilla, chinchilla_tied,
kaplan_with_e, ...) times Huber on log loss (delta 1e-3), MSE on raw loss and MSE on log loss;
--methods all adds the sensitivity variants that apply. Per method and fold: rows fitted and
held out, extrapolation factors, mean absolute relative error, bias, 95% prediction-interval
coverage. Ranks the methods at the deepest fold, with a paired bootstrap over its held-out
runs. Writes backtest.json and report.html.

The CSV is read exactly as by `scalerepro fit` (same roles, --columns, --duplicate-rows,
--per-nd, --checkpoints, --drop-highest-loss).
"""


def add_backtest(sub):
    p = sub.add_parser("backtest", help="score fitting methods on your largest runs (compute-ordered folds)",
                       description=BACKTEST_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", metavar="RUNS.csv", help="one row per run or checkpoint: N, D (or C), loss[, run, step]")
    _add_row_selection(p, columns="map roles N, D, C, loss, run, step to the file's columns (as for `scalerepro fit`)",
                       per_nd="several runs at one (N, D): keep the lowest-loss run, average them, or keep all rows",
                       checkpoints="rows of one run: every checkpoint (all; default) or the last row (final)",
                       drop_highest_loss="drop the K highest losses before anything is fitted (default 0)")
    p.add_argument("--folds", type=int, default=4, metavar="K",
                   help="one fold at each of the K largest distinct compute levels (default 4)")
    p.add_argument("--cutoffs", default=None, metavar="C1,C2,...",
                   help="fold cutoffs in FLOPs instead of --folds: fit below each, predict at or above it")
    p.add_argument("--methods", default="default", metavar="default|all|FORM[/OBJECTIVE],...",
                   help="default: every form the columns can fit x huber-log, mse-raw, mse-log; all: and the "
                        "sensitivity variants; or a list, e.g. chinchilla,kaplan_with_e/huber-log")
    p.add_argument("--n-bootstrap", type=int, default=200,
                   help="bootstrap resamples behind each prediction interval (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed; each (method, fold) derives its own (default 0)")
    p.add_argument("--out", default="backtest_out", help="output directory for backtest.json and report.html")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any diagnostic has severity error (outputs are still written)")
    p.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                   help="one (method, fold) per Dask task: " + SCHEDULER_HELP)
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args) -> int:
    from .io import runs_input
    from .runs import backtest as userbacktest

    try:
        columns = runs_input.parse_columns(args.columns)
        runs_input.check_options(args.per_nd, args.checkpoints, args.drop_highest_loss, args.duplicate_rows)
        if args.n_bootstrap < 0:
            raise ValueError(f"--n-bootstrap must be >= 0, got {args.n_bootstrap}")
        cutoffs = None
        if args.cutoffs is not None:
            try:
                cutoffs = [float(c) for c in args.cutoffs.split(",") if c.strip()]
            except ValueError:
                raise ValueError(f"--cutoffs expects FLOPs separated by commas, e.g. 1e20,3e20, got {args.cutoffs!r}")
            if not cutoffs or not all(0 < c < float("inf") for c in cutoffs):
                raise ValueError(f"--cutoffs expects positive FLOPs, got {args.cutoffs!r}")
        dask = _scheduler(args)
        results = userbacktest.run(args.csv, args.out, columns=columns, duplicate_rows=args.duplicate_rows,
                                   per_nd=args.per_nd,
                                   checkpoints=args.checkpoints, drop_highest_loss=args.drop_highest_loss,
                                   methods=args.methods, folds=args.folds, cutoffs=cutoffs,
                                   n_bootstrap=args.n_bootstrap, seed=args.seed, client=dask,
                                   progress=not args.no_progress)
    except ValueError as exc:
        if isinstance(exc, ScalereproError):
            raise
        raise UsageError(str(exc)) from None
    folds = results["folds"]
    print(f"{results['data']['rows']} rows read, {results['data']['rows_used']} used; {len(folds)} folds at C = "
          + ", ".join(f"{f['cutoff_C']:.3g}" for f in folds) + f"; {len(results['methods'])} methods")
    ranked_at = next(f for f in folds if f["cutoff_C"] == results["ranked_at"]["cutoff_C"])
    print(f"ranked by mean |relative error| at the deepest fold (fitted below C = {ranked_at['cutoff_C']:.4g}, "
          f"{ranked_at['n_test_runs']} runs held out):")
    print(_table(userbacktest.ranking_rows(results), userbacktest.RANKING_COLUMNS), flush=True)
    if results.get("diagnostics"):
        print(_diagnostics_text(results["diagnostics"]))
    print(f"wrote {args.out}/backtest.json and {args.out}/report.html")
    errors = [d for d in results.get("diagnostics", []) if d["severity"] == "error"]
    if args.strict and errors:
        print(f"scalerepro: --strict: {len(errors)} diagnostic(s) of severity error", file=sys.stderr)
        return 1
    return 0


COMMANDS = (add_list, add_run, add_report, add_data, add_fit, add_sensitivity, add_backtest)


# ----------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalerepro", description=__doc__.split("\n\n")[0],
                                     epilog="exit codes: 0 ok, 1 a run/verification failed, 2 bad input")
    parser.add_argument("--version", action="version", version=f"scalerepro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("scalerepro: interrupted", file=sys.stderr)
        return 130
    except (ScalereproError, FileNotFoundError) as exc:  # the product's own errors say what is wrong
        print(f"scalerepro: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

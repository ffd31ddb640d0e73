"""The (Mis)Fitting reporting checklist, filled from what a run recorded.

Li, Kudugunta and Zettlemoyer (2025) found that most scaling-law papers leave out what is
needed to reproduce their fits. Here every item is answered from a record whenever one can
answer it -- the FitResult provenance and bootstrap summary in ``results["fits"]``, the data
registry entries of the files in ``results["data"]``, the spec's claims and their verdicts --
so a report can never claim more than the run did. Only what no record can know (training
data, hyperparameters, released checkpoints, the purpose) is taken from text a person wrote,
and it is marked ``declared``. The items themselves are data (``checklist.yaml``).

Status of each item, in order of preference:
``recorded`` (read from a record), ``declared`` (stated in the spec or by the user),
``not_reported_by_original`` (the run cannot answer it and the original paper did not
report it either, per the spec's ``original_reporting``), ``missing``.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from collections import Counter
from functools import lru_cache
from importlib import resources

import yaml

from ..core.identifiability import UNBOUNDED
from ..errors import ChecklistError

STATUSES = ("recorded", "declared", "not_reported_by_original", "missing")
SOURCES = ("fit", "data", "spec", "run", "declared")
GROUPS = ("form", "training", "data", "fitting", "release")
_NOT_REPORTED = re.compile(r"\s*(not|no|none)\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _definition() -> dict:
    text = resources.files(__package__).joinpath("checklist.yaml").read_text()
    raw = yaml.safe_load(text)
    groups, items = raw["groups"], raw["items"]
    ids = [item["id"] for item in items]
    for item in items:
        if item["group"] not in GROUPS or item["source"] not in SOURCES:
            raise ChecklistError(f"checklist.yaml: item {item['id']!r} has group {item['group']!r} "
                                 f"or source {item['source']!r} outside {GROUPS} / {SOURCES}")
    if len(set(ids)) != len(ids) or tuple(groups) != GROUPS:
        raise ChecklistError("checklist.yaml: item ids must be unique and groups exactly "
                             f"{', '.join(GROUPS)}")
    return raw


def items() -> list[dict]:
    """The 19 item definitions (id, group, number, question, required, source, field)."""
    return [dict(item) for item in _definition()["items"]]


def groups() -> dict[str, str]:
    """Group id -> heading, in checklist order."""
    return dict(_definition()["groups"])


def item_ids() -> list[str]:
    return [item["id"] for item in _definition()["items"]]


def spec_problems(spec) -> list[str]:
    """Keys of a spec's ``original_reporting`` / ``declared`` sections that are not item ids.

    An unknown key would otherwise be silently ignored and its item reported as missing.
    """
    known, problems = set(item_ids()), []
    for section in ("original_reporting", "declared"):
        for key in _get(spec, section) or {}:
            if key not in known:
                problems.append(f"{section}: unknown checklist item {key!r}")
    return problems


# ----------------------------------------------------------------------------- helpers
def _get(obj, key, default=None):
    """A key of a dict or an attribute of an object (a ``spec.Spec``)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _num(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _fits(run: dict) -> list[tuple[str, dict]]:
    """(name, record) for every fit, the main fit first."""
    fits = run.get("fits") or {}
    main = (run.get("fit") or {}).get("name")
    return sorted(fits.items(), key=lambda kv: kv[0] != main)


def _per_fit(run: dict, describe) -> str | None:
    """``describe(record)`` over the fits: one answer if all agree, else each distinct
    answer followed by the fits it applies to (a dozen identical fits read as one line)."""
    answers = [(name, text) for name, rec in _fits(run) if (text := describe(rec))]
    if not answers:
        return None
    groups: dict[str, list[str]] = {}
    for name, text in answers:
        groups.setdefault(text, []).append(name)
    if len(groups) == 1:
        return answers[0][1]
    return "; ".join(f"{text} [{', '.join(names)}]" for text, names in groups.items())


def _registry_entry(data_entry: dict) -> tuple[dict, dict] | None:
    """(dataset info, file entry) from the registry, or None for an unregistered file."""
    from ..io import data

    if not data_entry.get("dataset"):
        return None
    try:
        info = data.dataset_info(data_entry.get("dataset"))
    except data.DataError:
        return None
    file_entry = info.get("files", {}).get(data_entry.get("file"))
    return (info, file_entry) if file_entry else None


# ----------------------------------------------------------------------------- answers
# Each answer reads one part of the run and returns the value text, or None when the run
# recorded nothing that answers the item.
def _form(rec):
    form = rec.get("form")
    if not isinstance(form, dict) or not form.get("equation"):
        return None
    return (f"{form.get('name', 'law')}: {form['equation']}; inputs {', '.join(form.get('inputs', []))}; "
            f"fitted {', '.join(form.get('fitted_parameters', []))}")


def _n_laws_params(run):
    laws = [(name, rec["form"].get("name", "law"), len(rec["form"]["fitted_parameters"]))
            for name, rec in _fits(run) if isinstance(rec.get("form"), dict)
            and rec["form"].get("fitted_parameters") is not None]
    if not laws:
        return None
    if len(laws) == 1:
        name, law, n_params = laws[0]
        return f"1 fit: {name} ({law}, {n_params} parameters)"
    counts = Counter((law, n_params) for _, law, n_params in laws)
    return f"{len(laws)} fits: " + ", ".join(f"{n} x {law} ({p} parameters)" for (law, p), n in counts.items())


def _runs(rec):
    if rec.get("points_used") is None:
        return None
    dropped = len(rec.get("points_dropped") or [])
    text = f"{rec['points_used'] + dropped} runs in the data, {rec['points_used']} fitted"
    ranges = rec.get("input_ranges") or {}
    if ranges:
        text += "; fitted ranges " + ", ".join(f"{name} {lo:.3g}-{hi:.3g}" for name, (lo, hi) in ranges.items())
    return text


def _run_counts(run):
    return _per_fit(run, _runs)


def _points(rec):
    if rec.get("points_used") is None:
        return None
    dropped = rec.get("points_dropped") or []
    text = f"{rec['points_used']} used, {len(dropped)} dropped"
    reasons = Counter(str(d.get("reason", "no reason recorded")) if isinstance(d, dict) else str(d)
                      for d in dropped)
    if reasons:
        text += " (" + "; ".join(f"{n} x {why}" if n > 1 else why for why, n in reasons.items()) + ")"
    selection = rec.get("selection")  # a fit of a user's runs records how its points were chosen
    if isinstance(selection, dict):
        text += (f"; several runs per (N, D): {selection.get('per_nd') or 'none in the data'}, "
                 f"checkpoints: {selection.get('checkpoints')}, highest losses dropped: "
                 f"{selection.get('drop_highest_loss', 0)}")
        if selection.get("duplicate_rows") not in (None, "error"):  # a file that repeats checkpoints
            text += f", repeated checkpoints: --duplicate-rows {selection['duplicate_rows']}"
        if selection.get("metric_step"):  # --metric: the metric law's own rows
            text += f"; metric step: {selection['metric_step']}"
    return text


def _optimizer_setting(rec):
    opt = rec.get("optimizer")
    if not isinstance(opt, dict) or not opt.get("name"):
        return None
    text = opt["name"]
    if opt.get("description"):
        text += f" ({opt['description']})"
    tolerances = opt.get("tolerances")
    if isinstance(tolerances, str):  # scipy fits record "scipy defaults"
        return f"{text}, tolerances: {tolerances}"
    tolerances = {k: v for k, v in (tolerances or {}).items() if not isinstance(v, (list, dict))}
    if tolerances:
        text += ", tolerances " + ", ".join(f"{k}={_num(v)}" for k, v in tolerances.items())
    return text


def _optimizer(run):
    """The optimizer settings, then convergence and conditioning over all fits.

    Convergence is aggregated rather than listed per fit, so a fit that did not converge
    stands out instead of hiding in a list of a dozen identical settings.
    """
    setting = _per_fit(run, _optimizer_setting)
    if setting is None:
        return None
    parts, fits = [setting], [(name, rec) for name, rec in _fits(run) if "converged" in rec]
    failed = [f"{name} ({rec.get('message') or 'no message'})" for name, rec in fits if not rec["converged"]]
    if len(fits) == 1:
        parts.append("best start " + (f"DID NOT CONVERGE: {failed[0]}" if failed else "converged"))
        outcome = fits[0][1].get("outcome") or ""
        if outcome.startswith("not identified"):
            parts.append(f"outcome {outcome.upper()} (see the diagnostics)")
        elif UNBOUNDED in outcome:
            parts.append(f"outcome {outcome.partition('; ')[2].upper()} (see the not_identified warning)")
    elif fits:
        parts.append(f"{len(fits) - len(failed)} of {len(fits)} fits converged"
                     + (f"; DID NOT CONVERGE: {', '.join(failed)}" if failed else ""))
    conditions = [rec["hessian_condition"] for _, rec in _fits(run) if rec.get("hessian_condition") is not None]
    if conditions:
        parts.append("Hessian condition number " + (f"{conditions[0]:.3g}" if len(conditions) == 1 else
                                                    f"{min(conditions):.3g} to {max(conditions):.3g}"))
    return "; ".join(parts)


def _objective(rec):
    obj = rec.get("objective")
    if not isinstance(obj, dict):
        return None
    return obj.get("text") or ", ".join(f"{k} {v}" for k, v in obj.items()) or None


def _bounds(rec):
    bounds = rec.get("bounds")
    return ("bounds " + ", ".join(f"{k} in {v}" for k, v in bounds.items())
            if isinstance(bounds, dict) and bounds else "no bounds (unconstrained)")


def _initialization(run):
    inits = [(rec["initialization"], rec) for _, rec in _fits(run)
             if isinstance(rec.get("initialization"), dict) and rec["initialization"].get("n_starts") is not None]
    if not inits:
        return None
    if len(inits) == 1:
        init, rec = inits[0]
        text = f"{init['n_starts']} starts, {init.get('n_starts_converged', '?')} converged"
        if init.get("best_start"):
            text += "; best start " + ", ".join(f"{k}={_num(v)}" for k, v in init["best_start"].items())
        return f"{text}; {_bounds(rec)}"
    starts = sorted({init["n_starts"] for init, _ in inits})
    converged = [init["n_starts_converged"] for init, _ in inits if init.get("n_starts_converged") is not None]
    text = f"{len(inits)} fits, {' or '.join(map(str, starts))} starts each"
    if converged:
        low, high = min(converged), max(converged)
        text += f", {low}{'' if low == high else f' to {high}'} converged per fit"
    return f"{text}; {'; '.join(dict.fromkeys(_bounds(rec) for _, rec in inits))}"


def _boot(rec):
    boot = rec.get("bootstrap")
    return boot if isinstance(boot, dict) and boot.get("n_resamples") else None


def _resampling(rec):
    boot = _boot(rec)
    if boot is None:
        return None
    return (f"bootstrap resampling {boot.get('resampling', '?')}: {boot['n_resamples']} resamples, "
            f"seed {boot.get('seed')}, {boot.get('n_failed', 0)} failed"
            + (f", {boot['n_settled_at_edge']} settled at an edge" if boot.get("n_settled_at_edge") else ""))


def _fit_uncertainty(rec):
    boot = _boot(rec)
    if boot is None or not boot.get("intervals"):
        return None
    level = boot.get("level")
    level = f"{level * 100:g}%" if isinstance(level, (int, float)) else "?"
    return (f"{boot.get('method', 'bootstrap')}: {boot['n_resamples']} resamples, {level} intervals "
            f"for {', '.join(boot['intervals'])}")


def _uncertainty(run):
    """Fit bootstraps; failing those, the reproduced intervals the notebook gave its claims."""
    value = _per_fit(run, _fit_uncertainty)
    if value is not None:
        return value
    claims = run.get("claims") or []
    with_interval = [c for c in claims if c.get("reproduced_interval")]
    if not with_interval:
        return None
    return (f"no fit bootstrap; {len(with_interval)} of {len(claims)} claims carry a reproduced interval "
            "(each claim's note says how it was computed)", "spec", "claims[*].reproduced_interval")


def _validation(run):
    claims = run.get("claims") or []
    if not claims:
        return None
    counts = Counter(c.get("verdict") for c in claims)
    return (f"{len(claims)} claims checked against published values by the spec's rules: "
            + ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in counts.items()))


def _fitting_code(run):
    env = run.get("environment") or run.get("notebook_environment") or {}
    version = (env.get("packages") or {}).get("scalerepro")
    if not version:
        return None
    text = f"scalerepro {version}"
    git = env.get("git") or {}
    if git.get("commit"):
        text += f", git commit {git['commit'][:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")
    if run.get("replication"):
        text += f"; notebook for {run['replication']}"
    return text


def _metric(run):
    out = []
    for entry in run.get("data") or []:
        found = _registry_entry(entry)
        if found is None:
            continue
        columns = found[1].get("columns") or {}
        for column, doc in columns.items():
            if isinstance(doc, dict) and doc.get("symbol") == "L":
                out.append(f"{entry['dataset']}/{entry['file']}: column {column!r}, "
                           f"{doc.get('meaning', '?')} ({doc.get('unit', '?')})")
    return "; ".join(out) or None


def _raw_values(run):
    out = []
    for entry in run.get("data") or []:
        if not entry.get("sha256"):
            continue
        name = entry.get("file") if entry.get("dataset") in (None, "user") else f"{entry['dataset']}/{entry.get('file')}"
        text = f"{name} (sha256 {entry['sha256'][:12]}...)"
        found = _registry_entry(entry)
        if found is not None:
            info, file_entry = found
            text += f" from {file_entry.get('url')}, license: {info.get('license', 'not stated')}"
        out.append(text)
    return "; ".join(out) or None


# Per fit (distinct answers labelled by fit name) or over the whole run. A run-level answer
# may return (value, source, field) when it answered from somewhere other than the item's
# usual source.
_FIT_ANSWERS = {"form": _form, "points": _points, "objective": _objective, "resampling": _resampling}
_RUN_ANSWERS = {"n_laws_params": _n_laws_params, "runs": _run_counts, "optimizer": _optimizer,
                "initialization": _initialization, "uncertainty": _uncertainty,
                "validation": _validation, "fitting_code": _fitting_code, "metric": _metric,
                "raw_values": _raw_values}


def _recorded(item: dict, run: dict) -> tuple[str | None, str, str]:
    """(value or None, source, field) of an item answered from the run's records."""
    iid = item["id"]
    if iid in _FIT_ANSWERS:
        out = _per_fit(run, _FIT_ANSWERS[iid])
    else:
        out = _RUN_ANSWERS[iid](run) if iid in _RUN_ANSWERS else None
    return out if isinstance(out, tuple) else (out, item["source"], item["field"])


# ----------------------------------------------------------------------------- evaluate
def evaluate(run: dict, spec=None) -> list[dict]:
    """One checklist entry per item for a run's results dict (and its spec, if any).

    ``run`` is a ``results.json`` dict: a replication's (``Recorder.results()``) or a user
    fit's (just ``fits`` and ``data``; it may carry ``purpose`` and ``declared`` itself).
    ``spec`` is a ``spec.Spec`` or a spec mapping; it adds the purpose, the ``declared:``
    answers and, per item, ``original`` = what the original paper reported.
    Each entry: ``id, group, number, question, required, status, value, source, field``
    (+ ``original`` with a spec); ``source``/``field`` say where the value was read.
    """
    if not isinstance(run, dict):
        raise ChecklistError(f"evaluate needs a results dict, got {type(run).__name__}")
    declared = {**(run.get("declared") or {}), **(_get(spec, "declared") or {})}
    purpose = _get(spec, "purpose") or run.get("purpose")
    original = _get(spec, "original_reporting") or {}
    entries = []
    for item in items():
        iid = item["id"]
        entry = {k: item[k] for k in ("id", "group", "number", "question", "required")}
        value, source, field = _recorded(item, run)  # None for the items only words can answer
        if value is not None:
            entry.update(status="recorded", value=value, source=source, field=field)
        elif declared.get(iid):  # a person's own words (e.g. `--about`) before a generic purpose
            entry.update(status="declared", value=" ".join(str(declared[iid]).split()),
                         source="declared", field=f"declared.{iid}")
        elif iid == "purpose" and purpose:
            entry.update(status="declared", value=" ".join(str(purpose).split()), source="spec",
                         field="purpose")
        elif iid in original and _NOT_REPORTED.match(str(original[iid])):
            entry.update(status="not_reported_by_original",
                         value=f"not answerable from this run; original paper: {original[iid]}", source="spec",
                         field=f"original_reporting.{iid}")
        else:
            entry.update(status="missing", value=None, source=None, field=None)
        if spec is not None:
            entry["original"] = original.get(iid)
        entries.append(entry)
    return entries


def summary(entries: list[dict]) -> dict:
    """Counts per status and the ids of missing required items (what a report shows first)."""
    counts = Counter(e["status"] for e in entries)
    return {"counts": {s: counts.get(s, 0) for s in STATUSES},
            "missing_required": [e["id"] for e in entries if e["status"] == "missing" and e["required"]]}


# ----------------------------------------------------------------------------- --about
#: What ``scalerepro fit --about FILE.yaml`` may declare: the items a table of runs cannot
#: answer, each with an example of a useful answer (shown in the template).
ABOUT_EXAMPLES = {
    "purpose": "choose N and D for a 1e22 FLOP run; the Chinchilla form because our runs vary N and D "
               "independently",
    "training_data": "C4 (en), deduplicated; every run sees each token at most once",
    "hyperparameters": "AdamW (beta2 0.95), weight decay 0.1; cosine schedule decayed to 10% at the end "
                       "of each run, warmup 1% of steps; learning rate swept per size (3 values), best "
                       "kept; batch size 0.5M tokens at every size",
    "counting": "N = non-embedding parameters; C = 6ND (attention FLOPs ignored)",
    "metric": "validation cross-entropy in nats per token on 10M held-out tokens, at the final "
              "checkpoint, no smoothing, one seed per run",
    "training_code": "https://github.com/<org>/<repo> at commit <sha> (or: not released)",
    "checkpoints": "not released",
}


def about_template() -> str:
    """A commented YAML template for ``scalerepro fit --about``: each declarable item, its
    checklist question and an example answer. Keys left empty stay "missing"."""
    numbers = {item["id"]: item for item in items()}
    lines = ["# What your runs' CSV cannot say about them, for `scalerepro fit RUNS.csv --about THIS.yaml`.",
             "# Each answer appears in the report's reporting checklist as \"declared\", in your words.",
             "# Answer in plain text (use `>-` and indented lines for a long answer); leave a key empty",
             "# or delete it to leave that item \"missing\". Everything else in the checklist is",
             "# recorded from the fit itself.", ""]
    for iid, example in ABOUT_EXAMPLES.items():
        item = numbers[iid]
        question = f"{item['number']}. {item['question']}" + ("" if item["required"] else " (optional)")
        lines += textwrap.wrap(question, 92, initial_indent="# ", subsequent_indent="#    ")
        lines += textwrap.wrap(f"e.g. {example}", 92, initial_indent="#    ", subsequent_indent="#      ")
        lines += [f"{iid}:", ""]
    return "\n".join(lines)


def load_about(path) -> dict[str, str]:
    """The declared answers in an ``--about`` YAML file, as ``item id -> text``.

    Every problem (unreadable YAML, an unknown or non-declarable key, a value that is not
    text) is collected and raised at once as :class:`scalerepro.io.validate.InputError` naming
    the file. Empty values are skipped: those items stay missing.
    """
    from pathlib import Path

    from ..io.validate import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, ["no such file (write one with `scalerepro fit --about-template > about.yaml`)"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InputError(path, [f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(path, [f"expected `item: answer` lines, got a YAML {type(raw).__name__}"])
    answers, problems = {}, []
    recorded = set(item_ids()) - set(ABOUT_EXAMPLES)
    for key, value in raw.items():
        key = str(key)
        if key not in ABOUT_EXAMPLES:
            if key in recorded:
                problems.append(f"{key!r} is recorded from the fit itself and cannot be declared")
            else:
                close = difflib.get_close_matches(key, ABOUT_EXAMPLES, n=1)
                problems.append(f"unknown item {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            value = "; ".join(str(v) for v in value)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            problems.append(f"{key}: expected text, got a YAML {type(value).__name__}")
            continue
        answers[key] = " ".join(str(value).split())
    if problems:
        problems.append(f"declarable items: {', '.join(ABOUT_EXAMPLES)}")
        raise InputError(path, problems)
    return answers

"""The (Mis)Fitting checklist: filled from real FitResult records, the registry and specs."""

import copy
import re

import pytest

from conftest import ROOT, synthetic_chinchilla_fit
from scalerepro.publishing import checklist, spec as specmod
from scalerepro.publishing.results import Recorder, json_safe

# The repository's specs, listed from the repository (not from $SCALEREPRO_REPLICATIONS_DIR,
# which may point anywhere when the module is collected); an empty list fails collection.
REPO_SPECS = sorted(p.stem for p in (ROOT / "replications").glob("*.yaml"))
IDS = ["form", "purpose", "n_laws_params", "runs", "training_data", "hyperparameters", "counting",
       "metric", "points", "resampling", "optimizer", "objective", "initialization", "validation",
       "uncertainty", "training_code", "fitting_code", "checkpoints", "raw_values"]
FITTING_RECORDED = ["optimizer", "objective", "initialization", "uncertainty", "points"]
CHINCHILLA_DATA = {"dataset": "besiroglu2024_chinchilla", "file": "svg_extracted_data.csv",
                   "sha256": "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"}


@pytest.fixture(scope="module")
def synthetic():
    """A real Chinchilla fit (two points dropped with a reason) and a small bootstrap."""
    dropped = [{"index": 50, "reason": "diverged run"}, {"index": 51, "reason": "diverged run"}]
    return synthetic_chinchilla_fit(50, seed=3, n_starts=6, n_resamples=16, boot_seed=2, dropped=dropped)


@pytest.fixture
def repo_specs(monkeypatch):
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(ROOT / "replications"))


def by_id(entries):
    ids = [e["id"] for e in entries]
    assert ids == IDS, "every item exactly once, in checklist order"
    return {e["id"]: e for e in entries}


def recorder_run(name, tmp_path, result, boot, spec=None):
    rec = Recorder(name, tmp_path, spec=spec)
    rec.add_dataset(dict(CHINCHILLA_DATA))
    rec.add_fit("main", result, bootstrap=boot)
    return rec


def test_definition_has_19_items_in_5_named_groups():
    items = checklist.items()
    assert [i["id"] for i in items] == IDS
    assert [i["number"] for i in items] == list(range(1, 20))
    assert list(checklist.groups()) == ["form", "training", "data", "fitting", "release"]
    fitting = [i["id"] for i in items if i["group"] == "fitting"]
    assert fitting == ["optimizer", "objective", "initialization", "validation", "uncertainty"]
    assert all(i["question"] and isinstance(i["required"], bool) and i["field"] for i in items)


@pytest.mark.usefixtures("fixture_specs")
def test_recorder_write_fills_checklist_from_the_fit(tmp_path, synthetic):
    result, boot = synthetic
    out = recorder_run("tiny", tmp_path, result, boot).write()
    items = by_id(out["checklist"])
    assert {e["status"] for e in items.values()} <= set(checklist.STATUSES)
    for iid in FITTING_RECORDED + ["form", "n_laws_params", "resampling", "raw_values", "metric"]:
        assert items[iid]["status"] == "recorded", iid
    assert all(items[i]["source"] == "fit" for i in FITTING_RECORDED)
    # values are the record's own numbers, not boilerplate
    record = result.record()
    assert items["objective"]["value"] == record["objective"]["text"]
    assert f"ftol_rel={record['optimizer']['tolerances']['ftol_rel']:.4g}" in items["optimizer"]["value"]
    assert items["optimizer"]["value"].startswith(record["optimizer"]["name"])
    assert items["initialization"]["value"].startswith(
        f"6 starts, {record['initialization']['n_starts_converged']} converged")
    assert items["points"]["value"] == "50 used, 2 dropped (2 x diverged run)"
    assert items["uncertainty"]["value"].startswith(f"{boot.record()['method']}: 16 resamples, 95% intervals")
    assert "resampling points: 16 resamples, seed 2" in items["resampling"]["value"]
    assert items["n_laws_params"]["value"] == "1 fit: main (chinchilla, 5 parameters)"
    # the tiny spec's claims answer validation; its purpose is declared, not recorded
    assert items["validation"]["status"] == "recorded" and "4 claims" in items["validation"]["value"]
    assert items["purpose"]["status"] == "declared"
    # nothing in the tiny spec answers the training items and it states no original reporting
    assert items["training_data"]["status"] == "missing" and items["training_data"]["value"] is None


def test_no_bootstrap_leaves_uncertainty_missing(synthetic):
    result, _ = synthetic
    run = json_safe({"fits": {"main": {**result.record(), "bootstrap": None}}, "data": []})
    items = by_id(checklist.evaluate(run))
    assert items["uncertainty"]["status"] == "missing" and items["resampling"]["status"] == "missing"
    assert "uncertainty" in checklist.summary(list(items.values()))["missing_required"]
    # the original paper's reporting decides between missing and not_reported_by_original
    silent = by_id(checklist.evaluate(run, {"original_reporting": {"uncertainty": "not reported"}}))
    assert silent["uncertainty"]["status"] == "not_reported_by_original"
    assert silent["uncertainty"]["original"] == "not reported"
    reported = by_id(checklist.evaluate(run, {"original_reporting": {"uncertainty": "reported: 80% CI"}}))
    assert reported["uncertainty"]["status"] == "missing"
    assert reported["uncertainty"]["original"] == "reported: 80% CI"


def test_user_fit_without_spec(synthetic):
    result, boot = synthetic
    run = json_safe({"fits": {"mine": {**result.record(), "bootstrap": boot.record()}},
                     "data": [{"dataset": None, "file": "my_runs.csv", "sha256": "ab" * 32}]})
    entries = checklist.evaluate(run)
    items = by_id(entries)
    assert all("original" not in e for e in entries)
    for iid in FITTING_RECORDED:
        assert items[iid]["status"] == "recorded", iid
    assert items["raw_values"]["value"] == f"my_runs.csv (sha256 {'ab' * 6}...)"
    assert items["metric"]["status"] == "missing"  # an unregistered file documents no metric
    assert items["purpose"]["status"] == "missing" and items["validation"]["status"] == "missing"
    # a user's own statements are declared, never recorded
    items = by_id(checklist.evaluate({**run, "purpose": "predict loss at 1e22 FLOP",
                                      "declared": {"checkpoints": "not released"}}))
    assert items["purpose"]["status"] == "declared" and items["checkpoints"]["status"] == "declared"


def test_registry_answers_metric_and_raw_values():
    items = by_id(checklist.evaluate({"fits": {}, "data": [dict(CHINCHILLA_DATA)]}))
    assert items["metric"]["source"] == "data"
    assert "column 'loss'" in items["metric"]["value"] and "nats/token" in items["metric"]["value"]
    raw = items["raw_values"]["value"]
    assert "sha256 193478df4e90" in raw and "epoch-research/analyzing-chinchilla" in raw
    assert "license: none stated" in raw
    assert items["form"]["status"] == "missing"  # no fit, no form


def test_several_fits_are_labelled_and_non_convergence_shown(synthetic):
    result, boot = synthetic
    main = {**result.record(), "bootstrap": boot.record()}
    other = copy.deepcopy(main)
    other["objective"]["text"] = "MSE on log loss, averaged"
    other["converged"], other["message"] = False, "max_iter reached"
    run = json_safe({"fits": {"other": other, "main": main}, "fit": {"name": "main"}, "data": []})
    items = by_id(checklist.evaluate(run))
    assert items["objective"]["value"] == (f"{main['objective']['text']} [main]; "
                                           "MSE on log loss, averaged [other]")
    assert items["form"]["value"] == checklist._form(main)  # identical answers read as one
    # identical settings once; convergence aggregated so the failed fit stands out
    optimizer = items["optimizer"]["value"]
    assert optimizer.startswith(main["optimizer"]["name"]) and "other: " not in optimizer
    assert "1 of 2 fits converged; DID NOT CONVERGE: other (max_iter reached)" in optimizer
    n_conv = main["initialization"]["n_starts_converged"]
    assert n_conv > 1
    run["fits"]["other"]["initialization"]["n_starts_converged"] = 1
    items = by_id(checklist.evaluate(run))
    assert items["initialization"]["value"] == (f"2 fits, 6 starts each, 1 to {n_conv} converged "
                                                "per fit; no bounds (unconstrained)")
    assert items["n_laws_params"]["value"] == "2 fits: 2 x chinchilla (5 parameters)"
    assert items["runs"]["value"].startswith("52 runs in the data, 50 fitted; fitted ranges N ")
    assert ", D " in items["runs"]["value"]


def test_claim_intervals_answer_uncertainty_without_a_fit_bootstrap(synthetic):
    result, _ = synthetic
    claims = [{"id": "x.a", "verdict": "replicated", "reproduced_interval": [0.1, 0.2]},
              {"id": "x.b", "verdict": "inconclusive", "reproduced_interval": None}]
    run = json_safe({"fits": {"main": {**result.record(), "bootstrap": None}}, "claims": claims})
    item = by_id(checklist.evaluate(run))["uncertainty"]
    assert item["status"] == "recorded" and item["source"] == "spec"
    assert item["value"].startswith("no fit bootstrap; 1 of 2 claims carry a reproduced interval")
    assert item["field"] == "claims[*].reproduced_interval"


def test_recorded_wins_over_declared(synthetic):
    result, boot = synthetic
    run = json_safe({"fits": {"main": {**result.record(), "bootstrap": boot.record()}}, "data": []})
    items = by_id(checklist.evaluate(run, {"declared": {"objective": "whatever we say"}}))
    assert items["objective"]["status"] == "recorded"
    assert items["objective"]["value"] == result.record()["objective"]["text"]


def test_declared_words_and_the_purpose_say_where_they_came_from():
    """A person's words are kept (whitespace folded) and attributed: ``declared.<id>`` for an
    answer, the spec's purpose before the run's own, the run's when there is no spec."""
    run = {"purpose": "the run's purpose", "declared": {"training_data": "  C4 (en),\n deduplicated "}}
    entries = by_id(checklist.evaluate(run, {"purpose": "the   spec's purpose"}))
    answer = {k: entries["training_data"][k] for k in ("status", "value", "source", "field")}
    assert answer == {"status": "declared", "value": "C4 (en), deduplicated", "source": "declared",
                      "field": "declared.training_data"}
    purpose = {k: entries["purpose"][k] for k in ("status", "value", "source", "field")}
    assert purpose == {"status": "declared", "value": "the spec's purpose", "source": "spec", "field": "purpose"}
    assert by_id(checklist.evaluate(run))["purpose"]["value"] == "the run's purpose"
    missing = by_id(checklist.evaluate({}))["purpose"]
    assert {k: missing[k] for k in ("status", "value", "source", "field")} == dict.fromkeys(
        ("status", "value", "source", "field")) | {"status": "missing"}


def test_what_the_original_paper_did_not_report_is_said_and_attributed():
    entries = by_id(checklist.evaluate({}, {"original_reporting": {"uncertainty": "not reported"}}))
    answer = {k: entries["uncertainty"][k] for k in ("status", "value", "source", "field", "original")}
    assert answer == {"status": "not_reported_by_original", "source": "spec", "original": "not reported",
                      "value": "not answerable from this run; original paper: not reported",
                      "field": "original_reporting.uncertainty"}


def test_chinchilla_spec_gives_a_complete_checklist(tmp_path, synthetic, repo_specs):
    """With a fit, a bootstrap, its data and claims, no item of the real spec is missing."""
    result, boot = synthetic
    spec = specmod.load_spec("chinchilla_approach3")
    out = recorder_run("chinchilla_approach3", tmp_path, result, boot, spec=spec).write()
    items = by_id(out["checklist"])
    assert [i for i, e in items.items() if e["status"] == "missing"] == []
    assert items["counting"]["status"] == "declared" and "6N" in items["counting"]["value"]
    assert items["checkpoints"]["status"] == "not_reported_by_original"
    assert items["checkpoints"]["original"] == spec.original_reporting["checkpoints"]
    assert all(items[i]["status"] == "recorded" for i in FITTING_RECORDED)


def test_repo_specs_are_the_ones_the_loader_lists(repo_specs):
    assert REPO_SPECS and specmod.list_specs() == REPO_SPECS


@pytest.mark.usefixtures("repo_specs")
@pytest.mark.parametrize("name", REPO_SPECS)
def test_spec_checklist_sections_use_item_ids(name):
    spec = specmod.load_spec(name)
    assert checklist.spec_problems(spec) == []


def test_spec_problems_names_unknown_ids():
    assert checklist.spec_problems({"original_reporting": {"fitting": "x", "form": "y"},
                                    "declared": {"nope": "z"}}) == [
        "original_reporting: unknown checklist item 'fitting'", "declared: unknown checklist item 'nope'"]


def test_evaluate_rejects_a_non_dict():
    with pytest.raises(checklist.ChecklistError, match="results dict, got list"):
        checklist.evaluate([])


@pytest.mark.usefixtures("repo_specs")
@pytest.mark.parametrize("name", REPO_SPECS)
def test_every_replication_spec_answers_the_items_no_record_can(name):
    # Items whose source is "declared" can only come from the spec: each replication must
    # either declare an answer or state what the original paper reported, so that no item
    # of its report is left missing.
    s = specmod.load_spec(name)
    for item in checklist.items():
        if item["source"] == "declared":
            assert item["id"] in s.declared or item["id"] in s.original_reporting, (name, item["id"])
    assert s.purpose


def test_summary_counts_statuses_and_names_missing_required_items():
    entries = [{"id": "a", "status": "recorded", "required": True},
               {"id": "b", "status": "missing", "required": True},
               {"id": "c", "status": "missing", "required": False},
               {"id": "d", "status": "declared", "required": True},
               {"id": "e", "status": "missing", "required": True}]
    assert checklist.summary(entries) == {
        "counts": {"recorded": 1, "declared": 1, "not_reported_by_original": 0, "missing": 3},
        "missing_required": ["b", "e"]}


# ----------------------------------------------------------------------------- --about
def test_about_template_lists_every_declarable_item_and_loads_as_nothing(tmp_path):
    text = checklist.about_template()
    for iid in checklist.ABOUT_EXAMPLES:
        assert f"\n{iid}:\n" in text
        assert iid in IDS
    assert all(len(line) <= 100 for line in text.splitlines())
    path = tmp_path / "about.yaml"
    path.write_text(text)
    assert checklist.load_about(path) == {}  # an untouched template declares nothing


def test_about_answers_become_declared_in_the_users_words(tmp_path, synthetic):
    result, boot = synthetic
    path = tmp_path / "about.yaml"
    path.write_text("training_data: C4 (en), deduplicated\n"
                    "hyperparameters: >-\n  cosine schedule to 10%,\n  LR swept per size\n"
                    "counting: [non-embedding N, C = 6ND]\nmetric: val loss, nats/token, no smoothing\n"
                    "checkpoints:\n")
    about = checklist.load_about(path)
    assert about == {"training_data": "C4 (en), deduplicated",
                     "hyperparameters": "cosine schedule to 10%, LR swept per size",
                     "counting": "non-embedding N; C = 6ND", "metric": "val loss, nats/token, no smoothing"}
    run = json_safe({"fits": {"mine": {**result.record(), "bootstrap": boot.record()}},
                     "data": [{"dataset": "user", "file": "/x/my_runs.csv", "sha256": "ab" * 32}],
                     "purpose": "Fit L = ... (generic)", "declared": about})
    items = by_id(checklist.evaluate(run))
    for iid, words in about.items():
        assert items[iid]["status"] == "declared" and items[iid]["value"] == words, iid
    assert items["checkpoints"]["status"] == "missing"  # left empty: not declared
    # a declared purpose is the user's, ahead of the generic description of the fit
    items = by_id(checklist.evaluate({**run, "declared": {"purpose": "choose N at 1e22 FLOP"}}))
    assert items["purpose"]["value"] == "choose N at 1e22 FLOP"


@pytest.mark.parametrize("text, message", [
    ("training: C4\n", "unknown item 'training' (did you mean 'training_data'?)"),
    ("optimizer: adam\n", "'optimizer' is recorded from the fit itself"),
    ("metric: {set: val}\n", "metric: expected text, got a YAML dict"),
    ("- a\n- b\n", "expected `item: answer` lines, got a YAML list"),
    ("metric: [unclosed\n", "not valid YAML: line"),
])
def test_about_problems_name_the_file_and_the_key(tmp_path, text, message):
    from scalerepro.io.validate import InputError

    path = tmp_path / "about.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        checklist.load_about(path)
    assert "about.yaml" in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        checklist.load_about(tmp_path / "missing.yaml")

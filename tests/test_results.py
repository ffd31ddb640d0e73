"""The Recorder: claims checked against the spec, fit provenance, deterministic JSON."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_chinchilla_fit
from scalerepro.publishing.results import Recorder, RecorderError, json_safe, write_json_atomic

pytestmark = pytest.mark.usefixtures("fixture_specs")


@pytest.fixture(scope="module")
def small_fit():
    """A real Chinchilla fit on nearly noiseless synthetic points, plus a small bootstrap."""
    result, boot = synthetic_chinchilla_fit(60, seed=0, n_starts=8, n_resamples=20, boot_seed=1)
    assert result.params["E"] == pytest.approx(1.8, rel=0.05)
    return result, boot


def test_unknown_claim_id_lists_valid_ids(tmp_path):
    rec = Recorder("tiny", tmp_path)
    with pytest.raises(RecorderError, match=r"unknown claim id 'tiny.nope' for tiny; valid: tiny.value"):
        rec.claim("tiny.nope", 1.0)


@pytest.mark.parametrize("interval", [(2.0, 1.0), (1.0,), ("a", "b"), (1.0, float("inf"))])
def test_malformed_interval_is_rejected(tmp_path, interval):
    with pytest.raises(RecorderError, match="interval"):
        Recorder("tiny", tmp_path).claim("tiny.interval", 2.0, interval=interval)


def test_write_evaluates_every_claim(tmp_path):
    rec = Recorder("tiny", tmp_path, parameters={"scale": 1.0})
    returned = rec.claim("tiny.value", np.float64(2.3), note="off")
    assert returned["verdict"] == "not_replicated"
    rec.claim("tiny.interval", 2.0, interval=np.array([1.9, 2.1]))
    out = rec.write()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == out
    verdicts = {c["id"]: (c["verdict"], c["note"]) for c in on_disk["claims"]}
    assert verdicts == {"tiny.value": ("not_replicated", "off"),
                        "tiny.interval": ("replicated", ""),
                        "tiny.unmeasured": ("inconclusive", "not measured by the notebook"),
                        "tiny.untestable": ("not_testable", "")}
    assert on_disk["claims"][3]["why"] == "needs the unreleased runs"
    assert on_disk["parameters"] == {"scale": 1.0}
    assert on_disk["fit"] is None


def test_nan_becomes_null_and_output_is_deterministic(tmp_path):
    def once(d):
        rec = Recorder("tiny", d)
        rec.claim("tiny.value", float("nan"))
        rec.add_table("t", pd.DataFrame({"x": [1.0, np.nan], "name": ["a", "b"]}))
        rec.write()
        return (d / "results.json").read_text()

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = once(tmp_path / "a"), once(tmp_path / "b")
    assert first == second
    data = json.loads(first)
    assert data["claims"][0]["reproduced"] is None and data["claims"][0]["verdict"] == "inconclusive"
    assert data["tables"]["t"] == [{"x": 1.0, "name": "a"}, {"x": None, "name": "b"}]
    assert "NaN" not in first


def test_datasets_from_frame_attrs_or_dict(tmp_path):
    rec = Recorder("tiny", tmp_path)
    df = pd.DataFrame({"N": [1]})
    df.attrs.update(dataset="d", file="f.csv", sha256="ab" * 32, path="/somewhere/f.csv")
    rec.add_dataset(df)
    rec.add_dataset({"dataset": "d", "file": "f.csv", "sha256": "ab" * 32})  # same file: once
    rec.add_dataset({"dataset": "e", "file": "g.csv", "sha256": None})
    assert rec.results()["data"] == [{"dataset": "d", "file": "f.csv", "sha256": "ab" * 32},
                                     {"dataset": "e", "file": "g.csv", "sha256": None}]
    with pytest.raises(RecorderError, match="add_dataset needs a DataFrame from scalerepro.io.data.load"):
        rec.add_dataset(pd.DataFrame({"N": [1]}))


def test_fits_main_fit_intervals_and_timing_kept_apart(tmp_path, small_fit):
    result, boot = small_fit
    rec = Recorder("tiny", tmp_path)
    rec.add_fit("first", result)
    rec.add_fit("main", result, bootstrap=boot, main=True)
    out = rec.write()
    assert out["fit"]["name"] == "main"
    assert out["fit"]["params"] == pytest.approx(result.params)
    # the recorded interval is the 95% percentile interval of the bootstrap samples
    assert out["fit"]["intervals"]["E"] == pytest.approx(np.percentile(boot.samples["E"], [2.5, 97.5]), rel=1e-12)
    assert out["fits"]["first"]["bootstrap"] is None
    assert out["fits"]["main"]["bootstrap"]["n_resamples"] == 20
    assert "seconds" not in out["fits"]["main"] and "seconds" not in out["fits"]["main"]["bootstrap"]
    assert set(out["timing"]["computations_seconds"]) == {"fit.first", "fit.main", "bootstrap.main"}


def test_first_fit_is_main_by_default(tmp_path, small_fit):
    rec = Recorder("tiny", tmp_path)
    rec.add_fit("a", small_fit[0])
    rec.add_fit("b", small_fit[0])
    assert rec.results()["fit"]["name"] == "a"


def test_fit_and_recorder_warnings_are_collected(tmp_path, small_fit):
    result, _ = small_fit

    class Warned:
        def record(self):
            return {**result.record(), "warnings": ["Hessian ill-conditioned"]}

    rec = Recorder("tiny", tmp_path)
    rec.add_fit("w", Warned())
    rec.warn("data point dropped")
    rec.warn("data point dropped")
    assert rec.results()["warnings"] == ["data point dropped", "fit w: Hessian ill-conditioned"]


def test_json_safe_and_atomic_write(tmp_path):
    assert json_safe({"a": (np.int64(1), np.nan), 2: np.array([np.inf, 1.5])}) == {"a": [1, None], "2": [None, 1.5]}
    target = tmp_path / "x.json"
    write_json_atomic(target, {"k": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"k": object()})
    assert json.loads(target.read_text()) == {"k": 1}  # the failed write left the old file
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # and no temporary file


def test_a_notebook_recorder_reads_the_spec_parameters_from_its_namespace(tmp_path):
    from scalerepro.publishing.spec import load_spec

    spec = load_spec("tiny")
    namespace = {name: p.default for name, p in spec.parameters.items()}
    namespace.update(out_dir=str(tmp_path), unrelated=1, n_bootstrap=7)
    rec = Recorder.for_notebook("tiny", namespace)
    assert list(rec.parameters) == list(spec.parameters) and rec.parameters["n_bootstrap"] == 7
    assert rec.out_dir == tmp_path
    del namespace["sleep"], namespace["out_dir"]
    with pytest.raises(RecorderError, match="does not define sleep, out_dir"):
        Recorder.for_notebook("tiny", namespace)


def test_diagnostics_are_recorded_once_and_only_when_there_are_some(tmp_path):
    from scalerepro.diagnostics import Diagnostic

    rec = Recorder("tiny", tmp_path)
    assert "diagnostics" not in rec.results()
    finding = Diagnostic("not_identified", "error", "R_D_star is not identified", ("R_D_star",))
    rec.add_diagnostic(finding)
    rec.add_diagnostic(finding)
    out = rec.write()
    assert out["diagnostics"] == [finding.record()]
    assert json.loads((tmp_path / "results.json").read_text())["diagnostics"][0]["subjects"] == ["R_D_star"]

"""Replication specs: loading, validation of the spec itself, parameters and claim rules."""

from pathlib import Path

import pytest
import yaml

from scalerepro.publishing import spec
from scalerepro.publishing.spec import SpecError, evaluate_claim, load_spec, resolve_parameters

FIXTURES = Path(__file__).parent / "fixtures" / "replications"


pytestmark = pytest.mark.usefixtures("fixture_specs")


@pytest.fixture
def tiny():
    return load_spec("tiny")


def test_default_dir_is_the_repository_replications(monkeypatch):
    monkeypatch.delenv("SCALEREPRO_REPLICATIONS_DIR")
    assert spec.replications_dir() == Path(__file__).resolve().parents[1] / "replications"


def test_list_and_load(tiny):
    assert spec.list_specs() == ["tiny", "tiny_broken"]
    assert tiny.notebook == FIXTURES.parent / "notebooks" / "tiny.ipynb"
    assert [c["id"] for c in tiny.claims][:2] == ["tiny.value", "tiny.interval"]
    assert tiny.defaults()["scale"] == 1.0


def test_unknown_replication_lists_valid_names():
    with pytest.raises(SpecError, match=r"unknown replication 'nope'; valid: tiny, tiny_broken"):
        load_spec("nope")


def test_resolution_order_defaults_profile_overrides(tiny):
    assert resolve_parameters(tiny)["n_bootstrap"] == 10
    assert resolve_parameters(tiny, "ci")["n_bootstrap"] == 5
    got = resolve_parameters(tiny, "ci", {"n_bootstrap": "7", "scale": "2", "fail": "true",
                                          "reduction": "mean"})
    assert got == {"scale": 2.0, "n_bootstrap": 7, "reduction": "mean", "fail": True, "sleep": 0.0}
    assert isinstance(got["scale"], float)  # an int is acceptable for a float


def test_yaml_1_1_float_syntax_is_accepted(tiny):
    assert resolve_parameters(tiny, None, {"scale": "1e-3"})["scale"] == 1e-3


@pytest.mark.parametrize("profile, overrides, message", [
    ("nope", {}, r"unknown profile 'nope'; valid: ci, full"),
    (None, {"n_boot": "3"}, r"unknown parameter 'n_boot'; valid: scale, n_bootstrap, reduction, fail, sleep"),
    (None, {"n_bootstrap": "-1"}, r"'n_bootstrap' = -1 violates min 0"),
    (None, {"n_bootstrap": "2.5"}, r"'n_bootstrap' must be int, got 2.5"),
    (None, {"n_bootstrap": "true"}, r"'n_bootstrap' must be int, got True"),
    (None, {"scale": "0"}, r"'scale' = 0.0 violates exclusive_min 0"),
    (None, {"scale": "nan"}, r"'scale' must be a finite float"),
    (None, {"scale": "abc"}, r"'scale' must be float, got 'abc'"),
    (None, {"reduction": "avg"}, r"'reduction' = 'avg' violates choices \['sum', 'mean'\]"),
    (None, {"fail": "maybe"}, r"'fail' must be bool"),
])
def test_bad_parameters_are_named(tiny, profile, overrides, message):
    with pytest.raises(SpecError, match=message):
        resolve_parameters(tiny, profile, overrides)


# --------------------------------------------------------------------------- the spec itself
def _write(tmp_path, mutate):
    raw = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    mutate(raw)
    d = tmp_path / "replications"
    d.mkdir(exist_ok=True)
    (d / "tiny.yaml").write_text(yaml.safe_dump(raw))
    return d


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["claims"].append(dict(r["claims"][0])), "duplicate claim id 'tiny.value'"),
    (lambda r: r["claims"][0].pop("rule"), r"claim #0 \(tiny.value\) is missing 'rule'"),
    (lambda r: r["claims"][0].pop("source"), "is missing 'source'"),
    (lambda r: r["claims"][0]["rule"].update(kind="close_enough"),
     "claim 'tiny.value': rule kind must be one of abs_tol, rel_tol, in_published_interval, "
     "published_in_reproduced_interval, at_least, not_testable, at_most, got {'kind': 'close_enough'"),
    (lambda r: r["claims"][0]["rule"].pop("tol"), "rule abs_tol needs a non-negative number 'tol'"),
    (lambda r: r["claims"][2]["rule"].pop("tol"), "claim 'tiny.unmeasured': rule rel_tol needs a non-negative"),
    (lambda r: r["claims"][0]["rule"].update(tol=-0.1), "rule abs_tol needs a non-negative number 'tol'"),
    (lambda r: r["claims"][0]["rule"].update(kind="in_published_interval"),
     r"claim 'tiny.value': rule in_published_interval needs 'published_interval: \[low, high\]'$"),
    (lambda r: r["claims"][0].update(published_interval=[2.0, 1.0], rule={"kind": "in_published_interval"}),
     r"rule in_published_interval needs 'published_interval: \[low, high\]'"),
    (lambda r: r["claims"][0]["rule"].update(widen=-0.1), "claim 'tiny.value': 'widen' must be a non-negative number"),
    (lambda r: r["claims"][0]["rule"].update(widen="wide"), "'widen' must be a non-negative number"),
    (lambda r: r["claims"][0]["rule"].update(max_interval_width=0),
     "claim 'tiny.value': 'max_interval_width' must be a positive number"),
    (lambda r: r["claims"][0]["rule"].update(max_interval_width="narrow"), "'max_interval_width' must be a positive"),
    (lambda r: r["claims"][1].update(published=None), "needs a numeric 'published'"),
    (lambda r: r.update(name="other"), "does not match the file name"),
    (lambda r: r["parameters"]["scale"].update(default=-1.0), r"default: parameter 'scale' = -1.0"),
    (lambda r: r["parameters"]["scale"].update(type="complex"), "needs a type"),
    (lambda r: r["parameters"]["reduction"].update(min=0), "only apply to int and float"),
    (lambda r: r["parameters"].update(out_dir={"type": "str", "default": "x"}), "reserved"),
    (lambda r: r["profiles"]["ci"].update(n_boot=1), "profile 'ci' sets unknown parameter 'n_boot'"),
    (lambda r: r["profiles"]["ci"].update(n_bootstrap=-5), r"profile 'ci': parameter 'n_bootstrap' = -5"),
])
def test_invalid_spec_errors_name_the_file(tmp_path, monkeypatch, mutate, message):
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_write(tmp_path, mutate)))
    with pytest.raises(SpecError, match=message) as err:
        load_spec("tiny")
    assert "tiny.yaml" in str(err.value)


@pytest.mark.parametrize("mutate", [
    lambda r: r["claims"][0]["rule"].update(tol=0),                       # exact agreement asked
    lambda r: r["claims"][0]["rule"].update(widen=0, max_interval_width=0.5),
    lambda r: r["claims"][0].update(published=None, published_interval=[1.9, 2.1],
                                    rule={"kind": "in_published_interval"}),  # interval alone
    lambda r: r["claims"][0].update(published_interval=[2.0, 2.0], rule={"kind": "in_published_interval"}),
], ids=["tol 0", "widen 0", "interval without value", "point interval"])
def test_edge_values_of_a_rule_are_valid(tmp_path, monkeypatch, mutate):
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(_write(tmp_path, mutate)))
    assert load_spec("tiny").claims[0]["id"] == "tiny.value"


def test_invalid_yaml_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text("name: [unclosed\n")
    monkeypatch.setenv("SCALEREPRO_REPLICATIONS_DIR", str(tmp_path))
    with pytest.raises(SpecError, match=r"tiny.yaml: invalid YAML"):
        load_spec("tiny")


# --------------------------------------------------------------------------- claim rules
def claim(kind, published=2.0, **rule):
    return {"id": "c", "source": "s", "published": published, "rule": {"kind": kind, **rule},
            "published_interval": rule.pop("published_interval", None)}


# Every rule is checked on both sides of each bound, at the bound itself (inclusive) and one
# step past it. The step, 1e-3 on values near 2, is far outside the 1e-12 relative float
# allowance of spec._le and far inside any tolerance, so each case decides one comparison.
INTERVAL = [1.0, 2.0]


@pytest.mark.parametrize("c, reproduced, interval, verdict", [
    # abs_tol: |reproduced - 2| <= 0.1, both sides; 2.1 - 2.0 is 0.10000000000000009 in floats
    (claim("abs_tol", tol=0.1), 2.1, None, "replicated"),
    (claim("abs_tol", tol=0.1), 1.9, None, "replicated"),
    (claim("abs_tol", tol=0.1), 2.101, None, "not_replicated"),
    (claim("abs_tol", tol=0.1), 1.899, None, "not_replicated"),
    (claim("abs_tol", tol=0.1), 2.1 + 1e-9, None, "not_replicated"),   # float allowance is tiny
    (claim("abs_tol", tol=0.0), 2.0, None, "replicated"),
    # the float allowance of spec._le: 1e-12 x max(1, |values|, |published|), inclusive
    (claim("abs_tol", published=0.0, tol=0.0), 1e-12, None, "replicated"),
    (claim("abs_tol", published=0.0, tol=0.0), 2e-12, None, "not_replicated"),
    (claim("abs_tol", published=1e6, tol=0.0), 1e6 + 5e-7, None, "replicated"),
    (claim("abs_tol", published=1e6, tol=0.0), 1e6 + 2e-6, None, "not_replicated"),
    # rel_tol: |reproduced - p| <= tol |p|, with a negative p so |p| matters
    (claim("rel_tol", published=-4.0, tol=0.05), -4.2, None, "replicated"),
    (claim("rel_tol", published=-4.0, tol=0.05), -3.8, None, "replicated"),
    (claim("rel_tol", published=-4.0, tol=0.05), -4.201, None, "not_replicated"),
    (claim("rel_tol", published=-4.0, tol=0.05), -3.799, None, "not_replicated"),
    (claim("rel_tol", published=40.0, tol=0.05), 41.999, None, "replicated"),  # tol x |p|, not tol
    (claim("rel_tol", published=40.0, tol=0.05), 42.001, None, "not_replicated"),
    # in_published_interval: low <= reproduced <= high, both ends inclusive
    (claim("in_published_interval", published_interval=INTERVAL), 1.0, None, "replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), 2.0, None, "replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), 1.5, None, "replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), 0.999, None, "not_replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), 2.001, None, "not_replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), -5.0, None, "not_replicated"),
    (claim("in_published_interval", published_interval=INTERVAL), 9.0, None, "not_replicated"),
    # ... widened by 0.25 on each side
    (claim("in_published_interval", published_interval=INTERVAL, widen=0.25), 0.75, None, "replicated"),
    (claim("in_published_interval", published_interval=INTERVAL, widen=0.25), 2.25, None, "replicated"),
    (claim("in_published_interval", published_interval=INTERVAL, widen=0.25), 0.749, None, "not_replicated"),
    (claim("in_published_interval", published_interval=INTERVAL, widen=0.25), 2.251, None, "not_replicated"),
    # published_in_reproduced_interval: low <= 2 <= high; the reproduced value itself is irrelevant
    (claim("published_in_reproduced_interval"), 1.5, (1.9, 2.1), "replicated"),
    (claim("published_in_reproduced_interval"), 9.0, (2.0, 2.1), "replicated"),
    (claim("published_in_reproduced_interval"), 9.0, (1.9, 2.0), "replicated"),
    (claim("published_in_reproduced_interval"), 2.0, (2.001, 2.1), "not_replicated"),
    (claim("published_in_reproduced_interval"), 2.0, (1.9, 1.999), "not_replicated"),
    (claim("published_in_reproduced_interval"), 2.0, (-3.0, -1.0), "not_replicated"),
    (claim("published_in_reproduced_interval"), 2.0, (5.0, 9.0), "not_replicated"),
    (claim("published_in_reproduced_interval"), 2.0, None, "inconclusive"),
    (claim("published_in_reproduced_interval"), 5.0, (2.0, 2.0), "replicated"),   # a point interval
    # at_least: reproduced >= p
    (claim("at_least", published=10.0), 10.0, None, "replicated"),
    (claim("at_least", published=10.0), 250.0, None, "replicated"),
    (claim("at_least", published=10.0), 9.999, None, "not_replicated"),
    # at_most: reproduced <= p (a published upper bound)
    (claim("at_most", published=2.0), 2.0, None, "replicated"),
    (claim("at_most", published=2.0), 0.3, None, "replicated"),
    (claim("at_most", published=2.0), 2.11, None, "not_replicated"),
    # max_interval_width: width <= max is tested; wider, or no interval, is inconclusive
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, (1.75, 2.25), "replicated"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, (1.75, 2.251), "inconclusive"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, (1.0, 3.0), "inconclusive"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, None, "inconclusive"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.3, (2.2, 2.4), "not_replicated"),
    (claim("published_in_reproduced_interval", max_interval_width=0.5), 2.0, (1.75, 2.25), "replicated"),
    (claim("published_in_reproduced_interval", max_interval_width=0.5), 2.0, (1.0, 3.0), "inconclusive"),
    # no usable reproduced value
    (claim("abs_tol", tol=0.1), None, None, "inconclusive"),
    (claim("abs_tol", tol=0.1), float("nan"), None, "inconclusive"),
    (claim("abs_tol", tol=0.1), float("inf"), None, "inconclusive"),
    (claim("not_testable", published=None, reason="no data"), 2.0, None, "not_testable"),
])
def test_rules(c, reproduced, interval, verdict):
    got, why = evaluate_claim(c, reproduced, interval)
    assert got == verdict, why
    assert why


@pytest.mark.parametrize("c, reproduced, interval, why", [
    (claim("abs_tol", tol=0.02), 1.82, None, "|1.82 - 2| = 0.18 vs tol 0.02 -> outside"),
    (claim("rel_tol", published=-4.0, tol=0.05), -4.1, None,
     "|-4.1 - -4| = 0.1 vs 0.05 x |published| = 0.2 -> within"),
    (claim("in_published_interval", published_interval=INTERVAL, widen=0.25), 0.5, None,
     "0.5 vs published interval [0.75, 2.25] (widened by 0.25) -> outside"),
    (claim("in_published_interval", published_interval=INTERVAL), 1.5, None,
     "1.5 vs published interval [1, 2] -> within"),
    (claim("published_in_reproduced_interval"), 2.0, (1.5, 2.5),
     "published 2 vs reproduced interval [1.5, 2.5] -> within"),
    (claim("at_least", published=10.0), 12.0, None, "12 vs threshold 10 (at least) -> within"),
    (claim("at_most", published=2.0), 2.11, None, "2.11 vs bound 2 (at most) -> outside"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, (1.0, 3.0),
     "reproduced interval width 2 > max_interval_width 0.5"),
    (claim("abs_tol", tol=0.1, max_interval_width=0.5), 2.0, None,
     "rule needs a reproduced interval no wider than 0.5; none given"),
    (claim("published_in_reproduced_interval"), 2.0, None, "rule needs a reproduced interval; none given"),
    (claim("abs_tol", tol=0.1), None, None, "no reproduced value"),
    (claim("not_testable", published=None, reason="no data"), 2.0, None, "no data"),
    (claim("not_testable", published=None), 2.0, None, "not testable with the available data"),
])
def test_rule_explains_the_comparison(c, reproduced, interval, why):
    assert evaluate_claim(c, reproduced, interval)[1] == why


@pytest.mark.parametrize("interval", [(2.0, 1.0), (1.0,), (1.0, float("nan")), ("a", "b")])
def test_a_malformed_reproduced_interval_is_an_error_naming_the_claim(interval):
    with pytest.raises(SpecError, match=r"claim 'c': interval must be \[low, high\] numbers"):
        evaluate_claim(claim("published_in_reproduced_interval"), 2.0, interval)

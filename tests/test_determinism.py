"""Same inputs, seed and profile -> byte-identical claims and fits, apart from timings."""

import json

import pytest

from conftest import load_or_skip


def _without_timings(obj):
    """Drop run-time measurements ("seconds", "timing"), which legitimately differ."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in ("seconds", "timing")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.mark.slow
def test_ci_profile_twice_gives_identical_claims_and_fits(tmp_path):
    load_or_skip("besiroglu2024_chinchilla")
    from scalerepro.publishing import runner

    outputs = []
    for i in range(2):
        runner.run("chinchilla_approach3", "ci", tmp_path / f"run{i}", progress=False)
        outputs.append(json.loads((tmp_path / f"run{i}" / "chinchilla_approach3" / "results.json").read_text()))
    for key in ("claims", "fits", "fit", "parameters", "data", "checklist"):
        first, second = (json.dumps(_without_timings(o.get(key)), sort_keys=True) for o in outputs)
        assert first == second, f"results.json[{key!r}] differs between identical runs"
    assert outputs[0]["claims"], "no claims recorded"

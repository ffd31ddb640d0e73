"""Numerical trouble is reported as warnings in the fit result and the report, not hidden."""

import warnings

import pytest

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro.core import laws
from scalerepro.publishing import report
from scalerepro.core.bootstrap import bootstrap
from scalerepro.core.fit import FitWarning, fit
from scalerepro.publishing.results import Recorder

TRUTH = laws.Chinchilla().from_natural(**CHINCHILLA_TRUTH)


def _runs(n=60, seed=0, same_tokens=False):
    """60 runs with 1% noise; with ``same_tokens`` every run has D = 1e10."""
    return law_runs(laws.Chinchilla(), CHINCHILLA_TRUTH, n, 0.01, seed, log10_N=(7, 10),
                    log10_D=(10, 10) if same_tokens else (9, 12))


def test_ill_conditioned_hessian_is_reported_with_its_condition_number():
    # Every run has the same D: B/D^beta is a constant, so B, beta and E are not separately
    # identifiable and the Hessian is (numerically) singular.
    X, y = _runs(same_tokens=True)
    with pytest.warns(FitWarning, match=r"ill-conditioned Hessian .*condition number"):
        result = fit(laws.Chinchilla(), X, y, starts=TRUTH[None, :])
    assert result.hessian_condition > 1e10
    assert any("condition number" in w for w in result.warnings)
    assert result.record()["hessian_condition"] == pytest.approx(result.hessian_condition)


def test_well_posed_fit_has_no_warnings():
    X, y = _runs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        result = fit(laws.Chinchilla(), X, y, starts=TRUTH[None, :])
    assert result.warnings == []


def test_bootstrap_reports_the_share_of_failed_resamples():
    X, y = _runs()
    with pytest.warns(FitWarning):
        result = fit(laws.Chinchilla(), X, y, starts=TRUTH[None, :] + 0.3, options={"max_iter": 2})
    boot = bootstrap(result, X, y, n_resamples=50, seed=0)
    assert boot.n_failed > 0
    assert boot.record()["failed_share"] == pytest.approx(boot.n_failed / 50)
    assert any("failed to converge" in w and "%" in w for w in boot.warnings())


def test_fit_and_bootstrap_warnings_reach_the_report(tmp_path):
    X, y = _runs()
    with pytest.warns(FitWarning):
        result = fit(laws.Chinchilla(), X, y, starts=TRUTH[None, :] + 0.3, options={"max_iter": 2})
    boot = bootstrap(result, X, y, n_resamples=20, seed=0)
    rec = Recorder("chinchilla_approach3", out_dir=tmp_path, parameters={})
    rec.add_fit("main", result, bootstrap=boot, main=True)
    results = rec.write()
    assert any("did not converge" in w for w in results["warnings"])
    assert any("bootstrap" in w and "failed" in w for w in results["warnings"])
    html = report.render_report(results, None)
    assert "did not converge" in html and "failed to converge" in html

"""Constraints as data: fit(..., fixed=, tie=, bounds=) in the published parameter names."""

import numpy as np
import pytest

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro import laws
from scalerepro.errors import FitError
from scalerepro.fit import fit

COARSE = laws.grid(a=[0, 5, 10], b=[0, 5, 10], e=[-1, 0, 1], alpha=[0, 0.5, 1], beta=[0, 0.5, 1])


def runs(noise=0.01, truth=CHINCHILLA_TRUTH):
    return law_runs(laws.Chinchilla(), truth, 60, noise, 1, log10_N=(7, 10), log10_D=(9, 12))


def test_a_fixed_parameter_stays_where_it_was_put_and_the_rest_is_refitted():
    X, y = runs(noise=0.0)
    result = fit(laws.Chinchilla(), X, y, starts=COARSE, fixed={"E": CHINCHILLA_TRUTH["E"]})
    assert result.params["E"] == pytest.approx(CHINCHILLA_TRUTH["E"], rel=1e-15)
    for name in ("A", "B", "alpha", "beta"):  # noise-free data: the truth, to optimizer precision
        assert result.params[name] == pytest.approx(CHINCHILLA_TRUTH[name], rel=1e-6)
    assert result.law.param_names == ("a", "b", "alpha", "beta")
    assert result.record()["form"]["fixed"] == {"E": pytest.approx(CHINCHILLA_TRUTH["E"])}


def test_a_tie_gives_the_tied_form():
    # the tied form (alpha = beta as one parameter) is an independent implementation of the
    # same model: both must reach the same optimum
    X, y = runs()
    tied = fit(laws.Chinchilla(), X, y, starts=COARSE, tie={"beta": "alpha"})
    reference = fit(laws.Chinchilla(tied=True), X, y, starts=np.unique(COARSE[:, :4], axis=0))
    assert tied.objective_value == pytest.approx(reference.objective_value, rel=1e-9)
    for name, value in reference.params.items():
        assert tied.params[name] == pytest.approx(value, rel=1e-6)
    assert tied.params["alpha"] == tied.params["beta"] and tied.law.has_allocation


def test_bounds_in_published_units():
    X, y = runs(noise=0.0)  # true E = 1.69 lies above the bound: the fit must stop at it
    result = fit(laws.Chinchilla(), X, y, starts=COARSE, bounds={"E": (0.0, 1.5)}, warn=False)
    assert result.params["E"] == pytest.approx(1.5, rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"fixed": {"F": 1.0}}, "has no parameter 'F'"),
    ({"fixed": {"E": -1.0}}, "must be positive"),
    ({"fixed": {"alpha": 0.3}, "tie": {"beta": "alpha"}}, "not both"),
    ({"tie": {"beta": "beta"}}, "tied to itself"),
])
def test_constraints_that_cannot_hold_are_one_clear_error(kwargs, message):
    X, y = runs()
    with pytest.raises(FitError, match=message):
        fit(laws.Chinchilla(), X, y, starts=COARSE, **kwargs)

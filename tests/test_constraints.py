"""Constraints as data: fit(..., fixed=, tie=, bounds=) in the published parameter names."""

import numpy as np
import pytest

from conftest import CHINCHILLA_TRUTH, law_runs
from scalerepro.core import laws
from scalerepro.errors import FitError
from scalerepro.core.fit import fit

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
    # alpha = beta as a tie runs the compiled kernel's one-exponent form; the constrained law's
    # numpy derivatives (the law's own times the tie's map) are an independent implementation
    # of the same model: both must reach the same optimum, from either direction of the tie
    X, y = runs()
    tied = fit(laws.Chinchilla(), X, y, starts=COARSE, tie={"beta": "alpha"})
    assert tied.optimizer["implementation"].startswith("compiled")
    numpy = fit(laws.Chinchilla(), X, y, starts=COARSE, tie={"beta": "alpha"}, options={"compiled": False})
    assert numpy.optimizer["implementation"].startswith("numpy")
    other_way = fit(laws.Chinchilla(), X, y, starts=COARSE, tie={"alpha": "beta"})
    assert other_way.optimizer["implementation"].startswith("compiled")
    for other in (numpy, other_way):
        assert tied.objective_value == pytest.approx(other.objective_value, rel=1e-9)
        for name, value in other.params.items():
            assert tied.params[name] == pytest.approx(value, rel=1e-6)
    assert tied.params["alpha"] == tied.params["beta"] and tied.law.has_allocation
    # starts given for the full law, in any order: their distinct free rows, in np.unique's order
    shuffled = COARSE[np.random.default_rng(0).permutation(len(COARSE))]
    np.testing.assert_array_equal(tied.law.free_starts(shuffled), np.unique(COARSE[:, :4], axis=0))
    # the tied optimum is no better than the free one, and differs from it on these runs
    free = fit(laws.Chinchilla(), X, y, starts=COARSE)
    assert free.objective_value < tied.objective_value * (1 - 1e-3)


def test_the_registered_tied_form_is_the_tie_with_hoffmanns_grid():
    from scalerepro.analyses.law_registry import get_law
    from scalerepro.core.newton import chinchilla_form

    X, y = runs(truth=dict(CHINCHILLA_TRUTH, beta=CHINCHILLA_TRUTH["alpha"]))
    law = get_law("chinchilla_tied")
    assert law.param_names == ("a", "b", "e", "alpha") and chinchilla_form(law) == "tied"
    starts = law.default_starts()  # Hoffmann's 4500-start grid less its beta axis
    assert starts.shape == (900, 4)
    np.testing.assert_array_equal(starts, laws.grid(a=np.arange(0, 26, 5.0), b=np.arange(0, 26, 5.0),
                                                    e=np.arange(-1, 1.01, 0.5), alpha=np.arange(0, 2.01, 0.5)))
    result = fit(law, X, y)
    assert result.n_starts == 900 and result.record()["form"]["tied"] == {"beta": "alpha"}
    assert result.record()["form"]["fitted_parameters"] == ["a", "b", "e", "alpha"]
    by_tie = fit(laws.Chinchilla(), X, y, tie={"beta": "alpha"})
    np.testing.assert_array_equal(by_tie.theta, result.theta)
    profile = fit(law, X, y, optimizer="profile")
    assert profile.landscape["tied"] and profile.objective_value == pytest.approx(result.objective_value, rel=1e-9)
    # any other constraint is not the kernel's form: numpy, and no profile optimizer
    assert chinchilla_form(get_law("kaplan_nd")) is None
    with pytest.raises(FitError, match="optimizer 'profile' needs"):
        fit(laws.Chinchilla(), X, y, tie={"beta": "alpha"}, fixed={"E": 1.69}, optimizer="profile")


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

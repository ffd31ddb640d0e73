"""Kaplan et al. 2020's law objects and constants, and the tidy Porian et al. tables."""

import numpy as np
import pandas as pd
import pytest

from conftest import data_or_skip
from scalerepro.analyses import kaplan_laws, porian
from scalerepro.core.fit import fit
from scalerepro.analyses.law_registry import get_law

X = {"kaplan2020_n": np.array([[1e6], [1e8], [1e9]]),
     "kaplan2020_d": np.array([[1e8], [1e10], [1e11]]),
     "kaplan2020_c": np.array([[1e-3], [1.0], [1e2]]),
     "kaplan2020_nd": np.array([[1e6, 1e8], [1e8, 1e9], [1e9, 1e11], [3e7, 2e10]]),
     "kaplan2020_ns": np.array([[1e6, 1e3], [1e8, 1e4], [1e9, 1e5], [3e7, 3e4]])}


@pytest.mark.parametrize("name", sorted(kaplan_laws.constants()["laws"]))
def test_registered_with_published_constants_and_a_correct_jacobian(name):
    law, theta = kaplan_laws.published(name)
    assert get_law(name) is law
    f, J = law.log_predict_jac(theta[None], X[name])
    h = 1e-6
    for j in range(law.n_params):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        num = (law.log_predict(tp[None], X[name]) - law.log_predict(tm[None], X[name])) / (2 * h)
        np.testing.assert_allclose(J[0, :, j], num[0], rtol=1e-6, atol=1e-8)
    assert np.all((np.exp(f) > 1) & (np.exp(f) < 10))       # nats/token at these scales


def test_loss_at_optimum_law_has_a_correct_jacobian():
    # L(C) = E + A C^-alpha has no published Kaplan constants; check it at Porian-like values.
    law = get_law("kaplan2020_c_with_e")
    theta = law.from_natural(E=2.0, A=60.0, alpha=0.12)
    C = np.array([[1e16], [1e18], [3e19]])
    _, J = law.log_predict_jac(theta[None], C)
    for j in range(law.n_params):
        step = np.eye(law.n_params)[j] * 1e-6
        num = (law.log_predict((theta + step)[None], C) - law.log_predict((theta - step)[None], C)) / 2e-6
        np.testing.assert_allclose(J[0, :, j], num[0], rtol=1e-6, atol=1e-8)


def test_published_values_match_the_paper_equations():
    c = kaplan_laws.constants()
    assert c["laws"]["kaplan2020_n"]["constants"] == {"alpha_N": 0.076, "N_c": 8.8e13}
    law, theta = kaplan_laws.published("kaplan2020_n")
    assert law.predict(theta, [[1e9]])[0] == pytest.approx((8.8e13 / 1e9) ** 0.076)
    law, theta = kaplan_laws.published("kaplan2020_nd")
    n, d = 1e8, 1e10
    expected = ((6.4e13 / n) ** (0.076 / 0.103) + 1.8e13 / d) ** 0.103
    assert law.predict(theta, [[n, d]])[0] == pytest.approx(expected)
    law, theta = kaplan_laws.published("kaplan2020_ns")
    assert law.predict(theta, [[1e8, 1e4]])[0] == pytest.approx((6.5e13 / 1e8) ** 0.077 + (2.1e3 / 1e4) ** 0.76)
    for entry in c["laws"].values():
        assert entry["source"].startswith("Kaplan et al. 2020")


def test_fit_recovers_nd_constants_from_noise_free_points():
    law, theta = kaplan_laws.published("kaplan2020_nd")
    N, D = np.meshgrid(np.geomspace(1e6, 1e9, 6), np.geomspace(1e8, 1e11, 6))
    Xg = np.column_stack([N.ravel(), D.ravel()])
    res = fit(law, Xg, law.predict(theta, Xg), objective="mse")
    np.testing.assert_allclose(res.theta, theta, rtol=1e-4)


# --------------------------------------------------------------- Porian tidy tables
@pytest.fixture(scope="module")
def raw():
    from scalerepro.io import data

    return data_or_skip(data.load_pickle_frame, "porian2024_discrepancies", "summary_df.pickle.xz")


def test_tidy_points_and_optima(raw):
    pts = porian.isoflop_points(raw, "summary_df")
    assert list(pts.columns[:6]) == list(porian.CONFIG_COLUMNS)
    assert {"flops", "n", "tokens", "loss", "step", "config"} <= set(pts.columns)
    assert pts.config.nunique() == 5 and pts.groupby(["config", "flops"]).size().min() >= 3
    assert (pts.loss.between(2, 11)).all() and (pts.n > 3e5).all()
    kaplan = pts[pts.step == "kaplan_setup"]
    np.testing.assert_allclose(kaplan.flops, 6 * kaplan.n * kaplan.tokens, rtol=1e-9)   # C = 6 N D
    opt = porian.published_optima(raw)
    assert opt.groupby("config").size().min() >= 11 and opt.n_star_std.dropna().gt(0).all()
    fits = porian.published_fits(raw)
    assert fits.set_index("step").a["kaplan_setup"] == pytest.approx(0.8353, abs=5e-5)


def test_malformed_frame_is_refused_naming_the_column():
    with pytest.raises(porian.PorianFormatError, match=r"bad\.pkl: missing column\(s\) \['optimal_pairs'"):
        porian.isoflop_points(pd.DataFrame(columns=["dataset", "hparams", "warmup", "decay",
                                                    "param_count", "val", "data", "fit_results"]), "bad.pkl")

"""Parameter and FLOP accounting, checked against Porian et al.'s model table (their
'kaplan' and 'standard' parameter counts for the same models) and Pearce & Song."""

import numpy as np
import pytest

from scalerepro.analyses import accounting as acc

CHINCHILLA_EPOCH = dict(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
# Porian et al.'s two smallest models: (non-embedding N, N with the last layer), and
# their attention-counted effective size, with the shapes (n_layer, d_model, d_ff) that
# these differences imply; vocabulary 50432, context 2048.
PORIAN = [(331776.0, 5173248.0, 5763072.0, 3, 96, 384), (1048576.0, 7503872.0, 8552448.0, 4, 128, 768)]


def test_kaplan_non_embedding_formula():
    assert acc.non_embedding_params(3, 96, d_attn=96, d_ff=384) == 12 * 3 * 96 ** 2 == PORIAN[0][0]


@pytest.mark.parametrize("ne, standard, attention, n_layer, d, d_ff", PORIAN)
def test_porian_counting_conventions_are_reproduced(ne, standard, attention, n_layer, d, d_ff):
    assert acc.non_embedding_params(n_layer, d, d_attn=d, d_ff=d_ff) == ne
    assert acc.total_params(ne, d_model=d, vocab_size=50432, input_embedding=False, unembedding=True) == standard
    fpt = acc.flops_per_token(ne, last_layer=True, attention=True, d_model=d, vocab_size=50432,
                              n_layer=n_layer, n_ctx=2048)
    assert fpt == 6 * attention
    assert acc.flops_per_token(ne, last_layer=False, attention=False) == 6 * ne
    assert acc.training_flops(ne, 1e9, last_layer=True, attention=False, d_model=d, vocab_size=50432) == 6 * standard * 1e9


def test_conventions_must_be_given():
    with pytest.raises(TypeError):
        acc.flops_per_token(1e6)
    with pytest.raises(ValueError, match="d_model and vocab_size"):
        acc.flops_per_token(1e6, last_layer=True, attention=False)


def test_total_parameter_frontier_has_the_chinchilla_exponent():
    a = acc.local_exponent(1e3, 1e12, **CHINCHILLA_EPOCH, coefficient=0.0, exponent=1 / 3)
    assert a == pytest.approx(0.3658 / (0.3478 + 0.3658), abs=1e-9)


def test_frontier_is_a_minimum_of_the_loss_at_fixed_kaplan_compute():
    f = acc.compute_optimal_frontier(np.array([1e6]), **CHINCHILLA_EPOCH, coefficient=47491, exponent=1 / 3)
    n = 1e6 * np.geomspace(0.5, 2, 401)
    d = f["C_ne"][0] / (6 * n)
    nt = acc.total_from_non_embedding(n, coefficient=47491, exponent=1 / 3)
    loss = 1.82 + 482.01 * nt ** -0.3478 + 2085.43 * d ** -0.3658
    assert n[np.argmin(loss)] == pytest.approx(1e6, rel=0.01)
    assert loss.min() == pytest.approx(f["loss"][0], abs=1e-9)


def test_pearce_song_local_exponent_is_kaplan_like_small_and_chinchilla_like_large():
    small = acc.local_exponent(768, 1.5e9, **CHINCHILLA_EPOCH, coefficient=47491, exponent=1 / 3)
    large = acc.local_exponent(1e11, 1e14, **CHINCHILLA_EPOCH, coefficient=47491, exponent=1 / 3)
    # Pearce & Song 2024, Section 3: 0.78 over Kaplan's range; 0.02 is the replication spec's
    # tolerance for this claim (replications/kaplan2020.yaml, pearce2024.local_exponent)
    assert small == pytest.approx(0.78, abs=0.02)
    # At 1e11-1e14 the embedding term 47491 N^(1/3) is 0.2% of N or less, so the exponent
    # is nearly the total-parameter one, beta / (alpha + beta) = 0.3658 / 0.7136 = 0.51261
    # (closed form, Besiroglu et al.'s coefficients); that 0.2% share moves it by ~2e-4.
    assert large == pytest.approx(0.3658 / (0.3478 + 0.3658), abs=0.002)

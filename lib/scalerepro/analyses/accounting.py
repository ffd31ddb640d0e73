"""Parameter and FLOP accounting conventions, as explicit arguments.

Kaplan et al. 2020 count N as non-embedding parameters (about 12 n_layer d_model^2) and
compute as C = 6 N D with that N; Hoffmann et al. 2022 count all parameters. Porian et
al. 2024 show that counting the unembedding (last) layer's FLOPs alone moves the
compute-optimal exponent from about 0.84 to 0.71, and Pearce & Song 2024 that
re-expressing a Chinchilla loss surface in non-embedding parameters at small scale gives
a local exponent near Kaplan's. Because the convention *is* the result, every function
here takes it as a required keyword argument: there is no default to forget about.
"""

from __future__ import annotations

import numpy as np

# Pearce & Song 2024, eq. 6 (fit to Chinchilla's model table, 32k vocabulary):
# N_total = N_non_embedding + 47491 * N_non_embedding^(1/3).
PEARCE_SONG_EMBEDDING = {"coefficient": 47491.0, "exponent": 1.0 / 3.0,
                         "source": "Pearce & Song 2024 (TMLR), eq. 6"}


def non_embedding_params(n_layer, d_model, *, d_attn, d_ff):
    """Kaplan et al.'s N = 2 d_model n_layer (2 d_attn + d_ff): attention and MLP
    weight matrices, no biases, layer norms or embeddings. With d_attn = d_model and
    d_ff = 4 d_model this is 12 n_layer d_model^2."""
    n_layer, d_model, d_attn, d_ff = (np.asarray(v, dtype=float) for v in (n_layer, d_model, d_attn, d_ff))
    return 2.0 * d_model * n_layer * (2.0 * d_attn + d_ff)


def total_params(non_embedding, *, d_model, vocab_size, input_embedding: bool, unembedding: bool,
                 positional: float = 0.0):
    """Parameters under an explicit convention: the non-embedding count plus
    ``vocab_size * d_model`` for the input embedding and/or for an untied unembedding
    (last) layer, plus ``positional`` learned position parameters (n_ctx * d_model, or 0
    for rotary). Porian et al.'s "standard" count is ``input_embedding=False,
    unembedding=True``."""
    n = np.asarray(non_embedding, dtype=float)
    emb = np.asarray(vocab_size, dtype=float) * np.asarray(d_model, dtype=float)
    return n + emb * (int(bool(input_embedding)) + int(bool(unembedding))) + positional


def flops_per_token(non_embedding, *, last_layer: bool, attention: bool, d_model=None,
                    vocab_size=None, n_layer=None, n_ctx=None):
    """Training FLOPs per token, 3 x (forward): 6 N for the non-embedding weights, plus
    6 d_model vocab_size when ``last_layer`` (the unembedding matmul), plus
    6 n_layer n_ctx d_model when ``attention`` (Kaplan et al. Table 1's attention term,
    with d_attn = d_model). Kaplan's C = 6 N D is ``last_layer=False, attention=False``."""
    n = np.asarray(non_embedding, dtype=float)
    fpt = 6.0 * n
    if last_layer:
        if d_model is None or vocab_size is None:
            raise ValueError("last_layer=True needs d_model and vocab_size")
        fpt = fpt + 6.0 * np.asarray(d_model, float) * np.asarray(vocab_size, float)
    if attention:
        if d_model is None or n_layer is None or n_ctx is None:
            raise ValueError("attention=True needs d_model, n_layer and n_ctx")
        fpt = fpt + 6.0 * np.asarray(n_layer, float) * np.asarray(n_ctx, float) * np.asarray(d_model, float)
    return fpt


def training_flops(non_embedding, tokens, *, last_layer: bool, attention: bool, **shape):
    """C = flops_per_token(...) * D; ``last_layer=False, attention=False`` is 6 N D."""
    return flops_per_token(non_embedding, last_layer=last_layer, attention=attention, **shape) * np.asarray(tokens, float)


def total_from_non_embedding(non_embedding, *, coefficient: float, exponent: float):
    """N_total = N_ne + coefficient * N_ne^exponent (Pearce & Song's embedding model)."""
    n = np.asarray(non_embedding, dtype=float)
    return n + coefficient * n ** exponent


def compute_optimal_frontier(non_embedding, *, E, A, B, alpha, beta, coefficient: float,
                             exponent: float) -> dict:
    """The compute-optimal frontier of L = E + A N_total^-alpha + B D^-beta when compute
    is counted Kaplan's way, C_ne = 6 N_ne D, and N_total = N_ne + c N_ne^k.

    For each N_ne this returns the budget C_ne at which N_ne is optimal, from the
    first-order condition beta B D^-beta = alpha A N_ne N_total' N_total^-(alpha+1)
    (exact, so no grid search is involved). ``coefficient=0`` gives the total-parameter
    frontier, whose exponent is beta / (alpha + beta) everywhere."""
    n = np.asarray(non_embedding, dtype=float)
    nt = total_from_non_embedding(n, coefficient=coefficient, exponent=exponent)
    dnt = 1.0 + coefficient * exponent * n ** (exponent - 1.0)
    D = (beta * B / (alpha * A * n * dnt * nt ** (-alpha - 1.0))) ** (1.0 / beta)
    return {"N_ne": n, "N_total": nt, "D": D, "C_ne": 6.0 * n * D, "C_total": 6.0 * nt * D,
            "loss": E + A * nt ** -alpha + B * D ** -beta}


def local_exponent(n_min: float, n_max: float, *, E, A, B, alpha, beta, coefficient: float,
                   exponent: float, n_budgets: int = 100) -> float:
    """Slope of log N*_ne on log C_ne fitted (OLS) over ``n_budgets`` log-uniform budgets
    whose optimum lies between ``n_min`` and ``n_max`` non-embedding parameters: what a
    study over that range, counting Kaplan's way, would report (Pearce & Song 2024,
    Section 3)."""
    fine = np.geomspace(n_min, n_max, 4096)
    logc = np.log(compute_optimal_frontier(fine, E=E, A=A, B=B, alpha=alpha, beta=beta,
                                           coefficient=coefficient, exponent=exponent)["C_ne"])
    if np.any(np.diff(logc) <= 0):
        raise ValueError("the frontier is not monotone in N over this range")
    budgets = np.linspace(logc[0], logc[-1], n_budgets)
    logn = np.interp(budgets, logc, np.log(fine))
    return float(np.polyfit(budgets, logn, 1)[0])


# ---------------------------------------------------------------------------- Gemstones
# McLeish et al. 2025 (Gemstones): Gemma-style decoder, head size 128, two query heads per
# key/value head (floor), GLU MLP of hidden size 4 width (three matrices), two RMSNorms per
# block and one final, untied output layer, vocabulary 50304, context 2048. Their
# approach 1 and approach 3 count differently (see analyses/gemstones.py), so both
# conventions are arguments here, with no default.
GEMSTONES_VOCAB = 50304
GEMSTONES_CONTEXT = 2048
GEMSTONES_HEAD = 128
#: What ``vocab_matrices`` to pass for each of the authors' counts.
GEMSTONES_COUNTS = {"total": 2, "approach 3 no embeddings (N - Vw)": 1, "approach 1 no embeddings (N - 2Vw)": 0}


def gemstone_params(width, depth, *, vocab_matrices: int, vocab_size: int = GEMSTONES_VOCAB,
                    head_size: int = GEMSTONES_HEAD):
    """Parameters of a Gemstone model as the authors count them (``param_counter``):
    depth [w 128 (n_q + 2g) + w^2 + 12 w^2 + 2w] + w, plus ``vocab_matrices`` V w, with
    n_q = w / 128 query heads and g = floor(n_q / 2) key/value groups (the 384-wide models
    have g = 1). ``vocab_matrices=2`` is the file's ``params_active_precise`` (input
    embedding and untied output layer); their approach 3's "no embeddings" drops one
    (``1``), their approach 1's drops both (``0``)."""
    if vocab_matrices not in (0, 1, 2):
        raise ValueError(f"vocab_matrices must be 0, 1 or 2, got {vocab_matrices!r}")
    w = np.asarray(width, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    n_q = w // head_size
    groups = n_q // 2
    per_layer = w * head_size * (n_q + 2 * groups) + 13 * w * w + 2 * w
    return depth * per_layer + w + vocab_matrices * vocab_size * w


def gemstone_flops_per_token(width, depth, *, convention: str, seq_len: int = GEMSTONES_CONTEXT,
                             vocab_size: int = GEMSTONES_VOCAB, head_size: int = GEMSTONES_HEAD):
    """Training FLOPs per token of a Gemstone model, forward plus backward.

    ``convention="detailed"``: the authors' count for approach 1,
    F = depth [90 w^2 + (183.75 + 3.5 s (3 + 3/head)) w] + 21 w + 6 V w, which at s = 2048 is
    depth (90 w^2 + 21855.75 w) + 21 w + 6 V w: the weight matmuls (6 per weight, as 6N), the
    causal attention scores at s = ``seq_len`` (query-key products at half cost, a
    flash-attention backward at 2.5x), RoPE, GLU elementwise ops and norms, the output layer
    at 6 V w and nothing for the embedding lookup.
    ``convention="6N"``: 6 x the total parameter count (both vocabulary matrices), the C = 6ND
    that approach 3's closed-form allocation assumes. F / 6N runs from 0.71 (768x3) to 1.59
    (256x80) over the 22 shapes."""
    if convention == "6N":
        return 6.0 * gemstone_params(width, depth, vocab_matrices=2, vocab_size=vocab_size,
                                     head_size=head_size).astype(float)
    if convention != "detailed":
        raise ValueError(f"convention must be 'detailed' or '6N', got {convention!r}")
    w = np.asarray(width, dtype=float)
    depth = np.asarray(depth, dtype=float)
    per_layer_linear = 183.75 + 3.5 * seq_len * (3.0 + 3.0 / head_size)
    return depth * (90.0 * w * w + per_layer_linear * w) + 21.0 * w + 6.0 * vocab_size * w


def gemstone_training_flops(width, depth, tokens, *, convention: str, **shape):
    """C = :func:`gemstone_flops_per_token` x D."""
    return gemstone_flops_per_token(width, depth, convention=convention, **shape) * np.asarray(tokens, float)

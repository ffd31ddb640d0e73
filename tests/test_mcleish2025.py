"""Gemstones (McLeish et al. 2025): loader, parameter and FLOP counts, and approach 1 by
lower convex hull against the authors' committed fits (reference:
shared/reference/mcleish2025.md)."""

import numpy as np
import pandas as pd
import pytest

from conftest import data_or_skip
from scalerepro.analyses import accounting, gemstones
from scalerepro.analyses import approaches as ap
from scalerepro.io import mcleish2025

V = 50304
S = 2048


def hot(subset="hot"):
    return data_or_skip(mcleish2025.checkpoints, subset)


# ------------------------------------------------------------------ loader
def test_loader_reads_the_hot_tables_tidy_with_provenance():
    df = hot("hot_477")
    assert len(df) == 1100 and df["run"].nunique() == 22
    assert (df.groupby("run").size() == 50).all()
    assert list(df.columns[:7]) == ["run", "width", "depth", "N", "D", "step", "loss"]
    assert (df["D"] == df["step"] * mcleish2025.TOKENS_PER_STEP).all()
    assert df["N"].min() == 48_377_600 and df["N"].max() == 2_007_837_696
    assert df.attrs["dataset"] == "mcleish2025_gemstones" and len(df.attrs["sha256"]) == 64
    assert df.attrs["file"] == "wandb_dfs/wandb_df_for_fitting_hot_477.jsonl"
    ten = hot("hot")
    assert len(ten) == 220 and sorted(ten["step"].unique()) == [2385 * k for k in range(1, 11)]


def test_loader_strips_the_cooler_prefix_of_the_lr_ablation():
    df = hot("lr_ablation_hot")
    assert len(df) == 200 and df["run"].nunique() == 20
    assert not df["run"].str.contains("cooler").any()
    assert {"512x11", "512x14"}.isdisjoint(df["run"])


def test_loader_refuses_unknown_subsets_and_bad_rows(tmp_path, monkeypatch):
    with pytest.raises(mcleish2025.GemstonesFormatError, match="unknown Gemstones subset"):
        mcleish2025.checkpoints("slim_chinchilla")
    good = data_or_skip(mcleish2025.data.fetch, mcleish2025.DATASET, mcleish2025.table_file("hot"))
    lines = good.read_text().splitlines()
    lines[4] = lines[4].replace('"final_loss":', '"final_loss":-')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(mcleish2025.data, "fetch", lambda name, file: bad)
    with pytest.raises(mcleish2025.GemstonesFormatError, match=r"line 5, column loss"):
        mcleish2025.checkpoints("hot")


def test_committed_fits_load_with_their_published_values():
    a1 = data_or_skip(mcleish2025.approach1_fit, "params")
    assert a1["slope"] == pytest.approx(0.499380, abs=1e-6)
    a3 = mcleish2025.approach3_fit("hot", "1e-3")
    assert a3["objective"] == 0.0019816129 and a3["success"]
    assert (a3["alpha"], a3["beta"]) == pytest.approx((0.2928687, 0.7128722), abs=1e-7)
    assert mcleish2025.approach3_fit("hot", "1e-4")["beta"] == pytest.approx(0.6928331, abs=1e-7)
    with pytest.raises(mcleish2025.GemstonesFormatError, match="delta"):
        mcleish2025.approach3_fit("hot", "1e-5")


# ------------------------------------------------------------------ counts
def test_parameter_count_matches_the_file_for_all_22_shapes():
    shapes = hot("hot_477").groupby("run")[["width", "depth", "N"]].first()
    assert len(shapes) == 22 and (shapes["width"] == 384).sum() == 2
    total = accounting.gemstone_params(shapes["width"], shapes["depth"], vocab_matrices=2)
    np.testing.assert_array_equal(total, shapes["N"].to_numpy())
    one = accounting.gemstone_params(shapes["width"], shapes["depth"], vocab_matrices=1)
    none = accounting.gemstone_params(shapes["width"], shapes["depth"], vocab_matrices=0)
    np.testing.assert_array_equal(shapes["N"] - one, V * shapes["width"])
    np.testing.assert_array_equal(shapes["N"] - none, 2 * V * shapes["width"])
    # widths that are multiples of 256 have depth (15 w^2 + 2w) + 2 V w + w
    even = shapes[shapes["width"] % 256 == 0]
    w, d = even["width"], even["depth"]
    np.testing.assert_array_equal(even["N"], d * (15 * w * w + 2 * w) + 2 * V * w + w)
    # the FLOP helpers against the file's N: 6N exactly, for all 22 shapes; the detailed count
    # differs from 6N by the attention-score term and the vocabulary matrices, for the 20
    # shapes whose key/value heads number n_q/2 (the 384-wide models' floor(3/2) = 1 group is
    # not in the authors' FLOP count, whose projections cost 4w^2 for every width)
    six_n = accounting.gemstone_flops_per_token(shapes["width"], shapes["depth"], convention="6N")
    np.testing.assert_array_equal(six_n, 6.0 * shapes["N"].to_numpy())
    detailed = accounting.gemstone_flops_per_token(w, d, convention="detailed")
    np.testing.assert_array_equal(detailed, 6.0 * even["N"] + d * 21843.75 * w - 6 * V * w + 15 * w)


def term_by_term_flops(w, depth, s=S, head=128, vocab=V):
    """The authors' per-token count, forward + backward, transcribed term by term from the
    reference note (not simplified): per layer forward = projections 4w^2, output 2w^2, MLP
    24w^2 + 42w, norms 14w, RoPE 5.25w, attention scores s w (1 [QK^T, halved for the causal
    mask] + 2 [weights x V] + 3/head [softmax]); backward = 2 (projections + RoPE) + 2.5 (score
    terms) + 2 output + 2 (MLP + norms); head: forward 7w + 2 V w, backward twice that."""
    projections, output, mlp, norms, rope = 4 * w * w, 2 * w * w, 24 * w * w + 42 * w, 14 * w, 5.25 * w
    scores = s * w * 1 + s * w * 2 + s * w * 3 / head
    forward = projections + output + mlp + norms + rope + scores
    backward = 2 * (projections + rope) + 2.5 * scores + 2 * output + 2 * (mlp + norms)
    head_forward = 7 * w + 2 * vocab * w
    return depth * (forward + backward) + head_forward + 2 * head_forward


@pytest.mark.parametrize("width, depth", [(1024, 28), (384, 13)])
def test_detailed_flops_match_a_term_by_term_count(width, depth):
    closed = accounting.gemstone_flops_per_token(width, depth, convention="detailed")
    assert closed == term_by_term_flops(width, depth)          # exact in float64 at these sizes
    assert closed == depth * (90 * width ** 2 + 21855.75 * width) + 21 * width + 6 * V * width
    six_n = accounting.gemstone_flops_per_token(width, depth, convention="6N")
    assert six_n == 6 * accounting.gemstone_params(width, depth, vocab_matrices=2)


def test_detailed_over_6n_spans_the_published_range():
    shapes = hot("hot").groupby("run")[["width", "depth"]].first()
    ratio = pd.Series(accounting.gemstone_flops_per_token(shapes["width"], shapes["depth"], convention="detailed")
                      / accounting.gemstone_flops_per_token(shapes["width"], shapes["depth"], convention="6N"),
                      index=shapes.index)
    assert ratio.min() == pytest.approx(0.709, abs=5e-4) and ratio.idxmin() == "768x3"
    assert ratio.max() == pytest.approx(1.591, abs=5e-4) and ratio.idxmax() == "256x80"


# ------------------------------------------------------------------ approach 1
def approach1_table(subset="hot_477", params="total", flops="detailed"):
    frame = data_or_skip(lambda: gemstones.table(subset, params=params, flops=flops))
    return frame[["run", "N", "D", "C", "loss"]]


@pytest.mark.parametrize("params, suffix", [("total", ""), ("minus_both_vocab", "_no_embeds")])
def test_lower_hull_reproduces_the_committed_approach1_fits(params, suffix):
    """The authors' hull on hot_477 with their detailed FLOPs: the committed slopes and
    intercepts of N and D (natural logs) to the printed digits, from 21 hull points."""
    r = ap.approach1(approach1_table(params=params), envelope="lower_hull", n_resamples=0)
    n_fit, d_fit = mcleish2025.approach1_fit("params", suffix), mcleish2025.approach1_fit("tokens", suffix)
    assert r.a == pytest.approx(n_fit["slope"], abs=1e-9)
    assert r.log_kn == pytest.approx(n_fit["intercept"], abs=1e-8)
    assert r.b == pytest.approx(d_fit["slope"], abs=1e-9)
    assert r.log_kd == pytest.approx(d_fit["intercept"], abs=1e-8)
    assert len(r.points) == 21 and r.points["run"].nunique() == 9
    assert r.points["run"].value_counts()[["1536x50", "1280x36"]].tolist() == [6, 5]


@pytest.mark.parametrize("subset, suffix", [("hot_100b+_477", "_100b+"), ("lr_ablation_hot_477", "_lr_ablation"),
                                            ("cool_end", "_cooldown")])
def test_lower_hull_reproduces_the_other_committed_subsets(subset, suffix):
    r = ap.approach1(approach1_table(subset), envelope="lower_hull", n_resamples=0)
    assert r.a == pytest.approx(mcleish2025.approach1_fit("params", suffix)["slope"], abs=1e-9)


def test_envelope_and_counting_move_the_exponent_as_the_reference_says():
    """Reference table (Hoffmann-style grid of 1500 values, every winner kept): 0.5509 (F, N),
    0.6757 (F, N - 2Vw), 0.5633 (6ND); hull with 6ND: 0.538401. The toolkit's grid leaves
    winners at the edge of the sizes available out, which steepens it further (0.580)."""
    total = approach1_table()
    grid_all = ap.approach1(total, envelope="grid", drop_edges=False, n_resamples=0)
    assert grid_all.a == pytest.approx(0.5509, abs=5e-5)
    assert grid_all.b == pytest.approx(0.4411, abs=5e-5)
    no_emb = ap.approach1(approach1_table(params="minus_both_vocab"), envelope="grid", drop_edges=False,
                          n_resamples=0)
    assert no_emb.a == pytest.approx(0.6757, abs=5e-5)
    six = approach1_table(flops="6ND")
    assert ap.approach1(six, envelope="lower_hull", n_resamples=0).a == pytest.approx(0.538401, abs=1e-6)
    assert ap.approach1(six, envelope="grid", drop_edges=False, n_resamples=0).a == pytest.approx(0.5633, abs=5e-5)
    toolkit = ap.approach1(total, envelope="grid", n_resamples=0)
    assert toolkit.a > grid_all.a and "optimum_at_edge" in {d.code for d in toolkit.diagnostics}


# ------------------------------------------------------------------ scalerepro fit --approach 1
@pytest.fixture(scope="module")
def checkpoint_csv(tmp_path_factory):
    """hot_477 as a user's checkpoint CSV: run, N (total), C (the authors' detailed FLOPs),
    loss -- no D column, so D = C / 6N is derived (only the N slope is compared)."""
    path = tmp_path_factory.mktemp("gemstones") / "hot_477.csv"
    frame = data_or_skip(lambda: gemstones.table("hot_477", params="total", flops="detailed"))
    frame[["run", "N", "C", "loss"]].to_csv(path, index=False, float_format="%.17g")
    return path, frame


@pytest.mark.parametrize("envelope", ["lower_hull", "grid"])
def test_cli_fit_approach1_envelope_on_the_gemstone_checkpoints(checkpoint_csv, envelope, tmp_path, capsys):
    from scalerepro import cli

    path, frame = checkpoint_csv
    code = cli.main(["fit", str(path), "--approach", "1", "--envelope", envelope, "--n-bootstrap", "0",
                     "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    import json
    (record,) = json.loads((tmp_path / "results.json").read_text())["approaches"]
    assert record["envelope"] == envelope
    if envelope == "lower_hull":
        # the published slope (committed file) to its printed digits, from the CLI
        assert record["a"] == pytest.approx(0.499380, abs=1e-6)
        assert record["points_used"] == 21 and "1 lower convex hull  0.4994" in out
    else:
        # the toolkit's grid: Hoffmann's 1500-value grid with edge winners left out, as the
        # library computes it; steeper than the reference's every-winner grid (0.5509)
        library = ap.approach1(frame[["run", "N", "C", "loss"]], envelope="grid", n_resamples=0)
        assert record["a"] == pytest.approx(library.a, abs=1e-12) and record["a"] > 0.5509 + 0.02
        assert "optimum_at_edge" in {d["code"] for d in record["diagnostics"]}


def test_cli_envelope_needs_approach_1(checkpoint_csv, tmp_path, capsys):
    from scalerepro import cli

    code = cli.main(["fit", str(checkpoint_csv[0]), "--approach", "2", "--envelope", "grid", "--out", str(tmp_path)])
    assert code != 0 and "--envelope chooses approach 1" in capsys.readouterr().err

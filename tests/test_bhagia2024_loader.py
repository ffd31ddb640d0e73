"""The OLMo ladder loader: N and D pinned to the reference note's table (the paper's -n/-d
arguments for the targets), MMLU's weighting, and the final-row averaging."""

import numpy as np
import pandas as pd
import pytest

from conftest import data_or_skip
from scalerepro.errors import InputError
from scalerepro.io import bhagia2024

# reference note, "Models": N used in the fits and realized D at the last checkpoint
N = {"190M": 190_354_176, "370M": 371_262_464, "760M": 758_220_288, "1.3B": 1_279_395_840,
     "7B-4T": 6_887_575_552, "13B-5T": 13_202_396_160}
D_LAST = {
    "190M": (3_812_622_336, 7_619_477_504, 19_041_091_584, 38_076_416_000),
    "370M": (7_433_355_264, 14_858_846_208, 37_134_532_608, 74_260_414_464),
    "760M": (15_178_137_600, 30_343_168_000, 75_835_637_760, 151_658_168_320),
    "1.3B": (25_604_653_056, 51_192_004_608, 127_955_632_128, 255_895_535_616),
}
ROWS = {"190M": (37, 73), "370M": (48, 95), "760M": (58, 116), "1.3B": (82, 163)}


@pytest.fixture(scope="module")
def ladder():
    return data_or_skip(bhagia2024.load_ladder)


def test_n_and_d_of_every_run_and_target(ladder):
    last = ladder.groupby("run", sort=False).tail(1).set_index("run")
    assert len(last) == 18 and last["target"].sum() == 2
    for size, ds in D_LAST.items():
        for mult, d in zip((1, 2, 5, 10), ds):
            row = last.loc[f"{size}-{mult}xC"]
            assert row["N"] == N[size] and row["D"] == d and not row["target"]
    assert last.loc["7B-4T", "N"] == N["7B-4T"] and last.loc["7B-4T", "D"] == 3_945_065_873_408
    # the 13B file has no token column: D = 596,057 steps x 8,388,608 tokens
    assert last.loc["13B-5T", "N"] == N["13B-5T"] and last.loc["13B-5T", "D"] == 5_000_088_518_656
    assert last.loc["13B-5T", "step"] == 596_057 and last.loc["7B-4T", "step"] == 940_577


def test_rows_per_run(ladder):
    counts = ladder.groupby("run").size()
    for size, (one, other) in ROWS.items():
        assert counts[f"{size}-1xC"] == one
        assert all(counts[f"{size}-{m}xC"] == other for m in (2, 5, 10))
    assert counts["7B-4T"] == 1 and counts["13B-5T"] == 12


def test_mmlu_is_the_weighted_subset_mean_and_13b_actuals_match_committed(ladder):
    final = bhagia2024.final_rows(ladder).set_index("run")
    # committed figures/step1_main.csv, column Actual (13B task bpb, mean of its last 5 rows)
    assert final.loc["13B-5T", "bpb_mmlu"] == pytest.approx(0.7488274373888968, rel=1e-12)
    assert final.loc["13B-5T", "bpb_hellaswag"] == pytest.approx(0.6609338879585266, rel=1e-12)
    assert final.loc["13B-5T", "bpb_openbookqa"] == pytest.approx(1.2631986379623412, rel=1e-12)
    # reference Figure 2 table, actual accuracies (13B: 5-row mean; 7B: its single row)
    assert 100 * final.loc["13B-5T", "acc_hellaswag"] == pytest.approx(83.19, abs=0.005)
    assert 100 * final.loc["7B-4T", "acc_mmlu"] == pytest.approx(49.01, abs=0.005)
    assert final["rows_averaged"].to_dict()["7B-4T"] == 1


def test_missing_columns_name_the_file():
    raw = pd.DataFrame({"_step": [1, 2], "batch_size_in_tokens": [4, 4]})
    with pytest.raises(InputError, match=r"(?s)x\.csv.*missing column"):
        bhagia2024._run_table(raw, "x.csv", "r", "s", 1, {"mode": "train", "n": 1, "flops": 1})


def test_no_token_count_is_an_error():
    raw = pd.DataFrame({"batch_size_in_tokens": [4.0]})
    with pytest.raises(InputError, match="no token count"):
        bhagia2024._steps_and_tokens(raw, "y.csv")
    raw = pd.DataFrame({"_step": [3.0], "batch_size_in_tokens": [4.0]})
    assert bhagia2024._steps_and_tokens(raw, "y.csv")[1][0] == 12.0

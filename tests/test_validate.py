"""Bad tables of runs: one clear InputError per table, unit slips as warnings."""

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalerepro.io.validate import RUN_COLUMNS, InputError, UnitWarning, read_runs_csv, validate_runs


def runs(n=6):
    """A clean table: N in parameters, D in tokens, loss in nats."""
    N = np.geomspace(1e7, 1e9, n)
    return pd.DataFrame({"N": N, "D": 20 * N, "loss": np.linspace(3.5, 2.5, n)})


def check(df, **kw):
    kw.setdefault("positive", ("N", "D", "loss"))
    kw.setdefault("unique", ("N", "D"))
    return validate_runs(df, RUN_COLUMNS, "runs.csv", **kw)


def problems(df, **kw):
    with pytest.raises(InputError) as info:
        check(df, **kw)
    assert str(info.value).startswith("runs.csv:")
    return info.value


def test_clean_table_passes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check(runs()) == []


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


def test_missing_column_suggests_close_names():
    err = problems(runs().rename(columns={"D": "d", "loss": "Loss "}))
    text = str(err)
    assert "missing column 'D'" in text and "did you mean 'd'" in text
    assert "missing column 'loss'" in text and "'Loss '" in text
    assert len(err.problems) == 2


def test_non_numeric_value_names_line_and_value():
    df = runs().astype({"N": object})
    df.loc[2, "N"] = "1.3B"
    err = problems(df)
    assert err.problems == ["column 'N': non-numeric values at line 4 ('1.3B')"]
    assert "header as line 1" in str(err)


def test_nan_inf_and_nonpositive_each_reported_with_lines():
    df = runs()
    df.loc[0, "loss"] = np.nan
    df.loc[1, "D"] = np.inf
    df.loc[3, "N"] = 0.0
    df.loc[4, "N"] = -5.0
    text = str(problems(df))
    assert "column 'loss': empty or NaN at line 2" in text
    assert "column 'D': infinite values at line 3" in text
    assert "column 'N': zero or negative values (must be > 0) at lines 5 (0), 6 (-5)" in text


def test_long_lists_of_lines_are_truncated():
    df = runs(30)
    df["loss"] = -1.0
    assert "and 22 more" in str(problems(df))


def test_empty_and_header_only_tables():
    assert "empty file" in str(problems(pd.DataFrame()))
    assert "header only" in str(problems(runs().iloc[:0]))


def test_semicolon_file_read_as_one_column_is_diagnosed():
    df = pd.DataFrame({"N;D;loss": ["1e9;2e10;2.5"]})
    text = str(problems(df))
    assert "semicolon-separated" in text and "sep=';'" in text


def test_duplicate_runs_are_listed_together():
    df = runs()
    df.loc[4, ["N", "D"]] = df.loc[1, ["N", "D"]]
    err = problems(df)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("duplicate runs: lines 3, 6 have the same N, D")


def test_distinct_run_ids_are_not_duplicates_but_equal_ones_are():
    df = runs().assign(run_id=list("abcdef"))
    df.loc[4, ["N", "D"]] = df.loc[1, ["N", "D"]]
    check(df, run_id="run_id")
    df.loc[4, "run_id"] = "b"
    assert "same N, D, run_id" in str(problems(df, run_id="run_id"))


def test_repeated_header_name_is_an_error():
    df = pd.DataFrame([[1e9, 2e10, 2.5, 3e9]], columns=["N", "D", "loss", "N"])
    assert "appears more than once" in str(problems(df))


def test_all_problems_come_in_one_error():
    df = runs()
    df.loc[0, "N"] = -1
    df.loc[1, "loss"] = np.inf
    df.loc[2, "D"] = np.nan
    assert len(problems(df).problems) == 3


@pytest.mark.parametrize(
    "change, roles, expected",
    [
        (lambda df: df.assign(D=df.D / 1e9), None, "is it in billions"),
        (lambda df: df.assign(N=df.N / 1e6), None, "is it in millions or billions"),
        (lambda df: df.assign(loss=np.exp(df.loss) * 3), None, "> 10 nats/token"),
        (lambda df: df.rename(columns={"loss": "loss_bits"}), {"loss": "loss_bits"}, "bits"),
        (lambda df: df.assign(C=6 * df.N * df.D / 8.64e19), None, "C / (6 N D)"),
    ],
)
def test_unit_slips_warn_and_are_returned(change, roles, expected):
    df = change(runs())
    required = {c: c for c in df.columns}
    with pytest.warns(UnitWarning, match=re.escape(expected)):
        issued = validate_runs(df, required, "runs.csv", roles=roles)
    assert len(issued) == 1 and expected in str(issued[0]) and "runs.csv" in str(issued[0])


def test_consistent_compute_column_does_not_warn():
    df = runs().assign(C=lambda d: 6 * d.N * d.D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate_runs(df, {c: c for c in df.columns}) == []


# --- reading user CSV files -------------------------------------------------------------


def write(tmp_path, text, name="runs.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_read_runs_csv_applies_mapping_and_returns_numbers(tmp_path):
    path = write(tmp_path, "params,tokens,val_loss,note\n1e8,2e9,3.1,a\n1e9,2e10,2.6,b\n")
    df = read_runs_csv(path, {"params": "N", "tokens": "D", "val_loss": "loss"})
    assert list(df.columns[:3]) == ["N", "D", "loss"] and df["N"].dtype == float
    assert df.attrs["file"] == str(path) and df.attrs["warnings"] == []


def test_read_runs_csv_messages_use_the_files_column_names(tmp_path):
    path = write(tmp_path, "params,tokns,val_loss\n1e8,2e9,3.1\n")
    with pytest.raises(InputError) as info:
        read_runs_csv(path, {"params": "N", "tokens": "D", "val_loss": "loss"})
    assert str(path) in str(info.value)
    assert "missing column 'tokens'" in str(info.value) and "did you mean 'tokns'" in str(info.value)


def test_read_runs_csv_suggests_a_mapping_for_unmapped_missing_columns(tmp_path):
    path = write(tmp_path, "params,tokens,loss\n1e8,2e9,3.1\n")
    with pytest.raises(InputError) as info:
        read_runs_csv(path, {"params": "N"})
    assert info.value.problems[-1].endswith("columns={'<column in file>': 'D'}")


def test_read_runs_csv_explicit_mapping_wins_over_a_column_of_that_name(tmp_path):
    # issue 28: the file's own 'N' (or 'loss') is kept under another name, not a refusal
    path = write(tmp_path, "N,params,D,loss,loss (file),val\n1,1e8,2e9,3.1,9,2.9\n")
    df = read_runs_csv(path, {"params": "N"})
    assert df.attrs["set_aside"] == {"N": "N (file)"}
    assert df["N"].tolist() == [1e8] and df["N (file)"].tolist() == [1]
    df = read_runs_csv(path, {"params": "N", "val": "loss"})
    assert df.attrs["set_aside"] == {"N": "N (file)", "loss": "loss (file 2)"}  # 'loss (file)' is taken
    assert df["loss"].tolist() == [2.9] and df["loss (file 2)"].tolist() == [3.1]
    # a column named like the target that is itself mapped elsewhere is no competitor
    df = read_runs_csv(path, {"params": "N", "N": "step"})
    assert df.attrs["set_aside"] == {} and df["step"].tolist() == [1]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "empty file"),
        ("N,D,loss\n", "header only"),
        ("N;D;loss\n1e9;2e10;2.5\n", "semicolon-separated"),
        ("N;D;loss\n1e9;2e10;2,5\n", "semicolon-separated"),  # decimal comma -> ragged rows
        ("N,D,loss\n1e9,2e10,2.5\n1e9,2e10,2.5,7,8\n", "cannot parse as CSV"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe\x80\x81", "not UTF-8"),
    ],
)
def test_read_runs_csv_bad_files(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(InputError, match=expected) as info:
        read_runs_csv(path)
    assert str(path) in str(info.value)


def test_read_runs_csv_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_runs_csv(tmp_path / "nope.csv")


# --- property: arbitrary corruption is always an InputError, never a crash ---------------

_cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12),
    st.text(max_size=4),
    st.none(),
    st.booleans(),
)


@st.composite
def corrupted_tables(draw):
    n = draw(st.integers(0, 6))
    names = draw(
        st.lists(st.sampled_from(["N", "D", "loss", "n", "run_id", "x", "N;D"]), min_size=0, max_size=5)
    )
    return pd.DataFrame({i: draw(st.lists(_cell, min_size=n, max_size=n)) for i in range(len(names))}).set_axis(
        names, axis=1
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_tables())
def test_random_tables_validate_or_raise_input_error(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitWarning)
        try:
            check(df, run_id="run_id")
        except InputError as err:
            assert err.problems and all(isinstance(p, str) for p in err.problems)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(alphabet="ND,loss;\n\t 0123456789.e-+naif\"", max_size=200))
def test_random_files_read_or_raise_input_error(tmp_path, content):
    path = write(tmp_path, content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitWarning)
        try:
            df = read_runs_csv(path)
        except InputError:
            return
    assert all(np.isfinite(df[c]).all() and (df[c] > 0).all() for c in RUN_COLUMNS)
    assert not math.isnan(df["loss"].sum())

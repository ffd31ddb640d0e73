"""The data registry and loader: lookup order, checksums, clear errors, real files."""

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pooch
import pytest
import requests

from conftest import IN_CI, ROOT, load_or_skip
from scalerepro.io import data
from scalerepro.io.validate import InputError

HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --- the registry itself ----------------------------------------------------------------


def test_repo_registry_is_the_packaged_registry():
    assert (ROOT / "data" / "registry.yaml").resolve() == data.REGISTRY_PATH.resolve()


def test_registry_lists_the_eight_datasets():
    assert set(data.datasets()) == {
        "besiroglu2024_chinchilla",
        "porian2024_discrepancies",
        "brandfonbrener2024_loss_to_loss",
        "eythor2024_chinchilla_isoflops",
        "gadre2024_overtraining",
        "muennighoff2023_datablations",
        "bhagia2024_olmo_ladder",
        "mcleish2025_gemstones",
    }


RAW_URL = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")


@pytest.mark.parametrize("name", data.datasets())
def test_registry_entries_are_complete_and_pinned(name):
    info = data.dataset_info(name)
    for key in ("citation", "license", "description", "repository", "commit"):
        assert info[key], key
    assert info["default_file"] in info["files"]
    owner_repo = info["repository"].removeprefix("https://github.com/")
    for file, entry in info["files"].items():
        assert RAW_URL.match(entry["url"]), entry["url"]
        if "manifest" not in info:  # a manifest may name files of another repository (a copy)
            assert entry["url"].startswith(f"https://raw.githubusercontent.com/{owner_repo}/{info['commit']}/")
            assert entry["url"].endswith("/" + file)
        assert HEX64.match(entry["sha256"]) and entry["size"] > 0
        assert entry["format"] in {"csv", "pickle.xz", "svg", "json", "jsonl", "ipynb", "text"}
        assert data.file_license(name, file).strip(), f"{name}/{file}: no license"
        if entry["format"] in {"csv", "pickle.xz"} and "manifest" not in info:
            assert entry["columns"], f"{file}: document the columns used"


def test_a_manifest_file_inherits_nothing_but_its_own_license():
    # Two Gemstones files carry rows derived from Epoch AI data with no license of their own.
    assert data.file_license("mcleish2025_gemstones", "LICENSE") == "MIT"
    derived = "wandb_dfs/wandb_df_for_fitting_lr_ablation_slim_chinchilla.jsonl"
    assert "no stated license" in data.file_license("mcleish2025_gemstones", derived)
    # A dataset without a manifest gives every file the dataset's license.
    assert data.file_license("porian2024_discrepancies", "summary_df.pickle.xz") == "MIT"


PROVENANCE_ROW = re.compile(
    r"^\| (\w+)/(\S+) \| (.+?) \| \S+ \| (\d+) \| ([0-9a-f]{64}) \| (.+?) \|\s*$", re.M)


def _provenance_tables() -> list[Path]:
    mirror = os.environ.get(data.MIRROR_ENV)
    folder = Path(mirror or "/nonexistent")
    tables = [folder / "PROVENANCE.md", *sorted(folder.glob("STAGED-*.md"))]
    if not tables[0].is_file():
        if IN_CI:
            pytest.fail(f"{tables[0]} missing in CI")
        pytest.skip("no mirror with PROVENANCE.md")
    return tables


def test_registry_agrees_with_the_mirror_provenance_tables():
    """Every row of PROVENANCE.md and of each STAGED-*.md is a registry file with the same
    size, sha256 and license, and the registry has no file those tables do not list."""
    listed = {}
    for table in _provenance_tables():
        rows = PROVENANCE_ROW.findall(table.read_text())
        assert rows, f"{table.name}: no rows read"
        for dataset, file, _repo, size, sha, license in rows:
            listed[(dataset, file)] = (sha, int(size), license.strip())
    registered = {(d, f) for d in data.datasets() for f in data.files(d)}
    assert registered == set(listed), (sorted(registered - set(listed))[:5], sorted(set(listed) - registered)[:5])
    for (dataset, file), (sha, size, license) in listed.items():
        entry = data.dataset_info(dataset)["files"][file]
        assert (entry["sha256"], entry["size"]) == (sha, size), f"{dataset}/{file}"
        if "manifest" in data.dataset_info(dataset):
            assert data.file_license(dataset, file) == license, f"{dataset}/{file}"


# --- the real data through load() --------------------------------------------------------


def test_chinchilla_has_n_c_d_loss_and_provenance():
    df = load_or_skip("besiroglu2024_chinchilla")
    assert len(df) == 245 and list(df.columns[:3]) == ["N", "C", "D"] and "loss" in df
    assert np.allclose(df["D"], df["Training FLOP"] / (6 * df["Model Size"]))
    assert (df["N"] == df["Model Size"]).all()
    assert df["N"].min() > 4e7 and df["N"].max() < 2e10 and df["loss"].between(1.9, 5.1).all()
    attrs = df.attrs
    assert attrs["dataset"] == "besiroglu2024_chinchilla" and attrs["file"] == "svg_extracted_data.csv"
    assert attrs["sha256"] == hashlib.sha256(Path(attrs["path"]).read_bytes()).hexdigest()
    assert "Besiroglu" in attrs["citation"] and attrs["license"] and attrs["warnings"] == []


def test_loss_to_loss_files():
    sweep = load_or_skip("brandfonbrener2024_loss_to_loss", "sweep.csv")
    assert sweep.shape == (529, 86) and sweep["data"].nunique() == 6
    assert np.allclose(6 * sweep["params"] * sweep["tokens"], sweep["iso_flop"])
    extra = load_or_skip("brandfonbrener2024_loss_to_loss", "extrapolation.csv")
    assert len(extra) == 6 and (extra["iso_flop"] == 1e21).all()
    params = load_or_skip("brandfonbrener2024_loss_to_loss", "opt_params_data.csv")
    assert len(params) == 276 and params["kaplan"].dtype == bool


def test_isoflop_slices_have_nine_budgets_and_consistent_tokens():
    df = load_or_skip("eythor2024_chinchilla_isoflops")
    assert len(df) == 114 and list(df.columns[:3]) == ["N", "C", "D"]
    assert sorted(df["C"].unique()) == [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]
    assert df.groupby("C").size().between(8, 22).all()
    # n_tokens is C / (6 N) in the published file: a unit check on the loader's columns
    assert np.allclose(6 * df["N"] * df["D"], df["C"], rtol=1e-6)
    assert "Hoffmann" in df.attrs["citation"] and df.attrs["warnings"] == []


def test_verify_reports_every_mirror_file_ok():
    if not os.environ.get(data.MIRROR_ENV):
        if IN_CI:
            pytest.fail("CI must set SCALEREPRO_DATA_DIR")
        pytest.skip("no mirror")
    rows = data.verify()
    assert len(rows) == sum(len(data.files(d)) for d in data.datasets())
    assert {r["status"] for r in rows} == {"ok"}, [r for r in rows if r["status"] != "ok"]
    assert all(r["sha256"] == r["expected_sha256"] and r["license"] for r in rows)


def test_a_manifest_csv_without_table_checks_is_refused_with_the_way_forward():
    load_or_skip("besiroglu2024_chinchilla")
    with pytest.raises(data.DataError, match="own loader"):
        data.load("bhagia2024_olmo_ladder", "src/scripts/paper/figures/step1_main.csv")


def test_svg_is_fetchable_but_not_a_table():
    load_or_skip("besiroglu2024_chinchilla")
    path = data.fetch("besiroglu2024_chinchilla", "chinchilla_figure_4.svg")
    assert path.read_bytes().lstrip().startswith(b"<")
    with pytest.raises(data.DataError, match="not a table"):
        data.load("besiroglu2024_chinchilla", "chinchilla_figure_4.svg")


# --- lookup order and errors, on a fake registry (no real data, no network) --------------

CONTENT = b"Model Size,Training FLOP,loss\n1e8,6e17,3.0\n1e9,6e19,2.5\n"


def fake_entry(content=CONTENT, file="runs.csv"):
    return {
        "url": f"https://example.invalid/{file}",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "format": "csv",
        "columns": {},
    }


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Registry with one dataset (named like the Chinchilla one so its loader checks apply)."""
    reg = {
        "datasets": {
            "besiroglu2024_chinchilla": {
                "citation": "fake",
                "license": "fake",
                "default_file": "svg_extracted_data.csv",
                "files": {"svg_extracted_data.csv": fake_entry()},
            }
        }
    }
    monkeypatch.setattr(data, "registry", lambda: reg)
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    return reg


def put(root, content=CONTENT):
    path = root / "besiroglu2024_chinchilla" / "svg_extracted_data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def offline(monkeypatch):
    def refuse(self, url, output_file, pooch_, check_only=False):
        raise requests.exceptions.ConnectionError("network is unreachable")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", refuse)


def serve(monkeypatch, content):
    calls = []

    def download(self, url, output_file, pooch_, check_only=False):
        calls.append(url)
        Path(output_file).write_bytes(content)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", download)
    return calls


def test_unknown_dataset_and_file_suggest(fake):
    with pytest.raises(data.UnknownDatasetError, match="did you mean 'besiroglu2024_chinchilla'"):
        data.fetch("besiroglu2024_chinchila")
    with pytest.raises(data.UnknownDatasetError, match="has no file 'x.csv'"):
        data.fetch("besiroglu2024_chinchilla", "x.csv")


def test_mirror_dir_that_does_not_exist_is_its_own_error(fake, monkeypatch, tmp_path):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "no-such-dir"))
    with pytest.raises(data.MirrorNotFoundError, match="no-such-dir.*not an existing directory"):
        data.fetch("besiroglu2024_chinchilla")


def test_mirror_is_used_first(fake, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    path = put(mirror)
    put(tmp_path / "cache")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    assert data.fetch("besiroglu2024_chinchilla") == path


def test_mirror_checksum_mismatch_names_file_and_hashes_and_keeps_it(fake, monkeypatch, tmp_path):
    bad = CONTENT.replace(b"2.5", b"2.6")
    path = put(tmp_path / "mirror", bad)
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("besiroglu2024_chinchilla")
    text = str(info.value)
    assert str(path) in text and hashlib.sha256(bad).hexdigest() in text
    assert hashlib.sha256(CONTENT).hexdigest() in text and "replace it with https://" in text
    assert path.exists()  # someone else's mirror: report, do not delete


def test_mirror_without_the_file_falls_back_to_cache(fake, monkeypatch, tmp_path):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "mirror"))
    cached = put(tmp_path / "cache")
    assert data.fetch("besiroglu2024_chinchilla") == cached


def test_corrupt_cache_copy_is_deleted_and_reported(fake, monkeypatch, tmp_path):
    cached = put(tmp_path / "cache", b"truncated")
    calls = serve(monkeypatch, CONTENT)
    with pytest.raises(data.ChecksumError, match="was deleted. Run again"):
        data.fetch("besiroglu2024_chinchilla")
    assert not cached.exists() and calls == []  # no silent retry
    assert data.fetch("besiroglu2024_chinchilla") == cached and calls  # the next run downloads


def test_download_goes_to_cache_once(fake, monkeypatch, tmp_path):
    calls = serve(monkeypatch, CONTENT)
    path = data.fetch("besiroglu2024_chinchilla")
    assert path == tmp_path / "cache" / "besiroglu2024_chinchilla" / "svg_extracted_data.csv"
    assert path.read_bytes() == CONTENT and len(calls) == 1
    offline(monkeypatch)
    assert data.fetch("besiroglu2024_chinchilla") == path


def test_download_with_wrong_bytes_is_a_checksum_error_and_leaves_nothing(fake, monkeypatch, tmp_path):
    serve(monkeypatch, b"<html>rate limited</html>")
    with pytest.raises(data.ChecksumError, match="does not have the registry's sha256"):
        data.fetch("besiroglu2024_chinchilla")
    folder = tmp_path / "cache" / "besiroglu2024_chinchilla"
    assert not folder.exists() or not any(folder.iterdir())


def test_no_network_gives_one_clear_error(fake, monkeypatch, tmp_path):
    offline(monkeypatch)
    with pytest.raises(data.DataUnavailableError) as info:
        data.fetch("besiroglu2024_chinchilla")
    text = str(info.value)
    assert "besiroglu2024_chinchilla/svg_extracted_data.csv" in text
    assert "SCALEREPRO_DATA_DIR: not set" in text
    assert str(tmp_path / "cache" / "besiroglu2024_chinchilla") in text
    assert "https://example.invalid/runs.csv" in text and "network is unreachable" in text
    assert "set SCALEREPRO_DATA_DIR" in text and "download https://example.invalid/runs.csv into" in text


def test_list_status_and_verify_report_without_side_effects(fake, monkeypatch, tmp_path):
    offline(monkeypatch)
    [row] = data.list_status()
    assert row["status"] == "missing" and row["path"] is None
    [row] = data.verify()
    assert row["status"] == "missing" and row["sha256"] is None

    cached = put(tmp_path / "cache", b"corrupt")
    assert data.list_status()[0]["status"] == "cache"
    [row] = data.verify("besiroglu2024_chinchilla")
    assert row["status"] == "checksum_mismatch" and row["location"] == "cache"
    assert row["sha256"] == hashlib.sha256(b"corrupt").hexdigest() and cached.exists()

    put(tmp_path / "cache")
    assert data.verify()[0]["status"] == "ok"


def test_loader_validates_and_derives_tokens(fake, tmp_path):
    put(tmp_path / "cache")
    df = data.load("besiroglu2024_chinchilla")
    assert np.allclose(df["D"], [1e9, 1e10])
    assert df.attrs["sha256"] == hashlib.sha256(CONTENT).hexdigest()


def test_loader_rejects_a_registered_file_with_bad_rows(fake, tmp_path):
    bad = b"Model Size,Training FLOP,loss\n1e8,6e17,3.0\n-1e9,6e19,nan\n"
    fake["datasets"]["besiroglu2024_chinchilla"]["files"]["svg_extracted_data.csv"] = fake_entry(bad)
    path = put(tmp_path / "cache", bad)
    with pytest.raises(InputError) as info:
        data.load("besiroglu2024_chinchilla")
    text = str(info.value)
    assert str(path) in text and "'Model Size': zero or negative" in text and "line 3" in text
    assert "'loss': empty or NaN at line 3" in text


def test_pickle_loader_refuses_non_pickle_files(fake):
    with pytest.raises(data.DataError, match="not a pickled DataFrame"):
        data.load_pickle_frame("besiroglu2024_chinchilla")

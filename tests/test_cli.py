"""The command line: one-line errors (exit 2) before anything runs, --all past failures, data."""

import json

import pytest

from scalerepro import cli

pytestmark = pytest.mark.usefixtures("fixture_specs")


def test_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "profiles", "claims", "title"]
    assert out[1].split()[:3] == ["tiny", "ci,full", "4"]


@pytest.mark.parametrize("argv, message", [
    (["run", "tiny", "nope"], "unknown replication 'nope'; valid: tiny, tiny_broken"),
    (["run", "tiny", "--profile", "huge"], "tiny: unknown profile 'huge'; valid: ci, full"),
    (["run", "tiny", "-p", "n_boot=3"], "tiny: unknown parameter 'n_boot'; valid:"),
    (["run", "tiny", "-p", "n_bootstrap=-1"], "'n_bootstrap' = -1 violates min 0"),
    (["run", "tiny", "-p", "scale=0"], "'scale' = 0.0 violates exclusive_min 0"),
    (["run", "tiny", "-p", "n_bootstrap=lots"], "'n_bootstrap' must be int, got 'lots'"),
    (["run", "tiny", "-p", "novalue"], "-p expects key=value, got 'novalue'"),
    (["run"], "give replication names or --all"),
    (["run", "tiny", "--all"], "give replication names or --all"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalerepro: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # validated before any run started


def test_all_continues_past_a_failure(tmp_path, capsys):
    assert cli.main(["run", "--all", "--profile", "ci", "--out", str(tmp_path), "--no-progress"]) == 1
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[-3].split()[:2] == ["replication", "status"]
    assert table[-2].split()[:2] == ["tiny", "ok"] and table[-1].split()[:2] == ["tiny_broken", "failed"]
    assert "1 of 2 replication(s) failed: tiny_broken" in captured.err
    assert json.loads((tmp_path / "tiny" / "results.json").read_text())["status"] == "ok"
    assert json.loads((tmp_path / "tiny_broken" / "failed.json").read_text())["error"]["cell"] == 4

    assert cli.main(["report", "--out", str(tmp_path)]) == 1  # a replication is failing
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == ["tiny_broken"] and (tmp_path / "index.html").is_file()


def test_report_without_runs_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", "--out", str(tmp_path / "none")]) == 2
    assert "run `scalerepro run` first" in capsys.readouterr().err


@pytest.mark.parametrize("rows, code", [
    ([{"dataset": "d", "file": "a.csv", "status": "ok", "location": "mirror", "optional": False},
      {"dataset": "d", "file": "b.svg", "status": "missing", "location": None, "optional": True}], 0),
    ([{"dataset": "d", "file": "a.csv", "status": "checksum_mismatch", "location": "cache", "optional": False}], 1),
    ([{"dataset": "d", "file": "a.csv", "status": "missing", "location": None, "optional": False}], 1),
    ([{"dataset": "d", "file": "a.csv", "status": "no_license", "location": "mirror", "optional": False}], 1),
])
def test_data_verify_exit_code(monkeypatch, capsys, rows, code):
    from scalerepro.io import data

    monkeypatch.setattr(data, "verify", lambda name=None: rows)
    assert cli.main(["data", "verify"]) == code
    assert "a.csv" in capsys.readouterr().out


def test_data_unknown_dataset_is_exit_2(capsys):
    assert cli.main(["data", "list", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_interval_text_says_when_there_is_none():
    assert cli._interval_text([None, None]) == "none (see warnings)"
    assert cli._interval_text([0.0, 1.5]) == "[0, 1.5]"
    assert cli._interval_text(None) == ""

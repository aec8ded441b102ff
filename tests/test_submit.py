"""Tests of pipeline.submit: submissions match the sample submission exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.submit import build_submission, check_submission, write_submission

CLASSES = ["0", "1"]


@pytest.fixture
def sample():
    return pd.DataFrame({"id": [20800, 20801, 20802, 20803], "label": [0, 0, 0, 0]})


@pytest.fixture
def good(sample):
    return pd.DataFrame({"id": sample["id"].to_numpy(), "label": ["1", "0", "0", "1"]})


def rejects(frame, sample, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        check_submission(frame, sample, CLASSES, name="sub.csv")
    message = str(info.value)
    assert message.startswith("sub.csv:")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_accepts_valid_frame(good, sample):
    check_submission(good, sample, CLASSES)


def test_accepts_integer_labels_and_string_ids(sample):
    frame = pd.DataFrame({"id": ["20800", "20801", " 20802", "20803"], "label": [1, 0, 0, 1]})
    check_submission(frame, sample, CLASSES)


def test_rejects_wrong_ids(good, sample):
    good.loc[1, "id"] = 99
    rejects(good, sample, "ids differ", "1 missing", "'20801'", "1 unknown", "'99'")


def test_rejects_missing_ids(good, sample):
    rejects(good.iloc[:3], sample, "ids differ", "1 missing", "'20803'", "0 unknown")


def test_rejects_extra_ids(good, sample):
    extra = pd.concat([good, pd.DataFrame({"id": [1], "label": ["0"]})], ignore_index=True)
    rejects(extra, sample, "1 unknown", "'1'")


def test_rejects_extra_column(good, sample):
    good["proba"] = 0.5
    rejects(good, sample, "columns", "'proba'", "['id', 'label']")


def test_rejects_renamed_column(good, sample):
    rejects(good.rename(columns={"label": "target"}), sample, "columns", "'target'")


def test_rejects_swapped_columns(good, sample):
    rejects(good[["label", "id"]], sample, "columns")


@pytest.mark.parametrize("bad", ["0.5", "yes", "2", "", "1.0"])
def test_rejects_unknown_label(good, sample, bad):
    good.loc[2, "label"] = bad
    rejects(good, sample, "'label'", "['0', '1']", "row 4", repr(bad))


def test_rejects_float_labels(good, sample):
    good["label"] = [1.0, 0.0, 0.0, 1.0]
    rejects(good, sample, "'label'", "'1.0'")


def test_rejects_missing_label(good, sample):
    good["label"] = ["1", None, "0", "1"]
    rejects(good, sample, "'label'", "row 3")


def test_rejects_wrong_row_order(good, sample):
    shuffled = good.iloc[[0, 2, 1, 3]].reset_index(drop=True)
    rejects(shuffled, sample, "row 3", "'20802'", "'20801'", "sample submission's order")


def test_rejects_duplicate_ids(good, sample):
    duplicated = pd.concat([good, good.iloc[[2]]], ignore_index=True)
    rejects(duplicated, sample, "duplicate ids", "'20802'")


def test_rejects_duplicate_replacing_an_id(good, sample):
    good.loc[3, "id"] = 20800  # 20800 twice, 20803 missing
    rejects(good, sample, "'20803'")


def test_build_submission_orders_rows_like_sample(sample):
    test_ids = pd.Series(["20803", "20801", "20800", "20802"])
    predicted = np.array(["1", "0", "1", "0"])
    frame = build_submission(test_ids, predicted, sample)
    assert list(frame.columns) == ["id", "label"]
    assert list(frame["id"]) == [20800, 20801, 20802, 20803]
    assert list(frame["label"]) == ["1", "0", "0", "1"]
    check_submission(frame, sample, CLASSES)


def test_build_submission_uses_sample_column_names():
    sample = pd.DataFrame({"ID": ["b", "a"], "target": ["0", "0"]})
    frame = build_submission(pd.Series(["a", "b"]), np.array(["1", "0"]), sample)
    assert list(frame.columns) == ["ID", "target"]
    assert frame.to_dict("list") == {"ID": ["b", "a"], "target": ["0", "1"]}


def test_build_submission_matches_ids_after_strip(sample):
    frame = build_submission(
        pd.Series([" 20800", "20801 ", "20802", "20803"]), np.array(["1", "1", "0", "0"]), sample
    )
    assert list(frame["label"]) == ["1", "1", "0", "0"]


def test_build_submission_sample_id_not_in_test(sample):
    with pytest.raises(DataError, match=r"'20803' \(row 5\) is not in test.csv"):
        build_submission(pd.Series(["20800", "20801", "20802"]), np.array(["0", "1", "0"]), sample)


def test_write_submission_checks_then_writes(tmp_path, good, sample):
    path = tmp_path / "out" / "sub.csv"
    write_submission(path, good, sample, CLASSES)
    assert path.read_text() == "id,label\n20800,1\n20801,0\n20802,0\n20803,1\n"


def test_write_submission_writes_nothing_when_invalid(tmp_path, good, sample):
    path = tmp_path / "sub.csv"
    with pytest.raises(DataError, match=str(path)):
        write_submission(path, good.iloc[::-1], sample, CLASSES)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A committed project: code, params, dvc.lock and an output, as after `dvc repro`."""
    import subprocess

    for name, text in (
        ("pipeline/stage.py", "x = 1\n"),
        ("params.yaml", "seed: 1\n"),
        ("dvc.lock", "schema: '2.0'\n"),
        ("metrics/competition.json", "{}\n"),
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"],
    ):
        subprocess.run(cmd, check=True, capture_output=True)
    return tmp_path


def test_commit_stays_clean_when_dvc_repro_rewrote_outputs(repo):
    from pipeline.submit import _git_commit

    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "metrics/competition.json").write_text('{"cv": 1}\n')
    commit = _git_commit()
    assert commit != "unknown" and not commit.endswith("-dirty")


@pytest.mark.parametrize("change", ["params.yaml", "pipeline/stage.py", "pipeline/new.py"])
def test_commit_is_dirty_when_code_or_params_changed(repo, change):
    from pipeline.submit import _git_commit

    (repo / change).write_text("changed: 2\n")
    assert _git_commit().endswith("-dirty")

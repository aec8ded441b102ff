"""The ``fingerprint`` stage: every task's source in one light process; a local folder's
unchanged files are not read again (size and modification time as recorded), edited ones are."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT, loaded_modules_after

from pipeline.core.params import parse_params
from pipeline.fingerprint import RACY_NS, STAT_CACHE, fingerprints


@pytest.fixture
def local_project(tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    (local / "train.csv").write_text("id,text,label\n1,some words,0\n")
    (local / "test.csv").write_text("id,text\n2,more words\n")
    monkeypatch.chdir(tmp_path)
    return local, parse_params({"competition": {"source": "local", "local_dir": str(local)}})


def _age(path, seconds: float = 10) -> None:
    """Set ``path``'s modification time ``seconds`` in the past (as data copied earlier)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def _rewrite_keeping_stat(path, text: str) -> None:
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_one_call_writes_every_task_and_the_local_files_digests(local_project):
    local, params = local_project
    records = fingerprints(params)
    assert sorted(records) == ["competition", "imdb", "reuters"]
    for name, record in records.items():
        assert json.loads((STAT_CACHE.parent / f"{name}.json").read_text()) == record
    assert records["imdb"] == {"task": "imdb", "source": "download"}
    assert sorted(records["competition"]["files"]) == ["test.csv", "train.csv"]


def test_a_file_with_its_recorded_size_and_time_is_not_read_again(local_project):
    local, params = local_project
    _age(local / "train.csv")
    first = fingerprints(params)["competition"]["files"]
    # Same size and modification time, other bytes: the recorded sha256 stands (not read).
    _rewrite_keeping_stat(local / "train.csv", "id,text,label\n1,SOME WORDS,0\n")
    assert fingerprints(params)["competition"]["files"] == first


def test_a_touched_or_edited_file_is_hashed_again(local_project):
    local, params = local_project
    _age(local / "train.csv")
    first = fingerprints(params)["competition"]["files"]
    os.utime(local / "train.csv")  # touched, same bytes: same digest
    assert fingerprints(params)["competition"]["files"] == first
    (local / "train.csv").write_text("id,text,label\n1,other words,1\n")
    assert fingerprints(params)["competition"]["files"]["train.csv"] != first["train.csv"]


def test_a_file_modified_just_before_its_hashing_is_hashed_again_next_time(local_project):
    # An edit in the same clock tick as the hashing keeps size and time: never trusted.
    local, params = local_project
    first = fingerprints(params)["competition"]["files"]
    entry = json.loads(STAT_CACHE.read_text())[str((local / "train.csv").resolve())]
    assert entry[2] - entry[1] <= RACY_NS
    _rewrite_keeping_stat(local / "train.csv", "id,text,label\n1,SOME WORDS,0\n")
    assert fingerprints(params)["competition"]["files"]["train.csv"] != first["train.csv"]


def test_a_damaged_stat_cache_means_hashing_everything(local_project):
    local, params = local_project
    first = fingerprints(params)
    STAT_CACHE.write_text("{not json")
    assert fingerprints(params) == first


@pytest.mark.slow
def test_the_stage_imports_no_data_library(tmp_path):
    # It runs on every `dvc repro`: no pandas, scikit-learn or TensorFlow.
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    loaded = loaded_modules_after(tmp_path, [["fingerprint"]])
    assert not {"pandas", "sklearn", "scipy", "tensorflow", "keras"} & set(loaded)
    assert sorted(p.name for p in (tmp_path / "data/fingerprints").iterdir()) == [
        "competition.json",
        "imdb.json",
        "reuters.json",
        "stat-cache.json",
    ]

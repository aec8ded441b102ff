"""Tests for pipeline.sources.imdb (and the shared fetch_url)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import DataError, SourceUnavailable
from pipeline.sources import imdb
from pipeline.sources._download import fetch_url

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

REVIEWS = {  # (split, label, id, rating): text
    ("train", "pos", 1, 9): "Great film — loved it. <br /><br />Café scenes!",
    ("train", "pos", 0, 7): "Good.",
    ("train", "neg", 10, 2): "Dull, boring.",
    ("test", "neg", 3, 1): "NA",
    ("test", "pos", 2, 10): "Best ever, “truly”.",
}


def make_aclimdb(root: Path) -> Path:
    folder = root / "aclImdb"
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (folder / split / label).mkdir(parents=True)
    for (split, label, rid, rating), text in REVIEWS.items():
        (folder / split / label / f"{rid}_{rating}.txt").write_text(text, encoding="utf-8")
    return folder


def make_csvs(root: Path, suffix: str = ".csv.gz") -> Path:
    for split in ("train", "test"):
        rows = [
            {
                "review_id": rid,
                "rating": rating,
                "label": int(label == "pos"),
                "sentiment": label,
                "text": text,
            }
            for (s, label, rid, rating), text in REVIEWS.items()
            if s == split
        ]
        pd.DataFrame(rows).to_csv(root / f"aclImdb_{split}{suffix}", index=False)
    return root


def online(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_load_aclimdb_folder(tmp_path):
    train, test = imdb.load_local(make_aclimdb(tmp_path))
    assert list(train.columns) == ["id", "text", "label"]
    assert train["id"].tolist() == ["train_neg_10", "train_pos_0", "train_pos_1"]
    assert train["label"].tolist() == ["neg", "pos", "pos"]
    assert test["id"].tolist() == ["test_neg_3", "test_pos_2"]
    assert train["text"].iloc[2] == REVIEWS[("train", "pos", 1, 9)]  # UTF-8, verbatim


def test_load_folder_holding_aclimdb(tmp_path):
    make_aclimdb(tmp_path)
    train, _ = imdb.load_local(tmp_path)
    assert len(train) == 3


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_load_csv_folder(tmp_path, suffix):
    train, test = imdb.load_local(make_csvs(tmp_path, suffix))
    assert train["id"].tolist() == ["train_neg_10", "train_pos_0", "train_pos_1"]
    assert test["text"].tolist() == ["NA", REVIEWS[("test", "pos", 2, 10)]]  # "NA" stays text


def test_csv_and_folder_layouts_agree(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from_csv = imdb.load_local(make_csvs(tmp_path / "a"))
    from_folder = imdb.load_local(make_aclimdb(tmp_path / "b"))
    for left, right in zip(from_csv, from_folder):
        pd.testing.assert_frame_equal(left, right)


def test_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError) as err:
        imdb.load_local(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "aclImdb_train.csv" in str(err.value) and "train/{pos,neg}" in str(err.value)


def test_csv_bad_label_is_a_clear_error(tmp_path):
    make_csvs(tmp_path, ".csv")
    bad = pd.read_csv(tmp_path / "aclImdb_test.csv")
    bad.loc[1, "label"] = 7
    bad.to_csv(tmp_path / "aclImdb_test.csv", index=False)
    with pytest.raises(DataError, match=r"aclImdb_test\.csv: row 3 has label '7'"):
        imdb.load_local(tmp_path)


def test_real_imdb_counts():
    folder = SHARED / "imdb"
    if not (folder / "aclImdb_train.csv.gz").is_file():
        pytest.skip(f"{folder} not available")
    train, test = imdb.load_local(folder)
    for frame in (train, test):
        assert len(frame) == 25_000
        assert frame["label"].value_counts().to_dict() == {"neg": 12_500, "pos": 12_500}
        assert frame["id"].is_unique
    assert not set(train["id"]) & set(test["id"])
    assert (
        train.loc[train["id"] == "train_pos_0", "text"]
        .iloc[0]
        .startswith("Bromwell High is a cartoon comedy.")
    )


def test_download_offline_raises_source_unavailable(tmp_path):
    if online("ai.stanford.edu"):
        pytest.skip("network reachable: offline behaviour not testable")
    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        imdb.download(tmp_path, timeout=5)
    assert time.monotonic() - start < 15
    assert imdb.URL in err.value.fix
    assert "validation.imdb.source: local" in err.value.fix and "validation.imdb.local_dir" in err.value.fix


def test_download_connection_refused_is_source_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(imdb, "URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    with pytest.raises(SourceUnavailable, match="cannot download http://127.0.0.1:9/"):
        imdb.download(tmp_path, timeout=5)
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_fetch_url_hash_mismatch_deletes_download(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"not the archive")
    actual = hashlib.sha256(b"not the archive").hexdigest()
    dest = tmp_path / "cache" / "archive.tar.gz"
    with pytest.raises(DataError) as err:
        fetch_url(source.as_uri(), dest, "0" * 64, timeout=5)
    assert "0" * 64 in str(err.value) and actual in str(err.value)
    assert list(dest.parent.iterdir()) == []


def test_fetch_url_skips_download_when_cached(tmp_path):
    dest = tmp_path / "archive.bin"
    dest.write_bytes(b"cached")
    digest = hashlib.sha256(b"cached").hexdigest()
    assert fetch_url("http://127.0.0.1:9/never-fetched", dest, digest, timeout=5) == dest


def test_fetch_url_replaces_stale_cache(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"fresh")
    dest = tmp_path / "archive.bin"
    dest.write_bytes(b"stale")
    fetch_url(source.as_uri(), dest, hashlib.sha256(b"fresh").hexdigest(), timeout=5)
    assert dest.read_bytes() == b"fresh"


def test_download_extracts_and_loads(tmp_path, monkeypatch):
    make_aclimdb(tmp_path / "src")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")
    archive = tmp_path / "aclImdb_v1.tar.gz"
    archive.write_bytes(buffer.getvalue())
    monkeypatch.setattr(imdb, "URL", archive.as_uri())
    monkeypatch.setattr(imdb, "SHA256", hashlib.sha256(buffer.getvalue()).hexdigest())
    folder = imdb.download(tmp_path / "cache")
    assert folder == tmp_path / "cache" / "aclImdb_v1" / "aclImdb"
    assert len(imdb.load_local(folder)[0]) == 3
    monkeypatch.setattr(imdb, "URL", "http://127.0.0.1:9/gone.tar.gz")
    assert imdb.download(tmp_path / "cache") == folder  # cached: no network needed

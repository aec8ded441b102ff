"""Tests of the bundled synthetic fake-news competition (pipeline.sources.sample)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from pipeline.core.errors import ParamsError
from pipeline.sources.sample import write_sample

FILES = ("train.csv", "test.csv", "sample_submission.csv")


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("sample")
    info = write_sample(dest)
    assert info == {"source": "sample", "seed": 20240101, "synthetic": True}
    return dest


def _read(dest: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(dest / name, keep_default_na=False)


def test_layout_and_columns(sample_dir):
    assert sorted(p.name for p in sample_dir.iterdir()) == sorted(FILES)
    train, test = _read(sample_dir, "train.csv"), _read(sample_dir, "test.csv")
    submission = _read(sample_dir, "sample_submission.csv")
    assert list(train.columns) == ["id", "title", "author", "text", "label"]
    assert list(test.columns) == ["id", "title", "author", "text"]
    assert list(submission.columns) == ["id", "label"]
    assert (len(train), len(test)) == (400, 200)
    assert set(train["label"]) == {0, 1}
    assert pd.api.types.is_integer_dtype(train["id"]) and pd.api.types.is_integer_dtype(test["id"])
    assert (sample_dir / "train.csv").read_bytes().count(b"\r") == 0


def test_ids_unique_disjoint_and_kaggle_style(sample_dir):
    train, test = _read(sample_dir, "train.csv"), _read(sample_dir, "test.csv")
    assert train["id"].is_unique and test["id"].is_unique
    assert not set(train["id"]) & set(test["id"])
    assert list(train["id"]) == list(range(400))
    assert list(test["id"]) == list(range(400, 600))


def test_sample_submission_matches_test(sample_dir):
    test = _read(sample_dir, "test.csv")
    submission = _read(sample_dir, "sample_submission.csv")
    assert list(submission["id"]) == list(test["id"])
    assert (submission["label"] == 0).all()


def test_same_seed_identical_bytes_different_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_sample(a, seed=7)
    write_sample(b, seed=7)
    info = write_sample(c, seed=8)
    assert info["seed"] == 8
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "train.csv").read_bytes() != (c / "train.csv").read_bytes()
    assert (a / "test.csv").read_bytes() != (c / "test.csv").read_bytes()


def test_sizes_are_parameters(tmp_path):
    write_sample(tmp_path, n_train=30, n_test=10)
    train, test = _read(tmp_path, "train.csv"), _read(tmp_path, "test.csv")
    assert list(train["id"]) == list(range(30)) and list(test["id"]) == list(range(30, 40))
    with pytest.raises(ParamsError):
        write_sample(tmp_path / "bad", n_train=0)


def test_messiness_present(sample_dir):
    train = _read(sample_dir, "train.csv")
    rows = pd.concat([train, _read(sample_dir, "test.csv")])
    no_author = (rows["author"] == "").mean()
    assert 0.08 <= no_author <= 0.25
    empty_text = rows["text"] == ""
    assert 0.01 <= empty_text.mean() <= 0.07
    assert (rows.loc[empty_text, "title"] != "").all()
    assert (rows["title"] == "").any()
    # Some authors write for both classes.
    authors = train[train["author"] != ""].groupby("author")["label"].nunique()
    assert (authors == 2).sum() >= 3


def test_class_balance(sample_dir):
    fake_share = _read(sample_dir, "train.csv")["label"].mean()
    assert 0.4 <= fake_share <= 0.6


def test_learnable_but_not_trivial(sample_dir):
    train = _read(sample_dir, "train.csv")
    x = train["title"] + " " + train["author"] + " " + train["text"]
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000)
    )
    accuracy = cross_val_score(model, x, train["label"], cv=5).mean()
    assert 0.7 <= accuracy <= 0.95, accuracy

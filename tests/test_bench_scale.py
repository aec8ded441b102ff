"""The scale benchmark's competition generator: real IMDB text joined into fake-news-shaped
articles (columns, ids, lengths with a long tail, a learnable label), the same for a seed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from devtools.bench_scale import MEAN_CHARS, _articles, _author_pool, make_competition, read_reviews


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found (shared datasets absent)")
    folder = tmp_path_factory.mktemp("scale")
    shape = make_competition(folder / "a", 400, 100, seed=3, imdb_dir=SHARED_DATA / "imdb")
    return folder, shape, SHARED_DATA / "imdb"


def test_files_have_the_fake_news_columns_and_ids(small):
    folder, shape, _ = small
    train = pd.read_csv(folder / "a/train.csv", keep_default_na=False)
    test = pd.read_csv(folder / "a/test.csv", keep_default_na=False)
    sample = pd.read_csv(folder / "a/sample_submission.csv")
    assert list(train.columns) == ["id", "title", "author", "text", "label"]
    assert list(test.columns) == ["id", "title", "author", "text"]
    assert list(sample.columns) == ["id", "label"]
    assert train["id"].tolist() == list(range(400)) and test["id"].tolist() == list(range(400, 500))
    assert sample["id"].tolist() == test["id"].tolist()
    assert set(train["label"]) == {0, 1}
    assert (train["title"] != "").mean() > 0.9 and (train["author"] != "").mean() > 0.8
    assert shape["train_rows"] == 400 and shape["test_rows"] == 100


def test_articles_are_article_length(small):
    folder, shape, _ = small
    texts = pd.concat([pd.read_csv(folder / f"a/{n}.csv")["text"] for n in ("train", "test")])
    lengths = texts.str.len()
    assert shape["mean_chars"] == round(lengths.mean())
    assert 0.7 * MEAN_CHARS < lengths.mean() < 1.4 * MEAN_CHARS
    assert lengths.median() < lengths.mean() < lengths.max() / 3  # skewed to the right


def test_a_long_tail_past_100k_characters(small):
    _, _, imdb = small
    rng = np.random.default_rng(0)
    articles = _articles(read_reviews(imdb, "test"), 3000, rng, _author_pool(imdb, rng))
    lengths = articles["text"].str.len()
    assert lengths.max() > 60_000 and (lengths > 20_000).mean() < 0.02


def test_the_label_is_learnable(small):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    folder, _, _ = small
    train = pd.read_csv(folder / "a/train.csv", keep_default_na=False)
    X = TfidfVectorizer(min_df=2).fit_transform(train["text"])
    assert cross_val_score(LogisticRegression(C=4.0), X, train["label"], cv=3).mean() > 0.8


def test_same_seed_same_files_other_seed_other_files(small):
    folder, _, imdb = small
    make_competition(folder / "b", 400, 100, seed=3, imdb_dir=imdb)
    make_competition(folder / "c", 400, 100, seed=4, imdb_dir=imdb)
    assert digest(folder / "a") == digest(folder / "b")
    assert digest(folder / "a")["train.csv"] != digest(folder / "c")["train.csv"]


@pytest.mark.parametrize("args", [["--fraction", "0"], ["--fraction", "1.5"], ["--rows", "5"]])
def test_scale_sizes_are_checked_before_anything_runs(args, capsys):
    from devtools.benchmark import main

    with pytest.raises(SystemExit) as exit_info:
        main(["scale", *args])
    assert exit_info.value.code == 2
    assert "--fraction must be in (0, 1] and --rows at least 10" in capsys.readouterr().err


def test_the_scratch_project_runs_the_pipelines_first_stages(shared_data, tmp_path):
    """The benchmark's own project (every dvc.yaml of the checkout) runs the always-changed
    fingerprint stage and the competition's fetch on the generated files."""
    from devtools.bench_scale import bench_scale

    result = bench_scale(tmp_path, 200, 50, upto="fetch@competition")
    assert list(result["stages"]) == ["data/fingerprints/dvc.yaml:fingerprint", "fetch@competition"]
    assert all(stage["seconds"] > 0 and stage["peak_gib"] > 0 for stage in result["stages"].values())
    fetched = pd.read_csv(tmp_path / "project/data/raw/competition/train.csv", keep_default_na=False)
    assert len(fetched) == 200 and list(fetched.columns) == ["id", "title", "author", "text", "label"]

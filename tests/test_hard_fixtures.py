"""Fixtures from real text as hard as the real thing (tests/twins.py; their measured
properties are in docs/cv.md): heavy twins (every IMDB review and a paraphrase of it with ~60%
of the words changed and the other label, split by story) and unseen sources (IMDB reviews
published by 100 sources named after LIAR speakers, each leaning 85% to one label; test
sources train never saw). Random folds mislead on both; ``auto`` CV lands within
5 points of test for the TF-IDF models; what ships is not below the best TF-IDF model on test."""

from __future__ import annotations

import numpy as np
import pytest

from twins import heavy_twin_competition, run_competition, unseen_source_competition

MODELS = ["word_lr", "nbsvm", "word_svc"]


def _shared(path):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / path).exists():
        pytest.skip(f"{SHARED_DATA / path} not found (shared datasets absent)")
    return SHARED_DATA / path


@pytest.fixture(scope="module")
def heavy():
    return heavy_twin_competition(_shared("imdb/aclImdb_train.csv.gz"), n_stories=500, seed=0)


@pytest.fixture(scope="module")
def sources():
    return unseen_source_competition(
        _shared("imdb/aclImdb_train.csv.gz"), _shared("competitions/liar"), seed=0
    )


def test_heavy_twins_are_as_far_apart_as_real_ones(heavy):
    """Real twins: nearest train row is the twin at cosine 0.1-0.5, with the other label for 85%
    of rows (issue data). The fixture's, measured the same way."""
    from pipeline.cv.duplicates import similarity_graph, text_vectors
    from pipeline.cv.plan import train_neighbours

    train, _, _ = heavy
    X = text_vectors(train["text"])
    nb, cos = train_neighbours(similarity_graph(X, 0.7, X.shape[0]), X.shape[0])
    y = train["label"].astype(int).to_numpy()
    assert 0.1 <= np.quantile(cos[:, 0], 0.1) and np.quantile(cos[:, 0], 0.9) <= 0.5
    assert np.mean(y[nb[:, 0]] == y) < 0.2


@pytest.fixture(scope="module")
def runs(tmp_path_factory, heavy, sources):
    out = {}
    for name, data in (("heavy", heavy), ("sources", sources)):
        for strategy in ("stratified", "auto"):
            out[name, strategy] = run_competition(
                tmp_path_factory.mktemp(f"{name}-{strategy}"), *data, MODELS, cv={"strategy": strategy}
            )
    return out


@pytest.mark.slow  # four in-process runs of three TF-IDF models on 1,000-2,000 rows (~2 min)
def test_random_folds_mislead(runs):
    heavy, sources = runs["heavy", "stratified"], runs["sources", "stratified"]
    # heavy twins: pessimistic for every model, by more than 10 points on average
    gaps = [heavy["test"][m] - heavy["cv"][m] for m in MODELS]
    assert min(gaps) > 0.03 and np.mean(gaps) > 0.10, (heavy["cv"], heavy["test"])
    # unseen sources: optimistic for every model
    for model in MODELS:
        assert sources["cv"][model] > sources["test"][model] + 0.02, (model, sources["cv"], sources["test"])


@pytest.mark.slow
def test_auto_cv_within_five_points_of_test(runs):
    for name in ("heavy", "sources"):
        run = runs[name, "auto"]
        for model in MODELS:
            assert abs(run["cv"][model] - run["test"][model]) <= 0.05, (name, model, run["cv"], run["test"])
    assert runs["sources", "auto"]["checks"]["chosen"] == "source:author"


@pytest.mark.slow
def test_shipped_not_below_the_best_tfidf_model(runs):
    for key, run in runs.items():
        if key[1] == "auto":
            best = max(run["test"][m] for m in MODELS)
            assert run["test"]["ensemble"] >= best - 0.005, (key, run["ensemble"]["method"], run["test"])


@pytest.mark.slow
def test_warnings_say_which_way_and_what_to_do(runs):
    strat = runs["heavy", "stratified"]
    assert "CV is likely pessimistic" in strat["markdown"]
    assert "> **What to do:**" in strat["markdown"] and "cv.group" in strat["markdown"]
    assert strat["ensemble"]["method"] == "mean"  # CV not trusted: nothing picked on it
    auto = runs["heavy", "auto"]
    assert auto["checks"]["trust"]["trusted"] and "What to do" not in auto["markdown"]

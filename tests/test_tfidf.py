"""TF-IDF model pieces: hashed n-gram counts, the NB-SVM classifier and the word+char SVC."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from pipeline.core.params import Params
from pipeline.models.common import Fold
from pipeline.models.tfidf import (
    TOKEN_PATTERN,
    HashedCharTfidf,
    HashedWordPresence,
    NBSVMClassifier,
    _fit_quietly,
    hashed_counts,
    word_svc,
    wordchar_svc,
)

CORPUS = pd.Series(
    [
        "the cat sat on the mat",
        "the cat ate the rat",
        "a dog sat on a log",
        "the dog ate the cat food",
        "fake news shocking !",
        "shocking fake claim !",
        "real report on the mat",
        "the rat sat",
    ]
)


def test_hashed_counts_keep_the_ngrams_countvectorizer_keeps():
    # 2**20 columns for a few dozen n-grams: collisions are practically impossible.
    for min_df in (1, 2, 3):
        hashed = hashed_counts(CORPUS, min_df, 20, n_jobs=1, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN)
        exact = CountVectorizer(ngram_range=(1, 2), min_df=min_df, token_pattern=TOKEN_PATTERN)
        exact_counts = exact.fit_transform(CORPUS)
        assert hashed.shape == exact_counts.shape, min_df
        # Same multiset of column totals: the same n-grams with the same counts.
        assert sorted(np.asarray(hashed.sum(axis=0)).ravel()) == sorted(
            np.asarray(exact_counts.sum(axis=0)).ravel()
        )


@pytest.mark.slow
def test_hashed_counts_are_the_same_in_parallel_chunks():
    texts = pd.Series(list(CORPUS) * 600)  # 4,800 texts: three chunks of 2,000
    serial = hashed_counts(texts, 2, 18, n_jobs=1, ngram_range=(1, 3))
    parallel = hashed_counts(texts, 2, 18, n_jobs=2, ngram_range=(1, 3))
    assert (serial != parallel).nnz == 0


def test_word_presence_is_binary():
    X = HashedWordPresence(ngram_max=2, min_df=1, hash_bits=18).fit_transform(CORPUS)
    assert set(np.unique(X.data)) == {1.0}  # "the ... the" counts once


def test_nbsvm_learns_binary_and_multiclass():
    X = HashedWordPresence(ngram_max=1, min_df=1, hash_bits=18).fit_transform(CORPUS)
    binary = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    proba = NBSVMClassifier(C=10.0).fit(X, binary).predict_proba(X)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == binary).all()
    three = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    model = NBSVMClassifier(C=10.0).fit(X, three)
    proba = model.predict_proba(X)
    assert proba.shape == (8, 3) and np.allclose(proba.sum(axis=1), 1)
    assert (model.predict(X) == three).mean() >= 0.75


FEATURES = [
    HashedWordPresence(ngram_max=2, min_df=2, hash_bits=18),
    HashedCharTfidf(ngram_range=(2, 4), min_df=2, hash_bits=18, max_chars=12),
]


@pytest.mark.parametrize("features", FEATURES, ids=lambda f: type(f).__name__)
def test_feature_classes_pass_the_estimator_checks_that_apply_to_text(features):
    # The remaining checks of check_estimator feed numeric arrays, which text features refuse.
    name = type(features).__name__
    check_no_attributes_set_in_init(name, features)
    check_parameters_default_constructible(name, features)
    check_get_params_invariance(name, features)
    check_set_params(name, features)
    copy = clone(features)
    assert copy is not features and copy.get_params() == features.get_params()


@pytest.mark.parametrize("features", FEATURES, ids=lambda f: type(f).__name__)
def test_feature_classes_transform_new_texts_into_the_fitted_columns(features):
    fitted = clone(features).fit(CORPUS)
    both = clone(features).fit_transform(CORPUS)
    assert (fitted.transform(CORPUS) != both).nnz == 0  # fit then transform == fit_transform
    new = fitted.transform(pd.Series(["zzz qqq xxx", "the cat sat"]))
    assert new.shape == (2, both.shape[1])  # the fitted columns, whatever the new texts hold
    assert new[0].nnz == 0 and new[1].nnz > 0  # n-grams never seen in fit have no column


def test_feature_classes_chain_in_a_pipeline_and_clone():
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    model = make_pipeline(HashedWordPresence(ngram_max=1, min_df=1, hash_bits=18), NBSVMClassifier(C=10.0))
    assert (clone(model).fit(CORPUS, labels).predict(CORPUS) == labels).all()
    assert model.get_params()["hashedwordpresence__hash_bits"] == 18


def _frames(texts, labels):
    train = pd.DataFrame({"text": texts, "y": labels})
    return train, pd.DataFrame({"text": texts[:3]})


def test_wordchar_svc_adds_char_columns_to_the_word_svc_features():
    # Misspelt words share no word with the training texts, only character n-grams.
    texts = [
        "stock markets rallied today",
        "shares rose on the exchange",
        "the team won the match",
        "a late goal won the cup",
    ] * 3
    train, test = _frames(texts, np.array([0, 0, 1, 1] * 3))
    unseen = pd.DataFrame({"text": ["stocks marketing rallying", "teams winning matches"]})
    every_row = np.arange(len(train))
    for factory in (word_svc, wordchar_svc):
        fit_predict = factory(None, Params(), train, unseen, n_classes=2)
        test_proba = fit_predict(Fold(every_row, every_row[:2])).test_proba
        assert test_proba.shape == (2, 2) and np.allclose(test_proba.sum(axis=1), 1)
        if factory is word_svc:  # no known word: the same score for both texts
            assert np.allclose(test_proba[0], test_proba[1])
        else:
            assert list(test_proba.argmax(axis=1)) == [0, 1]


def test_wordchar_svc_multiclass_fold_misses_a_class():
    texts = [
        "wheat crop harvest",
        "grain wheat export",
        "oil crude barrel",
        "crude oil price",
        "gold mine ounce",
        "interest rate bank",
    ]
    labels = np.array([0, 0, 1, 1, 2, 3])
    train, test = _frames(texts, labels)
    fit_predict = wordchar_svc(None, Params(), train, test, n_classes=4)
    result = fit_predict(Fold(np.arange(5), np.array([5])))  # class 3 unseen in training
    valid_proba, test_proba = result.valid_proba, result.test_proba
    assert valid_proba.shape == (1, 4) and test_proba.shape == (3, 4)
    assert (test_proba[:, 3] == 0).all() and np.allclose(test_proba.sum(axis=1), 1)
    assert list(test_proba.argmax(axis=1)) == [0, 0, 1]


def test_liblinear_convergence_warnings_become_one_log_line(caplog):
    X = CountVectorizer().fit_transform(CORPUS)
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the test
        with caplog.at_level("INFO", logger="pipeline.models.tfidf"):
            model = _fit_quietly(LinearSVC(max_iter=1), X, y, "train t word_svc fold 2")
    assert model.predict(X).shape == (8,)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("[train t word_svc fold 2] liblinear reached its iteration limit in 1 fit(s)")
    assert "max_iter 1" in line


def test_converged_fit_logs_nothing(caplog):
    X = CountVectorizer().fit_transform(CORPUS)
    with caplog.at_level("INFO", logger="pipeline.models.tfidf"):
        _fit_quietly(LinearSVC(), X, np.array([0, 0, 1, 1, 0, 1, 0, 1]), "tag")
    assert caplog.records == []

"""TF-IDF baselines: word and char n-gram logistic regression, NB-SVM, LinearSVCs.

The vectoriser is fitted once on train + test text. That uses no labels (only document
frequencies), so out-of-fold scores stay honest, and it saves refitting per fold.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_union
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from ..core.params import Params
from . import FoldPlan
from .common import Fold, FoldResult, expand_proba

log = logging.getLogger(__name__)

# Words plus "!" and "?", which carry style (sensational writing) in fake-news data.
TOKEN_PATTERN = r"(?u)\b\w+\b|[!?]"


def _scores_to_proba(scores: np.ndarray) -> np.ndarray:
    """Sigmoid (binary) or softmax of decision scores, for models with no probabilities."""
    if scores.ndim == 1:
        positive = 1.0 / (1.0 + np.exp(-scores))
        return np.column_stack([1 - positive, positive])
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class NBSVMClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression on features scaled by naive-Bayes log-count ratios.

    Wang & Manning (2012), in its common logistic-regression form: for each class, one
    binary model on ``X * r`` with ``r = log((p/|p|) / (q/|q|))``, ``p``/``q`` the smoothed
    feature sums of that class and of the rest; probabilities normalised across classes.
    """

    def __init__(self, alpha: float = 1.0, C: float = 4.0, random_state: int = 0):
        self.alpha = alpha
        self.C = C
        self.random_state = random_state

    def fit(self, X, y):
        X = sp.csr_matrix(X)
        self.classes_ = np.unique(y)
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        self.ratios_, self.models_ = [], []
        for cls in targets:
            pos = np.asarray(y == cls)
            p = self.alpha + np.asarray(X[pos].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(X[~pos].sum(axis=0)).ravel()
            ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
            # Dual liblinear: n-gram columns far outnumber rows (several times faster).
            model = LogisticRegression(
                C=self.C, max_iter=1000, solver="liblinear", dual=True, random_state=self.random_state
            )
            self.ratios_.append(ratio)
            self.models_.append(model.fit(X.multiply(ratio).tocsr(), pos.astype(int)))
        return self

    def predict_proba(self, X):
        X = sp.csr_matrix(X)
        positive = np.column_stack(
            [m.predict_proba(X.multiply(r).tocsr())[:, 1] for r, m in zip(self.ratios_, self.models_)]
        )
        if len(self.classes_) == 2:
            return np.column_stack([1 - positive[:, 0], positive[:, 0]])
        return positive / np.clip(positive.sum(axis=1, keepdims=True), 1e-12, None)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _fitter(
    vectorizer, make_classifier, texts_train: pd.Series, texts_test: pd.Series, y: np.ndarray, n_classes: int
):
    features = vectorizer.fit_transform(pd.concat([texts_train, texts_test], ignore_index=True))
    features = sp.csr_matrix(features)
    X, X_test = features[: len(texts_train)], features[len(texts_train) :]

    def fit_predict(fold: Fold) -> FoldResult:
        train_idx, valid_idx = fold.train_idx, fold.valid_idx
        model = _fit_quietly(make_classifier(), X[train_idx], y[train_idx], fold.tag or "tfidf")
        if hasattr(model, "predict_proba"):
            predict = model.predict_proba
        else:

            def predict(rows):
                return _scores_to_proba(model.decision_function(rows))

        # No validation rows: the refit on every train row (``tfidf.test_predictions``).
        valid = predict(X[valid_idx]) if len(valid_idx) else np.zeros((0, len(model.classes_)))
        return FoldResult(
            expand_proba(valid, model.classes_, n_classes),
            expand_proba(predict(X_test), model.classes_, n_classes),
        )

    return fit_predict


def _fit_quietly(model, X, y, tag: str):
    """``model.fit(X, y)``; liblinear's ConvergenceWarnings (one per binary fit) become one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = model.fit(X, y)
    unconverged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for other in caught:
        if other not in unconverged:
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    if unconverged:
        log.info(
            "[%s] liblinear reached its iteration limit in %d fit(s) (%s); the solution is "
            "close to, not at, the optimum",
            tag,
            len(unconverged),
            _iteration_limits(model),
        )
    return model


def _iteration_limits(model) -> str:
    limits = {v for k, v in model.get_params().items() if k == "max_iter" or k.endswith("__max_iter")}
    return "max_iter " + ", ".join(str(v) for v in sorted(limits)) if limits else "its max_iter"


def _word_vectorizer(ngram_max: int, min_df: int, max_features: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, ngram_max),
        min_df=min_df,
        max_features=max_features,
        sublinear_tf=True,
        token_pattern=TOKEN_PATTERN,
        dtype=np.float32,
    )


def _lr(C: float, seed: int, n_classes: int):
    # liblinear is several times faster than lbfgs on sparse problems, and its dual form
    # faster again when columns outnumber rows. Multi-class: one balanced binary model per
    # class, faster and more accurate on R52 than a multinomial lbfgs model with the same C
    # (docs/benchmarks.md).
    if n_classes == 2:
        return lambda: LogisticRegression(
            C=C, max_iter=2000, solver="liblinear", dual=True, random_state=seed
        )
    return lambda: OneVsRestClassifier(
        LogisticRegression(
            C=C, max_iter=2000, solver="liblinear", dual=True, class_weight="balanced", random_state=seed
        )
    )


def word_lr(task, params: Params, train, test, n_classes: int):
    p = params.tfidf.word
    return _fitter(
        _word_vectorizer(p.ngram_max, p.min_df, p.max_features),
        _lr(p.C, params.seed, n_classes),
        train["text"],
        test["text"],
        train["y"].to_numpy(),
        n_classes,
    )


def _svc_word_vectorizer(params: Params) -> TfidfVectorizer:
    p = params.tfidf.svc
    return TfidfVectorizer(
        ngram_range=(1, p.ngram_max), min_df=p.min_df, token_pattern=TOKEN_PATTERN, dtype=np.float32
    )


def _svc(C: float, class_weight: str, seed: int):
    weight = None if class_weight == "none" else class_weight
    return lambda: LinearSVC(C=C, class_weight=weight, random_state=seed)


def word_svc(task, params: Params, train, test, n_classes: int):
    p = params.tfidf.svc
    return _fitter(
        _svc_word_vectorizer(params),
        _svc(p.C, p.class_weight, params.seed),
        train["text"],
        test["text"],
        train["y"].to_numpy(),
        n_classes,
    )


def hashed_counts(
    texts: pd.Series, min_df: int, hash_bits: int, n_jobs: int = -1, **hashing
) -> sp.csr_matrix:
    """N-gram counts through the hashing trick, counted in parallel chunks of 2,000 texts.

    Building an n-gram vocabulary is the slow, single-threaded part of ``CountVectorizer``
    (most of the time on IMDB word trigrams); hashing needs no vocabulary, so chunks run on
    every core (docs/benchmarks.md). Columns seen in fewer than ``min_df`` documents are dropped, as the
    vectorisers would. ``hashing`` goes to ``HashingVectorizer`` (analyzer, ngram_range...).
    """
    counts = _hash_all(texts, hash_bits, n_jobs, **hashing).tocsc()
    return counts[:, _frequent_columns(counts, min_df)].tocsr()


def _hash_all(texts, hash_bits: int, n_jobs: int = -1, **hashing) -> sp.csr_matrix:
    """Every hashed n-gram count of ``texts`` (no document-frequency cut)."""
    from joblib import Parallel, delayed
    from sklearn.feature_extraction.text import HashingVectorizer

    hasher = HashingVectorizer(
        n_features=2**hash_bits, alternate_sign=False, norm=None, dtype=np.float32, **hashing
    )
    chunks = [texts.iloc[i : i + 2000] for i in range(0, len(texts), 2000)]
    return sp.vstack(Parallel(n_jobs=n_jobs)(delayed(hasher.transform)(c) for c in chunks))


def _frequent_columns(counts: sp.csc_matrix, min_df: int) -> np.ndarray:
    """Columns of ``counts`` (CSC) non-zero in at least ``min_df`` rows (document frequency)."""
    return np.flatnonzero(np.diff(counts.indptr) >= min_df)


def _as_series(texts) -> pd.Series:
    return texts if isinstance(texts, pd.Series) else pd.Series(texts, dtype=object)


class _HashedNgrams(TransformerMixin, BaseEstimator):
    """Hashed n-gram counts with a document-frequency cut learnt in ``fit``.

    scikit-learn's transformer contract: ``fit`` keeps the columns seen in at least
    ``min_df`` documents (and any state :meth:`_finish` learns), ``transform`` hashes new
    texts into those columns, ``fit_transform`` hashes once. Subclasses give the hashing
    settings (:meth:`_hashing`) and what follows the counts (:meth:`_finish`).
    """

    def _hashing(self) -> dict:
        raise NotImplementedError

    def _prepare(self, texts) -> pd.Series:
        return _as_series(texts)

    def _finish(self, counts: sp.csr_matrix, fit: bool) -> sp.csr_matrix:
        return counts

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        counts = _hash_all(self._prepare(X), self.hash_bits, **self._hashing()).tocsc()
        self.columns_ = _frequent_columns(counts, self.min_df)
        return self._finish(counts[:, self.columns_].tocsr(), fit=True)

    def transform(self, X):
        check_is_fitted(self, "columns_")
        counts = _hash_all(self._prepare(X), self.hash_bits, **self._hashing()).tocsc()
        return self._finish(counts[:, self.columns_].tocsr(), fit=False)


class HashedCharTfidf(_HashedNgrams):
    """Sublinear TF-IDF of hashed ``char_wb`` n-grams (see :func:`hashed_counts`) of each
    text's first ``max_chars`` characters (None: all of it)."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (2, 5),
        min_df: int = 1,
        hash_bits: int = 21,
        max_chars: int | None = None,
    ):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.hash_bits = hash_bits
        self.max_chars = max_chars

    def _hashing(self) -> dict:
        return {"analyzer": "char_wb", "ngram_range": tuple(self.ngram_range)}

    def _prepare(self, texts) -> pd.Series:
        return _as_series(texts).str.slice(0, self.max_chars)

    def _finish(self, counts: sp.csr_matrix, fit: bool) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import TfidfTransformer

        if fit:
            self.tfidf_ = TfidfTransformer(sublinear_tf=True)
            return self.tfidf_.fit_transform(counts)
        return self.tfidf_.transform(counts)


class HashedWordPresence(_HashedNgrams):
    """Binary presence of hashed word n-grams (see :func:`hashed_counts`), for NB-SVM."""

    def __init__(self, ngram_max: int = 1, min_df: int = 1, hash_bits: int = 20):
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.hash_bits = hash_bits

    def _hashing(self) -> dict:
        return {"ngram_range": (1, self.ngram_max), "binary": True, "token_pattern": TOKEN_PATTERN}


def _char_vectorizer(params: Params) -> HashedCharTfidf:
    p = params.tfidf.char
    # Char n-grams of long documents add little over their first max_chars characters.
    return HashedCharTfidf((p.ngram_min, p.ngram_max), p.min_df, p.hash_bits, p.max_chars)


def char_lr(task, params: Params, train, test, n_classes: int):
    return _fitter(
        _char_vectorizer(params),
        _lr(params.tfidf.char.C, params.seed, n_classes),
        train["text"],
        test["text"],
        train["y"].to_numpy(),
        n_classes,
    )


def wordchar_svc(task, params: Params, train, test, n_classes: int):
    # Word and char columns side by side beat either alone on R52 (docs/benchmarks.md).
    p = params.tfidf.wordchar_svc
    vectorizer = make_union(_svc_word_vectorizer(params), _char_vectorizer(params))
    return _fitter(
        vectorizer,
        _svc(p.C, p.class_weight, params.seed),
        train["text"],
        test["text"],
        train["y"].to_numpy(),
        n_classes,
    )


def nbsvm(task, params: Params, train, test, n_classes: int):
    p = params.tfidf.nbsvm
    return _fitter(
        HashedWordPresence(p.ngram_max, p.min_df, p.hash_bits),
        lambda: NBSVMClassifier(p.alpha, p.C, params.seed),
        train["text"],
        test["text"],
        train["y"].to_numpy(),
        n_classes,
    )


def tfidf_plan(task, model: str, params: Params) -> FoldPlan:
    """Every CV fold in this process; with ``tfidf.test_predictions: refit``, then a fit on
    every train row for the test predictions."""
    return FoldPlan(params.cv.folds, params, refit=params.tfidf.test_predictions == "refit")

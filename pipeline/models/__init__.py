"""The model registry: name → how to build a per-fold trainer.

A model factory takes ``(task, params, train, test, n_classes)`` and returns a callable
``fit_predict(train_idx, valid_idx) -> (valid_proba, test_proba)``; TF-IDF trainers also
accept an empty ``valid_idx`` (the refit on all train rows). ``train.py`` runs every
model through the same fold loop, so adding a model is adding one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FitPredict = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "tfidf", "rnn" (tuned, may use fewer folds), "frozen" or "finetune" (transformers)
    description: str
    factory: Callable[..., FitPredict]
    tunable: bool = True  # rnn models only: has a `tune` stage search space
    # Optional ``(task, model, params) -> (params, record info)`` run once before the folds.
    before_folds: Callable[..., tuple] | None = None


def _lazy(module: str, function: str) -> Callable[..., FitPredict]:
    # Import on use: the TF-IDF stages must not pay for importing TensorFlow.
    def factory(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(*args, **kwargs)

    return factory


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "word_lr", "tfidf", "word 1-2-gram TF-IDF + logistic regression", _lazy("tfidf", "word_lr")
        ),
        ModelSpec(
            "char_lr", "tfidf", "char 2-5-gram TF-IDF + logistic regression", _lazy("tfidf", "char_lr")
        ),
        ModelSpec(
            "nbsvm", "tfidf", "NB-weighted logistic regression (Wang & Manning)", _lazy("tfidf", "nbsvm")
        ),
        ModelSpec(
            "word_svc",
            "tfidf",
            "plain word TF-IDF + LinearSVC (reference baseline)",
            _lazy("tfidf", "word_svc"),
        ),
        ModelSpec(
            "wordchar_svc",
            "tfidf",
            "word and char TF-IDF side by side + LinearSVC",
            _lazy("tfidf", "wordchar_svc"),
        ),
        ModelSpec("lstm", "rnn", "stacked (Bi)LSTM tuned with Optuna", _lazy("rnn", "lstm")),
        ModelSpec("gru", "rnn", "stacked (Bi)GRU tuned with Optuna", _lazy("rnn", "gru")),
        ModelSpec(
            "lstm_baseline",
            "rnn",
            "lecture-style Embedding(5000,100) → LSTM(100) reference, not tuned",
            _lazy("rnn", "lstm_baseline"),
            tunable=False,
        ),
        ModelSpec(
            "frozen_lr",
            "frozen",
            "frozen pretrained-encoder mean embeddings + logistic regression",
            _lazy("transformer", "frozen_lr"),
            tunable=False,
            before_folds=_lazy("transformer", "before_folds"),
        ),
        ModelSpec(
            "finetune",
            "finetune",
            "pretrained encoder fine-tuned whole + mean pooling + linear head",
            _lazy("transformer", "finetune"),
            tunable=False,
            before_folds=_lazy("transformer", "before_folds"),
        ),
    )
}

"""Tiny prepared datasets and params for the tokenize / RNN / tune tests (kept CPU-cheap)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.outputs import PreparedMeta, save_prepared
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task

PREPARED = Path("data/prepared/competition")

# Small enough to train in well under a second per epoch; tests override what they need.
TINY = {
    "seed": 7,
    "cv": {"folds": 2},
    # params.yaml's models and seeds are the defaults; the tiny tests name the models they run.
    "models": {"rnn": [], "transformer": []},
    "tokenize": {"vocab_size": 100, "min_count": 1, "max_tokens": 10},
    # Narrow vectors, few epochs: word2vec on the tiny corpora takes milliseconds.
    "embed": {"method": "word2vec", "dim": 4, "epochs": 2, "window": 2},
    "neural": {
        "folds": 1,
        "seeds": 1,
        "epochs": 2,
        "patience": 2,
        "threads": 1,
        "processes": 1,
        # Learns the tiny corpus below to val_accuracy 1.0 within the first epoch.
        "defaults": {
            "embedding_dim": 4,
            "units": 4,
            "layers": 1,
            "bidirectional": False,
            "dropout": 0.0,
            "spatial_dropout": 0.0,
            "dense_units": 0,
            "learning_rate": 0.1,
            "batch_size": 4,
            "seq_len": 8,
            "vocab_size": 100,
            "truncate": "head_tail",
        },
    },
    "tune": {
        "budget": {"n_trials": 3, "timeout": 600},
        "startup_trials": 1,
        "pruner_warmup_epochs": 0,
        "max_train_rows": 100,
        "space": {
            "embedding_dim": [4],
            "units": [4],
            "layers": [1],
            "bidirectional": [False],
            "dropout": [0.0, 0.1],
            "spatial_dropout": [0.0, 0.1],
            "learning_rate": [0.05, 0.1],
            "batch_size": [4],
            "seq_len": [8],
            "truncate": ["head_tail", "head"],
        },
    },
}


def featurize(task, params) -> None:
    """The tokenize and embed stages, as ``dvc repro`` runs them before the RNNs."""
    from pipeline.embed import embed
    from pipeline.tokenize import tokenize

    tokenize(task, params)
    embed(task, params)


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def tiny_params(**overrides):
    return parse_params(merge(TINY, overrides))


def learnable_texts(n: int, seed: int = 0, filler: int = 3) -> tuple[list[str], np.ndarray]:
    """``n`` texts whose label is the LAST word ("good" = 1, "bad" = 0), balanced, shuffled.

    ``filler`` words come first, all the same "word", so a model that only sees the head of a
    long text sees identical inputs for every row.
    """
    rng = np.random.default_rng(seed)
    y = np.array([i % 2 for i in range(n)])
    rng.shuffle(y)
    texts = [" ".join(["word"] * filler + ["good" if label else "bad"]) for label in y]
    return texts, y


def write_prepared(
    root: Path,
    texts,
    y,
    test_texts,
    folds: int | np.ndarray = 2,
    classes=("0", "1"),
    available: bool = True,
    task: str = "competition",
    test_y=None,
    why: tuple[str, str] = ("offline", "go online"),
) -> None:
    """``data/prepared/<task>/`` under ``root``, written by the prepare stage's own writer.

    ``folds``: a fold per train row, or a count (stratified: the i-th row of each class goes
    to fold i % folds). ``test_y``: test labels (the validation tasks have them). An
    unavailable task keeps no rows and records ``why`` (reason, fix).
    """
    y = np.asarray(y, dtype="int64")
    if isinstance(folds, int):
        count, folds = folds, np.zeros(len(y), dtype="int64")
        for label in np.unique(y):
            rows = np.flatnonzero(y == label)
            folds[rows] = np.arange(len(rows)) % count
    train = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(y))],
            "text": list(texts),
            "label": [classes[v] for v in y],
            "y": y,
            "fold": np.asarray(folds, dtype="int64"),
        }
    )
    test = pd.DataFrame({"id": [f"t{i}" for i in range(len(test_texts))], "text": list(test_texts)})
    if test_y is not None:
        test["label"] = [classes[v] for v in test_y]
        test["y"] = np.asarray(test_y, dtype="int64")
    if not available:
        train, test = train.iloc[:0], test.iloc[:0]
    meta = PreparedMeta(
        task=task, available=available, classes=list(classes), n_train=len(train), n_test=len(test)
    )
    if not available:
        meta.reason, meta.fix = why
    with contextlib.chdir(root):  # stage outputs are relative to the project folder
        save_prepared(get_task(task, parse_params({})), train, test, meta, {})


def write_learnable(root: Path, n: int = 64, filler: int = 12, folds: int = 2, n_test: int = 6) -> None:
    """A balanced, learnable competition task.

    With ``tokenize.max_tokens`` 10 each stored row is 5 fillers + 4 fillers + the label word,
    so at ``seq_len`` 8 ``head_tail`` / ``tail`` see the label word while ``head`` sees only
    fillers: every row looks the same and validation accuracy is exactly 0.5.
    """
    texts, y = learnable_texts(n, filler=filler)
    test_texts, _ = learnable_texts(n_test, seed=1, filler=filler)
    write_prepared(root, texts, y, test_texts, folds=folds)

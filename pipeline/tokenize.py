"""``tokenize`` stage: a vocabulary fitted on train text only, and integer sequences.

Keras' ``TextVectorization`` does the splitting and lookup (id 0 = padding, 1 = OOV, then
tokens by decreasing train frequency, so "the top K words" is simply ``id < K + 2``).
Sequences are stored unpadded (flat ids + row lengths), keeping the first and last
``tokenize.max_tokens / 2`` tokens of long documents, so a model can later choose its own
length and truncation (head, tail or head+tail) without re-tokenising.

Outputs ``data/features/<task>/``: ``sequences.npz`` and ``vocab.json`` (tokens + settings).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .core.outputs import load_meta, load_prepared, save_sequences
from .core.params import Params
from .core.tasks import Task
from .features.sequences import OOV

log = logging.getLogger(__name__)
# Punctuation becomes its own token: "!" and "?" carry style in fake news.
_PUNCT = r"([!?.,;:\"()\[\]])"


def _standardize(text):
    import tensorflow as tf

    # NUL separates tokens (as clean_text treats control characters): numpy, which Keras
    # turns the vocabulary into, drops trailing NULs, so "a\0" would collide with "a".
    text = tf.strings.regex_replace(text, r"\x00", " ")
    return tf.strings.regex_replace(text, _PUNCT, r" \1 ")


def _vectorizer(vocabulary=None, max_tokens=None):
    import keras

    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=_standardize,
        split="whitespace",
        output_mode="int",
        ragged=True,
        vocabulary=vocabulary,
    )


def _lookup_layer(vocabulary: list[str]):
    """A vectorizer mapping ``vocabulary`` to ids 2, 3, ... and anything else to OOV.

    Keras refuses an empty vocabulary (a train set without tokens, or ``min_count`` above
    every count); a placeholder holding a space, which whitespace splitting never yields,
    then stands in, so every token becomes OOV.
    """
    return _vectorizer(vocabulary=list(vocabulary) or [" "])


def _encode(layer, texts, batch: int = 2048) -> list[np.ndarray]:
    rows: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        ragged = layer(np.asarray(texts[start : start + batch], dtype=object))
        rows.extend(np.asarray(r, dtype=np.int32) for r in ragged.to_list())
    return rows


def _keep_ends(rows: list[np.ndarray], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    half = max_tokens // 2
    kept = [
        r if len(r) <= max_tokens else np.concatenate([r[:half], r[-(max_tokens - half) :]]) for r in rows
    ]
    lengths = np.array([len(r) for r in kept], dtype=np.int32)
    values = np.concatenate(kept).astype(np.int32) if kept else np.zeros(0, np.int32)
    return values, lengths


def fit_vocabulary(train_texts, vocab_size: int, min_count: int) -> list[str]:
    """The ``vocab_size`` most frequent train tokens occurring ``min_count`` times or more."""
    layer = _vectorizer(max_tokens=vocab_size + 2)
    layer.adapt(np.asarray(train_texts, dtype=object), batch_size=2048)
    vocabulary = layer.get_vocabulary()[2:]  # drop "" and "[UNK]"
    if not vocabulary:  # no token at all: the lookup table is empty and cannot encode
        return []
    ids = _encode(layer, train_texts)
    counts = np.bincount(np.concatenate(ids) if ids else np.zeros(0, int), minlength=len(vocabulary) + 2)
    return [token for token, count in zip(vocabulary, counts[2:]) if count >= min_count]


def tokenize(task: Task, params: Params) -> dict:
    """Fit the vocabulary on train text, encode train and test; return the vocab record."""
    meta = load_meta(task)
    settings = params.tokenize.model_dump()
    record = {"task": task.name, "available": meta.available, "settings": settings}
    arrays = {}
    if meta.available:
        train, test, _ = load_prepared(task)
        started = time.perf_counter()
        vocabulary = fit_vocabulary(
            train["text"].tolist(), params.tokenize.vocab_size, params.tokenize.min_count
        )
        layer = _lookup_layer(vocabulary)
        for split, frame in (("train", train), ("test", test)):
            values, lengths = _keep_ends(_encode(layer, frame["text"].tolist()), params.tokenize.max_tokens)
            arrays[f"{split}_values"], arrays[f"{split}_lengths"] = values, lengths
        oov = float(np.mean(arrays["train_values"] == OOV)) if len(arrays["train_values"]) else 0.0
        record.update(
            tokens=vocabulary,
            vocab_size=len(vocabulary) + 2,
            train_oov_rate=round(oov, 4),
            median_train_length=int(np.median(arrays["train_lengths"])),
        )
        # Timings go to the log only: identical outputs on a rerun let DVC skip what follows.
        log.info(
            "[tokenize %s] %d tokens in vocabulary, median length %d, %.1f s",
            task.name,
            len(vocabulary),
            record["median_train_length"],
            time.perf_counter() - started,
        )
    save_sequences(task, arrays, record)
    return record

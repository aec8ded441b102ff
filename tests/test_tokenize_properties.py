"""Property-based tests of the tokenizer (``pipeline.tokenize``).

Arbitrary unicode, control characters, very long tokens and empty strings never crash it, and
its output keeps its invariants: the same input gives the same ids, ids lie in
[1, vocab size) (0 is padding, never stored), stored rows hold at most
``tokenize.max_tokens`` ids, empty text gives an empty row, and a token is OOV exactly when it
is not in the vocabulary.

The expected tokens come from a plain-Python reference of the tokenizer: punctuation becomes
its own token, then the text is split on ASCII whitespace (what TensorFlow's whitespace split
does; it does not split on unicode spaces such as U+00A0 or U+3000) and on NUL.

TensorFlow is slow: every example builds at most two small Keras layers on a tiny corpus, and
the example counts are small, with no deadline.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, example, given, settings, strategies as st

from pipeline.core.outputs import load_sequences
from pipeline.core.tasks import get_task
from pipeline.features.sequences import OOV, PAD
from pipeline.tokenize import (
    _encode,
    _keep_ends,
    _lookup_layer,
    fit_vocabulary,
    tokenize,
)
from tiny_data import tiny_params, write_prepared

# Reproducible and cheap on a shared 2-core machine: fixed examples, no timing limit.
KERAS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMPY = settings(max_examples=200, deadline=None, derandomize=True)
STAGE = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_PUNCT = re.compile(r"([!?.,;:\"()\[\]])")
_SEPARATORS = re.compile(r"[ \t\n\r\x0b\x0c\x00]+")


def reference_tokens(text: str) -> list[str]:
    return [t for t in _SEPARATORS.split(_PUNCT.sub(r" \1 ", text)) if t]


# --------------------------------------------------------------------------- strategies

CHAR = st.characters(exclude_categories=("Cs",))  # any code point a UTF-8 file can hold
WORD = st.one_of(
    st.text(CHAR, min_size=1, max_size=12),  # arbitrary unicode
    st.text(st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")), min_size=1, max_size=4),
    st.sampled_from(["the", "cat", "!", "wow!?", "(x)", "[UNK]", "\x00", "a\u00a0b", "é", "e\u0301"]),
    st.builds(lambda ch, n: ch * n, CHAR, st.integers(2_000, 20_000)),  # very long token
)
SEPARATOR = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", ""])
TEXT = st.one_of(
    st.builds(lambda words, sep: sep.join(words), st.lists(WORD, max_size=6), SEPARATOR),
    st.text(CHAR, max_size=40),
    st.just(""),
)
CORPUS = st.lists(TEXT, min_size=1, max_size=5)
BLANK = st.text(" \t\n\r\x0b\x0c", max_size=5)


def encode(vocabulary: list[str], texts: list[str]) -> list[list[int]]:
    """Encode with a fresh layer, as the tokenize stage does."""
    return [row.tolist() for row in _encode(_lookup_layer(vocabulary), texts)]


# ----------------------------------------------------------------------- fit_vocabulary


@KERAS
@given(corpus=CORPUS, vocab_size=st.integers(1, 8), min_count=st.integers(1, 3))
@example(corpus=[""], vocab_size=5, min_count=1)  # no token at all
@example(corpus=[" \t\n"], vocab_size=5, min_count=1)  # whitespace only
@example(corpus=["a b", "c"], vocab_size=5, min_count=2)  # every token rarer than min_count
@example(corpus=["a\x00 a", "\x00"], vocab_size=5, min_count=1)  # numpy drops trailing NULs
def test_vocabulary_holds_distinct_frequent_train_tokens(corpus, vocab_size, min_count):
    vocabulary = fit_vocabulary(corpus, vocab_size, min_count)
    counts = Counter(t for text in corpus for t in reference_tokens(text))
    assert all(isinstance(t, str) for t in vocabulary)
    assert len(vocabulary) == len(set(vocabulary)) <= vocab_size
    assert all(counts[t] >= min_count for t in vocabulary)  # only train tokens, frequent enough
    ranked = [counts[t] for t in vocabulary]
    assert ranked == sorted(ranked, reverse=True)  # ids follow decreasing train frequency
    if len(counts) <= vocab_size:  # room for every token: exactly the frequent ones are kept
        assert set(vocabulary) == {t for t, n in counts.items() if n >= min_count}


@KERAS
@given(corpus=CORPUS)
def test_fit_vocabulary_is_deterministic(corpus):
    assert fit_vocabulary(corpus, 6, 1) == fit_vocabulary(list(corpus), 6, 1)


# ------------------------------------------------------------------------------- encoding


@KERAS
@given(corpus=CORPUS, unseen=st.lists(TEXT, max_size=3))
def test_ids_match_the_reference_tokens(corpus, unseen):
    # Room for every train token: train text is never OOV; unseen tokens are OOV, and ids lie
    # in [1, vocab size) -- 0 is padding, added later by to_matrix, never a token id.
    vocabulary = fit_vocabulary(corpus, 100, 1)
    ids_of = {t: i for i, t in enumerate(vocabulary, start=2)}
    texts = corpus + unseen
    rows = encode(vocabulary, texts)
    assert len(rows) == len(texts)
    for text, row in zip(texts, rows):
        assert row == [ids_of.get(t, OOV) for t in reference_tokens(text)], repr(text)
        assert all(1 <= i < len(vocabulary) + 2 for i in row)
    for row in rows[: len(corpus)]:
        assert OOV not in row and PAD not in row


@KERAS
@given(corpus=CORPUS, texts=st.lists(TEXT, min_size=1, max_size=4))
def test_encoding_twice_gives_the_same_ids(corpus, texts):
    vocabulary = fit_vocabulary(corpus, 4, 1)
    assert encode(vocabulary, texts) == encode(list(vocabulary), list(texts))


@KERAS
@given(corpus=CORPUS, blank=BLANK)
def test_empty_or_blank_text_encodes_to_an_empty_row(corpus, blank):
    vocabulary = fit_vocabulary(corpus + [blank], 10, 1)
    assert encode(vocabulary, [blank, ""]) == [[], []]


# ------------------------------------------------------------------- _keep_ends (numpy)

ROWS = st.lists(st.lists(st.integers(1, 50), max_size=40).map(lambda r: np.array(r, np.int32)), max_size=6)


@NUMPY
@given(rows=ROWS, max_tokens=st.integers(1, 30))
def test_keep_ends_caps_rows_and_keeps_head_and_tail(rows, max_tokens):
    values, lengths = _keep_ends(rows, max_tokens)
    assert values.dtype == lengths.dtype == np.int32
    assert len(lengths) == len(rows) and lengths.sum() == len(values)
    assert (lengths <= max_tokens).all()
    ends = np.cumsum(lengths)
    half = max_tokens // 2
    for row, end, length in zip(rows, ends, lengths):
        stored = values[end - length : end].tolist()
        if len(row) <= max_tokens:
            assert stored == row.tolist()  # short rows are kept whole
        else:
            assert length == max_tokens
            assert stored == row[:half].tolist() + row[len(row) - (max_tokens - half) :].tolist()


# ------------------------------------------------------------------ the tokenize stage


def _run_stage(folder, train, test, min_count, max_tokens):
    with contextlib.chdir(folder):
        write_prepared(folder, train, [i % 2 for i in range(len(train))], test)
        params = tiny_params(tokenize={"vocab_size": 100, "min_count": min_count, "max_tokens": max_tokens})
        task = get_task("competition", params)
        tokenize(task, params)
        return load_sequences(task)


@STAGE
@given(
    train=CORPUS, test=st.lists(TEXT, max_size=3), min_count=st.integers(1, 2), max_tokens=st.integers(10, 14)
)
@example(train=[""], test=[""], min_count=1, max_tokens=10)
@example(train=["one two", "three"], test=["one"], min_count=2, max_tokens=10)
def test_stage_outputs_keep_their_invariants(tmp_path_factory, train, test, min_count, max_tokens):
    record, arrays = _run_stage(tmp_path_factory.mktemp("tok"), train, test, min_count, max_tokens)
    vocab_size = record["vocab_size"]
    assert vocab_size == len(record["tokens"]) + 2
    for split, texts in (("train", train), ("test", test)):
        values, lengths = arrays[f"{split}_values"], arrays[f"{split}_lengths"]
        assert len(lengths) == len(texts) and lengths.sum() == len(values)
        assert (lengths <= max_tokens).all()
        assert ((values >= 1) & (values < vocab_size)).all()
        for text, length in zip(texts, lengths):
            assert length == min(len(reference_tokens(text)), max_tokens)  # empty text: 0
    # Rerunning on the same input writes the same vocabulary and ids.
    record2, arrays2 = _run_stage(tmp_path_factory.mktemp("tok"), train, test, min_count, max_tokens)
    assert record2["tokens"] == record["tokens"]
    assert all(np.array_equal(arrays[k], arrays2[k]) for k in arrays)


def test_empty_vocabulary_encodes_every_token_as_oov(tmp_path):
    # min_count above every count (or a train set without a single token) leaves no vocabulary;
    # the stage must still write sequences -- all OOV -- instead of a Keras error.
    record, arrays = _run_stage(
        tmp_path, ["alpha beta", "gamma", "   "], ["alpha delta", ""], min_count=2, max_tokens=10
    )
    assert record["tokens"] == [] and record["vocab_size"] == 2
    assert arrays["train_values"].tolist() == [OOV] * 3 and arrays["train_lengths"].tolist() == [2, 1, 0]
    assert arrays["test_values"].tolist() == [OOV] * 2 and arrays["test_lengths"].tolist() == [2, 0]

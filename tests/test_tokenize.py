"""Tests of the ``tokenize`` stage: a train-only vocabulary, unpadded stored sequences, and the
``to_matrix`` / ``effective_length`` helpers the RNNs use to cut them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.outputs import load_sequences
from pipeline.core.tasks import get_task
from pipeline.features.sequences import OOV, PAD, effective_length, to_matrix
from pipeline.tokenize import fit_vocabulary, tokenize
from tiny_data import tiny_params, write_prepared

FEATURES = Path("data/features/competition")

TRAIN = ["the cat sat", "the dog sat", "the cat ran !"]
TEST = ["the zebra sat", "cat"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(project, train=TRAIN, test=TEST, y=None, **tokenize_params):
    write_prepared(project, train, y if y is not None else [i % 2 for i in range(len(train))], test)
    params = tiny_params(tokenize={"min_count": 1, **tokenize_params})
    task = get_task("competition", params)
    record = tokenize(task, params)
    return params, task, record


def _rows(arrays: dict, split: str) -> list[list[int]]:
    values, lengths = arrays[f"{split}_values"], arrays[f"{split}_lengths"]
    ends = np.cumsum(lengths)
    return [values[end - n : end].tolist() for end, n in zip(ends, lengths)]


def _decode(record: dict, rows):
    words = ["<pad>", "<oov>", *record["tokens"]]
    return [[words[i] for i in row] for row in rows]


def test_vocabulary_is_fitted_on_train_only(project):
    _, task, record = _run(project)
    _, arrays = load_sequences(task)
    assert "zebra" not in record["tokens"]  # only in test
    assert record["tokens"][0] == "the"  # most frequent train token gets the first real id
    assert set(record["tokens"]) == {"the", "cat", "sat", "dog", "ran", "!"}
    assert _decode(record, _rows(arrays, "test")) == [["the", "<oov>", "sat"], ["cat"]]
    zebra_id = _rows(arrays, "test")[0][1]
    assert zebra_id == OOV == 1


def test_ids_start_after_padding_and_oov(project):
    _, task, record = _run(project)
    _, arrays = load_sequences(task)
    assert record["vocab_size"] == len(record["tokens"]) + 2
    train_ids = arrays["train_values"]
    assert train_ids.min() >= 2  # every train token is in the vocabulary: no PAD, no OOV
    assert PAD == 0 and PAD not in arrays["test_values"]  # 0 is padding only, never stored
    assert _decode(record, _rows(arrays, "train")) == [s.split() for s in TRAIN]
    assert arrays["train_lengths"].tolist() == [3, 3, 4]


def test_min_count_drops_rare_words(project):
    _, task, record = _run(project, min_count=2)
    _, arrays = load_sequences(task)
    assert set(record["tokens"]) == {"the", "cat", "sat"}  # dog, ran, ! occur once
    assert _decode(record, _rows(arrays, "train")) == [
        ["the", "cat", "sat"],
        ["the", "<oov>", "sat"],
        ["the", "cat", "<oov>", "<oov>"],
    ]


def test_fit_vocabulary_keeps_the_most_frequent(project):
    texts = ["a a a b b c", "a b d"]
    assert fit_vocabulary(texts, vocab_size=2, min_count=1) == ["a", "b"]
    assert fit_vocabulary(texts, vocab_size=10, min_count=2) == ["a", "b"]


def test_punctuation_becomes_its_own_token(project):
    _, task, record = _run(project, train=["wow!yes", "wow!yes"], test=["(wow)"])
    _, arrays = load_sequences(task)
    assert _decode(record, _rows(arrays, "train")) == [["wow", "!", "yes"]] * 2
    assert _decode(record, _rows(arrays, "test")) == [["<oov>", "wow", "<oov>"]]


def test_vocab_json_holds_tokens_and_settings(project):
    params, _, record = _run(project, max_tokens=10)
    saved = json.loads((FEATURES / "vocab.json").read_text())
    assert saved["tokens"] == record["tokens"]
    assert (
        saved["settings"]
        == params.tokenize.model_dump()
        == {"vocab_size": 100, "min_count": 1, "max_tokens": 10}
    )
    assert saved["available"] is True
    assert saved["vocab_size"] == len(saved["tokens"]) + 2
    assert (FEATURES / "sequences.npz").exists()


def test_long_documents_keep_their_head_and_tail(project):
    words = [f"w{i}" for i in range(14)]
    _, task, record = _run(project, train=[" ".join(words), "w0"], test=[" ".join(words)], max_tokens=10)
    _, arrays = load_sequences(task)
    kept = words[:5] + words[-5:]
    assert _decode(record, _rows(arrays, "train"))[0] == kept
    assert _decode(record, _rows(arrays, "test"))[0] == kept
    assert arrays["train_lengths"].tolist() == [10, 1]


def test_unavailable_task_writes_empty_outputs(project):
    write_prepared(project, TRAIN, [0, 1, 0], TEST, available=False)
    params = tiny_params()
    task = get_task("competition", params)
    record = tokenize(task, params)
    assert record["available"] is False
    saved, arrays = load_sequences(task)
    assert saved["available"] is False and "tokens" not in saved
    assert arrays == {}


# ---------------------------------------------------------------- to_matrix

# Three stored rows: 6 ids, 2 ids, none.
VALUES = np.array([5, 6, 7, 8, 9, 10, 11, 12], dtype=np.int32)
LENGTHS = np.array([6, 2, 0], dtype=np.int32)


@pytest.mark.parametrize(
    "truncate, first_row",
    [
        ("head", [5, 6, 7, 8]),
        ("tail", [7, 8, 9, 10]),
        ("head_tail", [5, 6, 9, 10]),
    ],
)
def test_to_matrix_truncation_and_pre_padding(truncate, first_row):
    out = to_matrix(VALUES, LENGTHS, 4, truncate)
    assert out.dtype == np.int32
    assert out.tolist() == [first_row, [0, 0, 11, 12], [0, 0, 0, 0]]


def test_to_matrix_head_tail_odd_length_keeps_more_tail():
    assert to_matrix(VALUES, LENGTHS, 5, "head_tail")[0].tolist() == [5, 6, 8, 9, 10]


def test_to_matrix_short_rows_are_pre_padded_whatever_the_truncation():
    for truncate in ("head", "tail", "head_tail"):
        assert to_matrix(VALUES, LENGTHS, 8, truncate).tolist() == [
            [0, 0, 5, 6, 7, 8, 9, 10],
            [0] * 6 + [11, 12],
            [0] * 8,
        ]


def test_to_matrix_vocab_size_maps_rare_ids_to_oov():
    out = to_matrix(VALUES, LENGTHS, 4, "tail", vocab_size=9)
    assert out.tolist() == [[7, 8, OOV, OOV], [0, 0, OOV, OOV], [0, 0, 0, 0]]


def test_to_matrix_invalid_truncate():
    with pytest.raises(ValueError, match="truncate"):
        to_matrix(VALUES, LENGTHS, 4, "middle")


# ---------------------------------------------------------------- effective_length


def test_effective_length_caps_at_95th_percentile_rounded_up_to_8():
    lengths = np.arange(1, 101)  # 95th percentile 95.05 -> 96
    assert effective_length(300, lengths) == 96
    assert effective_length(50, lengths) == 50  # seq_len smaller than the cap
    assert effective_length(300, np.full(10, 17)) == 24
    assert effective_length(300, np.full(10, 16)) == 16
    assert effective_length(300, np.full(10, 3)) == 8  # never below 8 ...


def test_effective_length_without_lengths_is_seq_len():
    assert effective_length(300, np.zeros(0, np.int32)) == 300


@pytest.mark.parametrize("seq_len", [4, 5, 8, 20])
def test_effective_length_never_exceeds_seq_len(seq_len):
    # RNNConfig allows seq_len >= 4; the floor of 8 must not lengthen a shorter configured seq_len.
    assert effective_length(seq_len, np.full(10, 3)) <= seq_len
    assert effective_length(seq_len, np.full(10, 100)) <= seq_len

"""Tests of the embed stage: word2vec vectors from the task's own token ids, their layout,
reproducibility across processes, and how the RNNs take them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core.errors import ParamsError, PipelineError
from pipeline.core.outputs import load_vectors
from pipeline.core.params import RNNConfig
from pipeline.core.tasks import get_task
from pipeline.embed import train_vectors
from pipeline.models import rnn
from tiny_data import featurize, tiny_params, write_learnable

# Two topics, each with its own context words (ids 10-14 and 15-19) around one of two
# fillers: 2/3 in the first topic, 4/5 in the second. Ids 6-9 and 20 never occur.
VOCAB = 21


def _corpus(n: int = 2000) -> list[list[str]]:
    rng = np.random.default_rng(0)
    docs = []
    for i in range(n):
        context, fillers = (range(10, 15), (2, 3)) if i % 2 == 0 else (range(15, 20), (4, 5))
        words = [str(w) for w in rng.choice(context, 6)]
        words.insert(3, str(rng.choice(fillers)))
        docs.append(words)
    return docs


def _vectors(**overrides):
    settings = dict(vocab_size=VOCAB, dim=6, window=2, epochs=20, architecture="cbow", seed=3)
    return train_vectors(_corpus(), **{**settings, **overrides})


def _cosine(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_have_one_row_per_id_and_a_zero_padding_row():
    vectors, learnt = _vectors()
    assert vectors.shape == (VOCAB, 6) and vectors.dtype == np.float32
    assert learnt == 14  # ids 2-5 and 10-19 occur; 0 (padding), 1 (OOV) and the rest do not
    assert np.all(vectors[0] == 0)
    assert np.all(np.isfinite(vectors)) and np.any(vectors[20] != 0)  # unseen id: random start


def test_words_used_alike_get_closer_vectors():
    vectors, _ = _vectors()
    assert _cosine(vectors[2], vectors[3]) > 0.9 > 0.5 > _cosine(vectors[2], vectors[4])
    assert _cosine(vectors[4], vectors[5]) > 0.9 > 0.5 > _cosine(vectors[3], vectors[5])


def test_columns_are_principal_axes_so_leading_columns_carry_most_variance():
    vectors, _ = _vectors(dim=4)
    variances = vectors[[2, 3, 4, 5, *range(10, 20)]].var(axis=0)
    assert np.all(np.diff(variances) <= 1e-7)


def test_skipgram_and_bad_architecture():
    vectors, learnt = _vectors(architecture="skipgram")
    assert vectors.shape == (VOCAB, 6) and learnt == 14
    with pytest.raises(ValueError, match="architecture must be 'cbow' or 'skipgram', got 'glove'"):
        _vectors(architecture="glove")


@pytest.mark.slow
def test_same_seed_gives_the_same_vectors_in_another_process(tmp_path):
    # gensim would seed each word's start vector from Python's per-process string hash.
    script = (
        "import sys, numpy as np; sys.path[:0] = ['.', 'tests']\n"
        "from test_embed import _vectors\n"
        f"np.save({str(tmp_path / 'v.npy')!r}, _vectors()[0])\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", script], check=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__))
    )
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), _vectors()[0])
    assert not np.array_equal(_vectors(seed=4)[0], _vectors()[0])


@pytest.mark.slow
def test_stage_writes_vectors_the_rnn_trainer_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path)
    params = tiny_params()
    task = get_task("competition", params)
    featurize(task, params)
    record = json.loads((task.embeddings_dir / "embed.json").read_text())
    vocab_size = json.loads((task.features_dir / "vocab.json").read_text())["vocab_size"]
    assert record["available"] and record["method"] == "word2vec" and record["learnt"] > 0
    assert load_vectors(task).shape == (vocab_size, params.embed.dim)


def test_rerun_writes_byte_identical_outputs(tmp_path, monkeypatch):
    """tokenize + embed run twice write the same bytes (no timings in the outputs), so a
    rerun DVC forces (e.g. after a docstring edit) leaves the stages after them up to date."""
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path)
    params = tiny_params()
    task = get_task("competition", params)

    def outputs():
        return {
            path.name: path.read_bytes()
            for folder in (task.features_dir, task.embeddings_dir)
            for path in sorted(folder.iterdir())
        }

    featurize(task, params)
    first = outputs()
    featurize(task, params)
    assert set(first) == {"sequences.npz", "vocab.json", "vectors.npy", "embed.json"}
    assert outputs() == first


def test_method_none_writes_no_vectors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path)
    params = tiny_params(embed={"method": "none"})
    task = get_task("competition", params)
    featurize(task, params)
    assert not (task.embeddings_dir / "vectors.npy").exists()
    assert load_vectors(task) is None


def test_training_before_the_embed_stage_names_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = get_task("competition", tiny_params())
    with pytest.raises(PipelineError, match="python -m pipeline embed --task competition"):
        load_vectors(task)


def test_vectors_narrower_than_the_embedding_are_rejected_in_params():
    with pytest.raises(ParamsError, match="embed.dim=4 is narrower than embedding_dim=8"):
        tiny_params(neural={"defaults": {"embedding_dim": 8}}, tune={"space": {"embedding_dim": [8]}})
    tiny_params(
        embed={"method": "none", "dim": 4},
        neural={"defaults": {"embedding_dim": 8}},
        tune={"space": {"embedding_dim": [8]}},
    )  # random start: any width


def test_model_embedding_starts_from_the_leading_rows_and_columns():
    vectors = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    config = RNNConfig(embedding_dim=4, units=4, layers=1, dense_units=0, seq_len=8, vocab_size=100)
    model = rnn.build_model("gru", config, 2, 20, vectors)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], vectors[:20, :4])
    with pytest.raises(ValueError, match=r"vectors of shape \(30, 8\) cannot initialise a \(40, 4\)"):
        rnn.build_model("gru", config, 2, 40, vectors)

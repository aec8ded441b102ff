"""``embed`` stage: word vectors trained on the task's own text, to initialise the RNNs.

Pretrained vectors (GloVe, fastText) cannot be assumed here (no download), so gensim's
word2vec learns them from the task's token sequences, train and test text alike. That
uses no labels, as the TF-IDF vectorisers' document frequencies use none. A warm start
helps where the corpus is large (IMDB; measured in docs/benchmarks.md).

The vectors are rotated onto their principal axes, so their first ``k`` columns are the
best ``k``-dimensional summary: an RNN with ``embedding_dim`` k < ``embed.dim`` takes
those. Outputs ``data/embeddings/<task>/``: ``vectors.npy`` (row i = token id i; the
padding row is zero) and ``embed.json``.
"""

from __future__ import annotations

import logging
import time
import zlib

import numpy as np

from .core.outputs import load_sequences, save_vectors
from .core.params import Params
from .core.tasks import Task
from .features.sequences import PAD

log = logging.getLogger(__name__)
# Keras' Embedding starts from uniform(-0.05, 0.05); vectors are scaled to a similar size so
# the recurrent layers see inputs of the magnitude their initialisation expects.
_TARGET_STD = 0.05


def _documents(arrays: dict[str, np.ndarray]) -> list[list[str]]:
    """Token ids as word strings (gensim's vocabulary keys), train then test documents."""
    docs = []
    for split in ("train", "test"):
        values, lengths = arrays[f"{split}_values"], arrays[f"{split}_lengths"]
        for row in np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []:
            docs.append(row.astype(str).tolist())
    return docs


def _stable_hash(word: str) -> int:
    # gensim seeds each word's initial vector from hash(word + seed); Python's str hash
    # changes with every process (PYTHONHASHSEED), which would make the vectors irreproducible.
    return zlib.crc32(word.encode())


def _epoch_logger(epochs: int, label: str):
    """A gensim callback logging each epoch and the time left (gensim's own log is per second)."""
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochLogger(CallbackAny2Vec):
        def __init__(self):
            self.started, self.done = time.perf_counter(), 0

        def on_epoch_end(self, model):
            self.done += 1
            spent = time.perf_counter() - self.started
            log.info(
                "[embed %s] epoch %d/%d, %.0f s, about %.0f s left",
                label,
                self.done,
                epochs,
                spent,
                spent / self.done * (epochs - self.done),
            )

    return EpochLogger()


def train_vectors(
    docs: list[list[str]],
    vocab_size: int,
    dim: int,
    window: int,
    epochs: int,
    architecture: str,
    seed: int,
    label: str = "",
) -> tuple[np.ndarray, int]:
    """``(vocab_size, dim)`` vectors for ids ``0 .. vocab_size-1`` and how many were learnt.

    Ids that never occur get small seeded random vectors; the padding id stays zero.
    """
    from gensim.models import Word2Vec
    from sklearn.decomposition import PCA

    if architecture not in ("cbow", "skipgram"):
        raise ValueError(f"architecture must be 'cbow' or 'skipgram', got {architecture!r}")
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, _TARGET_STD, (vocab_size, dim)).astype(np.float32)
    ids = np.zeros(0, dtype=int)
    if any(docs):
        logging.getLogger("gensim").setLevel(logging.WARNING)
        # One worker: several threads make word2vec's updates depend on thread scheduling.
        model = Word2Vec(
            docs,
            vector_size=dim,
            window=window,
            min_count=1,
            epochs=epochs,
            seed=seed,
            sg=int(architecture == "skipgram"),
            workers=1,
            hashfxn=_stable_hash,
            callbacks=[_epoch_logger(epochs, label)],
        )
        ids = np.array([int(word) for word in model.wv.index_to_key])
        learnt = model.wv.vectors
        if len(ids) > dim:  # principal axes first: vectors[:, :k] is the best k-dim summary
            learnt = PCA(n_components=dim, random_state=seed).fit_transform(learnt)
        learnt = learnt * (_TARGET_STD / max(float(learnt.std()), 1e-12))
        vectors[ids, : learnt.shape[1]] = learnt
    vectors[PAD] = 0.0
    return vectors, len(ids)


def embed(task: Task, params: Params) -> dict:
    """Train the word vectors of ``task`` (or record that ``embed.method`` is ``none``)."""
    p = params.embed
    record_in, arrays = load_sequences(task)
    record = {
        "task": task.name,
        "method": p.method,
        "settings": p.model_dump(),
        "available": bool(record_in["available"]) and p.method != "none",
    }
    vectors = None
    if record["available"]:
        started = time.perf_counter()
        docs = _documents(arrays)
        log.info(
            "[embed %s] word2vec (%s, %d dims, %d epochs) on %d documents, %d tokens",
            task.name,
            p.architecture,
            p.dim,
            p.epochs,
            len(docs),
            sum(map(len, docs)),
        )
        vectors, learnt = train_vectors(
            docs,
            record_in["vocab_size"],
            p.dim,
            p.window,
            p.epochs,
            p.architecture,
            params.seed,
            label=task.name,
        )
        record.update(vocab_size=int(record_in["vocab_size"]), learnt=learnt)
        # Timings go to the log only: identical outputs on a rerun let DVC skip what follows.
        log.info(
            "[embed %s] %d of %d token vectors learnt in %.1f s",
            task.name,
            learnt,
            record_in["vocab_size"],
            time.perf_counter() - started,
        )
    save_vectors(task, vectors, record)
    return record

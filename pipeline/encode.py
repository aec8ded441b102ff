"""``encode`` stage: frozen pretrained-encoder embeddings of a task's train and test texts.

Writes ``data/encoded/<task>/`` (through :func:`pipeline.core.outputs.save_encoded`):
``train.npy`` and ``test.npy`` (masked mean of the last layer, or the last
``transformer.pool_layers`` layers' means joined by ``transformer.layer_pooling``, one float32
row per document; no labels involved) and ``encode.json`` (checkpoint name, sha256, licence,
precision, settings). The encoder itself is :mod:`pipeline.features.encoder`. A task that runs
no frozen-features model (``models.transformer``, ``transformer.tasks``) gets a record saying
so, and no arrays.
"""

from __future__ import annotations

import logging
import time

from .core.outputs import load_meta, load_prepared, save_encoded
from .core.params import Params
from .core.tasks import Task
from .features.encoder import Encoder, resolve_checkpoint
from .features.precision import choose_precision

log = logging.getLogger(__name__)


def wanted(task: Task, params: Params, family: str) -> bool:
    """Whether ``task`` runs any ``family`` ("frozen" / "finetune") transformer model."""
    from .models import MODELS

    return task.name in params.transformer.tasks and any(
        MODELS[m].family == family for m in params.models.transformer
    )


def encode(task: Task, params: Params) -> dict:
    """Write the frozen embeddings of ``task``'s train and test texts (see the module docstring)."""
    p = params.transformer
    meta = load_meta(task)
    record = {
        "task": task.name,
        "available": meta.available,
        "max_tokens": p.max_tokens,
        "long_text": p.long_text,
        "pool_layers": p.pool_layers,
        "layer_pooling": p.layer_pooling,
    }
    if p.long_text == "windows":
        record.update(max_windows=p.max_windows, window_overlap=p.window_overlap)
    if not meta.available:
        record["reason"] = meta.reason
    elif not wanted(task, params, "frozen"):
        record.update(
            available=False,
            reason="no frozen-features model for this task (models.transformer, transformer.tasks)",
        )
    arrays = {}
    if record["available"]:
        train_df, test_df, _ = load_prepared(task)
        checkpoint = resolve_checkpoint(p.checkpoint, p.sha256)
        record["checkpoint"] = checkpoint.describe()
        precision = choose_precision(p.precision)
        record.update(precision.describe())
        encoder = Encoder(checkpoint, precision.policy, p.pool_layers, p.layer_pooling)
        for split, frame in (("train", train_df), ("test", test_df)):
            started = time.perf_counter()
            arrays[split] = encoder.embed(
                frame["text"].tolist(),
                p.max_tokens,
                p.batch_size,
                f"{task.name} {split}",
                p.long_text,
                p.window_overlap,
                p.max_windows,
            )
            seconds = time.perf_counter() - started
            log.info(
                "[encode %s] %d %s texts in %.1f s (%.1f texts/s)",
                task.name,
                len(frame),
                split,
                seconds,
                len(frame) / max(seconds, 1e-9),
            )
    save_encoded(task, arrays, record)
    return record

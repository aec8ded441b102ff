"""What the Keras model families (:mod:`.rnn`, :mod:`.transformer`) share: seeding and
deterministic ops, and one progress line per epoch.

Keras and TensorFlow are imported inside the functions, and the TF-IDF family never imports
this module (an import-linter contract in ``make lint``).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def set_determinism(seed: int, threads: int = 0) -> None:
    """Seed Python/NumPy/TensorFlow and make TensorFlow ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process
            pass


def epoch_line(tag: str, epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    """``[tag] epoch 3/8 loss 0.4123 val_loss 0.4410 ... 4.1s`` (``epoch`` counted from 1)."""
    values = " ".join(
        f"{name} {value:.4g}" if name == "learning_rate" else f"{name} {value:.4f}"
        for name, value in (logs or {}).items()
    )
    return f"[{tag}] epoch {epoch}/{epochs} {values} {seconds:.1f}s"


def epoch_logger(tag: str):
    """A Keras callback logging :func:`epoch_line` after every epoch (run Keras with ``verbose=0``)."""
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            log.info(
                epoch_line(tag, epoch + 1, self.params["epochs"], logs, time.perf_counter() - self.started)
            )

    return EpochLog()

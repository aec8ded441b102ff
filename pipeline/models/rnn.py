"""Stacked LSTM / GRU classifiers (Keras 3 on TensorFlow).

embedding → spatial dropout → N recurrent layers (optionally bidirectional) → max + mean
pooling of the last layer's sequence, concatenated with its final state → dense head →
sigmoid (binary) or softmax (multi-class). The embedding starts from the word2vec vectors
of the ``embed`` stage when there are any, and keeps training.

The recurrent layers keep Keras' defaults (tanh/sigmoid, no recurrent dropout, no mask;
sequences are pre-padded), the configuration that runs on cuDNN kernels on a GPU.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..params import Neural, Params, RNNConfig

log = logging.getLogger(__name__)


def set_determinism(seed: int, threads: int = 0) -> None:
    """Seed Python/NumPy/TensorFlow and make TensorFlow ops deterministic."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process
            pass


def build_model(
    kind: str, config: RNNConfig, n_classes: int, vocab_size: int, vectors: np.ndarray | None = None
):
    """A compiled Keras model; ``kind`` is ``"lstm"`` or ``"gru"``.

    ``vectors`` (``(>= vocab_size, >= embedding_dim)``, see :mod:`pipeline.embed`) initialise
    the embedding: its first ``vocab_size`` rows and ``embedding_dim`` columns. It still trains.
    """
    import keras
    from keras import layers

    if kind not in ("lstm", "gru"):
        raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
    cell = layers.LSTM if kind == "lstm" else layers.GRU
    inputs = keras.Input(shape=(config.seq_len,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(inputs)
    x = layers.SpatialDropout1D(config.spatial_dropout)(x)
    for i in range(config.layers):
        last = i == config.layers - 1
        rnn = cell(config.units, return_sequences=True, return_state=last, name=f"{kind}_{i}")
        out = layers.Bidirectional(rnn, name=f"bi_{kind}_{i}")(x) if config.bidirectional else rnn(x)
        if not last:
            x = out
            continue
        x, *states = out
        # LSTM returns (h, c) per direction, GRU h: keep the hidden states h.
        per_direction = 2 if kind == "lstm" else 1
        hidden = states[::per_direction]
    pooled = [layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x), *hidden]
    x = layers.Concatenate()(pooled)
    x = layers.Dropout(config.dropout)(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu")(x)
        x = layers.Dropout(config.dropout)(x)
    binary = n_classes == 2
    outputs = layers.Dense(1 if binary else n_classes, activation="sigmoid" if binary else "softmax")(x)
    model = keras.Model(inputs, outputs, name=f"stacked_{kind}")
    if vectors is not None:
        if vectors.shape[0] < vocab_size or vectors.shape[1] < config.embedding_dim:
            raise ValueError(
                f"vectors of shape {vectors.shape} cannot initialise a "
                f"({vocab_size}, {config.embedding_dim}) embedding"
            )
        model.get_layer("embedding").set_weights([vectors[:vocab_size, : config.embedding_dim]])
    return _compile(model, config)


def _compile(model, config: RNNConfig):
    import keras

    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        jit_compile=False,
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Create the optimizer's and the metric's variables now: created inside the first train
    # step, they make TensorFlow trace that step twice (a second per model). Same weights.
    if hasattr(model, "_symbolic_build"):
        model._symbolic_build(data_batch=(np.zeros((1, config.seq_len), "int32"), np.zeros(1), None))
    return model


# The lecture-style reference model (Keras book/courses): top 5,000 words, sequences padded
# and truncated at the front to 300 (pad_sequences' defaults), Embedding(5000, 100) →
# LSTM(100) → Dense. Issue-3's tuned models must beat it on the same folds.
BASELINE = RNNConfig(
    embedding_dim=100,
    units=100,
    layers=1,
    bidirectional=False,
    dropout=0.0,
    spatial_dropout=0.0,
    dense_units=0,
    learning_rate=1e-3,
    batch_size=128,
    seq_len=300,
    vocab_size=5000,
    truncate="tail",
)


def build_baseline(kind: str, config: RNNConfig, n_classes: int, vocab_size: int):
    """Embedding → one LSTM (last state) → Dense, compiled with Adam."""
    import keras
    from keras import layers

    binary = n_classes == 2
    model = keras.Sequential(
        [
            keras.Input(shape=(config.seq_len,), dtype="int32"),
            layers.Embedding(vocab_size, config.embedding_dim),
            layers.LSTM(config.units),
            layers.Dense(1 if binary else n_classes, activation="sigmoid" if binary else "softmax"),
        ],
        name="lstm_baseline",
    )
    return _compile(model, config)


def predict_proba(model, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities ``(rows, n_classes)``, binary models included."""
    proba = model.predict(X, batch_size=batch_size, verbose=0).astype(np.float64)
    return np.column_stack([1 - proba[:, 0], proba[:, 0]]) if proba.shape[1] == 1 else proba


def fit(model, X, y, X_valid, y_valid, neural: Neural, batch_size: int, callbacks=(), tag: str = "rnn"):
    """Train for at most ``neural.epochs`` with early stopping on the validation loss
    (``neural.patience`` epochs), restoring the best weights; after an epoch without
    improvement the learning rate is multiplied by ``neural.reduce_lr`` (0 = never).
    One log line per epoch, starting ``[tag]``, instead of Keras' progress bars."""
    import keras

    schedule = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=neural.patience, restore_best_weights=True)
    ]
    if neural.reduce_lr:
        # The loss often turns after 2-3 epochs while a smaller step still gains; a second
        # epoch without gain still stops training.
        schedule.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=neural.reduce_lr, patience=1, verbose=0
            )
        )
    return model.fit(
        X,
        y,
        validation_data=(X_valid, y_valid),
        epochs=neural.epochs,
        batch_size=batch_size,
        callbacks=[*schedule, epoch_logger(tag), *callbacks],
        verbose=0,
        shuffle=True,
    )


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


def fold_trainer(
    kind: str,
    task,
    params: Params,
    train,
    test,
    n_classes: int,
    config: RNNConfig | None = None,
    baseline: bool = False,
):
    """Per-fold trainer for the registry: the tuned config (or ``neural.defaults``)."""
    from ..embed import load_vectors
    from ..tokenize import effective_length, load_sequences, to_matrix
    from ..tune import best_config

    config = config or best_config(task, kind, params)
    record, arrays = load_sequences(task)
    vocab_size = min(config.vocab_size, record["vocab_size"])
    config = config.model_copy(update={"seq_len": effective_length(config.seq_len, arrays["train_lengths"])})
    X = to_matrix(
        arrays["train_values"], arrays["train_lengths"], config.seq_len, config.truncate, vocab_size
    )
    X_test = to_matrix(
        arrays["test_values"], arrays["test_lengths"], config.seq_len, config.truncate, vocab_size
    )
    y = train["y"].to_numpy()
    vectors = None if baseline else load_vectors(task)  # the lecture baseline starts random
    log.info(
        "%s config: %s; embedding from %s",
        kind,
        config.model_dump(),
        "word2vec vectors" if vectors is not None else "random initialisation",
    )

    # Averaging a few seeds removes much of an RNN's seed-to-seed noise (docs/benchmarks.md).
    # The lecture baseline trains as taught: one model, Adam at a constant rate.
    work = task.rnn_work(params)
    seeds = [params.seed] if baseline else [params.seed + k for k in range(work.seeds)]
    schedule = work.schedule(params.neural)
    if baseline:
        schedule = schedule.model_copy(update={"reduce_lr": 0.0})

    def fit_predict(train_idx: np.ndarray, valid_idx: np.ndarray):
        import keras

        X_train, y_train, X_valid, y_valid = X[train_idx], y[train_idx], X[valid_idx], y[valid_idx]
        valid_sum, test_sum, fit_predict.epochs = 0.0, 0.0, []  # per-epoch curves for the report
        for seed in seeds:
            set_determinism(seed, params.neural.threads)
            if baseline:
                model = build_baseline(kind, config, n_classes, vocab_size)
            else:
                model = build_model(kind, config, n_classes, vocab_size, vectors)
            tag = f"{getattr(fit_predict, 'tag', kind)} seed {seed}"  # train sets the fold's tag
            curves = fit(
                model, X_train, y_train, X_valid, y_valid, schedule, config.batch_size, tag=tag
            ).history
            fit_predict.epochs += [
                {
                    "seed": seed,
                    "epoch": epoch + 1,
                    **{name: float(values[epoch]) for name, values in curves.items()},
                }
                for epoch in range(len(curves["loss"]))
            ]
            valid_sum = valid_sum + predict_proba(model, X_valid)
            test_sum = test_sum + predict_proba(model, X_test)
            keras.backend.clear_session()
        return valid_sum / len(seeds), test_sum / len(seeds)

    return fit_predict


def lstm(task, params, train, test, n_classes):
    return fold_trainer("lstm", task, params, train, test, n_classes)


def gru(task, params, train, test, n_classes):
    return fold_trainer("gru", task, params, train, test, n_classes)


def lstm_baseline(task, params, train, test, n_classes):
    # As taught, but like every RNN here its 300 steps are capped at the 95th percentile of
    # train lengths (tokenize.effective_length): the cap only drops padding.
    return fold_trainer("lstm", task, params, train, test, n_classes, config=BASELINE, baseline=True)

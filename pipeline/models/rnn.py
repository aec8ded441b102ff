"""Stacked LSTM / GRU classifiers (Keras 3 on TensorFlow).

embedding → spatial dropout → N recurrent layers (optionally bidirectional) → max + mean
pooling of the last layer's sequence, concatenated with its final state → dense head →
sigmoid (binary) or softmax (multi-class). The embedding starts from the word2vec vectors
of the ``embed`` stage when there are any, and keeps training.

The recurrent layers keep Keras' defaults (tanh/sigmoid, no recurrent dropout, no mask;
sequences are pre-padded), the configuration that runs on cuDNN kernels on a GPU.

:func:`run` is the one path from tokens to probabilities, shared by the ``tune`` stage's
trials (:mod:`pipeline.tuning.trials`) and the ``train`` stage's folds (:class:`FoldTrainer`); the
config comes from the caller (training: the tuned one, read by :func:`tuned_plan`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..core.keras_adapter import build_training_state
from ..core.params import Neural, Params, RNNConfig
from . import FoldPlan
from .common import Fold, FoldResult
from .keras_training import epoch_logger, set_determinism

log = logging.getLogger(__name__)


def build_model(
    cell: str, config: RNNConfig, n_classes: int, vocab_size: int, vectors: np.ndarray | None = None
):
    """A compiled Keras model; ``cell`` (the recurrent layer) is ``"lstm"`` or ``"gru"``.

    ``vectors`` (``(>= vocab_size, >= embedding_dim)``, see :mod:`pipeline.embed`) initialise
    the embedding: its first ``vocab_size`` rows and ``embedding_dim`` columns. It still trains.
    """
    import keras
    from keras import layers

    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
    recurrent = layers.LSTM if cell == "lstm" else layers.GRU
    inputs = keras.Input(shape=(config.seq_len,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(inputs)
    x = layers.SpatialDropout1D(config.spatial_dropout)(x)
    for i in range(config.layers):
        last = i == config.layers - 1
        rnn = recurrent(config.units, return_sequences=True, return_state=last, name=f"{cell}_{i}")
        out = layers.Bidirectional(rnn, name=f"bi_{cell}_{i}")(x) if config.bidirectional else rnn(x)
        if not last:
            x = out
            continue
        x, *states = out
        # LSTM returns (h, c) per direction, GRU h: keep the hidden states h.
        per_direction = 2 if cell == "lstm" else 1
        hidden = states[::per_direction]
    pooled = [layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x), *hidden]
    x = layers.Concatenate()(pooled)
    x = layers.Dropout(config.dropout)(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu")(x)
        x = layers.Dropout(config.dropout)(x)
    binary = n_classes == 2
    outputs = layers.Dense(1 if binary else n_classes, activation="sigmoid" if binary else "softmax")(x)
    model = keras.Model(inputs, outputs, name=f"stacked_{cell}")
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
    build_training_state(model, np.zeros((1, config.seq_len), "int32"), np.zeros(1))
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


def build_baseline(cell: str, config: RNNConfig, n_classes: int, vocab_size: int):
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


@dataclass(frozen=True)
class Tokens:
    """A task's token sequences (the ``tokenize`` stage) and its vocabulary size."""

    vocab_size: int
    arrays: dict[str, np.ndarray]

    def fit_config(self, config: RNNConfig) -> tuple[RNNConfig, int]:
        """``config`` with ``seq_len`` capped by :func:`pipeline.tokenize.effective_length`,
        and the embedding's vocabulary size (``config.vocab_size`` at most)."""
        from ..features.sequences import effective_length

        seq_len = effective_length(config.seq_len, self.arrays["train_lengths"])
        return config.model_copy(update={"seq_len": seq_len}), min(config.vocab_size, self.vocab_size)

    def token_matrix(self, split: str, config: RNNConfig, vocab_size: int) -> np.ndarray:
        """The ``split`` ("train" or "test") rows as ``config`` reads them."""
        from ..features.sequences import to_matrix

        values, lengths = self.arrays[f"{split}_values"], self.arrays[f"{split}_lengths"]
        return to_matrix(values, lengths, config.seq_len, config.truncate, vocab_size)


def load_tokens(task) -> Tokens:
    """The ``tokenize`` stage's sequences of ``task``."""
    from ..core.outputs import load_sequences

    record, arrays = load_sequences(task)
    return Tokens(record["vocab_size"], arrays)


@dataclass(frozen=True)
class Network:
    """The model to build: recurrent cell, config, data shape, the embedding's start."""

    cell: str  # "lstm" or "gru"
    config: RNNConfig
    n_classes: int
    vocab_size: int
    vectors: np.ndarray | None = None  # word vectors (the lecture baseline starts random)
    baseline: bool = False  # the lecture-style reference instead of the stacked model

    def build(self):
        if self.baseline:
            return build_baseline(self.cell, self.config, self.n_classes, self.vocab_size)
        return build_model(self.cell, self.config, self.n_classes, self.vocab_size, self.vectors)


def run(
    network: Network,
    seed: int,
    threads: int,
    schedule: Neural,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    predict: list[np.ndarray],
    tag: str,
    callbacks: tuple = (),
) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Train one model and predict, the one path of tuning trials and training folds:
    seed → deterministic TensorFlow → build → :func:`fit` on ``train`` with early stopping
    on ``valid`` (one ``[tag]`` line per epoch) → class probabilities of each matrix in
    ``predict`` → Keras' session cleared (also on error). Returns the per-epoch curves
    (Keras' ``history.history``) and the probabilities."""
    import keras

    try:
        set_determinism(seed, threads)
        model = network.build()
        history = fit(model, *train, *valid, schedule, network.config.batch_size, callbacks, tag)
        return history.history, [predict_proba(model, X) for X in predict]
    finally:
        keras.backend.clear_session()


class FoldTrainer:
    """The registry's per-fold trainer for an RNN: one model per seed, probabilities
    averaged; the result carries each seed's per-epoch curves (the report plots them)."""

    def __init__(
        self,
        network: Network,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        seeds: list[int],
        schedule: Neural,
        threads: int,
    ):
        self.network, (self.X, self.X_test, self.y) = network, data
        self.seeds, self.schedule, self.threads = seeds, schedule, threads

    def __call__(self, fold: Fold) -> FoldResult:
        train_idx, valid_idx, tag = fold.train_idx, fold.valid_idx, fold.tag or self.network.cell
        X_valid, y_valid = self.X[valid_idx], self.y[valid_idx]
        valid, test, epochs = [], [], []
        for seed in self.seeds:
            curves, (valid_proba, test_proba) = run(
                self.network,
                seed,
                self.threads,
                self.schedule,
                (self.X[train_idx], self.y[train_idx]),
                (X_valid, y_valid),
                [X_valid, self.X_test],
                tag=f"{tag} seed {seed}",
            )
            epochs += [
                {
                    "seed": seed,
                    "epoch": epoch + 1,
                    **{name: float(values[epoch]) for name, values in curves.items()},
                }
                for epoch in range(len(curves["loss"]))
            ]
            valid.append(valid_proba)
            test.append(test_proba)
        return FoldResult(_seed_mean(valid), _seed_mean(test), tuple(epochs))


def _seed_mean(probas: list[np.ndarray]) -> np.ndarray:
    total = probas[0]
    for proba in probas[1:]:  # summed in seed order: the same floats run after run
        total = total + proba
    return total / len(probas)


def fold_trainer(
    cell: str, task, params: Params, train, n_classes: int, config: RNNConfig, baseline: bool = False
) -> FoldTrainer:
    """Per-fold trainer for the registry with ``config`` (the caller reads the tuned one)."""
    from ..core.outputs import load_vectors

    tokens = load_tokens(task)
    config, vocab_size = tokens.fit_config(config)
    X = tokens.token_matrix("train", config, vocab_size)
    X_test = tokens.token_matrix("test", config, vocab_size)
    vectors = None if baseline else load_vectors(task)  # the lecture baseline starts random
    log.info(
        "%s config: %s; embedding from %s",
        cell,
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
    network = Network(cell, config, n_classes, vocab_size, vectors, baseline)
    data = (X, X_test, train["y"].to_numpy())
    return FoldTrainer(network, data, seeds, schedule, params.neural.threads)


def lstm(task, params, train, test, n_classes, config: RNNConfig):
    return fold_trainer("lstm", task, params, train, n_classes, config)


def gru(task, params, train, test, n_classes, config: RNNConfig):
    return fold_trainer("gru", task, params, train, n_classes, config)


def lstm_baseline(task, params, train, test, n_classes):
    # As taught, but like every RNN here its 300 steps are capped at the 95th percentile of
    # train lengths (tokenize.effective_length): the cap only drops padding.
    return fold_trainer("lstm", task, params, train, n_classes, BASELINE, baseline=True)


def tuned_plan(task, model: str, params: Params) -> FoldPlan:
    """:func:`_plan`, and the factory gets the config the ``tune`` stage chose."""
    from ..core.outputs import tuned_config

    return _plan(task, params, {"config": tuned_config(task, model, params)})


def baseline_plan(task, model: str, params: Params) -> FoldPlan:
    """:func:`_plan`; the lecture baseline's architecture is fixed (:data:`BASELINE`)."""
    return _plan(task, params, {})


def _plan(task, params: Params, trainer_args: dict) -> FoldPlan:
    """The first ``neural.folds`` (``validation.neural_folds`` on the validation tasks),
    ``neural.processes`` at a time. Test predictions are the fold models' mean, never a
    refit: early stopping needs each fold's validation rows."""
    from ..core.workers import params_per_process

    work = task.rnn_work(params)
    folds = min(params.cv.folds, work.folds)
    processes = min(params.neural.processes, folds)
    return FoldPlan(
        folds,
        params_per_process(params, processes),
        processes,
        record={"seeds": work.seeds, "max_epochs": work.epochs},
        trainer_args=trainer_args,
    )

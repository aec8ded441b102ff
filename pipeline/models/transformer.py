"""Pretrained-encoder models (see :mod:`pipeline.features.encoder` for the checkpoint).

``frozen_lr``: logistic regression on the frozen mean-pooled embeddings of the ``encode``
stage (standardised columns). ``finetune``: the whole encoder plus masked mean pooling,
dropout and one linear layer, trained per fold with AdamW, a linear warm-up then a linear
decay to zero, early stopping on the fold's validation loss (best epoch's weights kept).
Batches group rows of similar length (a seeded shuffle per epoch, sorted within chunks) and
are padded to their own length rounded up to 16 tokens; scoring runs length-sorted batches
and returns the rows in their original order. With ``long_text: windows`` a text's windows
are rows of their own (with its label) and its prediction is the mean over its windows.
The classifier is built once per process and reset between folds (:class:`Classifier`).
A fold with more than ``finetune.max_train_rows`` training rows trains on a seeded subsample
of that many (:func:`capped`); every validation and test row is still predicted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..core.params import FineTune, Params
from .common import Fold, FoldResult, expand_proba

log = logging.getLogger(__name__)


def frozen_lr(task, params: Params, train, test, n_classes: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..core.outputs import load_encoded

    _, X, X_test = load_encoded(task)
    if len(X) != len(train) or len(X_test) != len(test):
        raise ValueError(
            f"{task.encoded_dir}: {len(X)}/{len(X_test)} embeddings for {len(train)}/"
            f"{len(test)} train/test rows; rerun the encode stage"
        )
    y = train["y"].to_numpy()

    def fit_predict(fold: Fold) -> FoldResult:
        train_idx, valid_idx = fold.train_idx, fold.valid_idx
        model = make_pipeline(StandardScaler(), LogisticRegression(C=params.transformer.C, max_iter=3000))
        model.fit(X[train_idx], y[train_idx])
        classes = model.classes_
        valid = model.predict_proba(X[valid_idx]) if len(valid_idx) else np.zeros((0, len(classes)))
        return FoldResult(
            expand_proba(valid, classes, n_classes),
            expand_proba(model.predict_proba(X_test), classes, n_classes),
        )

    return fit_predict


def warmup_linear_decay(peak: float, total_steps: int, warmup: float):
    """A Keras schedule: 0 → ``peak`` over the first ``warmup`` share of steps, then → 0.
    Its step counts live in variables: ``set_steps(n)`` re-targets it to ``n`` steps without
    retracing a compiled train step."""
    import keras
    from keras import ops

    class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self):
            self.steps = total_steps
            self.warm = keras.Variable(1.0, dtype="float32", trainable=False, name="warmup_steps")
            self.total = keras.Variable(2.0, dtype="float32", trainable=False, name="total_steps")
            self.set_steps(total_steps)

        def set_steps(self, steps: int) -> None:
            warm = max(1, int(round(steps * warmup)))
            self.steps = steps
            self.warm.assign(float(warm))
            self.total.assign(float(max(steps, warm + 1)))

        def __call__(self, step):
            step = ops.cast(step, "float32")
            rising = peak * (step + 1.0) / self.warm
            falling = peak * ops.maximum(0.0, (self.total - step) / (self.total - self.warm))
            return ops.where(step < self.warm, rising, falling)

        def get_config(self):
            return {"peak": peak, "total_steps": self.steps, "warmup": warmup}

    return WarmupLinearDecay()


def _build(checkpoint, n_classes: int, dropout: float, policy: str):
    import keras

    from ..features.encoder import load_backbone, mean_pool

    backbone = load_backbone(checkpoint, policy)
    pooled = mean_pool(backbone.output["sequence_output"], backbone.input["padding_mask"])
    pooled = keras.layers.Dropout(dropout, dtype="float32")(pooled)
    binary = n_classes == 2
    out = keras.layers.Dense(
        1 if binary else n_classes, activation="sigmoid" if binary else "softmax", dtype="float32"
    )(pooled)
    return keras.Model(backbone.input, out)


def _compile(model, n_classes: int, config: FineTune, steps: int):
    """A new AdamW (its state float32) with the warm-up/decay schedule over ``steps``; returns
    the schedule."""
    import keras

    schedule = warmup_linear_decay(config.learning_rate, steps, config.warmup)
    optimizer = keras.optimizers.AdamW(
        schedule,
        weight_decay=config.weight_decay,
        clipnorm=1.0,
    )
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=loss)
    return schedule


def build_classifier(checkpoint, n_classes: int, config: FineTune, steps: int, policy: str = "float32"):
    """The compiled encoder + head: one sigmoid unit (binary) or a softmax over the classes.
    The encoder runs under the Keras dtype ``policy``; pooling, head, loss and the optimizer's
    state stay float32 (``mixed_bfloat16`` keeps every weight in float32)."""
    model = _build(checkpoint, n_classes, config.dropout, policy)
    _compile(model, n_classes, config, steps)
    return model


class Classifier:
    """The classifier built once per process (the checkpoint read once); every
    :meth:`fresh` call puts back its first state (weights, dropout seeds) and the optimizer's
    (zero moments, step 0), as a model built anew after the same seed would be. It is
    compiled once: the traced train and predict steps serve every fold."""

    def __init__(self, checkpoint, n_classes: int, dropout: float, policy: str):
        self.n_classes = n_classes
        self.model = _build(checkpoint, n_classes, dropout, policy)
        self.initial = [v.numpy() for v in self.model.variables]
        self.config: FineTune | None = None

    def fresh(self, config: FineTune, steps: int):
        for variable, value in zip(self.model.variables, self.initial):
            variable.assign(value)
        if self.config is None or config.model_dump() != self.config.model_dump():
            self.schedule = _compile(self.model, self.n_classes, config, steps)
            self.config = config
        else:
            self.schedule.set_steps(steps)
            for variable in self.model.optimizer.variables:
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        return self.model


class TokenIds(NamedTuple):
    """Unpadded token ids: one or more windows per text, in text order; the text each window
    belongs to (``owner``, ascending); and the id padding fills batches with."""

    seqs: list[np.ndarray]
    pad: int
    owner: np.ndarray

    def windows(self, idx: np.ndarray) -> np.ndarray:
        """The windows of the texts ``idx``, in that order."""
        low, high = np.searchsorted(self.owner, idx, "left"), np.searchsorted(self.owner, idx, "right")
        return np.concatenate([np.arange(a, b) for a, b in zip(low, high)] + [np.zeros(0, dtype=np.int64)])

    def rows(self, idx: np.ndarray) -> list[np.ndarray]:
        """The token ids of the windows of the texts ``idx``."""
        return [self.seqs[i] for i in self.windows(idx)]


def token_ids(tokenizer, texts: list[str], config: FineTune) -> TokenIds:
    """The ids of ``texts``, unpadded: ``[CLS] head … tail [SEP]`` (at most ``max_tokens``)
    or, with ``long_text: windows``, each text's windows (:meth:`~pipeline.features.encoder.Tokenizer.windows`)."""
    if config.long_text == "windows":
        seqs, owner = tokenizer.windows(texts, config.max_tokens, config.window_overlap, config.max_windows)
        return TokenIds(seqs, tokenizer.pad, owner)
    return TokenIds(tokenizer.encode(texts, config.max_tokens), tokenizer.pad, np.arange(len(texts)))


def length_bucketed(seqs: list[np.ndarray], y: np.ndarray, pad: int, batch_size: int, seed: int | None):
    """A ``tf.data`` dataset of ``(inputs, labels)`` batches from
    :func:`~pipeline.features.encoder.length_batches`, each padded to its own length (multiple of
    16). With ``seed``, every pass (epoch) draws new batches from one generator seeded by it;
    without, the rows come sorted by length. Batch and token axes are ``None`` in the
    signature: one trace of the train step serves every shape."""
    import tensorflow as tf

    from ..features.encoder import batch_inputs, length_batches

    lengths = np.array([len(s) for s in seqs])
    rng = None if seed is None else np.random.default_rng(seed)

    def batches():
        for rows in length_batches(lengths, batch_size, rng):
            yield batch_inputs([seqs[i] for i in rows], pad), y[rows]

    ids = tf.TensorSpec((None, None), tf.int32)
    signature = (
        {"token_ids": ids, "segment_ids": ids, "padding_mask": ids},
        tf.TensorSpec((None,), tf.as_dtype(y.dtype)),
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    n_batches = -(-len(seqs) // batch_size)  # what length_batches gives: Keras knows the epoch's end
    return dataset.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)


def _proba(model, data: TokenIds, idx: np.ndarray, n_classes: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of the texts ``idx``: the mean over each text's windows."""
    if not len(idx):
        return np.zeros((0, n_classes))
    from ..features.encoder import pool_windows, predict_by_length

    windows = data.windows(idx)
    raw = predict_by_length(model.predict_on_batch, [data.seqs[i] for i in windows], data.pad, batch_size)
    per_text = np.searchsorted(data.owner, idx, "right") - np.searchsorted(data.owner, idx, "left")
    text_of_window = np.repeat(np.arange(len(idx)), per_text)
    raw = pool_windows(raw.astype(np.float64), text_of_window, len(idx))
    return np.column_stack([1 - raw[:, 0], raw[:, 0]]) if n_classes == 2 else raw


@dataclass(frozen=True)
class FineTuneInputs:
    """What every fold of one fine-tuning run shares: the checkpoint, the train rows' token
    ids and labels, the settings, and the Keras dtype policy of the encoder
    (:mod:`pipeline.features.precision`)."""

    checkpoint: Any
    data: TokenIds
    y: np.ndarray
    n_classes: int
    config: FineTune
    seed: int
    threads: int
    policy: str = "float32"


def fit_fold(inputs: FineTuneInputs, fold: Fold, classifier: Classifier | None = None):
    """Train one fold on length-bucketed batches; return ``(model, history)``. One log line
    per epoch, starting ``[fold.tag]``. With ``classifier`` (built after the same seed, same
    dropout and policy) its model is reset and trained instead of a new one."""
    import keras

    from .keras_training import epoch_logger, set_determinism

    checkpoint, data, y, n_classes = inputs.checkpoint, inputs.data, inputs.y, inputs.n_classes
    config, seed, policy = inputs.config, inputs.seed, inputs.policy
    train_idx, valid_idx = fold.train_idx, fold.valid_idx
    set_determinism(seed, inputs.threads)
    train_windows, valid_windows = data.windows(train_idx), data.windows(valid_idx)
    steps = config.epochs * int(np.ceil(len(train_windows) / config.batch_size))
    if classifier is None:
        model = build_classifier(checkpoint, n_classes, config, steps, policy)
    else:
        model = classifier.fresh(config, steps)
    has_valid = len(valid_idx) > 0
    stop = [keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)]
    history = model.fit(
        length_bucketed(
            data.rows(train_idx), y[data.owner[train_windows]], data.pad, config.batch_size, seed
        ),
        epochs=config.epochs,
        shuffle=False,  # the dataset draws its own seeded, length-bucketed batches
        verbose=0,
        validation_data=(
            length_bucketed(data.rows(valid_idx), y[data.owner[valid_windows]], data.pad, 64, None)
            if has_valid
            else None
        ),
        callbacks=(stop if has_valid else []) + [epoch_logger(fold.tag or "finetune")],
    )
    return model, history


def capped(train_idx: np.ndarray, most: int, seed: int) -> np.ndarray:
    """``train_idx``, or a seeded subsample of ``most`` of its rows (in their order) when it
    has more (``most`` 0: every row): fine-tuning's cost is linear in its training rows."""
    if not most or len(train_idx) <= most:
        return train_idx
    return np.sort(np.random.default_rng(seed).choice(train_idx, most, replace=False))


def _tune(task, params: Params, checkpoint) -> tuple[FineTune, list[dict]]:
    """Optuna over ``transformer.finetune.space`` on fold 0 (minimum validation loss), the
    params' values as the first trial; returns the best config and every trial."""
    import optuna

    from ..core.outputs import load_prepared
    from ..core.workers import threads_per_process
    from ..cv.folds import fold_rows
    from ..features.encoder import Tokenizer
    from ..features.precision import choose_precision

    policy = choose_precision(params.transformer.precision).policy
    config, space = params.transformer.finetune, params.transformer.finetune.space
    train, _, meta = load_prepared(task)
    tokenizer, y, fold = Tokenizer(checkpoint), train["y"].to_numpy(), train["fold"].to_numpy()
    threads = threads_per_process(params.neural.threads, 1)
    train_idx, valid_idx = fold_rows(fold, 0, meta.ordered)  # as tune.py
    train_idx = capped(train_idx, config.max_train_rows, params.seed)  # as the folds train

    def objective(trial):
        trial_config = config.model_copy(
            update={
                "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
                "epochs": trial.suggest_categorical("epochs", list(space.epochs)),
                "max_tokens": trial.suggest_categorical("max_tokens", list(space.max_tokens)),
            }
        )
        data = token_ids(tokenizer, train["text"].tolist(), trial_config)
        inputs = FineTuneInputs(
            checkpoint, data, y, len(meta.classes), trial_config, params.seed, threads, policy
        )
        _, history = fit_fold(
            inputs, Fold(train_idx, valid_idx, f"tune {task.name} finetune trial {trial.number}")
        )
        return min(history.history["val_loss"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=params.seed))
    first = {
        "learning_rate": min(max(config.learning_rate, space.learning_rate[0]), space.learning_rate[1]),
        "epochs": config.epochs if config.epochs in space.epochs else space.epochs[0],
        "max_tokens": config.max_tokens if config.max_tokens in space.max_tokens else space.max_tokens[0],
    }
    study.enqueue_trial(first)
    study.optimize(objective, n_trials=config.budget.n_trials, timeout=config.budget.timeout)
    trials = [
        {"number": t.number, "params": t.params, "val_loss": t.value}
        for t in study.trials
        if t.value is not None
    ]
    log.info(
        "finetune tuning on fold 0: best %s (val_loss %.4f) of %d trials",
        study.best_params,
        study.best_value,
        len(trials),
    )
    return config.model_copy(update=study.best_params), trials


def before_folds(task, model: str, params: Params) -> tuple[Params, dict]:
    """Checked once before the fold loop: the checkpoint (recorded with the predictions) and,
    for ``finetune`` with a tuning budget, the tuned settings the folds then use."""
    from ..features.encoder import resolve_checkpoint
    from ..features.precision import choose_precision

    checkpoint = resolve_checkpoint(params.transformer.checkpoint, params.transformer.sha256)
    info: dict = {"checkpoint": checkpoint.describe()}
    if model != "finetune":  # the embeddings' precision, as encode recorded it
        from ..core.outputs import load_encoded

        encoded = load_encoded(task)[0].dump()
        info.update({k: encoded[k] for k in ("precision", "precision_reason") if k in encoded})
    else:
        info.update(choose_precision(params.transformer.precision).describe())
        config, trials = params.transformer.finetune, list[dict]()
        if config.budget.n_trials > 0:
            config, trials = _tune(task, params, checkpoint)
            params = params.model_copy(
                update={"transformer": params.transformer.model_copy(update={"finetune": config})}
            )
        info["finetune"] = {**config.model_dump(exclude={"budget", "space"}), "tuning_trials": trials}
    return params, info


def finetune(task, params: Params, train, test, n_classes: int):
    from ..features.encoder import Tokenizer, resolve_checkpoint
    from ..features.precision import choose_precision

    config = params.transformer.finetune
    checkpoint = resolve_checkpoint(params.transformer.checkpoint, params.transformer.sha256)
    policy = choose_precision(params.transformer.precision).policy
    tokenizer = Tokenizer(checkpoint)
    data = token_ids(tokenizer, train["text"].tolist(), config)
    test_data = token_ids(tokenizer, test["text"].tolist(), config)
    inputs = FineTuneInputs(
        checkpoint, data, train["y"].to_numpy(), n_classes, config, params.seed, params.neural.threads, policy
    )
    built: list[Classifier] = []  # once per process, on the first fold

    def fit_predict(fold: Fold) -> FoldResult:
        train_idx = capped(fold.train_idx, config.max_train_rows, params.seed)
        if len(train_idx) < len(fold.train_idx):
            log.info(
                "finetune: %d of the fold's %d training rows (transformer.finetune.max_train_rows)",
                len(train_idx),
                len(fold.train_idx),
            )
        if not built:
            from .keras_training import set_determinism

            set_determinism(params.seed, params.neural.threads)  # as fit_fold, before building
            built.append(Classifier(checkpoint, n_classes, config.dropout, policy))
        model, history = fit_fold(inputs, Fold(train_idx, fold.valid_idx, fold.tag), classifier=built[0])
        log.info(
            "finetune: %d epoch(s), val_loss %s",
            len(history.history["loss"]),
            [round(v, 4) for v in history.history.get("val_loss", [])],
        )
        valid = _proba(model, data, fold.valid_idx, n_classes)
        test_proba = _proba(model, test_data, np.arange(len(test)), n_classes)
        return FoldResult(valid, test_proba)

    return fit_predict

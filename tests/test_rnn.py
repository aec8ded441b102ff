"""Tests of the Keras RNN models: shapes and heads for every variant, and bit-for-bit
reproducible training with a fixed seed (one tiny model per test, CPU-cheap)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.outputs import prediction_paths
from pipeline.core.params import RNNConfig
from pipeline.core.tasks import get_task
from pipeline.models import keras_training, rnn
from pipeline.train import train
from tiny_data import PREPARED, featurize, tiny_params, write_learnable

VOCAB = 20
N = 6


def _config(**overrides) -> RNNConfig:
    base = dict(
        embedding_dim=4,
        units=4,
        layers=1,
        bidirectional=False,
        dropout=0.1,
        spatial_dropout=0.1,
        dense_units=4,
        learning_rate=0.01,
        batch_size=4,
        seq_len=8,
        vocab_size=100,
        truncate="head",
    )
    return RNNConfig(**{**base, **overrides})


def _X(seq_len: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, VOCAB, size=(N, seq_len)).astype(np.int32)


def _head(model):
    return model.layers[-1]


def _concat_width(model) -> int:
    import keras

    (concat,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    return concat.output.shape[-1]


@pytest.mark.parametrize(
    "kind, bidirectional, layers",
    [
        ("lstm", True, 1),
        ("lstm", False, 2),
        ("gru", True, 2),
        ("gru", False, 1),
    ],
)
def test_binary_model_has_one_sigmoid_output(kind, bidirectional, layers):
    model = rnn.build_model(kind, _config(bidirectional=bidirectional, layers=layers), 2, VOCAB)
    assert model.output_shape == (None, 1)
    assert _head(model).activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    recurrent = [layer.name for layer in model.layers if kind in layer.name]
    assert len(recurrent) == layers
    assert all(name.startswith("bi_") == bidirectional for name in recurrent)
    # max + mean pooling + the final hidden state h of each direction (not the LSTM cell c).
    directions = 2 if bidirectional else 1
    assert _concat_width(model) == 3 * 4 * directions

    raw = model.predict(_X(), verbose=0)
    proba = rnn.predict_proba(model, _X())
    assert proba.shape == (N, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba[:, 1], raw[:, 0], rtol=1e-6)
    assert ((proba >= 0) & (proba <= 1)).all()


@pytest.mark.parametrize("kind, bidirectional, layers", [("lstm", True, 2), ("gru", False, 1)])
def test_multiclass_model_has_softmax_over_classes(kind, bidirectional, layers):
    model = rnn.build_model(
        kind, _config(bidirectional=bidirectional, layers=layers, dense_units=0), 5, VOCAB
    )
    assert model.output_shape == (None, 5)
    assert _head(model).activation.__name__ == "softmax"
    assert model.loss == "sparse_categorical_crossentropy"
    proba = rnn.predict_proba(model, _X())
    assert proba.shape == (N, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_dense_head_is_optional():
    import keras

    with_dense = rnn.build_model("gru", _config(dense_units=4), 2, VOCAB)
    without = rnn.build_model("gru", _config(dense_units=0), 2, VOCAB)
    count = lambda m: sum(isinstance(layer, keras.layers.Dense) for layer in m.layers)  # noqa: E731
    assert (count(with_dense), count(without)) == (2, 1)


@pytest.mark.parametrize("n_classes, width, activation", [(2, 1, "sigmoid"), (5, 5, "softmax")])
def test_baseline(n_classes, width, activation):
    config = rnn.BASELINE.model_copy(update={"embedding_dim": 4, "units": 4, "seq_len": 8})
    model = rnn.build_baseline("lstm", config, n_classes, VOCAB)
    assert model.output_shape == (None, width)
    assert _head(model).activation.__name__ == activation
    proba = rnn.predict_proba(model, _X())
    assert proba.shape == (N, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_baseline_config_is_the_lecture_reference():
    b = rnn.BASELINE
    assert (b.vocab_size, b.seq_len, b.embedding_dim, b.units, b.layers, b.truncate) == (
        5000,
        300,
        100,
        100,
        1,
        "tail",
    )


@pytest.mark.parametrize("kind", ["rnn", "LSTM", ""])
def test_build_model_rejects_unknown_kind(kind):
    with pytest.raises(ValueError, match="lstm"):
        rnn.build_model(kind, _config(), 2, VOCAB)


@pytest.mark.slow
def test_full_train_is_reproducible(tmp_path, monkeypatch):
    """Two ``train`` runs (fold_trainer → set_determinism → build_model → fit) with the same
    seed save identical predictions and CV scores; dropout and shuffling included."""
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=32)
    # Dropout and batch shuffling both draw random numbers: the seed must fix them all.
    params = tiny_params(
        neural={
            "epochs": 1,
            "defaults": {"dropout": 0.2, "spatial_dropout": 0.2, "dense_units": 4, "learning_rate": 0.01},
        }
    )
    task = get_task("competition", params)
    featurize(task, params)
    arrays_path, record_path = prediction_paths(task, "lstm")

    runs = []
    for _ in range(2):
        record = train(task, "lstm", params)
        saved = json.loads(record_path.read_text())
        with np.load(arrays_path) as data:
            runs.append((record, saved, data["oof"].copy(), data["test"].copy()))

    (rec1, saved1, oof1, test1), (rec2, saved2, oof2, test2) = runs
    assert saved1["folds"] == [0]  # neural.folds = 1
    assert (saved1["seeds"], saved1["max_epochs"]) == (params.neural.seeds, 1)
    assert rec1["n_scored"] == 16
    np.testing.assert_array_equal(oof1, oof2)
    np.testing.assert_array_equal(test1, test2)
    assert saved1["fold_scores"] == saved2["fold_scores"]
    assert saved1["cv"] == saved2["cv"]
    scored = ~np.isnan(oof1[:, 0])
    assert scored.sum() == 16 and np.isnan(oof1[~scored]).all()
    np.testing.assert_allclose(test1.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.slow
def test_seeds_average_one_model_per_seed(tmp_path, monkeypatch):
    """``neural.seeds: 2`` saves the mean of the models that seeds s and s+1 train alone."""
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=32)
    base = tiny_params(neural={"epochs": 1})
    task = get_task("competition", base)
    featurize(task, base)  # one set of word vectors for every run below
    arrays_path, _ = prediction_paths(task, "gru")
    runs = []
    for seed, seeds in ((base.seed, 1), (base.seed + 1, 1), (base.seed, 2)):
        params = tiny_params(seed=seed, neural={"epochs": 1, "seeds": seeds})
        train(task, "gru", params)
        with np.load(arrays_path) as data:
            runs.append((data["oof"].copy(), data["test"].copy()))
    (oof_a, test_a), (oof_b, test_b), (oof_both, test_both) = runs
    assert not np.allclose(test_a, test_b)  # the two seeds really train different models
    np.testing.assert_allclose(oof_both, (oof_a + oof_b) / 2, rtol=1e-6)
    np.testing.assert_allclose(test_both, (test_a + test_b) / 2, rtol=1e-6)


def test_validation_tasks_take_their_own_rnn_work():
    params = tiny_params(
        neural={"seeds": 3, "folds": 4, "epochs": 8, "patience": 3},
        tune={"budget": {"n_trials": 5}},
        validation={"neural_seeds": 1, "neural_folds": 2, "neural_epochs": 4, "budget": {"n_trials": 0}},
    )
    competition, imdb = (get_task(name, params).rnn_work(params) for name in ("competition", "imdb"))
    assert (competition.seeds, competition.folds, competition.tuning.n_trials, competition.epochs) == (
        3,
        4,
        5,
        8,
    )
    assert (imdb.seeds, imdb.folds, imdb.tuning.n_trials, imdb.epochs) == (1, 2, 0, 4)
    schedule = imdb.schedule(params.neural)  # the epoch limit changes, the rest of neural stays
    assert (schedule.epochs, schedule.patience) == (4, 3) and params.neural.epochs == 8


@pytest.mark.slow
def test_validation_tasks_train_at_most_their_epochs(tmp_path, monkeypatch):
    """``validation.neural_epochs`` caps the validation tasks' RNN training; the competition
    keeps ``neural.epochs`` (patience above both, so nothing stops early)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=16)
    shutil.copytree(tmp_path / PREPARED, tmp_path / PREPARED.parent / "imdb")
    params = tiny_params(
        neural={"epochs": 3, "patience": 5, "reduce_lr": 0.0},
        validation={"neural_epochs": 1, "neural_folds": 1},
    )
    epochs_run, real_fit = {}, rnn.fit

    def counting_fit(*args, **kwargs):
        history = real_fit(*args, **kwargs)
        epochs_run[task.name] = len(history.history["loss"])
        return history

    monkeypatch.setattr(rnn, "fit", counting_fit)
    for name in ("competition", "imdb"):
        task = get_task(name, params)
        featurize(task, params)
        train(task, "lstm", params)
    assert epochs_run == {"competition": 3, "imdb": 1}


@pytest.mark.slow
def test_folds_in_two_processes_match_one_process(tmp_path, monkeypatch):
    """``neural.processes: 2`` trains the two folds side by side in spawned processes; the
    predictions are the ones the folds give one after the other in this process."""
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=32)
    runs = {}
    for processes in (1, 2):
        params = tiny_params(neural={"epochs": 1, "folds": 2, "processes": processes})
        task = get_task("competition", params)
        featurize(task, params)
        record = train(task, "gru", params)
        with np.load(prediction_paths(task, "gru")[0]) as data:
            runs[processes] = (record, data["oof"].copy(), data["test"].copy())
    (rec1, oof1, test1), (rec2, oof2, test2) = runs[1], runs[2]
    assert rec2["folds"] == [0, 1] and rec2["n_scored"] == 32  # both folds ran
    np.testing.assert_array_equal(oof1, oof2)
    np.testing.assert_array_equal(test1, test2)
    assert rec1["fold_scores"] == rec2["fold_scores"]


@pytest.mark.slow
@pytest.mark.parametrize("reduce_lr", [0.5, 0.0])
def test_learning_rate_drops_after_an_epoch_without_gain(reduce_lr):
    """Validation labels opposite to the train labels: the validation loss rises while the
    model learns, so each epoch after the first lowers the rate by ``reduce_lr`` (0: never)."""
    X = np.repeat(np.arange(2, 6, dtype=np.int32)[:, None], 8, axis=1).repeat(8, axis=0)
    y = (X[:, 0] % 2).astype(np.float32)
    model = rnn.build_model("gru", _config(learning_rate=0.05, dropout=0.0, spatial_dropout=0.0), 2, VOCAB)
    neural = tiny_params(neural={"epochs": 4, "patience": 4, "reduce_lr": reduce_lr}).neural
    rnn.fit(model, X, y, X, 1 - y, neural, batch_size=8)
    expected = 0.05 * reduce_lr**3 if reduce_lr else 0.05
    assert float(model.optimizer.learning_rate) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_fit_logs_one_tagged_line_per_epoch_and_no_progress_bar(caplog, capsys):
    X = np.repeat(np.arange(2, 6, dtype=np.int32)[:, None], 8, axis=1).repeat(4, axis=0)
    y = (X[:, 0] % 2).astype(np.float32)
    model = rnn.build_model("gru", _config(), 2, VOCAB)
    neural = tiny_params(neural={"epochs": 3, "patience": 5, "reduce_lr": 0.0}).neural
    with caplog.at_level("INFO", logger="pipeline.models"):
        rnn.fit(model, X, y, X, y, neural, batch_size=8, tag="train competition gru fold 1 seed 2")
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert [line.split()[:7] for line in lines] == [
        ["[train", "competition", "gru", "fold", "1", "seed", "2]"]
    ] * 3
    assert [line.split()[7:9] for line in lines] == [["epoch", f"{k}/3"] for k in (1, 2, 3)]
    assert all(" loss " in line and " val_loss " in line and line.endswith("s") for line in lines)
    assert capsys.readouterr().out == ""  # Keras printed no progress bar


def test_epoch_line_formats_losses_and_learning_rate():
    line = keras_training.epoch_line(
        "tune imdb lstm trial 4", 2, 8, {"loss": 0.41234, "val_loss": 0.5, "learning_rate": 0.0005}, 4.12
    )
    assert line == "[tune imdb lstm trial 4] epoch 2/8 loss 0.4123 val_loss 0.5000 learning_rate 0.0005 4.1s"

"""The ``train`` stage's test predictions: a refit on every train row, or the fold models' mean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.outputs import load_prepared, prediction_paths
from pipeline.core.tasks import get_task
from pipeline.models import MODELS
from pipeline.models.common import Fold
from pipeline.train import train
from tiny_data import tiny_params, write_prepared

TEXTS = [
    "wheat crop harvest",
    "grain wheat export",
    "wheat grain prices",
    "harvest of grain",
    "oil crude barrel",
    "crude oil price",
    "barrel of crude",
    "oil output cut",
    "gold mine ounce",
    "gold price ounce",
]
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]  # gold: one row per fold, so each fold model sees it once
TEST = ["wheat harvest", "crude barrel", "gold ounce"]


def _saved(task, model):
    arrays, record = prediction_paths(task, model)
    with np.load(arrays) as data:
        return json.loads(record.read_text()), data["oof"].copy(), data["test"].copy()


@pytest.mark.parametrize("model", ["word_svc", "word_lr"])
def test_refit_predicts_test_from_a_model_fitted_on_every_train_row(tmp_path, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    write_prepared(tmp_path, TEXTS, LABELS, TEST, folds=2, classes=("grain", "crude", "gold"))
    runs = {}
    for mode in ("refit", "fold_mean"):
        params = tiny_params(tfidf={"test_predictions": mode})
        task = get_task("competition", params)
        train(task, model, params)
        runs[mode] = _saved(task, model)

    train_df, test_df, _ = load_prepared(task)
    fit_predict = MODELS[model].factory(task, params, train_df, test_df, 3)
    every_row, no_row = np.arange(len(train_df)), np.array([], dtype=int)
    refit = fit_predict(Fold(every_row, no_row))
    valid_proba, refit_test = refit.valid_proba, refit.test_proba
    folds = train_df["fold"].to_numpy()
    fold_tests = [
        fit_predict(Fold(np.flatnonzero(folds != f), np.flatnonzero(folds == f))).test_proba for f in (0, 1)
    ]

    (refit_record, refit_oof, refit_saved), (mean_record, mean_oof, mean_saved) = (
        runs["refit"],
        runs["fold_mean"],
    )
    assert valid_proba.shape == (0, 3)
    assert (refit_record["test_predictions"], mean_record["test_predictions"]) == ("refit", "fold_mean")
    np.testing.assert_allclose(refit_saved, refit_test)
    np.testing.assert_allclose(mean_saved, np.mean(fold_tests, axis=0))
    assert not np.allclose(refit_saved, mean_saved)
    # Out-of-fold predictions and CV scores do not depend on how test is predicted.
    np.testing.assert_array_equal(refit_oof, mean_oof)
    assert refit_record["cv"] == mean_record["cv"]
    assert list(refit_saved.argmax(axis=1)) == [0, 1, 2]


@pytest.mark.slow
def test_rnn_test_predictions_stay_the_fold_mean(tmp_path, monkeypatch):
    from tiny_data import featurize, write_learnable

    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=16)
    params = tiny_params(neural={"epochs": 1}, tfidf={"test_predictions": "refit"})
    task = get_task("competition", params)
    featurize(task, params)
    record = train(task, "gru", params)
    assert record["test_predictions"] == "fold_mean" and record["folds"] == [0]

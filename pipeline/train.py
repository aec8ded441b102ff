"""``train`` stage: out-of-fold and test predictions for any registered model.

Writes ``data/predictions/<task>/<model>.npz`` (``oof``: train rows × classes, NaN for rows
whose fold was not run; ``test``: from a TF-IDF model refitted on every train row, or the
mean over fold models) and ``<model>.json`` (CV score per fold and overall, how test was
predicted, seconds; RNNs also their seeds per fold, epoch limit and per-epoch losses).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .folds import fold_rows
from .models import MODELS
from .outputs import PredictionRecord, load_prepared, save_predictions, save_unavailable
from .params import Params
from .tasks import Task
from .workers import params_per_process, worker_map

log = logging.getLogger(__name__)
ALL_ROWS = -1  # work item: fit on every train row, predict test only


def folds_to_run(model: str, params: Params, task: Task) -> list[int]:
    """All folds for TF-IDF models; the first ``neural.folds`` (``validation.neural_folds``
    on the validation tasks) for the slower RNNs, ``transformer.finetune.folds`` for fine-tuning."""
    n = params.cv.folds
    if MODELS[model].family == "rnn":
        n = min(n, task.rnn_work(params).folds)
    if MODELS[model].family == "finetune":
        n = min(n, params.transformer.finetune.folds)
    return list(range(n))


def refits_on_all_rows(model: str, params: Params) -> bool:
    """TF-IDF models with ``tfidf.test_predictions: refit``. RNNs always average their fold
    models: early stopping needs each fold's validation rows."""
    return MODELS[model].family == "tfidf" and params.tfidf.test_predictions == "refit"


def train(task: Task, model: str, params: Params) -> dict:
    """Run ``model`` over the folds of ``task``; save and return its CV record."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    train_df, test_df, meta = load_prepared(task)
    record: dict[str, Any] = {"task": task.name, "model": model, "available": meta.available}
    reason = meta.reason
    if meta.available and model not in task.models_to_run(params) and model in params.models.transformer:
        reason, record["available"] = "not in transformer.tasks (CPU cost)", False
    if not record["available"]:
        save_unavailable(task, model, record, reason)
        return record
    from .metrics import all_scores, score  # sklearn: only when there is data

    n_classes = len(meta.classes)
    y, fold_of_row = train_df["y"].to_numpy(), train_df["fold"].to_numpy()
    started = time.perf_counter()
    oof = np.full((len(train_df), n_classes), np.nan)
    test_sum = np.zeros((len(test_df), n_classes))
    folds = folds_to_run(model, params, task)
    processes = 1  # TF-IDF models fit in this process
    if MODELS[model].family == "rnn":
        rnn_work = task.rnn_work(params)
        record.update(seeds=rnn_work.seeds, max_epochs=rnn_work.epochs)
        processes = min(params.neural.processes, len(folds))
        params = params_per_process(params, processes)
    if (before_folds := MODELS[model].before_folds) is not None:
        params, info = before_folds(task, model, params)
        record.update(info)
    if MODELS[model].family == "finetune":
        processes = min(params.transformer.finetune.processes, len(folds))
        params = params_per_process(params, processes)
    fold_scores, refit_test = [], None
    items = folds + ([ALL_ROWS] if refits_on_all_rows(model, params) else [])  # refit last
    with worker_map(processes, _start_fold_worker, (task, model, params)) as run:
        for done, (fold, valid_proba, test_proba, seconds, epochs) in enumerate(
            run(_run_fold, items), start=1
        ):
            if epochs:
                record.setdefault("epochs", []).extend({"fold": fold, **row} for row in epochs)
            if fold == ALL_ROWS:
                refit_test = test_proba
                log.info(
                    "[train %s/%s] refit on all %d train rows (%.1f s)",
                    task.name,
                    model,
                    len(train_df),
                    seconds,
                )
                continue
            valid_idx = np.flatnonzero(fold_of_row == fold)
            oof[valid_idx] = valid_proba
            test_sum += test_proba
            fold_scores.append(score(task.metric, y[valid_idx], valid_proba))
            elapsed = time.perf_counter() - started
            log.info(
                "[train %s/%s] fold %d/%d %s=%.4f (%.1f s, ~%.0f s left)",
                task.name,
                model,
                done,
                len(folds),
                task.metric,
                fold_scores[-1],
                seconds,
                elapsed / done * (len(items) - done),
            )
    _FOLDS.clear()  # in-process runs: let the fold trainer and its data go
    scored = ~np.isnan(oof[:, 0])
    record.update(
        metric=task.metric,
        folds=folds,
        fold_scores=fold_scores,
        n_scored=int(scored.sum()),
        cv=all_scores(y[scored], oof[scored]),
        test_predictions="fold_mean" if refit_test is None else "refit",
        seconds=round(time.perf_counter() - started, 2),
    )
    test = test_sum / len(folds) if refit_test is None else refit_test
    save_predictions(task, model, PredictionRecord.model_validate(record), oof, test)
    log.info(
        "[train %s/%s] CV %s=%.4f over %d rows",
        task.name,
        model,
        task.metric,
        record["cv"][task.metric],
        record["n_scored"],
    )
    return record


# The fold trainer of the model being trained, built once per worker process.
_FOLDS: dict = {}


def _start_fold_worker(task: Task, model: str, params: Params) -> None:
    train_df, test_df, meta = load_prepared(task)
    _FOLDS.update(
        tag=f"train {task.name} {model}",
        fold_of_row=train_df["fold"].to_numpy(),
        ordered=meta.ordered,
        fit_predict=MODELS[model].factory(task, params, train_df, test_df, len(meta.classes)),
    )


def _run_fold(fold: int) -> tuple[int, np.ndarray, np.ndarray, float, list[dict]]:
    started = time.perf_counter()
    fold_of_row = _FOLDS["fold_of_row"]
    if fold == ALL_ROWS:
        train_idx, valid_idx = np.arange(len(fold_of_row)), np.array([], dtype=int)
    else:
        train_idx, valid_idx = fold_rows(fold_of_row, fold, _FOLDS["ordered"])
    fit_predict = _FOLDS["fit_predict"]
    # Trainers that log (RNN epochs, TF-IDF convergence) start their lines with this tag.
    fit_predict.tag = f"{_FOLDS['tag']} " + ("all rows" if fold == ALL_ROWS else f"fold {fold}")
    valid_proba, test_proba = fit_predict(train_idx, valid_idx)
    # RNN trainers leave their per-epoch losses on `fit_predict.epochs` (the report plots them).
    return fold, valid_proba, test_proba, time.perf_counter() - started, getattr(fit_predict, "epochs", [])

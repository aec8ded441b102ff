"""``train`` stage: out-of-fold and test predictions for any registered model.

Writes ``data/predictions/<task>/<model>.npz`` (``oof``: train rows × classes, NaN for rows
whose fold was not run; ``test``: from a TF-IDF model refitted on every train row, or the
mean over fold models) and ``<model>.json`` (CV score per fold and overall, how test was
predicted, seconds; RNNs also their seeds per fold, epoch limit and per-epoch losses).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .folds import fold_rows
from .io import load_arrays, read_json, save_arrays, write_json
from .models import MODELS
from .params import Params
from .prepare import load_prepared
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


def prediction_paths(task: Task, model: str):
    base = (task.ensemble_dir if model == "ensemble" else task.predictions_dir) / model
    return base.with_suffix(".npz"), base.with_suffix(".json")


def refits_on_all_rows(model: str, params: Params) -> bool:
    """TF-IDF models with ``tfidf.test_predictions: refit``. RNNs always average their fold
    models: early stopping needs each fold's validation rows."""
    return MODELS[model].family == "tfidf" and params.tfidf.test_predictions == "refit"


def save_predictions(task: Task, model: str, record: dict, oof: np.ndarray, test: np.ndarray) -> None:
    """Write ``<model>.npz`` then ``<model>.json``, each atomically.

    The old record goes first: a run killed between the two writes leaves arrays without a
    record (an incomplete output) rather than new arrays paired with an old record.
    """
    arrays_path, record_path = prediction_paths(task, model)
    record_path.unlink(missing_ok=True)
    save_arrays(arrays_path, oof=oof, test=test)
    write_json(record_path, record)


def save_unavailable(task: Task, model: str, record: dict, reason: str) -> None:
    """Empty placeholder outputs for a task whose data is unavailable (DVC needs its outs)."""
    save_predictions(task, model, {**record, "reason": reason}, np.zeros((0, 0)), np.zeros((0, 0)))


def train(task: Task, model: str, params: Params) -> dict:
    """Run ``model`` over the folds of ``task``; save and return its CV record."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    train_df, test_df, meta = load_prepared(task)
    record = {"task": task.name, "model": model, "available": meta["available"]}
    if meta["available"] and model not in task.models_to_run(params) and model in params.models.transformer:
        meta = {"available": False, "reason": "not in transformer.tasks (CPU cost)"}
        record["available"] = False
    if not meta["available"]:
        save_unavailable(task, model, record, meta["reason"])
        return record
    from .metrics import all_scores, score  # sklearn: only when there is data

    n_classes = len(meta["classes"])
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
    if MODELS[model].before_folds is not None:
        params, info = MODELS[model].before_folds(task, model, params)
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
    save_predictions(task, model, record, oof, test_sum / len(folds) if refit_test is None else refit_test)
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
        ordered=meta.get("cv", {}).get("ordered", False),
        fit_predict=MODELS[model].factory(task, params, train_df, test_df, len(meta["classes"])),
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


def load_predictions(task: Task, model: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The record and arrays that :func:`train` (or the ensemble) saved for ``model``."""
    arrays_path, record_path = prediction_paths(task, model)
    return read_json(record_path), load_arrays(arrays_path)

"""``train`` stage: out-of-fold and test predictions for any registered model.

Writes ``data/predictions/<task>/<model>.npz`` (``oof``: train rows × classes, NaN for rows
whose fold was not run; ``test``: from a TF-IDF model refitted on every train row, or the
mean over fold models) and ``<model>.json`` (CV score per fold and overall, how test was
predicted, seconds; RNNs also their seeds per fold, epoch limit and per-epoch losses).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core.outputs import PredictionRecord, load_meta, load_prepared, save_predictions, save_unavailable
from .core.params import Params
from .core.tasks import Task
from .core.workers import worker_map
from .cv.folds import fold_rows
from .models import MODELS, FitPredict, FoldPlan
from .models.common import Fold, FoldResult

log = logging.getLogger(__name__)
ALL_ROWS = -1  # work item: fit on every train row, predict test only


def train(task: Task, model: str, params: Params) -> dict:
    """Run ``model`` over the folds of ``task``; save and return its CV record."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    spec = MODELS[model]
    meta = load_meta(task)
    record: dict[str, Any] = {"task": task.name, "model": model, "available": meta.available}
    skipped = spec.skip(task, model, params) if meta.available and spec.skip else None
    if skipped:
        record["available"] = False
    if not record["available"]:
        save_unavailable(task, model, record, skipped or meta.reason)
        return record
    from .core.metrics import all_scores, score  # sklearn: only when there is data

    train_df, test_df, _ = load_prepared(task)
    n_classes = len(meta.classes)
    y, fold_of_row = train_df["y"].to_numpy(), train_df["fold"].to_numpy()
    started = time.perf_counter()
    oof = np.full((len(train_df), n_classes), np.nan)
    test_sum = np.zeros((len(test_df), n_classes))
    if spec.before_folds is not None:
        params, info = spec.before_folds(task, model, params)
        record.update(info)
    plan = spec.plan(task, model, params) if spec.plan else FoldPlan(params.cv.folds, params)
    record.update(plan.record)
    folds = list(range(plan.folds))
    fold_scores, refit_test = [], None
    items = folds + ([ALL_ROWS] if plan.refit else [])  # refit last
    start_args = (task, model, plan.params, plan.trainer_args)
    with worker_map(plan.processes, _start_fold_worker, start_args) as run:
        for done, (fold, result, seconds) in enumerate(run(_run_fold, items), start=1):
            if result.epochs:
                record.setdefault("epochs", []).extend({"fold": fold, **row} for row in result.epochs)
            if fold == ALL_ROWS:
                refit_test = result.test_proba
                log.info(
                    "[train %s/%s] refit on all %d train rows (%.1f s)",
                    task.name,
                    model,
                    len(train_df),
                    seconds,
                )
                continue
            valid_idx = np.flatnonzero(fold_of_row == fold)
            oof[valid_idx] = result.valid_proba
            test_sum += result.test_proba
            fold_scores.append(score(task.metric, y[valid_idx], result.valid_proba))
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


@dataclass(frozen=True)
class _FoldWorker:
    """What a worker process builds once for the model being trained: its fold trainer."""

    tag: str
    fold_of_row: np.ndarray
    ordered: bool
    fit_predict: FitPredict


def _start_fold_worker(task: Task, model: str, params: Params, trainer_args: dict) -> _FoldWorker:
    train_df, test_df, meta = load_prepared(task)
    n_classes = len(meta.classes)
    return _FoldWorker(
        tag=f"train {task.name} {model}",
        fold_of_row=train_df["fold"].to_numpy(),
        ordered=meta.ordered,
        fit_predict=MODELS[model].factory(task, params, train_df, test_df, n_classes, **trainer_args),
    )


def _run_fold(worker: _FoldWorker, fold: int) -> tuple[int, FoldResult, float]:
    started = time.perf_counter()
    if fold == ALL_ROWS:
        train_idx, valid_idx = np.arange(len(worker.fold_of_row)), np.array([], dtype=int)
    else:
        train_idx, valid_idx = fold_rows(worker.fold_of_row, fold, worker.ordered)
    tag = f"{worker.tag} " + ("all rows" if fold == ALL_ROWS else f"fold {fold}")
    result = worker.fit_predict(Fold(train_idx, valid_idx, tag))
    return fold, result, time.perf_counter() - started

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

import numpy as np

from .folds import fold_rows
from .io import load_arrays, read_json, save_arrays, write_json
from .models import MODELS, FitPredict, FoldPlan
from .params import Params
from .prepare import load_prepared
from .tasks import Task
from .workers import worker_map

log = logging.getLogger(__name__)
ALL_ROWS = -1  # work item: fit on every train row, predict test only


def prediction_paths(task: Task, model: str):
    base = (task.ensemble_dir if model == "ensemble" else task.predictions_dir) / model
    return base.with_suffix(".npz"), base.with_suffix(".json")


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
    spec = MODELS[model]
    train_df, test_df, meta = load_prepared(task)
    record = {"task": task.name, "model": model, "available": meta["available"]}
    skipped = spec.skip(task, model, params) if meta["available"] and spec.skip else None
    if skipped:
        record["available"] = False
    if not record["available"]:
        save_unavailable(task, model, record, skipped or meta["reason"])
        return record
    from .metrics import all_scores, score  # sklearn: only when there is data

    n_classes = len(meta["classes"])
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


@dataclass(frozen=True)
class _FoldWorker:
    """What a worker process builds once for the model being trained: its fold trainer."""

    tag: str
    fold_of_row: np.ndarray
    ordered: bool
    fit_predict: FitPredict


def _start_fold_worker(task: Task, model: str, params: Params, trainer_args: dict) -> _FoldWorker:
    train_df, test_df, meta = load_prepared(task)
    n_classes = len(meta["classes"])
    return _FoldWorker(
        tag=f"train {task.name} {model}",
        fold_of_row=train_df["fold"].to_numpy(),
        ordered=meta.get("cv", {}).get("ordered", False),
        fit_predict=MODELS[model].factory(task, params, train_df, test_df, n_classes, **trainer_args),
    )


def _run_fold(worker: _FoldWorker, fold: int) -> tuple[int, np.ndarray, np.ndarray, float, list[dict]]:
    started = time.perf_counter()
    if fold == ALL_ROWS:
        train_idx, valid_idx = np.arange(len(worker.fold_of_row)), np.array([], dtype=int)
    else:
        train_idx, valid_idx = fold_rows(worker.fold_of_row, fold, worker.ordered)
    fit_predict = worker.fit_predict
    # Trainers that log (RNN epochs, TF-IDF convergence) start their lines with this tag
    # (an attribute every trainer may read: the registry's call signature stays two arrays).
    fit_predict.tag = f"{worker.tag} " + ("all rows" if fold == ALL_ROWS else f"fold {fold}")  # type: ignore[attr-defined]
    valid_proba, test_proba = fit_predict(train_idx, valid_idx)
    # RNN trainers leave their per-epoch losses on `fit_predict.epochs` (the report plots them).
    return fold, valid_proba, test_proba, time.perf_counter() - started, getattr(fit_predict, "epochs", [])


def load_predictions(task: Task, model: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The record and arrays that :func:`train` (or the ensemble) saved for ``model``."""
    arrays_path, record_path = prediction_paths(task, model)
    return read_json(record_path), load_arrays(arrays_path)

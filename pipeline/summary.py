"""``summary`` stage: the numbers to compare across commits, gathered from every task's report.

``metrics/validation.json`` holds each validation task's test scores (or why it has none) and
``metrics/headline.json`` the few numbers ``dvc exp show`` lists: the competition's CV of the
ensemble and of the best single model, and each validation task's ensemble test accuracy.
"""

from __future__ import annotations

import logging

from .core.io import read_json, write_json
from .core.outputs import METRICS_DIR
from .core.params import Params

log = logging.getLogger(__name__)


VALIDATION_KEYS = ("accuracy", "f1_macro", "f1_weighted")


def validation_summary(params: Params) -> dict:
    """Gather ``metrics/<task>.json`` of the validation tasks into ``metrics/validation.json``.

    Keys: ``<task>.<model>.test_<metric>`` and ``<task>.available``; an unavailable task
    keeps its reason and fix so ``dvc metrics show`` says why it has no scores.
    """
    summary: dict = {}
    for name in params.validation.tasks:
        path = METRICS_DIR / f"{name}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `dvc repro report@{name}` first")
        task_metrics = read_json(path)
        summary[f"{name}.available"] = task_metrics.get("available", 0)
        for model, scores in task_metrics.get("test", {}).items():
            summary.update({f"{name}.{model}.test_{k}": scores[k] for k in VALIDATION_KEYS})
        for key in ("unavailable_reason", "unavailable_fix"):
            if key in task_metrics:
                summary[f"{name}.{key}"] = task_metrics[key]
    write_json(METRICS_DIR / "validation.json", summary)
    log.info(
        "[report validation] %s",
        ", ".join(f"{k}={v:.4f}" for k, v in summary.items() if k.endswith(".test_accuracy"))
        or "no test scores",
    )
    return summary


def headline(params: Params) -> dict:
    """``metrics/headline.json``, the few numbers ``dvc exp show`` lists: the competition's CV
    ``competition.metric`` of the ensemble (``cv``) and of the best single model (``cv_single``),
    and each validation task's ensemble test accuracy (``<task>_test``; null when unavailable).
    Every score stays in ``metrics/<task>.json``."""
    cv = read_json(METRICS_DIR / "competition.json").get("cv", {})
    metric = params.competition.metric
    singles = [scores[metric] for model, scores in cv.items() if model != "ensemble"]
    numbers = {"cv": cv.get("ensemble", {}).get(metric), "cv_single": max(singles, default=None)}
    for name in params.validation.tasks:
        test = read_json(METRICS_DIR / f"{name}.json").get("test", {})
        numbers[f"{name}_test"] = test.get("ensemble", {}).get("accuracy")
    write_json(METRICS_DIR / "headline.json", numbers)
    return numbers


def summary(params: Params) -> dict:
    """``summary`` stage: ``metrics/validation.json`` and ``metrics/headline.json``."""
    validation_summary(params)
    return headline(params)

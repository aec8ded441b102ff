"""Fold-loop hooks of the transformer models (see :class:`pipeline.models.ModelSpec`).

Kept apart from :mod:`pipeline.models.transformer`: these rules read only a few params,
and a stage depends on the module its hooks live in.
"""

from __future__ import annotations

from ..core.params import Params
from ..core.tasks import Task
from ..core.workers import params_per_process
from . import FoldPlan


def unless_transformer_task(task: Task, model: str, params: Params) -> str | None:
    """The transformer models run only on ``transformer.tasks`` (their CPU cost)."""
    if model in params.models.transformer and model not in task.models_to_run(params):
        return "not in transformer.tasks (CPU cost)"
    return None


def finetune_plan(task: Task, model: str, params: Params) -> FoldPlan:
    """The first ``transformer.finetune.folds``, ``transformer.finetune.processes`` at a time."""
    folds = min(params.cv.folds, params.transformer.finetune.folds)
    processes = min(params.transformer.finetune.processes, folds)
    return FoldPlan(folds, params_per_process(params, processes), processes)

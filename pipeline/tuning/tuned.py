"""The configuration the ``tune`` stage chose for an RNN model.

:mod:`pipeline.tune` writes ``data/tuning/<task>/<model>/best_params.json``; the ``train``
stage reads it here (the RNN models' fold plan) and passes the config into the model.
"""

from __future__ import annotations

from ..core.outputs import best_params_path, load_best_params
from ..core.params import Params, RNNConfig
from ..core.tasks import Task


def best_config(task: Task, model: str, params: Params) -> RNNConfig:
    """The configuration the ``tune`` stage chose (``neural.defaults`` without tuning)."""
    if not best_params_path(task, model).exists():
        return params.neural.defaults
    return RNNConfig.model_validate(load_best_params(task, model).config)

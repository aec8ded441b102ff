"""The worker side of the ``tune`` stage: one trial = one RNN trained on the folds ≠ 0 and
scored on fold 0 (``time`` folds: the rows before fold 0), through the same
:func:`pipeline.models.rnn.run` as the ``train`` stage's folds.

Each worker process builds a :class:`TrialWorker` once (data loaded, storage opened) and
then runs the trials it is handed by id.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import PipelineError
from ..core.params import Params
from ..core.tasks import Task
from .study import make_storage, objective_of, pruner, sample_config, study_name

log = logging.getLogger(__name__)


def pruning_callback(trial, monitor: str):
    """Optuna's Keras pruning callback, failing loudly when ``monitor`` is not logged (the
    stock callback only warns, which silently disables pruning)."""
    from optuna_integration import KerasPruningCallback

    class StrictPruning(KerasPruningCallback):
        def on_epoch_end(self, epoch, logs=None):
            if monitor not in (logs or {}):
                raise PipelineError(
                    f"pruning monitors {monitor!r}, not in the Keras logs {sorted(logs or {})}"
                )
            super().on_epoch_end(epoch, logs)

    return StrictPruning(trial, monitor)


@dataclass
class TrialWorker:
    """One study's trials in one process: the data, loaded once, and the study."""

    task: Task
    model: str
    params: Params
    study: Any  # optuna.Study, opened in this process
    tokens: Any  # pipeline.models.rnn.Tokens
    vectors: np.ndarray | None
    y: np.ndarray
    n_classes: int
    train_idx: np.ndarray
    valid_idx: np.ndarray

    def objective(self, trial) -> float:
        """Train the trial's configuration; its score on fold 0 (``tune.objective``)."""
        from ..core.metrics import score
        from ..models.rnn import Network, run

        params, goal = self.params, objective_of(self.task, self.params)
        config, vocab_size = self.tokens.fit_config(sample_config(trial, params))
        X = self.tokens.token_matrix("train", config, vocab_size)
        valid = (X[self.valid_idx], self.y[self.valid_idx])
        curves, (valid_proba,) = run(
            Network(self.model, config, self.n_classes, vocab_size, self.vectors),  # lstm/gru: model = cell
            params.seed + trial.number,
            params.neural.threads,
            self.task.rnn_work(params).schedule(params.neural),
            (X[self.train_idx], self.y[self.train_idx]),
            valid,
            [valid[0]],
            tag=f"tune {self.task.name} {self.model} trial {trial.number}",
            callbacks=(pruning_callback(trial, goal.monitor),),
        )
        trial.set_user_attr("epochs_run", len(curves["loss"]))
        trial.set_user_attr("worker_pid", os.getpid())
        return score(goal.name, valid[1], valid_proba)


def start_worker(task: Task, model: str, params: Params, storage_url: str | None) -> TrialWorker:
    """Load the data and open the study, once per worker process."""
    import optuna

    from ..core.outputs import load_prepared, load_vectors
    from ..cv.folds import fold_rows
    from ..models.rnn import load_tokens

    train, _, meta = load_prepared(task)
    y, fold = train["y"].to_numpy(), train["fold"].to_numpy()
    train_idx, valid_idx = fold_rows(fold, 0, meta.ordered)
    if len(train_idx) > params.tune.max_train_rows:  # big data: trials compare configs, cheaper
        rng = np.random.default_rng(params.seed)
        train_idx = np.sort(rng.choice(train_idx, params.tune.max_train_rows, replace=False))
    study = optuna.load_study(
        study_name=study_name(task, model, params),
        pruner=pruner(params),
        storage=make_storage(storage_url, task),
    )
    return TrialWorker(
        task,
        model,
        params,
        study,
        load_tokens(task),
        load_vectors(task),
        y,
        len(meta.classes),
        train_idx,
        valid_idx,
    )


def run_trial(worker: TrialWorker, trial_id: int) -> tuple[str, float | None, float]:
    """Run one asked trial; return its state ("complete", "pruned", "fail"), value, seconds."""
    import optuna

    started = time.perf_counter()
    # Optuna builds a Trial by storage id outside `optimize` too (its docs advise against it
    # in user objectives; here the parent asked the trial and a worker runs it).
    trial = optuna.trial.Trial(worker.study, trial_id)
    try:
        value = worker.objective(trial)
        return "complete", float(value), time.perf_counter() - started
    except optuna.TrialPruned:
        return "pruned", None, time.perf_counter() - started
    except Exception as error:  # recorded, so an all-failed study can say why
        log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
        trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
        return "fail", None, time.perf_counter() - started

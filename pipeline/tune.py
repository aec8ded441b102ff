"""``tune`` stage: one Optuna study per RNN model (``lstm``, ``gru``) and task.

Trials train on the folds ≠ 0 (``time`` folds: the rows before fold 0) and are scored on
fold 0: by default they minimise the
log loss there (``tune.objective: log_loss``), or maximise the task's metric (``metric``). A
seeded TPE sampler proposes configurations from ``tune.space``; a median pruner stops poor
trials from the per-epoch value Keras logs for the objective (``val_loss``, or
``val_accuracy``). The first trial is ``neural.defaults``.

Here: the stage and its rounds of trials. :mod:`pipeline.tuning.study` (storage, study name,
search space), :mod:`pipeline.tuning.trials` (a trial, in a worker process),
:mod:`pipeline.tuning.plots` (charts).

Outputs ``data/tuning/<task>/<model>/``: ``best_params.json``, ``trials.csv``,
``history.png``, ``importance.png``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .core.errors import PipelineError
from .core.io import atomic_path, write_json
from .core.outputs import BestParams, best_params_path, load_meta, trials_path
from .core.params import Budget, Params
from .core.secrets import mask_url
from .core.tasks import Task
from .core.workers import params_per_process, worker_map
from .tuning.plots import save_plots
from .tuning.study import (
    JOURNAL_DIR,
    create_study,
    fail_stale_trials,
    heartbeat,
    make_storage,
    objective_of,
    open_study,
    resolve_storage,
    search_space,
    trial_ids,
)
from .tuning.trials import run_trial, start_worker

log = logging.getLogger(__name__)


def run_trials(
    task: Task, model: str, params: Params, storage_url: str | None = None, processes: int = 1
) -> None:
    """Run the study's remaining trials in rounds of ``processes`` trials side by side.

    Each round asks the seeded sampler for its trials, runs them (one per process) and
    tells the results before the next round is asked, and the median pruner compares with
    finished trials only: the trials and their scores depend on the params, never on which
    process finished first. The budget is counted in the storage, so several machines on
    one RDB study share it.
    """
    import optuna
    from optuna.trial import TrialState

    budget = task.rnn_work(params).tuning
    storage = make_storage(storage_url, task)
    study = open_study(task, model, params, storage)
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=counted))
    if done >= budget.n_trials:
        log.info("[tune %s] budget already used (%d trials done)", study.study_name, done)
        return
    log.info(
        "[tune %s] %d trial(s) done before, running up to %d more, %d at a time (timeout %.0f s, storage %s)",
        study.study_name,
        done,
        budget.n_trials - done,
        processes,
        budget.timeout,
        mask_url(storage_url) if storage_url else f"journal file in {JOURNAL_DIR}/",
    )
    space, started = search_space(params), time.perf_counter()
    attempts = budget.n_trials - done  # failed trials use an attempt too: no endless retries
    with worker_map(
        processes, start_worker, (task, model, params_per_process(params, processes), storage_url)
    ) as run:
        while attempts > 0:
            if storage_url:  # trials of a dead machine (no heartbeat) no longer count as running
                optuna.storages.fail_stale_trials(study)
            done = len(study.get_trials(deepcopy=False, states=counted))
            if done >= budget.n_trials or time.perf_counter() - started >= budget.timeout:
                break
            trials = [study.ask(space) for _ in range(min(processes, budget.n_trials - done, attempts))]
            attempts -= len(trials)
            ids = trial_ids(storage, study, [t.number for t in trials])
            with heartbeat(storage, ids):
                outcomes = list(run(run_trial, ids))
            for trial, (state, value, seconds) in zip(trials, outcomes):
                study.tell(trial, value, state=TrialState[state.upper()])
                _log_trial(study, trial.number, seconds, started, budget)


def _log_trial(study, number: int, seconds: float, started: float, budget: Budget) -> None:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    trial = trials[number]
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    any_complete = any(t.state == TrialState.COMPLETE for t in trials)
    used = time.perf_counter() - started
    log.info(
        "[tune %s] trial %d %s value=%s best=%s (%.0f s; %d/%d trials, %.0f s of %.0f s budget) %s",
        study.study_name,
        number,
        trial.state.name.lower(),
        "-" if trial.value is None else f"{trial.value:.4f}",
        f"{study.best_value:.4f}" if any_complete else "-",
        seconds,
        len(done),
        budget.n_trials,
        used,
        budget.timeout,
        trial.params,
    )


def tune(
    task: Task, model: str, params: Params, storage: str | None = None, processes: int | None = None
) -> dict:
    """Run the study for ``model`` on ``task`` and write its outputs.

    ``processes`` (default ``neural.processes``) trials run side by side.
    """
    from .models import MODELS, in_group

    if model not in in_group("rnn"):
        raise ValueError(f"tune: {model!r} is not an RNN model; known: {in_group('rnn')}")
    meta = load_meta(task)
    budget, goal = task.rnn_work(params).tuning, objective_of(task, params)
    found: dict[str, Any] = {}  # what the study found, or a note on why there was none
    storage_url = resolve_storage(storage, params)
    study = None
    if meta.available and budget.n_trials > 0 and MODELS[model].tunable:
        study = create_study(task, model, params, storage_url)
        if not storage_url:  # the local journal is this run's alone: RUNNING means killed
            fail_stale_trials(study)
        run_trials(task, model, params, storage_url, processes or params.neural.processes)
        study = create_study(task, model, params, storage_url)  # reload what the workers did
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            failed = [t for t in study.trials if t.state.name == "FAIL"]
            why = failed[0].user_attrs.get("fail_reason", "unknown") if failed else "all trials were pruned"
            raise PipelineError(
                mask_url(f"tuning {model} on {task.name}: no trial completed; first failure: {why}")
            )
        best = study.best_trial
        config = params.neural.defaults.model_copy(update=best.params)
        found = {
            "study": study.study_name,
            "best_value": best.value,
            "best_trial": best.number,
            "n_complete": len(complete),
            "n_trials": len(study.trials),
            "metric": goal.name,
        }
    else:
        config = params.neural.defaults
        found["note"] = (
            "fixed architecture, not tuned"
            if not MODELS[model].tunable
            else "no tuning (budget n_trials is 0 or task unavailable): neural.defaults used"
        )
    record = BestParams(
        task=task.name, model=model, available=meta.available, config=config.model_dump(), **found
    )
    with atomic_path(task.tuning_dir(model)) as out:
        out.mkdir()
        if study is not None:
            study.trials_dataframe().to_csv(out / trials_path(task, model).name, index=False)
            save_plots(study, out)
        write_json(out / best_params_path(task, model).name, record.dump())
    if study is not None:
        log.info(
            "[tune %s/%s] best %s=%.4f (trial %d): %s",
            task.name,
            model,
            goal.name,
            record.best_value,
            best.number,
            best.params,
        )
    return record.dump()

"""The Optuna side of the ``tune`` stage: storage, study name, search space, study creation.

Storage: a JournalFileBackend file under ``data/optuna/`` (safe for several local
processes; survives interruption, so a rerun resumes the study), or any Optuna storage URL
(``tune.storage`` / ``--storage``, e.g. PostgreSQL for several machines). The study name
carries a hash of everything that changes what a trial measures, so a changed search space
or dataset (or word vectors) starts a new study while an interrupted one resumes.

Only Optuna's public API: trials are addressed through the storage's own methods.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from ..core.errors import PipelineError
from ..core.io import sha256_file
from ..core.outputs import sequences_path, vectors_path
from ..core.params import Params, RNNConfig
from ..core.secrets import mask_url
from ..core.tasks import Task

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

log = logging.getLogger(__name__)
JOURNAL_DIR = Path("data/optuna")

# A storage URL with a password belongs in the environment: params.yaml is committed and
# DVC copies params into dvc.lock.
STORAGE_ENV = "PIPELINE_OPTUNA_STORAGE"


def resolve_storage(cli_url: str | None, params: Params) -> str:
    """``--storage``, else $PIPELINE_OPTUNA_STORAGE, else ``tune.storage`` ("" = journal file)."""
    return cli_url if cli_url is not None else (os.environ.get(STORAGE_ENV) or params.tune.storage)


class Objective(NamedTuple):
    """What the trials optimise: the score, its direction and the Keras log that prunes."""

    name: str
    direction: Literal["minimize", "maximize"]
    monitor: str


def objective_of(task: Task, params: Params) -> Objective:
    """The trials' objective for ``task`` under ``tune.objective``."""
    if params.tune.objective == "log_loss":
        return Objective("log_loss", "minimize", "val_loss")
    return Objective(task.metric, "maximize", "val_accuracy")


def study_name(task: Task, model: str, params: Params) -> str:
    """``<task>-<model>-<hash>``: the hash covers the data and whatever a trial depends on."""
    vectors = vectors_path(task)  # trials start from these word vectors
    measured = {
        "objective": objective_of(task, params).name,
        "space": params.tune.space.model_dump(),
        "defaults": params.neural.defaults.model_dump(),
        "seed": params.seed,
        "epochs": task.rnn_work(params).epochs,
        "patience": params.neural.patience,
        "reduce_lr": params.neural.reduce_lr,
        "processes": params.neural.processes,  # trials per round: what TPE sees when asked
        "startup": params.tune.startup_trials,
        "rows": params.tune.max_train_rows,
        "warmup": params.tune.pruner_warmup_epochs,
        "data": sha256_file(sequences_path(task)),
        "vectors": sha256_file(vectors) if vectors.exists() else None,
    }
    digest = hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()[:10]
    return f"{task.name}-{model}-{digest}"


def make_storage(url: str | None, task: Task):
    """An Optuna storage object: the URL given, else a journal file under ``data/optuna/``."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url:
        if url.startswith(("postgresql", "mysql", "sqlite")):
            try:  # heartbeats let other workers mark trials of a dead worker as failed
                return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
            except Exception as error:  # driver missing, server down, bad password
                raise PipelineError(
                    f"cannot open Optuna storage {mask_url(url)}: {mask_url(str(error)).splitlines()[0]}"
                ) from None
        return optuna.storages.RDBStorage(url)  # what Optuna makes of any other URL
    JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(JOURNAL_DIR / f"{task.name}.journal")))


def search_space(params: Params) -> dict[str, BaseDistribution]:
    """``tune.space`` as Optuna distributions (learning rate on a log scale)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space = params.tune.space
    distributions: dict[str, BaseDistribution] = {
        name: CategoricalDistribution(list(getattr(space, name)))
        for name in ("embedding_dim", "units", "layers", "bidirectional", "batch_size", "seq_len", "truncate")
    }
    distributions["dropout"] = FloatDistribution(*space.dropout)
    distributions["spatial_dropout"] = FloatDistribution(*space.spatial_dropout)
    distributions["learning_rate"] = FloatDistribution(*space.learning_rate, log=True)
    return distributions


def sample_config(trial, params: Params) -> RNNConfig:
    """The trial's configuration: its sampled params over ``neural.defaults``."""
    return params.neural.defaults.model_copy(update=trial.params)


def pruner(params: Params):
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=params.tune.pruner_warmup_epochs)


def open_study(task: Task, model: str, params: Params, storage):
    """Create (or load) the study in ``storage`` (a :func:`make_storage` object); enqueue
    ``neural.defaults`` as the first trial of a new one."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per run
    sampler = optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=params.tune.startup_trials)
    study = optuna.create_study(
        study_name=study_name(task, model, params),
        storage=storage,
        sampler=sampler,
        pruner=pruner(params),
        direction=objective_of(task, params).direction,
        load_if_exists=True,
    )
    if not study.trials:
        defaults = params.neural.defaults.model_dump()
        space = params.tune.space.model_dump()
        study.enqueue_trial({k: v for k, v in defaults.items() if k in space})
    return study


def create_study(task: Task, model: str, params: Params, storage_url: str | None = None):
    """:func:`open_study` in the storage of ``storage_url`` (None or "": the journal file)."""
    return open_study(task, model, params, make_storage(storage_url, task))


def fail_stale_trials(study) -> int:
    """Mark trials left RUNNING by a killed run as failed; return how many.

    Only for storage that this run alone uses (the local journal file); shared RDB storages
    rely on Optuna's heartbeat instead.
    """
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for trial in stale:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    if stale:
        log.warning("marked %d interrupted trial(s) as failed: %s", len(stale), [t.number for t in stale])
    return len(stale)


def trial_ids(storage, study, numbers: list[int]) -> list[int]:
    """The storage's ids of the study's trials ``numbers`` (a worker opens a trial by id)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return [storage.get_trial_id_from_study_id_trial_number(study_id, n) for n in numbers]


@contextmanager
def heartbeat(storage, ids: list[int]) -> Iterator[None]:
    """Keep the trials ``ids`` alive in an RDB storage while workers run them, so that other
    machines' ``fail_stale_trials`` only fails the trials of a dead machine."""
    if not (hasattr(storage, "is_heartbeat_enabled") and storage.is_heartbeat_enabled()):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            for trial_id in ids:
                storage.record_heartbeat(trial_id)
            stop.wait(storage.get_heartbeat_interval())

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

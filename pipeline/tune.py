"""``tune`` stage: one Optuna study per RNN family (LSTM, GRU) and task.

Trials train on the folds ≠ 0 (``time`` folds: the rows before fold 0) and are scored on
fold 0: by default they minimise the
log loss there (``tune.objective: log_loss``), or maximise the task's metric (``metric``). A
seeded TPE sampler proposes configurations from ``tune.space``; a median pruner stops poor
trials from the per-epoch value Keras logs for the objective (``val_loss``, or
``val_accuracy``). The first trial is ``neural.defaults``.

Storage: a JournalFileBackend file under ``data/optuna/`` (safe for several local
processes; survives interruption, so a rerun resumes the study), or any Optuna storage URL
(``tune.storage`` / ``--storage``, e.g. PostgreSQL for several machines). The study name
carries a hash of everything that changes what a trial measures, so a changed search space
or dataset (or word vectors) starts a new study while an interrupted one resumes.

Outputs ``data/tuning/<task>/<family>/``: ``best_params.json``, ``trials.csv``,
``history.png``, ``importance.png``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import PipelineError
from .io import atomic_path, read_json, sha256_file, write_json
from .params import Budget, Params, RNNConfig
from .secrets import mask_url
from .tasks import Task
from .workers import params_per_process, worker_map

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
    direction: str
    monitor: str


def objective_of(task: Task, params: Params) -> Objective:
    """The trials' objective for ``task`` under ``tune.objective``."""
    if params.tune.objective == "log_loss":
        return Objective("log_loss", "minimize", "val_loss")
    return Objective(task.metric, "maximize", "val_accuracy")


def study_name(task: Task, kind: str, params: Params) -> str:
    """``<task>-<kind>-<hash>``: the hash covers the data and whatever a trial depends on."""
    vectors = task.embeddings_dir / "vectors.npy"  # trials start from these word vectors
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
        "data": sha256_file(task.features_dir / "sequences.npz"),
        "vectors": sha256_file(vectors) if vectors.exists() else None,
    }
    digest = hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()[:10]
    return f"{task.name}-{kind}-{digest}"


def make_storage(url: str | None, task: Task):
    """An Optuna storage: the URL given, else a journal file under ``data/optuna/``."""
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
        return url
    JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(JOURNAL_DIR / f"{task.name}.journal")))


def search_space(params: Params) -> dict:
    """``tune.space`` as Optuna distributions (learning rate on a log scale)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space = params.tune.space
    distributions = {
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


def _pruning_callback(trial, monitor: str):
    from optuna_integration import KerasPruningCallback

    class StrictPruning(KerasPruningCallback):
        """Fails loudly when the monitored metric is missing (the stock callback only warns,
        which silently disables pruning)."""

        def on_epoch_end(self, epoch, logs=None):
            if monitor not in (logs or {}):
                raise PipelineError(
                    f"pruning monitors {monitor!r}, not in the Keras logs {sorted(logs or {})}"
                )
            super().on_epoch_end(epoch, logs)

    return StrictPruning(trial, monitor)


def _objective(task: Task, kind: str, params: Params):
    from .embed import load_vectors
    from .folds import fold_rows
    from .metrics import score
    from .models.rnn import build_model, fit, predict_proba, set_determinism
    from .prepare import load_prepared
    from .tokenize import effective_length, load_sequences, to_matrix

    train, _, meta = load_prepared(task)
    record, arrays = load_sequences(task)
    vectors = load_vectors(task)
    y, fold = train["y"].to_numpy(), train["fold"].to_numpy()
    n_classes = len(meta["classes"])
    train_idx, valid_idx = fold_rows(fold, 0, meta.get("cv", {}).get("ordered", False))
    schedule = task.rnn_work(params).schedule(params.neural)
    goal = objective_of(task, params)
    if len(train_idx) > params.tune.max_train_rows:  # big data: trials compare configs, cheaper
        rng = np.random.default_rng(params.seed)
        train_idx = np.sort(rng.choice(train_idx, params.tune.max_train_rows, replace=False))

    def objective(trial) -> float:
        import keras

        config = sample_config(trial, params)
        config = config.model_copy(
            update={"seq_len": effective_length(config.seq_len, arrays["train_lengths"])}
        )
        vocab_size = min(config.vocab_size, record["vocab_size"])
        X = to_matrix(
            arrays["train_values"], arrays["train_lengths"], config.seq_len, config.truncate, vocab_size
        )
        try:
            set_determinism(params.seed + trial.number, params.neural.threads)
            model = build_model(kind, config, n_classes, vocab_size, vectors)
            history = fit(
                model,
                X[train_idx],
                y[train_idx],
                X[valid_idx],
                y[valid_idx],
                schedule,
                config.batch_size,
                callbacks=[_pruning_callback(trial, goal.monitor)],
                tag=f"tune {task.name} {kind} trial {trial.number}",
            )
            trial.set_user_attr("epochs_run", len(history.history["loss"]))
            trial.set_user_attr("worker_pid", os.getpid())
            return score(goal.name, y[valid_idx], predict_proba(model, X[valid_idx]))
        finally:
            keras.backend.clear_session()

    return objective


# One study's objective per worker process: its data is loaded once, not once per trial.
_WORKER: dict = {}


def _start_worker(task: Task, kind: str, params: Params, storage_url: str | None) -> None:
    _WORKER.clear()
    _WORKER.update(
        task=task, kind=kind, params=params, storage_url=storage_url, objective=_objective(task, kind, params)
    )


def _run_trial(trial_id: int) -> tuple[str, float | None, float]:
    """Run one asked trial; return its state ("complete", "pruned", "fail"), value, seconds."""
    import optuna

    started = time.perf_counter()
    if "study" not in _WORKER:  # one storage connection per worker, not one per trial
        task, params = _WORKER["task"], _WORKER["params"]
        _WORKER["study"] = optuna.load_study(
            study_name=study_name(task, _WORKER["kind"], params),
            pruner=_pruner(params),
            storage=make_storage(_WORKER["storage_url"], task),
        )
    trial = optuna.trial.Trial(_WORKER["study"], trial_id)
    try:
        value = _WORKER["objective"](trial)
        return "complete", float(value), time.perf_counter() - started
    except optuna.TrialPruned:
        return "pruned", None, time.perf_counter() - started
    except Exception as error:  # recorded, so an all-failed study can say why
        log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
        trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
        return "fail", None, time.perf_counter() - started


def fail_stale_trials(study) -> int:
    """Mark trials left RUNNING by a killed run as failed; return how many.

    Only for storage that this run alone uses (the local journal file); shared RDB storages
    rely on Optuna's heartbeat instead.
    """
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    if stale:
        log.warning("marked %d interrupted trial(s) as failed: %s", len(stale), [t.number for t in stale])
    return len(stale)


def _pruner(params: Params):
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=params.tune.pruner_warmup_epochs)


def create_study(task: Task, kind: str, params: Params, storage_url: str | None = None):
    """Create (or load) the study; enqueue ``neural.defaults`` as the first trial of a new one."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=params.tune.startup_trials)
    study = optuna.create_study(
        study_name=study_name(task, kind, params),
        storage=make_storage(storage_url, task),
        sampler=sampler,
        pruner=_pruner(params),
        direction=objective_of(task, params).direction,
        load_if_exists=True,
    )
    if not study.trials:
        defaults = params.neural.defaults.model_dump()
        space = params.tune.space.model_dump()
        study.enqueue_trial({k: v for k, v in defaults.items() if k in space})
    return study


@contextmanager
def _heartbeat(study, trials):
    """Keep the trials alive in an RDB storage while workers run them, so that other
    machines' ``fail_stale_trials`` only fails the trials of a dead machine."""
    import threading

    storage = study._storage
    if not (hasattr(storage, "is_heartbeat_enabled") and storage.is_heartbeat_enabled()):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            for trial in trials:
                storage.record_heartbeat(trial._trial_id)
            stop.wait(storage.get_heartbeat_interval())

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_trials(
    task: Task, kind: str, params: Params, storage_url: str | None = None, processes: int = 1
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

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = task.rnn_work(params).tuning
    study = create_study(task, kind, params, storage_url)
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
        processes, _start_worker, (task, kind, params_per_process(params, processes), storage_url)
    ) as run:
        while attempts > 0:
            if storage_url:  # trials of a dead machine (no heartbeat) no longer count as running
                optuna.storages.fail_stale_trials(study)
            done = len(study.get_trials(deepcopy=False, states=counted))
            if done >= budget.n_trials or time.perf_counter() - started >= budget.timeout:
                break
            trials = [study.ask(space) for _ in range(min(processes, budget.n_trials - done, attempts))]
            attempts -= len(trials)
            with _heartbeat(study, trials):
                outcomes = list(run(_run_trial, [t._trial_id for t in trials]))
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


def _plots(study, out: Path) -> None:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for name, plot, needed in (
        ("history.png", plot_optimization_history, 1),
        ("importance.png", plot_param_importances, 2),
    ):
        try:
            if len(complete) < needed:
                raise ValueError(f"{len(complete)} completed trial(s)")
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore", ExperimentalWarning)
                ax = plot(study)
            ax.figure.savefig(out / name, dpi=100, bbox_inches="tight")
        except (ValueError, RuntimeError) as why:  # e.g. importance needs 2+ distinct trials
            fig, ax = plt.subplots(figsize=(5, 2))
            ax.text(0.5, 0.5, f"{name[:-4]} not available:\n{why}", ha="center", va="center")
            ax.axis("off")
            fig.savefig(out / name, dpi=100)
        plt.close("all")


def tune(
    task: Task, kind: str, params: Params, storage: str | None = None, processes: int | None = None
) -> dict:
    """Run the study for ``kind`` on ``task`` and write its outputs.

    ``processes`` (default ``neural.processes``) trials run side by side.
    """
    from .models import MODELS
    from .prepare import load_prepared

    if kind not in MODELS or MODELS[kind].family != "rnn":
        raise ValueError(
            f"tune: {kind!r} is not an RNN model; known: "
            f"{sorted(m for m, s in MODELS.items() if s.family == 'rnn')}"
        )
    _, _, meta = load_prepared(task)
    budget, goal = task.rnn_work(params).tuning, objective_of(task, params)
    result: dict = {"task": task.name, "model": kind, "available": meta["available"]}
    storage_url = resolve_storage(storage, params)
    study = None
    if meta["available"] and budget.n_trials > 0 and MODELS[kind].tunable:
        study = create_study(task, kind, params, storage_url)
        if not storage_url:  # the local journal is this run's alone: RUNNING means killed
            fail_stale_trials(study)
        run_trials(task, kind, params, storage_url, processes or params.neural.processes)
        study = create_study(task, kind, params, storage_url)  # reload what the workers did
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            failed = [t for t in study.trials if t.state.name == "FAIL"]
            why = failed[0].user_attrs.get("fail_reason", "unknown") if failed else "all trials were pruned"
            raise PipelineError(
                mask_url(f"tuning {kind} on {task.name}: no trial completed; first failure: {why}")
            )
        best = study.best_trial
        config = params.neural.defaults.model_copy(update=best.params)
        result.update(
            study=study.study_name,
            best_value=best.value,
            best_trial=best.number,
            n_complete=len(complete),
            n_trials=len(study.trials),
            metric=goal.name,
        )
    else:
        config = params.neural.defaults
        result["note"] = (
            "fixed architecture, not tuned"
            if not MODELS[kind].tunable
            else "no tuning (budget n_trials is 0 or task unavailable): neural.defaults used"
        )
    result["config"] = config.model_dump()
    with atomic_path(task.tuning_dir(kind)) as out:
        out.mkdir()
        if study is not None:
            study.trials_dataframe().to_csv(out / "trials.csv", index=False)
            _plots(study, out)
        write_json(out / "best_params.json", result)
    if study is not None:
        log.info(
            "[tune %s/%s] best %s=%.4f (trial %d): %s",
            task.name,
            kind,
            goal.name,
            result["best_value"],
            result["best_trial"],
            best.params,
        )
    return result


def best_config(task: Task, kind: str, params: Params) -> RNNConfig:
    """The configuration the ``tune`` stage chose (``neural.defaults`` without tuning)."""
    path = task.tuning_dir(kind) / "best_params.json"
    if not path.exists():
        return params.neural.defaults
    return RNNConfig.model_validate(read_json(path)["config"])

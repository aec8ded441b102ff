"""``tune`` stage: one Optuna study per RNN family (LSTM, GRU) and task.

Trials train on the folds ≠ 0 and are scored on fold 0 with the task's metric. A seeded
TPE sampler proposes configurations from ``tune.space``; a median pruner stops poor trials
from the per-epoch ``val_accuracy`` that Keras logs. The first trial is ``neural.defaults``.

Storage: a JournalFileBackend file under ``data/optuna/`` (safe for several local
processes; survives interruption, so a rerun resumes the study), or any Optuna storage URL
(``tune.storage`` / ``--storage``, e.g. PostgreSQL for several machines). The study name
carries a hash of everything that changes what a trial measures, so a changed search space
or dataset starts a new study while an interrupted one resumes.

Outputs ``data/tuning/<task>/<family>/``: ``best_params.json``, ``trials.csv``,
``history.png``, ``importance.png``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from .errors import PipelineError
from .io import atomic_path, read_json, sha256_file, write_json
from .params import Budget, Params, RNNConfig
from .secrets import mask_url
from .tasks import Task

log = logging.getLogger(__name__)
JOURNAL_DIR = Path("data/optuna")


# A storage URL with a password belongs in the environment: params.yaml is committed and
# DVC copies params into dvc.lock.
STORAGE_ENV = "PIPELINE_OPTUNA_STORAGE"


def resolve_storage(cli_url: str | None, params: Params) -> str:
    """``--storage``, else $PIPELINE_OPTUNA_STORAGE, else ``tune.storage`` ("" = journal file)."""
    return cli_url if cli_url is not None else (os.environ.get(STORAGE_ENV) or params.tune.storage)


def budget_for(task: Task, params: Params) -> Budget:
    return params.tune.budget if task.is_competition else params.validation.budget


def study_name(task: Task, kind: str, params: Params) -> str:
    """``<task>-<kind>-<hash>``: the hash covers the data and whatever a trial depends on."""
    measured = {"space": params.tune.space.model_dump(), "defaults": params.neural.defaults.model_dump(),
                "seed": params.seed, "epochs": params.neural.epochs, "patience": params.neural.patience,
                "startup": params.tune.startup_trials, "rows": params.tune.max_train_rows, "warmup": params.tune.pruner_warmup_epochs,
                "data": sha256_file(task.features_dir / "sequences.npz")}
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
                raise PipelineError(f"cannot open Optuna storage {mask_url(url)}: "
                                    f"{mask_url(str(error)).splitlines()[0]}") from None
        return url
    JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(JOURNAL_DIR / f"{task.name}.journal")))


def sample_config(trial, params: Params) -> RNNConfig:
    """One configuration from ``tune.space``; unsampled fields keep ``neural.defaults``."""
    space = params.tune.space
    values = {name: trial.suggest_categorical(name, list(getattr(space, name)))
              for name in ("embedding_dim", "units", "layers", "bidirectional", "batch_size",
                           "seq_len", "truncate")}
    values["dropout"] = trial.suggest_float("dropout", *space.dropout)
    values["spatial_dropout"] = trial.suggest_float("spatial_dropout", *space.spatial_dropout)
    values["learning_rate"] = trial.suggest_float("learning_rate", *space.learning_rate, log=True)
    return params.neural.defaults.model_copy(update=values)


def _pruning_callback(trial, monitor: str = "val_accuracy"):
    from optuna_integration import KerasPruningCallback

    class StrictPruning(KerasPruningCallback):
        """Fails loudly when the monitored metric is missing (the stock callback only warns,
        which silently disables pruning)."""

        def on_epoch_end(self, epoch, logs=None):
            if monitor not in (logs or {}):
                raise PipelineError(f"pruning monitors {monitor!r}, not in the Keras logs "
                                    f"{sorted(logs or {})}")
            super().on_epoch_end(epoch, logs)

    return StrictPruning(trial, monitor)


def _objective(task: Task, kind: str, params: Params):
    from .metrics import score
    from .models.rnn import build_model, fit, predict_proba, set_determinism
    from .prepare import load_prepared
    from .tokenize import effective_length, load_sequences, to_matrix

    train, _, meta = load_prepared(task)
    record, arrays = load_sequences(task)
    y, fold = train["y"].to_numpy(), train["fold"].to_numpy()
    n_classes = len(meta["classes"])
    train_idx, valid_idx = np.flatnonzero(fold != 0), np.flatnonzero(fold == 0)
    if len(train_idx) > params.tune.max_train_rows:  # big data: trials compare configs, cheaper
        rng = np.random.default_rng(params.seed)
        train_idx = np.sort(rng.choice(train_idx, params.tune.max_train_rows, replace=False))

    def objective(trial) -> float:
        import keras
        import optuna

        config = sample_config(trial, params)
        config = config.model_copy(update={"seq_len": effective_length(config.seq_len, arrays["train_lengths"])})
        vocab_size = min(config.vocab_size, record["vocab_size"])
        X = to_matrix(arrays["train_values"], arrays["train_lengths"], config.seq_len,
                      config.truncate, vocab_size)
        try:
            set_determinism(params.seed + trial.number, params.neural.threads)
            model = build_model(kind, config, n_classes, vocab_size)
            history = fit(model, X[train_idx], y[train_idx], X[valid_idx], y[valid_idx],
                          params.neural.epochs, params.neural.patience, config.batch_size,
                          callbacks=[_pruning_callback(trial)])
            value = score(task.metric, y[valid_idx], predict_proba(model, X[valid_idx]))
            trial.set_user_attr("epochs_run", len(history.history["loss"]))
            trial.set_user_attr("worker_pid", os.getpid())
            return value
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, so an all-failed study can say why
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
            raise
        finally:
            keras.backend.clear_session()

    return objective


def _log_trial(started: float, budget: Budget):
    def callback(study, trial) -> None:
        import optuna

        done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                        optuna.trial.TrialState.PRUNED)]
        best = study.best_value if any(t.state.name == "COMPLETE" for t in study.trials) else float("nan")
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
            if trial.datetime_complete and trial.datetime_start else 0.0
        log.info("[tune %s] trial %d %s value=%s best=%.4f (%.0f s; %d/%d trials, %.0f s of %.0f s budget) %s",
                 study.study_name, trial.number, trial.state.name.lower(),
                 "-" if trial.value is None else f"{trial.value:.4f}", best, seconds, len(done),
                 budget.n_trials, time.perf_counter() - started, budget.timeout, trial.params)

    return callback


def fail_stale_trials(study) -> int:
    """Mark trials left RUNNING by a killed single-process run as failed; return how many."""
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    if stale:
        log.warning("marked %d interrupted trial(s) as failed: %s", len(stale), [t.number for t in stale])
    return len(stale)


def create_study(task: Task, kind: str, params: Params, storage_url: str | None = None):
    """Create (or load) the study; enqueue ``neural.defaults`` as the first trial of a new one."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=params.tune.startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=params.tune.pruner_warmup_epochs)
    study = optuna.create_study(study_name=study_name(task, kind, params),
                                storage=make_storage(storage_url, task), sampler=sampler,
                                pruner=pruner, direction="maximize", load_if_exists=True)
    if not study.trials:
        defaults = params.neural.defaults.model_dump()
        space = params.tune.space.model_dump()
        study.enqueue_trial({k: v for k, v in defaults.items() if k in space})
    return study


def run_worker(task: Task, kind: str, params: Params, storage_url: str | None = None) -> None:
    """Optimise the shared study until the trial budget or the timeout is used up."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from .models.rnn import set_determinism

    set_determinism(params.seed, params.neural.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = budget_for(task, params)
    study = create_study(task, kind, params, storage_url)
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=counted))
    remaining = budget.n_trials - done
    if remaining <= 0:
        log.info("[tune %s] budget already used (%d trials done)", study.study_name, done)
        return
    log.info("[tune %s] %d trial(s) done before, running up to %d more (timeout %.0f s, storage %s)",
             study.study_name, done, remaining, budget.timeout,
             mask_url(storage_url) if storage_url else f"journal file in {JOURNAL_DIR}/")
    study.optimize(_objective(task, kind, params), n_trials=remaining, timeout=budget.timeout,
                   callbacks=[MaxTrialsCallback(budget.n_trials, states=counted),
                              _log_trial(time.perf_counter(), budget)],
                   catch=(Exception,), gc_after_trial=True)


def _plots(study, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for name, plot, needed in (("history.png", plot_optimization_history, 1),
                               ("importance.png", plot_param_importances, 2)):
        try:
            if len(complete) < needed:
                raise ValueError(f"{len(complete)} completed trial(s)")
            ax = plot(study)
            ax.figure.savefig(out / name, dpi=100, bbox_inches="tight")
        except (ValueError, RuntimeError) as why:  # e.g. importance needs 2+ distinct trials
            fig, ax = plt.subplots(figsize=(5, 2))
            ax.text(0.5, 0.5, f"{name[:-4]} not available:\n{why}", ha="center", va="center")
            ax.axis("off")
            fig.savefig(out / name, dpi=100)
        plt.close("all")


def tune(task: Task, kind: str, params: Params, storage: str | None = None, workers: int = 1) -> dict:
    """Run the study for ``kind`` on ``task`` and write its outputs."""
    from .models import MODELS
    from .prepare import load_prepared

    if kind not in MODELS or MODELS[kind].family != "rnn":
        raise ValueError(f"tune: {kind!r} is not an RNN model; known: "
                         f"{sorted(m for m, s in MODELS.items() if s.family == 'rnn')}")
    _, _, meta = load_prepared(task)
    budget = budget_for(task, params)
    result: dict = {"task": task.name, "model": kind, "available": meta["available"]}
    storage_url = resolve_storage(storage, params)
    study = None
    if meta["available"] and budget.n_trials > 0 and MODELS[kind].tunable:
        from .workers import run_workers

        study = create_study(task, kind, params, storage_url)
        if workers <= 1:
            fail_stale_trials(study)
        run_workers(task, kind, params, storage_url, workers)
        study = create_study(task, kind, params, storage_url)  # reload what every worker did
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            failed = [t for t in study.trials if t.state.name == "FAIL"]
            why = failed[0].user_attrs.get("fail_reason", "unknown") if failed else "all trials were pruned"
            raise PipelineError(mask_url(f"tuning {kind} on {task.name}: no trial completed; first failure: {why}"))
        best = study.best_trial
        config = params.neural.defaults.model_copy(update=best.params)
        result.update(study=study.study_name, best_value=best.value, best_trial=best.number,
                      n_complete=len(complete), n_trials=len(study.trials), metric=task.metric)
    else:
        config = params.neural.defaults
        result["note"] = ("fixed architecture, not tuned" if not MODELS[kind].tunable
                          else "no tuning (budget n_trials is 0 or task unavailable): neural.defaults used")
    result["config"] = config.model_dump()
    with atomic_path(task.tuning_dir(kind)) as out:
        out.mkdir()
        if study is not None:
            study.trials_dataframe().to_csv(out / "trials.csv", index=False)
            _plots(study, out)
        write_json(out / "best_params.json", result)
    if study is not None:
        log.info("[tune %s/%s] best %s=%.4f (trial %d): %s", task.name, kind, task.metric,
                 result["best_value"], result["best_trial"], best.params)
    return result


def best_config(task: Task, kind: str, params: Params) -> RNNConfig:
    """The configuration the ``tune`` stage chose (``neural.defaults`` without tuning)."""
    path = task.tuning_dir(kind) / "best_params.json"
    if not path.exists():
        return params.neural.defaults
    return RNNConfig.model_validate(read_json(path)["config"])

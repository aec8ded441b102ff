"""Tests of the ``tune`` stage: outputs, the defaults-first trial, median pruning, resuming an
interrupted study, failures, storages and the no-tuning path.

Training is the costly part, so one small study is run once (module fixture) and several
tests read it. Its story: ``run_trials`` runs 2 trials (neural.defaults, which learns the
tiny task, then an enqueued ``truncate=head`` trial that sees only filler words), the process
"dies" with a third trial RUNNING, and ``tune`` with a budget of 3 resumes: it fails the
stale trial and runs exactly one more ``head`` trial, which the median pruner must prune.
The study minimises the validation log loss (the default ``tune.objective``): a ``head``
trial predicts the same for every row of a balanced fold, so its log loss is at least ln 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from pipeline import tune as tune_mod
from pipeline.core.errors import ParamsError, PipelineError
from pipeline.core.outputs import tuned_config
from pipeline.core.params import RNNConfig
from pipeline.core.tasks import get_task
from pipeline.tuning import study as study_mod, trials
from tiny_data import featurize, merge, tiny_params, write_learnable

OUT = Path("data/tuning/competition/lstm")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
HEAD = {"truncate": "head"}  # sees only filler words: validation accuracy exactly 0.5
LN2 = float(np.log(2))  # the least log loss of one prediction for all rows of a balanced fold


def _budget(n_trials: int, **overrides):
    # One epoch: neural.defaults reach val_accuracy 1.0 in it, so the pruner decides at step 0.
    return tiny_params(
        **merge({"neural": {"epochs": 1}}, merge(overrides, {"tune": {"budget": {"n_trials": n_trials}}}))
    )


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write_learnable(root)
        params2, params3 = _budget(2), _budget(3)
        task = get_task("competition", params3)
        featurize(task, params3)

        study = study_mod.create_study(task, "lstm", params2)  # enqueues neural.defaults
        study.enqueue_trial(HEAD)
        tune_mod.run_trials(task, "lstm", params2)
        before = study_mod.create_study(task, "lstm", params2)
        states_before = [t.state for t in before.trials]

        # Interruption: a trial was started and the process died before telling its result.
        before.ask()
        before.enqueue_trial(HEAD)  # the next trial (after resume) is a bad one again
        result = tune_mod.tune(task, "lstm", params3)
        after = study_mod.create_study(task, "lstm", params3)
        yield {
            "root": root,
            "params": params3,
            "task": task,
            "result": result,
            "study": after,
            "states_before": states_before,
        }


@pytest.mark.slow
def test_outputs_are_written(resumed):
    out = resumed["root"] / OUT
    for name in ("best_params.json", "trials.csv", "history.png", "importance.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "best_params.json").read_text())
    config = RNNConfig.model_validate(saved["config"])
    assert saved == json.loads(json.dumps(resumed["result"]))
    assert saved["study"] == resumed["study"].study_name
    assert saved["metric"] == "log_loss"
    # neural.defaults learn the task; the head-only trials cannot.
    assert saved["best_trial"] == 0 and saved["best_value"] < LN2 - 0.05
    assert config == resumed["params"].neural.defaults
    assert saved["n_complete"] == 2 and saved["n_trials"] == 4


@pytest.mark.slow
def test_best_config_reads_best_params(resumed, monkeypatch):
    monkeypatch.chdir(resumed["root"])
    chosen = tuned_config(resumed["task"], "lstm", resumed["params"])
    assert chosen == RNNConfig.model_validate(resumed["result"]["config"])


@pytest.mark.slow
def test_first_trial_is_neural_defaults(resumed):
    defaults = resumed["params"].neural.defaults.model_dump()
    space = resumed["params"].tune.space.model_dump()
    first = resumed["study"].trials[0]
    assert first.params == {k: v for k, v in defaults.items() if k in space}
    trials = pd.read_csv(resumed["root"] / OUT / "trials.csv")
    row = trials.set_index("number").loc[0]
    for name in ("truncate", "learning_rate", "batch_size", "seq_len"):
        assert row[f"params_{name}"] == defaults[name]


@pytest.mark.slow
def test_bad_trial_is_pruned(resumed):
    trials = resumed["study"].trials
    assert trials[1].params["truncate"] == "head"
    assert trials[1].state == TrialState.COMPLETE  # MedianPruner waits for 2 complete trials
    assert trials[1].value >= LN2 - 1e-4
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert [t.number for t in pruned] == [3]
    assert pruned[0].params["truncate"] == "head"
    assert pruned[0].intermediate_values  # it reported val_loss before being stopped
    assert min(pruned[0].intermediate_values.values()) >= LN2 - 1e-3


@pytest.mark.slow
def test_metric_objective_maximises_the_task_metric(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path)
    params = _budget(2, tune={"objective": "metric"})
    task = get_task("competition", params)
    featurize(task, params)
    study = study_mod.create_study(task, "lstm", params)
    study.enqueue_trial(HEAD)
    result = tune_mod.tune(task, "lstm", params)
    study = study_mod.create_study(task, "lstm", params)
    assert study.direction.name == "MAXIMIZE"
    assert result["metric"] == "accuracy" and result["best_trial"] == 0 and result["best_value"] == 1.0
    assert [t.value for t in study.trials] == [1.0, 0.5]
    assert study.trials[1].intermediate_values == {0: 0.5}  # val_accuracy, reported for pruning


@pytest.mark.slow
def test_resume_fails_stale_trial_and_runs_only_the_remainder(resumed):
    assert resumed["states_before"] == [TrialState.COMPLETE, TrialState.COMPLETE]
    trials = resumed["study"].trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
    ]
    assert len([t for t in trials if t.state in COUNTED]) == 3
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.slow
def test_default_storage_is_a_journal_file(resumed):
    journals = list((resumed["root"] / "data/optuna").iterdir())
    assert [p.name for p in journals if p.suffix == ".journal"] == ["competition.journal"]
    assert journals and journals[0].stat().st_size > 0


@pytest.mark.slow
def test_budget_already_used_runs_nothing(resumed, monkeypatch):
    monkeypatch.chdir(resumed["root"])
    monkeypatch.setattr(tune_mod, "start_worker", lambda *a: pytest.fail("no trial should run"))
    tune_mod.run_trials(resumed["task"], "lstm", resumed["params"])
    study = study_mod.create_study(resumed["task"], "lstm", resumed["params"])
    assert len(study.trials) == 4


# ---------------------------------------------------------------- cheap tests (no training)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_learnable(tmp_path, n=16)
    return tmp_path


def _fake_features(root: Path) -> None:
    # study_name hashes data/features/<task>/sequences.npz; its content does not matter here.
    folder = root / "data/features/competition"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "sequences.npz", x=np.arange(3))


@pytest.mark.parametrize(
    "objective, expected",
    [
        ("log_loss", study_mod.Objective("log_loss", "minimize", "val_loss")),
        ("metric", study_mod.Objective("f1_macro", "maximize", "val_accuracy")),
    ],
)
def test_objective_of(objective, expected):
    params = tiny_params(tune={"objective": objective}, competition={"metric": "f1_macro"})
    assert study_mod.objective_of(get_task("competition", params), params) == expected


def test_pruning_callback_fails_when_metric_is_missing():
    trial = optuna.create_study(direction="maximize").ask()
    callback = trials.pruning_callback(trial, "val_accuracy")
    with pytest.raises(PipelineError, match="val_accuracy"):
        callback.on_epoch_end(0, logs={"loss": 1.0, "val_loss": 0.5})
    with pytest.raises(PipelineError, match="val_accuracy"):
        callback.on_epoch_end(0, logs=None)


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_pruning_callback_reports_the_monitored_log(monitor):
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    logs = {"loss": 1.0, "val_loss": 0.25, "val_accuracy": 0.75}
    trials.pruning_callback(trial, monitor).on_epoch_end(0, logs=logs)
    assert study.trials[0].intermediate_values == {0: logs[monitor]}


def _broken_build_model(*args, **kwargs):
    raise RuntimeError("boom")


def test_every_trial_failing_raises_with_the_reason(project, monkeypatch):
    params = _budget(2)
    task = get_task("competition", params)
    featurize(task, params)
    monkeypatch.setattr("pipeline.models.rnn.build_model", _broken_build_model)
    with pytest.raises(PipelineError, match="boom"):
        tune_mod.tune(task, "lstm", params)
    assert not (project / OUT).exists()  # no best_params.json that a later stage would trust


def test_every_trial_failing_raises_and_counts_no_trial(project, monkeypatch):
    params = _budget(2)
    task = get_task("competition", params)
    featurize(task, params)
    monkeypatch.setattr("pipeline.models.rnn.build_model", _broken_build_model)
    with pytest.raises(PipelineError, match="no trial completed"):
        tune_mod.tune(task, "lstm", params)
    study = study_mod.create_study(task, "lstm", params)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_sqlite_storage_url(project):
    _fake_features(project)
    params = _budget(3)
    task = get_task("competition", params)
    url = f"sqlite:///{project / 'optuna.db'}"
    first = study_mod.create_study(task, "lstm", params, url)
    again = study_mod.create_study(task, "lstm", params, url)
    assert (project / "optuna.db").exists()
    assert not (project / "data/optuna").exists()  # no journal when a URL is given
    assert again.study_name == first.study_name
    assert len(again.trials) == 1 and again.trials[0].state == TrialState.WAITING  # enqueued once
    assert optuna.get_all_study_names(url) == [first.study_name]


def test_journal_storage_create_study_twice_loads_the_same_study(project):
    _fake_features(project)
    params = _budget(3)
    task = get_task("competition", params)
    first = study_mod.create_study(task, "lstm", params)
    again = study_mod.create_study(task, "lstm", params)
    assert (project / "data/optuna/competition.journal").exists()
    assert again.study_name == first.study_name and len(again.trials) == 1


def test_study_name_changes_with_what_a_trial_measures_only(project):
    _fake_features(project)
    base = _budget(3)
    task = get_task("competition", base)
    name = study_mod.study_name(task, "lstm", base)
    assert name.startswith("competition-lstm-")
    assert study_mod.study_name(task, "lstm", _budget(10)) == name  # a bigger budget resumes
    assert study_mod.study_name(task, "gru", base) != name
    changed = _budget(3, tune={"space": {"units": [4, 8]}})
    assert study_mod.study_name(task, "lstm", changed) != name
    # Another objective (and direction) cannot resume this study.
    assert study_mod.study_name(task, "lstm", _budget(3, tune={"objective": "metric"})) != name
    # Other word vectors (embed params changed) measure something else: a new study.
    task.embeddings_dir.mkdir(parents=True)
    np.save(task.embeddings_dir / "vectors.npy", np.ones((5, 4), np.float32))
    with_vectors = study_mod.study_name(task, "lstm", base)
    assert with_vectors != name
    np.save(task.embeddings_dir / "vectors.npy", np.zeros((5, 4), np.float32))
    assert study_mod.study_name(task, "lstm", base) not in (name, with_vectors)


def test_fail_stale_trials(project):
    _fake_features(project)
    params = _budget(3)
    task = get_task("competition", params)
    study = study_mod.create_study(task, "lstm", params)
    study.ask()
    study.ask()
    assert study_mod.fail_stale_trials(study) == 2
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert study_mod.fail_stale_trials(study) == 0


def test_zero_trials_uses_defaults_without_a_study(project):
    params = _budget(0)
    task = get_task("competition", params)
    result = tune_mod.tune(task, "lstm", params)
    saved = json.loads((project / OUT / "best_params.json").read_text())
    assert saved == result
    assert saved["config"] == params.neural.defaults.model_dump()
    assert "neural.defaults" in saved["note"]
    assert "study" not in saved and "best_value" not in saved
    assert not (project / OUT / "trials.csv").exists()
    assert not (project / "data/optuna").exists()
    assert tuned_config(task, "lstm", params) == params.neural.defaults


def test_untunable_baseline_is_recorded_without_a_study(project):
    params = _budget(3)
    task = get_task("competition", params)
    result = tune_mod.tune(task, "lstm_baseline", params)
    assert result["note"] == "fixed architecture, not tuned"
    assert not (project / "data/optuna").exists()


@pytest.mark.parametrize("model", ["word_lr", "nbsvm", "transformer"])
def test_tune_rejects_non_rnn_models(project, model):
    params = _budget(3)
    with pytest.raises(ValueError, match="not an RNN model"):
        tune_mod.tune(get_task("competition", params), model, params)
    assert not (project / "data/tuning").exists()


def test_sample_config_stays_in_the_space():
    params = tiny_params()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = params.tune.space
    for _ in range(10):
        config = study_mod.sample_config(study.ask(study_mod.search_space(params)), params)
        assert isinstance(config, RNNConfig)
        assert config.truncate in space.truncate and config.units in space.units
        assert space.learning_rate[0] <= config.learning_rate <= space.learning_rate[1]
        assert space.dropout[0] <= config.dropout <= space.dropout[1]
        assert config.vocab_size == params.neural.defaults.vocab_size  # not tuned: from defaults


def test_defaults_outside_the_space_do_not_silently_lose_the_first_trial(project):
    """neural.defaults are enqueued as trial 0; a categorical default missing from tune.space
    makes Optuna's suggest_categorical raise, and the trial is caught as FAIL (the "defaults
    first" promise silently breaks). Either params validation rejects it, or the trial runs."""
    _fake_features(project)
    try:
        params = _budget(3, neural={"defaults": {"units": 8}})  # tune.space.units is [4]
    except ParamsError:
        return  # rejected up front with a clear message: fine
    study = study_mod.create_study(get_task("competition", params), "lstm", params)
    config = study_mod.sample_config(study.ask(study_mod.search_space(params)), params)
    assert config.units == 8


def _trial_story(study) -> list:
    return [(t.number, t.state.name, t.value, t.params, t.user_attrs.get("worker_pid")) for t in study.trials]


@pytest.mark.slow
def test_trials_in_two_processes_are_reproducible(tmp_path, monkeypatch):
    """Rounds of 2 trials in 2 spawned processes: two runs of the same params propose and
    score the same trials, whatever process finishes first, and both processes work."""
    stories = []
    for run in ("a", "b"):
        root = tmp_path / run
        root.mkdir()
        monkeypatch.chdir(root)
        write_learnable(root)
        params = _budget(4, neural={"processes": 2}, tune={"startup_trials": 2})
        task = get_task("competition", params)
        featurize(task, params)
        result = tune_mod.tune(task, "lstm", params)
        stories.append((result, _trial_story(study_mod.create_study(task, "lstm", params))))
    (result_a, story_a), (result_b, story_b) = stories
    assert [s[:4] for s in story_a] == [s[:4] for s in story_b]
    assert result_a["config"] == result_b["config"] and result_a["best_value"] == result_b["best_value"]
    assert len(story_a) == 4 and all(s[1] in ("COMPLETE", "PRUNED") for s in story_a)
    assert len({s[4] for s in story_a if s[4]} - {os.getpid()}) == 2  # two worker processes

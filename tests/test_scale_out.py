"""One Optuna study, several worker processes: journal file (local) and PostgreSQL.

The PostgreSQL test needs a server: `.ci/run` starts one on loopback and exports
PIPELINE_TEST_POSTGRES_URL; without it the test is skipped.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from tiny_data import TINY, merge, tiny_params, write_learnable

pytestmark = pytest.mark.slow  # make test-fast skips these

N_TRIALS, PROCESSES = 6, 2


def _project(tmp_path) -> dict:
    # A fresh seed gives a fresh study name, so reruns on one database never collide.
    raw = merge(
        TINY,
        {
            "seed": random.randrange(1, 10**6),
            "neural": {"epochs": 3},
            "tune": {"budget": {"n_trials": N_TRIALS}, "startup_trials": 2},
        },
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    write_learnable(tmp_path, n=160)
    from pipeline.core.tasks import get_task
    from tiny_data import featurize

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        featurize(get_task("competition", tiny_params(**raw)), tiny_params(**raw))
    finally:
        os.chdir(cwd)
    return raw


def _tune(tmp_path, storage: str | None) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "tune",
        "--task",
        "competition",
        "--model",
        "gru",
        "--processes",
        str(PROCESSES),
    ] + (["--storage", storage] if storage else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _check_study(tmp_path, raw: dict, storage: str | None) -> None:
    import optuna

    from pipeline.core.tasks import get_task
    from pipeline.tuning.study import make_storage, study_name

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        params = tiny_params(**raw)
        task = get_task("competition", params)
        study = optuna.load_study(
            study_name=study_name(task, "gru", params), storage=make_storage(storage, task)
        )
        trials = study.trials  # read here: the journal path is relative to the project
    finally:
        os.chdir(cwd)
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # MaxTrialsCallback stops each worker once the shared budget is reached; a trial that
    # another worker already started may still finish (at most PROCESSES - 1 over).
    assert N_TRIALS <= len(counted) <= N_TRIALS + PROCESSES - 1
    pids = {t.user_attrs.get("worker_pid") for t in trials if t.state.name == "COMPLETE"}
    assert len(pids - {None}) >= 2, "both worker processes should have run trials"
    assert (tmp_path / "data/tuning/competition/gru/best_params.json").exists()


def test_two_local_workers_share_a_journal_file_study(tmp_path):
    raw = _project(tmp_path)
    result = _tune(tmp_path, None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "data/optuna/competition.journal").exists()
    _check_study(tmp_path, raw, None)


def test_two_workers_share_a_postgresql_study(tmp_path):
    url = os.environ.get("PIPELINE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PIPELINE_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
    raw = _project(tmp_path)
    result = _tune(tmp_path, url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "data/optuna").exists()  # nothing went to the local journal
    _check_study(tmp_path, raw, url)

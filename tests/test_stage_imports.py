"""Stages that use no TensorFlow never import it, and a task without data costs its stages
an import of nothing heavy: they run as separate processes on every ``dvc repro``."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, loaded_modules_after

HEAVY = ("tensorflow", "keras", "keras_hub", "gensim", "optuna")

# The stages run in one process, in dvc.yaml's order, on the bundled sample with the
# TF-IDF models only; imdb has no data (source local, no folder).
STAGES = [
    ["fingerprint"],
    *(["fetch", "--task", t] for t in ("competition", "imdb", "reuters")),
    *(["prepare", "--task", t] for t in ("competition", "imdb", "reuters")),
    *(["train", "--task", t, "--model", "word_lr"] for t in ("competition", "imdb", "reuters")),
    *(["ensemble", "--task", t] for t in ("competition", "imdb", "reuters")),
    *(["report", "--task", t] for t in ("competition", "imdb", "reuters")),
    ["summary"],
    ["submissions"],
]


@pytest.fixture
def project(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["models"] = {"tfidf": ["word_lr"], "rnn": [], "transformer": []}
    for task in ("imdb", "reuters"):
        params["validation"][task] = {"source": "local", "local_dir": ""}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


@pytest.mark.slow
def test_tfidf_ensemble_report_and_submission_stages_never_import_tensorflow(project):
    loaded = loaded_modules_after(project, STAGES)
    assert not set(HEAVY) & set(loaded)
    assert json.loads((project / "metrics/competition.json").read_text())["cv"]["word_lr"]["accuracy"] > 0.6


@pytest.mark.slow
def test_a_task_without_data_imports_no_data_library(project):
    # Every model stage of imdb (no data), after its fetch and prepare in another process.
    loaded_modules_after(project, [["fetch", "--task", "imdb"], ["prepare", "--task", "imdb"]])
    stages = [
        ["tokenize", "--task", "imdb"],
        ["embed", "--task", "imdb"],
        ["encode", "--task", "imdb"],
        ["tune", "--task", "imdb", "--model", "lstm"],
        *(["train", "--task", "imdb", "--model", m] for m in ("word_lr", "lstm", "frozen_lr")),
        ["ensemble", "--task", "imdb"],
        ["report", "--task", "imdb"],
    ]
    loaded = loaded_modules_after(project, stages)
    assert not {*HEAVY, "pandas", "sklearn", "scipy", "pyarrow", "matplotlib"} & set(loaded)
    assert json.loads((project / "metrics/imdb.json").read_text())["available"] == 0

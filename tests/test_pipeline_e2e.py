"""The whole ``dvc repro`` on the bundled sample, in a fresh temporary project copy."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import make_project_copy, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    result = run(["dvc", "repro"], project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, result


def test_repro_writes_valid_submission_per_model(sample_project):
    project, _ = sample_project
    sample = pd.read_csv(project / "data/raw/competition/sample_submission.csv")
    index = json.loads((project / "submissions/index.json").read_text())
    params_models = ["word_lr", "char_lr", "nbsvm", "word_svc"]
    for model in params_models:
        frame = pd.read_csv(project / f"submissions/fake-news/{model}.csv")
        assert list(frame.columns) == ["id", "label"]
        assert frame["id"].tolist() == sample["id"].tolist()
        assert set(frame["label"]) <= {0, 1}
        assert f"fake-news/{model}.csv" in index["files"]


def test_repro_reports_metrics_and_plots(sample_project):
    project, _ = sample_project
    metrics = json.loads((project / "metrics/competition.json").read_text())
    for model in ("word_lr", "char_lr", "nbsvm", "word_svc"):
        # The synthetic sample is learnable but not trivial.
        assert 0.6 < metrics[f"cv.{model}.accuracy"] < 0.98
    for png in ("roc.png", "model_comparison.png", "confusion_word_lr.png"):
        assert (project / "plots/competition" / png).stat().st_size > 1000
    assert (project / "plots/competition/roc/word_lr.json").exists()
    shown = run(["dvc", "metrics", "show"], project)
    assert "cv.word_lr.accuracy" in shown.stdout


def test_validation_tasks_offline_are_recorded_unavailable(sample_project):
    project, result = sample_project
    for task in ("imdb", "reuters"):
        metrics = json.loads((project / f"metrics/{task}.json").read_text())
        assert metrics["available"] == 0
        assert "local_dir" in metrics["unavailable_fix"]
    assert "UNAVAILABLE" in result.stderr + result.stdout


def test_second_repro_does_nothing(sample_project):
    project, _ = sample_project
    again = run(["dvc", "repro"], project)
    assert again.returncode == 0
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout

"""The whole ``dvc repro`` on the bundled sample, in a fresh temporary project copy."""

from __future__ import annotations

import json

import numpy as np
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
    params_models = ["word_lr", "nbsvm", "word_svc", "wordchar_svc"]
    for model in params_models:
        frame = pd.read_csv(project / f"submissions/fake-news/{model}.csv")
        assert list(frame.columns) == ["id", "label"]
        assert frame["id"].tolist() == sample["id"].tolist()
        assert set(frame["label"]) <= {0, 1}
        assert f"fake-news/{model}.csv" in index["files"]


def test_repro_reports_metrics_and_plots(sample_project):
    project, _ = sample_project
    metrics = json.loads((project / "metrics/competition.json").read_text())
    for model in ("word_lr", "nbsvm", "word_svc", "wordchar_svc"):
        # The synthetic sample is learnable but not trivial.
        assert 0.6 < metrics["cv"][model]["accuracy"] < 0.98
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


def test_rnn_models_tuned_trained_and_submitted(sample_project):
    project, _ = sample_project
    embedded = json.loads((project / "data/embeddings/competition/embed.json").read_text())
    assert embedded["available"] and embedded["learnt"] > 100  # the RNNs start from word2vec
    assert (project / "data/embeddings/competition/vectors.npy").exists()
    for kind in ("lstm", "gru"):
        best = json.loads((project / f"data/tuning/competition/{kind}/best_params.json").read_text())
        # Trials minimise fold 0's log loss; the best must beat predicting 0.5 for every row.
        assert best["metric"] == "log_loss" and best["n_complete"] >= 1
        assert 0.0 < best["best_value"] < np.log(2)
        assert (project / f"data/tuning/competition/{kind}/trials.csv").exists()
        assert (project / f"submissions/fake-news/{kind}.csv").exists()
    metrics = json.loads((project / "metrics/competition.json").read_text())
    assert metrics["cv"]["ensemble"]["accuracy"] >= 0.6
    report = (project / "reports/competition.md").read_text()
    assert "ensemble" in report and "tuning_lstm.png" in report


def test_experiment_with_other_params_shows_in_metrics_diff(sample_project):
    project, _ = sample_project
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "baseline"]):
        assert run(cmd, project).returncode == 0
    exp = run(["dvc", "exp", "run", "-n", "weak-word-lr", "-S", "tfidf.word.C=0.05"], project)
    assert exp.returncode == 0, exp.stderr[-3000:]
    # Only the stages that depend on tfidf params ran again, not the RNN tuning.
    assert "Running stage 'tune@competition-lstm'" not in exp.stdout
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], project).stdout)
    changed = diff["metrics/competition.json"]
    assert "cv.word_lr.accuracy" in changed
    assert changed["cv.word_lr.accuracy"]["old"] != changed["cv.word_lr.accuracy"]["new"]
    assert "cv.nbsvm.accuracy" not in changed  # untouched models keep their scores
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    assert "weak-word-lr" in json.dumps(shown)


def test_frozen_transformer_model_encoded_trained_and_submitted(sample_project):
    project, _ = sample_project
    encoded = json.loads((project / "data/encoded/competition/encode.json").read_text())
    assert encoded["available"] and encoded["checkpoint"]["sha256"].startswith("53aa5117")
    assert np.load(project / "data/encoded/competition/train.npy").shape[1] == 384
    metrics = json.loads((project / "metrics/competition.json").read_text())
    assert 0.5 < metrics["cv"]["frozen_lr"]["accuracy"] <= 1.0
    assert (project / "submissions/fake-news/frozen_lr.csv").exists()
    # Not in transformer.tasks: the validation tasks encode nothing.
    assert not json.loads((project / "data/encoded/imdb/encode.json").read_text())["available"]

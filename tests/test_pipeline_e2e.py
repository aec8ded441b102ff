"""The whole ``dvc repro`` on the bundled sample, in a fresh temporary project copy.

One repro serves every check (it takes minutes): outputs, plots, metrics, what reruns.
"""

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
        frame = pd.read_csv(project / f"submissions/sample/{model}.csv")
        assert list(frame.columns) == ["id", "label"]
        assert frame["id"].tolist() == sample["id"].tolist()
        assert set(frame["label"]) <= {0, 1}
        assert f"sample/{model}.csv" in index["files"]
    # Predictions from the sample are not fake-news submissions, and say where they came from.
    assert not (project / "submissions/fake-news").exists()
    source = json.loads((project / "data/raw/competition/source.json").read_text())
    assert index["source"] == {"source": "sample"}
    assert index["data_sha256"] == {name: f["sha256"] for name, f in source["files"].items()}


def test_repro_reports_metrics_and_plots(sample_project):
    project, _ = sample_project
    metrics = json.loads((project / "metrics/competition.json").read_text())
    for model in ("word_lr", "nbsvm", "word_svc", "wordchar_svc"):
        # The synthetic sample is learnable but not trivial.
        assert 0.6 < metrics["cv"][model]["accuracy"] < 0.98
    for png in ("roc.png", "model_comparison.png", "confusion_word_lr.png"):
        assert (project / "plots/competition" / png).stat().st_size > 1000
    assert (project / "metrics/competition/roc/word_lr.json").exists()
    headline = json.loads((project / "metrics/headline.json").read_text())
    assert headline["cv"] == metrics["cv"]["ensemble"]["accuracy"]
    assert headline["cv_single"] == max(s["accuracy"] for m, s in metrics["cv"].items() if m != "ensemble")
    assert headline["imdb_test"] is None and headline["reuters_test"] is None  # no data in the copy
    shown = run(["dvc", "metrics", "show", "metrics/competition.json"], project)
    assert "cv.word_lr.accuracy" in shown.stdout


def test_dvc_plots_show_loads_every_plot_with_data(sample_project):
    project, _ = sample_project
    shown = run(["dvc", "plots", "show", "--json"], project)
    assert shown.returncode == 0, shown.stderr[-2000:]
    plots = json.loads(shown.stdout)
    assert not plots.get("errors"), plots.get("errors")
    by_folder = {}
    for name, renders in plots["data"].items():
        rows = [
            row for render in renders for row in render.get("content", {}).get("data", {}).get("values", [])
        ]
        by_folder.setdefault(name.rsplit("/", 1)[0], []).append(len(rows))
    for folder in ("roc", "confusion", "epochs", "trials"):
        counts = by_folder.get(f"metrics/competition/{folder}")
        assert counts and all(counts), (folder, sorted(by_folder))
    epochs = json.loads((project / "metrics/competition/epochs/lstm.json").read_text())
    assert epochs[0]["epoch"] == 1 and {"loss", "val_loss"} <= set(epochs[0])


def test_editing_a_module_marks_exactly_the_stages_that_import_it(sample_project):
    project, _ = sample_project
    tune_py = project / "pipeline/tune.py"
    original = tune_py.read_text()
    tune_py.write_text(original + "\n# edited\n")
    try:
        status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    finally:
        tune_py.write_text(original)
    changed = {name for name in status if not name.startswith("fingerprint@")}  # those always run
    assert changed == {  # train_rnn reads the tune stage's output, never its code
        f"tune@{task}-{model}" for task in ("competition", "imdb", "reuters") for model in ("lstm", "gru")
    }


def test_validation_tasks_without_data_are_recorded_unavailable(sample_project):
    # make_project_copy points them at `source: local` with no folder: nothing is downloaded.
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
    ran = {line.split("'")[1] for line in again.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"fingerprint@competition", "fingerprint@imdb", "fingerprint@reuters"}  # cheap, always
    assert "Running stage 'fetch" not in again.stdout


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
        assert (project / f"submissions/sample/{kind}.csv").exists()
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
    diff = json.loads(
        run(["dvc", "metrics", "diff", "--json", "--targets", "metrics/competition.json"], project).stdout
    )
    changed = diff["metrics/competition.json"]
    assert "cv.word_lr.accuracy" in changed
    assert changed["cv.word_lr.accuracy"]["old"] != changed["cv.word_lr.accuracy"]["new"]
    assert "cv.nbsvm.accuracy" not in changed  # untouched models keep their scores
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    assert "weak-word-lr" in json.dumps(shown)

    # Two experiments side by side stay readable in 120 columns (the README command).
    table = run(
        ["dvc", "exp", "show", "--no-pager", "--only-changed", "--drop", ".*/.*"],
        project,
        env={"COLUMNS": "120"},
    ).stdout
    assert "weak-word-lr" in table and "tfidf.word.C" in table  # headline columns show if they changed
    assert max(len(line) for line in table.splitlines()) <= 120
    assert "…" not in table
    # dvc plots diff overlays the committed baseline and the experiment's curves.
    diff_plots = json.loads(run(["dvc", "plots", "diff", "HEAD", "--json"], project).stdout)
    assert not diff_plots.get("errors"), diff_plots.get("errors")
    roc = diff_plots["data"]["metrics/competition/roc/word_lr.json"][0]["content"]["data"]["values"]
    assert len({row["rev"] for row in roc}) == 2


def test_plots_render_from_a_fresh_clone(sample_project, tmp_path):
    project, _ = sample_project
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "results", "--allow-empty"]):
        assert run(cmd, project).returncode == 0
    clone = tmp_path / "clone"
    assert run(["git", "clone", "-q", str(project), str(clone)], tmp_path).returncode == 0
    shown = json.loads(run(["dvc", "plots", "show", "--json"], clone).stdout)  # no DVC cache here
    assert not shown.get("errors"), shown.get("errors")
    folders = {
        name.rsplit("/", 1)[0]
        for name, renders in shown["data"].items()
        if any(render["content"]["data"]["values"] for render in renders)
    }
    assert folders == {f"metrics/competition/{f}" for f in ("roc", "confusion", "epochs", "trials")}


def test_frozen_transformer_model_encoded_trained_and_submitted(sample_project):
    project, _ = sample_project
    encoded = json.loads((project / "data/encoded/competition/encode.json").read_text())
    assert encoded["available"] and encoded["checkpoint"]["sha256"].startswith("53aa5117")
    assert np.load(project / "data/encoded/competition/train.npy").shape[1] == 384 * encoded["pool_layers"]
    metrics = json.loads((project / "metrics/competition.json").read_text())
    assert 0.5 < metrics["cv"]["frozen_lr"]["accuracy"] <= 1.0
    assert (project / "submissions/sample/frozen_lr.csv").exists()
    # Not in transformer.tasks: the validation tasks encode nothing.
    assert not json.loads((project / "data/encoded/imdb/encode.json").read_text())["available"]

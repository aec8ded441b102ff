"""The whole ``dvc repro`` on the bundled sample, in a fresh temporary project copy (with a
smaller RNN budget: the suite checks the wiring, the everyday benchmark the default's cost).

One repro serves every check (it takes minutes): outputs, plots, metrics, what reruns.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_project_copy, run

pytestmark = pytest.mark.slow
FINGERPRINT = "data/fingerprints/dvc.yaml:fingerprint"  # the stage that always runs


def _smaller_rnn_budget(params_yaml) -> None:
    """2 tuning trials and 1 seed per fold instead of 8 and 3: every stage, output and rerun rule
    is the same, in 2 fewer minutes (the default budget's cost is the everyday benchmark's job)."""
    text = params_yaml.read_text()
    for old, new in (("budget: {n_trials: 8,", "budget: {n_trials: 2,"), ("  seeds: 3 ", "  seeds: 1 ")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    params_yaml.write_text(text)


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    _smaller_rnn_budget(project / "params.yaml")
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
    changed = {name for name in status if name != FINGERPRINT}  # it always runs
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
    assert ran == {FINGERPRINT}  # cheap, always
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


# ------------------------------------------------------------ a shared DVC remote over SSH


def digests(root, *folders: str) -> dict[str, str]:
    import hashlib

    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


RESULTS = ("submissions", "metrics", "data/prepared", "data/predictions", "data/ensemble", "data/tuning")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    import sshd as ssh_server

    why = ssh_server.available()
    if why:
        pytest.skip(why)
    server = ssh_server.Sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.close()


def login(project, remote: str, user: str, keyfile) -> None:
    """Each person's credentials for ``remote``, in the git-ignored .dvc/config.local."""
    for key, value in (("user", user), ("keyfile", str(keyfile))):
        done = run(["dvc", "remote", "modify", "--local", remote, key, value], project)
        assert done.returncode == 0, done.stderr


def ran_stages(result) -> set[str]:
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


def test_shared_remote_carries_a_run_to_a_fresh_clone(sample_project, sshd, tmp_path):
    project, _ = sample_project
    url = f"ssh://127.0.0.1:{sshd.port}{tmp_path / 'store'}"
    for cmd in (
        ["dvc", "remote", "add", "-d", "shared", url],
        ["dvc", "remote", "modify", "shared", "timeout", "10"],
    ):
        assert run(cmd, project).returncode == 0
    login(project, "shared", sshd.user, sshd.client_key)
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "shared remote", "--allow-empty"]):
        assert run(cmd, project).returncode == 0
    tracked = run(["git", "ls-files", ".dvc"], project).stdout
    assert ".dvc/config\n" in tracked and "config.local" not in tracked  # the key stays out of git
    pushed = run(["dvc", "push"], project)
    assert pushed.returncode == 0, pushed.stderr[-2000:]

    clone = tmp_path / "clone"
    assert run(["git", "clone", "-q", str(project), str(clone)], tmp_path).returncode == 0
    login(clone, "shared", sshd.user, sshd.client_key)  # a teammate's own key in practice
    pulled = run(["dvc", "pull"], clone)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    status = json.loads(run(["dvc", "status", "--json"], clone).stdout)
    assert [name for name in status if name != FINGERPRINT] == []  # it always runs
    again = run(["dvc", "repro"], clone)
    assert again.returncode == 0, again.stderr[-2000:]
    assert ran_stages(again) == {FINGERPRINT}
    assert digests(clone, *RESULTS) == digests(project, *RESULTS)  # nothing retrained


@pytest.mark.parametrize("case", ["down", "silent", "wrong key"])
def test_unreachable_or_refusing_remote_fails_in_seconds_losing_nothing(sample_project, sshd, tmp_path, case):
    import socket
    import time

    from sshd import free_port, keygen

    project, _ = sample_project
    port, keyfile, listener = sshd.port, sshd.client_key, None
    if case == "down":
        port = free_port()
    elif case == "silent":  # accepts connections, never says a word
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    else:
        keyfile = keygen(tmp_path / "stranger")
    url = f"ssh://127.0.0.1:{port}{tmp_path / 'store'}"
    for cmd in (
        ["dvc", "remote", "add", "--local", "broken", url],
        ["dvc", "remote", "modify", "--local", "broken", "timeout", "5"],
    ):
        assert run(cmd, project).returncode == 0
    login(project, "broken", sshd.user, keyfile)
    before, status = (
        digests(project, *RESULTS, ".dvc/cache"),
        run(["dvc", "status", "--json"], project).stdout,
    )
    try:
        start = time.monotonic()
        pushed = run(["dvc", "push", "-r", "broken"], project, timeout=120)
        elapsed = time.monotonic() - start
    finally:
        run(["dvc", "remote", "remove", "--local", "broken"], project)
        if listener:
            listener.close()
    assert pushed.returncode != 0 and elapsed < 40
    expected = {"down": "Connect call failed", "silent": "ERROR", "wrong key": "Permission denied for user"}
    assert expected[case] in pushed.stderr, pushed.stderr[-2000:]
    assert digests(project, *RESULTS, ".dvc/cache") == before
    assert run(["dvc", "status", "--json"], project).stdout == status


# ------------------------------------------------------------------ a queued sweep of params


def test_queued_sweep_compared_and_the_best_applied(sample_project):
    import csv
    import io
    import time

    project, _ = sample_project
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "before the sweep", "--allow-empty"]):
        assert run(cmd, project).returncode == 0
    sweep = {"stack-c-001": "0.01", "stack-c-100": "100"}
    stack_only = ["-S", "ensemble.methods=[stack]", "-S", "ensemble.guard=0"]  # C shows in the CV
    for name, value in sweep.items():
        queued = run(
            ["dvc", "exp", "run", "--queue", "-n", name, *stack_only, "-S", f"ensemble.stack_C={value}"],
            project,
        )
        assert queued.returncode == 0, queued.stderr[-2000:]
    try:
        started = run(["dvc", "queue", "start", "--jobs", "1"], project)
        assert started.returncode == 0, started.stderr
        ends = time.monotonic() + 900
        while time.monotonic() < ends:
            state = run(["dvc", "queue", "status"], project).stdout
            if not any(word in state for word in ("Queued", "Running")):
                break
            if "Queued" in state and "0 active, 0 idle" in state:  # the worker left early
                run(["dvc", "queue", "start", "--jobs", "1"], project)  # (docs/scale-out.md)
            time.sleep(5)
        assert "Success" in state and "Failed" not in state, state
    finally:
        run(["dvc", "queue", "stop", "--kill"], project)
    for name in sweep:  # only the tail of the DAG ran: the rest came from the run cache
        log = run(["dvc", "queue", "logs", name], project).stdout
        assert "Running stage 'ensemble@competition'" in log, log[-2000:]
        assert "Running stage 'train" not in log and "Running stage 'tune" not in log

    shown = run(["dvc", "exp", "show", "--no-pager", "--only-changed"], project, env={"COLUMNS": "200"})
    assert all(name in shown.stdout for name in sweep), shown.stdout
    changed = run(["dvc", "exp", "show", "--csv", "--only-changed"], project).stdout
    rows = [row for row in csv.DictReader(io.StringIO(changed)) if row["Experiment"] in sweep]
    assert {row["ensemble.stack_C"] for row in rows} == set(sweep.values())  # the swept param
    table = run(["dvc", "exp", "show", "--csv"], project).stdout  # every column, changed or not
    rows = [row for row in csv.DictReader(io.StringIO(table)) if row["Experiment"] in sweep]
    best = max(rows, key=lambda row: float(row["cv"]))  # the headline: the ensemble's CV
    for old, new in [("HEAD", best["Experiment"]), tuple(sweep)]:  # the baseline; each other
        diff = run(
            ["dvc", "metrics", "diff", old, new, "--json", "--targets", "metrics/competition.json"], project
        )
        changed = json.loads(diff.stdout)["metrics/competition.json"]
        assert changed["cv.ensemble.log_loss"]["old"] != changed["cv.ensemble.log_loss"]["new"]
        assert "cv.word_lr.accuracy" not in changed  # the base models were not retrained

    applied = run(["dvc", "exp", "apply", best["Experiment"]], project)
    assert applied.returncode == 0, applied.stderr[-2000:]
    params = yaml_load(project / "params.yaml")
    assert str(params["ensemble"]["stack_C"]) == best["ensemble.stack_C"]
    headline = json.loads((project / "metrics/headline.json").read_text())
    assert f"{headline['cv']}" == best["cv"]
    assert ran_stages(run(["dvc", "repro"], project)) <= {FINGERPRINT}


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())

"""Tests of pipeline.report (metrics, plots, markdown) and pipeline.submit.write_submissions
on synthetic predictions: three fake TF-IDF models, an RNN run on two folds, the ensemble."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fakepreds import (
    fake_task,
    make_params,
    write_fake_models,
    write_sample_submission,
    write_unavailable,
)
from pipeline.core.io import load_arrays, read_json, sha256_file, write_json
from pipeline.core.metrics import score
from pipeline.core.outputs import BestParams, PredictionRecord, best_params_path, prediction_paths

COMPETITION_MODELS = ["word_lr", "char_lr", "nbsvm", "lstm", "ensemble"]
REUTERS_MODELS = ["word_lr", "char_lr", "nbsvm", "ensemble"]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _write_trials(task, kind: str, values: list, states: list[str], metric: str = "log_loss") -> None:
    """What the tune stage leaves for the report: trials.csv and best_params.json."""
    tuning = task.tuning_dir(kind)
    tuning.mkdir(parents=True)
    pd.DataFrame({"number": range(len(values)), "value": values, "state": states}).to_csv(
        tuning / "trials.csv"
    )
    write_best_params(task, kind, metric)


def write_best_params(task, kind: str, metric: str) -> None:
    record = BestParams(task=task.name, model=kind, available=True, config={}, metric=metric)
    write_json(best_params_path(task, kind), record.dump())


def assert_valid_markdown(text: str) -> None:
    """Renders: no stray backtick, no code span cut by a nested one (it would begin or end
    with a space), every table row with the header's number of cells."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark").enable("table")
    html = parser.render(text)
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "`" not in outside_code, [line for line in text.splitlines() if line.count("`") % 2]
    spans = [
        child.content
        for token in parser.parse(text)
        if token.type == "inline"
        for child in token.children
        if child.type == "code_inline"
    ]
    assert all(span == span.strip() for span in spans), [s for s in spans if s != s.strip()]
    table: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            cells = [row.strip().strip("|").count("|") + 1 for row in table]
            assert len(table) >= 2 and set(table[1]) <= set("|-: "), table[:2]
            assert cells == [cells[0]] * len(table), table
            table = []


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    """Run ensemble, report and write_submissions once in a fresh folder; return what they made."""
    from pipeline.ensemble import ensemble
    from pipeline.report import report
    from pipeline.submit import write_submissions

    root = tmp_path_factory.mktemp("competition")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr("pipeline.submit._git_commit", lambda: "abc1234")
        params = make_params(rnn=["lstm"])
        task, y, folds, test_y = fake_task("competition", params)
        write_fake_models(task, y, folds, test_y, rnn_folds={"lstm": [0, 1]})
        test_ids = list(pd.read_parquet(task.prepared_dir / "test.parquet")["id"])
        sample_order = write_sample_submission(task, test_ids)
        _write_trials(
            task, "lstm", [0.6, 0.5, None, 0.55, 0.4], ["COMPLETE", "COMPLETE", "FAIL", "PRUNED", "COMPLETE"]
        )
        ens = ensemble(task, params)
        metrics = report(task, params)
        index = write_submissions(params)
    return {
        "root": root,
        "params": params,
        "task": task,
        "y": y,
        "ensemble": ens,
        "metrics": metrics,
        "index": index,
        "test_ids": test_ids,
        "sample_order": sample_order,
    }


@pytest.fixture(scope="module")
def reuters(tmp_path_factory):
    from pipeline.ensemble import ensemble
    from pipeline.report import report

    root = tmp_path_factory.mktemp("reuters")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        params = make_params()
        task, y, folds, test_y = fake_task("reuters", params, n_classes=4)
        write_fake_models(task, y, folds, test_y, n_classes=4)
        ensemble(task, params)
        metrics = report(task, params)
    return {"root": root, "task": task, "test_y": test_y, "metrics": metrics}


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} missing"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    assert len(data) > 1024, f"{path}: only {len(data)} bytes"


def assert_images_exist(markdown: Path) -> list[str]:
    links = IMAGE.findall(markdown.read_text(encoding="utf-8"))
    assert links, f"{markdown} links no image"
    for link in links:
        assert (markdown.parent / link).resolve().is_file(), f"{markdown} links missing {link}"
    return links


def test_metrics_have_cv_scores_for_every_model(competition):
    metrics = read_json(competition["root"] / "metrics" / "competition.json")
    assert metrics == json.loads(json.dumps(competition["metrics"]))
    assert metrics["available"] == 1
    for model in COMPETITION_MODELS:
        for name in ("accuracy", "f1_macro", "f1_weighted", "log_loss", "roc_auc"):
            assert isinstance(metrics["cv"][model][name], float), (model, name)
    assert metrics["cv"]["ensemble"]["accuracy"] == competition["ensemble"]["cv"]["accuracy"]
    assert set(metrics) == {"available", "cv", "cv_check"}  # no test scores: the test labels are private


def test_metrics_match_the_prediction_files(competition):
    root = competition["root"]
    for model in COMPETITION_MODELS:
        arrays = load_arrays(root / prediction_paths(competition["task"], model)[0])
        scored = ~np.isnan(arrays["oof"][:, 0])
        expected = score("accuracy", competition["y"][scored], arrays["oof"][scored])
        assert competition["metrics"]["cv"][model]["accuracy"] == pytest.approx(expected, abs=1e-6)


def test_plots_are_real_pngs(competition):
    plots = competition["root"] / "plots" / "competition"
    for name in ["roc.png", "model_comparison.png", "ensemble_weights.png", "tuning_lstm.png"]:
        assert_png(plots / name)
    for model in COMPETITION_MODELS:
        assert_png(plots / f"confusion_{model}.png")
    assert not list(plots.glob(".*.tmp")) and not list(plots.parent.glob(".*.tmp"))


def test_dvc_plot_data(competition):
    series = competition["root"] / "metrics" / "competition"
    y = competition["y"]
    for model in COMPETITION_MODELS:
        roc = read_json(series / "roc" / f"{model}.json")
        assert roc and set(roc[0]) == {"fpr", "tpr"}
        assert all(0 <= p["fpr"] <= 1 and 0 <= p["tpr"] <= 1 for p in roc)
        assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0)
        confusion = read_json(series / "confusion" / f"{model}.json")  # counts per (actual, predicted)
        assert {tuple(sorted(row)) for row in confusion} == {("actual", "count", "predicted")}
        assert {row["actual"] for row in confusion} <= {"0", "1"} and len(confusion) <= 4
        expected_rows = len(y) if model not in ("lstm", "ensemble") else competition["ensemble"]["n_scored"]
        assert sum(row["count"] for row in confusion) == expected_rows, model


def test_report_markdown_renders_with_whole_tables(competition, reuters, tmp_path, monkeypatch):
    from pipeline.report import report

    monkeypatch.chdir(tmp_path)
    params = make_params()
    task = write_unavailable("imdb", params)
    meta = read_json(task.prepared_dir / "meta.json")
    meta["fix"] = "download it when online, or set `validation.imdb.source: local` and `local_dir`"
    write_json(task.prepared_dir / "meta.json", meta)  # a fix naming keys in backticks
    report(task, params)
    for markdown in (
        competition["root"] / "reports/competition.md",
        reuters["root"] / "reports/reuters.md",
        tmp_path / "reports/imdb.md",
    ):
        assert_valid_markdown(markdown.read_text(encoding="utf-8"))


def test_markdown_checker_catches_broken_code_and_tables():
    with pytest.raises(AssertionError):
        assert_valid_markdown("Fix: `download, or set `validation.imdb.source` here`\n")
    with pytest.raises(AssertionError):
        assert_valid_markdown("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n")
    assert_valid_markdown("Fix: set `validation.imdb.source`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")


def test_cv_column_says_over_which_rows(competition):
    text = (competition["root"] / "reports/competition.md").read_text(encoding="utf-8")
    n = len(competition["y"])
    assert "| CV over |" in text
    word_lr_row = next(line for line in text.splitlines() if line.startswith("| word_lr |"))
    assert f"| 5 folds, {n}/{n} rows |" in word_lr_row
    lstm_row = next(line for line in text.splitlines() if line.startswith("| lstm |"))
    assert "| 2 folds, " in lstm_row and f"/{n} rows |" in lstm_row and f"{n}/{n}" not in lstm_row
    ensemble_row = next(line for line in text.splitlines() if line.startswith("| ensemble |"))
    assert f"| 2 folds, {competition['ensemble']['n_scored']}/{n} rows |" in ensemble_row


def test_tuning_history_names_task_model_and_objective(competition):
    text = (competition["root"] / "reports/competition.md").read_text(encoding="utf-8")
    assert "## Tuning: lstm on competition" in text
    assert "Objective: log_loss on fold 0 (lower is better)" in text
    assert "3 complete, 1 pruned, 1 fail." in text
    assert "| 3 | pruned | 0.5500 | 0.5000 |" in text and "| 2 | fail | – | 0.5000 |" in text
    assert_png(competition["root"] / "plots/competition/tuning_lstm.png")


def test_markdown_links_only_existing_images(competition):
    markdown = competition["root"] / "reports" / "competition.md"
    links = assert_images_exist(markdown)
    names = {Path(link).name for link in links}
    assert {"roc.png", "model_comparison.png", "ensemble_weights.png", "tuning_lstm.png"} <= names
    assert {f"confusion_{m}.png" for m in COMPETITION_MODELS} <= names
    text = markdown.read_text(encoding="utf-8")
    for model in COMPETITION_MODELS:
        assert f"| {model} |" in text
    assert f"**{competition['ensemble']['method']}**" in text


def test_validation_task_reports_test_scores(reuters):
    metrics = read_json(reuters["root"] / "metrics" / "reuters.json")
    for model in REUTERS_MODELS:
        assert isinstance(metrics["cv"][model]["accuracy"], float)
        assert isinstance(metrics["test"][model]["accuracy"], float)
        assert "roc_auc" not in metrics["cv"][model]  # multi-class
        test = load_arrays(reuters["root"] / prediction_paths(reuters["task"], model)[0])["test"]
        assert metrics["test"][model]["accuracy"] == pytest.approx(
            score("accuracy", reuters["test_y"], test), abs=1e-6
        )
    assert metrics["test"]["word_lr"]["accuracy"] > 0.6 > metrics["test"]["nbsvm"]["accuracy"]

    plots, series = reuters["root"] / "plots" / "reuters", reuters["root"] / "metrics" / "reuters"
    assert not (plots / "roc.png").exists() and not (series / "roc").exists()
    for model in REUTERS_MODELS:
        assert_png(plots / f"confusion_{model}.png")
        assert read_json(series / "confusion" / f"{model}.json")
    assert_png(plots / "model_comparison.png")
    assert_png(plots / "ensemble_weights.png")
    markdown = reuters["root"] / "reports" / "reuters.md"
    links = assert_images_exist(markdown)
    assert "roc.png" not in {Path(link).name for link in links}
    assert "test accuracy" in markdown.read_text(encoding="utf-8")


def test_unavailable_task_report(tmp_path, monkeypatch):
    from pipeline.report import report

    monkeypatch.chdir(tmp_path)
    params = make_params()
    task = write_unavailable("competition", params)
    metrics = report(task, params)
    assert metrics == {"available": 0, "unavailable_reason": "no credentials", "unavailable_fix": "set them"}
    assert read_json(tmp_path / "metrics" / "competition.json") == metrics
    text = (tmp_path / "reports" / "competition.md").read_text(encoding="utf-8")
    assert "Unavailable" in text and "set them" in text
    assert (tmp_path / "plots" / "competition").is_dir()


def test_validation_summary_has_the_contract_keys(reuters, monkeypatch):
    """metrics/validation.json: <task>.<model>.test_accuracy / test_f1_macro, and why a task is missing."""
    import shutil

    from pipeline.summary import validation_summary

    root = reuters["root"]
    monkeypatch.chdir(root)
    params = make_params()
    from pipeline.report import report

    report(write_unavailable("imdb", params), params)
    summary = validation_summary(params)
    assert read_json(root / "metrics" / "validation.json") == summary
    task_metrics = read_json(root / "metrics" / "reuters.json")
    for model in REUTERS_MODELS:
        assert summary[f"reuters.{model}.test_accuracy"] == task_metrics["test"][model]["accuracy"]
        assert summary[f"reuters.{model}.test_f1_macro"] == task_metrics["test"][model]["f1_macro"]
    assert summary["reuters.available"] == 1 and summary["imdb.available"] == 0
    assert summary["imdb.unavailable_fix"] == "set them"
    assert not any(k.startswith("imdb.") and "test_" in k for k in summary)
    shutil.copy(root / "metrics" / "reuters.json", root / "reuters.bak")
    (root / "metrics" / "reuters.json").unlink()
    try:
        with pytest.raises(FileNotFoundError, match="report@reuters"):
            validation_summary(params)
    finally:
        shutil.move(root / "reuters.bak", root / "metrics" / "reuters.json")


def test_submissions_one_file_per_model_in_sample_order(competition):
    root = competition["root"]
    folder = root / "submissions" / "fake-news"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{m}.csv" for m in COMPETITION_MODELS)
    assert competition["sample_order"] != competition["test_ids"]  # the sample is shuffled
    for model in COMPETITION_MODELS:
        frame = pd.read_csv(folder / f"{model}.csv", dtype=str)
        assert list(frame.columns) == ["id", "label"]
        assert list(frame["id"]) == competition["sample_order"]
        test = load_arrays(root / prediction_paths(competition["task"], model)[0])["test"]
        by_id = dict(zip(competition["test_ids"], test.argmax(axis=1).astype(str)))
        assert list(frame["label"]) == [by_id[i] for i in frame["id"]], model


def test_submissions_index(competition):
    root, params, index = competition["root"], competition["params"], competition["index"]
    saved = read_json(root / "submissions" / "index.json")
    assert saved == index
    assert saved["competition"] == "fake-news" and saved["metric"] == "accuracy"
    assert saved["git_commit"] == "abc1234"
    expected_hash = hashlib.sha256(
        json.dumps(params.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()[:12]
    assert saved["params_sha256"] == expected_hash
    assert set(saved["files"]) == {f"fake-news/{m}.csv" for m in COMPETITION_MODELS}
    for name, entry in saved["files"].items():
        model = entry["model"]
        assert name == f"fake-news/{model}.csv"
        assert entry["sha256"] == sha256_file(root / "submissions" / name)
        assert entry["cv_accuracy"] == competition["metrics"]["cv"][model]["accuracy"]
    best = max(saved["files"], key=lambda n: saved["files"][n]["cv_accuracy"])
    assert saved["best"] == best


def test_headline_holds_the_few_numbers_exp_show_lists(tmp_path, monkeypatch):
    from pipeline.core.io import write_json
    from pipeline.summary import headline

    monkeypatch.chdir(tmp_path)
    write_json(
        "metrics/competition.json",
        {"cv": {"word_lr": {"accuracy": 0.8}, "nbsvm": {"accuracy": 0.85}, "ensemble": {"accuracy": 0.86}}},
    )
    write_json("metrics/imdb.json", {"available": 0})
    write_json(
        "metrics/reuters.json", {"test": {"ensemble": {"accuracy": 0.95}, "word_lr": {"accuracy": 0.9}}}
    )
    expected = {"cv": 0.86, "cv_single": 0.85, "imdb_test": None, "reuters_test": 0.95}
    assert headline(make_params()) == expected == read_json("metrics/headline.json")


def test_training_curves_average_epochs_and_track_the_best_trial(tmp_path, monkeypatch):
    from pipeline.core.tasks import get_task
    from pipeline.report import _training_curves

    monkeypatch.chdir(tmp_path)
    params = make_params(rnn=["lstm"])
    task = get_task("competition", params)
    tuning = task.tuning_dir("lstm")
    tuning.mkdir(parents=True)
    pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "value": [0.6, 0.5, None, 0.55, 0.4],
            "state": ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"],
        }
    ).to_csv(tuning / "trials.csv")
    write_best_params(task, "lstm", "log_loss")
    runs = [
        {"fold": 0, "seed": 1, "epoch": 1, "loss": 0.6, "val_loss": 0.7},
        {"fold": 1, "seed": 1, "epoch": 1, "loss": 0.4, "val_loss": 0.5},
        {"fold": 0, "seed": 1, "epoch": 2, "loss": 0.3, "val_loss": 0.6},
    ]
    records = {
        model: PredictionRecord(task=task.name, model=model, available=True, epochs=epochs)
        for model, epochs in (("lstm", runs), ("word_lr", []))
    }
    _training_curves(task, params, records, tmp_path / "plots")
    assert read_json(tmp_path / "plots/epochs/lstm.json") == [
        {"epoch": 1, "loss": 0.5, "val_loss": 0.6},
        {"epoch": 2, "loss": 0.3, "val_loss": 0.6},
    ]
    assert not (tmp_path / "plots/epochs/word_lr.json").exists()
    assert read_json(tmp_path / "plots/trials/lstm.json") == [
        {"trial": n, "value": v, "best": b}
        for n, v, b in ((0, 0.6, 0.6), (1, 0.5, 0.5), (3, 0.55, 0.5), (4, 0.4, 0.4))
    ]


@pytest.mark.parametrize("flipped", [True, False])
def test_report_warns_when_every_model_is_at_or_below_chance(tmp_path, monkeypatch, caplog, flipped):
    """Models that learnt the twins' opposite labels score below chance: the report says so
    loudly (log and markdown); informative models raise no such warning."""
    from fakepreds import informative, write_model
    from pipeline.report import report

    monkeypatch.chdir(tmp_path)
    params = make_params()
    task, y, folds, test_y = fake_task("competition", params)
    rng = np.random.default_rng(5)
    for model in ("word_lr", "char_lr", "nbsvm"):
        target = 1 - y if flipped else y
        write_model(
            task,
            model,
            y,
            informative(target, 2, 1.5, rng),
            informative(test_y, 2, 1.5, rng),
            list(range(5)),
            folds,
        )
    with caplog.at_level("WARNING", logger="pipeline.report"):
        metrics = report(task, params)
    markdown = (tmp_path / "reports" / "competition.md").read_text(encoding="utf-8")
    assert metrics["cv_check"]["warnings"] == int(flipped)
    assert ("at or near chance" in markdown) is flipped
    assert ("WARNING every model's CV accuracy is at or near chance" in caplog.text) is flipped


def test_report_shows_prepares_checks_and_their_warnings(tmp_path, monkeypatch, caplog):
    from pipeline.core.io import write_json
    from pipeline.report import report

    monkeypatch.chdir(tmp_path)
    params = make_params()
    task, y, folds, test_y = fake_task("competition", params)
    write_fake_models(task, y, folds, test_y)
    fold = {
        "ks": 0.49,
        "critical": 0.15,
        "noise": 0.06,
        "valid_median": 0.9,
        "test_median": 0.2,
        "differs": True,
        "verdict": "stratified folds differ from the test split",
    }
    write_json(
        task.prepared_dir / "diagnostics.json",
        {
            "strategy": "stratified",
            "chosen": "stratified",
            "folds": {"stratified": fold},
            "duplicates": {"verdict": "12 rows in 6 groups", "warn": False},
            "adversarial": {"verdict": "train and test look alike", "warn": False},
            "warnings": ["folds (stratified): stratified folds differ from the test split"],
            "trust": {
                "trusted": False,
                "reasons": ["folds differ"],
                "advice": ["set cv.group to the story column"],
            },
        },
    )
    with caplog.at_level("WARNING", logger="pipeline.report"):
        metrics = report(task, params)
    markdown = (tmp_path / "reports" / "competition.md").read_text(encoding="utf-8")
    assert metrics["cv_check"]["warnings"] == 1
    assert "**WARNING — CV may not predict test:** folds (stratified)" in markdown
    assert "## Do the folds look like the test split?" in markdown
    assert "| stratified ← | – | 0.490 (differs) | 0.900 | 0.200 | – |" in markdown
    assert "12 rows in 6 groups" in markdown and "train and test look alike" in markdown
    assert "> **What to do:** set cv.group to the story column." in markdown  # before the tables
    assert markdown.index("What to do") < markdown.index("| model |")
    assert "WARNING folds (stratified)" in caplog.text


def test_an_untuned_rnn_gets_an_empty_trials_series(tmp_path, monkeypatch):
    # `dvc plots show` fails on a plot folder that does not exist; an empty series draws nothing.
    from pipeline.ensemble import ensemble
    from pipeline.report import report

    monkeypatch.chdir(tmp_path)
    params = make_params(rnn=["lstm"])
    task, y, folds, test_y = fake_task("competition", params)
    write_fake_models(task, y, folds, test_y, rnn_folds={"lstm": [0, 1]})
    ensemble(task, params)
    report(task, params)
    assert json.loads((tmp_path / "metrics/competition/trials/lstm.json").read_text()) == []

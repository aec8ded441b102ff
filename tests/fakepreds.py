"""Synthetic prepared tasks and base-model prediction files for the ensemble, report and
submit tests (no text, no model training: the files the train stage would write, made up).

Everything is relative to the current directory, like the pipeline itself: call these
after ``monkeypatch.chdir(tmp_path)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.metrics import all_scores
from pipeline.core.outputs import PredictionRecord, save_predictions
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task
from tiny_data import write_prepared

N_FOLDS = 5


def make_params(tfidf=("word_lr", "char_lr", "nbsvm"), rnn=(), transformer=(), **sections):
    """Params for the fake models (their names must be registered models)."""
    models = {"tfidf": list(tfidf), "rnn": list(rnn), "transformer": list(transformer)}
    raw = {"models": models, "cv": {"folds": N_FOLDS}}
    raw.update(sections)
    return parse_params(raw)


def fake_task(
    task_name: str, params, n_train: int = 400, n_test: int = 100, n_classes: int = 2, seed: int = 0
):
    """A prepared task of random labels and folds; return (task, y, folds, test_y)."""
    task = get_task(task_name, params)
    rng = np.random.default_rng(seed)
    classes = [str(c) for c in range(n_classes)]
    y = rng.integers(0, n_classes, n_train)
    folds = rng.permutation(np.arange(n_train) % N_FOLDS)
    test_y = rng.integers(0, n_classes, n_test)
    write_prepared(
        Path("."),
        ["some text"] * n_train,
        y,
        ["other text"] * n_test,
        folds=folds,
        classes=classes,
        task=task_name,
        test_y=test_y if task.has_test_labels else None,
    )
    return task, y, folds, test_y


def write_unavailable(task_name: str, params):
    write_prepared(Path("."), [], [], [], available=False, task=task_name, why=("no credentials", "set them"))
    return get_task(task_name, params)


def informative(y: np.ndarray, n_classes: int, strength: float, rng) -> np.ndarray:
    """Class probabilities: softmax(strength * onehot(y) + independent N(0, 1) noise)."""
    logits = strength * np.eye(n_classes)[y] + rng.normal(0.0, 1.0, (len(y), n_classes))
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def noise(n: int, n_classes: int, rng) -> np.ndarray:
    return rng.dirichlet(np.ones(n_classes), n)


def write_model(
    task,
    model: str,
    y: np.ndarray,
    oof: np.ndarray,
    test: np.ndarray,
    folds_run: list[int],
    folds: np.ndarray,
) -> None:
    """``<model>.npz`` (oof with NaN rows for folds not run, test) + ``<model>.json``."""
    oof = oof.copy()
    oof[~np.isin(folds, folds_run)] = np.nan
    scored = ~np.isnan(oof[:, 0])
    record = PredictionRecord(
        task=task.name,
        model=model,
        available=True,
        metric=task.metric,
        folds=list(folds_run),
        fold_scores=[0.5] * len(folds_run),
        n_scored=int(scored.sum()),
        cv=all_scores(y[scored], oof[scored]),
        seconds=0.1,
    )
    save_predictions(task, model, record, oof, test)


def write_fake_models(
    task,
    y,
    folds,
    test_y,
    n_classes: int = 2,
    seed: int = 1,
    rnn_folds: dict[str, list[int]] | None = None,
    strength: dict[str, float | None] | None = None,
) -> dict[str, np.ndarray]:
    """word_lr and char_lr informative (independent noise), nbsvm pure noise; plus any
    model of ``rnn_folds`` (informative, OOF only on the given folds). Returns the OOFs."""
    rng = np.random.default_rng(seed)
    strength = strength or {"word_lr": 1.5, "char_lr": 1.5, "nbsvm": None}
    rnn_folds = rnn_folds or {}
    oofs = {}
    for model in list(strength) + list(rnn_folds):
        s = strength.get(model, 1.5)
        if s is None:
            oof, test = noise(len(y), n_classes, rng), noise(len(test_y), n_classes, rng)
        else:
            oof, test = informative(y, n_classes, s, rng), informative(test_y, n_classes, s, rng)
        run = rnn_folds.get(model, list(range(N_FOLDS)))
        write_model(task, model, y, oof, test, run, folds)
        oofs[model] = oof
    return oofs


def write_sample_submission(task, test_ids: list[str], seed: int = 2) -> list[str]:
    """data/raw/competition/sample_submission.csv: the test ids, shuffled; returns its order.
    Also the ``source.json`` of a Kaggle download of fake-news, as ``fetch`` writes it."""
    import json

    order = list(np.random.default_rng(seed).permutation(test_ids))
    raw = Path(task.raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": order, "label": ["0"] * len(order)}).to_csv(
        raw / "sample_submission.csv", index=False, lineterminator="\n"
    )
    (raw / "source.json").write_text(
        json.dumps({"source": "kaggle", "competition": "fake-news", "files": {}})
    )
    return order


def write_source(task, kind: str, **where) -> None:
    """The ``source.json`` that ``fetch`` writes, for data from ``kind``."""
    from pipeline.core.io import write_json

    write_json(
        task.raw_dir / "source.json",
        {"source": kind, **where, "available": True, "files": {"test.csv": {"sha256": "f" * 64, "rows": 40}}},
    )


def make_submission_project(root: Path) -> Path:
    """``root`` as a project after ``dvc repro`` on Kaggle's fake-news data: params.yaml,
    predictions of three fake models and their ensemble, submissions/ and its index.json
    (git commit ``abc1234``)."""
    import pytest
    import yaml

    from pipeline.ensemble import ensemble
    from pipeline.submit import write_submissions

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr("pipeline.submit._git_commit", lambda: "abc1234")
        params = make_params()
        (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
        task, y, folds, test_y = fake_task("competition", params, n_test=40)
        write_fake_models(task, y, folds, test_y)
        test_ids = list(pd.read_parquet(task.prepared_dir / "test.parquet")["id"])
        write_sample_submission(task, test_ids)
        write_source(task, "kaggle", competition="fake-news")
        ensemble(task, params)
        write_submissions(params)
    return root

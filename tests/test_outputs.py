"""pipeline.core.outputs: typed records round-trip byte for byte, a missing or stale output names the
stage to run, and a failed write leaves nothing a later stage would trust."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import PipelineError, StageOutputError
from pipeline.core.outputs import (
    PredictionRecord,
    PreparedMeta,
    load_best_params,
    load_predictions,
    load_prepared,
    meta_path,
    prediction_paths,
    save_predictions,
    save_prepared,
)
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task

TRAIN = pd.DataFrame(
    {"id": ["a", "b"], "text": ["good", "bad"], "label": ["1", "0"], "y": [1, 0], "fold": [0, 1]}
)
TEST = pd.DataFrame({"id": ["c"], "text": ["fine"]})


@pytest.fixture
def task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return get_task("competition", parse_params({}))


def _meta(**extra) -> PreparedMeta:
    return PreparedMeta(task="competition", available=True, classes=["0", "1"], n_train=2, n_test=1, **extra)


def test_prediction_record_round_trip_keeps_extra_keys_and_bytes(task):
    record = PredictionRecord(
        task="competition", model="word_lr", available=True, cv={"accuracy": 0.5}, seconds=1.25, seeds=3
    )
    oof, test = np.array([[0.2, 0.8], [np.nan, np.nan]]), np.array([[0.6, 0.4]])
    save_predictions(task, "word_lr", record, oof, test)
    loaded, arrays = load_predictions(task, "word_lr")
    assert loaded == record and loaded.cv["accuracy"] == 0.5 and loaded.seeds == 3
    np.testing.assert_array_equal(arrays["oof"], oof)
    np.testing.assert_array_equal(arrays["test"], test)
    # Only the keys that were set are written: defaults do not appear in the file.
    written = json.loads(prediction_paths(task, "word_lr")[1].read_text())
    assert written == {
        "task": "competition",
        "model": "word_lr",
        "available": True,
        "cv": {"accuracy": 0.5},
        "seconds": 1.25,
        "seeds": 3,
    }


def test_prepared_round_trip(task):
    save_prepared(task, TRAIN, TEST, _meta(cv={"ordered": True}, class_counts={"0": 1, "1": 1}), {})
    train, test, meta = load_prepared(task)
    pd.testing.assert_frame_equal(train, TRAIN)
    pd.testing.assert_frame_equal(test, TEST)
    assert meta.classes == ["0", "1"] and meta.ordered and meta.class_counts == {"0": 1, "1": 1}


@pytest.mark.parametrize(
    "load, names",
    [
        (lambda t: load_prepared(t), ["meta.json", "python -m pipeline prepare --task competition"]),
        (
            lambda t: load_predictions(t, "word_lr"),
            [
                "word_lr.json",
                "python -m pipeline train --task competition --model word_lr",
                "dvc repro --glob 'train_*@competition-word_lr'",
            ],
        ),
        (lambda t: load_predictions(t, "lstm"), ["dvc repro --glob 'train_*@competition-lstm'"]),
        (lambda t: load_predictions(t, "ensemble"), ["ensemble.json", "dvc repro ensemble@competition"]),
        (
            lambda t: load_best_params(t, "gru"),
            ["best_params.json", "python -m pipeline tune --task competition --model gru"],
        ),
    ],
)
def test_a_missing_output_names_the_file_and_the_stage(task, load, names):
    with pytest.raises(StageOutputError) as error:
        load(task)
    assert isinstance(error.value, PipelineError) and isinstance(error.value, FileNotFoundError)
    for name in names:
        assert name in str(error.value)


def test_an_output_in_an_older_layout_names_the_key_and_the_stage(task):
    save_prepared(task, TRAIN, TEST, _meta(), {})
    meta_path(task).write_text(json.dumps({"task": "competition", "classes": ["0", "1"]}))
    with pytest.raises(StageOutputError, match=r"meta\.json: not the layout .*available.*pipeline prepare"):
        load_prepared(task)


def test_a_failed_prepared_write_leaves_the_old_folder(task):
    with pytest.raises(TypeError):
        save_prepared(task, TRAIN, TEST, _meta(), {"bad": object()})
    assert not task.prepared_dir.exists()
    save_prepared(task, TRAIN, TEST, _meta(), {})
    with pytest.raises(TypeError):
        save_prepared(task, TRAIN.iloc[:1], TEST, _meta(n_train=1), {"bad": object()})
    assert load_prepared(task)[2].n_train == 2 and len(load_prepared(task)[0]) == 2


def test_a_failed_record_write_leaves_no_record_beside_new_arrays(task):
    good = PredictionRecord(task="competition", model="word_lr", available=True)
    save_predictions(task, "word_lr", good, np.zeros((2, 2)), np.zeros((1, 2)))
    bad = PredictionRecord(task="competition", model="word_lr", available=True, extra=object())
    with pytest.raises(TypeError):
        save_predictions(task, "word_lr", bad, np.ones((2, 2)), np.ones((1, 2)))
    arrays_path, record_path = prediction_paths(task, "word_lr")
    assert not record_path.exists() and not list(arrays_path.parent.glob("*.tmp"))
    with pytest.raises(StageOutputError, match="word_lr.json not found"):
        load_predictions(task, "word_lr")


def test_a_stage_run_before_its_inputs_exits_2_naming_the_stage(task, monkeypatch, capsys):
    import yaml

    from pipeline.__main__ import main

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; restore afterwards
    with open("params.yaml", "w") as handle:
        yaml.safe_dump(parse_params({}).model_dump(mode="json"), handle)
    assert main(["ensemble", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "meta.json not found" in err and "python -m pipeline prepare --task competition" in err
    assert "Traceback" not in err

"""Stage outputs: where each stage writes for a task, typed records of its JSON files, and
atomic save/load through :mod:`pipeline.core.io`.

Folders come from :class:`~pipeline.core.tasks.Task` (``data/<stage>/<task>``); the file names and
record layouts live here, so a stage reads another stage's output without importing it. A
reader that finds an output missing, or in a layout this code does not read (written by an
older version), gets a :class:`~pipeline.core.errors.StageOutputError` naming the file and the
stage to run. Records keep any extra keys a stage adds (``extra="allow"``) and write back
only the keys that were set, so files stay byte for byte what the stages wrote before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import StageOutputError
from .io import atomic_path, load_arrays, read_json, save_arrays, write_json
from .tasks import Task

if TYPE_CHECKING:
    import pandas as pd

    from .params import Params, RNNConfig


class StageRecord(BaseModel):
    """The JSON record every stage writes beside its arrays: ``available`` and, when not,
    the ``reason``. Other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")

    task: str
    available: bool
    reason: str = ""

    def dump(self) -> dict[str, Any]:
        """The keys that were set (defaults left out): what the stage wrote."""
        return self.model_dump(exclude_unset=True)


class PreparedMeta(StageRecord):
    """``data/prepared/<task>/meta.json``: classes, row counts and the CV plan."""

    classes: list[str] = []
    n_train: int = 0
    n_test: int = 0
    fix: str = ""
    cv: dict[str, Any] = {}

    @property
    def ordered(self) -> bool:
        """Whether the folds are in time order (validation rows only after training rows)."""
        return bool(self.cv.get("ordered", False))


class PredictionRecord(StageRecord):
    """``<model>.json`` beside ``<model>.npz``: CV scores and how they were made. The
    ensemble adds the ``method`` it chose, every method's scores and the ``weights``."""

    model: str
    metric: str = ""
    folds: list[int] = []
    fold_scores: list[float] = []
    n_scored: int | None = None
    cv: dict[str, float] = {}
    seconds: float = 0.0
    epochs: list[dict[str, Any]] = []
    method: str = ""
    methods: dict[str, dict[str, float]] = {}
    base_models_same_rows: dict[str, float] = {}
    weights: dict[str, float] = {}
    guard: dict[str, Any] = {}


class BestParams(StageRecord):
    """``data/tuning/<task>/<model>/best_params.json``: the configuration ``tune`` chose,
    and the objective ``metric`` and best value when it ran a study."""

    model: str
    config: dict[str, Any]
    metric: str = ""
    best_value: float | None = None


R = TypeVar("R", bound=StageRecord)


def _command(task: Task, stage: str, model: str | None = None) -> str:
    """How to make a stage's output: the CLI command and the ``dvc repro`` target."""
    if model is None:
        return f"`python -m pipeline {stage} --task {task.name}` (or `dvc repro {stage}@{task.name}`)"
    target = f"{stage}@{task.name}-{model}"
    if stage == "train":  # train_<group>: the model's group is the registry's to say
        target = f"--glob 'train_*@{task.name}-{model}'"
    return f"`python -m pipeline {stage} --task {task.name} --model {model}` (or `dvc repro {target}`)"


def read_record(path: Path, kind: type[R], task: Task, stage: str, model: str | None = None) -> R:
    """The record at ``path``, checked against ``kind``; a missing file or one in another
    layout raises :class:`StageOutputError` naming ``path`` and the stage to run."""
    try:
        return kind.model_validate(read_json(_require(path, task, stage, model)))
    except (ValidationError, ValueError) as error:
        why = error.errors()[0] if isinstance(error, ValidationError) else {"msg": str(error)}
        where = ".".join(str(p) for p in why.get("loc", ())) or "file"
        raise StageOutputError(
            f"{path}: not the layout this code reads ({where}: {why['msg']}), probably written by an "
            f"older version; run {_command(task, stage, model)} again"
        ) from None


def _require(path: Path, task: Task, stage: str, model: str | None = None) -> Path:
    if not path.exists():
        raise StageOutputError(f"{path} not found: run {_command(task, stage, model)} first")
    return path


# prepare --------------------------------------------------------------------------------
def meta_path(task: Task) -> Path:
    return task.prepared_dir / "meta.json"


def save_prepared(
    task: Task, train: pd.DataFrame, test: pd.DataFrame, meta: PreparedMeta, diagnostics: dict
) -> None:
    """``{train,test}.parquet``, ``meta.json`` and ``diagnostics.json``: the whole folder at once."""
    with atomic_path(task.prepared_dir) as out:
        out.mkdir()
        train.to_parquet(out / "train.parquet", index=False)
        test.to_parquet(out / "test.parquet", index=False)
        write_json(out / "meta.json", meta.dump())
        write_json(out / "diagnostics.json", diagnostics)


def load_diagnostics(task: Task) -> dict:
    """The checks ``prepare`` wrote (``{}`` for an unavailable task or an older run)."""
    path = task.prepared_dir / "diagnostics.json"
    return read_json(path) if path.exists() else {}


def load_meta(task: Task) -> PreparedMeta:
    """``prepare``'s record alone: whether the task has data, without reading it."""
    return read_record(meta_path(task), PreparedMeta, task, "prepare")


def load_prepared(task: Task) -> tuple[pd.DataFrame, pd.DataFrame, PreparedMeta]:
    import pandas as pd  # on use: a stage of a task without data never imports it

    meta = load_meta(task)
    folder = task.prepared_dir
    return pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "test.parquet"), meta


# tokenize, embed, encode ----------------------------------------------------------------
def vocab_path(task: Task) -> Path:
    return task.features_dir / "vocab.json"


def sequences_path(task: Task) -> Path:
    return task.features_dir / "sequences.npz"


def save_sequences(task: Task, arrays: dict[str, np.ndarray], record: dict) -> None:
    """``sequences.npz`` (numbers only) and ``vocab.json``: the whole folder at once."""
    with atomic_path(task.features_dir) as out:
        out.mkdir()
        with open(out / sequences_path(task).name, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # as load_arrays reads them
        write_json(out / vocab_path(task).name, record)


def load_sequences(task: Task) -> tuple[dict, dict[str, np.ndarray]]:
    """The vocabulary record and the stored token sequences of ``task``."""
    _require(vocab_path(task), task, "tokenize")
    return read_json(vocab_path(task)), load_arrays(sequences_path(task))


def vectors_path(task: Task) -> Path:
    return task.embeddings_dir / "vectors.npy"


def save_vectors(task: Task, vectors: np.ndarray | None, record: dict) -> None:
    """``vectors.npy`` (when there are vectors) and ``embed.json``: the whole folder at once."""
    with atomic_path(task.embeddings_dir) as out:
        out.mkdir()
        if vectors is not None:
            np.save(out / vectors_path(task).name, vectors)
        write_json(out / "embed.json", record)


def load_vectors(task: Task) -> np.ndarray | None:
    """The word vectors ``embed`` stored, or ``None`` (``embed.method: none``, no data)."""
    record = read_record(task.embeddings_dir / "embed.json", StageRecord, task, "embed")
    return np.load(vectors_path(task)) if record.available else None


def save_encoded(task: Task, arrays: dict[str, np.ndarray], record: dict) -> None:
    """``train.npy`` and ``test.npy`` (when encoded) and ``encode.json``: the whole folder at once."""
    with atomic_path(task.encoded_dir) as out:
        out.mkdir()
        for split, values in arrays.items():
            np.save(out / f"{split}.npy", values)
        write_json(out / "encode.json", record)


def load_encoded(task: Task) -> tuple[StageRecord, np.ndarray, np.ndarray]:
    """``(record, train, test)``: the frozen-encoder embeddings ``encode`` stored."""
    path = task.encoded_dir / "encode.json"
    record = read_record(path, StageRecord, task, "encode")
    if not record.available:
        raise StageOutputError(
            f"{path}: no embeddings ({record.reason}); add the task to transformer.tasks and a "
            "frozen model to models.transformer"
        )
    return record, np.load(task.encoded_dir / "train.npy"), np.load(task.encoded_dir / "test.npy")


# report, summary, submissions ----------------------------------------------------------
METRICS_DIR, PLOTS_DIR, REPORTS_DIR = Path("metrics"), Path("plots"), Path("reports")


def report_models(params: Params, task: Task) -> list[str]:
    """Models the report and the submissions cover, in params order, the ensemble last."""
    return list(task.models_to_run(params)) + ["ensemble"]


# train, ensemble ------------------------------------------------------------------------
def prediction_paths(task: Task, model: str) -> tuple[Path, Path]:
    """``<model>.npz`` and ``<model>.json``; the ensemble's live in its own folder."""
    base = (task.ensemble_dir if model == "ensemble" else task.predictions_dir) / model
    return base.with_suffix(".npz"), base.with_suffix(".json")


def save_predictions(
    task: Task, model: str, record: PredictionRecord, oof: np.ndarray, test: np.ndarray
) -> None:
    """Write ``<model>.npz`` then ``<model>.json``, each atomically.

    The old record goes first: a run killed between the two writes leaves arrays without a
    record (an output that reads as missing) rather than new arrays paired with an old record.
    """
    arrays_path, record_path = prediction_paths(task, model)
    record_path.unlink(missing_ok=True)
    save_arrays(arrays_path, oof=oof, test=test)
    write_json(record_path, record.dump())


def save_unavailable(task: Task, model: str, record: dict, reason: str) -> None:
    """Empty placeholder outputs for a task whose data is unavailable (DVC needs its outs)."""
    full = PredictionRecord.model_validate({**record, "reason": reason})
    save_predictions(task, model, full, np.zeros((0, 0)), np.zeros((0, 0)))


def load_predictions(task: Task, model: str) -> tuple[PredictionRecord, dict[str, np.ndarray]]:
    """The record and arrays (``oof``, ``test``) that ``train`` (or ``ensemble``) saved for ``model``."""
    arrays_path, record_path = prediction_paths(task, model)
    stage, of = ("ensemble", None) if model == "ensemble" else ("train", model)
    record = read_record(record_path, PredictionRecord, task, stage, of)
    return record, load_arrays(_require(arrays_path, task, stage, of))


# tune -----------------------------------------------------------------------------------
def best_params_path(task: Task, model: str) -> Path:
    return task.tuning_dir(model) / "best_params.json"


def trials_path(task: Task, model: str) -> Path:
    """``trials.csv``: every Optuna trial of ``tune`` (absent when nothing was tuned)."""
    return task.tuning_dir(model) / "trials.csv"


def load_best_params(task: Task, model: str) -> BestParams:
    return read_record(best_params_path(task, model), BestParams, task, "tune", model)


def tuned_config(task: Task, model: str, params: Params) -> RNNConfig:
    """The RNN configuration the ``tune`` stage chose (``neural.defaults`` without tuning)."""
    from .params import RNNConfig

    if not best_params_path(task, model).exists():
        return params.neural.defaults
    return RNNConfig.model_validate(load_best_params(task, model).config)

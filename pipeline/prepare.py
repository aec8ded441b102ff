"""``prepare`` stage: validated, cleaned text with a seeded fold column.

Writes ``data/prepared/<task>/{train,test}.parquet`` (``id, text, label, y[, fold, group]``),
``meta.json`` (classes, counts, the CV plan) and ``diagnostics.json`` (duplicates, train/test
shift, how the folds compare with the test split; see :mod:`pipeline.cv.plan`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .core.errors import DataError
from .core.outputs import PreparedMeta, save_prepared
from .core.params import Params
from .core.tasks import Task
from .features.text import clean_text, join_fields
from .sources import read_source_record

log = logging.getLogger(__name__)


def _model_text(frame: pd.DataFrame, task: Task, params: Params) -> tuple[pd.Series, int]:
    options = params.text.model_dump()
    cleaned = {col: frame[col].map(lambda v: clean_text(v, **options)) for col in task.text_cols}
    empty = int(np.logical_and.reduce([cleaned[c] == "" for c in task.text_cols]).sum())
    long_rows = int(
        (frame[list(task.text_cols)].apply(lambda c: c.str.len()).max(axis=1) > params.text.max_chars).sum()
    )
    if long_rows:
        log.warning(
            "%d %s row(s) longer than text.max_chars=%d were cut", long_rows, task.name, params.text.max_chars
        )
    text = pd.Series(
        [join_fields({c: cleaned[c].iat[i] for c in task.text_cols}) for i in range(len(frame))],
        index=frame.index,
        dtype=str,
    )
    return text, empty


def _frame(frame: pd.DataFrame, task: Task, params: Params, classes, with_labels: bool):
    text, empty = _model_text(frame, task, params)
    out = pd.DataFrame({"id": frame[task.id_col].str.strip(), "text": text})
    if with_labels:
        out["label"] = frame[task.label_col].str.strip()
        out["y"] = out["label"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    return out.reset_index(drop=True), empty


def prepare(task: Task, params: Params) -> PreparedMeta:
    """Validate and clean the raw CSVs of ``task``; return the meta record."""
    from .cv.plan import plan_folds  # sklearn: imported only when there is data to split
    from .sources.rawdata import load_task_csvs

    source = read_source_record(task)
    meta: dict = {"task": task.name, "available": source["available"]}
    checks: dict = {}
    if source["available"]:
        raw_train, raw_test, classes = load_task_csvs(task)
        train, empty_train = _frame(raw_train, task, params, classes, True)
        test, empty_test = _frame(raw_test, task, params, classes, task.has_test_labels)
        try:
            train["fold"], train["group"], checks = plan_folds(
                raw_train, train, test, params, task.raw_dir / "train.csv", skip=(task.id_col, task.label_col)
            )
        except ValueError as error:
            if isinstance(error, DataError):
                raise
            raise DataError(f"{task.raw_dir / 'train.csv'}: {error}") from None
        for name, count in (("train", empty_train), ("test", empty_test)):
            if count:
                log.warning(
                    "%s %s.csv: %d row(s) have no text in %s; kept as empty strings",
                    task.name,
                    name,
                    count,
                    list(task.text_cols),
                )
        meta.update(
            classes=list(classes),
            n_train=len(train),
            n_test=len(test),
            empty_text={"train": empty_train, "test": empty_test},
            class_counts=train["label"].value_counts().sort_index().to_dict(),
            cv={"strategy": checks["strategy"], "chosen": checks["chosen"], "ordered": checks["ordered"]},
        )
    else:
        meta.update(reason=source["reason"], fix=source["fix"])
        train = pd.DataFrame({"id": [], "text": [], "label": [], "y": [], "fold": [], "group": []})
        test = train[["id", "text"]]
    record = PreparedMeta.model_validate(meta)
    save_prepared(task, train, test, record, checks)
    log.info(
        "prepared %s: %s",
        task.name,
        f"{record.n_train} train / {record.n_test} test rows, {len(record.classes)} classes"
        if record.available
        else f"unavailable ({record.reason})",
    )
    return record

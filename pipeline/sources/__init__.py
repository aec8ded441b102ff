"""Data sources: where each task's raw files come from.

A source writes the task's raw CSVs into the folder the ``fetch`` stage (:mod:`pipeline.fetch`)
gives it: the competition in the Kaggle layout (train.csv, test.csv, sample_submission.csv)
from the bundled sample (:mod:`.sample`), a local folder or Kaggle (:mod:`.kaggle`); the
validation tasks in a normalised ``id,text,label`` layout from :mod:`.imdb` and :mod:`.reuters`.
:mod:`.rawdata` reads and validates raw CSV files. ``source.json`` records where the files came
from; :func:`read_source_record` reads it back.
"""

from __future__ import annotations

from ..core.errors import DataError
from ..core.tasks import Task

SOURCE_RECORD = "source.json"
COMPETITION_FILES = ("train.csv", "test.csv", "sample_submission.csv")


def read_source_record(task: Task) -> dict:
    """The ``source.json`` that ``fetch`` wrote for ``task``."""
    import json

    path = task.raw_dir / SOURCE_RECORD
    if not path.exists():
        raise DataError(f"{path} not found: run `dvc repro fetch@{task.name}` first")
    return json.loads(path.read_text(encoding="utf-8"))

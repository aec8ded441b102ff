"""``fingerprint`` stage: what a task's data source looks like now, so ``fetch`` reruns
exactly when its input changed.

DVC cannot track a folder named by a param (``competition.local_dir``), so this stage runs
on every ``dvc repro`` (``always_changed``) and writes ``data/fingerprints/<task>.json``;
``fetch`` depends on that file. An unchanged file means DVC skips ``fetch`` and everything
after it; a changed one reruns them.

* ``local`` folders: the sha256 of every file under the folder (hidden files aside), so
  editing ``train.csv`` reruns ``fetch``; touching a file without changing it does not.
* ``sample``: nothing beyond the params ``fetch`` already depends on (``seed``).
* ``kaggle`` and ``download``: no network call here. Kaggle competition files are fixed
  once a competition opens, so a download is reused until ``competition.name`` or
  ``competition.source`` change, or until ``dvc repro -f fetch@competition`` forces a fresh one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import DataError
from ..io import sha256_file, write_json
from ..params import Params
from ..tasks import Task

log = logging.getLogger(__name__)
FINGERPRINTS = Path("data") / "fingerprints"


def folder_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``, hidden ones aside."""
    if not folder.is_dir():
        raise DataError(
            f"{str(folder)!r} is not a folder: set the task's local_dir to the folder holding its files"
        )
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    }


def _source(task: Task, params: Params) -> tuple[str, str]:
    if task.is_competition:
        return params.competition.source, params.competition.local_dir
    config = params.validation.imdb if task.name == "imdb" else params.validation.reuters
    return config.source, config.local_dir


def fingerprint(task: Task, params: Params) -> dict:
    """Write and return ``data/fingerprints/<task>.json``."""
    source, local_dir = _source(task, params)
    record: dict = {"task": task.name, "source": source}
    if source == "local" and local_dir:
        folder = Path(local_dir)
        if folder.is_dir() or task.is_competition:  # a missing validation folder: fetch says why
            record.update(local_dir=str(folder.resolve()), files=folder_digest(folder))
    write_json(FINGERPRINTS / f"{task.name}.json", record)
    log.info(
        "[fingerprint %s] %s%s",
        task.name,
        source,
        f": {len(record.get('files', {}))} files in {local_dir}" if "files" in record else "",
    )
    return record

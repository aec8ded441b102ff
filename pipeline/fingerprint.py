"""``fingerprint`` stage: what each task's data source looks like now, so ``fetch`` reruns
exactly when its input changed.

DVC cannot track a folder named by a param (``competition.local_dir``), so this stage runs
on every ``dvc repro`` (``always_changed``) and writes ``data/fingerprints/<task>.json`` for
every task; ``fetch@<task>`` depends on its task's file. An unchanged file means DVC skips
``fetch`` and everything after it; a changed one reruns them. One process covers every task
and imports nothing heavy (no pandas, no TensorFlow): a no-op ``dvc repro`` pays for it.

* ``local`` folders: the sha256 of every file under the folder (hidden files aside), so
  editing ``train.csv`` reruns ``fetch``; touching a file without changing it does not.
  A file whose size and modification time are those of the last run keeps the sha256 then
  computed (``data/fingerprints/stat-cache.json``), so an unchanged folder is not read again;
  a file modified within :data:`RACY_NS` of its hashing is hashed again next time (an edit
  in the same clock tick cannot hide).
* ``sample``: nothing beyond the params ``fetch`` already depends on (``seed``).
* ``kaggle`` and ``download``: no network call here. Kaggle competition files are fixed
  once a competition opens, so a download is reused until ``competition.name`` or
  ``competition.source`` change, or until ``dvc repro -f fetch@competition`` forces a fresh one.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .core.errors import DataError
from .core.io import sha256_file, write_json
from .core.params import Params
from .core.tasks import TASK_NAMES, Task, get_task

log = logging.getLogger(__name__)
FINGERPRINTS = Path("data") / "fingerprints"
STAT_CACHE = FINGERPRINTS / "stat-cache.json"
RACY_NS = 2 * 10**9  # a file modified this close to its hashing is hashed again next run

# {absolute path: [size, mtime_ns, hashed_at_ns, sha256]}
StatCache = dict[str, list]


def folder_digest(
    folder: Path, known: StatCache | None = None, seen: StatCache | None = None
) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``, hidden ones aside.

    ``known`` supplies the sha256 of files whose size and modification time it recorded,
    unless they were modified within :data:`RACY_NS` of their hashing; every file's entry
    goes into ``seen``.
    """
    if not folder.is_dir():
        raise DataError(
            f"{str(folder)!r} is not a folder: set the task's local_dir to the folder holding its files"
        )
    known, seen = known or {}, {} if seen is None else seen
    digests: StatCache = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        key, stat = str(path.resolve()), path.stat()
        entry = known.get(key)
        if not (entry and entry[:2] == [stat.st_size, stat.st_mtime_ns] and entry[2] - entry[1] > RACY_NS):
            entry = [stat.st_size, stat.st_mtime_ns, time.time_ns(), sha256_file(path)]
        digests[relative.as_posix()] = seen[key] = entry
    return {name: entry[3] for name, entry in digests.items()}


def _source(task: Task, params: Params) -> tuple[str, str]:
    if task.is_competition:
        return params.competition.source, params.competition.local_dir
    config = params.validation.imdb if task.name == "imdb" else params.validation.reuters
    return config.source, config.local_dir


def fingerprint(
    task: Task, params: Params, known: StatCache | None = None, seen: StatCache | None = None
) -> dict:
    """Write and return ``data/fingerprints/<task>.json`` (stat caches: :func:`folder_digest`)."""
    source, local_dir = _source(task, params)
    record: dict = {"task": task.name, "source": source}
    if source == "local" and local_dir:
        folder = Path(local_dir)
        if folder.is_dir() or task.is_competition:  # a missing validation folder: fetch says why
            record.update(local_dir=str(folder.resolve()), files=folder_digest(folder, known, seen))
    write_json(FINGERPRINTS / f"{task.name}.json", record)
    log.info(
        "[fingerprint %s] %s%s",
        task.name,
        source,
        f": {len(record.get('files', {}))} files in {local_dir}" if "files" in record else "",
    )
    return record


def _read_cache() -> StatCache:
    try:
        cache = json.loads(STAT_CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: every file is hashed
        return {}
    return cache if isinstance(cache, dict) else {}


def fingerprints(params: Params) -> dict[str, dict]:
    """Write every task's fingerprint (see the module docstring) and the stat cache."""
    known = _read_cache()
    seen: StatCache = {}
    records = {name: fingerprint(get_task(name, params), params, known, seen) for name in TASK_NAMES}
    write_json(STAT_CACHE, seen)  # the files of this run's folders only
    return records

"""``fetch`` stage: fill ``data/raw/<task>/`` with the task's raw CSVs and ``source.json``.

``source.json`` says where the files came from, with the sha256 and row count of each file.
The competition is written in the Kaggle layout (train.csv, test.csv, sample_submission.csv);
the validation tasks in a normalised ``id,text,label`` layout (their test labels are public).
The sources themselves are :mod:`pipeline.sources`.

A validation task whose data cannot be reached (offline, no local copy) is recorded as
unavailable, with the reason and the fix, instead of failing the whole ``dvc repro``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .core.errors import DataError, SourceUnavailable
from .core.io import atomic_path, sha256_file, write_json
from .core.params import Params
from .core.tasks import Task
from .sources import COMPETITION_FILES, SOURCE_RECORD
from .sources.rawdata import count_rows, describe_non_file, read_column

log = logging.getLogger(__name__)


def _copy_local_competition(local_dir: Path, dest: Path) -> dict:
    local_dir = Path(local_dir).expanduser()
    if not local_dir.is_dir():
        raise DataError(
            f"competition.local_dir {str(local_dir)!r} is not a folder: set it to the "
            "folder holding train.csv, test.csv and sample_submission.csv"
        )
    names = {p.name for p in local_dir.iterdir()}
    if "sample_submission.csv" not in names and "submit.csv" in names:
        names.add("sample_submission.csv")  # Kaggle's fake-news ships it as submit.csv
    missing = [name for name in COMPETITION_FILES if name not in names]
    if missing:
        raise DataError(
            f"{local_dir}: missing {', '.join(missing)} (found: "
            f"{', '.join(sorted(names)) or 'nothing'}); download the competition "
            "files into that folder"
        )
    for name in COMPETITION_FILES:
        src = _local_file(local_dir, name)
        kind = describe_non_file(src)
        if kind:
            raise DataError(f"{src}: {kind}")
        try:
            shutil.copyfile(src, dest / name)
        except OSError as error:
            raise DataError(
                f"cannot read {src}: {error.strerror or error}; check the file and its permissions"
            ) from None
    return {"source": "local", "local_dir": str(local_dir.resolve())}


def _local_file(local_dir: Path, name: str) -> Path:
    src = local_dir / name
    if name == "sample_submission.csv" and not os.path.lexists(src):
        return local_dir / "submit.csv"
    return src


def _write_validation_task(task: Task, params: Params, dest: Path) -> dict:
    config = params.validation.imdb if task.name == "imdb" else params.validation.reuters
    if config.source == "keras":
        raise SourceUnavailable(
            "the 'keras' source needs Keras' imdb.npz/reuters.npz, which cannot be fetched here",
            fix=f"set validation.{task.name}.source to 'local' or 'download'",
        )
    if task.name == "imdb":
        from .sources.imdb import download, load_local as load
    else:
        from .sources.reuters import download, load_r52 as load
    if config.source == "local":
        if not config.local_dir:
            raise SourceUnavailable(
                f"validation.{task.name}.source is 'local' but local_dir is empty",
                fix=f"dvc exp run -S validation.{task.name}.local_dir=<folder>",
            )
        folder = Path(config.local_dir).expanduser()
        if not folder.exists():
            raise SourceUnavailable(
                f"validation.{task.name}.local_dir {str(folder)!r} does not exist",
                fix=f"dvc exp run -S validation.{task.name}.local_dir=<folder>",
            )
    else:
        folder = download(Path("data") / "downloads" / task.name)
    train, test = load(folder)
    train.to_csv(dest / "train.csv", index=False, lineterminator="\n")
    test.to_csv(dest / "test.csv", index=False, lineterminator="\n")
    return {"source": config.source, "local_dir": str(folder)}


def _fill(task: Task, params: Params, dest: Path) -> dict:
    if task.is_competition:
        comp = params.competition
        if comp.source == "sample":
            from .sources.sample import write_sample

            return write_sample(dest, seed=params.seed)
        if comp.source == "local":
            return _copy_local_competition(Path(comp.local_dir), dest)
        from .sources.kaggle import download_competition

        return download_competition(comp.name, dest)
    if not task.enabled(params):
        raise SourceUnavailable(
            f"task {task.name!r} is not in validation.tasks",
            fix=f"add {task.name} to validation.tasks in params.yaml",
        )
    return _write_validation_task(task, params, dest)


def _describe_files(folder: Path) -> dict:
    files = {}
    for path in sorted(folder.glob("*.csv")):
        rows = count_rows(path)  # streamed; a DataError naming the file and line
        files[path.name] = {"sha256": sha256_file(path), "rows": rows, "bytes": path.stat().st_size}
    return files


def _check_sample_submission(folder: Path, id_col: str) -> None:
    """The sample submission's ids (its first column) are test.csv's ids, each once."""
    sample_path, test_path = folder / "sample_submission.csv", folder / "test.csv"
    sample_col, sample_ids = read_column(sample_path, 0)
    _, test_ids = read_column(test_path, id_col)
    seen: dict[str, int] = {}
    duplicated = [line for line, value in sample_ids if seen.setdefault(value, line) != line]
    if duplicated:
        raise DataError(
            f"{sample_path}: duplicate id(s) in column {sample_col!r} on line(s) "
            f"{', '.join(map(str, duplicated[:5]))}; the file is damaged: fetch it again"
        )
    expected = {value for _, value in test_ids}
    unknown = [(line, value) for line, value in sample_ids if value not in expected]
    absent = sorted(expected - seen.keys())
    if unknown or absent:
        example = f"e.g. {unknown[0][1]!r} on line {unknown[0][0]}" if unknown else ""
        raise DataError(
            f"{sample_path}: its ids do not match test.csv's: {len(seen)} ids for {len(expected)} "
            f"test rows; {len(absent)} test id(s) missing (e.g. {absent[:3]}), {len(unknown)} "
            f"not in test.csv {example}. A truncated download or files from different "
            "competitions: fetch them again"
        )


def _user_paths(task: Task, record: dict, tmp: Path) -> dict[str, str]:
    """Where each file in the temporary folder ``tmp`` came from, as the user knows it."""
    shown = {}
    for path in tmp.iterdir():
        if record.get("source") == "local" and task.is_competition:
            shown[str(path)] = str(_local_file(Path(record["local_dir"]), path.name))
        elif record.get("source") == "kaggle":
            shown[str(path)] = f"{path.name} (in the archive Kaggle sent for {record['competition']!r})"
        else:
            shown[str(path)] = str(task.raw_dir / path.name)
    return shown


def _check_files(task: Task, params: Params, record: dict, dest: Path) -> dict:
    """Count and hash the files; check the sample submission. Errors name the user's files."""
    try:
        files = _describe_files(dest)
        if task.is_competition:
            _check_sample_submission(dest, params.competition.id)
    except DataError as error:
        message = str(error)
        for tmp, shown in sorted(_user_paths(task, record, dest).items(), key=lambda kv: -len(kv[0])):
            message = message.replace(tmp, shown)
        raise DataError(message) from None
    return files


def fetch(task: Task, params: Params) -> dict:
    """Fill ``task.raw_dir`` atomically and return the source record written beside the files.

    Competition errors propagate (the user asked for that source). A validation task that
    cannot be fetched is recorded as unavailable with a loud warning.
    """
    with atomic_path(task.raw_dir) as dest:
        dest.mkdir(parents=True)
        try:
            record = _fill(task, params, dest)
            record.update(available=True, files=_check_files(task, params, record, dest))
        except SourceUnavailable as error:
            if task.is_competition:
                raise
            for stale in dest.iterdir():
                stale.unlink()
            record = {"available": False, "reason": error.reason, "fix": error.fix}
            log.warning(
                "\n%s\n!! task %s is UNAVAILABLE: %s\n!! fix: %s\n%s",
                "!" * 70,
                task.name,
                error.reason,
                error.fix,
                "!" * 70,
            )
        record["task"] = task.name
        write_json(dest / SOURCE_RECORD, record)
    return record

"""Reading and validating raw CSV files.

Every failure is a :class:`~pipeline.errors.DataError` that names the file, the row or
column, and what to do, never a traceback from deep inside pandas.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from .errors import DataError
from .tasks import Task

_MAX_LISTED = 5


def _rows(index, header_offset: int = 2) -> str:
    """Human row numbers (file lines: +1 for the header, +1 for 1-based) of a few rows."""
    rows = [str(int(i) + header_offset) for i in list(index)[:_MAX_LISTED]]
    more = len(index) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")


def read_csv(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV as strings (empty cells → ``""``), checking encoding and columns.

    Accepts a UTF-8 byte-order mark and CRLF line ends. Non-UTF-8 bytes are an error naming
    the line (re-save the file as UTF-8).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the source folder or rerun the fetch stage")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not valid UTF-8; re-save the "
            f"file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`)") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected a header row and data rows")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, ValueError) as error:
        detail = str(error).strip().splitlines()[-1]
        raise DataError(f"{path}: not a well-formed CSV ({detail}); check quoting on that line") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no data rows, only a header; expected at least one row")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}. "
                        "Fix the file or the column names in params.yaml (competition.id/text/label)")
    return frame


def check_ids(frame: pd.DataFrame, id_col: str, path: Path) -> None:
    """Ids must be present and unique."""
    ids = frame[id_col].str.strip()
    empty = frame.index[ids == ""]
    if len(empty):
        raise DataError(f"{path}: column {id_col!r} is empty on row(s) {_rows(empty)}; every row needs an id")
    dup = frame.index[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(f"{path}: duplicate ids in column {id_col!r} on row(s) {_rows(dup)} "
                        f"(e.g. {ids[dup[0]]!r}); ids must be unique")


def check_labels(frame: pd.DataFrame, task: Task, path: Path, classes: tuple[str, ...] | None) -> None:
    """Labels must be present and, when ``classes`` is given, one of them."""
    labels = frame[task.label_col].str.strip()
    bad = frame.index[labels == ""] if classes is None else frame.index[~labels.isin(classes)]
    if len(bad):
        allowed = "non-empty" if classes is None else f"one of {list(classes)}"
        raise DataError(f"{path}: column {task.label_col!r} must be {allowed}; row(s) {_rows(bad)} "
                        f"hold {sorted(set(labels[bad]))[:_MAX_LISTED]}. Fix or drop those rows")


def load_task_csvs(task: Task) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Read and validate ``train.csv``/``test.csv`` of ``task``; return them and the classes."""
    train_path, test_path = task.raw_dir / "train.csv", task.raw_dir / "test.csv"
    train = read_csv(train_path, (task.id_col, *task.text_cols, task.label_col))
    test_required = (task.id_col, *task.text_cols) + ((task.label_col,) if task.has_test_labels else ())
    test = read_csv(test_path, test_required)
    check_ids(train, task.id_col, train_path)
    check_ids(test, task.id_col, test_path)
    overlap = test.index[test[task.id_col].str.strip().isin(set(train[task.id_col].str.strip()))]
    if len(overlap):
        raise DataError(f"{test_path}: id(s) also in train.csv on row(s) {_rows(overlap)} "
                        f"(e.g. {test[task.id_col][overlap[0]]!r}); train and test ids must not overlap")
    check_labels(train, task, train_path, task.classes)
    observed = tuple(sorted(set(train[task.label_col].str.strip())))
    if len(observed) < 2:
        raise DataError(f"{train_path}: column {task.label_col!r} has a single class {observed}; need two or more")
    classes = task.classes or observed
    if task.has_test_labels:
        check_labels(test, task, test_path, classes)
    return train, test, classes

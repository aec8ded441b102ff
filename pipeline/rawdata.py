"""Reading and validating raw CSV files.

Every failure is a :class:`~pipeline.errors.DataError` that names the file, the row or
column, and what to do, never a traceback from deep inside pandas.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from .errors import DataError
from .tasks import Task

_MAX_LISTED = 5


def _rows(index, path: Path | None = None) -> str:
    """The file lines where a few rows of a :func:`read_csv` frame of ``path`` start.

    Only computed for an error message: the file is parsed again, as blank lines and quoted
    line breaks shift rows from "index + 2" (+1 for the header, +1 for 1-based).
    """
    lines = [line for line, _ in _records(_decode(path.read_bytes(), path), path)[1:]] if path else None
    rows = [str(lines[int(i)] if lines else int(i) + 2) for i in list(index)[:_MAX_LISTED]]
    more = len(index) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")


def read_csv(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV as strings (empty cells → ``""``), checking encoding, shape and columns.

    Accepts a UTF-8 byte-order mark, CRLF (or mixed) line ends, blank lines and fields of any
    size. Every other defect is a :class:`DataError` naming the file, the line and the fix:
    non-UTF-8 bytes, NUL bytes, an unclosed quote, a row whose field count differs from the
    header's (pandas would silently pad it, or take its first field as an index), duplicate
    column names, no data rows, missing ``required`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the source folder or rerun the fetch stage")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error}); check its "
                        "permissions") from None
    text = _decode(data, path)
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected a header row and data rows")
    records = _records(text, path)
    if not records:  # e.g. a lone empty quoted field: blank lines only
        raise DataError(f"{path}: file holds only blank lines; expected a header row and data rows")
    (header_line, header), rows = records[0], records[1:]
    columns = [c.strip().strip("\ufeff").strip() or f"Unnamed: {i}" for i, c in enumerate(header)]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataError(f"{path}, line {header_line}: duplicate column name(s) {duplicated} in the "
                        f"header {columns}; rename or remove the extra column(s)")
    if not rows:
        raise DataError(f"{path}: no data rows, only a header; expected at least one row")
    ragged = [(line, len(fields)) for line, fields in rows if len(fields) != len(columns)]
    if ragged:
        listed = ", ".join(f"{line} ({n} fields)" for line, n in ragged[:_MAX_LISTED])
        more = f" and {len(ragged) - _MAX_LISTED} more" if len(ragged) > _MAX_LISTED else ""
        raise DataError(f"{path}, line {ragged[0][0]}: not a well-formed CSV: the header has "
                        f"{len(columns)} fields but line(s) {listed}{more} do not; check the commas "
                        "on those lines (a field holding commas, quotes or line breaks must be in "
                        'double quotes, with "" for a quote inside)')
    frame = pd.DataFrame([fields for _, fields in rows], columns=columns, dtype=str)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hint = ""
        if len(columns) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = " The header is not separated by commas: save the file comma-separated."
        raise DataError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}. "
                        f"Fix the file or the column names in params.yaml (competition.id/text/label).{hint}")
    return frame


def _line_at(text: str, pos: int) -> int:
    """1-based line number of ``text[pos]`` (``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line)."""
    head = text[:pos]
    return head.count("\n") + head.count("\r") - head.count("\r\n") + 1


def _decode(data: bytes, path: Path) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: the file is UTF-16 encoded; re-save it as UTF-8 (e.g. "
                        f"`iconv -f utf-16 -t utf-8 {path.name} > fixed.csv`)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        valid = data[:error.start].decode("utf-8-sig")
        line = _line_at(valid, len(valid))
        raise DataError(
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not valid UTF-8; re-save the "
            f"file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`)") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(f"{path}, line {_line_at(text, nul)}: NUL byte in a text file (binary data, "
                        "UTF-16 or a corrupted download?); re-save it as UTF-8 text or fetch it again")
    return text


def _records(text: str, path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank records of ``text`` with the file line each starts on (strict quoting)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # one huge field is fine: prepare cuts it to text.max_chars
    records, start = [], 1
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for fields in reader:
            if len(fields) > 1 or (fields and fields[0].strip()):  # skip blank lines
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as error:
        reason = ("a quoted field starting in this record is never closed"
                  if "end of data" in str(error) else str(error))
        raise DataError(f"{path}, line {start}: not a well-formed CSV ({reason}); check the quoting "
                        'of that record: a quoted field must end with a quote followed by a comma or '
                        'the end of the line, with "" for a quote inside') from None
    finally:
        csv.field_size_limit(limit)
    return records


def check_ids(frame: pd.DataFrame, id_col: str, path: Path) -> None:
    """Ids must be present and unique."""
    ids = frame[id_col].str.strip()
    empty = frame.index[ids == ""]
    if len(empty):
        raise DataError(f"{path}: column {id_col!r} is empty on row(s) {_rows(empty, path)}; "
                        "every row needs an id")
    dup = frame.index[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(f"{path}: duplicate ids in column {id_col!r} on row(s) {_rows(dup, path)} "
                        f"(e.g. {ids[dup[0]]!r}); ids must be unique")


def check_labels(frame: pd.DataFrame, task: Task, path: Path, classes: tuple[str, ...] | None) -> None:
    """Labels must be present and, when ``classes`` is given, one of them."""
    labels = frame[task.label_col].str.strip()
    bad = frame.index[labels == ""] if classes is None else frame.index[~labels.isin(classes)]
    if len(bad):
        allowed = "non-empty" if classes is None else f"one of {list(classes)}"
        raise DataError(f"{path}: column {task.label_col!r} must be {allowed}; "
                        f"row(s) {_rows(bad, path)} hold {sorted(set(labels[bad]))[:_MAX_LISTED]}. "
                        "Fix or drop those rows")


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
        raise DataError(f"{test_path}: id(s) also in train.csv on row(s) {_rows(overlap, test_path)} "
                        f"(e.g. {test[task.id_col][overlap[0]]!r}); train and test ids must not overlap")
    check_labels(train, task, train_path, task.classes)
    observed = tuple(sorted(set(train[task.label_col].str.strip())))
    if len(observed) < 2:
        raise DataError(f"{train_path}: column {task.label_col!r} has a single class {observed}; need two or more")
    classes = task.classes or observed
    if task.has_test_labels:
        check_labels(test, task, test_path, classes)
    return train, test, classes

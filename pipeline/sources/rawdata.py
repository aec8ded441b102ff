"""Reading and validating raw CSV files.

Every failure is a :class:`~pipeline.core.errors.DataError` that names the file, the row or
column, and what to do, never a traceback from deep inside pandas.
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import DataError
from ..core.tasks import Task

if TYPE_CHECKING:
    import pandas as pd

_MAX_LISTED = 5


# Binary formats a user may have saved under a .csv name: (magic bytes, what, how to fix).
_MAGIC = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it: `gunzip -c {name} > fixed.csv`"),
    (
        b"PK\x03\x04",
        "a zip archive (or an Excel .xlsx workbook)",
        "unzip it (`unzip {name}`), or save the workbook as 'CSV UTF-8' in Excel",
    ),
    (b"BZh", "a bzip2-compressed file", "decompress it: `bunzip2 -c {name} > fixed.csv`"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it: `unxz -c {name} > fixed.csv`"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel .xls workbook", "save it as 'CSV UTF-8' in Excel"),
)
_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _rows(index, path: Path | None = None) -> str:
    """The file lines where a few rows of a :func:`read_csv` frame of ``path`` start.

    Only computed for an error message: the file is parsed again, as blank lines and quoted
    line breaks shift rows from "index + 2" (+1 for the header, +1 for 1-based).
    """
    lines = [line for line, _ in _scan(path)[2]] if path else None
    rows = [str(lines[int(i)] if lines else int(i) + 2) for i in list(index)[:_MAX_LISTED]]
    more = len(index) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")


def read_csv(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV as strings (empty cells → ``""``), checking encoding, shape and columns.

    Accepts a UTF-8 byte-order mark, CRLF (or mixed) line ends, blank lines and fields of any
    size. Every other defect is a :class:`DataError` naming the file, the line and the fix:
    non-UTF-8 bytes, NUL bytes, a compressed or binary file, a file separated by semicolons or
    tabs, an unclosed quote, a row whose field count differs from the header's (pandas would
    silently pad it, or take its first field as an index), duplicate column names, no data
    rows, missing ``required`` columns. The file is streamed, never held whole in memory.
    """
    path = Path(path)
    columns, header, rows = _scan(path)
    import pandas as pd  # on use: importing pipeline.sources (the fingerprint stage) stays light

    frame = pd.DataFrame([fields for _, fields in rows], columns=columns, dtype=str)
    del rows
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)}. "
            f"Fix the file or the column names in params.yaml (competition.id/text/label)."
        )
    return frame


def count_rows(path: str | Path) -> int:
    """Data rows of the CSV ``path``, with every check of :func:`read_csv` but no table built."""
    return _scan(Path(path), keep=False)[2]


def read_column(path: str | Path, column: str | int) -> tuple[str, list[tuple[int, str]]]:
    """``(name, [(file line, stripped value), ...])`` of one column of the CSV ``path``
    (a name, or a position), streamed: the other columns are never kept."""
    path = Path(path)
    _, header, records = _header_and_records(path)
    columns = [c.strip().strip("\ufeff").strip() for c in header]
    if isinstance(column, int):
        position = column
    elif column in columns:
        position = columns.index(column)
    else:
        raise DataError(
            f"{path}: missing column {column!r}; found {columns}. Fix the file or the "
            "column names in params.yaml (competition.id/text/label)."
        )
    values = [(line, fields[position].strip()) for line, fields in records if len(fields) > position]
    return columns[position], values


def _scan(path: Path, keep: bool = True):
    """``(columns, header fields, rows)`` of the CSV ``path``, checked; ``rows`` is a list of
    (file line, fields) when ``keep``, else their count."""
    header_line, header, records = _header_and_records(path)
    columns = [c.strip().strip("\ufeff").strip() or f"Unnamed: {i}" for i, c in enumerate(header)]
    if len(header) == 1:
        found = [name for sep, name in _SEPARATORS.items() if sep in header[0]]
        if found:
            raise DataError(
                f"{path}, line {header_line}: the header {header[0][:80]!r} is separated "
                f"by {found[0]}, not commas; save the file comma-separated (a CSV)"
            )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataError(
            f"{path}, line {header_line}: duplicate column name(s) {duplicated} in the "
            f"header {columns}; rename or remove the extra column(s)"
        )
    rows: list[tuple[int, list[str]]] = []
    count = 0
    ragged = []
    for line, fields in records:
        if len(fields) != len(columns):
            ragged.append((line, len(fields)))
        else:
            count += 1
            if keep:
                rows.append((line, fields))
    if ragged:
        listed = ", ".join(f"{line} ({n} fields)" for line, n in ragged[:_MAX_LISTED])
        more = f" and {len(ragged) - _MAX_LISTED} more" if len(ragged) > _MAX_LISTED else ""
        raise DataError(
            f"{path}, line {ragged[0][0]}: not a well-formed CSV: the header has "
            f"{len(columns)} fields but line(s) {listed}{more} do not; check the commas "
            "on those lines (a field holding commas, quotes or line breaks must be in "
            'double quotes, with "" for a quote inside)'
        )
    if not count:
        raise DataError(f"{path}: no data rows, only a header; expected at least one row")
    return columns, header, rows if keep else count


def _header_and_records(path: Path) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]]:
    """The header's line and fields, and an iterator over the data records that follow."""
    _check_file(path)
    records = _records(path)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise _no_records(path) from None
    return header_line, header, records


def _check_file(path: Path) -> None:
    """A regular, readable file that is not UTF-16, compressed or binary."""
    if not path.is_file():
        kind = describe_non_file(path)
        raise DataError(
            f"{path}: {kind or 'file not found'}; check the source folder or rerun the fetch stage"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise DataError(
            f"{path}: cannot read the file ({error.strerror or error}); check its permissions"
        ) from None
    for magic, what, fix in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{path}: this is {what}, not CSV text; {fix.format(name=path.name)}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path}: the file is UTF-16 encoded; re-save it as UTF-8 (e.g. "
            f"`iconv -f utf-16 -t utf-8 {path.name} > fixed.csv`)"
        )


def describe_non_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (a dangling symlink, a folder, ...)."""
    import stat

    if path.is_symlink():
        try:
            path.stat()
        except OSError as error:
            if error.errno == errno.ELOOP:
                return f"a symbolic link that loops ({os.readlink(path)!r}); point it at a file"
            return (
                f"a symbolic link to {os.readlink(path)!r}, which does not exist; point it at the real file"
            )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a file; save the data to a regular file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a device or socket)"
    return None


def _no_records(path: Path) -> DataError:
    with open(path, "rb") as handle:
        blank = not handle.read(1 << 16).decode("utf-8-sig", errors="replace").strip()
    if blank and path.stat().st_size <= 1 << 16:
        return DataError(f"{path}: file is empty; expected a header row and data rows")
    return DataError(f"{path}: file holds only blank lines; expected a header row and data rows")


def _line_at(text: str, pos: int) -> int:
    """1-based line number of ``text[pos]`` (``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line)."""
    head = text[:pos]
    return head.count("\n") + head.count("\r") - head.count("\r\n") + 1


def _decode(data: bytes, path: Path) -> str:
    """Only on the error path: the whole file decoded, or the DataError naming the bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        valid = data[: error.start].decode("utf-8-sig")
        line = _line_at(valid, len(valid))
        raise DataError(
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not valid UTF-8; re-save the "
            f"file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(
            f"{path}, line {_line_at(text, nul)}: NUL byte in a text file (binary data, "
            "UTF-16 or a corrupted download?); re-save it as UTF-8 text or fetch it again"
        )
    return text


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records of ``path`` with the file line each starts on (strict quoting),
    streamed from the file."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # one huge field is fine: prepare cuts it to text.max_chars
    start = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            for fields in reader:
                if any("\x00" in field for field in fields):
                    _decode(path.read_bytes(), path)  # raises the DataError naming the line
                if len(fields) > 1 or (fields and fields[0].strip()):  # skip blank lines
                    yield start, fields
                start = reader.line_num + 1
    except UnicodeDecodeError:
        _decode(path.read_bytes(), path)  # raises the DataError naming the line
        raise
    except csv.Error as error:
        if "NUL" in str(error):
            _decode(path.read_bytes(), path)
        reason = (
            "a quoted field starting in this record is never closed"
            if "end of data" in str(error)
            else str(error)
        )
        raise DataError(
            f"{path}, line {start}: not a well-formed CSV ({reason}); check the quoting "
            "of that record: a quoted field must end with a quote followed by a comma or "
            'the end of the line, with "" for a quote inside'
        ) from None
    finally:
        csv.field_size_limit(limit)


def check_ids(frame: pd.DataFrame, id_col: str, path: Path) -> None:
    """Ids must be present and unique."""
    ids = frame[id_col].str.strip()
    empty = frame.index[ids == ""]
    if len(empty):
        raise DataError(
            f"{path}: column {id_col!r} is empty on row(s) {_rows(empty, path)}; every row needs an id"
        )
    dup = frame.index[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(
            f"{path}: duplicate ids in column {id_col!r} on row(s) {_rows(dup, path)} "
            f"(e.g. {ids[dup[0]]!r}); ids must be unique"
        )


def check_labels(frame: pd.DataFrame, task: Task, path: Path, classes: tuple[str, ...] | None) -> None:
    """Labels must be present and, when ``classes`` is given, one of them."""
    labels = frame[task.label_col].str.strip()
    bad = frame.index[labels == ""] if classes is None else frame.index[~labels.isin(classes)]
    if len(bad):
        allowed = "non-empty" if classes is None else f"one of {list(classes)}"
        raise DataError(
            f"{path}: column {task.label_col!r} must be {allowed}; "
            f"row(s) {_rows(bad, path)} hold {sorted(set(labels[bad]))[:_MAX_LISTED]}. "
            "Fix or drop those rows"
        )


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
        raise DataError(
            f"{test_path}: id(s) also in train.csv on row(s) {_rows(overlap, test_path)} "
            f"(e.g. {test[task.id_col][overlap[0]]!r}); train and test ids must not overlap"
        )
    check_labels(train, task, train_path, task.classes)
    counts = train[task.label_col].str.strip().value_counts()
    observed = tuple(sorted(counts.index))
    if len(observed) < 2:
        raise DataError(
            f"{train_path}: column {task.label_col!r} has a single class {observed}; need two or more"
        )
    if (counts >= 2).sum() < 2:  # the fold holding a lone row would train on one class only
        lone = sorted(counts.index[counts < 2])
        rows = train.index[train[task.label_col].str.strip().isin(lone)]
        raise DataError(
            f"{train_path}: class(es) {lone} have a single row (row(s) "
            f"{_rows(rows, train_path)}), so one cross-validation fold would train on "
            "one class only; add rows of that class or drop them"
        )
    classes = task.classes or observed
    if task.has_test_labels:
        check_labels(test, task, test_path, classes)
    return train, test, classes

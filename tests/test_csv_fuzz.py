"""Fuzzing the raw CSV loader (``pipeline.sources.rawdata``): every malformed file is a ``DataError``
naming the file (and the line where it applies) and saying what to do -- never a pandas,
``csv`` or ``UnicodeDecodeError`` traceback -- and well-formed files, however odd their
content, read back exactly.

Cases already in tests/test_prepare.py (missing file or column, a latin-1 byte, empty and
BOM-only files, header-only train, an extra field late in the file, CRLF + BOM, a huge row
cut to text.max_chars) and tests/test_cli.py are not repeated here.
"""

from __future__ import annotations

import contextlib
import csv
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from pipeline.__main__ import main
from pipeline.core.errors import DataError
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task
from pipeline.sources.rawdata import load_task_csvs, read_csv

REQUIRED = ("id", "title", "author", "text", "label")
HEADER = b"id,title,author,text,label\n"
ROWS = b"1,T one,Ann,Body one,0\n2,T two,Bob,Body two,1\n"
TEST_CSV = b"id,title,author,text\n101,T,A,Body\n102,T,,Body\n"

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def write(folder: Path, data: bytes, name: str = "train.csv") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def assert_data_error(path: Path, *patterns: str, required=REQUIRED) -> str:
    """read_csv raises a DataError that names ``path`` and matches every pattern."""
    with pytest.raises(DataError) as info:
        read_csv(path, required)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


# ------------------------------------------------------------ malformed files, one by one

# (name, bytes, patterns the message must match: the line, the defect, the fix)
MALFORMED = [
    (
        "NUL byte in a field",
        HEADER + b"1,T,Ann,Bo\x00dy,0\n2,T,Bob,Body,1\n",
        [r", line 2:", "NUL byte", "re-save it as UTF-8"],
    ),
    ("NUL byte in the header", b"id,ti\x00tle,author,text,label\n" + ROWS, [r", line 1:", "NUL byte"]),
    (
        "UTF-16 with a byte-order mark",
        (HEADER + ROWS).decode().encode("utf-16"),
        ["UTF-16", r"iconv -f utf-16 -t utf-8 train\.csv"],
    ),
    (
        "UTF-16 without a byte-order mark",
        (HEADER + ROWS).decode().encode("utf-16-le"),
        [r", line 1:", "NUL byte", "UTF-16"],
    ),
    (
        "Windows-1252 quotes in the header",
        b"id,\x93title\x94,author,text,label\n" + ROWS,
        [r", line 1:", "0x93", "not valid UTF-8", "iconv"],
    ),
    (
        "download cut inside a UTF-8 character",
        HEADER + ROWS + b"3,Caf\xc3",
        [r", line 4:", "0xc3", "re-save the file as UTF-8"],
    ),
    (
        "a gzip file named .csv",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(200)),
        ["this is a gzip-compressed file, not CSV text", r"gunzip -c train\.csv"],
    ),
    (
        "a zip file named .csv",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"train.csv",
        ["this is a zip archive", "unzip train.csv", "CSV UTF-8"],
    ),
    (
        "unclosed quote swallowing the rest of the file",
        HEADER + b'1,"T one,Ann,Body,0\n2,T,Bob,Body,1\n',
        [r", line 2:", "never closed", "quoting"],
    ),
    ("unclosed quote in the header", b'id,"title,author,text,label\n' + ROWS, [r", line 1:", "never closed"]),
    (
        "text after a closing quote",
        HEADER + b'1,"T one" extra,Ann,Body,0\n2,T,Bob,Body,1\n',
        [r", line 2:", "not a well-formed CSV", "quote followed by a comma"],
    ),
    (
        "row with too few fields",
        HEADER + ROWS + b"3,T three,Ann\n",
        [r", line 4:", r"header has 5 fields", r"4 \(3 fields\)", "check the commas"],
    ),
    # pandas took the first field of such a row as an index and shifted every column.
    (
        "extra field on the first data row",
        HEADER + b"1,T,Ann,Body,0,extra\n2,T,Bob,Body,1\n",
        [r", line 2:", r"2 \(6 fields\)"],
    ),
    (
        "trailing comma on every data row",
        HEADER + b"1,T,Ann,Body,0,\n2,T,Bob,Body,1,\n",
        [r", line 2:", r"line\(s\) 2 \(6 fields\), 3 \(6 fields\)"],
    ),
    (
        "ragged row after a quoted line break",
        HEADER + b'1,"T\none",Ann,Body,0\n2,T,Bob\n',
        [r", line 4:", r"4 \(3 fields\)"],
    ),
    (
        "many ragged rows",
        HEADER + b"".join(b"%d,T\n" % i for i in range(9)),
        [r", line 2:", r"6 \(2 fields\) and 4 more"],
    ),
    (
        "duplicate column names",
        b"id,title,author,text,text,label\n1,T,A,B,C,0\n",
        [r", line 1:", r"duplicate column name\(s\) \['text'\]", "rename or remove"],
    ),
    (
        "duplicate column names once stripped",
        b"id,title ,title,author,text,label\n1,T,T,A,B,0\n",
        [r"duplicate column name\(s\) \['title'\]"],
    ),
    (
        "semicolon-separated",
        b"id;title;author;text;label\n1;T;A;B;0\n",
        [r", line 1:", "separated by semicolons, not commas", "comma-separated"],
    ),
    # The commas inside the texts used to give advice about quoting instead.
    (
        "semicolon-separated, commas in the text",
        b"id;title;author;text;label\n1;T;A;B, c;0\n",
        ["separated by semicolons"],
    ),
    (
        "tab-separated",
        b"id\ttitle\tauthor\ttext\tlabel\n1\tT\tA\tB, c\t0\n",
        ["separated by tabs, not commas"],
    ),
    ("header only, no final line break", HEADER.rstrip(), ["no data rows", "at least one row"]),
    ("header followed by blank lines only", HEADER + b"\n\r\n\n", ["no data rows"]),
    ("whitespace only", b" \t\r\n  \n", ["file is empty"]),
    ("a lone empty quoted field", b'""\n\n', ["only blank lines", "expected a header row"]),
]


@pytest.mark.parametrize("name, data, patterns", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_file_is_a_data_error_naming_file_line_and_fix(tmp_path, name, data, patterns):
    assert_data_error(write(tmp_path, data), *patterns)


def test_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    # chmod 000 does not stop root (as in CI containers): make the read itself fail instead.
    path = write(tmp_path, HEADER + ROWS)

    real_open = open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    assert_data_error(path, "cannot read the file", "Permission denied", "check its permissions")


def test_folder_named_like_the_file_is_named_a_folder(tmp_path):
    (tmp_path / "train.csv").mkdir()
    assert_data_error(tmp_path / "train.csv", "a folder, not a file", "rerun the fetch stage")


# ------------------------------------------------------------ odd but well-formed files


def test_mixed_line_endings_read_as_separate_rows(tmp_path):
    data = b"id,title,author,text,label\r\n1,a,b,c,0\n2,a,b,c,1\r3,a,b,c,0\r\n"
    frame = read_csv(write(tmp_path, data), REQUIRED)
    assert frame["id"].tolist() == ["1", "2", "3"]
    assert frame["label"].tolist() == ["0", "1", "0"]


def test_blank_lines_are_skipped(tmp_path):
    frame = read_csv(write(tmp_path, HEADER + b"\n1,a,b,c,0\n\n   \n2,a,b,c,1\n\n"), REQUIRED)
    assert frame["id"].tolist() == ["1", "2"]


def test_quote_inside_an_unquoted_field_is_kept(tmp_path):
    frame = read_csv(write(tmp_path, HEADER + b'1,5" screen,b,c,0\n'), REQUIRED)
    assert frame["title"].iat[0] == '5" screen'


def test_huge_quoted_field_beyond_the_csv_module_limit(tmp_path):
    # Python's csv module stops at 128 KiB fields by default; a 3 MB article with commas and
    # line breaks must be read whole (prepare then cuts it), and the global limit restored.
    before = csv.field_size_limit()
    body = "word, more\n" * 300_000
    frame = read_csv(write(tmp_path, HEADER + b'1,T,A,"' + body.encode() + b'",0\n'), REQUIRED)
    assert frame["text"].iat[0] == body
    assert csv.field_size_limit() == before


def test_row_numbers_in_later_checks_are_file_lines(tmp_path, monkeypatch):
    # Blank lines and quoted line breaks shift rows: the duplicate id on file lines 2 and 7
    # must be reported there, not at "index + 2".
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "data/raw/competition"
    raw.mkdir(parents=True)
    write(raw, HEADER + b'7,"Multi\nline\ntitle",A,B,0\n\n2,T,A,B,1\n7,T,A,B,1\n')
    write(raw, TEST_CSV, "test.csv")
    with pytest.raises(DataError, match=r"duplicate ids .* row\(s\) 2, 7\b"):
        load_task_csvs(get_task("competition", parse_params({})))


@pytest.mark.parametrize(
    "data, line",
    [
        (HEADER + b"1,T,Ann,Bo\x00dy,0\n", 2),
        (HEADER + b"1,T,Ann\n", 2),
        (b"id,title,author,text,text,label\n1,T,A,B,C,0\n", 1),
    ],
    ids=["NUL byte", "ragged row", "duplicate column"],
)
def test_prepare_cli_exits_2_with_one_message(tmp_path, monkeypatch, capsys, data, line):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; restore afterwards
    (tmp_path / "params.yaml").write_text("cv: {folds: 2}\n")
    raw = tmp_path / "data/raw/competition"
    raw.mkdir(parents=True)
    write(raw, data)
    write(raw, TEST_CSV, "test.csv")
    (raw / "source.json").write_text('{"available": true, "task": "competition"}')
    assert main(["prepare", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^error: data/raw/competition/train\.csv, line {line}: ", err, re.M), err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert not (tmp_path / "data/prepared").exists()


# ------------------------------------------------------------------ property-based fuzzing


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def check_outcome(path: Path, required=()) -> pd.DataFrame | None:
    """read_csv either returns a rectangular frame of strings with unique column names, or
    raises a DataError that names the file; anything else fails the test."""
    try:
        frame = read_csv(path, required)
    except DataError as error:
        assert str(error).startswith(str(path)), str(error)
        return None
    assert len(frame) >= 1 and frame.columns.is_unique
    assert all(c in frame.columns for c in required)
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())
    return frame


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(fuzz_dir, data):
    check_outcome(write(fuzz_dir, data))


# Text made of what CSV parsing turns on: separators, quotes, line ends, NUL, BOM, spaces.
CSV_CHARS = st.sampled_from(list(',,,"""\n\n\r \t\x00\ufeffaé;') + ["id", "label", "\r\n"])
CSV_TEXT = st.lists(CSV_CHARS, max_size=120).map("".join)


@FUZZ
@given(header=st.sampled_from(["", "id,label\n", "id,label\r\n", "\ufeffid,label\n"]), body=CSV_TEXT)
@example(header="", body='""')  # blank lines only, once parsed: found by this test
def test_random_csv_like_text(fuzz_dir, header, body):
    frame = check_outcome(write(fuzz_dir, (header + body).encode("utf-8")))
    if frame is not None and header:
        assert list(frame.columns) == ["id", "label"]


GOOD_TRAIN = HEADER + b"".join(
    b'%d,"Title, %d",Author %d,"Body ""%d""\nmore",%d\n' % (i, i, i, i, i % 2) for i in range(1, 9)
)


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few random byte insertions, deletions or replacements, maybe truncated."""
    out = bytearray(data)
    noise = st.sampled_from(list(b',"\n\r\x00\xc3\xff ;') + [0xEF])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            out.insert(at, draw(noise))
        elif at < len(out):
            if action == "delete":
                del out[at]
            else:
                out[at] = draw(noise)
    if draw(st.booleans()):
        del out[draw(st.integers(0, len(out))) :]
    return bytes(out)


@FUZZ
@given(train=mutated(GOOD_TRAIN))
def test_mutated_train_csv_through_all_checks(fuzz_dir, train):
    # The whole validation of the prepare stage (columns, ids, labels, classes): a corrupted
    # train.csv passes or fails with a DataError naming it, nothing else.
    raw = fuzz_dir / "data/raw/competition"
    raw.mkdir(parents=True, exist_ok=True)
    write(raw, train)
    write(raw, TEST_CSV, "test.csv")
    with contextlib.chdir(fuzz_dir):
        try:
            load_task_csvs(get_task("competition", parse_params({})))
        except DataError as error:  # test.csv is named when a mutated train id hits a test id
            assert re.match(r"data/raw/competition/(train|test)\.csv\b", str(error)), str(error)


# Any text a UTF-8 file can hold, except NUL (rejected on purpose) and a lone carriage return:
# pandas (like Python's csv writer) leaves a cell holding only "\r" unquoted, so the file it
# writes is ambiguous -- pandas itself reads ",,\r0" back as two rows.
CELL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r"), max_size=30)


@FUZZ
@given(
    rows=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=6),
    line_end=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_any_frame_pandas_writes_reads_back_exactly(fuzz_dir, rows, line_end, bom):
    # No false alarms: quotes, commas, line breaks, unicode spaces and control characters in
    # cells written by pandas (as Kaggle's files are) come back unchanged.
    frame = pd.DataFrame(rows, columns=["id", "text", "label"], dtype=str)
    text = frame.to_csv(index=False, lineterminator=line_end)
    path = write(fuzz_dir, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    pd.testing.assert_frame_equal(read_csv(path, ("id", "text", "label")), frame)

"""Tests of the ``prepare`` stage: bad raw input is a DataError that names the file and the
row or column, and leaves no partial output; good input is cleaned, labelled and folded."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.core.outputs import load_prepared
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task
from pipeline.prepare import prepare

HEADER = b"id,title,author,text,label\n"
TEST_HEADER = b"id,title,author,text\n"
PREPARED = Path("data/prepared/competition")


def _rows(n: int = 12, start: int = 1) -> bytes:
    """``n`` train rows, labels alternating 0/1; file line of row i is i + 1."""
    return b"".join(
        b"%d,Title %d,Author %d,Body of article %d,%d\n" % (i, i, i % 3, i, i % 2)
        for i in range(start, start + n)
    )


GOOD_TRAIN = HEADER + _rows()
GOOD_TEST = TEST_HEADER + b"101,T one,A,Body one\n102,T two,,Body two\n103,T three,B,\n"
GOOD_SAMPLE = b"id,label\n101,0\n102,0\n103,0\n"


@pytest.fixture
def params():
    return parse_params({"cv": {"folds": 3}, "text": {"max_chars": 1000}})


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_raw(
    root: Path, task: str = "competition", files: dict[str, bytes] | None = None, **overrides: bytes | None
) -> Path:
    """Write data/raw/<task>/ with the given files (None = leave the file out) and source.json."""
    if files is None:
        files = {"train.csv": GOOD_TRAIN, "test.csv": GOOD_TEST, "sample_submission.csv": GOOD_SAMPLE}
    files = {**files, **{f"{name}.csv": data for name, data in overrides.items()}}
    folder = root / "data" / "raw" / task
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if data is not None:
            (folder / name).write_bytes(data)
    (folder / "source.json").write_text(json.dumps({"available": True, "task": task}))
    return folder


def run(params, task: str = "competition") -> dict:
    return prepare(get_task(task, params), params)


def assert_fails(params, *patterns: str, task: str = "competition") -> str:
    """prepare raises DataError whose message matches every pattern; nothing is written."""
    with pytest.raises(DataError) as info:
        run(params, task)
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert not Path("data/prepared").exists(), "a failed prepare left outputs behind"
    return message


# ------------------------------------------------------------------------ bad input


def test_missing_train_csv(project, params):
    write_raw(project, train=None)
    assert_fails(params, r"train\.csv", "not found")


def test_missing_test_csv(project, params):
    write_raw(project, test=None)
    assert_fails(params, r"test\.csv", "not found")


def test_missing_source_record(project, params):
    folder = write_raw(project)
    (folder / "source.json").unlink()
    assert_fails(params, r"source\.json", "fetch")


def test_missing_text_column_lists_found_columns(project, params):
    write_raw(project, train=b"id,title,author,body,label\n1,a,b,c,0\n2,a,b,c,1\n")
    assert_fails(
        params,
        r"train\.csv",
        r"missing column\(s\) \['text'\]",
        re.escape("['id', 'title', 'author', 'body', 'label']"),
    )


def test_missing_label_column(project, params):
    write_raw(project, train=TEST_HEADER + b"1,a,b,c\n")
    assert_fails(params, r"train\.csv", r"\['label'\]")


@pytest.mark.parametrize("bad", [b"2", b"fake", b"1.0", b""])
def test_bad_label_names_file_and_line(project, params, bad):
    lines = (HEADER + _rows(6)).splitlines(keepends=True)
    lines[3] = b"3,Title 3,Author 0,Body 3,%s\n" % bad  # file line 4
    write_raw(project, train=b"".join(lines))
    message = assert_fails(params, r"train\.csv", r"'label'", r"row\(s\) 4\b", r"\['0', '1'\]")
    assert repr(bad.decode()) in message


def test_duplicate_ids_name_rows(project, params):
    train = HEADER + _rows(4) + b"2,Again,A,Dup body,1\n" + _rows(3, start=10)
    write_raw(project, train=train)  # id 2 on lines 3 and 6
    assert_fails(params, r"train\.csv", "duplicate ids", r"row\(s\) 3, 6\b", "'2'")


def test_duplicate_ids_after_whitespace_strip(project, params):
    write_raw(project, train=HEADER + _rows(4) + b" 4 ,x,y,z,0\n")  # id 4 on lines 5 and 6
    assert_fails(params, r"train\.csv", "duplicate ids", r"row\(s\) 5, 6\b")


def test_empty_id_names_row(project, params):
    write_raw(project, test=TEST_HEADER + b"101,a,b,c\n,a,b,c\n")
    assert_fails(params, r"test\.csv", r"'id' is empty", r"row\(s\) 3\b")


def test_test_id_also_in_train(project, params):
    write_raw(project, test=TEST_HEADER + b"101,a,b,c\n5,a,b,c\n")
    assert_fails(params, r"test\.csv", "also in train", r"row\(s\) 3\b", "'5'")


def test_non_utf8_byte_names_line(project, params):
    lines = GOOD_TRAIN.splitlines(keepends=True)
    lines[4] = b"4,Caf\xe9 news,Author,Body,0\n"  # latin-1 "é" on file line 5
    write_raw(project, train=b"".join(lines))
    assert_fails(params, r"train\.csv, line 5\b", "0xe9", "UTF-8")


@pytest.mark.parametrize("name", ["train", "test"])
@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_empty_csv(project, params, name, content):
    write_raw(project, **{name: content})
    assert_fails(params, rf"{name}\.csv", "empty")


def test_header_only_train(project, params):
    # A train.csv with a header and no rows must be a DataError naming the file
    # (not a bare ValueError from make_folds, which the CLI shows as a traceback).
    write_raw(project, train=HEADER)
    assert_fails(params, r"train\.csv")


def test_single_class_competition_train(project, params):
    # Every label is "0": no model can be trained; prepare must say so, like it does for the
    # validation tasks (the competition's classes are fixed to 0/1, which hides this).
    rows = b"".join(b"%d,t,a,b,0\n" % i for i in range(1, 10))
    write_raw(project, train=HEADER + rows)
    assert_fails(params, r"train\.csv", "single class|one class|two or more")


def test_malformed_csv_names_file_and_line(project, params):
    write_raw(project, train=GOOD_TRAIN + b"99,a,b,c,1,extra\n")
    assert_fails(params, r"train\.csv", "not a well-formed CSV", r"line 14\b")


def test_unterminated_quote(project, params):
    write_raw(project, train=GOOD_TRAIN + b'99,"unclosed,b,c,1\n')
    assert_fails(params, r"train\.csv", "not a well-formed CSV")


def test_failed_run_leaves_previous_output_intact(project, params):
    write_raw(project)
    run(params)
    before = {p.name: p.read_bytes() for p in PREPARED.iterdir()}
    assert set(before) == {"train.parquet", "test.parquet", "meta.json", "diagnostics.json"}

    write_raw(project, train=HEADER + b"1,a,b,c,fake\n")
    with pytest.raises(DataError):
        run(params)
    assert {p.name: p.read_bytes() for p in PREPARED.iterdir()} == before
    assert [p.name for p in PREPARED.parent.iterdir()] == ["competition"]  # no temp folders


# -------------------------------------------------------------------- good input


def test_good_input_outputs(project, params):
    write_raw(project)
    meta = run(params)
    train, test, stored = load_prepared(get_task("competition", params))
    assert stored.dump() == meta.dump()
    assert list(train.columns) == ["id", "text", "label", "y", "fold", "group"]
    assert list(test.columns) == ["id", "text"]
    assert list(train["id"]) == [str(i) for i in range(1, 13)]
    assert list(test["id"]) == ["101", "102", "103"]
    assert meta.classes == ["0", "1"]
    assert (meta.n_train, meta.n_test) == (12, 3)
    assert meta.class_counts == {"0": 6, "1": 6}
    assert train["text"].iloc[0] == "xxtitle title 1 xxauthor author 1 xxtext body of article 1"
    assert test["text"].iloc[1] == "xxtitle t two xxauthor xxempty xxtext body two"


def test_y_and_label_consistent(project, params):
    write_raw(project)
    meta = run(params)
    train, _, _ = load_prepared(get_task("competition", params))
    assert train["y"].dtype == "int64"
    assert list(train["y"]) == [meta.classes.index(label) for label in train["label"]]
    assert list(train["label"]) == [str(i % 2) for i in range(1, 13)]


def test_fold_column_present_and_stratified(project, params):
    write_raw(project, train=HEADER + _rows(30))
    run(params)
    train, _, _ = load_prepared(get_task("competition", params))
    assert train["fold"].between(0, params.cv.folds - 1).all()
    assert set(train["fold"]) == set(range(params.cv.folds))
    for number, fold in train.groupby("fold"):  # 15/15 classes: each fold within a row of half
        assert abs((fold["y"] == 1).sum() - len(fold) / 2) <= 1, number


def test_folds_follow_the_seed(project):
    write_raw(project, train=HEADER + _rows(30))
    task_params = [parse_params({"cv": {"folds": 3}, "seed": seed}) for seed in (1, 1, 2)]
    folds = []
    for params in task_params:
        run(params)
        folds.append(list(load_prepared(get_task("competition", params))[0]["fold"]))
    assert folds[0] == folds[1] and folds[0] != folds[2]


def test_empty_text_rows_kept_and_counted(project, params, caplog):
    train = HEADER + _rows(6) + b"50,,,,1\n" + b'51,"","","",0\n'
    write_raw(project, train=train)
    with caplog.at_level(logging.WARNING):
        meta = run(params)
    train_df, _, _ = load_prepared(get_task("competition", params))
    assert meta.n_train == 8
    assert meta.empty_text == {"train": 2, "test": 0}
    empty = "xxtitle xxempty xxauthor xxempty xxtext xxempty"
    assert list(train_df["text"].iloc[-2:]) == [empty, empty]
    assert "no text" in caplog.text and "kept as empty strings" in caplog.text


def test_text_reduced_to_nothing_by_cleaning_counts_as_empty(project, params):
    write_raw(project, train=HEADER + _rows(6) + b"50,<br />,\x01,&nbsp; ,1\n")
    meta = run(params)
    assert meta.empty_text["train"] == 1


def test_empty_text_single_field_task_kept_as_empty_string(project, params, caplog):
    write_raw(
        project,
        task="reuters",
        files={
            "train.csv": b"id,text,label\na,first text,x\nb,,y\nc,third,x\nd,fourth,y\ne,  ,x\n",
            "test.csv": b"id,text,label\nt1,,x\nt2,some text,y\n",
        },
    )
    with caplog.at_level(logging.WARNING):
        meta = run(params, task="reuters")
    train, test, _ = load_prepared(get_task("reuters", params))
    assert list(train["text"]) == ["first text", "", "third", "fourth", ""]
    assert list(test["text"]) == ["", "some text"]
    assert meta.empty_text == {"train": 2, "test": 1}
    assert "no text" in caplog.text


def _prepare_bytes(root: Path, monkeypatch, params, train: bytes, test: bytes) -> tuple:
    root.mkdir()
    monkeypatch.chdir(root)
    write_raw(root, train=train, test=test)
    run(params)
    return load_prepared(get_task("competition", params))


def test_crlf_and_bom_parse_like_lf(tmp_path, monkeypatch, params):
    train = HEADER + _rows(6) + b'20,"Multi\nline title",A,"Body with\nnew lines",1\n'
    test = GOOD_TEST
    variants = {
        "lf": (train, test),
        "crlf": (train.replace(b"\n", b"\r\n"), test.replace(b"\n", b"\r\n")),
        "bom": (b"\xef\xbb\xbf" + train, b"\xef\xbb\xbf" + test),
        "bom_crlf": (
            b"\xef\xbb\xbf" + train.replace(b"\n", b"\r\n"),
            b"\xef\xbb\xbf" + test.replace(b"\n", b"\r\n"),
        ),
    }
    results = {
        name: _prepare_bytes(tmp_path / name, monkeypatch, params, *data) for name, data in variants.items()
    }
    reference_train, reference_test, reference_meta = results["lf"]
    assert reference_train["text"].iloc[-1] == (
        "xxtitle multi line title xxauthor a xxtext body with new lines"
    )
    for name, (train_df, test_df, meta) in results.items():
        pd.testing.assert_frame_equal(train_df, reference_train, obj=name)
        pd.testing.assert_frame_equal(test_df, reference_test, obj=name)
        assert meta == reference_meta, name


def test_huge_single_row_is_cut(project, params, caplog):
    huge = b"word " * 1_000_000  # a 5 MB text field
    write_raw(project, train=HEADER + _rows(6) + b"77,Big,Ann," + huge + b",1\n")
    with caplog.at_level(logging.WARNING):
        meta = run(params)
    train, _, _ = load_prepared(get_task("competition", params))
    big = train.loc[train["id"] == "77", "text"].iat[0]
    body = big.split(" xxtext ", 1)[1]
    assert len(body) <= params.text.max_chars
    assert body.startswith("word word")
    assert meta.n_train == 7
    assert "longer than text.max_chars" in caplog.text


def test_whitespace_around_ids_and_labels_stripped(project, params):
    write_raw(project, train=HEADER + _rows(4) + b" 9 ,t,a,b, 1 \n")
    run(params)
    train, _, _ = load_prepared(get_task("competition", params))
    assert train["id"].iloc[-1] == "9"
    assert train["label"].iloc[-1] == "1" and train["y"].iloc[-1] == 1


def test_cleaning_options_from_params(project):
    params = parse_params({"cv": {"folds": 2}, "text": {"lowercase": False, "urls": "drop"}})
    write_raw(
        project,
        train=HEADER + b"1,Hello http://x.y,A,B,0\n2,T,A,B,1\n4,T,A,B,0\n5,T,A,B,1\n",
        test=TEST_HEADER + b"3,a,b,c\n",
    )
    run(params)
    train, _, _ = load_prepared(get_task("competition", params))
    assert train["text"].iloc[0] == "xxtitle Hello xxauthor A xxtext B"


def test_unavailable_source_prepares_empty_outputs(project, params):
    folder = project / "data" / "raw" / "imdb"
    folder.mkdir(parents=True)
    (folder / "source.json").write_text(
        json.dumps({"available": False, "reason": "offline", "fix": "set local_dir", "task": "imdb"})
    )
    meta = prepare(get_task("imdb", params), params)
    assert meta.dump() == {"task": "imdb", "available": False, "reason": "offline", "fix": "set local_dir"}
    train, test, _ = load_prepared(get_task("imdb", params))
    assert len(train) == 0 and len(test) == 0


# ------------------------------------------------------- multi-class validation task

REUTERS_TRAIN = (
    b"id,text,label\n"
    + b"".join(b"tr%d,earnings rose %d percent,earn\n" % (i, i) for i in range(5))
    + b"".join(b"ta%d,company acquires firm %d,acq\n" % (i, i) for i in range(4))
    + b"tg1,wheat harvest,grain\n"
)  # a label that appears only once


def test_multiclass_task_prepares(project, params):
    test = b"id,text,label\nx1,profit up,earn\nx2,merger deal,acq\nx3,corn,grain\n"
    write_raw(project, task="reuters", files={"train.csv": REUTERS_TRAIN, "test.csv": test})
    meta = run(params, task="reuters")
    train, test_df, _ = load_prepared(get_task("reuters", params))
    assert meta.classes == ["acq", "earn", "grain"]
    assert meta.class_counts == {"acq": 4, "earn": 5, "grain": 1}
    assert list(train.columns) == ["id", "text", "label", "y", "fold", "group"]
    assert list(test_df.columns) == ["id", "text", "label", "y"]
    assert list(test_df["y"]) == [1, 0, 2]
    assert list(train["y"]) == [meta.classes.index(label) for label in train["label"]]
    assert train["fold"].between(0, 2).all()


def test_multiclass_test_label_unseen_in_train(project, params):
    test = b"id,text,label\nx1,profit up,earn\nx2,oil price,crude\n"
    write_raw(project, task="reuters", files={"train.csv": REUTERS_TRAIN, "test.csv": test})
    message = assert_fails(params, r"test\.csv", r"row\(s\) 3\b", "'crude'", task="reuters")
    assert "acq" in message  # the known classes are listed


def test_multiclass_test_without_label_column(project, params):
    write_raw(project, task="reuters", files={"train.csv": REUTERS_TRAIN, "test.csv": b"id,text\nx1,a\n"})
    assert_fails(params, r"test\.csv", r"\['label'\]", task="reuters")


def test_multiclass_single_class_train(project, params):
    write_raw(
        project,
        task="reuters",
        files={
            "train.csv": b"id,text,label\na,t,earn\nb,t,earn\nc,t,earn\n",
            "test.csv": b"id,text,label\nx,t,earn\n",
        },
    )
    assert_fails(params, r"train\.csv", "single class", task="reuters")

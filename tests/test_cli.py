"""Tests of the command line (``python -m pipeline <stage>``): user errors exit 2 with one
clear message and no traceback; fetch writes the raw layout and its source record."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli as cli

from pipeline.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
RAW = Path("data/raw/competition")
TINY = {  # a tiny valid competition folder, with CRLF and a BOM to check byte-for-byte copies
    "train.csv": b"\xef\xbb\xbfid,title,author,text,label\r\n1,A title,Ann,Some text,0\r\n"
    b'2,B title,,"Quoted, text",1\r\n3,C,Bob,More,0\r\n4,D,Eve,Even more,1\r\n',
    "test.csv": b"id,title,author,text\n10,X,Ann,caf\xc3\xa9\n11,Y,,\n",
    "sample_submission.csv": b"id,label\n10,0\n11,0\n",
}


def write_params(folder: Path, text: str = "") -> None:
    (folder / "params.yaml").write_text(text, encoding="utf-8")


def make_local_dir(folder: Path, files: dict[str, bytes] = TINY) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def local_params(local_dir: Path) -> str:
    return f"competition:\n  source: local\n  local_dir: {json.dumps(str(local_dir))}\n"


@pytest.mark.slow
def test_prepare_bad_input_exits_2_without_traceback(tmp_path):
    write_params(tmp_path, "cv:\n  folds: 2\n")
    raw = tmp_path / RAW
    raw.mkdir(parents=True)
    (raw / "train.csv").write_bytes(b"id,title,author,text,label\n1,a,b,c,0\n2,a,b,c,fake\n")
    (raw / "test.csv").write_bytes(TINY["test.csv"])
    (raw / "sample_submission.csv").write_bytes(TINY["sample_submission.csv"])
    (raw / "source.json").write_text(json.dumps({"available": True, "task": "competition"}))

    result = cli(tmp_path, "prepare", "--task", "competition")
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr
    assert "train.csv" in result.stderr and "row(s) 3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "prepared").exists()


@pytest.mark.slow
def test_fetch_local_missing_test_csv_exits_2(tmp_path):
    files = {k: v for k, v in TINY.items() if k != "test.csv"}
    local = make_local_dir(tmp_path / "kaggle_files", files)
    write_params(tmp_path, local_params(local))

    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr
    assert "missing test.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / RAW).exists()


@pytest.mark.slow
def test_fetch_sample_writes_files_and_source_record(tmp_path):
    write_params(tmp_path)
    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 0, result.stderr

    raw = tmp_path / RAW
    assert sorted(p.name for p in raw.iterdir()) == [
        "sample_submission.csv",
        "source.json",
        "test.csv",
        "train.csv",
    ]
    record = json.loads((raw / "source.json").read_text())
    assert record["available"] is True
    assert record["task"] == "competition" and record["source"] == "sample"
    assert set(record["files"]) == {"train.csv", "test.csv", "sample_submission.csv"}
    for name, info in record["files"].items():
        data = (raw / name).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert info["bytes"] == len(data), name
        assert info["rows"] == data.count(b"\n") - 1, name  # no multi-line fields in the sample
    assert record["files"]["train.csv"]["rows"] == 400
    assert record["files"]["test.csv"]["rows"] == 200


@pytest.mark.slow
def test_fetch_local_copies_byte_for_byte(tmp_path):
    local = make_local_dir(tmp_path / "kaggle_files")
    write_params(tmp_path, local_params(local))

    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 0, result.stderr
    raw = tmp_path / RAW
    for name, data in TINY.items():
        assert (raw / name).read_bytes() == data, name
    record = json.loads((raw / "source.json").read_text())
    assert record["source"] == "local" and record["available"] is True
    assert record["local_dir"] == str(local.resolve())
    assert record["files"]["train.csv"]["rows"] == 4
    assert record["files"]["test.csv"]["sha256"] == hashlib.sha256(TINY["test.csv"]).hexdigest()


@pytest.mark.slow
def test_fetch_validation_task_unavailable_does_not_fail(tmp_path):
    write_params(tmp_path, "validation:\n  imdb: {source: local, local_dir: no/such/folder}\n")
    result = cli(tmp_path, "fetch", "--task", "imdb")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "UNAVAILABLE" in result.stderr

    raw = tmp_path / "data" / "raw" / "imdb"
    assert [p.name for p in raw.iterdir()] == ["source.json"]
    record = json.loads((raw / "source.json").read_text())
    assert record["available"] is False
    assert record["task"] == "imdb"
    assert "no/such/folder" in record["reason"]
    assert "validation.imdb.local_dir" in record["fix"]


# In-process checks of further bad local folders (a subprocess per case would be slow).


@pytest.fixture
def in_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; restore afterwards
    return tmp_path


def test_fetch_local_dir_not_a_folder(in_project, capsys):
    write_params(in_project, local_params(in_project / "nowhere"))
    assert main(["fetch", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nowhere" in err and "local_dir" in err


def test_fetch_local_accepts_kaggle_submit_csv(in_project):
    files = {k: v for k, v in TINY.items() if k != "sample_submission.csv"}
    files["submit.csv"] = TINY["sample_submission.csv"]
    local = make_local_dir(in_project / "kaggle_files", files)
    write_params(in_project, local_params(local))
    assert main(["fetch", "--task", "competition"]) == 0
    assert (RAW / "sample_submission.csv").read_bytes() == TINY["sample_submission.csv"]


@pytest.mark.parametrize(
    "name, data",
    [
        ("train.csv", b""),  # empty file
        ("train.csv", b"id,title,author,text,label\n1\xe9,a,b,c,0\n"),  # latin-1 byte in an id
        ("test.csv", b'id,title,author,text\n10,"unclosed,b,c\n'),  # unterminated quote
    ],
)
def test_fetch_local_bad_file_is_a_clean_error(in_project, capsys, name, data):
    # fetch counts the rows of every copied CSV; a file pandas cannot read must give a
    # clear "error: <file> ..." and exit 2, not a pandas traceback.
    local = make_local_dir(in_project / "kaggle_files", {**TINY, name: data})
    write_params(in_project, local_params(local))
    assert main(["fetch", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and name in err
    assert not RAW.exists()


def test_bad_params_exit_2(in_project, capsys):
    write_params(in_project, "cv:\n  folds: 1\nbogus: 3\n")
    assert main(["fetch", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "cv.folds" in err and "bogus" in err


def test_missing_params_file_exit_2(in_project, capsys):
    assert main(["prepare", "--task", "competition"]) == 2
    assert "params.yaml not found" in capsys.readouterr().err


def test_unknown_task_is_a_usage_error(in_project):
    with pytest.raises(SystemExit) as info:
        main(["prepare", "--task", "mnist"])
    assert info.value.code == 2


def test_fetch_copy_is_atomic_on_rerun(in_project):
    # A failing second fetch keeps the first fetch's files.
    local = make_local_dir(in_project / "kaggle_files")
    write_params(in_project, local_params(local))
    assert main(["fetch", "--task", "competition"]) == 0
    before = {p.name: p.read_bytes() for p in RAW.iterdir()}
    (local / "test.csv").unlink()
    assert main(["fetch", "--task", "competition"]) == 2
    assert {p.name: p.read_bytes() for p in RAW.iterdir()} == before
    assert [p.name for p in RAW.parent.iterdir()] == ["competition"]  # no temp folders


# ------------------------------------------------------------ files that are not what they seem


def competition_with_odd_train(tmp_path: Path, make_odd) -> Path:
    """A local competition folder whose train.csv is replaced by ``make_odd(path)``."""
    local = make_local_dir(tmp_path / "local")
    (local / "train.csv").unlink()
    make_odd(local / "train.csv")
    write_params(tmp_path, f"competition: {{source: local, local_dir: {local}}}\n")
    return local


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_odd, needle",
    [
        (lambda p: p.symlink_to(p.parent / "gone.csv"), "a symbolic link to"),
        (lambda p: p.symlink_to(p), "a symbolic link that loops"),
        (lambda p: p.mkdir(), "a folder, not a file"),
        (lambda p: os.mkfifo(p), "a named pipe (FIFO)"),
    ],
    ids=["dangling symlink", "looping symlink", "folder", "fifo"],
)
def test_fetch_names_a_train_csv_that_is_not_a_file(tmp_path, make_odd, needle):
    local = competition_with_odd_train(tmp_path, make_odd)
    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 2, result.stderr
    assert f"error: {local / 'train.csv'}: {needle}" in result.stderr
    assert "submit.csv" not in result.stderr and "cannot write" not in result.stderr
    assert not (tmp_path / RAW).exists()


def test_an_os_error_reading_is_not_reported_as_a_write_failure(tmp_path, monkeypatch, capsys):
    import pipeline.fetch as fetch_module

    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "data/raw/x.csv")

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    monkeypatch.setattr(fetch_module, "fetch", missing)
    assert main(["fetch", "--task", "competition"]) == 2
    err = capsys.readouterr().err
    assert "cannot access data/raw/x.csv: No such file or directory; check that it exists" in err
    assert "cannot write" not in err


@pytest.mark.slow
def test_fetch_error_names_the_users_file_not_the_temporary_copy(tmp_path):
    local = make_local_dir(tmp_path / "local", {**TINY, "train.csv": TINY["train.csv"] + b"5,E\n"})
    write_params(tmp_path, f"competition: {{source: local, local_dir: {local}}}\n")
    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 2
    assert f"error: {local / 'train.csv'}, line 6: not a well-formed CSV" in result.stderr
    assert ".tmp" not in result.stderr


@pytest.mark.slow
def test_local_dir_with_a_tilde_is_expanded(tmp_path):
    home = tmp_path / "home"
    make_local_dir(home / "comp")
    write_params(tmp_path, "competition: {source: local, local_dir: ~/comp}\n")
    result = cli(tmp_path, "fetch", "--task", "competition", env={**os.environ, "HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / RAW / "train.csv").read_bytes() == TINY["train.csv"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "sample, needle",
    [
        (b"id,label\n10,0\n", "1 ids for 2 test rows; 1 test id(s) missing (e.g. ['11'])"),
        (b"id,label\n10,0\n11,0\n12,0\n", "1 not in test.csv e.g. '12' on line 4"),
        (b"id,label\n10,0\n10,0\n11,0\n", "duplicate id(s) in column 'id' on line(s) 3"),
    ],
    ids=["truncated", "unknown id", "duplicate"],
)
def test_fetch_checks_the_sample_submission_against_test(tmp_path, sample, needle):
    local = make_local_dir(tmp_path / "local", {**TINY, "sample_submission.csv": sample})
    write_params(tmp_path, f"competition: {{source: local, local_dir: {local}}}\n")
    result = cli(tmp_path, "fetch", "--task", "competition")
    assert result.returncode == 2, result.stderr
    assert f"error: {local / 'sample_submission.csv'}" in result.stderr
    assert needle in result.stderr
    assert not (tmp_path / RAW).exists()


@pytest.mark.slow
def test_train_with_an_unknown_model_names_the_known_ones(tmp_path):
    write_params(tmp_path)
    result = cli(tmp_path, "train", "--task", "competition", "--model", "nosuch")
    assert result.returncode == 2
    assert "error: --model 'nosuch' is not a model of the registry; choose one of [" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_temporary_folders_of_an_interrupted_stage_are_git_ignored(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=30)
    (tmp_path / ".gitignore").write_bytes((ROOT / ".gitignore").read_bytes())
    for path in (
        "data/raw/.competition.k2j4h1.tmp/competition/train.csv",
        "data/raw/.kaggle-download-x8d2.tmp/fake-news.zip",
        "submissions/.fake-news.q1w2.tmp/x.csv",
    ):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=tmp_path, timeout=30)
        assert result.returncode == 0, f"{path} is not git-ignored"


def test_fetch_counts_rows_without_building_a_table_or_reading_whole_files(tmp_path, monkeypatch):
    # One huge text field took ~13x the file's size in memory: the bytes, their text, a
    # StringIO copy and a DataFrame, only to count the rows (devtools.benchmark bigfield).
    import pandas as pd

    local = make_local_dir(tmp_path / "local")
    write_params(tmp_path, f"competition: {{source: local, local_dir: {local}}}\n")
    monkeypatch.chdir(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("fetch built a table or read a whole file")

    monkeypatch.setattr(pd, "DataFrame", forbidden)  # rawdata imports pandas on use
    monkeypatch.setattr(Path, "read_bytes", forbidden)
    assert main(["fetch", "--task", "competition"]) == 0
    record = json.loads((tmp_path / RAW / "source.json").read_text())
    assert record["files"]["train.csv"]["rows"] == 4


@pytest.mark.slow
def test_a_class_with_one_train_row_stops_prepare_with_a_clear_error(tmp_path):
    rows = b"".join(b"%d,T,A,Body %d,0\n" % (i, i) for i in range(20, 32)) + b"99,T,A,Lone,1\n"
    local = make_local_dir(tmp_path / "local", {**TINY, "train.csv": b"id,title,author,text,label\n" + rows})
    write_params(tmp_path, f"competition: {{source: local, local_dir: {local}}}\n")
    assert cli(tmp_path, "fetch", "--task", "competition").returncode == 0
    result = cli(tmp_path, "prepare", "--task", "competition")
    assert result.returncode == 2, result.stderr  # was: a warning here, then a traceback in train
    assert "class(es) ['1'] have a single row (row(s) 14)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_noise_is_off_unless_verbose(verbose, monkeypatch):
    import logging
    import warnings

    from pipeline.core.logs import _NOISY_LOGGERS, _QuietTensorFlowImport, configure_logging

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the import hook stays test-local
    for name in _NOISY_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_logging(verbose)
        warnings.warn_explicit("retracing", UserWarning, "layer.py", 1, module="keras.src.layer")
        warnings.warn_explicit("ours", UserWarning, "x.py", 1, module="pipeline.x")
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == ("0" if verbose else "3")
    assert logging.getLogger("tensorflow").level == (logging.NOTSET if verbose else logging.ERROR)
    assert [str(w.message) for w in caught] == (["retracing", "ours"] if verbose else ["ours"])
    hooked = [hook for hook in sys.meta_path if isinstance(hook, _QuietTensorFlowImport)]
    assert len(hooked) == (0 if verbose or "tensorflow" in sys.modules else 1)


def test_tensorflow_load_lines_are_dropped_and_the_rest_kept(capfd):
    from pipeline.core.logs import _drop_noise_on_fd2

    with _drop_noise_on_fd2():
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            b"I0000 00:00:1795997247.625718   16740 port.cc:153] oneDNN custom operations are on.\n"
            b"W0000 00:00:1795997247.625718   16740 foo.cc:9] a warning\n"
            b"E0000 00:00:1795997247.625718   16740 bar.cc:7] a real error\n",
        )
        os.write(2, b"ours\n")
    assert capfd.readouterr().err == "E0000 00:00:1795997247.625718   16740 bar.cc:7] a real error\nours\n"


@pytest.mark.slow
def test_stages_and_their_workers_print_no_tensorflow_noise(tmp_path):
    """tokenize (TensorFlow in the stage) and an LSTM trained in two worker processes, run as
    dvc runs them (no TF_CPP_MIN_LOG_LEVEL set): no oneDNN / absl line on stderr."""
    import yaml

    from tiny_data import TINY, merge, write_learnable

    write_learnable(tmp_path, n=32)
    raw = merge(
        TINY, {"neural": {"folds": 2, "processes": 2, "epochs": 1}, "tune": {"budget": {"n_trials": 0}}}
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    stderr = ""
    for argv in (["tokenize"], ["embed"], ["train", "--model", "lstm"]):
        result = cli(tmp_path, *argv, "--task", "competition", env=env)
        assert result.returncode == 0, result.stderr
        stderr += result.stderr
    assert "[pid " in stderr and "] epoch 1/1 " in stderr  # the folds trained in worker processes
    noise = [line for line in stderr.splitlines() if "oneDNN" in line or "absl" in line]
    assert not noise, "\n".join(noise)


@pytest.mark.parametrize("flag", ["--processes", "--workers"])
def test_tune_processes_flag_keeps_its_former_name(flag):
    from pipeline.__main__ import build_parser

    args = build_parser().parse_args(["tune", "--task", "competition", "--model", "gru", flag, "3"])
    assert args.processes == 3

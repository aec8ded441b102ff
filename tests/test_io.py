"""Atomic writes: an interrupted or killed writer never leaves a half-written output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from pipeline.core.io import atomic_path, read_json, write_json


def test_exception_keeps_previous_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("interrupted")
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_directory_output_replaced_whole(tmp_path):
    target = tmp_path / "outdir"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "never.txt"):
            pass
    assert not (tmp_path / "never.txt").exists()


@pytest.mark.slow
def test_killed_writer_leaves_old_output_and_rerun_cleans_up(tmp_path):
    target = tmp_path / "predictions.npz"
    target.write_bytes(b"old complete output")
    script = (
        "import os, signal, sys\n"
        "from pipeline.core.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    with open(tmp, 'wb') as handle:\n"
        "        handle.write(b'x' * 1_000_000)\n"
        "        handle.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write, no cleanup runs\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script, str(target)], env=env)
    assert result.returncode == -9
    assert target.read_bytes() == b"old complete output"
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the killed run's temp dir
    with atomic_path(target) as tmp:  # the rerun
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.npz"]

"""Killing a stage (SIGKILL, or Ctrl-C) mid-training or mid-write, then rerunning it.

A killed stage leaves none of its declared outputs half-written: they are absent, or the
previous run's files byte for byte, so a later ``dvc repro`` reruns the stage instead of taking
a torn file as good. The rerun completes and writes valid outputs (and removes the temporary
files the killed run left). Ctrl-C exits with status 130 and says "interrupted".

Mid-training kills are real: the RNN stage is signalled once it logs its second epoch.
Mid-write kills stall the stage at the exact moment through a small wrapper (the stage half
way through writing an ``.npz``, or with its outputs in a temporary folder not yet renamed);
the signal itself is real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli

from pipeline.core.outputs import load_predictions
from pipeline.core.params import parse_params
from pipeline.core.tasks import get_task
from tiny_data import TINY, merge, write_learnable

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # make test-fast skips these
PREDICTIONS = Path("data/predictions/competition")
PREPARED = Path("data/prepared/competition")

# Runs `python -m pipeline <argv>` with one function replaced by a stall: it touches the
# marker file, then sleeps until the test signals the process.
STALLED = r"""
import io, pathlib, sys, time
import numpy as np
import pipeline.core.outputs
from pipeline.__main__ import main

marker, where, argv = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]

def stall(*args, **kwargs):
    marker.touch()
    time.sleep(300)

if where == "mid_npz":  # half of the .npz bytes on disk, the rest never comes
    real_savez = np.savez
    def savez(handle, **arrays):
        data = io.BytesIO()
        real_savez(data, **arrays)
        handle.write(data.getvalue()[: len(data.getvalue()) // 2])
        handle.flush()
        stall()
    np.savez = savez
elif where == "before_rename":  # every file of data/prepared/<task> written, folder not renamed
    pipeline.core.outputs.write_json = stall  # at meta.json, inside the temporary folder
elif where == "between_outputs":  # train: <model>.npz replaced, <model>.json not yet written
    pipeline.core.outputs.write_json = stall
sys.exit(main(argv))
"""


# --------------------------------------------------------------------------- helpers


class Stage:
    """A stage running in a subprocess; its output lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path):
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        # A shell's background job (CI under nohup or `&`) inherits SIGINT ignored, and Python
        # then never raises KeyboardInterrupt: give the stage a terminal's default handler.
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self.readers = [
            threading.Thread(target=self._read, args=(stream, self.lines[name]), daemon=True)
            for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines["out"] + self.lines["err"])

    def wait_until(self, ready, what: str, timeout: float = 120) -> None:
        """Poll ``ready()``; fail if the process ends first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"the stage ended (status {self.proc.returncode}) before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout} s:\n{self.output}")
            time.sleep(0.05)

    def signal_and_wait(self, sig: int, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def stages():
    """Start stages with ``stages(args, cwd)``; any still running at the end is killed."""
    started: list[Stage] = []

    def start(args: list[str], cwd: Path) -> Stage:
        started.append(Stage(args, cwd))
        return started[-1]

    yield start
    for stage in started:
        stage.kill()


def run_stage(project: Path, *argv: str) -> subprocess.CompletedProcess:
    return run_cli(project, *argv, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def write_params(project: Path, **overrides) -> dict:
    params = merge(TINY, overrides)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def write_features(project: Path) -> None:
    """``data/features/competition`` in the layout the tokenize stage writes, built with numpy
    (keeps TensorFlow out of the test process): vocabulary word, good, bad = ids 2, 3, 4."""
    ids = {"word": 2, "good": 3, "bad": 4}
    features = project / "data/features/competition"
    features.mkdir(parents=True)
    arrays = {}
    for split in ("train", "test"):
        texts = pd.read_parquet(project / PREPARED / f"{split}.parquet")["text"]
        rows = [[ids.get(w, 1) for w in text.split()][-10:] for text in texts]
        arrays[f"{split}_values"] = np.concatenate(rows).astype(np.int32)
        arrays[f"{split}_lengths"] = np.array([len(r) for r in rows], np.int32)
    np.savez(features / "sequences.npz", **arrays)
    (features / "vocab.json").write_text(
        json.dumps(
            {
                "task": "competition",
                "available": True,
                "tokens": list(ids),
                "vocab_size": 5,
                "settings": TINY["tokenize"],
            }
        )
    )
    # The embed stage's record for `embed.method: none` (random embeddings).
    embeddings = project / "data/embeddings/competition"
    embeddings.mkdir(parents=True)
    (embeddings / "embed.json").write_text(
        json.dumps({"task": "competition", "method": "none", "available": False})
    )


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.exists() else []


def assert_valid_predictions(project: Path, model: str, params: dict, all_folds: bool) -> None:
    """The stage's record and arrays load and agree with the prepared data (cwd: ``project``)."""
    task = get_task("competition", parse_params(params))
    record, arrays = load_predictions(task, model)
    train = pd.read_parquet(PREPARED / "train.parquet")
    n_test = len(pd.read_parquet(PREPARED / "test.parquet"))
    assert record.available is True and 0.0 <= record.cv["accuracy"] <= 1.0
    assert arrays["oof"].shape == (len(train), 2) and arrays["test"].shape == (n_test, 2)
    scored = ~np.isnan(arrays["oof"][:, 0])
    assert record.n_scored == scored.sum() == (len(train) if all_folds else (train["fold"] == 0).sum())
    assert np.allclose(arrays["oof"][scored].sum(axis=1), 1.0)
    assert np.allclose(arrays["test"].sum(axis=1), 1.0)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty project folder as the working directory (task paths are relative)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def project(folder):
    """Prepared and tokenized tiny competition data."""
    write_learnable(folder)
    write_features(folder)
    return folder


# ------------------------------------------------------------------- mid-training (RNN)

# Enough epochs that the kill lands in the middle of training, not after it.
EPOCHS = 10
RNN = {"neural": {"epochs": EPOCHS, "patience": EPOCHS}}
# The trainer logs one line per finished epoch: "[train competition lstm fold 0 seed 1] epoch 2/10 ...".
EPOCH_2, LAST_EPOCH = f"] epoch 2/{EPOCHS} ", f"] epoch {EPOCHS}/{EPOCHS} "


def test_sigkill_mid_rnn_training_leaves_no_output_and_rerun_completes(project, stages):
    params = write_params(project, **RNN)
    stage = stages(["-m", "pipeline", "train", "--task", "competition", "--model", "lstm"], project)
    stage.wait_until(lambda: EPOCH_2 in stage.output, "second epoch")
    assert stage.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    assert LAST_EPOCH not in stage.output  # killed mid-training, not after it
    assert not (project / PREDICTIONS).exists() or not any((project / PREDICTIONS).iterdir())

    rerun = run_stage(project, "train", "--task", "competition", "--model", "lstm")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in (project / PREDICTIONS).iterdir()) == ["lstm.json", "lstm.npz"]
    assert_valid_predictions(project, "lstm", params, all_folds=False)


def test_ctrl_c_mid_rnn_training_exits_130_interrupted(project, stages):
    write_params(project, **RNN)
    stage = stages(["-m", "pipeline", "train", "--task", "competition", "--model", "lstm"], project)
    stage.wait_until(lambda: EPOCH_2 in stage.output, "second epoch")
    assert stage.signal_and_wait(signal.SIGINT) == 130, stage.output
    assert LAST_EPOCH not in stage.output
    err = "".join(stage.lines["err"])
    assert "interrupted" in err and "Traceback" not in err
    assert not (project / PREDICTIONS).exists() or not any((project / PREDICTIONS).iterdir())


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:  # a zombie (dead, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_stage_takes_its_fold_workers_with_it(project, stages, sig):
    """With ``neural.processes: 2`` the folds train in two worker processes; killing the
    stage (SIGKILL or Ctrl-C) stops them too: no orphan keeps training and writing."""
    write_params(project, neural={**RNN["neural"], "folds": 2, "processes": 2})
    stage = stages(["-m", "pipeline", "train", "--task", "competition", "--model", "lstm"], project)
    stage.wait_until(lambda: stage.output.count(EPOCH_2) >= 2, "second epoch in both workers")
    workers = _children(stage.proc.pid)
    assert len(workers) >= 2, workers
    assert stage.signal_and_wait(sig) in (-signal.SIGKILL, 130)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the stage"
    assert not (project / PREDICTIONS).exists() or not any((project / PREDICTIONS).iterdir())


# ----------------------------------------------------------------------- mid-write


def stalled(project: Path, where: str, *argv: str) -> tuple[list[str], Path]:
    marker = project / f"stalled-{where}"
    return ["-c", STALLED, str(marker), where, *argv], marker


def test_sigkill_mid_npz_write_keeps_previous_outputs_then_rerun_replaces_them(project, stages):
    params = write_params(project)
    first = run_stage(project, "train", "--task", "competition", "--model", "word_lr")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (project / PREDICTIONS).iterdir()}
    assert sorted(before) == ["word_lr.json", "word_lr.npz"]

    params = write_params(project, tfidf={"word": {"C": 0.01}})  # changed params: dvc would rerun
    args, marker = stalled(project, "mid_npz", "train", "--task", "competition", "--model", "word_lr")
    stage = stages(args, project)
    stage.wait_until(marker.exists, "half-written .npz")
    assert stage.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    # The torn .npz sits in a hidden temporary folder; the old arrays are intact and the old
    # record was removed first (an incomplete output: dvc reruns, readers fail loudly).
    assert {
        p.name: p.read_bytes() for p in (project / PREDICTIONS).iterdir() if not p.name.startswith(".")
    } == {"word_lr.npz": before["word_lr.npz"]}
    leftovers = temp_leftovers(project / PREDICTIONS)
    assert len(leftovers) == 1 and leftovers[0].startswith(".word_lr.npz.")

    rerun = run_stage(project, "train", "--task", "competition", "--model", "word_lr")
    assert rerun.returncode == 0, rerun.stderr
    assert temp_leftovers(project / PREDICTIONS) == []  # the rerun removed the killed run's files
    assert (project / PREDICTIONS / "word_lr.npz").read_bytes() != before["word_lr.npz"]
    assert_valid_predictions(project, "word_lr", params, all_folds=True)


def test_sigkill_before_a_folder_output_is_renamed_leaves_no_folder(folder, stages):
    # prepare writes data/prepared/<task>/ as a whole folder: killed with every file written
    # but the folder not yet renamed into place, nothing under the declared path exists.
    project = folder
    write_params(project)
    raw = project / "data/raw/competition"
    raw.mkdir(parents=True)
    (raw / "train.csv").write_text(
        "id,title,author,text,label\n" + "".join(f"{i},t{i},a,body {i % 2},{i % 2}\n" for i in range(12))
    )
    (raw / "test.csv").write_text("id,title,author,text\nx,t,a,body\n")
    (raw / "source.json").write_text('{"available": true, "task": "competition"}')

    args, marker = stalled(project, "before_rename", "prepare", "--task", "competition")
    stage = stages(args, project)
    stage.wait_until(marker.exists, "prepared files written")
    assert stage.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    assert not (project / PREPARED).exists()
    leftovers = temp_leftovers(project / PREPARED.parent)
    assert len(leftovers) == 1 and leftovers[0].startswith(".competition.")  # beside, not inside

    rerun = run_stage(project, "prepare", "--task", "competition")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in (project / PREPARED).iterdir()) == [
        "diagnostics.json",
        "meta.json",
        "test.parquet",
        "train.parquet",
    ]
    assert json.loads((project / PREPARED / "meta.json").read_text())["n_train"] == 12
    assert len(pd.read_parquet(project / PREPARED / "train.parquet")) == 12
    assert temp_leftovers(project / PREPARED.parent) == []


def test_ctrl_c_mid_write_exits_130_and_cleans_up(project, stages):
    write_params(project)
    args, marker = stalled(project, "mid_npz", "train", "--task", "competition", "--model", "word_lr")
    stage = stages(args, project)
    stage.wait_until(marker.exists, "half-written .npz")
    assert stage.signal_and_wait(signal.SIGINT) == 130, stage.output
    err = "".join(stage.lines["err"])
    assert "interrupted: outputs of this stage were not written" in err and "Traceback" not in err
    # Unlike SIGKILL, Ctrl-C runs the clean-up: no output, no temporary folder.
    assert not (project / PREDICTIONS).exists() or list((project / PREDICTIONS).iterdir()) == []


def test_sigkill_between_the_two_train_outputs_leaves_no_mismatched_pair(project, stages):
    write_params(project)
    first = run_stage(project, "train", "--task", "competition", "--model", "word_lr")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (project / PREDICTIONS).iterdir()}

    write_params(project, tfidf={"word": {"C": 0.01}})
    args, marker = stalled(project, "between_outputs", "train", "--task", "competition", "--model", "word_lr")
    stage = stages(args, project)
    stage.wait_until(marker.exists, "arrays saved, record not yet")
    assert stage.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    after = {p.name: p.read_bytes() for p in (project / PREDICTIONS).iterdir() if not p.name.startswith(".")}
    # Either both old files, or the record absent (an incomplete output dvc and readers notice).
    assert after == before or "word_lr.json" not in after

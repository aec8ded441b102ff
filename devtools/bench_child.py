"""Measuring children of the benchmarks: ``python <args>`` in its own process, with its
output in temporary files and its peak resident memory read with ``os.wait4``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout, or beside a parent folder (git worktrees, scratch clones)
SHARED_DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)


@dataclass
class Child:
    args: list[str]
    proc: subprocess.Popen
    out: IO[str]
    err: IO[str]


def start_child(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Child:
    """Start ``python <args>`` with this checkout first on PYTHONPATH (and ``env`` added to
    the environment). Its output goes to temporary files (a full pipe would stall the child
    while we wait for it)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    # stages run `python -m pipeline ...`: this interpreter's, whether or not its bin/ is on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=err, text=True)
    return Child(args, proc, out, err)


def finish(child: Child) -> tuple[str, float]:
    """Wait for ``child``; return its stdout and peak resident memory in GiB (exit on failure)."""
    _, status, usage = os.wait4(child.proc.pid, 0)
    child.out.seek(0)
    child.err.seek(0)
    out, err = child.out.read(), child.err.read()
    child.out.close()
    child.err.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`python {' '.join(child.args)}` failed:\n{err[-2000:]}")
    return out, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def child_result(child: Child) -> tuple[dict, float]:
    """The JSON object a measuring child printed last, and its peak memory in GiB."""
    out, peak = finish(child)
    return json.loads(out.strip().splitlines()[-1]), peak


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Run one measuring child (``python <args>`` printing a JSON line); ``(result, peak GiB)``."""
    return child_result(start_child(args, env=env))

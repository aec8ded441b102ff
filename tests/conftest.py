"""Shared fixtures: the repository root and the read-only shared data folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the repository, or beside a parent folder (git worktrees live deeper).
SHARED_DATA = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
                   ROOT.parent / "shared" / "data")
PROJECT_FILES = ("pipeline", "dvc.yaml", "params.yaml", ".dvcignore")


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found (shared datasets absent)")
    return SHARED_DATA


def make_project_copy(dest: Path) -> Path:
    """A fresh git + DVC project holding this repository's pipeline, params and dvc.yaml."""
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    env = project_env(dest)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest


def project_env(project: Path) -> dict[str, str]:
    """Environment for running ``dvc``/``python -m pipeline`` inside a project copy."""
    env = dict(os.environ)
    bin_dir = str(Path(shutil.which("dvc") or ROOT / ".venv/bin/dvc").parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", DVC_NO_ANALYTICS="1")
    return env


def run(cmd: list[str], project: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=project, env=project_env(project), capture_output=True,
                          text=True, timeout=timeout)

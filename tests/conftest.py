"""Shared fixtures: the repository root and the read-only shared data folder; one BLAS and
OpenMP thread for every test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# One BLAS/OpenMP thread in every test and every process a test starts (set before any test
# module loads numpy): on a busy 2-core machine their spinning threads make a tiny
# LogisticRegression fit 20x slower. An explicit setting in the environment wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the repository, or beside a parent folder (git worktrees live deeper).
SHARED_DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
PROJECT_FILES = ("pipeline", "dvc.yaml", "data/fingerprints/dvc.yaml", "params.yaml", ".dvcignore")


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found (shared datasets absent)")
    return SHARED_DATA


def make_project_copy(dest: Path) -> Path:
    """A fresh git + DVC project holding this repository's pipeline, params and dvc.yaml.

    The validation tasks are set to ``source: local`` with no folder, so a run in the copy
    records them unavailable instead of downloading IMDB and R52 (on a machine with internet
    the download would take the test's whole time budget).
    """
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    _validation_without_download(dest / "params.yaml")
    env = project_env(dest)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")  # custom plot templates
    return dest


def _validation_without_download(params_yaml: Path) -> None:
    """Rewrite ``validation.<task>: {source: ..., local_dir: ...}`` to a source that never downloads."""
    text = params_yaml.read_text()
    for task in ("imdb", "reuters"):
        text, found = re.subn(
            rf"^(\s+{task}:\s*)\{{source:\s*\w+,\s*local_dir:\s*\"[^\"]*\"\}}",
            r'\1{source: local, local_dir: ""}',
            text,
            flags=re.MULTILINE,
        )
        if found != 1:
            raise ValueError(
                f'{params_yaml}: expected one line `  {task}: {{source: ..., local_dir: ""}}` '
                f"under validation, found {found}; update tests/conftest.py to the new layout"
            )
    params_yaml.write_text(text)


def project_env(project: Path) -> dict[str, str]:
    """Environment for running ``dvc``/``python -m pipeline`` inside a project copy."""
    env = dict(os.environ)
    bin_dir = str(Path(shutil.which("dvc") or ROOT / ".venv/bin/dvc").parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
        DVC_NO_ANALYTICS="1",
    )
    return env


def run(
    cmd: list[str], project: Path, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=project,
        env={**project_env(project), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m pipeline <args>`` in ``cwd`` with this checkout's code; ``env`` replaces
    the environment (default: this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env={**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class KaggleApiStub:
    """Base of the test stand-ins for kaggle's ``KaggleApi``: fetch binds ``download_file``
    with its own retries and timeout, so it must exist, but only the client's own
    ``competition_download_files`` may call it."""

    def download_file(self, *args, **kwargs):
        raise AssertionError("only competition_download_files calls it")


def loaded_modules_after(project, stages: list[list[str]]) -> list[str]:
    """The top-level modules loaded after running ``python -m pipeline`` stages (each an argv)
    one after another in one fresh process in ``project``."""
    import json

    code = (
        "import json, sys\nfrom pipeline.__main__ import main\n"
        f"for argv in {stages!r}:\n    assert main(argv) == 0, argv\n"
        "print(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])

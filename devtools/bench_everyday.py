"""The everyday loop: ``dvc repro`` of the bundled sample in a fresh clone, then a no-op
``dvc repro`` (nothing changed), each timed; the wall time of every stage of the first.

    python -m devtools.benchmark everyday

The clone is of this repository's committed HEAD (uncommitted edits are not measured), in a
scratch folder, with no DVC cache: every stage runs. Its validation tasks are set to a source
that never downloads (``local`` without a folder), so they are recorded unavailable as they
are offline, and the run measures the sample alone wherever it runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .bench_child import ROOT

TARGETS = {"repro_seconds": 240, "noop_seconds": 3}
_RUNNING = re.compile(r"Running stage '(?:.*:)?([^']+)'")


def _env() -> dict[str, str]:
    """This interpreter's ``dvc`` and ``python`` first on PATH; the clone's code, not ours."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "DVC_NO_ANALYTICS": "1"}


def timed_run(cmd: list[str], cwd: Path) -> tuple[float, list[tuple[str, float]], str]:
    """Run ``cmd``; return its wall seconds, ``(stage, seconds)`` of each stage DVC ran (until
    the next stage started or the command ended), and its output. A failure exits."""
    started = time.perf_counter()
    stages: list[tuple[str, float]] = []
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            found = _RUNNING.search(line)
            if found:
                stages.append((found.group(1), time.perf_counter()))
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"`{' '.join(cmd)}` failed in {cwd}:\n{''.join(lines)[-3000:]}")
    ends = [at for _, at in stages[1:]] + [started + seconds]
    return seconds, [(name, end - at) for (name, at), end in zip(stages, ends)], "".join(lines)


def scratch_clone(source: Path, dest: Path) -> Path:
    """``git clone`` of ``source`` into ``dest``, its validation tasks set never to download."""
    subprocess.run(["git", "clone", "-q", str(source), str(dest)], check=True)
    params_path = dest / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    for task in params.get("validation", {}).get("tasks", []):
        params["validation"][task] = {"source": "local", "local_dir": ""}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def by_stage(stages: list[tuple[str, float]]) -> dict[str, dict[str, float]]:
    """Seconds per dvc.yaml stage, split into the competition and the other tasks."""
    table: dict[str, dict[str, float]] = {}
    for name, seconds in stages:
        stage, _, item = name.partition("@")
        column = "competition" if item.startswith("competition") or not item else "validation"
        row = table.setdefault(stage, {"competition": 0.0, "validation": 0.0, "runs": 0})
        row[column] += seconds
        row["runs"] += 1
    return table


def bench_everyday(workdir: Path, source: Path = ROOT) -> dict:
    """Time the sample ``dvc repro`` and the no-op after it in a clone of ``source``."""
    clone = scratch_clone(source, workdir / "clone")
    repro, stages, _ = timed_run(["dvc", "repro"], clone)
    noop, noop_stages, _ = timed_run(["dvc", "repro"], clone)
    table = by_stage(stages)
    print(f"{'stage':>20} {'runs':>4} {'competition s':>13} {'other tasks s':>13}")
    for stage, row in table.items():
        print(f"{stage:>20} {row['runs']:4.0f} {row['competition']:13.1f} {row['validation']:13.1f}")
    ok = repro <= TARGETS["repro_seconds"] and noop <= TARGETS["noop_seconds"]
    print(
        f"sample dvc repro: {repro:.1f} s (target <= {TARGETS['repro_seconds']}); no-op dvc repro: "
        f"{noop:.1f} s (target <= {TARGETS['noop_seconds']}), ran {[n for n, _ in noop_stages]} "
        f"{'OK' if ok else 'MISSED'}",
        flush=True,
    )
    return {
        "repro_seconds": round(repro, 1),
        "noop_seconds": round(noop, 2),
        "noop_ran": [name for name, _ in noop_stages],
        "stages": {k: {c: round(v, 1) for c, v in row.items()} for k, row in table.items()},
    }

"""Speed and memory benchmarks (targets live here, not in timed tests).

    python -m pipeline.benchmark tfidf   # each TF-IDF train stage on IMDB (25k long reviews)
    python -m pipeline.benchmark rnn     # seconds/epoch and peak memory of the default LSTM/GRU

Every measured command runs as the same ``python -m pipeline`` subprocess that ``dvc repro``
runs, in a scratch project; wall time and the child's peak resident memory are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "imdb"
TARGETS = {"tfidf_seconds": 180, "tfidf_peak_gib": 4.0, "tokenize_seconds": 30}


def _run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``python -m pipeline <args>``; return (seconds, peak RSS in GiB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stderr = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`python -m pipeline {' '.join(args)}` failed:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def _imdb_project(workdir: Path, extra: dict | None = None) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["validation"]["imdb"] = {"source": "local", "local_dir": str(IMDB)}
    for key, value in (extra or {}).items():
        params[key] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("fetch", "prepare"):
        seconds, peak = _run([stage, "--task", "imdb"], workdir)
        print(f"{stage:>10} imdb: {seconds:6.1f} s, peak {peak:.2f} GiB", flush=True)
    return workdir


def bench_tfidf(workdir: Path) -> dict:
    workdir.mkdir(parents=True)
    project = _imdb_project(workdir)
    models = yaml.safe_load((project / "params.yaml").read_text())["models"]["tfidf"]
    results = {}
    for model in models:
        seconds, peak = _run(["train", "--task", "imdb", "--model", model], project)
        record = json.loads((project / f"data/predictions/imdb/{model}.json").read_text())
        results[model] = {"seconds": round(seconds, 1), "peak_gib": round(peak, 2),
                          "cv_accuracy": record["cv"]["accuracy"]}
        ok = seconds < TARGETS["tfidf_seconds"] and peak < TARGETS["tfidf_peak_gib"]
        print(f"{model:>10} imdb 5-fold: {seconds:6.1f} s (target < {TARGETS['tfidf_seconds']}), "
              f"peak {peak:.2f} GiB (target < {TARGETS['tfidf_peak_gib']}), "
              f"CV accuracy {record['cv']['accuracy']:.4f} {'OK' if ok else 'MISSED'}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="*", default=["tfidf"], choices=["tfidf", "rnn"])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not IMDB.is_dir():
        print(f"benchmark needs the IMDB CSVs in {IMDB}", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if "tfidf" in args.what:
            results["tfidf"] = bench_tfidf(Path(tmp) / "tfidf")
        if "rnn" in args.what:
            from .models.rnn_benchmark import bench_rnn

            results["rnn"] = bench_rnn()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

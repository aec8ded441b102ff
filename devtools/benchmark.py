"""Speed and memory benchmarks (targets live here, not in timed tests).

    python -m devtools.benchmark tfidf   # each TF-IDF train stage on IMDB (25k long reviews)
    python -m devtools.benchmark rnn     # seconds/epoch and peak memory of the default LSTM/GRU,
                                         # and their ratio to a bare 2x64 LSTM timed alongside
    python -m devtools.benchmark transformer  # float32 vs bfloat16: encode rows/s, fine-tune s/step,
                                              # peak memory at tweet and article lengths (bench_transformer.py)
    python -m devtools.benchmark transformer_options  # bfloat16: batch, threads, jit_compile, oneDNN
    python -m devtools.benchmark transformer_bare  # ours next to the bare keras-hub backbone;
                                                   # fine-tune padded to 96 tokens vs length-bucketed
    python -m devtools.benchmark bigfield  # peak memory of fetch and prepare on a train.csv
                                           # holding one 200 MB text field, as a ratio to it
    python -m devtools.benchmark everyday  # sample `dvc repro` and the no-op after it, in a
                                           # fresh clone (bench_everyday.py)
    python -m devtools.benchmark scale --fraction 0.25  # each stage of the default dvc repro
                                           # on a fake-news-shaped competition (bench_scale.py)

Every measured command runs as the same ``python -m pipeline`` subprocess that ``dvc repro``
runs, in a scratch project; wall time and the child's peak resident memory are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .bench_child import ROOT, SHARED_DATA, child_result, finish, run_child, start_child

IMDB = SHARED_DATA / "imdb"
TARGETS = {"tfidf_seconds": 180, "tfidf_peak_gib": 4.0, "tokenize_seconds": 30}


def _run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``python -m pipeline <args>``; return (seconds, peak RSS in GiB)."""
    started = time.perf_counter()
    _, peak = finish(start_child(["-m", "pipeline", *args], cwd))
    return time.perf_counter() - started, peak


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
        results[model] = {
            "seconds": round(seconds, 1),
            "peak_gib": round(peak, 2),
            "cv_accuracy": record["cv"]["accuracy"],
        }
        ok = seconds < TARGETS["tfidf_seconds"] and peak < TARGETS["tfidf_peak_gib"]
        print(
            f"{model:>10} imdb 5-fold: {seconds:6.1f} s (target < {TARGETS['tfidf_seconds']}), "
            f"peak {peak:.2f} GiB (target < {TARGETS['tfidf_peak_gib']}), "
            f"CV accuracy {record['cv']['accuracy']:.4f} {'OK' if ok else 'MISSED'}",
            flush=True,
        )
    return results


def bench_bigfield(workdir: Path, megabytes: int = 200) -> dict:
    """Peak memory of ``fetch`` and ``prepare`` (local source) when train.csv holds one huge
    text field, as a multiple of the file's size."""
    local = workdir / "local"
    local.mkdir(parents=True)
    rows = b"".join(b"%d,Title %d,Author,Body of article %d,%d\n" % (i, i, i, i % 2) for i in range(20))
    with open(local / "train.csv", "wb") as out:
        out.write(b"id,title,author,text,label\n" + rows + b'99,Big,Author,"')
        for _ in range(megabytes):
            out.write(b"word " * (2**20 // 5) + b"w" * (2**20 % 5))
        out.write(b'",1\n')
    (local / "test.csv").write_bytes(b"id,title,author,text\n100,T,A,Body\n101,T,A,Body\n")
    (local / "sample_submission.csv").write_bytes(b"id,label\n100,0\n101,0\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["competition"].update(source="local", local_dir=str(local))
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    size_gib = (local / "train.csv").stat().st_size / 2**30
    results: dict[str, object] = {"train_csv_gib": round(size_gib, 3)}
    for stage in ("fetch", "prepare"):
        seconds, peak = _run([stage, "--task", "competition"], workdir)
        results[stage] = {
            "seconds": round(seconds, 1),
            "peak_gib": round(peak, 2),
            "peak_over_file": round(peak / size_gib, 1),
        }
        print(
            f"{stage:>10} one {megabytes} MB field: {seconds:6.1f} s, peak {peak:.2f} GiB "
            f"({peak / size_gib:.1f}x the file)",
            flush=True,
        )
    return results


def _reference_model(config):
    """The issue's reference: a bare 2x64 stacked LSTM (no dropout, pooling or dense head).

    Timed in the same run as the real models, so the ratio holds on a busy or slow machine.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(config.seq_len,), dtype="int32")
    x = layers.Embedding(config.vocab_size, config.embedding_dim)(inputs)
    x = layers.LSTM(64, return_sequences=True)(x)
    x = layers.LSTM(64)(x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _epoch_child(kind: str, rows: int, seq_len: int, threads: int = 0) -> None:
    """Child process: one warm-up epoch, then one timed epoch of the default model."""
    import numpy as np

    from pipeline.core.params import load_params
    from pipeline.models.keras_training import set_determinism
    from pipeline.models.rnn import build_model

    params = load_params(ROOT / "params.yaml")
    config = params.neural.defaults.model_copy(update={"seq_len": seq_len})
    set_determinism(params.seed, threads)
    rng = np.random.default_rng(params.seed)
    X = rng.integers(2, config.vocab_size, size=(rows, seq_len), dtype=np.int32)
    y = rng.integers(0, 2, size=rows)
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times: list[float] = []
    model = (
        _reference_model(config) if kind == "reference" else build_model(kind, config, 2, config.vocab_size)
    )
    # Two epochs: the first includes tracing and warm-up, the second is the steady state.
    model.fit(X, y, batch_size=config.batch_size, epochs=2, verbose=0, callbacks=[EpochTimer()])
    print(
        json.dumps({"seconds_per_epoch": times[-1], "first_epoch": times[0], "config": config.model_dump()})
    )


def _epoch_args(kind: str, rows: int, seq_len: int, threads: int = 0) -> list[str]:
    sizes = ["--rows", str(rows), "--seq-len", str(seq_len), "--threads", str(threads)]
    return ["-m", "devtools.benchmark", "--epoch-child", kind, *sizes]


def bench_rnn(rows: int = 20_000, seq_len: int = 300) -> dict:
    results, reference_seconds = {}, 0.0
    for kind in ("reference", "lstm", "gru"):
        out, peak = run_child(_epoch_args(kind, rows, seq_len))
        results[kind] = {
            "seconds_per_epoch": round(out["seconds_per_epoch"], 1),
            "first_epoch_seconds": round(out["first_epoch"], 1),
            "peak_gib": round(peak, 2),
            "rows": rows,
            "seq_len": seq_len,
        }
        c = out["config"]
        shape = (
            "bare 2x64 LSTM"
            if kind == "reference"
            else f"{c['layers']}x{c['units']} {'bi' if c['bidirectional'] else 'uni'}directional"
        )
        reference_seconds = reference_seconds or out["seconds_per_epoch"]
        ratio = out["seconds_per_epoch"] / reference_seconds
        results[kind]["ratio_to_reference"] = round(ratio, 2)
        print(
            f"{kind:>9}: {out['seconds_per_epoch']:6.1f} s/epoch ({ratio:.2f}x the reference; first epoch "
            f"{out['first_epoch']:.1f} s) on {rows}x{seq_len} ({shape}, batch {c['batch_size']}), "
            f"peak {peak:.2f} GiB",
            flush=True,
        )
    # What neural.processes relies on: two single-thread processes side by side against one
    # process using every core (the default LSTM row above).
    children = [start_child(_epoch_args("lstm", rows, seq_len, threads=1)) for _ in range(2)]
    parallel = max(child_result(child)[0]["seconds_per_epoch"] for child in children)
    speedup = 2 * results["lstm"]["seconds_per_epoch"] / parallel
    results["lstm_two_processes"] = {
        "seconds_per_epoch": round(parallel, 1),
        "threads_each": 1,
        "throughput_vs_one_process": round(speedup, 2),
    }
    print(
        f"lstm x 2 processes (1 thread each): {parallel:6.1f} s/epoch each, {speedup:.2f}x the "
        "epochs per hour of one process on all cores",
        flush=True,
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument(
        "what",
        nargs="*",
        help="tfidf, rnn, bigfield, transformer, transformer_options, transformer_bare, everyday, "
        "scale (default: tfidf)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--rows", type=int, help="rnn: sequences per epoch (default 20,000); scale: train rows"
    )
    parser.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="scale: share of Kaggle fake-news' 20,800 train / 5,200 test rows (default 1)",
    )
    parser.add_argument("--seq-len", type=int, default=300, help="rnn: tokens per sequence")
    parser.add_argument(
        "--upto", metavar="STAGE", help="scale: stop after this stage (e.g. prepare@competition)"
    )
    parser.add_argument("--epoch-child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epoch_child:
        _epoch_child(args.epoch_child, args.rows, args.seq_len, args.threads)
        return 0
    args.what = args.what or ["tfidf"]
    known = (
        "tfidf",
        "rnn",
        "bigfield",
        "transformer",
        "transformer_options",
        "transformer_bare",
        "everyday",
        "scale",
    )
    unknown = set(args.what) - set(known)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(known)}")
    if not 0 < args.fraction <= 1 or (args.rows is not None and args.rows < 10):
        parser.error("--fraction must be in (0, 1] and --rows at least 10")
    if {"tfidf", "scale"} & set(args.what) and not IMDB.is_dir():
        print(f"benchmark needs the IMDB CSVs in {IMDB}", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if "tfidf" in args.what:
            results["tfidf"] = bench_tfidf(Path(tmp) / "tfidf")
        if "rnn" in args.what:
            results["rnn"] = bench_rnn(args.rows or 20_000, args.seq_len)
        if "bigfield" in args.what:
            results["bigfield"] = bench_bigfield(Path(tmp) / "bigfield")
        if "transformer" in args.what:
            from .bench_transformer import bench_precision

            results["transformer"] = bench_precision()
        if "transformer_options" in args.what:
            from .bench_transformer import bench_options

            results["transformer_options"] = bench_options()
        if "transformer_bare" in args.what:
            from .bench_transformer import bench_transformer

            results["transformer_bare"] = bench_transformer()
        if "everyday" in args.what:
            from .bench_everyday import bench_everyday

            results["everyday"] = bench_everyday(Path(tmp) / "everyday")
        if "scale" in args.what:
            from .bench_scale import FULL, bench_scale

            n_train = args.rows or round(FULL[0] * args.fraction)
            n_test = round(n_train * FULL[1] / FULL[0])
            results["scale"] = bench_scale(Path(tmp) / "scale", n_train, n_test, upto=args.upto)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

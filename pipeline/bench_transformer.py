"""``python -m pipeline.benchmark transformer``: the pretrained encoder's speed and memory.

Each measurement runs in its own child process (its peak resident memory is its own):
encoding (our :class:`~pipeline.transformer.Encoder`: tokenizer, exact GELU, mean pooling)
and fine-tuning steps (:func:`~pipeline.models.transformer.build_classifier`), each next to
the bare keras-hub ``BertBackbone`` as loaded (no pooling, its own GELU) timed in the same run,
so the ratio holds on a busy machine. Inputs are seeded random word sequences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _texts(n: int, words: int, seed: int = 0) -> list[str]:
    from .transformer import resolve_checkpoint

    vocab = [
        w
        for w in (resolve_checkpoint("packaged").path / "vocab.txt").read_text().split()
        if w.isalpha() and len(w) > 2
    ]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocab, size=words)) for _ in range(n)]


def _ids(texts: list[str], max_tokens: int):
    from .transformer import Tokenizer, pad_batch, resolve_checkpoint

    tokenizer = Tokenizer(resolve_checkpoint("packaged"))
    return pad_batch(tokenizer.encode(texts, max_tokens), tokenizer.pad, max_tokens)


def _child(kind: str, rows: int, tokens: int, threads: int) -> dict:
    """One measurement; returns what it timed."""
    from .models.rnn import set_determinism
    from .transformer import Encoder, resolve_checkpoint

    set_determinism(0, threads)
    checkpoint = resolve_checkpoint("packaged")
    texts = _texts(rows, tokens)  # about 1.3 word pieces per word: every text reaches `tokens`
    if kind == "encode":
        encoder = Encoder(checkpoint)
        encoder.embed(texts[:32], tokens)  # warm-up: tracing
        started = time.perf_counter()
        encoder.embed(texts, tokens)
        return {"seconds": time.perf_counter() - started}
    import keras
    import keras_hub

    ids, mask = _ids(texts, tokens)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    if kind == "encode_bare":
        backbone = keras_hub.models.BertBackbone.from_preset(str(checkpoint.path))
        backbone.predict({k: v[:32] for k, v in inputs.items()}, batch_size=32, verbose=0)
        started = time.perf_counter()
        backbone.predict(inputs, batch_size=32, verbose=0)
        return {"seconds": time.perf_counter() - started}
    from .models.transformer import build_classifier
    from .params import FineTune

    config = FineTune(max_tokens=tokens, batch_size=32)
    if kind == "finetune":
        model = build_classifier(checkpoint, 2, config, steps=1000)
    else:  # finetune_bare: the backbone's pooled output, one sigmoid unit, plain Adam
        backbone = keras_hub.models.BertBackbone.from_preset(str(checkpoint.path))
        model = keras.Model(
            backbone.input, keras.layers.Dense(1, activation="sigmoid")(backbone.output["pooled_output"])
        )
        model.compile(optimizer=keras.optimizers.Adam(5e-5), loss="binary_crossentropy")
    y = np.arange(rows) % 2
    times: list[float] = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.started)

    model.fit(inputs, y, batch_size=config.batch_size, epochs=1, verbose=0, callbacks=[StepTimer()])
    return {"seconds_per_step": float(np.median(times[2:])), "steps": len(times)}


def _start(kind: str, rows: int, tokens: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.bench_transformer",
            kind,
            "--rows",
            str(rows),
            "--tokens",
            str(tokens),
            "--threads",
            str(threads),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen) -> tuple[dict, float]:
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"transformer benchmark child failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 2**20


def bench_transformer(
    rows: int = 512, tokens: int = 64, train_rows: int = 320, train_tokens: int = 96, threads: int = 0
) -> dict:
    """Encode sentences/s and fine-tune s/step with peak memory, ours against the bare backbone."""
    results = {}
    for kind in ("encode_bare", "encode"):
        out, peak = _result(_start(kind, rows, tokens, threads))
        results[kind] = {
            "sentences_per_second": round(rows / out["seconds"], 1),
            "peak_gib": round(peak, 2),
            "rows": rows,
            "tokens": tokens,
        }
        print(
            f"{kind:>13}: {rows / out['seconds']:7.1f} sentences/s ({rows} x {tokens} tokens), "
            f"peak {peak:.2f} GiB",
            flush=True,
        )
    for kind in ("finetune_bare", "finetune"):
        out, peak = _result(_start(kind, train_rows, train_tokens, threads))
        results[kind] = {
            "seconds_per_step": round(out["seconds_per_step"], 3),
            "peak_gib": round(peak, 2),
            "batch": 32,
            "tokens": train_tokens,
            "steps": out["steps"],
        }
        print(
            f"{kind:>13}: {out['seconds_per_step']:7.3f} s/step (batch 32 x {train_tokens} tokens, median "
            f"of {out['steps'] - 2} steps), peak {peak:.2f} GiB",
            flush=True,
        )
    for what, key in (("encode", "sentences_per_second"), ("finetune", "seconds_per_step")):
        results[what]["ratio_to_bare"] = round(results[what][key] / results[f"{what}_bare"][key], 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="child process of `python -m pipeline.benchmark transformer`"
    )
    parser.add_argument("kind", choices=["encode", "encode_bare", "finetune", "finetune_bare"])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.kind, args.rows, args.tokens, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

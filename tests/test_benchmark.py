"""The benchmarks' child launcher and the transformer benchmark's length mixes."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.bench_child import run_child
from devtools.bench_transformer import MIXES, mix_lengths


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


@pytest.mark.slow
def test_everyday_times_a_fresh_clones_repro_and_the_noop_after_it(tmp_path):
    # A two-stage project stands in for the pipeline: the plumbing is what is tested.
    import subprocess

    import yaml

    from devtools.bench_everyday import bench_everyday

    source = tmp_path / "source"
    source.mkdir()
    (source / "params.yaml").write_text(
        "n: 2\nvalidation:\n  tasks: [imdb]\n  imdb: {source: download, local_dir: ''}\n"
    )
    (source / "dvc.yaml").write_text(
        "stages:\n"
        "  first:\n    foreach: [competition, imdb]\n    do:\n"
        '      cmd: sleep 0.3 && echo ${item} > ${item}.txt\n      params: [n]\n      outs: ["${item}.txt"]\n'
        "  second:\n    cmd: cat competition.txt > second.txt\n    deps: [competition.txt]\n    outs: [second.txt]\n"
    )
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(cmd, cwd=source, check=True, capture_output=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"], cwd=source, check=True
    )
    result = bench_everyday(tmp_path / "bench", source)
    assert result["stages"]["first"]["runs"] == 2 and result["stages"]["first"]["competition"] >= 0.3
    assert result["stages"]["first"]["validation"] >= 0.3 and result["stages"]["second"]["runs"] == 1
    assert result["noop_ran"] == [] and 0 < result["noop_seconds"] < result["repro_seconds"]
    params = yaml.safe_load((tmp_path / "bench/clone/params.yaml").read_text())
    assert params["validation"]["imdb"] == {"source": "local", "local_dir": ""}  # never downloads

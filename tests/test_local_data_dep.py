"""With ``competition.source: local``, the local folder's files are a dependency of ``fetch``:
an edit reruns fetch and what follows it, an unchanged folder reruns nothing (``dvc repro``
in a fresh project copy, on a tiny in-file competition)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml
from conftest import make_project_copy, run

pytestmark = pytest.mark.slow  # make test-fast skips these

WORDS = ("storm", "vaccine", "election", "market", "league", "planet", "court", "festival")


def _frame(ids: range, with_label: bool) -> pd.DataFrame:
    rows = []
    for i in ids:
        label = i % 2
        rows.append(
            {
                "id": i,
                "title": f"{WORDS[i % len(WORDS)]} news {i}",
                "author": f"writer {i % 3}",
                "text": ("shocking secret they hide " if label else "officials report data on ") * 3
                + WORDS[(i * 3) % len(WORDS)],
                **({"label": label} if with_label else {}),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    local = tmp_path_factory.mktemp("competition")
    _frame(range(40), True).to_csv(local / "train.csv", index=False)
    _frame(range(100, 110), False).to_csv(local / "test.csv", index=False)
    pd.DataFrame({"id": range(100, 110), "label": 0}).to_csv(local / "sample_submission.csv", index=False)
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["competition"].update(source="local", local_dir=str(local))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first = repro(project)
    assert "Running stage 'prepare@competition'" in first, first
    return project, local


def repro(project) -> str:
    result = run(["dvc", "repro", "prepare@competition"], project, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_unchanged_local_folder_reruns_nothing(project):
    root, local = project
    stat = (local / "train.csv").stat()
    os.utime(local / "train.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes
    out = repro(root)
    assert "Running stage 'fetch@competition'" not in out
    assert "Running stage 'prepare@competition'" not in out


def test_edited_train_csv_reruns_fetch_and_prepare(project):
    root, local = project
    frame = pd.read_csv(local / "train.csv")
    frame.loc[0, "text"] = "a corrected article text"
    frame.to_csv(local / "train.csv", index=False)
    out = repro(root)
    assert "Running stage 'fetch@competition'" in out and "Running stage 'prepare@competition'" in out
    prepared = pd.read_parquet(root / "data/prepared/competition/train.parquet")
    assert prepared["text"].str.contains("corrected article").any()


def test_fingerprint_names_a_missing_local_folder(tmp_path, monkeypatch):
    from pipeline.core.errors import DataError
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.fingerprint import fingerprint

    monkeypatch.chdir(tmp_path)
    params = parse_params({"competition": {"source": "local", "local_dir": str(tmp_path / "nowhere")}})
    with pytest.raises(DataError, match="nowhere.*not a folder"):
        fingerprint(get_task("competition", params), params)

"""Tests of devtools.docs_tables: the docs' score tables are the metrics, regenerated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools.docs_tables import main, render

ROOT = Path(__file__).resolve().parents[1]
DOC = "intro\n<!-- metrics:begin competition-cv -->\nstale\n<!-- metrics:end competition-cv -->\nafter\n"


def _metrics(folder: Path, cv: dict, validation: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "competition.json").write_text(json.dumps({"available": 1, "cv": cv}))
    (folder / "validation.json").write_text(json.dumps(validation))
    return folder


def test_committed_docs_equal_what_the_committed_metrics_give():
    stale = [
        path.name
        for path in sorted((ROOT / "docs").glob("*.md"))
        if render(text := path.read_text(encoding="utf-8"), ROOT / "metrics") != text
    ]
    assert not stale, f"docs {stale} disagree with metrics/: run python -m devtools.docs_tables"


def test_block_is_rewritten_and_the_prose_around_it_kept(tmp_path):
    cv = {"a": {"accuracy": 0.5, "log_loss": 0.7}, "b": {"accuracy": 0.75, "log_loss": 0.123456}}
    metrics = _metrics(tmp_path / "metrics", cv, {})
    out = render(DOC, metrics)
    assert out.startswith("intro\n<!-- metrics:begin competition-cv -->\n| model | accuracy | log loss |")
    assert "| b | 0.7500 | 0.1235 |\n| a | 0.5000 | 0.7000 |\n<!-- metrics:end" in out
    assert "stale" not in out and out.endswith("-->\nafter\n")
    assert render(out, metrics) == out


def test_validation_table_lists_measured_tasks_and_names_unavailable_ones(tmp_path):
    validation = {
        "imdb.available": 1,
        "imdb.lstm.test_accuracy": 0.89,
        "imdb.word_lr.test_accuracy": 0.9075,
        "reuters.available": 0,
    }
    metrics = _metrics(tmp_path / "metrics", {}, validation)
    doc = "<!-- metrics:begin validation-test -->\n<!-- metrics:end validation-test -->\n"
    out = render(doc, metrics)
    assert "R52: unavailable in this run" in out
    assert "| model | IMDB |\n|---|---|\n| lstm | 0.8900 |\n| word_lr | 0.9075 |\n" in out


def test_main_rewrites_only_stale_files(tmp_path):
    metrics = _metrics(tmp_path / "metrics", {"a": {"accuracy": 0.5}}, {})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.md").write_text(DOC)
    (docs / "plain.md").write_text("no tables\n")
    assert main(docs, metrics) == [docs / "x.md"]
    assert "| a | 0.5000 |" in (docs / "x.md").read_text()
    assert main(docs, metrics) == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("<!-- metrics:begin nope -->\n<!-- metrics:end nope -->\n", "unknown metrics block(s) ['nope']"),
        ("<!-- metrics:begin competition-cv -->\nno end\n", "unpaired metrics:begin/end"),
    ],
)
def test_bad_markers_are_named(tmp_path, doc, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        render(doc, _metrics(tmp_path / "metrics", {}, {}))


def test_readme_stays_a_manual():
    size = (ROOT / "README.md").stat().st_size
    assert size <= 10 * 1024, f"README.md is {size} bytes (> 10 KB): move long text to docs/<topic>.md"


def test_architecture_names_every_module():
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    modules = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "devtools").rglob("*.py")]
    names = {p.relative_to(ROOT / p.relative_to(ROOT).parts[0]).as_posix(): p for p in modules}
    missing = sorted(n for n, p in names.items() if p.name != "__init__.py" and f"`{n}`" not in text)
    assert not missing, f"docs/architecture.md does not name {missing}: add them to its module table"

"""Rewrite the score tables in ``docs/*.md`` from ``metrics/*.json``: ``python -m devtools.docs_tables``.

A table lives between ``<!-- metrics:begin NAME -->`` and ``<!-- metrics:end NAME -->``; NAME
picks its renderer in :data:`TABLES`. Only numbers that ``metrics/`` holds are generated;
numbers measured by hand stay prose with their date. ``make docs`` runs this after a run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.core.io import read_json, write_text

DOCS_DIR, METRICS_DIR = Path("docs"), Path("metrics")
_BLOCK = re.compile(
    r"(?P<begin><!-- metrics:begin (?P<name>[\w-]+) -->\n).*?(?P<end><!-- metrics:end (?P=name) -->)", re.S
)
_MARKER = re.compile(r"<!-- metrics:(?:begin|end) ([\w-]+) -->")
_CV_COLUMNS = {"accuracy": "accuracy", "f1_macro": "F1 macro", "log_loss": "log loss", "roc_auc": "ROC AUC"}
_TASK_TITLES = {"imdb": "IMDB", "reuters": "R52"}


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _competition_cv(metrics_dir: Path) -> str:
    """Every model's CV scores on the competition task, best accuracy first."""
    record = read_json(metrics_dir / "competition.json")
    if not record.get("available"):
        return f"No competition scores in this run: {record.get('unavailable_reason', 'unavailable')}.\n"
    cv: dict[str, dict[str, float]] = record["cv"]
    columns = [key for key in _CV_COLUMNS if any(key in scores for scores in cv.values())]
    lines = [
        "| model | " + " | ".join(_CV_COLUMNS[key] for key in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for model in sorted(cv, key=lambda m: (-cv[m].get("accuracy", 0.0), m)):
        lines.append(f"| {model} | " + " | ".join(_number(cv[model].get(key)) for key in columns) + " |")
    return "\n".join(lines) + "\n"


def _validation_test(metrics_dir: Path) -> str:
    """Test accuracy of every model on each validation task (their test labels are public)."""
    summary: dict = read_json(metrics_dir / "validation.json")
    tasks = [key.removesuffix(".available") for key in summary if key.endswith(".available")]
    measured = [task for task in tasks if summary[f"{task}.available"]]
    lines = [
        f"{_TASK_TITLES.get(task, task)}: unavailable in this run (`metrics/{task}.json` says why)."
        for task in tasks
        if task not in measured
    ]
    if measured:
        models = sorted({key.split(".")[1] for key in summary if key.endswith(".test_accuracy")})
        lines += ["", "| model | " + " | ".join(_TASK_TITLES.get(t, t) for t in measured) + " |"]
        lines.append("|---" * (len(measured) + 1) + "|")
        for model in models:
            cells = [_number(summary.get(f"{task}.{model}.test_accuracy")) for task in measured]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


TABLES: dict[str, Callable[[Path], str]] = {
    "competition-cv": _competition_cv,
    "validation-test": _validation_test,
}


def render(text: str, metrics_dir: Path = METRICS_DIR) -> str:
    """``text`` with every metrics block rewritten from ``metrics_dir``."""
    names = _MARKER.findall(text)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown metrics block(s) {unknown}; known: {sorted(TABLES)}")
    blocks = [match["name"] for match in _BLOCK.finditer(text)]
    if len(names) != 2 * len(blocks):
        raise ValueError(f"unpaired metrics:begin/end markers: {names} (paired: {blocks})")
    return _BLOCK.sub(lambda m: m["begin"] + TABLES[m["name"]](metrics_dir) + m["end"], text)


def main(docs_dir: Path = DOCS_DIR, metrics_dir: Path = METRICS_DIR) -> list[Path]:
    """Rewrite the stale docs in ``docs_dir``; return those rewritten."""
    rewritten = []
    for path in sorted(docs_dir.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        new = render(text, metrics_dir)
        if new != text:
            write_text(path, new)
            rewritten.append(path)
    return rewritten


if __name__ == "__main__":
    try:
        changed = main()
    except (ValueError, OSError) as error:  # a bad marker, a missing metrics file
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print("rewrote " + ", ".join(map(str, changed)) if changed else "docs tables up to date", file=sys.stderr)

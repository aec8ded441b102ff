"""A Kaggle-sized benchmark: the default ``dvc repro`` on a competition of the real fake-news
shape, built from real text (IMDB reviews in ``../shared/data/imdb``).

Kaggle's fake-news has 20,800 train and 5,200 test articles of about 4,500 characters on
average, with a long tail (the longest past 100,000 characters), and ``id, title, author,
text, label`` columns. :func:`make_competition` joins IMDB reviews of one sentiment into an
article of that shape (train articles from IMDB's train split, test articles from its test
split), gives it a title (the start of its first review) and an author (drawn from a pool
whose authors lean to one label, as real bylines do), and labels it by the sentiment: a
label the models can learn. Reviews are reused when the articles need more text than the
split holds, so near-duplicate passages are more common than in real news.

:func:`bench_scale` writes such a competition, makes a scratch project of this checkout's
pipeline reading it (``competition.source: local``, validation tasks off) and runs each
stage of the default ``dvc repro`` in its order (``dvc repro -s <stage>``), measuring its wall
time and the peak resident memory of its largest process.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .bench_child import ROOT, SHARED_DATA, finish, start_child

IMDB = SHARED_DATA / "imdb"
FULL = (20_800, 5_200)  # Kaggle fake-news: train, test rows
MEAN_CHARS = 4_500  # its mean article length
LONG_SHARE, LONG_REVIEWS = 0.002, (60, 110)  # the long tail: ~0.2% of articles of 60-110 reviews
# what a project of this pipeline needs besides params.yaml (every dvc.yaml: `dvc repro` reads them all)
PROJECT_FILES = ("pipeline", "dvc.yaml", "data/fingerprints/dvc.yaml", ".dvcignore")
AUTHORS, AUTHOR_LEAN, NO_AUTHOR, NO_TITLE = 3_000, 0.8, 0.09, 0.025


def read_reviews(imdb_dir: Path, split: str) -> pd.DataFrame:
    """IMDB's ``split`` reviews: ``text`` (``<br />`` as newlines) and ``label``."""
    frame = pd.read_csv(imdb_dir / f"aclImdb_{split}.csv.gz", usecols=["label", "text"])
    frame["text"] = frame["text"].str.replace(r"<br\s*/?>", "\n", regex=True)
    return frame


def _author_pool(imdb_dir: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Author names (two capitalised IMDB vocabulary words) and the label each leans to."""
    words = [
        w
        for w in (imdb_dir / "aclImdb_imdb.vocab").read_text(encoding="utf-8").split()[300:8000]
        if w.isalpha() and len(w) > 2
    ]
    first, last = rng.choice(words, AUTHORS), rng.choice(words, AUTHORS)
    names = np.array([f"{a.capitalize()} {b.capitalize()}" for a, b in zip(first, last, strict=True)])
    return names, rng.integers(0, 2, AUTHORS)


def _articles(
    reviews: pd.DataFrame, n: int, rng: np.random.Generator, authors: tuple[np.ndarray, np.ndarray]
) -> pd.DataFrame:
    mean_review = reviews["text"].str.len().mean()
    long_reviews = LONG_SHARE * np.mean(LONG_REVIEWS)
    # reviews per article: geometric (mean chosen so the articles average MEAN_CHARS), plus the tail
    p = min(1.0, 1.0 / max(1.0, (MEAN_CHARS / mean_review - long_reviews) / (1 - LONG_SHARE)))
    counts = rng.geometric(p, n)
    tail = rng.random(n) < LONG_SHARE
    counts[tail] = rng.integers(LONG_REVIEWS[0], LONG_REVIEWS[1] + 1, tail.sum())
    labels = rng.integers(0, 2, n)
    pools = {label: reviews.loc[reviews["label"] == label, "text"].to_numpy() for label in (0, 1)}
    orders = {label: rng.permutation(len(pool)) for label, pool in pools.items()}
    cursor = {0: 0, 1: 0}
    names, leans = authors
    by_lean = {label: np.flatnonzero(leans == label) for label in (0, 1)}
    rows = []
    for label, count in zip(labels, counts, strict=True):
        pool, order = pools[label], orders[label]
        picked = []
        for _ in range(count):  # the split's reviews in a shuffled cycle: reused only when needed
            if cursor[label] == len(order):
                orders[label] = order = rng.permutation(len(pool))
                cursor[label] = 0
            picked.append(pool[order[cursor[label]]])
            cursor[label] += 1
        text = "\n\n".join(picked)
        words = re.split(r"(?<=[.!?])\s", picked[0], maxsplit=1)[0].split()[:12]
        title = "" if rng.random() < NO_TITLE else " ".join(words).title()
        lean = label if rng.random() < AUTHOR_LEAN else 1 - label
        author = "" if rng.random() < NO_AUTHOR else names[rng.choice(by_lean[lean])]
        rows.append((title, author, text, int(label)))
    return pd.DataFrame(rows, columns=["title", "author", "text", "label"])


def make_competition(
    folder: Path, n_train: int, n_test: int, seed: int = 0, imdb_dir: Path = IMDB
) -> dict[str, float]:
    """Write train.csv, test.csv and sample_submission.csv of the fake-news shape to ``folder``;
    return their sizes (rows, mean and largest article length in characters)."""
    rng = np.random.default_rng(seed)
    authors = _author_pool(imdb_dir, rng)
    train = _articles(read_reviews(imdb_dir, "train"), n_train, rng, authors)
    test = _articles(read_reviews(imdb_dir, "test"), n_test, rng, authors)
    train.insert(0, "id", np.arange(n_train))
    test.insert(0, "id", np.arange(n_train, n_train + n_test))
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns="label").to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    lengths = pd.concat([train["text"], test["text"]]).str.len()
    return {
        "train_rows": n_train,
        "test_rows": n_test,
        "mean_chars": round(float(lengths.mean())),
        "median_chars": round(float(lengths.median())),
        "max_chars": int(lengths.max()),
    }


def scratch_project(dest: Path, data: Path) -> Path:
    """A git + DVC project of this checkout's pipeline reading the competition in ``data``,
    validation tasks off."""
    for name in PROJECT_FILES:
        src, dst = ROOT / name, dest / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["competition"].update(source="local", local_dir=str(data))
    params["validation"]["tasks"] = []
    for task in ("imdb", "reuters"):
        params["validation"][task] = {"source": "local", "local_dir": ""}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = [sys.executable, "-m", "dvc"]  # this interpreter's DVC, whether or not its bin/ is on PATH
    for cmd in (["git", "init", "-q"], [*dvc, "init", "-q"], [*dvc, "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")
    return dest


def stages_to_run(project: Path) -> list[str]:
    """Every stage of ``project``'s ``dvc.yaml`` in the order ``dvc repro`` runs them."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import plan_repro

    with contextlib.chdir(project), Repo(".") as repo:  # addresses relative to the project
        return [stage.addressing for stage in plan_repro(repo.index.graph)]


def bench_scale(workdir: Path, n_train: int, n_test: int, seed: int = 0, upto: str | None = None) -> dict:
    """Build the competition at ``n_train``/``n_test`` rows in ``workdir`` and time each stage
    of the default ``dvc repro`` on it (up to and including the stage ``upto``, if given);
    print one line per stage as it ends."""
    started = time.perf_counter()
    shape = make_competition(workdir / "competition", n_train, n_test, seed)
    print(
        f"competition: {n_train:,} train / {n_test:,} test articles, {shape['mean_chars']:,} chars "
        f"on average (median {shape['median_chars']:,}, longest {shape['max_chars']:,}); "
        f"built in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    project = scratch_project(workdir / "project", workdir / "competition")
    order = stages_to_run(project)
    if upto is not None:
        if upto not in order:
            raise SystemExit(f"--upto {upto!r} is not a stage of dvc.yaml; choose one of {order}")
        order = order[: order.index(upto) + 1]
    stages: dict[str, dict[str, float]] = {}
    for stage in order:
        begun = time.perf_counter()
        _, peak = finish(start_child(["-m", "dvc", "repro", "--single-item", stage], project))
        seconds = time.perf_counter() - begun
        stages[stage] = {"seconds": round(seconds, 1), "peak_gib": round(peak, 2)}
        print(f"{stage:>40}: {seconds:7.1f} s, peak {peak:5.2f} GiB", flush=True)
    total = sum(s["seconds"] for s in stages.values())
    print(
        f"{'all stages':>40}: {total:7.1f} s = {total / 60:.1f} min, largest peak "
        f"{max(s['peak_gib'] for s in stages.values()):.2f} GiB",
        flush=True,
    )
    return {"shape": shape, "stages": stages, "total_seconds": round(total, 1)}

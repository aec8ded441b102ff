"""A fixture competition with the twin hazard, built from a real labelled competition.

Stories are real train rows of ``../shared/data/competitions/<name>`` (labels known). A share
of them gets a *twin*: a light rewrite (a few words swapped for words of other rows) that
carries the other label, as rewrites or twin versions of one story do in some fake-news
sets. The test split is by story, as the organisers' was: a story and its twin are both in
train or both in test. Random folds put twins on both sides of a fold, so a model that
remembers the twin predicts its other label; grouped folds do not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd


def rewrite(text: str, donors: list[str], share: float, rng: np.random.Generator) -> str:
    """``text`` with ``share`` of its words replaced by random words of ``donors``."""
    words = text.split()
    if not words:
        return text
    for k in rng.choice(len(words), max(1, round(share * len(words))), replace=False):
        donor = donors[rng.integers(len(donors))].split() or ["x"]
        words[k] = donor[rng.integers(len(donor))]
    return " ".join(words)


def twin_competition(
    source: Path,
    n_stories: int,
    twin_share: float,
    rewrite_share: float = 0.1,
    test_share: float = 0.2,
    seed: int = 0,
):
    """``(train, test, test_labels)`` frames in the Kaggle fake-news layout."""
    rng = np.random.default_rng(seed)
    rows = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    rows = rows.iloc[rng.permutation(len(rows))[:n_stories]].reset_index(drop=True)
    donors = rows["text"].tolist()
    out = []
    for story, row in rows.iterrows():
        out.append({**row, "story": story})
        if rng.random() < twin_share:
            twin = {
                **row,
                "text": rewrite(row["text"], donors, rewrite_share, rng),
                "label": str(1 - int(row["label"])),
                "story": story,
            }
            out.append(twin)
    frame = pd.DataFrame(out)
    frame["id"] = [str(i) for i in rng.permutation(len(frame))]
    in_test = np.isin(frame["story"], rng.permutation(n_stories)[: round(test_share * n_stories)])
    frame = frame.iloc[rng.permutation(len(frame))].drop(columns="story")
    in_test = in_test[frame.index]
    train = frame[~in_test].reset_index(drop=True)
    test = frame[in_test].reset_index(drop=True)
    return train, test.drop(columns="label"), test["label"].astype(int).to_numpy()


# --- fixtures as hard as the real thing (docs/cv.md: their measured properties) -------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.replace("<br />", " ")) if s.strip()]


def paraphrase(text: str, donors: list[str], rng: np.random.Generator, drop=0.3, swap=0.4, add=1) -> str:
    """A heavy rewrite: ``drop`` of the sentences dropped, ``swap`` of the remaining words
    replaced by words of ``donors``, ``add`` donor sentences inserted, two sentences swapped.
    About 60% of the words change; the cosine to the original is mostly 0.2-0.4."""
    kept = [s for s in _sentences(text) if rng.random() >= drop] or _sentences(text)[:1] or [text]
    out = []
    for sentence in kept:
        words = sentence.split()
        for k in np.flatnonzero(rng.random(len(words)) < swap):
            donor = donors[rng.integers(len(donors))].split() or ["x"]
            words[k] = donor[rng.integers(len(donor))]
        out.append(" ".join(words))
    for _ in range(add):
        out.insert(int(rng.integers(len(out) + 1)), donors[rng.integers(len(donors))][:300])
    if len(out) > 2:
        a, b = rng.choice(len(out), 2, replace=False)
        out[a], out[b] = out[b], out[a]
    return " ".join(out)


def heavy_twin_competition(imdb_csv: Path, n_stories: int = 500, test_share: float = 0.2, seed: int = 0):
    """Every story is a real IMDB review ("real", label 0) and a heavy paraphrase of it
    ("fake", label 1), as in a competition whose fake versions were crowd-written rewrites;
    the test split is by story. ``(train, test, test_labels)`` in the Kaggle fake-news layout."""
    rng = np.random.default_rng(seed)
    reviews = pd.read_csv(imdb_csv)["text"].str.replace("<br />", " ", regex=False)
    picked = rng.permutation(len(reviews))[: n_stories + 2000]
    stories, donors = reviews.iloc[picked[:n_stories]].tolist(), reviews.iloc[picked[n_stories:]].tolist()
    rows = []
    for story, text in enumerate(stories):
        rows.append({"title": "", "author": "", "text": text, "label": "0", "story": story})
        rows.append(
            {"title": "", "author": "", "text": paraphrase(text, donors, rng), "label": "1", "story": story}
        )
    return _split_by(pd.DataFrame(rows), "story", test_share, rng)


def unseen_source_competition(
    imdb_csv: Path,
    liar_dir: Path,
    n_sources: int = 100,
    per_source: int = 20,
    skew: float = 0.85,
    test_share: float = 0.2,
    seed: int = 0,
):
    """Real IMDB reviews published by ``n_sources`` sources named after real LIAR speakers (the
    ``author`` column, part of the model's text). Each source leans to one label (``skew`` of
    its rows), as publishers of fake or real news do; test sources never appear in train."""
    rng = np.random.default_rng(seed)
    speakers = pd.read_csv(liar_dir / "train.csv", dtype=str, keep_default_na=False)["author"]
    names = speakers.value_counts().index[:n_sources].tolist()
    reviews = pd.read_csv(imdb_csv)
    reviews = reviews.iloc[rng.permutation(len(reviews))]
    pools = {label: iter(reviews.loc[reviews["label"] == label, "text"].tolist()) for label in (0, 1)}
    rows = []
    for name in names:
        lean = int(rng.integers(2))
        for _ in range(per_source):
            label = lean if rng.random() < skew else 1 - lean
            text = next(pools[label]).replace("<br />", " ")
            rows.append({"title": "", "author": name, "text": text, "label": str(label)})
    return _split_by(pd.DataFrame(rows), "author", test_share, rng, drop=False)


def _split_by(frame: pd.DataFrame, key: str, test_share: float, rng: np.random.Generator, drop: bool = True):
    values = frame[key].unique()
    held = rng.permutation(values)[: round(test_share * len(values))]
    in_test = frame[key].isin(held).to_numpy()
    frame = frame.assign(id=[str(i) for i in rng.permutation(len(frame))])
    frame = frame.drop(columns=key) if drop else frame
    frame = frame[["id"] + [c for c in frame.columns if c != "id"]]
    train = frame[~in_test].reset_index(drop=True)
    test = frame[in_test].reset_index(drop=True)
    return train, test.drop(columns="label"), test["label"].astype(int).to_numpy()


def run_competition(root: Path, train, test, test_y, models, cv=None, ensemble_params=None):
    """prepare → train (``models``) → ensemble → report in ``root``, in process: CV and test
    accuracy per model, the diagnostics, the report and the ensemble record."""
    import pytest

    from pipeline.core.outputs import load_diagnostics, load_predictions
    from pipeline.core.params import parse_params
    from pipeline.core.tasks import get_task
    from pipeline.ensemble import ensemble
    from pipeline.prepare import prepare
    from pipeline.report import report
    from pipeline.train import train as run_train

    raw = root / "data/raw/competition"
    raw.mkdir(parents=True)
    train.to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    test[["id"]].assign(label=0).to_csv(raw / "sample_submission.csv", index=False)
    (raw / "source.json").write_text(json.dumps({"available": True, "task": "competition"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        params = parse_params(
            {
                "cv": cv or {},
                "models": {"tfidf": list(models), "rnn": [], "transformer": []},
                "ensemble": ensemble_params or {},
            }
        )
        task = get_task("competition", params)
        prepare(task, params)
        scores_cv, scores_test = {}, {}
        for model in [*models, "ensemble"]:
            record = run_train(task, model, params) if model != "ensemble" else ensemble(task, params)
            arrays = load_predictions(task, model)[1]
            scores_cv[model] = record["cv"]["accuracy"]
            scores_test[model] = float(np.mean(arrays["test"].argmax(1) == test_y))
        report(task, params)
        return {
            "cv": scores_cv,
            "test": scores_test,
            "checks": load_diagnostics(task),
            "markdown": (root / "reports/competition.md").read_text(encoding="utf-8"),
            "ensemble": record,
        }

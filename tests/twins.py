"""A fixture competition with the twin hazard, built from a real labelled competition.

Stories are real train rows of ``../shared/data/competitions/<name>`` (labels known). A share
of them gets a *twin*: a light rewrite (a few words swapped for words of other rows) that
carries the other label, as rewrites or twin versions of one story do in some fake-news
sets. The test split is by story, as the organisers' was: a story and its twin are both in
train or both in test. Random folds put twins on both sides of a fold, so a model that
remembers the twin predicts its other label; grouped folds do not.
"""

from __future__ import annotations

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

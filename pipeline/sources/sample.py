"""A bundled, SYNTHETIC stand-in for Kaggle's "fake-news" competition.

Nothing here is real news: every article is assembled from code (templates and word
lists), so the pipeline can run offline, in CI and in tests without Kaggle access.
The files have exactly the Kaggle layout: ``train.csv`` (id,title,author,text,label;
label 1 = fake/unreliable, 0 = reliable), ``test.csv`` (id,title,author,text) and
``sample_submission.csv`` (id,label, all 0). Test ids continue after the train ids.

The signal is deliberately noisy, learnable but not trivial (TF-IDF + logistic
regression gets roughly 0.8 accuracy in 5-fold CV):

* Both classes share most vocabulary: topics (politics, health, science, economy,
  sports), people, places and neutral sentences are drawn the same way for both.
* Reliable articles lean to a sober wire style (attributions such as "officials said",
  "according to", weekdays, dates, percentages); fake articles lean to sensational
  words, ALL-CAPS words, exclamation marks, "you won't believe", "they don't want you
  to know" and anonymous insiders. Each cue appears with a class-dependent
  probability, never deterministically, and either style leaks into the other class.
* Authors come from three pools (reliable-leaning, fake-leaning, shared) that both
  classes draw from with different weights.
* About 10% of labels are flipped after generation.
* Messiness like the real data: ~15% of authors are empty, ~3% of texts are empty
  (their title is kept) and ~3% of titles are empty.

Same seed => byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import ParamsError
from pipeline.core.io import atomic_path

TOPICS = {
    "politics": (
        [
            "the Senate",
            "the governor",
            "the city council",
            "lawmakers",
            "the election board",
            "the White House",
        ],
        [
            "the budget bill",
            "the voting law",
            "a tax proposal",
            "the infrastructure plan",
            "the immigration bill",
        ],
    ),
    "health": (
        ["the health department", "hospital officials", "doctors", "the CDC", "nurses"],
        ["the vaccine program", "the flu season", "a new treatment", "hospital funding", "drug prices"],
    ),
    "science": (
        ["NASA", "university scientists", "a research team", "climate researchers"],
        ["a new study", "the Mars mission", "ocean temperatures", "a fossil discovery", "the telescope data"],
    ),
    "economy": (
        ["the Federal Reserve", "the central bank", "analysts", "the Treasury", "retailers"],
        ["interest rates", "the jobs report", "inflation", "the trade deal", "housing prices"],
    ),
    "sports": (
        ["the league", "the head coach", "team owners", "the Olympic committee"],
        ["the championship", "the stadium deal", "a player contract", "the doping case"],
    ),
}
PEOPLE = [
    "Maria Lopez",
    "John Carter",
    "Aisha Khan",
    "Peter Novak",
    "Linda Chen",
    "Omar Haddad",
    "Sarah Miller",
    "David Brooks",
    "Elena Petrova",
    "James Wright",
    "Grace Okafor",
    "Tom Baker",
]
PLACES = [
    "Ohio",
    "Texas",
    "Chicago",
    "Denver",
    "Brussels",
    "London",
    "Florida",
    "Seattle",
    "Arizona",
    "Toronto",
    "Atlanta",
    "Berlin",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "March", "April", "June", "September", "October", "November"]
AUTHORS_RELIABLE = [
    "Anna Schmidt",
    "Robert Hayes",
    "Mei Tanaka",
    "Carlos Ruiz",
    "Helen Ford",
    "Daniel Price",
    "Nadia Ali",
    "Paul Jensen",
]
AUTHORS_FAKE = [
    "Truth Seeker",
    "Patriot Eagle",
    "Jack Storm",
    "Red Pill Radio",
    "Freedom Watcher",
    "Admin",
    "Eddie Blaze",
    "Real News Now",
]
AUTHORS_SHARED = [
    "Staff Writer",
    "Michael Grant",
    "Laura Bell",
    "Guest Contributor",
    "Kevin Moss",
    "Reuters Staff",
]
NEUTRAL = [
    "{subj} discussed {obj} at a meeting in {place}.",
    "{person} said the debate over {obj} would continue.",
    "The question of {obj} has drawn attention in {place}.",
    "{subj} will address {obj} next week.",
    "Supporters and critics of {obj} remain divided.",
    "Residents of {place} have followed the story of {obj} closely.",
    "{person} spoke about {obj} with {subj}.",
    "Many people in {place} want to know more about {obj}.",
]
SOBER = [
    "{subj} announced on {day} that {obj} would be reviewed, officials said.",
    "According to a statement from {subj}, the figure rose {pct} percent in {month}.",
    "{person}, a spokesperson for {subj}, said the data would be published on {month} {dom}.",
    "The report, released on {day}, covered {num} cases in {place}, according to officials.",
    "Officials said {obj} would cost about {num} million dollars over {yrs} years.",
    "{subj} declined to comment on {obj}, a spokesperson said on {day}.",
]
SENSATIONAL = [
    "You won't believe what {subj} is hiding about {obj}!",
    "This is what they don't want you to know about {obj}.",
    "An anonymous insider says {subj} lied about {obj} for years!",
    "{caps} {person} was EXPOSED over {obj}!",
    "Share this before it gets deleted!",
    "The mainstream media will never tell you the truth about {obj}.",
    "Sources say {subj} panicked over {obj}!!",
]
CAPS = ["BREAKING:", "SHOCKING:", "BOMBSHELL:", "WOW:", "URGENT:"]
SOBER_TITLE = [
    "{subj} weighs {obj}",
    "{person} comments on {obj}",
    "{obj} in {place}: what changes",
    "Update on {obj} after {day} meeting",
]
LOUD_TITLE = [
    "{caps} {subj} CAUGHT lying about {obj}!",
    "You won't believe {obj} in {place}",
    "{person} DESTROYS {subj} over {obj}!",
    "What they don't want you to know about {obj}",
]

# Class-dependent probabilities (style 0 = reliable, 1 = fake): the learnable signal.
P_SOBER = (0.50, 0.10)  # per sentence: a sober wire-style sentence
P_SENSATIONAL = (0.06, 0.45)  # per sentence: a sensational sentence
P_LOUD_TITLE = (0.12, 0.65)  # the title is sensational
AUTHOR_POOL_WEIGHTS = ((0.55, 0.15, 0.30), (0.15, 0.55, 0.30))  # reliable, fake, shared pools
P_FAKE, P_LABEL_NOISE = 0.5, 0.10
P_NO_AUTHOR, P_NO_TEXT, P_NO_TITLE = 0.15, 0.03, 0.03


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.random() * len(items))]


def _fill(rng: np.random.Generator, template: str, topic: str) -> str:
    subjects, objects = TOPICS[topic]
    u = rng.random(11)  # one draw per slot, vectorised: scalar Generator calls are slow
    values = {
        "subj": subjects[int(u[0] * len(subjects))],
        "obj": objects[int(u[1] * len(objects))],
        "person": PEOPLE[int(u[2] * len(PEOPLE))],
        "place": PLACES[int(u[3] * len(PLACES))],
        "day": DAYS[int(u[4] * len(DAYS))],
        "month": MONTHS[int(u[5] * len(MONTHS))],
        "caps": CAPS[int(u[6] * len(CAPS))],
        "dom": 1 + int(u[7] * 28),
        "num": 12 + int(u[8] * 938),
        "pct": f"{0.2 + u[9] * 9.7:.1f}",
        "yrs": 2 + int(u[10] * 9),
    }
    text = template.format(**values)
    return text[0].upper() + text[1:]


def _article(rng: np.random.Generator, style: int) -> tuple[str, str, str]:
    """One (title, author, text) written in ``style`` (0 reliable, 1 fake)."""
    topic = _pick(rng, list(TOPICS))
    titles = LOUD_TITLE if rng.random() < P_LOUD_TITLE[style] else SOBER_TITLE
    title = _fill(rng, _pick(rng, titles), topic)
    sentences = []
    for _ in range(2 + int(rng.random() * 5)):
        draw = rng.random()
        if draw < P_SOBER[style]:
            pool = SOBER
        elif draw < P_SOBER[style] + P_SENSATIONAL[style]:
            pool = SENSATIONAL
        else:
            pool = NEUTRAL
        sentences.append(_fill(rng, _pick(rng, pool), topic))
    text = " ".join(sentences)
    w_reliable, w_fake, _ = AUTHOR_POOL_WEIGHTS[style]
    draw = rng.random()
    authors = (
        AUTHORS_RELIABLE
        if draw < w_reliable
        else AUTHORS_FAKE
        if draw < w_reliable + w_fake
        else AUTHORS_SHARED
    )
    author = _pick(rng, authors)
    if rng.random() < P_NO_AUTHOR:
        author = ""
    if rng.random() < P_NO_TEXT:
        text = ""
    elif rng.random() < P_NO_TITLE:
        title = ""
    return title, author, text


def _frame(rng: np.random.Generator, ids: range) -> pd.DataFrame:
    styles = (rng.random(len(ids)) < P_FAKE).astype(int)
    rows = [_article(rng, int(style)) for style in styles]
    noisy = rng.random(len(ids)) < P_LABEL_NOISE
    labels = np.where(noisy, 1 - styles, styles)
    frame = pd.DataFrame(rows, columns=["title", "author", "text"])
    frame.insert(0, "id", np.asarray(ids, dtype=np.int64))
    frame["label"] = labels.astype(np.int64)
    return frame


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_sample(dest: Path, seed: int = 20240101, n_train: int = 400, n_test: int = 200) -> dict:
    """Write train.csv, test.csv and sample_submission.csv of the synthetic competition to ``dest``."""
    if n_train < 1 or n_test < 1:
        raise ParamsError(
            f"sample source: n_train and n_test must be positive, got n_train={n_train}, n_test={n_test}"
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = _frame(rng, range(n_train))
    test = _frame(rng, range(n_train, n_train + n_test)).drop(columns="label")
    submission = pd.DataFrame({"id": test["id"], "label": np.zeros(n_test, dtype=np.int64)})
    _write_csv(train, dest / "train.csv")
    _write_csv(test, dest / "test.csv")
    _write_csv(submission, dest / "sample_submission.csv")
    return {"source": "sample", "seed": seed, "synthetic": True}

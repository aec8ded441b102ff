"""``cv.strategy``: build the candidate fold columns, check each against the test split, pick.

Candidates: ``stratified`` (rows shuffled within classes), ``near_duplicate`` (near-duplicate
texts kept in one fold), ``group`` (``cv.group`` values kept in one fold) and ``time``
(``cv.time`` order; validation after training). Every candidate that applies is measured:
for a sample of train rows, the cosine to the nearest row its fold trains on, against the
same for a sample of test rows to the train rows. ``auto`` takes the candidate whose two
distributions are closest (smallest KS statistic; candidates within the KS 5% critical value
of the smallest, i.e. within sampling noise, count as tied, and ties go to the first in
:data:`PREFERENCE`: keeping near-duplicates together is the safer of two equal fits).
:func:`plan_folds` also gathers the duplicate and adversarial checks into the diagnostics
record that ``prepare`` writes beside the prepared data (docs/cv.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import diagnostics as diag
from .duplicates import duplicate_groups, nearest_similarity, similar_pairs, text_vectors
from .errors import DataError
from .folds import make_folds, make_group_folds, make_time_folds
from .params import Params

log = logging.getLogger(__name__)
PREFERENCE = ("near_duplicate", "group", "time", "stratified")


@dataclass
class Candidate:
    folds: np.ndarray
    groups: np.ndarray | None  # rows kept together (None: none)
    ordered: bool = False  # time folds: train only on earlier folds


def group_values(raw: pd.DataFrame, spec: str, path) -> np.ndarray:
    """Group key per row from ``spec``: a column, or columns joined by ``+`` (rows share a
    group when every listed column matches). Rows whose key is empty are their own group."""
    columns = [c.strip() for c in spec.split("+")]
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise DataError(
            f"{path}: cv.group names column(s) {missing} that train.csv lacks "
            f"(columns: {list(raw.columns)}); set cv.group to one of them"
        )
    parts = [raw[c].astype(str).str.strip() for c in columns]
    keys = parts[0].str.cat(parts[1:], sep="\x1f") if len(parts) > 1 else parts[0]
    empty = np.all([p == "" for p in parts], axis=0)
    keys = np.where(empty, [f"\x00row{i}" for i in range(len(keys))], keys.to_numpy())
    if empty.any():
        log.warning(
            "%s: %d row(s) have an empty cv.group %r; each is its own group", path, int(empty.sum()), spec
        )
    return pd.factorize(keys)[0].astype(np.int64)


def time_values(raw: pd.DataFrame, column: str, path) -> np.ndarray:
    """Sortable values of ``column``: numbers, or dates/times."""
    if column not in raw.columns:
        raise DataError(
            f"{path}: cv.time names column {column!r} that train.csv lacks "
            f"(columns: {list(raw.columns)}); set cv.time to one of them"
        )
    text = raw[column].astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=float)
    dates = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad[:5])
        raise DataError(
            f"{path}: column {column!r} (cv.time) is neither a number nor a date on "
            f"line(s) {rows} (e.g. {text.iat[bad[0]]!r}); fix those values or unset cv.time"
        )
    return dates.astype("int64").to_numpy(dtype=float)


def candidates(
    raw: pd.DataFrame, y: np.ndarray, near_groups: np.ndarray, params: Params, path
) -> dict[str, Candidate]:
    cv, seed = params.cv, params.seed
    out = {"stratified": Candidate(make_folds(y, cv.folds, seed), None)}  # warns of rare classes once
    if len(np.unique(near_groups)) >= cv.folds:
        out["near_duplicate"] = Candidate(
            make_group_folds(y, near_groups, cv.folds, seed, warn_rare=False), near_groups
        )
    if cv.group:
        groups = group_values(raw, cv.group, path)
        out["group"] = Candidate(make_group_folds(y, groups, cv.folds, seed, warn_rare=False), groups)
    if cv.time:
        out["time"] = Candidate(
            make_time_folds(time_values(raw, cv.time, path), cv.folds), None, ordered=True
        )
    return out


def _nearest(X_train, X_test, cands: dict[str, Candidate], n_folds: int, seed: int, rows: int):
    """Per candidate: nearest-train cosines of sampled validation rows and of sampled test rows."""
    rng = np.random.default_rng(seed)
    q_train = np.sort(rng.choice(X_train.shape[0], min(rows, X_train.shape[0]), replace=False))
    q_test = np.sort(rng.choice(X_test.shape[0], min(rows, X_test.shape[0]), replace=False))
    pseudo = np.arange(len(q_test)) % n_folds  # each test row against one fold's training rows

    def valid_rule(c: Candidate):
        own = c.folds[q_train]
        if c.ordered:
            return lambda r, col: c.folds[col] < own[r]
        return lambda r, col: c.folds[col] != own[r]

    def test_rule(c: Candidate):
        if c.ordered:  # the test split comes after every train row
            return lambda r, col: np.ones(len(r), dtype=bool)
        return lambda r, col: c.folds[col] != pseudo[r]

    names = list(cands)
    valid = nearest_similarity(X_train[q_train], X_train, [valid_rule(cands[n]) for n in names])
    test = nearest_similarity(X_test[q_test], X_train, [test_rule(cands[n]) for n in names])
    validated = {n: cands[n].folds[q_train] >= 0 for n in names}  # time: fold -1 only trains
    return {n: (v[validated[n]], t) for n, v, t in zip(names, valid, test)}


def choose(strategy: str, fits: dict[str, dict], names) -> str:
    """The strategy asked for, or (``auto``) the candidate among ``names`` whose folds best
    match the test split (without test rows: the first of ``names`` in :data:`PREFERENCE`)."""
    if strategy != "auto":  # params guarantee its column, so the candidate exists
        return strategy
    measured = [n for n in PREFERENCE if n in fits and fits[n].get("ks") is not None]
    if not measured:
        return next(n for n in PREFERENCE if n in names)
    best = min(fits[n]["ks"] for n in measured)
    return next(n for n in measured if fits[n]["ks"] <= best + fits[n]["noise"])


def plan_folds(
    raw_train: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, params: Params, path
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Folds, resampling groups and the diagnostics record for a prepared ``train``/``test``."""
    clock, seconds = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    cv, y = params.cv, train["y"].to_numpy()
    X = text_vectors(pd.concat([train["text"], test["text"]], ignore_index=True))
    X_train, X_test = X[: len(train)], X[len(train) :]
    pairs = similar_pairs(X, cv.near_duplicate)[:2]  # over train and test rows together
    all_groups = duplicate_groups(X.shape[0], *pairs)
    near_groups = all_groups[: len(train)]
    lap("near_duplicate_groups")
    cands = candidates(raw_train, y, near_groups, params, path)
    lap("candidate_folds")
    fits = {}
    if len(test):
        for name, (v, t) in _nearest(X_train, X_test, cands, cv.folds, params.seed, cv.sample_rows).items():
            fits[name] = diag.resemblance(v, t)
            fits[name]["verdict"] = diag.resemblance_verdict(name, fits[name])
    lap("fold_resemblance")
    chosen = choose(cv.strategy, fits, list(cands))
    pick = cands[chosen]
    duplicates = diag.duplicate_report(train["text"], test["text"], y, near_groups, pairs, cv.near_duplicate)
    lap("duplicate_report")
    adversarial = diag.adversarial(
        train["text"], test["text"], params.seed, cv.sample_rows, groups=all_groups
    )
    lap("adversarial")
    record = {
        "strategy": cv.strategy,
        "chosen": chosen,
        "ordered": pick.ordered,
        "folds": fits,
        "duplicates": duplicates,
        "adversarial": adversarial,
    }
    warnings = [
        f"{name} check: {check['verdict']}"
        for name, check in (("duplicates", duplicates), ("adversarial", adversarial))
        if check["warn"]
    ]
    if fits.get(chosen, {}).get("differs"):
        warnings.append(f"folds ({chosen}): {fits[chosen]['verdict']}")
    seconds["total"] = round(sum(seconds.values()), 2)
    record.update(warnings=warnings, seconds=seconds)
    for message in warnings:
        log.warning("WARNING %s", message)
    log.info("cv.strategy %s: using %s folds (%.1f s of checks)", cv.strategy, chosen, seconds["total"])
    groups = pick.groups if pick.groups is not None else near_groups
    return pick.folds, groups, record

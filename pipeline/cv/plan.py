"""``cv.strategy``: build the candidate fold columns, check each against the test split, pick.

Candidates (docs/cv.md): ``stratified``; ``time`` and ``group`` (``cv.time``/``cv.group`` when
set); ``source:<column>`` for each source-like train column (repeated short values such as an
author, or the domain of a URL); ``near_duplicate@<t>`` for every threshold ``t`` of
``cv.ladder`` (components of one similarity graph, cut at ``t``); ``mutual_nearest`` and
``nearest`` (each row with its nearest train row). Every candidate is measured the same way:
for a sample of train rows, the cosine to the nearest row its fold trains on, against the same
for a sample of test rows to the train rows (two-sample KS statistic D). ``auto`` drops
candidates with a giant group (``cv.max_group_share``) and, when the nearest train rows carry
the *other* label far more often than class balance predicts (twins with opposite labels),
the candidates whose folds still split those twins; it then takes the smallest D, candidates
within the KS 5% critical value of it count as tied, and ties go to the simplest (fewest rows
kept together). :func:`plan_folds` also gathers the duplicate, twin-label and adversarial
checks and the verdict on whether CV can be trusted into the diagnostics record that
``prepare`` writes beside the prepared data.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.params import Params
from . import diagnostics as diag
from .duplicates import duplicate_groups, similarity_graph, text_vectors, top_neighbours
from .folds import make_folds, make_group_folds, make_time_folds

log = logging.getLogger(__name__)
NEIGHBOURS = 8  # nearest rows kept per row in the similarity graph
CANDIDATE_NEIGHBOURS = 64  # nearest train rows per sampled row when measuring the candidates
FOLD_AUC_CANDIDATES = 5  # tied candidates (simplest first) given the fold adversarial check
_URL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/\s:?#]+\.[a-z]{2,})(?:[/:?#]|\s*$)", re.I)


@dataclass
class Candidate:
    folds: np.ndarray
    groups: np.ndarray | None  # rows kept together (None: none)
    ordered: bool = False  # time folds: train only on earlier folds

    def describe(self) -> dict:
        if self.groups is None:
            return {"groups": None, "largest_group": 1, "grouped_rows": 0}
        sizes = np.bincount(np.unique(self.groups, return_inverse=True)[1])
        return {
            "groups": len(sizes),
            "largest_group": int(sizes.max()),
            "grouped_rows": int(sizes[sizes > 1].sum()),
        }


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


def source_columns(raw: pd.DataFrame, skip, n_folds: int) -> dict[str, np.ndarray]:
    """Group keys of the train columns that look like a source: short values (an author, a
    site; a URL counts by its domain) that most rows fill and that repeat (at most half as many
    distinct values as filled rows, and at least ``n_folds`` of them)."""
    out = {}
    for column in raw.columns:
        if column in skip:
            continue
        values = raw[column].astype(str).str.strip()
        filled = values != ""
        if filled.mean() < 0.5 or values[filled].str.len().mean() > 100:
            continue
        domains = values.str.extract(_URL, expand=False)
        if domains.notna()[filled].mean() > 0.8:
            values = domains.fillna("").str.lower()
            filled = values != ""
        distinct = values[filled].nunique()
        if n_folds <= distinct <= filled.sum() / 2:
            keys = np.where(filled, values.to_numpy(), [f"\x00row{i}" for i in range(len(values))])
            out[column] = pd.factorize(keys)[0].astype(np.int64)
    return out


def candidates(
    raw: pd.DataFrame, y: np.ndarray, graph, near_pairs, params: Params, path, skip=()
) -> dict[str, Candidate]:
    """Every candidate fold column, in order of simplicity before grouping is measured."""
    cv, seed, n = params.cv, params.seed, len(y)
    out = {"stratified": Candidate(make_folds(y, cv.folds, seed), None)}  # warns of rare classes once

    def grouped(groups: np.ndarray) -> Candidate | None:
        if len(np.unique(groups)) < cv.folds:
            return None
        return Candidate(make_group_folds(y, groups, cv.folds, seed, warn_rare=False), groups)

    if cv.time:
        out["time"] = Candidate(
            make_time_folds(time_values(raw, cv.time, path), cv.folds), None, ordered=True
        )
    if cv.group:
        keys = group_values(raw, cv.group, path)
        out["group"] = Candidate(make_group_folds(y, keys, cv.folds, seed, warn_rare=False), keys)
    for column, keys in source_columns(raw, set(skip), cv.folds).items():
        if (c := grouped(keys)) is not None:
            out[f"source:{column}"] = c
    nb, nb_cos = train_neighbours(graph, n)
    rows, cols, cos = _edges(nb, nb_cos)
    pi, pj = near_pairs
    train_pairs = (pi < n) & (pj < n)
    pi, pj = pi[train_pairs], pj[train_pairs]
    ladder = sorted({*cv.ladder, cv.near_duplicate}, reverse=True)
    for t in ladder:
        edges = cos >= t - 1e-6
        i, j = rows[edges], cols[edges]
        if t <= cv.near_duplicate + 1e-9:  # the exact pairs at cv.near_duplicate are edges at any t below it
            i, j = np.r_[i, pi], np.r_[j, pj]
        if (c := grouped(duplicate_groups(n, i, j))) is not None:
            out[f"near_duplicate@{t:g}"] = c
    first = nb[:, 0]
    has = first >= 0
    mutual = has & (first[np.where(has, first, 0)] == np.arange(n))
    for name, keep in (("mutual_nearest", mutual), ("nearest", has)):
        if (c := grouped(duplicate_groups(n, np.flatnonzero(keep), first[keep]))) is not None:
            out[name] = c
    return out


def train_neighbours(graph, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph's neighbour lists of the train rows with test rows struck out (``-1``), the
    nearest remaining train row first."""
    nb, cos = graph.neighbours[:n_train].copy(), graph.neighbour_cosine[:n_train].copy()
    test = nb >= n_train
    nb[test], cos[test] = -1, -1.0
    order = np.argsort(-cos, axis=1, kind="stable")
    return np.take_along_axis(nb, order, axis=1), np.clip(np.take_along_axis(cos, order, axis=1), 0, 1)


def _edges(nb: np.ndarray, cos: np.ndarray):
    rows = np.repeat(np.arange(len(nb)), nb.shape[1])
    cols, values = nb.ravel(), cos.ravel()
    real = cols >= 0
    return rows[real], cols[real], values[real]


def adversarial_groups(graph, chosen: str, near_groups_all: np.ndarray, near_duplicate: float) -> np.ndarray:
    """Groups over train and test rows for the adversarial check, cut like the chosen folds: a
    test row's twin, labelled "test" in the check's training folds, must not give it away."""
    rows, cols, cos = _edges(graph.neighbours, graph.neighbour_cosine)
    first = graph.neighbours[:, 0]
    if chosen.startswith("near_duplicate@"):
        keep = cos >= min(float(chosen.split("@")[1]), near_duplicate) - 1e-6
    elif chosen == "nearest":
        keep = cols == first[rows]
    elif chosen == "mutual_nearest":
        keep = (cols == first[rows]) & (first[cols] == rows)
    else:
        return near_groups_all
    n = len(first)
    # the chosen edges, plus each row tied to a node per near-duplicate group (ids past the rows)
    i = np.r_[rows[keep], np.arange(n)]
    j = np.r_[cols[keep], n + near_groups_all]
    return duplicate_groups(n + int(near_groups_all.max()) + 1, i, j)[:n]


def _nearest_allowed(rows, cosines, allowed) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: the first (nearest) of its listed neighbours that ``allowed`` admits, as
    (row, cosine); a row whose listed neighbours are all barred gets its farthest listed one."""
    first = np.argmax(allowed, axis=1)
    none = ~allowed.any(axis=1)
    first[none] = rows.shape[1] - 1
    pick = np.arange(len(rows))
    return rows[pick, first], cosines[pick, first]


def measure(X_train, X_test, y, cands: dict[str, Candidate], n_folds: int, seed: int, sample: int) -> dict:
    """Per candidate: fold resemblance (KS of nearest-train cosines, validation vs test) and the
    label agreement of each sampled validation row with its nearest training row."""
    rng = np.random.default_rng(seed)
    q_train = np.sort(rng.choice(X_train.shape[0], min(sample, X_train.shape[0]), replace=False))
    q_test = np.sort(rng.choice(X_test.shape[0], min(sample, X_test.shape[0]), replace=False))
    pseudo = np.arange(len(q_test)) % n_folds  # each test row against one fold's training rows
    v_rows, v_cos = top_neighbours(X_train[q_train], X_train, CANDIDATE_NEIGHBOURS, own=q_train)
    t_rows, t_cos = top_neighbours(X_test[q_test], X_train, CANDIDATE_NEIGHBOURS)
    expected = _expected_agreement(y)
    fits = {}
    for name, c in cands.items():
        own = c.folds[q_train]
        if c.ordered:
            v_ok, t_ok = c.folds[v_rows] < own[:, None], np.ones(t_rows.shape, dtype=bool)
        else:
            v_ok, t_ok = c.folds[v_rows] != own[:, None], c.folds[t_rows] != pseudo[:, None]
        validated = own >= 0  # time: fold -1 only trains
        nearest, valid_sim = _nearest_allowed(v_rows, v_cos, v_ok)
        _, test_sim = _nearest_allowed(t_rows, t_cos, t_ok)
        fit = diag.resemblance(valid_sim[validated], test_sim)
        agree = y[q_train][validated] == y[nearest][validated]
        fit.update(c.describe())
        fit.update(diag.agreement(agree, expected))
        fits[name] = fit
    return fits


def _expected_agreement(y: np.ndarray) -> float:
    share = np.bincount(y) / len(y)
    return float((share**2).sum())


def tied(fits: dict[str, dict], names, twins_flip: bool = False) -> list[str]:
    """The measured candidates of ``names`` (simplest first) that fit the test split best:
    giant groups out; when twins carry opposite labels (``twins_flip``), the candidates that
    still split them out (unless that leaves none, then the one that splits them least;
    ``splits_twins``: label agreement far below balance while validation rows sit closer to
    their nearest training row than test rows); then every one within the KS 5% critical
    value of the smallest D (sampling noise), simplest first."""
    measured = [n for n in names if fits.get(n, {}).get("ks") is not None]
    pool = [n for n in measured if not fits[n].get("giant")] or measured
    if twins_flip and pool:
        unsplit = [n for n in pool if not fits[n].get("splits_twins")]
        pool = unsplit or [max(pool, key=lambda n: fits[n]["agreement"])]
    if not pool:
        return []
    best = min(fits[n]["ks"] for n in pool)
    return [n for n in pool if fits[n]["ks"] <= best + fits[n]["noise"]]


def choose(strategy: str, fits: dict[str, dict], names, twins_flip: bool = False) -> str:
    """The strategy asked for, or (``auto``) the simplest of the :func:`tied` best candidates
    (without test rows: the first name)."""
    if strategy != "auto":  # params guarantee its column, so the candidate exists
        return strategy
    return next(iter(tied(fits, names, twins_flip) or names))


def _fold_auc(texts: pd.Series, c: Candidate, groups: np.ndarray, params: Params) -> float | None:
    """How well the adversarial classifier tells one validation fold from its training rows."""
    validated = np.unique(c.folds[c.folds >= 0])
    if len(validated) < 2:
        return None
    inside = c.folds == validated[0]
    rest = (c.folds < validated[0]) if c.ordered else ~inside
    rows = max(50, params.cv.sample_rows // 2)
    return diag.adversarial(
        texts[rest], texts[inside], params.seed, rows, groups=np.r_[groups[rest], groups[inside]]
    )["auc"]


def plan_folds(
    raw_train: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, params: Params, path, skip=()
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Folds, resampling groups and the diagnostics record for a prepared ``train``/``test``.
    ``skip``: raw columns that are no source (the id and the label)."""
    clock, seconds = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    cv, y = params.cv, train["y"].to_numpy()
    X = text_vectors(pd.concat([train["text"], test["text"]], ignore_index=True))
    X_train, X_test = X[: len(train)], X[len(train) :]
    graph = similarity_graph(X, cv.near_duplicate, X.shape[0], NEIGHBOURS)  # over train and test rows
    pairs = (graph.i, graph.j)
    all_groups = duplicate_groups(X.shape[0], *pairs)
    near_groups = all_groups[: len(train)]
    lap("similarity_graph")
    nb, nb_cos = train_neighbours(graph, len(train))
    twins = diag.twin_labels(y, nb[:, 0], nb_cos[:, 0])
    cands = candidates(raw_train, y, graph, pairs, params, path, skip)
    lap("candidate_folds")
    fits: dict[str, dict] = {}
    if len(test):
        fits = measure(X_train, X_test, y, cands, cv.folds, params.seed, cv.sample_rows)
        fold_rows = len(train) / cv.folds
        for name, fit in fits.items():
            fit["giant"] = bool(fit["largest_group"] > cv.max_group_share * fold_rows)
            # a split twin: a close opposite-label training row that test rows do not have
            fit["splits_twins"] = bool(fit["below_balance"] and fit["valid_median"] > fit["test_median"])
            fit["verdict"] = diag.resemblance_verdict(name, fit)
    lap("fold_resemblance")
    best_fit = choose("auto", fits, list(cands), twins_flip=twins["warn"])
    chosen = best_fit if cv.strategy == "auto" else choose(cv.strategy, fits, list(cands))
    pick = cands[chosen]
    duplicates = diag.duplicate_report(train["text"], test["text"], y, near_groups, pairs, cv.near_duplicate)
    lap("duplicate_report")
    adversarial_rows = adversarial_groups(graph, best_fit, all_groups, cv.near_duplicate)
    adversarial = diag.adversarial(
        train["text"], test["text"], params.seed, cv.sample_rows, groups=adversarial_rows
    )
    if adversarial.get("warn"):
        # Train and test are distinguishable (unseen sources, times): the folds should be too.
        # Simplest first among the best-fitting candidates (or the one asked for), the first
        # whose validation fold a classifier tells from its training rows about as well.
        train_groups = adversarial_rows[: len(train)]  # grouped as the train/test check is
        shortlist = (
            tied(fits, list(cands), twins["warn"])[:FOLD_AUC_CANDIDATES]
            if cv.strategy == "auto"
            else [chosen]
        )
        for name in shortlist:
            fits[name]["fold_auc"] = _fold_auc(train["text"], cands[name], train_groups, params)
            if (fits[name]["fold_auc"] or 0) >= adversarial["auc"] - 0.1:
                chosen = name
                break
        adversarial["folds_auc"] = fits.get(chosen, {}).get("fold_auc")
        pick = cands[chosen]
        if (adversarial["folds_auc"] or 0) >= adversarial["auc"] - 0.1:
            adversarial["verdict"] += (
                f" The {chosen} folds hold out as much (a validation fold vs its training rows: "
                f"AUC {adversarial['folds_auc']:.2f}), so CV accounts for the shift."
            )
            adversarial["warn"] = False
    lap("adversarial")
    trust = diag.trust(chosen, fits.get(chosen, {}), twins, adversarial)
    record = {
        "strategy": cv.strategy,
        "chosen": chosen,
        "ordered": pick.ordered,
        "folds": fits,
        "twins": twins,
        "duplicates": duplicates,
        "adversarial": adversarial,
        "trust": trust,
    }
    warnings = [
        f"{name} check: {check['verdict']}"
        for name, check in (("duplicates", duplicates), ("twin", twins), ("adversarial", adversarial))
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

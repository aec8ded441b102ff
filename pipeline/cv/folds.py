"""Seeded folds: stratified, grouped or time-ordered, robust to classes rarer than the folds.

Every strategy returns one fold number per row. ``time`` folds are *ordered*: fold ``k``
trains only on rows before it (the first block, fold ``-1``, is never validated); the others
train on every other fold. :func:`fold_rows` is the one place that rule lives.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)
NOT_VALIDATED = -1  # time folds: the earliest block only ever trains


def _check_rows(n_rows: int, n_folds: int, unit: str = "rows") -> None:
    if n_rows < n_folds:
        raise ValueError(f"cannot make {n_folds} folds from {n_rows} {unit}: lower cv.folds")


def _warn_rare(y: np.ndarray, n_folds: int, warn: bool = True) -> np.ndarray:
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts < n_folds]
    if len(rare) and warn:
        log.warning(
            "%d class(es) have fewer than %d rows (%s); they cannot appear in every fold",
            len(rare),
            n_folds,
            ", ".join(map(str, rare[:5])),
        )
    return counts


def _assign(splits, n_rows: int) -> np.ndarray:
    folds = np.empty(n_rows, dtype=np.int64)
    for fold, (_, valid) in enumerate(splits):
        folds[valid] = fold
    return folds


def make_folds(y: np.ndarray, n_folds: int, seed: int, *, warn_rare: bool = True) -> np.ndarray:
    """Return a fold number (0..n_folds-1) per row.

    Stratified by ``y``. Classes with fewer rows than folds are spread over as many folds
    as they have rows (they then lack from some training folds; models handle that), with a
    logged warning unless ``warn_rare`` is false.
    """
    from sklearn.model_selection import KFold, StratifiedKFold  # on use: fold_rows needs no sklearn

    y = np.asarray(y)
    _check_rows(len(y), n_folds)
    counts = _warn_rare(y, n_folds, warn_rare)
    if counts.max() < n_folds:  # StratifiedKFold refuses when every class is rare
        return _assign(KFold(n_folds, shuffle=True, random_state=seed).split(y), len(y))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return _assign(list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(y, y)), len(y))


def make_group_folds(
    y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, *, warn_rare: bool = True
) -> np.ndarray:
    """Folds that never split a group, as stratified by ``y`` as the groups allow.

    Groups are assigned greedily (:func:`_greedy_group_folds`); rare classes are handled as in
    :func:`make_folds`. Every row a singleton group gives plain stratified folds.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} entries for {len(y)} rows")
    n_groups = len(np.unique(groups))
    _check_rows(n_groups, n_folds, unit="groups")
    if n_groups == len(y):
        return make_folds(y, n_folds, seed, warn_rare=warn_rare)
    counts = _warn_rare(y, n_folds, warn_rare)
    stratify = y if counts.max() >= n_folds else np.zeros(len(y), dtype=np.int64)
    return _greedy_group_folds(stratify, groups, n_folds, seed)


def _greedy_group_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Stratified group folds in O(rows): groups of two or more rows, largest first (ties in
    seeded random order), each go to the fold whose share of the group's classes is least
    filled; then every class's single rows fill the folds up to equal counts (water-filling,
    seeded). ``StratifiedGroupKFold`` scores every fold for every group: too slow for the dozen
    candidates ``cv.strategy: auto`` builds at Kaggle sizes (docs/cv.md measures both)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    g = np.unique(groups, return_inverse=True)[1]
    yi = np.unique(y, return_inverse=True)[1]
    n_classes, sizes = int(yi.max()) + 1, np.bincount(g)
    target = np.bincount(yi, minlength=n_classes) / n_folds  # rows per class and fold
    filled = np.zeros((n_folds, n_classes))
    fold_of_group = np.full(len(sizes), -1, dtype=np.int64)
    multi = np.flatnonzero(sizes > 1)
    multi = multi[rng.permutation(len(multi))]
    multi = multi[np.argsort(-sizes[multi], kind="stable")]
    in_multi = sizes[g] > 1
    per_group = sp.csr_matrix(
        (np.ones(int(in_multi.sum())), (g[in_multi], yi[in_multi])), shape=(len(sizes), n_classes)
    )
    per_group.sum_duplicates()
    for group in multi:
        start, stop = per_group.indptr[group], per_group.indptr[group + 1]
        cols, counts = per_group.indices[start:stop], per_group.data[start:stop]
        cost = ((filled[:, cols] + counts) / target[cols]) @ counts + 1e-9 * filled.sum(axis=1)
        fold = int(np.argmin(cost))
        fold_of_group[group] = fold
        filled[fold, cols] += counts
    folds = np.where(in_multi, fold_of_group[g], -1)
    jitter = rng.random(n_folds) * 1e-3  # which fold gets a class's odd row: seeded
    for c in range(n_classes):
        rows = np.flatnonzero((~in_multi) & (yi == c))
        if not len(rows):
            continue
        rows = rows[rng.permutation(len(rows))]
        # the len(rows) lowest fill levels over all folds: fold f's k-th new row sits at filled+k
        levels = filled[:, c, None] + np.arange(1, len(rows) + 1)[None, :] + jitter[:, None]
        lowest = np.argpartition(levels.ravel(), len(rows) - 1)[: len(rows)]
        per_fold = np.bincount(lowest // len(rows), minlength=n_folds)
        folds[rows] = np.repeat(np.arange(n_folds), per_fold)
        filled[:, c] += per_fold
    return folds


def make_time_folds(order: np.ndarray, n_folds: int) -> np.ndarray:
    """Ordered folds: rows sorted by ``order`` cut into ``n_folds + 1`` equal blocks.

    The first block gets :data:`NOT_VALIDATED` (it only trains); block ``k + 1`` is fold ``k``,
    validated by a model trained on every earlier block. Ties keep file order.
    """
    order = np.asarray(order)
    _check_rows(len(order), n_folds + 1)
    folds = np.empty(len(order), dtype=np.int64)
    for block, rows in enumerate(np.array_split(np.argsort(order, kind="stable"), n_folds + 1)):
        folds[rows] = block - 1
    return folds


def fold_rows(fold_of_row: np.ndarray, fold: int, ordered: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices of ``fold``: every other fold, or (``ordered``) the
    earlier ones only."""
    fold_of_row = np.asarray(fold_of_row)
    train = fold_of_row < fold if ordered else fold_of_row != fold
    return np.flatnonzero(train), np.flatnonzero(fold_of_row == fold)

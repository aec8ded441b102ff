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

    Uses scikit-learn's ``StratifiedGroupKFold``; rare classes are handled as in
    :func:`make_folds`. Every row a singleton group gives plain stratified folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} entries for {len(y)} rows")
    n_groups = len(np.unique(groups))
    _check_rows(n_groups, n_folds, unit="groups")
    if n_groups == len(y):
        return make_folds(y, n_folds, seed, warn_rare=warn_rare)
    counts = _warn_rare(y, n_folds, warn_rare)
    splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
    stratify = y if counts.max() >= n_folds else np.zeros(len(y))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return _assign(list(splitter.split(y, stratify, groups)), len(y))


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

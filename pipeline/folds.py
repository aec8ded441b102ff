"""Seeded stratified folds, robust to classes rarer than the number of folds."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

log = logging.getLogger(__name__)


def make_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Return a fold number (0..n_folds-1) per row.

    Stratified by ``y``. Classes with fewer rows than folds are spread over as many folds
    as they have rows (they then lack from some training folds; models handle that).
    """
    y = np.asarray(y)
    if len(y) < n_folds:
        raise ValueError(f"cannot make {n_folds} folds from {len(y)} rows: lower cv.folds")
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts < n_folds]
    if len(rare):
        log.warning("%d class(es) have fewer than %d rows (%s); they cannot appear in every fold",
                    len(rare), n_folds, ", ".join(map(str, rare[:5])))
    folds = np.empty(len(y), dtype=np.int64)
    if counts.max() < n_folds:  # StratifiedKFold refuses when every class is rare
        splitter = KFold(n_folds, shuffle=True, random_state=seed).split(y)
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            splitter = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(y, y))
    for fold, (_, valid) in enumerate(splitter):
        folds[valid] = fold
    return folds

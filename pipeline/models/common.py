"""What every model family shares: the trainer's hand-off types (:class:`Fold` in,
:class:`FoldResult` out) and the full class-column layout of predicted probabilities.

Model families (:mod:`.tfidf`, :mod:`.rnn`, :mod:`.transformer`) import shared helpers from
here and from :mod:`.keras_training`, never from each other, so a change to one family reruns
only its own DVC stages (an import-linter contract in ``make lint``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def expand_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Place the columns of classes seen in training into a full ``n_classes`` matrix."""
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(seen, dtype=int)] = proba
    return full


@dataclass(frozen=True)
class Fold:
    """One unit of a trainer's work: fit on ``train_idx``, predict ``valid_idx`` and the test
    rows. An empty ``valid_idx`` is the refit on every train row (test predictions only)."""

    train_idx: np.ndarray
    valid_idx: np.ndarray
    tag: str = ""  # what the trainer's log lines start with, e.g. "train competition lstm fold 0"


@dataclass(frozen=True)
class FoldResult:
    """What a trainer returns for one :class:`Fold`."""

    valid_proba: np.ndarray  # (len(valid_idx), n_classes)
    test_proba: np.ndarray  # (test rows, n_classes)
    epochs: tuple[dict, ...] = ()  # per-epoch losses of Keras trainers (the report plots them)

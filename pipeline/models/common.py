"""What every model family shares: the full class-column layout of predicted probabilities.

Model families (:mod:`.tfidf`, :mod:`.rnn`, :mod:`.transformer`) import shared helpers from
here and from :mod:`.keras_training`, never from each other, so a change to one family reruns
only its own DVC stages (an import-linter contract in ``make lint``).
"""

from __future__ import annotations

import numpy as np


def expand_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Place the columns of classes seen in training into a full ``n_classes`` matrix."""
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(seen, dtype=int)] = proba
    return full

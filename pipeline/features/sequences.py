"""Token-id sequences as the RNNs read them: the ids the vocabulary reserves, and the stored
variable-length rows (flat ids + lengths, as ``tokenize`` writes them) cut and padded into a
fixed-width matrix.
"""

from __future__ import annotations

import numpy as np

PAD, OOV = 0, 1  # id 0 pads, id 1 stands for every token outside the vocabulary


def effective_length(seq_len: int, train_lengths: np.ndarray, quantile: float = 0.95) -> int:
    """``seq_len``, capped at the ``quantile`` of train lengths (rounded up to a multiple of 8).

    Padding short texts (tweets, statements) to 300 steps would only cost time: a recurrent
    layer runs once per step whatever the content.
    """
    if not len(train_lengths):
        return seq_len
    cap = int(np.ceil(np.quantile(train_lengths, quantile) / 8.0) * 8)
    return int(min(seq_len, max(8, cap)))


def to_matrix(
    values: np.ndarray, lengths: np.ndarray, seq_len: int, truncate: str, vocab_size: int | None = None
) -> np.ndarray:
    """Pre-padded ``(rows, seq_len)`` id matrix, as Keras' ``pad_sequences`` lays it out.

    ``truncate``: keep the ``head``, the ``tail``, or ``head_tail`` (half of each) of longer
    rows. Ids ``>= vocab_size`` (rarer tokens) become OOV.
    """
    if truncate not in ("head", "tail", "head_tail"):
        raise ValueError(f"truncate must be 'head', 'tail' or 'head_tail', got {truncate!r}")
    out = np.zeros((len(lengths), seq_len), dtype=np.int32)
    ends = np.cumsum(lengths)
    half = seq_len // 2
    for i, (end, length) in enumerate(zip(ends, lengths)):
        row = values[end - length : end]
        if length > seq_len:
            if truncate == "head":
                row = row[:seq_len]
            elif truncate == "tail":
                row = row[-seq_len:]
            else:
                row = np.concatenate([row[:half], row[-(seq_len - half) :]])
        if len(row):
            out[i, seq_len - len(row) :] = row
    if vocab_size is not None:
        out[out >= vocab_size] = OOV
    return out

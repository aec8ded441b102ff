"""The Keras (and keras-hub) private API the pipeline uses, in one place.

Each helper names what it relies on; a Keras upgrade that drops it shows up here (and in
``tests/test_private_api.py``, which allows private names in no other file).
"""

from __future__ import annotations

import numpy as np


def build_training_state(model, x: np.ndarray, y: np.ndarray) -> None:
    """Create a compiled model's optimizer and metric variables now (``Model._symbolic_build``,
    Keras 3). Created inside the first train step instead, they make TensorFlow trace that
    step twice (a second per model). The weights are the same either way."""
    if hasattr(model, "_symbolic_build"):
        model._symbolic_build(data_batch=(x, y, None))


def set_feedforward_activation(layer, activation) -> None:
    """Replace the activation of a keras-hub ``TransformerEncoder``'s intermediate dense layer
    (``_feedforward_intermediate_dense``; keras-hub exposes only the activation's name)."""
    layer._feedforward_intermediate_dense.activation = activation

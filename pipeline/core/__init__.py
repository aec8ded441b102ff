"""The core every stage stands on: errors, atomic I/O, logging, secrets, typed params, tasks,
stage output files, worker processes, metrics and the Keras private API in one place.

Nothing here imports a stage, a model family or the CV machinery (a layer contract in
``pyproject.toml``, checked by ``lint-imports``), and nothing imports TensorFlow at module level.
"""

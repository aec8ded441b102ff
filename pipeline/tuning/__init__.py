"""The machinery of the ``tune`` stage: the Optuna study and its storage (:mod:`.study`), one
trial in a worker process (:mod:`.trials`), the chosen configuration (:mod:`.tuned`) and the
study's charts (:mod:`.plots`).
"""

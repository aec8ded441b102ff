"""Reproducible pipeline for Kaggle text-classification competitions.

Stages (each a ``python -m pipeline <stage>`` subcommand called from ``dvc.yaml``):
fingerprint → fetch → prepare → tokenize → embed → encode → tune → train → ensemble →
report → summary → submissions; ``submit`` sends a file to Kaggle by hand.
"""

__version__ = "0.1.0"

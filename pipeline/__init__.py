"""Reproducible pipeline for Kaggle text-classification competitions.

Stages (each a ``python -m pipeline <stage>`` subcommand called from ``dvc.yaml``):
fetch → prepare → tokenize → tune → train → ensemble → report.
"""

__version__ = "0.1.0"

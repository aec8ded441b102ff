"""Scores computed from class probabilities; one place for every metric name."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score


def score(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    """One metric (``accuracy``, ``f1_macro``, ``f1_weighted``, ``log_loss``, ``roc_auc``)."""
    pred = proba.argmax(axis=1)
    if metric == "accuracy":
        return float(accuracy_score(y, pred))
    if metric in ("f1_macro", "f1_weighted"):
        return float(f1_score(y, pred, average=metric[3:], zero_division=0))
    if metric == "log_loss":
        clipped = np.clip(proba, 1e-7, 1)
        return float(
            log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=np.arange(proba.shape[1]))
        )
    if metric == "roc_auc":
        return float(roc_auc_score(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    raise ValueError(f"unknown metric {metric!r}")


def all_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Every metric that applies (ROC AUC only for binary tasks)."""
    names = ["accuracy", "f1_macro", "f1_weighted", "log_loss"]
    if proba.shape[1] == 2:
        names.append("roc_auc")
    return {name: round(score(name, y, proba), 6) for name in names}

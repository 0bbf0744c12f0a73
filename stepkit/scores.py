"""A classifier's AUC and log loss on plain arrays, without a model library: the machinery
(`mlops monitor` on labelled traffic) computes them too, and may not import scikit-learn
(stepkit.metrics does, for its curves)."""

from __future__ import annotations

import numpy as np

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] for the log loss


def auc(y: np.ndarray, prob: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); 0.5 without both classes."""
    y = np.asarray(y).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return 0.5
    prob = np.asarray(prob, dtype=float)
    order = np.argsort(prob, kind="mergesort")
    _, first, counts = np.unique(prob[order], return_index=True, return_counts=True)
    ranks = np.empty(len(prob))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(y: np.ndarray, prob: np.ndarray) -> float:
    p = np.clip(np.asarray(prob, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

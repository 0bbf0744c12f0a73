"""Calibration of a binary classifier's gate and smoke floor from a baseline fit.

Pure functions for `mlops init --task binary_classification` (the command lives with
`mlops init`, mlops/cli/init.py; it reads the file, splits it like the pipeline, fits
the template's XGBoost on the training rows and calls `calibrate_classification` with
the held-out labels and probabilities). The same reasoning as for regression: the
thresholds come from the fork's own data, with the figures behind them, and a model no
better than the naive one (always the training share of positives) must fail the gate.

- min_auc: the bottom of the baseline's 95 % bootstrap AUC interval less 0.02, and
  above 0.5 (the naive model's AUC)
- max_log_loss: a fifth above the top of the baseline's log-loss interval, and below
  the naive model's log loss (else halfway between them, with a warning)
- min_accuracy (smoke test): the accuracy `smoke_rows` held-out rows fall below in
  1 % of draws, less 0.05
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BOOTSTRAP_ROUNDS = 1_000
SMALL_TEST_ROWS = 200
EPS = 1e-15


@dataclass(frozen=True)
class ClassificationCalibration:
    test_rows: int
    baseline: dict  # auc, log_loss, accuracy, and their 95 % intervals
    naive: dict  # the constant predictor of the training prevalence
    min_auc: float
    max_log_loss: float
    min_accuracy: float
    smoke_rows: int
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def gate(self) -> dict:
        """The `gate:` values for the written config."""
        return {"min_auc": self.min_auc, "max_log_loss": self.max_log_loss}


def auc(y: np.ndarray, prob: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); 0.5 without both classes."""
    y = np.asarray(y).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return 0.5
    order = np.argsort(prob, kind="mergesort")
    ranks = np.empty(len(prob))
    sorted_prob = np.asarray(prob)[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_prob, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(y: np.ndarray, prob: np.ndarray) -> float:
    p = np.clip(np.asarray(prob, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def accuracy(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(prob) >= threshold) == np.asarray(y).astype(bool)))


def _round(value: float, down: bool, digits: int = 3) -> float:
    scale = 10**digits
    return (math.floor if down else math.ceil)(value * scale) / scale


def bootstrap_intervals(y: np.ndarray, prob: np.ndarray, seed: int = 0) -> dict:
    """95 % intervals of AUC and log loss over resamples of the held-out rows."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), (BOOTSTRAP_ROUNDS, len(y)))
    aucs = np.array([auc(y[d], prob[d]) for d in draws])
    losses = np.array([log_loss(y[d], prob[d]) for d in draws])
    return {
        "auc_interval": [float(v) for v in np.percentile(aucs, [2.5, 97.5])],
        "log_loss_interval": [float(v) for v in np.percentile(losses, [2.5, 97.5])],
    }


def smoke_accuracy_floor(
    y: np.ndarray, prob: np.ndarray, rows: int, threshold: float = 0.5, seed: int = 0
) -> float:
    """The accuracy that `rows` random held-out rows fall below in 1 % of draws, less 0.05."""
    rng = np.random.default_rng(seed)
    right = (np.asarray(prob) >= threshold) == np.asarray(y).astype(bool)
    n = min(rows, len(y))
    draws = np.array([rng.choice(len(y), n, replace=False) for _ in range(500)])
    return max(0.0, _round(float(np.percentile(right[draws].mean(axis=1), 1)) - 0.05, down=True))


def calibrate_classification(
    y_test: np.ndarray,
    prob_test: np.ndarray,
    train_prevalence: float,
    smoke_rows: int,
    threshold: float = 0.5,
) -> ClassificationCalibration:
    """Gate thresholds and the smoke floor from a baseline's held-out probabilities."""
    y = np.asarray(y_test).astype(int)
    prob = np.asarray(prob_test, dtype=float)
    if len(np.unique(y)) != 2:
        raise ValueError("the held-out rows need both classes to calibrate a classifier")
    baseline = {
        "auc": auc(y, prob),
        "log_loss": log_loss(y, prob),
        "accuracy": accuracy(y, prob, threshold),
        **bootstrap_intervals(y, prob),
    }
    prior = np.full(len(y), min(max(train_prevalence, EPS), 1 - EPS))
    naive = {
        "auc": 0.5,
        "log_loss": log_loss(y, prior),
        "accuracy": accuracy(y, prior, threshold),
    }
    warnings = []
    min_auc = _round(baseline["auc_interval"][0] - 0.02, down=True)
    max_log_loss = _round(baseline["log_loss_interval"][1] * 1.2, down=False)
    if max_log_loss >= naive["log_loss"] or min_auc <= 0.5:
        max_log_loss = _round((baseline["log_loss"] + naive["log_loss"]) / 2, down=False)
        min_auc = max(min_auc, _round((baseline["auc"] + 0.5) / 2, down=True))
        warnings.append(
            "the baseline is barely better than always answering the training share of "
            "positives: the gate is set halfway between them; look at the features first"
        )
    if len(y) < SMALL_TEST_ROWS:
        low, high = baseline["auc_interval"]
        warnings.append(
            f"only {len(y)} held-out rows: the test AUC's 95 % interval is {low:.3f} to "
            f"{high:.3f}, so the gate cannot tell apart models closer than that"
        )
    rows = min(smoke_rows, len(y))
    return ClassificationCalibration(
        test_rows=len(y),
        baseline=baseline,
        naive=naive,
        min_auc=min_auc,
        max_log_loss=max_log_loss,
        min_accuracy=smoke_accuracy_floor(y, prob, rows, threshold),
        smoke_rows=rows,
        warnings=tuple(warnings),
    )


def fit_baseline_classifier(
    features: pd.DataFrame,
    labels: np.ndarray,
    categorical: list[str],
    hyperparameters: dict,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Held-out probabilities of XGBoost (binary:logistic, native categoricals) trained with
    the template's hyperparameters on the `splits` (train, validation, test row indices)."""
    import xgboost as xgb

    frame = features.copy()
    for name in categorical:
        frame[name] = frame[name].astype(str).astype("category")
    train, validation, test = splits
    params = {
        k: v for k, v in hyperparameters.items() if k not in ("num_round", "early_stopping_rounds")
    }
    params.update(objective="binary:logistic", eval_metric="logloss", nthread=2)

    def matrix(rows: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(frame.iloc[rows], label=labels[rows], enable_categorical=True)

    booster = xgb.train(
        params,
        matrix(train),
        num_boost_round=int(hyperparameters.get("num_round", 1000)),
        evals=[(matrix(validation), "validation")],
        early_stopping_rounds=int(hyperparameters.get("early_stopping_rounds", 50)),
        verbose_eval=False,
    )
    return booster.predict(matrix(test), iteration_range=(0, booster.best_iteration + 1))

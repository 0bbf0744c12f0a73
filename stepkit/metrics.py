"""Model quality in SageMaker's format, computed once: by the evaluate step, for everyone.

`evaluation.json` follows SageMaker's model quality format, which the Model Registry
shows and the pipeline's ConditionStep reads with JsonGet:

- regression: `{"regression_metrics": {"mse": {"value", "standard_deviation"}, "rmse",
  "mae", "r2"}}`;
- binary classification: `{"binary_classification_metrics": {...}}` with the confusion
  matrix (actual labels outside, predicted inside), accuracy, precision, recall,
  F0.5/F1/F2 and their best-constant baselines, rates, ROC and precision-recall curves,
  AUC, and `log_loss` in the same shape.

Beside them: 95 % bootstrap intervals of the task's gate metrics over the rows
(`intervals`), the metrics of the naive predictor (the training mean, or the training
share of positives: `naive`), and the champion check's limit. The PR report, the model
card and `mlops init`'s calibration read these; nothing recomputes them.
"""

from __future__ import annotations

import sys

import numpy as np

from stepkit.scores import EPS, auc, log_loss

__all__ = ["auc", "log_loss"]  # here too: the evaluate step and tests import them from here

CLASSIFICATION = "binary_classification"
SECTIONS = {"regression": "regression_metrics", CLASSIFICATION: "binary_classification_metrics"}
# The metric the champion comparison is on, and the name of its limit in evaluation.json.
PRIMARY = {"regression": "mse", CLASSIFICATION: "log_loss"}
LIMITS = {"regression": "champion_mse_limit", CLASSIFICATION: "champion_log_loss_limit"}
INTERVAL_METRICS = {"regression": ("mse", "r2"), CLASSIFICATION: ("auc", "log_loss")}
CURVE_POINTS = 101  # ROC and precision-recall curves are thinned to at most this many points
BOOTSTRAP_ROUNDS = 1_000
DRAWN_VALUES = 20_000_000  # rounds x rows drawn in all: fewer rounds past 20k rows
BLOCK_VALUES = 4_000_000  # rounds x rows drawn at once (~32 MB an array; ~5 arrays live)


def _value(value: float, std: float | str = "NaN") -> dict:
    return {"value": float(value), "standard_deviation": std}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MSE, RMSE, MAE, R² with SageMaker's {"value", "standard_deviation"} shape."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    errors = y_pred - y_true
    squared = errors**2
    mse = float(squared.mean())
    total = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float(squared.sum()) / total if total > 0 else 0.0
    return {
        "mse": _value(mse, float(squared.std())),
        "rmse": _value(np.sqrt(mse)),
        "mae": _value(np.abs(errors).mean(), float(np.abs(errors).std())),
        "r2": _value(r2),
    }


def _thin(*curves: np.ndarray) -> list[list[float]]:
    """At most CURVE_POINTS points of each curve, always keeping both ends."""
    n = len(curves[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [[float(v) for v in curve[keep]] for curve in curves]


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """SageMaker's binary_classification_metrics for probabilities `scores`, plus log_loss."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=float)
    predicted = (scores >= threshold).astype(int)
    tp = int(((predicted == 1) & (y_true == 1)).sum())
    tn = int(((predicted == 0) & (y_true == 0)).sum())
    fp = int(((predicted == 1) & (y_true == 0)).sum())
    fn = int(((predicted == 0) & (y_true == 1)).sum())
    n = len(y_true)
    positives, negatives = tp + fn, tn + fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives if positives else 0.0
    prevalence = positives / n if n else 0.0  # the best constant classifier says "positive"
    both = positives and negatives
    fpr, tpr, _ = roc_curve(y_true, scores) if both else (np.zeros(1), np.zeros(1), None)
    precisions, recalls, _ = precision_recall_curve(y_true, scores)
    clipped = np.clip(scores, EPS, 1 - EPS)
    row_loss = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped))
    fpr, tpr = _thin(fpr, tpr)
    precisions, recalls = _thin(precisions, recalls)
    metrics = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "recall": _value(recall),
        "precision": _value(precision),
        "accuracy": _value((tp + tn) / n if n else 0.0),
        "recall_best_constant_classifier": _value(1.0),
        "precision_best_constant_classifier": _value(prevalence),
        "accuracy_best_constant_classifier": _value(prevalence),
        "true_positive_rate": _value(recall),
        "true_negative_rate": _value(tn / negatives if negatives else 0.0),
        "false_positive_rate": _value(fp / negatives if negatives else 0.0),
        "false_negative_rate": _value(fn / positives if positives else 0.0),
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": fpr,
            "true_positive_rates": tpr,
        },
        "precision_recall_curve": {"precisions": precisions, "recalls": recalls},
        "auc": _value(auc(y_true, scores) if both else 0.5),
    }
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        metrics[name] = _value(_fbeta(precision, recall, beta))
        metrics[f"{name}_best_constant_classifier"] = _value(_fbeta(prevalence, 1.0, beta))
    metrics["log_loss"] = _value(log_loss(y_true, scores), float(row_loss.std()))
    return metrics


def task_metrics(task: str, y: np.ndarray, predictions: np.ndarray, threshold: float) -> dict:
    """`{"<task section>": {...}}` for the rows."""
    if task == CLASSIFICATION:
        return {SECTIONS[task]: classification_metrics(y, predictions, threshold)}
    return {SECTIONS[task]: regression_metrics(y, predictions)}


def _bootstrap_values(task: str, ys: np.ndarray, ps: np.ndarray) -> dict[str, np.ndarray]:
    """The interval metrics of each resample (a row of `ys`/`ps` per round)."""
    if task == CLASSIFICATION:
        return {
            "auc": np.array([auc(y, p) for y, p in zip(ys, ps, strict=True)]),
            "log_loss": np.array([log_loss(y, p) for y, p in zip(ys, ps, strict=True)]),
        }
    residual = ((ys - ps) ** 2).sum(axis=1)
    total = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    return {
        "mse": residual / ys.shape[1],
        "r2": 1.0 - residual / np.where(total > 0, total, np.nan),
    }


def bootstrap_intervals(task: str, y, predictions, seed: int = 0) -> dict[str, list[float]]:
    """95 % intervals of the task's gate metrics over resamples (with replacement) of the rows."""
    y, predictions = np.asarray(y, dtype=float), np.asarray(predictions, dtype=float)
    if len(y) < 2:
        return {}
    rounds = int(min(BOOTSTRAP_ROUNDS, max(100, DRAWN_VALUES // len(y))))
    # A block of rounds at a time, at most BLOCK_VALUES drawn rows: past 40k rows the 100
    # rounds at least would otherwise hold 100 x rows indices and values at once (5 x 1.6
    # GB at 2M held-out rows). The draws follow one another from one generator.
    rng, per_block = np.random.default_rng(seed), max(1, BLOCK_VALUES // len(y))
    blocks = []
    for start in range(0, rounds, per_block):
        draws = rng.integers(0, len(y), (min(per_block, rounds - start), len(y)))
        blocks.append(_bootstrap_values(task, y[draws], predictions[draws]))
    values = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
    return {
        name: [float(v) for v in np.nanpercentile(v_all, [2.5, 97.5])]
        for name, v_all in values.items()
        if np.isfinite(v_all).any()
    }


def naive_metrics(task: str, y: np.ndarray, constant: float, threshold: float) -> dict:
    """The task's metrics of always answering `constant` (the training mean, or the
    training share of positives): what a model must beat."""
    y = np.asarray(y, dtype=float)
    flat = np.full(len(y), constant)
    if task == CLASSIFICATION:
        return {
            "auc": 0.5,
            "log_loss": log_loss(y, flat),
            "accuracy": float(np.mean((flat >= threshold) == y.astype(bool))),
            "constant": float(constant),
        }
    plain = {k: v["value"] for k, v in regression_metrics(y, flat).items()}
    return {**plain, "constant": float(constant)}


def champion_limit(task: str, champion: dict | None, max_regression_pct: float) -> float:
    """The highest primary metric the champion check allows (champion's x (1 + pct/100)), or
    the largest float when no champion was scored: a SageMaker ConditionStep, which has no
    arithmetic, compares against this number with JsonGet."""
    if not champion:
        return sys.float_info.max
    value = champion[SECTIONS[task]][PRIMARY[task]]["value"]
    return value * (1.0 + max_regression_pct / 100.0)

"""Calibration of a binary classifier's gate and smoke floor from the evaluate step's outputs.

Pure functions for `mlops init --task binary_classification` (the command lives with
`mlops init`, mlops/cli/init.py; it runs the project's own steps on the data and hands
over what evaluate wrote: evaluation.json and predictions.csv). The same reasoning as
for regression: the thresholds come from the fork's own data and model, with the
figures behind them, and a model no better than the naive one (always the training
share of positives) must fail the gate.

- min_auc: the bottom of the model's 95 % bootstrap AUC interval less 0.02, and
  above 0.5 (the naive model's AUC)
- max_log_loss: a fifth above the top of the model's log-loss interval, and below
  the naive model's log loss (else halfway between them, with a warning)
- min_accuracy (smoke test): the accuracy `smoke_rows` held-out rows fall below in
  1 % of draws, less 0.05, and above always answering the majority label; when 20 rows
  cannot tell the model from that, the smoke test takes more rows (all held-out rows at
  most)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops.core.registry import metrics_from_evaluation
from stepkit.splits import PREDICTION, Y

SMALL_TEST_ROWS = 200  # below this the held-out AUC moves by more than the gate decides
# "Barely better" than the naive model: the AUC interval reaches this, or the log loss is
# within this share of the naive model's.
BARELY_AUC = 0.55
BARELY_LOG_LOSS = 0.95
NAIVE_FIGURES = ("auc", "log_loss", "accuracy")


@dataclass(frozen=True)
class ClassificationCalibration:
    test_rows: int
    baseline: dict  # auc, log_loss, accuracy, and the 95 % intervals of the first two
    naive: dict  # the constant predictor of the training share of positives
    min_auc: float
    max_log_loss: float
    min_accuracy: float
    smoke_rows: int
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def gate(self) -> dict:
        """The `gate:` values for the written config."""
        return {"min_auc": self.min_auc, "max_log_loss": self.max_log_loss}


def _round(value: float, down: bool, digits: int = 3) -> float:
    scale = 10**digits
    return (math.floor if down else math.ceil)(value * scale) / scale


def smoke_accuracy_floor(
    y: np.ndarray, prob: np.ndarray, rows: int, threshold: float = 0.5, seed: int = 0
) -> float:
    """The accuracy that `rows` random held-out rows fall below in 1 % of draws, less 0.05."""
    rng = np.random.default_rng(seed)
    right = (np.asarray(prob) >= threshold) == np.asarray(y).astype(bool)
    n = min(rows, len(y))
    draws = np.array([rng.choice(len(y), n, replace=False) for _ in range(500)])
    return max(0.0, _round(float(np.percentile(right[draws].mean(axis=1), 1)) - 0.05, down=True))


def smoke_rows_and_floor(
    y: np.ndarray, prob: np.ndarray, rows: int, naive_accuracy: float, threshold: float = 0.5
) -> tuple[int, float, str | None]:
    """The fewest smoke rows (`rows`, doubled up to all held-out rows) whose accuracy floor
    beats always answering the majority label, that floor, and a warning when none does."""
    n = min(rows, len(y))
    while True:
        floor = smoke_accuracy_floor(y, prob, n, threshold)
        if floor > naive_accuracy:
            return n, floor, None
        if n >= len(y):
            break
        n = min(2 * n, len(y))
    # All held-out rows, always the same ones: their accuracy is the model's; just above
    # the majority's still passes when the model beats it.
    right = float(np.mean((np.asarray(prob) >= threshold) == np.asarray(y).astype(bool)))
    above = _round(naive_accuracy + 0.001, down=False)
    if right >= above:
        return n, above, None
    return (
        n,
        floor,
        (
            f"the baseline's accuracy {right:.3f} at threshold {threshold} does not beat always "
            f"answering the majority label ({naive_accuracy:.3f}): the smoke floor cannot either"
        ),
    )


def calibrate_classification(
    evaluation: dict, predictions: pd.DataFrame, smoke_rows: int, threshold: float = 0.5
) -> ClassificationCalibration:
    """Gate thresholds and the smoke floor from evaluate's evaluation.json (the model's
    held-out metrics, their `intervals`, the `naive` model's) and predictions.csv (the
    held-out 0/1 labels and probabilities, for the smoke draws)."""
    metrics, intervals = metrics_from_evaluation(evaluation), evaluation["intervals"]
    baseline = {
        "auc": metrics["auc"],
        "log_loss": metrics["log_loss"],
        "accuracy": metrics["accuracy"],
        "auc_interval": tuple(intervals["auc"]),
        "log_loss_interval": tuple(intervals["log_loss"]),
    }
    naive = {name: evaluation["naive"][name] for name in NAIVE_FIGURES}
    warnings = []
    min_auc = _round(baseline["auc_interval"][0] - 0.02, down=True)
    max_log_loss = _round(baseline["log_loss_interval"][1] * 1.2, down=False)
    if max_log_loss >= naive["log_loss"] or min_auc <= 0.5:
        # The interval reaches the naive model's figure (a wide one on few rows, or a weak
        # model): the limit goes halfway, so that the naive model still fails the gate.
        max_log_loss = _round((baseline["log_loss"] + naive["log_loss"]) / 2, down=False)
        min_auc = max(min_auc, _round((baseline["auc"] + 0.5) / 2, down=True))
    barely = barely_better(baseline, naive)
    if barely:
        warnings.append(barely)
    test_rows = int(evaluation["rows"])
    if test_rows < SMALL_TEST_ROWS:
        low, high = baseline["auc_interval"]
        warnings.append(
            f"only {test_rows} held-out rows: the test AUC's 95 % interval is {low:.3f} to "
            f"{high:.3f}, so the gate cannot tell apart models closer than that"
        )
    y, prob = predictions[Y].to_numpy(float), predictions[PREDICTION].to_numpy(float)
    rows, floor, weak = smoke_rows_and_floor(y, prob, smoke_rows, naive["accuracy"], threshold)
    if weak:
        warnings.append(weak)
    return ClassificationCalibration(
        test_rows=test_rows,
        baseline=baseline,
        naive=naive,
        min_auc=min_auc,
        max_log_loss=max_log_loss,
        min_accuracy=floor,
        smoke_rows=rows,
        warnings=tuple(warnings),
    )


def barely_better(baseline: dict, naive: dict) -> str | None:
    """The warning that the model is barely better than the naive one, only when it is: its
    AUC interval reaches 0.55, or its log loss is within 5 % of the naive model's."""
    low = baseline["auc_interval"][0]
    if low <= BARELY_AUC:
        return (
            f"the baseline is barely better than chance: its AUC's 95 % interval reaches "
            f"{low:.3f}; look at the features before trusting the gate"
        )
    if baseline["log_loss"] >= BARELY_LOG_LOSS * naive["log_loss"]:
        return (
            f"the baseline's log loss {baseline['log_loss']:.4f} is barely better than always "
            f"answering the training share of positives ({naive['log_loss']:.4f}), though it "
            f"ranks well (AUC {baseline['auc']:.3f}): its probabilities are poorly calibrated"
        )
    return None

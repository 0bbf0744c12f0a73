"""How far held-out metrics can be trusted: a warning when there are too few held-out rows
for a gate to mean much, and bootstrap intervals for `mlops init`'s calibration fit (a
pipeline run's intervals are the evaluate step's, in evaluation.json: stepkit.metrics)."""

from __future__ import annotations

import numpy as np

SMALL_TEST_ROWS = 200  # below this the gate's figures move by more than they decide
WARNED_METRICS = ("mse", "auc")  # the warning names the first of these the intervals hold
BOOTSTRAP_ROUNDS = 1_000
MAX_DRAWN_VALUES = 20_000_000  # rounds x rows held in memory at once (~160 MB of floats)


def bootstrap_intervals(y, pred, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % intervals of MSE and R² over resamples (with replacement) of the rows."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    rounds = int(min(BOOTSTRAP_ROUNDS, max(100, MAX_DRAWN_VALUES // max(len(y), 1))))
    draws = np.random.default_rng(seed).integers(0, len(y), (rounds, len(y)))
    ys, ps = y[draws], pred[draws]
    residual = ((ys - ps) ** 2).sum(axis=1)
    total = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    r2 = 1.0 - residual / np.where(total > 0, total, np.nan)
    mse = residual / len(y)
    return {
        "mse": tuple(float(v) for v in np.percentile(mse, [2.5, 97.5])),
        "r2": tuple(float(v) for v in np.nanpercentile(r2, [2.5, 97.5])),
    }


def small_test_warning(rows: int, intervals: dict[str, tuple[float, float]]) -> str | None:
    """A sentence when `rows` are too few to gate on, quoting the interval of a regression's
    MSE or a classifier's AUC; None when the rows are enough or no such interval is known."""
    metric = next((name for name in WARNED_METRICS if name in intervals), None)
    if rows >= SMALL_TEST_ROWS or metric is None:
        return None
    low, high = intervals[metric]
    return (
        f"only {rows} held-out rows: the test {metric.upper()}'s 95 % interval is "
        f"{low:.4g} to {high:.4g}, so the gate cannot tell apart models closer than that"
    )

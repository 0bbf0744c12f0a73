"""How far held-out metrics can be trusted: a warning when there are too few held-out rows
for a gate to mean much. The intervals themselves are the evaluate step's (evaluation.json
"intervals", computed by stepkit.metrics)."""

from __future__ import annotations

SMALL_TEST_ROWS = 200  # below this the gate's figures move by more than they decide
WARNED_METRICS = ("mse", "auc")  # the warning names the first of these the intervals hold


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

"""How far held-out metrics can be trusted: bootstrap intervals (mlops init's calibration),
and the report's interval line and small-held-out-set warning, read off evaluation.json."""

import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

from mlops.core.report import RunRecord, fmt, from_evaluation, render_markdown
from mlops.core.uncertainty import SMALL_TEST_ROWS, small_test_warning
from stepkit import metrics


def predictions(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 20, rows)
    return y, y + rng.normal(0, 5, rows)  # MSE near 25, R² near 0.94


def bootstrap_intervals(y, pred):
    return metrics.bootstrap_intervals("regression", y, pred)


def test_intervals_hold_the_point_estimates_and_narrow_with_more_rows():
    y, pred = predictions(100)
    small = bootstrap_intervals(y, pred)
    point = {k: v["value"] for k, v in metrics.regression_metrics(y, pred).items()}
    assert small["mse"][0] < point["mse"] < small["mse"][1]
    assert small["r2"][0] < point["r2"] < small["r2"][1] <= 1
    big = bootstrap_intervals(*predictions(5000))
    assert big["mse"][0] < 25 < big["mse"][1]
    width = {k: v[1] - v[0] for k, v in small.items()}
    assert all(big[k][1] - big[k][0] < width[k] / 4 for k in width)  # ~1/sqrt(50)
    assert bootstrap_intervals(y, pred) == small  # seeded


def test_small_held_out_sets_are_warned_about():
    intervals = {"mse": (18.0, 33.0), "r2": (0.9, 0.95)}
    warning = small_test_warning(SMALL_TEST_ROWS - 1, intervals)
    assert warning.startswith(f"only {SMALL_TEST_ROWS - 1} held-out rows: the test MSE's")
    assert "18 to 33" in warning
    assert small_test_warning(SMALL_TEST_ROWS, intervals) is None
    auc = small_test_warning(50, {"auc": (0.61, 0.84), "log_loss": (0.4, 0.6)})
    assert "the test AUC's 95 % interval is 0.61 to 0.84" in auc
    assert small_test_warning(50, {}) is None  # nothing known, nothing claimed


def test_the_report_shows_the_evaluate_steps_interval_and_warns_on_few_rows():
    y, pred = predictions(60)
    evaluation = {
        **metrics.task_metrics("regression", y, pred, 0.5),
        "intervals": metrics.bootstrap_intervals("regression", y, pred),
        "rows": len(y),
    }
    report = from_evaluation(RunRecord("r1", Path("/runs/r1"), "registered"), evaluation, ())
    md = render_markdown(report)
    low, high = evaluation["intervals"]["mse"]
    assert f"95 % bootstrap interval over these rows: mse {fmt(low)} to {fmt(high)}" in md
    assert f"⚠️ only 60 held-out rows: the test MSE's 95 % interval is {low:.4g}" in md
    assert "⚠️" not in render_markdown(replace(report, rows=5000))


def test_bootstrap_rounds_drawn_in_blocks_give_the_one_shot_intervals(monkeypatch):
    """Large held-out sets draw their resamples a block at a time (memory stays bounded at
    10M rows): the intervals are those of drawing every round at once."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=5000)
    p = y + rng.normal(size=5000) * 0.3
    monkeypatch.setattr(metrics, "DRAWN_VALUES", 5000 * 100)  # 100 rounds
    monkeypatch.setattr(metrics, "BLOCK_VALUES", 5000 * 7)  # blocks of 7
    tracemalloc.start()
    blocked = metrics.bootstrap_intervals("regression", y, p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20  # all 100 rounds at once: 3 x 100 x 5000 x 8 bytes = 12 MB
    draws = np.random.default_rng(0).integers(0, 5000, (100, 5000))
    values = metrics._bootstrap_values("regression", y[draws], p[draws])
    assert blocked == {
        name: [float(v) for v in np.nanpercentile(v_all, [2.5, 97.5])]
        for name, v_all in values.items()
    }

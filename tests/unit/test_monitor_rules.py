"""The monitoring rules: --since, prediction drift, quality against the version's metrics."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mlops.core import monitor
from mlops.core.errors import UsageError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_parse_since():
    assert monitor.parse_since(None) is None
    assert monitor.parse_since("90m", NOW) == NOW - timedelta(minutes=90)
    assert monitor.parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert monitor.parse_since("2026-11-30T10:00:00", NOW) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    with pytest.raises(UsageError):
        monitor.parse_since("last week", NOW)


def test_prediction_drift_same_vs_shifted():
    rng = np.random.default_rng(1)
    reference = rng.normal(100, 10, 5000)
    same = monitor.prediction_drift(reference, rng.normal(100, 10, 2000), 0.2)
    moved = monitor.prediction_drift(reference, rng.normal(115, 10, 2000), 0.2)
    assert same["psi"] < 0.02 and not same["drifted"]
    assert moved["psi"] > 0.5 and moved["drifted"]


def test_quality_against_version_mse():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    measured = monitor.quality(truth + np.array([1.0, -1.0, 1.0, -1.0]), truth)
    assert (
        measured["mse"] == 1.0 and measured["mae"] == 1.0 and measured["r2"] == pytest.approx(0.2)
    )
    assert not monitor.quality_check(measured, {"mse": 0.9}, 25.0)["violated"]  # limit 1.125
    assert monitor.quality_check(measured, {"mse": 0.7}, 25.0)["violated"]  # limit 0.875


def test_report_status_and_summary():
    empty = monitor.build_report("prod", "ep", "local", None, [], 0, 3, "here")
    assert empty["status"] == "no data"
    assert (
        empty["summary"]
        == "prod: no captured requests to monitor; 3 corrupt capture line(s) skipped"
    )
    bad = {"version": 2, "rows": 500, "violations": ["version 2: feature x drifted"]}
    report = monitor.build_report("prod", "ep", "local", NOW, [bad], 40, 0, "here")
    assert report["status"] == "violation"
    assert "1 violation(s): version 2: feature x drifted" in report["summary"]
    assert "⚠️ violation" in monitor.render_markdown(report)

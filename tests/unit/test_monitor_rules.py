"""The monitoring rules: --since, prediction drift, quality against the version's metrics."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
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
    empty = monitor.build_report("prod", "ep", "local", None, [], 0, 0, "here")
    assert empty["status"] == "no data"
    assert empty["summary"] == "prod: no captured requests to monitor"
    bad = {"version": 2, "rows": 500, "violations": ["version 2: feature x drifted"]}
    report = monitor.build_report("prod", "ep", "local", NOW, [bad], 40, 0, "here")
    assert report["status"] == "violation"
    assert "1 violation(s): version 2: feature x drifted" in report["summary"]
    assert "⚠️ violation" in monitor.render_markdown(report)


@pytest.mark.parametrize(
    ("labels", "positive"),
    [(["yes", "no", "Yes", ""], "yes"), (["True", "false", "TRUE", "NA"], "true"),
     (["1", "0", "1.0", "null"], "1"), (["left", "stayed", "left", " "], None)],
)  # fmt: skip
def test_classifier_labels_in_any_form_the_target_had(tmp_path, labels, positive):
    """Text labels were coerced to numbers, so none joined: '0 labelled requests'."""
    path = tmp_path / "labels.csv"
    ids = [f"r{i}" for i in range(len(labels))]
    pd.DataFrame({"inference_id": ids, "y": labels}).to_csv(path, index=False)
    read = monitor.read_labels(path, "y", task="binary_classification", positive=positive)
    # None: the larger label ("stayed") is positive, as for training
    expected = [0.0, 1.0, 0.0] if positive is None else [1.0, 0.0, 1.0]
    assert read == dict(zip(ids[:3], expected, strict=True))


def test_labels_with_a_third_value_or_without_the_positive_one_are_refused(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"inference_id": ["a", "b", "c"], "y": ["yes", "no", "maybe"]}).to_csv(path)
    with pytest.raises(UsageError, match="3 values"):
        monitor.read_labels(path, "y", task="binary_classification", positive="yes")
    pd.DataFrame({"inference_id": ["a", "b"], "y": ["left", "stayed"]}).to_csv(path)
    with pytest.raises(UsageError, match="not the positive label 'yes'"):
        monitor.read_labels(path, "y", task="binary_classification", positive="yes")


def test_classifier_quality_against_the_versions_auc_log_loss_and_accuracy():
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.4).astype(float)
    good = np.clip(0.2 + 0.6 * truth + rng.normal(0, 0.15, 400), 0.01, 0.99)
    version = {"auc": 0.97, "log_loss": 0.30, "accuracy": 0.92}
    measured = monitor.quality(good, truth, "binary_classification", 0.5)
    assert measured["auc"] > 0.95 and measured["accuracy"] > 0.9
    assert not monitor.quality_check(measured, version, 25.0)["violated"]
    noise = rng.random(400)  # the model stopped knowing anything
    bad = monitor.quality_check(
        monitor.quality(noise, truth, "binary_classification", 0.5), version, 25.0
    )
    assert bad["violated"] and bad["min_auc"] == pytest.approx(0.92)
    assert {p.split()[2] for p in bad["problems"]} == {"auc", "log_loss", "accuracy"}
    assert "model quality: auc" in monitor.quality_violation(bad)


def test_traffic_of_which_nothing_could_be_read_is_a_violation_not_no_data():
    """Every captured request of a text-category model was corrupt, and the monitor said
    "no captured requests to monitor" with exit 0."""
    report = monitor.build_report("prod", "e", "local", None, [], 264, 264, "capture/", "row 1: x")
    assert report["status"] == monitor.VIOLATION
    assert report["violations"] == ["none of 264 captured line(s) could be read (first: row 1: x)"]
    assert monitor.build_report("prod", "e", "local", None, [], 0, 0, "capture/")["status"] == (
        monitor.NO_DATA
    )

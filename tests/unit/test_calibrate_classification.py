"""Calibration of a classifier's gate and smoke floor from held-out probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mlops.core.calibrate_classification import auc, calibrate_classification


def held_out(rows: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with a 30 % positive share and probabilities that carry `signal` about them."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(int)
    logit = -0.85 + signal * (y - 0.3) + rng.normal(0, 1, rows)
    return y, 1 / (1 + np.exp(-logit))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    prob = rng.integers(0, 10, 300) / 10  # many ties
    assert auc(y, prob) == pytest.approx(roc_auc_score(y, prob))


def test_thresholds_sit_between_the_baseline_and_the_naive_model():
    y, prob = held_out(2000, signal=3.0)
    cal = calibrate_classification(y, prob, train_prevalence=0.3, smoke_rows=40)
    assert cal.baseline["auc"] == pytest.approx(roc_auc_score(y, prob))
    assert cal.baseline["log_loss"] == pytest.approx(log_loss(y, prob))
    assert 0.5 < cal.min_auc < cal.baseline["auc"]
    assert cal.baseline["log_loss"] < cal.max_log_loss < cal.naive["log_loss"]
    assert cal.min_accuracy < cal.baseline["accuracy"]
    assert cal.warnings == ()
    assert cal.gate() == {"min_auc": cal.min_auc, "max_log_loss": cal.max_log_loss}


def test_a_baseline_no_better_than_the_prior_is_flagged_and_still_gated():
    y, prob = held_out(2000, signal=0.05)
    cal = calibrate_classification(y, prob, train_prevalence=0.3, smoke_rows=20)
    assert any("barely better" in w for w in cal.warnings)
    assert cal.max_log_loss <= max(cal.naive["log_loss"], cal.baseline["log_loss"]) + 1e-3
    assert cal.min_auc > 0.5 or cal.baseline["auc"] <= 0.5


def test_few_held_out_rows_are_warned_about():
    y, prob = held_out(120, signal=3.0)
    cal = calibrate_classification(y, prob, train_prevalence=0.3, smoke_rows=200)
    assert cal.smoke_rows == 120
    assert any("only 120 held-out rows" in w for w in cal.warnings)


def test_one_class_cannot_be_calibrated():
    with pytest.raises(ValueError, match="both classes"):
        calibrate_classification(np.zeros(50), np.full(50, 0.2), 0.2, 10)


def test_baseline_fit_on_fixture_rows_with_string_categories_calibrates_the_gate():
    from fixtures.tasks import churn_frame

    from mlops.core.calibrate_classification import fit_baseline_classifier

    df = churn_frame(3000, seed=8)
    labels = (df.churned == "yes").to_numpy(int)
    order = np.random.default_rng(0).permutation(len(df))
    splits = (order[:1800], order[1800:2400], order[2400:])
    features = df.drop(columns="churned")
    params = {"max_depth": 3, "eta": 0.3, "num_round": 60, "early_stopping_rounds": 10}
    prob = fit_baseline_classifier(features, labels, ["plan", "region"], params, splits)
    cal = calibrate_classification(labels[splits[2]], prob, labels[splits[0]].mean(), 40)
    assert 0.75 < cal.baseline["auc"] < 0.95  # the generator's signal, not a perfect fit
    assert 0.5 < cal.min_auc < cal.baseline["auc"]
    assert cal.max_log_loss < cal.naive["log_loss"]

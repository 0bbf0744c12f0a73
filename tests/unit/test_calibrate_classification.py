"""Calibration of a classifier's gate and smoke floor from what the evaluate step wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mlops.core.calibrate_classification import calibrate_classification
from stepkit.metrics import auc
from stepkit.metrics import log_loss as core_log_loss


def evaluate_outputs(y, prob, prevalence: float) -> tuple[dict, pd.DataFrame]:
    """What the evaluate step writes for these held-out rows (evaluation.json, predictions)."""
    from stepkit import metrics

    task = "binary_classification"
    evaluation = metrics.task_metrics(task, y, prob, 0.5)
    evaluation["intervals"] = metrics.bootstrap_intervals(task, y, prob)
    evaluation["naive"] = metrics.naive_metrics(task, y, prevalence, 0.5)
    evaluation["rows"] = len(y)
    predictions = pd.DataFrame({"target": y.astype(str), "y": y, "prediction": prob})
    return evaluation, predictions


def held_out(rows: int, signal: float, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Labels with a 30 % positive share and probabilities that carry `signal` about them."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(float)
    logit = -0.85 + signal * (y - 0.3) + rng.normal(0, 1, rows)
    return evaluate_outputs(y, 1 / (1 + np.exp(-logit)), prevalence=0.3)


def test_thresholds_sit_between_the_model_and_the_naive_model():
    evaluation, predictions = held_out(2000, signal=3.0)
    cal = calibrate_classification(evaluation, predictions, smoke_rows=40)
    section = evaluation["binary_classification_metrics"]
    assert cal.baseline["auc"] == section["auc"]["value"]
    assert cal.baseline["accuracy"] == section["accuracy"]["value"]
    assert 0.5 < cal.min_auc < cal.baseline["auc_interval"][0] < cal.baseline["auc"]
    assert cal.baseline["log_loss"] < cal.max_log_loss < cal.naive["log_loss"]
    assert cal.min_accuracy < cal.baseline["accuracy"]
    assert cal.test_rows == 2000 and cal.smoke_rows == 40 and cal.warnings == ()
    assert cal.gate() == {"min_auc": cal.min_auc, "max_log_loss": cal.max_log_loss}


def test_the_figures_are_evaluates_not_computed_again():
    evaluation, predictions = held_out(500, signal=3.0)
    section = evaluation["binary_classification_metrics"]
    section["auc"]["value"], section["log_loss"]["value"] = 0.9, 0.3  # not the rows'
    evaluation["intervals"] = {"auc": [0.85, 0.95], "log_loss": [0.25, 0.35]}
    evaluation["naive"].update(log_loss=0.6, accuracy=0.7)
    cal = calibrate_classification(evaluation, predictions, smoke_rows=20)
    assert (cal.baseline["auc"], cal.baseline["log_loss"]) == (0.9, 0.3)
    assert cal.naive == {"auc": 0.5, "log_loss": 0.6, "accuracy": 0.7}
    assert cal.min_auc == 0.83  # the interval's bottom less 0.02
    assert cal.max_log_loss == 0.42  # a fifth above the interval's top


def test_a_model_no_better_than_the_prior_is_flagged_and_still_gated():
    evaluation, predictions = held_out(2000, signal=0.05)
    cal = calibrate_classification(evaluation, predictions, smoke_rows=20)
    assert any("barely better" in w for w in cal.warnings)
    assert cal.max_log_loss <= max(cal.naive["log_loss"], cal.baseline["log_loss"]) + 1e-3
    assert cal.min_auc > 0.5 or cal.baseline["auc"] <= 0.5


def test_few_held_out_rows_are_warned_about():
    evaluation, predictions = held_out(120, signal=3.0)
    cal = calibrate_classification(evaluation, predictions, smoke_rows=200)
    assert cal.smoke_rows == 120
    assert any("only 120 held-out rows" in w for w in cal.warnings)


def test_the_smoke_floor_comes_from_draws_of_the_predictions_at_the_threshold():
    evaluation, predictions = held_out(400, signal=3.0)
    right = predictions.assign(prediction=predictions.y * 0.5 + 0.25)  # 0.75 or 0.25: all right
    assert calibrate_classification(evaluation, right, smoke_rows=20).min_accuracy == 0.95
    # at a threshold of 0.8 every positive is missed: the floor falls with the accuracy
    strict = calibrate_classification(evaluation, right, smoke_rows=20, threshold=0.8)
    assert strict.min_accuracy < 0.7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reports_auc_and_log_loss_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    prob = rng.integers(1, 10, 300) / 10  # many ties
    assert auc(y, prob) == pytest.approx(roc_auc_score(y, prob))
    assert core_log_loss(y, prob) == pytest.approx(log_loss(y, prob))


def test_the_smoke_floor_beats_always_answering_the_majority_label():
    """20 rows at 0.8 accuracy fall to ~0.6 in 1 % of draws: under the 0.7 majority share.
    The smoke test takes more rows until its floor is above it."""
    evaluation, predictions = held_out(200, signal=1.6, seed=4)
    majority = evaluation["naive"]["accuracy"]
    cal = calibrate_classification(evaluation, predictions, smoke_rows=20)
    assert cal.min_accuracy > majority
    assert 20 < cal.smoke_rows <= 200
    assert cal.min_accuracy <= cal.baseline["accuracy"]


def test_a_well_ranking_model_on_few_rows_is_not_called_barely_better():
    """AUC 0.92 on 66 rows: the log-loss interval is wide and reaches the naive model's,
    so the limit is set halfway, but the model is far better than the naive one."""
    rng = np.random.default_rng(0)
    y = (rng.random(66) < 0.3).astype(float)
    logit = 5 * (-0.5 + 1.2 * (y - 0.3) + rng.normal(0, 0.6, 66))  # overconfident
    evaluation, predictions = evaluate_outputs(y, 1 / (1 + np.exp(-logit)), prevalence=0.3)
    assert evaluation["intervals"]["log_loss"][1] * 1.2 > evaluation["naive"]["log_loss"]
    cal = calibrate_classification(evaluation, predictions, smoke_rows=20)
    assert cal.baseline["auc"] > 0.9 and cal.baseline["log_loss"] < 0.6 * cal.naive["log_loss"]
    assert not any("barely" in w for w in cal.warnings)
    assert cal.max_log_loss < cal.naive["log_loss"]

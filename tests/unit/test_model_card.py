"""Model cards from evaluate's outputs, for both tasks, with made-up columns (a fork's)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from mlops.core.card_plots import calibration, plots
from mlops.core.model_card import CardInputs, card_facts, render_html, render_markdown
from mlops.core.registry import ModelVersion
from stepkit import metrics

ROWS = 400


def version(lineage: dict | None = None) -> ModelVersion:
    return ModelVersion(
        group="fork-group",
        version=3,
        approval_status="PendingManualApproval",
        created_at="2026-12-07T06:00:00+00:00",
        metrics={},
        lineage={
            "git_commit": "abc123",
            "pr_number": "42",
            "run_id": "run-1",
            "data_file": "s3://bucket/fork.csv",
            "data_sha256": "f" * 64,
            "quarantined_rows": 7,
            "params": {"train": {"model": "some-family"}},
            **(lineage or {}),
        },
        model_uri="/x/model.tar.gz",
    )


def evaluation_of(task: str, y, prediction, champion=None) -> dict:
    evaluation = metrics.task_metrics(task, y, prediction, 0.5)
    if champion is not None:
        evaluation["champion"] = metrics.task_metrics(task, y, champion, 0.5)
    evaluation["intervals"] = metrics.bootstrap_intervals(task, y, prediction)
    evaluation["rows"] = len(y)
    return evaluation


def predictions_of(y, prediction) -> pd.DataFrame:
    return pd.DataFrame({"target": y, "y": y, "prediction": prediction, "champion": np.nan})


def inputs(task: str, evaluation: dict, predictions: pd.DataFrame, **more) -> CardInputs:
    return CardInputs(
        version=version(),
        task=task,
        target="WAIT_MINUTES",
        features=["QUEUE_LEN", "CITY"],
        evaluation=evaluation,
        predictions=predictions,
        gate_checks=("mse 1 <= 2: ok",),
        gate_passed=True,
        validation={"success": True, "rows": 1234, "summary": "validation passed: 9 on 1234 rows"},
        history=[
            {
                "at": "t0",
                "approval_status": "PendingManualApproval",
                "user": "ci",
                "note": "registered",
            }
        ],
        champion_version=2,
        **more,
    )


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, ROWS)
    prediction, champion = y + rng.normal(0, 5, ROWS), y + rng.normal(0, 8, ROWS)
    evaluation = evaluation_of("regression", y, prediction, champion)
    evaluation["feature_importance"] = {"QUEUE_LEN": 3.0, "CITY": 1.0}
    return inputs("regression", evaluation, predictions_of(y, prediction))


def test_regression_card_says_what_an_approver_needs(regression):
    facts = card_facts(regression)
    rows = {r["metric"]: r for r in facts["metrics"]}
    mse = np.mean((regression.predictions["prediction"] - regression.predictions["y"]) ** 2)
    assert rows["mse"]["value"] == pytest.approx(mse)
    low, high = rows["mse"]["interval"]
    assert low < mse < high
    assert rows["mse"]["champion"] > rows["mse"]["value"]  # the champion's noise is larger
    assert facts["data"] == {
        "source": "s3://bucket/fork.csv",
        "sha256": "f" * 64,
        "rows": 1234,
        "quarantined_rows": 7,
        "held_out_rows": ROWS,
        "validation": "validation passed: 9 on 1234 rows",
        "validation_passed": True,
        "feature_snapshot": {},
    }
    assert facts["lineage"]["pr_number"] == "42" and facts["model_family"] == "some-family"
    text = render_markdown(facts)
    assert "Predicts `WAIT_MINUTES` (a regression) from 2 feature(s): `QUEUE_LEN`, `CITY`" in text
    assert "| metric | this version | 95 % interval | champion |" in text
    assert "Champion: version 2, scored on the same rows." in text
    assert "Quality gate: **passed**" in text and "- mse 1 <= 2: ok" in text
    assert "| t0 | PendingManualApproval | ci | registered |" in text


def test_the_html_card_is_self_contained_with_its_plots_inline(regression):
    figures = plots(regression.evaluation, regression.predictions)
    assert [p.name for p in figures] == ["predicted_vs_actual", "residuals", "feature_importance"]
    page = render_html(card_facts(regression), figures)
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", page)  # nothing to fetch
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_classification_card_has_roc_pr_and_calibration():
    rng = np.random.default_rng(1)
    truth = rng.random(ROWS)
    y = (rng.random(ROWS) < truth).astype(float)
    evaluation = evaluation_of("binary_classification", y, truth)
    card = inputs("binary_classification", evaluation, predictions_of(y, truth))
    facts = card_facts(card)
    assert [r["metric"] for r in facts["metrics"]][:2] == ["auc", "log_loss"]
    assert facts["metrics"][0]["champion"] is None
    figures = plots(evaluation, card.predictions)
    assert [p.name for p in figures] == ["roc_curve", "precision_recall", "calibration"]
    assert "No champion was scored" in render_markdown(facts)


def test_calibration_of_calibrated_scores_follows_the_diagonal():
    rng = np.random.default_rng(2)
    prob = rng.random(20_000)
    y = (rng.random(20_000) < prob).astype(float)
    mean_prob, observed, counts = calibration(y, prob)
    assert counts.sum() == 20_000 and len(counts) == 10
    assert np.max(np.abs(mean_prob - observed)) < 0.03


def test_a_card_says_what_is_missing_instead_of_failing():
    facts = card_facts(
        CardInputs(
            version=version({"quarantined_rows": None}),
            task="regression",
            target="T",
            features=["A"],
            evaluation={},
        )
    )
    text = render_markdown(facts)
    assert "Quality gate: **not recorded**" in text
    assert "rows: –; quarantined: 0" in text
    assert "model_build/intended_use.md" in text
    page = render_html(facts, [])
    assert "<em>The project has not described its intended use yet" in page
    assert "<code>model_build/intended_use.md</code>" in page  # underscores kept


def test_the_forks_own_words_are_escaped_not_interpreted():
    facts = card_facts(
        CardInputs(
            version(), "regression", "T", ["A"], {}, intended_use="For <b>snake_case</b> & co"
        )
    )
    assert "For &lt;b&gt;snake_case&lt;/b&gt; &amp; co" in render_html(facts, [])

"""The PR report of a binary classifier: its metrics, the champion comparison on log loss,
the gate and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from mlops.core.graph import Gate
from mlops.core.registry import ModelVersion
from mlops.core.report import (
    PASSING,
    Report,
    RunRecord,
    classification_metrics,
    confusion_counts,
    gate_verdict,
    headline,
    render_markdown,
    render_version,
)

GATE = Gate(None, None, 5.0, "binary_classification", min_auc=0.7, max_log_loss=0.6)
RUN = RunRecord("20250101-000000-abcdef", Path("/runs/x"), "registered", version=2)


def probabilities(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    return y, np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0.01, 0.99)


def test_classification_metrics_agree_with_sklearn():
    y, prob = probabilities(1)
    m = classification_metrics(y, prob, 0.5)
    assert m["auc"] == pytest.approx(roc_auc_score(y, prob))
    assert m["log_loss"] == pytest.approx(log_loss(y, prob))
    assert m["f1"] == pytest.approx(f1_score(y, prob >= 0.5))
    c = confusion_counts(y, prob, 0.5)
    assert sum(c.values()) == 400 and m["accuracy"] == pytest.approx((c["tp"] + c["tn"]) / 400)


def test_report_compares_on_log_loss_and_shows_the_confusion_matrix():
    y, prob = probabilities(2)
    challenger = classification_metrics(y, prob, 0.5)
    champion = {**challenger, "log_loss": challenger["log_loss"] * 1.1, "auc": 0.7}
    report = Report(
        run=RUN,
        rows=400,
        challenger=challenger,
        champion=champion,
        champion_version=1,
        verdict=gate_verdict(challenger, champion, GATE),
        gate=GATE,
        confusion=confusion_counts(y, prob, 0.5),
        threshold=0.5,
        class_labels=("no", "yes"),
    )
    assert [c.metric for c in report.verdict.checks] == ["auc", "log_loss", "log_loss vs champion"]
    assert headline(report) == f"## {PASSING}: log_loss 9.09 % lower than champion v1"
    text = render_markdown(report)
    c = report.confusion
    assert "### Confusion matrix (challenger, threshold 0.5)" in text
    assert f"| no | {c['tn']} | {c['fp']} |" in text and f"| yes | {c['fn']} | {c['tp']} |" in text
    assert "| auc | 0.7 |" in text and "🟢 better" in text


def test_a_worse_classifier_fails_the_gate_on_the_champion_check():
    y, prob = probabilities(3)
    challenger = classification_metrics(y, prob, 0.5)
    champion = {**challenger, "log_loss": challenger["log_loss"] / 1.2}
    verdict = gate_verdict(challenger, champion, GATE)
    assert [c.metric for c in verdict.failures] == ["log_loss vs champion"]


def test_a_registered_classifier_version_lists_its_metrics():
    version = ModelVersion(
        "churn", 3, "PendingManualApproval", "2026-01-01", {"auc": 0.83, "log_loss": 0.49},
        {"run_id": "r"}, "/m.tar.gz",
    )  # fmt: skip
    text = render_version(version, "local")
    assert "| auc | 0.83 |" in text and "| log_loss | 0.49 |" in text

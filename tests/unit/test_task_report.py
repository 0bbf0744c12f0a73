"""The PR report of a binary classifier: its metrics, the champion comparison on log loss,
the gate and the confusion matrix, all as the evaluate step wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import evaluate
import numpy as np
import pytest
from _report_runs import register_champion, scorer, write_run
from fixtures.tasks import CHURN_CONFIG, churn_frame, project_config
from sklearn.metrics import confusion_matrix

from mlops.core import run_layout
from mlops.core.config import load_config
from mlops.core.graph import load_pipeline
from mlops.core.registry import ModelVersion, metrics_from_evaluation
from mlops.core.report import (
    PASSING,
    RunRecord,
    from_evaluation,
    headline,
    render_markdown,
    render_version,
)
from mlops.local.report import build_report

TARGET = "churned"
LABELS = ("no", "yes")
RUN = RunRecord("20250101-000000-abcdef", Path("/runs/x"), "registered", version=2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def churn(tmp_path):
    cfg = load_config(project_config(CHURN_CONFIG, tmp_path / "project"))
    return cfg, load_pipeline(cfg)


def probabilities(y: np.ndarray, seed: int, signal: float = 1.5) -> np.ndarray:
    """Scores of a model that tells the classes apart the better the higher `signal`."""
    noise = np.random.default_rng(seed).normal(0, 1, len(y))
    return 1 / (1 + np.exp(-(signal * (2 * y - 1) + noise)))


def labelled(rows: int, seed: int):
    frame = churn_frame(rows, seed=seed).astype(str)
    return frame, (frame[TARGET] == "yes").to_numpy(dtype=float)


def classifier(prob) -> object:
    return scorer(prob, TARGET, "binary_classification", list(LABELS), 0.5)


def test_report_compares_on_log_loss_and_shows_the_confusion_matrix(churn):
    _, pipeline = churn
    rows, y = labelled(400, 2)
    prob, old = probabilities(y, 2), probabilities(y, 3, signal=0.6)
    ev, _ = evaluate.evaluate(rows, classifier(prob), classifier(old), 5.0)

    report = from_evaluation(
        RUN, ev, pipeline.gate, champion_version=1, threshold=0.5, class_labels=LABELS
    )

    assert [c.metric for c in report.verdict.checks] == ["auc", "log_loss", "log_loss vs champion"]
    assert report.challenger == metrics_from_evaluation(ev)
    assert report.champion == metrics_from_evaluation(ev["champion"])
    assert report.champion["log_loss"] > report.challenger["log_loss"]
    assert headline(report).startswith(f"## {PASSING}: log_loss ")
    assert headline(report).endswith(" lower than champion v1")
    (tn, fp), (fn, tp) = confusion_matrix(y, prob >= 0.5)  # an independent count
    assert report.confusion == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    text = render_markdown(report)
    assert "### Confusion matrix (challenger, threshold 0.5)" in text
    assert f"| no | {tn} | {fp} |" in text and f"| yes | {fn} | {tp} |" in text
    assert "| auc |" in text and "| mse |" not in text and "🟢 better" in text
    assert "95 % bootstrap interval over these rows: auc" in text
    assert "⚠️" not in text  # 400 rows are enough to gate on


def test_a_worse_classifier_fails_the_gate_on_the_champion_check(churn):
    _, pipeline = churn
    rows, y = labelled(400, 4)
    ev, _ = evaluate.evaluate(
        rows, classifier(probabilities(y, 4, 1.0)), classifier(probabilities(y, 5, 1.5)), 5.0
    )
    report = from_evaluation(RUN, ev, pipeline.gate, champion_version=1)
    assert [c.metric for c in report.verdict.failures] == ["log_loss vs champion"]


def test_few_held_out_rows_warn_with_the_auc_interval(churn):
    _, pipeline = churn
    rows, y = labelled(120, 6)
    ev, _ = evaluate.evaluate(rows, classifier(probabilities(y, 6)), None, 5.0)
    text = render_markdown(from_evaluation(RUN, ev, pipeline.gate))
    low, high = ev["intervals"]["auc"]
    assert (
        f"⚠️ only 120 held-out rows: the test AUC's 95 % interval is {low:.4g} to {high:.4g}" in text
    )


def test_a_classifier_run_is_reported_from_its_evaluate_outputs(churn, home, tmp_path):
    cfg, pipeline = churn
    old_rows, old_y = labelled(600, 7)
    champion = register_champion(
        home, cfg.model_package_group, pipeline, old_rows,
        classifier(probabilities(old_y, 7, 0.6)), text=("plan", "region"),
    )  # fmt: skip
    rows, y = labelled(500, 8)
    run_dir = write_run(
        home, pipeline, "20250102-000000-churn1", rows,
        classifier(probabilities(y, 8)), classifier(probabilities(y, 9, 0.6)),
        record={"champion_version": champion.version},
    )  # fmt: skip
    plots = tmp_path / "plots"

    report = build_report(cfg, home, run_dir, tmp_path / "reports", plots, {})

    folder = run_layout.evaluation_folder(home, run_dir.name, pipeline)
    ev = json.loads((folder / run_layout.EVALUATION_FILE).read_text())
    section = ev["binary_classification_metrics"]
    assert report.challenger == metrics_from_evaluation(ev)
    assert report.champion == metrics_from_evaluation(ev["champion"])
    matrix = section["confusion_matrix"]
    assert report.confusion == {"tn": matrix["0"]["0"], "fp": matrix["0"]["1"],
                                "fn": matrix["1"]["0"], "tp": matrix["1"]["1"]}  # fmt: skip
    assert (report.class_labels, report.threshold) == (LABELS, 0.5)  # the manifest's
    assert report.champion_drift["target"]["feature"] == TARGET  # the label's proportions
    assert report.champion_drift["prediction"] is not None
    text = render_markdown(report)
    assert "| actual ↓ predicted → | no | yes |" in text and "xychart-beta" in text
    assert report.plots == ("roc_curve.png", "confusion_matrix.png")
    for name in report.plots:
        assert (plots / name).read_bytes().startswith(PNG_MAGIC)


def test_a_registered_classifier_version_lists_its_metrics():
    version = ModelVersion(
        "churn", 3, "PendingManualApproval", "2026-01-01", {"auc": 0.83, "log_loss": 0.49},
        {"run_id": "r"}, "/m.tar.gz",
    )  # fmt: skip
    text = render_version(version, "local")
    assert "| auc | 0.83 |" in text and "| log_loss | 0.49 |" in text

"""The model card's plots, drawn with matplotlib from evaluate's outputs (none without it).

Regression: predicted vs actual, residuals. Classification: ROC and precision-recall (the
curves evaluate wrote) and calibration (from predictions.csv). Feature importance when
evaluate wrote one (the model family offers it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops.core.model_card import section_of, task_of

CALIBRATION_BINS = 10
MAX_SCATTER_POINTS = 2_000  # a scatter of more rows says no more and makes the HTML heavy


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: predicted_vs_actual, roc_curve...
    title: str
    png: bytes


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _pyplot():
    """matplotlib with a backend that needs no screen; None when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def thinned(frame: pd.DataFrame, limit: int = MAX_SCATTER_POINTS) -> pd.DataFrame:
    return frame if len(frame) <= limit else frame.sample(limit, random_state=0)


def regression_plots(plt, predictions: pd.DataFrame) -> list[Plot]:
    rows = thinned(predictions)
    y, pred = rows["y"].to_numpy(float), rows["prediction"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y, pred, s=5, alpha=0.4, color="tab:blue")
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    scatter = Plot("predicted_vs_actual", "Predicted vs actual (held-out rows)", _figure_png(fig))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(pred, pred - y, s=5, alpha=0.4, color="tab:blue")
    ax.axhline(0, color="black", linewidth=1)
    ax.set(xlabel="predicted", ylabel="predicted − actual", title="Residuals")
    return [scatter, Plot("residuals", "Residuals (held-out rows)", _figure_png(fig))]


def calibration(y: np.ndarray, prob: np.ndarray, bins: int = CALIBRATION_BINS):
    """(mean predicted probability, observed share of positives, rows) per probability bin."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    kept = counts > 0
    mean_prob = np.bincount(which, prob, bins)[kept] / counts[kept]
    observed = np.bincount(which, y, bins)[kept] / counts[kept]
    return mean_prob, observed, counts[kept]


def classification_plots(plt, evaluation: Mapping, predictions: pd.DataFrame | None) -> list[Plot]:
    section = section_of(evaluation)
    out = []
    roc = section.get("receiver_operating_characteristic_curve")
    if roc:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(roc["false_positive_rates"], roc["true_positive_rates"], color="tab:blue")
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        out.append(Plot("roc_curve", "ROC curve (held-out rows)", _figure_png(fig)))
    pr = section.get("precision_recall_curve")
    if pr:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(pr["recalls"], pr["precisions"], color="tab:blue")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
        out.append(Plot("precision_recall", "Precision-recall (held-out rows)", _figure_png(fig)))
    if predictions is not None and len(predictions):
        mean_prob, observed, _ = calibration(
            predictions["y"].to_numpy(float), predictions["prediction"].to_numpy(float)
        )
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(mean_prob, observed, marker="o", color="tab:blue")
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.set(xlabel="predicted probability", ylabel="observed share", title="Calibration")
        out.append(Plot("calibration", "Calibration (held-out rows)", _figure_png(fig)))
    return out


def importance_plot(plt, importance: Mapping[str, float]) -> Plot:
    names = sorted(importance, key=lambda n: importance[n])
    total = sum(importance.values()) or 1.0  # a share reads better than a raw gain (1e14)
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(names) + 1))
    ax.barh(names, [100 * importance[n] / total for n in names], color="tab:blue")
    ax.set(xlabel="share of the model's importance (%)", title="Feature importance")
    return Plot("feature_importance", "Feature importance", _figure_png(fig))


def plots(evaluation: Mapping, predictions: pd.DataFrame | None) -> list[Plot]:
    """The card's plots; none without matplotlib. Feature importance only where evaluate
    wrote one (the model family offers it)."""
    plt = _pyplot()
    if plt is None:
        return []
    if task_of(evaluation) == "regression":
        out = regression_plots(plt, predictions) if predictions is not None else []
    else:
        out = classification_plots(plt, evaluation, predictions)
    importance = evaluation.get("feature_importance")
    if importance:
        out.append(importance_plot(plt, importance))
    return out

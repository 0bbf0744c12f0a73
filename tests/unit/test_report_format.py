"""Numbers a reviewer reads at a glance, charts GitHub draws in the comment, and a report
that works without matplotlib (the demo's install)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mlops.core.report_format import (
    classification_charts,
    human,
    human_delta,
    human_pct,
    report_charts,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (89_257_100.0, "89.3 M"),
        (4623.1, "4.62 k"),
        (0.998253, "0.998"),
        (-25.0, "-25"),
        (0.0, "0"),
        (1.5e10, "15 G"),
        (None, "–"),
    ],
)
def test_human_numbers(value, text):
    assert human(value) == text


def test_a_delta_with_its_percentage():
    assert human_delta(3.99e6, 81.0) == "+3.99 M (+81 %)"
    assert human_delta(-10.0, -25.0) == "-10 (-25 %)"
    assert human_pct(32_512.0) == "+32,512 %"


def test_charts_are_mermaid_xycharts_with_scaled_axes():
    rng = np.random.default_rng(0)
    y = rng.uniform(1e5, 9e5, 500)
    charts = report_charts(y, y * 1.1, y * 0.9, "champion v1", "COST")
    first, legend, second, _ = charts
    assert first.startswith("```mermaid\nxychart-beta") and first.endswith("```")
    assert 'y-axis "COST (k)"' in first  # axis numbers in thousands, not 900000
    assert first.count("line [") == 2 and first.count("bar [") == 1
    assert '"D1"' in first and '"D10"' in first
    assert "challenger" in legend and "champion v1" in legend
    assert second.count("line [") == 2


def test_plots_are_skipped_without_matplotlib(monkeypatch, tmp_path):
    from mlops.local.report import write_plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` -> ImportError
    y = np.arange(1.0, 50.0)
    assert write_plots(y, y, None, tmp_path / "plots") == []


def test_classifier_plots_are_drawn_from_the_evaluate_steps_numbers_without_sklearn(
    monkeypatch, tmp_path
):
    from mlops.local.report import write_classification_plots

    monkeypatch.setitem(sys.modules, "sklearn", None)  # the machinery needs no model library
    curves = {"champion v1": ([0.0, 0.4, 1.0], [0.0, 0.7, 1.0]),
              "challenger": ([0.0, 0.2, 1.0], [0.0, 0.8, 1.0])}  # fmt: skip
    confusion = {"tn": 50, "fp": 7, "fn": 9, "tp": 34}
    plots = write_classification_plots(curves, confusion, ("no", "yes"), 0.5, tmp_path)
    assert [p.name for p in plots] == ["roc_curve.png", "confusion_matrix.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots)


def test_a_classifier_chart_shows_observed_rate_and_probabilities_by_score_tenth():
    rng = np.random.default_rng(1)
    prob = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < prob).astype(int)
    chart, legend = classification_charts(y, prob, prob * 0.9, "champion v2")
    assert chart.startswith("```mermaid\nxychart-beta") and chart.endswith("```")
    assert chart.count("bar [") == 1 and chart.count("line [") == 2
    assert '"D10"' in chart and "observed rate (bars)" in legend and "champion v2" in legend

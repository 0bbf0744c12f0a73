"""The quality gate: each threshold, and the champion comparison on the same rows."""

import pytest

from mlops.core.gate import champion_mse_limit, check_gate
from mlops.core.graph import Gate

GATE = Gate(max_mse=8e7, min_r2=0.9, max_regression_pct=5.0)


def evaluation(mse: float, r2: float, champion_mse: float | None = None) -> dict:
    ev = {"regression_metrics": {"mse": {"value": mse}, "r2": {"value": r2}}}
    if champion_mse is not None:
        ev["champion"] = {"regression_metrics": {"mse": {"value": champion_mse}}}
    return ev


@pytest.mark.parametrize(
    ("ev", "passed", "failed_metrics"),
    [
        (evaluation(3e7, 0.99), True, []),
        (evaluation(8e7, 0.9), True, []),  # thresholds are inclusive
        (evaluation(9e7, 0.99), False, ["mse"]),
        (evaluation(3e7, 0.5), False, ["r2"]),
        (evaluation(3e7, 0.99, champion_mse=3e7), True, []),
        (evaluation(3.1e7, 0.99, champion_mse=3e7), True, []),  # +3.3% is within 5%
        (evaluation(3.2e7, 0.99, champion_mse=3e7), False, ["mse vs champion"]),  # +6.7%
        (evaluation(9e7, 0.5, champion_mse=1e7), False, ["mse", "r2", "mse vs champion"]),
    ],
)
def test_gate(ev, passed, failed_metrics):
    verdict = check_gate(ev, GATE)
    assert verdict.passed is passed
    assert [c.metric for c in verdict.failures] == failed_metrics


def test_failure_message_names_metric_value_and_threshold():
    (failure,) = check_gate(evaluation(9e7, 0.99), GATE).failures
    assert str(failure) == "mse 9e+07 <= 8e+07: FAILED"


def test_champion_limit():
    assert champion_mse_limit(2e7, 5.0) == pytest.approx(2.1e7)
    assert champion_mse_limit(2e7, 0.0) == 2e7

"""The quality gate: the task's standard rules for a config, and check_gate over an
evaluation.json as the evaluate step writes it (champion limit, golden section)."""

import sys

import pytest

from mlops.core.config import load_config
from mlops.core.gate import check_gate, standard_gate
from mlops.core.graph import Param, Rule

BIG = sys.float_info.max  # evaluate's champion limit when there is no champion


def evaluation(mse: float, r2: float, champion_mse: float | None = None, pct=5.0) -> dict:
    ev = {
        "regression_metrics": {"mse": {"value": mse}, "r2": {"value": r2}},
        "champion_mse_limit": BIG if champion_mse is None else champion_mse * (1 + pct / 100),
    }
    if champion_mse is not None:
        ev["champion"] = {"regression_metrics": {"mse": {"value": champion_mse}}}
    return ev


@pytest.fixture(scope="module")
def gate():
    """The fixture project's regression gate (max_mse 8e7, min_r2 0.9), golden set included."""
    return standard_gate(load_config())


def test_the_regression_gate_of_a_config(config_file, gate):
    assert [r.label for r in gate] == [
        "mse", "r2", "mse vs champion", "golden r2", "golden mse vs champion"
    ]  # fmt: skip
    mse, r2, champion = gate[:3]
    assert mse == Rule("mse", "regression_metrics.mse.value", "<=", Param("MaxMse", 8e7))
    assert r2 == Rule("r2", "regression_metrics.r2.value", ">=", Param("MinR2", 0.9))
    assert (champion.threshold, champion.when) == ("champion_mse_limit", "champion")
    assert gate[4].threshold == "golden.champion_mse_limit" and gate[4].when == "golden.champion"
    no_golden = load_config(config_file(lambda raw: raw["data"].pop("golden")))
    assert [r.label for r in standard_gate(no_golden)] == ["mse", "r2", "mse vs champion"]


@pytest.mark.parametrize(
    ("ev", "passed", "failed"),
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
def test_check_gate(gate, ev, passed, failed):
    verdict = check_gate(ev, gate)
    assert verdict.passed is passed
    assert [c.metric for c in verdict.failures] == failed


def test_rules_whose_condition_is_absent_are_skipped(gate):
    checked = [c.metric for c in check_gate(evaluation(3e7, 0.99), gate).checks]
    assert checked == ["mse", "r2"]  # no champion, no golden section
    ev = evaluation(3e7, 0.99, champion_mse=3e7)
    ev["golden"] = evaluation(4e7, 0.95)
    assert [c.metric for c in check_gate(ev, gate).checks] == [
        "mse", "r2", "mse vs champion", "golden r2"
    ]  # fmt: skip
    ev["golden"] = evaluation(4e7, 0.85, champion_mse=3e7)
    verdict = check_gate(ev, gate)
    assert [c.metric for c in verdict.failures] == ["golden r2", "golden mse vs champion"]


def test_a_metric_the_evaluation_lacks_fails_its_rule_and_says_which(gate):
    ev = evaluation(3e7, 0.99, champion_mse=3e7)
    del ev["regression_metrics"]["r2"]
    del ev["champion_mse_limit"]
    verdict = check_gate(ev, gate)
    assert [str(c) for c in verdict.failures] == [
        "r2: no number at regression_metrics.r2.value in evaluation.json: FAILED",
        "mse vs champion: no number at champion_mse_limit in evaluation.json: FAILED",
    ]


def test_failure_message_names_metric_value_and_threshold(gate):
    (failure,) = check_gate(evaluation(9e7, 0.99), gate).failures
    assert str(failure) == "mse 9e+07 <= 8e+07: FAILED"


def test_a_projects_own_rule_is_checked_like_the_standard_ones(gate):
    own = Rule("mae", "regression_metrics.mae.value", "<=", Param("MaxMae", 100.0))
    ev = evaluation(3e7, 0.99)
    ev["regression_metrics"]["mae"] = {"value": 150.0}
    assert [str(c) for c in check_gate(ev, (*gate, own)).failures] == ["mae 150 <= 100: FAILED"]

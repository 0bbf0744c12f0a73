"""The cost of a change: a run's steps and each stage's endpoint, from the dated price table."""

from __future__ import annotations

import pytest

from mlops.core import prices
from mlops.core.cost import (
    HOURS_PER_MONTH,
    cost_markdown,
    endpoint_cost,
    run_cost_line,
    run_total,
    stage_costs,
    step_cost,
)
from mlops.core.errors import UsageError
from mlops.core.stages import SageMakerStage, parse_stage_config


def stage(**sagemaker) -> SageMakerStage:
    base = {"instance_type": "ml.m5.large", "instance_count": 1, "data_capture_percent": 0}
    return SageMakerStage.model_validate({**base, **sagemaker})


def test_a_run_costs_price_times_instances_times_seconds():
    steps = [
        step_cost("validate", "processing", "ml.m5.large", 1, 360),
        step_cost("train", "training", "ml.m5.xlarge", 2, 1800),
    ]
    large = prices.INSTANCE_HOUR_USD["processing"]["ml.m5.large"]
    xlarge = prices.INSTANCE_HOUR_USD["training"]["ml.m5.xlarge"]
    assert steps[0].usd == pytest.approx(large * 0.1)
    assert run_total(steps) == pytest.approx(large * 0.1 + xlarge * 2 * 0.5)
    line = run_cost_line(steps)
    assert line.startswith("estimated cost of this run on SageMaker: $")
    assert "train $0.2300 (2 x ml.m5.xlarge, 1800 s)" in line


def test_an_unknown_instance_type_says_so_rather_than_zero():
    steps = [step_cost("train", "training", "ml.zz9.huge", 1, 60)]
    assert run_total(steps) is None
    assert "unknown (no price for this instance type)" in run_cost_line(steps)


def test_endpoint_month_follows_instances_and_autoscaling_bounds():
    hour = prices.INSTANCE_HOUR_USD["hosting"]["ml.m5.large"]
    fixed = endpoint_cost("prod", stage(instance_count=2))
    assert fixed.monthly_low == fixed.monthly_high == pytest.approx(2 * hour * HOURS_PER_MONTH)
    scaled = endpoint_cost("prod", stage(autoscaling={"enabled": True, "min": 1, "max": 4}))
    assert (scaled.monthly_low, scaled.monthly_high) == pytest.approx(
        (hour * HOURS_PER_MONTH, 4 * hour * HOURS_PER_MONTH)
    )
    assert scaled.what == "autoscaling 1-4 x ml.m5.large"


def test_serverless_staging_costs_nothing_idle_and_has_a_ceiling():
    cost = endpoint_cost(
        "staging",
        stage(serverless={"memory_mb": 2048, "max_concurrency": 5}, monitoring={"enabled": False}),
    )
    assert cost.monthly_low == 0
    assert cost.monthly_high == pytest.approx(
        2 * prices.SERVERLESS_GB_SECOND_USD * 5 * HOURS_PER_MONTH * 3600
    )
    assert "$0 idle" in cost.to_row()["monthly"]
    assert "per million requests" in cost.note


def test_serverless_memory_must_be_a_size_sagemaker_accepts():
    raw = {
        "stage": "staging",
        "local": {"port": 8081},
        "sagemaker": {
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "data_capture_percent": 0,
            "serverless": {"memory_mb": 1500},
            "monitoring": {"enabled": False},
        },
    }
    with pytest.raises(UsageError, match="1500 is not one of"):
        parse_stage_config(raw)


def test_the_report_section_names_its_prices_date_and_source(tmp_path):
    text = "\n".join(
        cost_markdown([step_cost("train", "training", "ml.m5.xlarge", 1, 60)], stage_costs())
    )
    assert prices.PRICES_AS_OF in text and prices.PRICES_SOURCE in text
    assert "| staging |" in text and "| prod |" in text


def test_a_serverless_stage_with_capture_or_monitoring_is_refused():
    with pytest.raises(ValueError, match="data_capture_percent to 0"):
        stage(data_capture_percent=100, serverless={}, monitoring={"enabled": False})
    with pytest.raises(ValueError, match="monitoring"):
        stage(serverless={})


def test_processing_instances_are_paid_on_the_steps_that_share_out_the_input(config_file):
    from mlops.core.config import load_config
    from mlops.core.cost import step_costs
    from mlops.core.graph import load_pipeline

    cfg = load_config(config_file(lambda raw: raw["sagemaker"].update(processing_instance_count=3)))
    graph = load_pipeline(cfg)
    costs = step_costs(cfg, graph, {step.name: 60.0 for step in graph.steps})
    counts = {c.step: c.instance_count for c in costs}
    assert counts["validate"] == counts["preprocess"] == 3
    assert counts["validate_merge"] == counts["preprocess_merge"] == counts["evaluate"] == 1

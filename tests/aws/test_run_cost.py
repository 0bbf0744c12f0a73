"""`mlops pipeline run --backend sagemaker` prints what the execution cost: each job's
seconds (from ListPipelineExecutionSteps, through a Stubber) on the configured instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber

from mlops.core import prices
from mlops.core.graph import load_pipeline
from mlops.sagemaker.pipeline_run import wait_for_execution
from mlops.sagemaker.run_cost import report_cost

EXECUTION = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/p/execution/e1"
START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def ended(name: str, seconds: float | None) -> dict:
    item = {"StepName": name, "StepStatus": "Succeeded", "StartTime": START}
    if seconds is not None:
        item["EndTime"] = START + timedelta(seconds=seconds)
    return item


def test_the_run_cost_is_each_jobs_seconds_on_its_instances(cfg):
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    newest_first = [
        ended("register", 2), ended("gate", None), ended("evaluate", 240),
        ended("train", 600), ended("preprocess", 180), ended("validate", 360),
    ]  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionStatus": "Succeeded"},
            {"PipelineExecutionArn": EXECUTION},
        )
        stub.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": newest_first},
            {"PipelineExecutionArn": EXECUTION},
        )
        report = wait_for_execution(client, EXECUTION, lambda _: None, 0, lambda _: None)
    lines: list[str] = []
    seconds = {s.name: s.seconds for s in report.steps if s.seconds is not None}
    report_cost(cfg, load_pipeline(cfg), seconds, lines.append)
    sm = cfg.sagemaker
    processing = prices.INSTANCE_HOUR_USD["processing"][sm.processing_instance_type]
    training = prices.INSTANCE_HOUR_USD["training"][sm.training_instance_type]
    expected = processing * (360 + 180 + 240) / 3600 + training * 600 / 3600
    assert lines[0].startswith(f"estimated cost of this run on SageMaker: ${expected:,.4f}: ")
    assert (
        f"train ${training * 600 / 3600:,.4f} (1 x {sm.training_instance_type}, 600 s)" in lines[0]
    )
    assert "register" not in lines[0] and "gate" not in lines[0]  # not jobs of the graph
    assert [line.split(":")[0] for line in lines[1:]] == ["endpoint staging", "endpoint prod"]
    assert all(line.endswith(" a month") for line in lines[1:])


def test_no_times_no_made_up_cost(cfg):
    lines: list[str] = []
    report_cost(cfg, load_pipeline(cfg), {}, lines.append)
    assert (
        lines[0] == "estimated cost of this run on SageMaker: unknown (no job reported its times)"
    )

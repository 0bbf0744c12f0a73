"""Monitoring on SageMaker: the monitoring template (cfn-lint, parameters), and the latest
execution's violations read into the report (Stubber for SageMaker, moto for S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cfnlint.api import ManualArgs, lint
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.errors import MlopsError
from mlops.core.registry import APPROVED, ModelVersion
from mlops.sagemaker.monitor import SageMakerMonitor, monitoring_stack_parameters

TEMPLATE = Path(__file__).resolve().parents[2] / "model_deploy" / "monitoring-template.yml"
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker-execution"
JOB = "model-monitoring-202612010300-abc"


def test_template_with_the_configs_features_passes_cfn_lint(cfg):
    """The features become alarms through Fn::ForEach: lint with them filled in."""
    features = ",".join(cfg.data.features)
    text = TEMPLATE.read_text().replace(
        "    Description: The model's features; each gets a drift alarm",
        f'    Default: "{features}"',
    )
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []


def test_stack_parameters_fit_the_template(cfg):
    import re

    version = ModelVersion("g", 3, APPROVED, "", {}, {}, "s3://b/m.tar.gz",
                           baseline_uri="s3://b/runs/x/baseline/baseline.json")  # fmt: skip
    params = monitoring_stack_parameters(
        cfg, "prod", version, ROLE, "1.dkr.ecr.us-east-1.amazonaws.com/analyzer", "s3://b/mon/"
    )
    declared = load_cfn_yaml(TEMPLATE.read_text())["Parameters"]
    values = params
    required = {k for k, v in declared.items() if "Default" not in v}
    assert required <= set(values) <= set(declared)
    for key, value in values.items():
        pattern = declared[key].get("AllowedPattern")
        assert pattern is None or re.match(pattern, value), key
    assert values["BaselineStatisticsUri"] == "s3://b/runs/x/baseline/statistics.json"
    assert values["Features"].split(",") == cfg.data.features


@pytest.fixture
def stubbed(aws):
    sagemaker = boto3.client("sagemaker")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="mon")
    with Stubber(sagemaker) as stub:
        yield sagemaker, s3, stub


def stub_latest(stub, cfg, status: str, reason: str = "") -> None:
    summary = {
        "MonitoringScheduleName": f"{cfg.model_package_group}-prod-data-quality",
        "ScheduledTime": datetime(2026, 12, 1, 3, tzinfo=UTC),
        "CreationTime": datetime(2026, 12, 1, 3, 5, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 12, 1, 3, 20, tzinfo=UTC),
        "MonitoringExecutionStatus": status,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{JOB}",
        "MonitoringJobDefinitionName": f"{cfg.model_package_group}-prod-data-quality-v7",
    }
    if reason:
        summary["FailureReason"] = reason
    running = {**summary, "MonitoringExecutionStatus": "InProgress"}
    stub.add_response("list_monitoring_executions",
                      {"MonitoringExecutionSummaries": [running, summary]}, None)  # fmt: skip


def test_latest_violations_become_the_report(stubbed, cfg, tmp_path, capsys):
    sagemaker, s3, stub = stubbed
    stub_latest(stub, cfg, "CompletedWithViolations")
    stub.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": JOB,
            "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{JOB}",
            "ProcessingJobStatus": "Completed",
            "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
            "AppSpecification": {"ImageUri": "analyzer"},
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 20,
                }
            },
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {
                            "S3Uri": "s3://mon/prod/2026/12/01/03",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
        {"ProcessingJobName": JOB},
    )
    feature = cfg.data.features[0]
    findings = [{"feature_name": feature, "constraint_check_type": "baseline_drift_check",
                 "description": "Baseline drift distance: 0.31 exceeds threshold: 0.1"}]  # fmt: skip
    s3.put_object(Bucket="mon", Key="prod/2026/12/01/03/constraint_violations.json",
                  Body=json.dumps({"violations": findings}))  # fmt: skip
    s3.put_object(Bucket="mon", Key="prod/2026/12/01/03/statistics.json",
                  Body=json.dumps({"dataset": {"item_count": 1234}}))  # fmt: skip

    report = SageMakerMonitor(cfg, None, sagemaker, s3).report("prod", None, None, print)
    assert report["status"] == "violation" and report["rows"] == 1234
    assert report["violations"] == [
        f"version 7: {feature} baseline_drift_check: Baseline drift distance: 0.31 exceeds "
        "threshold: 0.1"
    ]
    assert report["source"].endswith("s3://mon/prod/2026/12/01/03")


def test_failed_execution_and_no_execution(stubbed, cfg):
    sagemaker, s3, stub = stubbed
    stub_latest(stub, cfg, "Failed", "capture is empty")
    with pytest.raises(MlopsError, match="Failed: capture is empty"):
        SageMakerMonitor(cfg, None, sagemaker, s3).report("prod", None, None, print)
    stub.add_response("list_monitoring_executions", {"MonitoringExecutionSummaries": []}, None)
    report = SageMakerMonitor(cfg, None, sagemaker, s3).report("prod", None, None, print)
    assert report["status"] == "no data"

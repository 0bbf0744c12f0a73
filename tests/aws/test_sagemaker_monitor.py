"""Monitoring on SageMaker: the monitoring template (cfn-lint, parameters), and the latest
execution's violations read into the report (Stubber for SageMaker, moto for S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
        "MonitoringJobDefinitionName": f"{cfg.model_package_group}-prod-dq-v7-0a1b2c3d",
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


# ---- model quality from the endpoint's data capture in S3 (--labels) ----------------------

CAPTURE = "energy-costs/data-capture/prod"  # the endpoint stack's DataCaptureUri, under the bucket
ENDPOINT = "energy-costs-prod"
RUN = "energy-costs/runs/exec1"


def capture_records(records, features: int) -> str:
    """Capture JSON Lines as the endpoint writes them: one CSV row in, one prediction out."""
    from mlops.core.capture import capture_line

    lines = []
    for event, inference_id, prediction, when in records:
        row = ",".join(str(10 + i) for i in range(features)).encode()
        body = json.dumps({"predictions": [prediction]}).encode()
        lines.append(
            capture_line(row, "text/csv", body, "application/json", event, when, inference_id)
        )
    return "".join(lines)


@pytest.fixture
def captured_prod(aws, cfg, monkeypatch):
    """prod serves version 1 (test MSE 30) and captured 4 requests in the last hour, one
    three days ago, and one corrupt line; the fakes answer what moto lacks."""
    from _fake_aws import FakeCloudFormation, record_calls

    from mlops.core.capture import format_time

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket="artifacts")
    evaluation = {"regression_metrics": {"mse": {"value": 30.0}}}
    s3.put_object(
        Bucket="artifacts", Key=f"{RUN}/evaluate/evaluation.json", Body=json.dumps(evaluation)
    )
    baseline = {"features": {name: {"type": "numeric"} for name in cfg.data.features}}
    s3.put_object(
        Bucket="artifacts",
        Key=f"{RUN}/preprocess/baseline/baseline.json",
        Body=json.dumps(baseline),
    )
    sagemaker.create_model_package_group(ModelPackageGroupName="energy-costs")
    sagemaker.create_model_package(
        ModelPackageGroupName="energy-costs",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost", "ModelDataUrl": "s3://artifacts/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://artifacts/{RUN}/evaluate/evaluation.json",
                }
            },
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://artifacts/{RUN}/preprocess/baseline/baseline.json",
                }
            },
        },
    )
    now = datetime.now(UTC)
    recent, old = now - timedelta(minutes=10), now - timedelta(days=3)
    width = len(cfg.data.features)
    fresh = capture_records(
        [
            ("e1", "a", 100.0, recent),
            ("e2", "b", 200.0, recent),
            ("e3", "", 300.0, recent),  # no inference id: joined by its event id
            ("e4", "d", 400.0, recent),
        ],
        width,
    )
    corrupt = '{"captureData": {"endpointInput": \n'  # a torn record
    prefix = f"{CAPTURE}/{ENDPOINT}/AllTraffic"
    s3.put_object(
        Bucket="artifacts",
        Key=f"{prefix}/{recent:%Y/%m/%d/%H}/{recent:%M-%S}-a.jsonl",
        Body=fresh + corrupt,
    )
    stale = capture_records([("e0", "z", 999.0, format_time(old))], width)
    s3.put_object(
        Bucket="artifacts", Key=f"{prefix}/{old:%Y/%m/%d/%H}/00-00-b.jsonl", Body=stale.rstrip("\n")
    )  # a whole object: no last newline needed

    calls, fakes = record_calls(monkeypatch)
    cloudformation = FakeCloudFormation()
    fakes[("cloudformation", "*")] = cloudformation
    cloudformation.stacks[ENDPOINT] = cloudformation.stack(
        ENDPOINT,
        "UPDATE_COMPLETE",
        [
            {"ParameterKey": "EndpointName", "ParameterValue": ENDPOINT},
            {"ParameterKey": "ModelVersion", "ParameterValue": "1"},
        ],
    )
    fakes[("sagemaker", "DescribeEndpoint")] = lambda _, params: {
        "EndpointName": params["EndpointName"],
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointStatus": "InService",
        "CreationTime": now,
        "LastModifiedTime": now,
        "DataCaptureConfig": {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://artifacts/{CAPTURE}",
        },
    }
    fakes[("sagemaker", "ListMonitoringExecutions")] = lambda *_: {
        "MonitoringExecutionSummaries": []
    }  # moto has no Model Monitor: no execution yet
    return calls


def write_labels(path: Path, cfg, truths: dict[str, float]) -> Path:
    path.write_text(
        f"inference_id,{cfg.data.target}\n" + "".join(f"{k},{v}\n" for k, v in truths.items())
    )
    return path


def test_labels_join_the_s3_capture_and_quality_is_measured(captured_prod, cfg, tmp_path):
    from mlops.cli import run

    # errors 10, -10, 0, 0 on the four recent requests: MSE 50 > 30 * 1.25
    labels = write_labels(
        tmp_path / "labels.csv", cfg, {"a": 110.0, "b": 190.0, "e3": 300.0, "d": 400.0, "z": 0.0}
    )
    code = run(
        [
            "monitor",
            "--stage",
            "prod",
            "--backend",
            "sagemaker",
            "--labels",
            str(labels),
            "--since",
            "2h",
            "--report-dir",
            str(tmp_path / "report"),
        ]
    )
    assert code == 1
    report = json.loads((tmp_path / "report" / "monitor.json").read_text())
    assert (report["requests"], report["corrupt_lines"]) == (4, 1)
    assert report["first_corrupt"].startswith(f"s3://artifacts/{CAPTURE}/{ENDPOINT}/AllTraffic/")
    (section,) = report["versions"]
    quality = section["quality"]
    assert section["version"] == 1 and quality["rows"] == 4
    assert (quality["mse"], quality["mae"], quality["version_mse"], quality["max_mse"]) == (
        50.0,
        5.0,
        30.0,
        37.5,
    )
    assert quality["violated"] is True
    assert report["violations"] == [
        "model quality: MSE 50 on 4 labelled rows is over 37.5 (test MSE 30)"
    ]
    markdown = (tmp_path / "report" / "monitor.md").read_text()
    assert "Quality on 4 labelled rows: MSE 50 (limit 37.5)" in markdown
    # --since 2h: listing started at the window's hour folder, less one
    (listing,) = [c for c in captured_prod if c[1] == "ListObjectsV2"]
    assert listing[2]["Prefix"] == f"{CAPTURE}/{ENDPOINT}/AllTraffic/"
    assert listing[2]["StartAfter"] > f"{CAPTURE}/{ENDPOINT}/AllTraffic/" + "0000"


def test_labels_within_the_limit_pass_and_old_capture_counts_without_since(
    captured_prod, cfg, tmp_path
):
    from mlops.cli import run

    labels = write_labels(tmp_path / "labels.csv", cfg, {"a": 101.0, "b": 199.0, "z": 999.0})
    code = run(
        [
            "monitor",
            "--stage",
            "prod",
            "--backend",
            "sagemaker",
            "--labels",
            str(labels),
            "--report-dir",
            str(tmp_path / "report"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report" / "monitor.json").read_text())
    # the stale object, without a trailing newline, is read whole: 5 requests
    assert (report["requests"], report["corrupt_lines"], report["status"]) == (5, 1, "ok")
    assert report["versions"][0]["quality"]["rows"] == 3
    assert report["versions"][0]["quality"]["mse"] == pytest.approx(2 / 3)


def test_an_endpoint_without_capture_is_a_clear_error(stubbed, cfg):
    from mlops.sagemaker.monitor import capture_location

    with pytest.raises(MlopsError, match="endpoint energy-costs-prod captures no data"):
        capture_location({"EndpointName": ENDPOINT, "DataCaptureConfig": {"EnableCapture": False}})
    assert capture_location(
        {
            "EndpointName": ENDPOINT,
            "DataCaptureConfig": {
                "EnableCapture": True,
                "DestinationS3Uri": "s3://b/g/data-capture/prod/",
            },
        }
    ) == ("b", f"g/data-capture/prod/{ENDPOINT}/AllTraffic/")

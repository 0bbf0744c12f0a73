"""Monitoring on SageMaker: the stage's data-quality schedule (Model Monitor) and its findings.

`model_deploy/monitoring-template.yml` is the schedule of one stage: a data-quality job
definition whose baseline is the serving version's `statistics.json` and
`constraints.json` (written by preprocess beside `baseline.json`), an hourly schedule over
the endpoint's data capture, and drift alarms. `SageMakerMonitor` reads the latest
finished execution's `constraint_violations.json` into the report `mlops monitor` writes
for both backends (`mlops.core.monitor`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from mlops.core import monitor
from mlops.core.config import Config
from mlops.core.deploy import endpoint_name
from mlops.core.errors import MlopsError, UsageError
from mlops.core.interfaces import Progress, Registry
from mlops.core.registry import ModelVersion
from mlops.sagemaker.registry import aws_errors

FINISHED = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
VERSION_SUFFIX = re.compile(r"-v(\d+)$")


def schedule_name(endpoint: str) -> str:
    return f"{endpoint}-data-quality"


def baseline_files(version: ModelVersion) -> tuple[str, str]:
    """Model Monitor's statistics.json and constraints.json beside the version's baseline.json."""
    if not version.baseline_uri.startswith("s3://"):
        raise MlopsError(f"model version {version.version} has no baseline on S3")
    folder = version.baseline_uri.rsplit("/", 1)[0]
    return f"{folder}/statistics.json", f"{folder}/constraints.json"


def monitoring_stack_parameters(
    cfg: Config,
    stage: str,
    version: ModelVersion,
    role_arn: str,
    analyzer_image: str,
    output_uri: str,
) -> list[dict]:
    """The parameters of `monitoring-template.yml` for a stage serving `version`."""
    statistics, constraints = baseline_files(version)
    values = {
        "StageName": stage,
        "EndpointName": endpoint_name(cfg.model_package_group, stage),
        "ModelVersion": str(version.version),
        "BaselineStatisticsUri": statistics,
        "BaselineConstraintsUri": constraints,
        "MonitoringOutputUri": output_uri,
        "ExecutionRoleArn": role_arn,
        "AnalyzerImageUri": analyzer_image,
        "Features": ",".join(cfg.data.features),
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def read_s3_json(s3: Any, uri: str) -> dict | None:
    """A JSON object on S3, or None when there is no such key."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MlopsError(f"{uri} is not JSON: {exc}") from None


def latest_finished(sagemaker: Any, schedule: str, since: datetime | None) -> dict | None:
    request = {
        "MonitoringScheduleName": schedule,
        "SortBy": "ScheduledTime",
        "SortOrder": "Descending",
        "MaxResults": 10,
    }
    if since is not None:
        request["ScheduledTimeAfter"] = since
    with aws_errors(f"cannot list the executions of {schedule}"):
        summaries = sagemaker.list_monitoring_executions(**request)["MonitoringExecutionSummaries"]
    return next((s for s in summaries if s["MonitoringExecutionStatus"] in FINISHED), None)


class SageMakerMonitor:
    """`mlops.core.monitor.Monitor` from a stage's Model Monitor schedule."""

    backend = "sagemaker"

    def __init__(self, cfg: Config, registry: Registry, sagemaker: Any = None, s3: Any = None):
        self.cfg, self.registry = cfg, registry
        if sagemaker is None or s3 is None:
            import boto3

            with aws_errors("cannot create AWS clients"):
                sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
        self.sagemaker, self.s3 = sagemaker, s3

    def report(
        self,
        stage: str,
        since: datetime | None,
        labels: dict[str, float] | None,
        progress: Progress,
    ) -> dict:
        if labels is not None:
            raise UsageError("--labels works with the local backend only (Model Monitor's "
                             "model-quality jobs take ground truth from S3)")  # fmt: skip
        name = endpoint_name(self.cfg.model_package_group, stage)
        schedule = schedule_name(name)
        execution = latest_finished(self.sagemaker, schedule, since)
        if execution is None:
            progress(f"no finished execution of {schedule} yet")
            return monitor.build_report(stage, name, self.backend, since, [], 0, 0, schedule)
        status = execution["MonitoringExecutionStatus"]
        if status in ("Failed", "Stopped"):
            raise MlopsError(
                f"the latest execution of {schedule} {status}: "
                f"{execution.get('FailureReason', 'no reason given')}"
            )
        job = execution["ProcessingJobArn"].rsplit("/", 1)[-1]
        with aws_errors(f"cannot describe processing job {job}"):
            described = self.sagemaker.describe_processing_job(ProcessingJobName=job)
        output = described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
        with aws_errors(f"cannot read the findings in {output}"):
            found = read_s3_json(self.s3, f"{output}/constraint_violations.json") or {}
            statistics = read_s3_json(self.s3, f"{output}/statistics.json") or {}
        findings = found.get("violations", [])
        rows = int(statistics.get("dataset", {}).get("item_count", 0))
        match = VERSION_SUFFIX.search(execution.get("MonitoringJobDefinitionName", ""))
        version = int(match.group(1)) if match else 0
        progress(f"{schedule}: execution of {execution['ScheduledTime']} {status}")
        section = {
            "version": version,
            "rows": rows,
            "violations": [
                f"version {version}: {f.get('feature_name', '?')} "
                f"{f.get('constraint_check_type', '?')}: {f.get('description', '')}"
                for f in findings
            ],
        }
        report = monitor.build_report(
            stage, name, self.backend, since, [section], rows, 0, f"{schedule}: {output}"
        )
        report["sagemaker_violations"] = findings
        return report

"""Monitoring on SageMaker: the stage's data-quality schedule (Model Monitor) and its findings.

`model_deploy/monitoring-template.yml` is the schedule of one stage: a data-quality job
definition whose baseline is the serving version's `statistics.json` and
`constraints.json` (written by preprocess beside `baseline.json`), an hourly schedule over
the endpoint's data capture, and drift alarms. `mlops deploy --backend sagemaker` deploys
it as the stack `<group>-<stage>-monitoring` after the endpoint stack
(`mlops.sagemaker.deploy`), so a rollback moves the baseline with the version.

`SageMakerMonitor` reads the latest finished execution's `constraint_violations.json`
into the report `mlops monitor` writes for both backends (`mlops.core.monitor`). With
ground truth (`--labels`) it also reads the endpoint's data capture from S3 with the
reader both backends share (`mlops.core.capture`), joins the labels by inference id and
measures model quality against the serving version's test metrics.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
from datetime import datetime, timedelta
from typing import Any

from mlops.core import monitor
from mlops.core.capture import VARIANT, CaptureSet
from mlops.core.config import Config
from mlops.core.deploy import endpoint_name
from mlops.core.errors import MlopsError
from mlops.core.interfaces import Progress, Registry
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import ModelVersion
from mlops.sagemaker.registry import aws_errors, split_s3_uri
from mlops.sagemaker.stage_stack import served_version

TEMPLATE = REPO_ROOT / "model_deploy" / "monitoring-template.yml"
IMAGE_ENV = "MLOPS_MODEL_MONITOR_IMAGE"
FINISHED = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
# <endpoint>-dq-v<version>-<definition id>, as the template names its job definitions
VERSION_SUFFIX = re.compile(r"-v(\d+)(?:-[0-9a-f]{8})?$")
# SageMaker's capture layout: <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl
HOUR_FOLDER = "%Y/%m/%d/%H"


def schedule_name(endpoint: str) -> str:
    return f"{endpoint}-data-quality"


def monitoring_stack_name(group: str, stage: str) -> str:
    return f"{endpoint_name(group, stage)}-monitoring"


def analyzer_image(region: str) -> str:
    """Model Monitor's analyzer image in `region`: $MLOPS_MODEL_MONITOR_IMAGE, else the
    region's registry from the SageMaker SDK's own table, read as a file (importing the
    SDK costs seconds and belongs to pipeline.py only)."""
    if os.environ.get(IMAGE_ENV):
        return os.environ[IMAGE_ENV]
    try:
        files = importlib.metadata.files("sagemaker-core") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    table = next((f for f in files if f.name == "model-monitor.json"), None)
    if table is None:
        raise MlopsError(
            f"cannot tell Model Monitor's image for {region}: install the aws extra "
            f"(sagemaker) or set ${IMAGE_ENV}"
        )
    images = next(iter(json.loads(table.read_text())["versions"].values()))
    account = images["registries"].get(region)
    if account is None:
        raise MlopsError(f"Model Monitor has no analyzer image in {region}: set ${IMAGE_ENV}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{images['repository']}"


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
    template: str | None = None,
) -> dict[str, str]:
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
    digest = hashlib.sha256((template or TEMPLATE.read_text()).encode())
    digest.update(json.dumps(values, sort_keys=True).encode())
    return {**values, "DefinitionId": digest.hexdigest()[:8]}


def check_baseline(s3: Any, version: ModelVersion) -> None:
    """MlopsError unless the version's Model Monitor baseline files exist (checked before a
    deploy changes anything: a schedule without its baseline fails every hour)."""
    from botocore.exceptions import ClientError

    for uri in baseline_files(version):
        bucket, key = split_s3_uri(uri)
        with aws_errors(f"cannot read {uri}"):
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
                raise MlopsError(
                    f"model version {version.version} has no Model Monitor baseline {uri}: "
                    "it was registered by a pipeline that did not write one (retrain it, or "
                    "set sagemaker.monitoring.enabled false in the stage config)"
                ) from None


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


def capture_location(endpoint: dict) -> tuple[str, str]:
    """(bucket, key prefix) of an endpoint's data capture, from DescribeEndpoint: files are
    `<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`."""
    config = endpoint.get("DataCaptureConfig") or {}
    if not config.get("EnableCapture") or not config.get("DestinationS3Uri"):
        raise MlopsError(
            f"endpoint {endpoint['EndpointName']} captures no data: set "
            "sagemaker.data_capture_percent above 0 in its stage config and deploy it"
        )
    bucket, key = split_s3_uri(config["DestinationS3Uri"])
    return bucket, f"{key.rstrip('/')}/{endpoint['EndpointName']}/{VARIANT}/"


def capture_keys(s3: Any, bucket: str, prefix: str, since: datetime | None) -> list[str]:
    """The capture objects under `prefix`, oldest first; with `since`, listing starts at its
    hour folder, less an hour (a file may run past the hour it was opened in)."""
    request = {"Bucket": bucket, "Prefix": prefix}
    if since is not None:
        request["StartAfter"] = prefix + (since - timedelta(hours=1)).strftime(HOUR_FOLDER)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(**request):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
    return sorted(keys)


def read_s3_capture(
    s3: Any,
    bucket: str,
    keys: list[str],
    features: list[str],
    version: int,
    since: datetime | None,
) -> CaptureSet:
    """The captured requests in `keys` (corrupt lines skipped and counted)."""
    found = CaptureSet()
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        if body and not body.endswith("\n"):
            body += "\n"  # an S3 object is whole: its last line is complete without a newline
        found.files += 1
        # newline="\n": records split on \n only, as written (not on U+2028 inside data)
        lines = io.StringIO(body, newline="\n")
        found.add_lines(lines, features, version, since, f"s3://{bucket}/{key}")
    return found


def quality_section(sections: list[dict], version: int, rows: int, quality: dict) -> None:
    """Put the quality figures in `version`'s section of the report (added if missing)."""
    section = next((s for s in sections if s["version"] == version), None)
    if section is None:
        section = {"version": version, "rows": rows, "violations": []}
        sections.append(section)
    section["quality"] = quality
    if quality["violated"]:
        section["violations"].append(monitor.quality_violation(quality))


class SageMakerMonitor:
    """`mlops.core.monitor.Monitor` from a stage's Model Monitor schedule, and with labels
    from the endpoint's data capture in S3."""

    backend = "sagemaker"

    def __init__(
        self,
        cfg: Config,
        registry: Registry,
        sagemaker: Any = None,
        s3: Any = None,
        cloudformation: Any = None,
    ):
        self.cfg, self.registry = cfg, registry
        if sagemaker is None or s3 is None:
            import boto3

            with aws_errors("cannot create AWS clients"):
                sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
        self.sagemaker, self.s3, self._cloudformation = sagemaker, s3, cloudformation

    @property
    def cloudformation(self) -> Any:
        if self._cloudformation is None:
            import boto3

            with aws_errors("cannot create a CloudFormation client"):
                self._cloudformation = boto3.client("cloudformation")
        return self._cloudformation

    def data_quality(
        self, schedule: str, since: datetime | None, progress: Progress
    ) -> tuple[list[dict], str, list[dict]]:
        """(report sections, source, Model Monitor's findings) of the latest execution."""
        execution = latest_finished(self.sagemaker, schedule, since)
        if execution is None:
            progress(f"no finished execution of {schedule} yet")
            return [], schedule, []
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
        return [section], f"{schedule}: {output}", findings

    def captured(
        self, stage: str, since: datetime | None, progress: Progress
    ) -> tuple[ModelVersion, CaptureSet, str]:
        """The serving version and what its endpoint captured (since `since`), from S3.

        Every request is credited to the version the stage serves now: SageMaker's capture
        does not name the model, so a window across a deploy mixes two versions."""
        stack = endpoint_name(self.cfg.model_package_group, stage)
        with aws_errors(f"cannot describe stack {stack}"):
            served = served_version(self.cloudformation, stack)
        if served is None:
            raise MlopsError(f"nothing is deployed to {stage} on SageMaker: no capture to label")
        number, name = served
        version = self.registry.describe(number)
        with aws_errors(f"cannot describe endpoint {name}"):
            bucket, prefix = capture_location(self.sagemaker.describe_endpoint(EndpointName=name))
        with aws_errors(f"cannot read the baseline of version {number}"):
            baseline = read_s3_json(self.s3, version.baseline_uri) or {}
        features = list(baseline.get("features") or self.cfg.data.features)
        with aws_errors(f"cannot read the data capture s3://{bucket}/{prefix}"):
            keys = capture_keys(self.s3, bucket, prefix, since)
            found = read_s3_capture(self.s3, bucket, keys, features, number, since)
        progress(
            f"read {len(found.requests):,} captured requests from {found.files} object(s) in "
            f"s3://{bucket}/{prefix}"
            + (f", {found.corrupt} corrupt line(s) skipped" if found.corrupt else "")
        )
        return version, found, f"s3://{bucket}/{prefix}"

    def report(
        self,
        stage: str,
        since: datetime | None,
        labels: dict[str, float] | None,
        progress: Progress,
    ) -> dict:
        name = endpoint_name(self.cfg.model_package_group, stage)
        schedule = schedule_name(name)
        sections, source, findings = self.data_quality(schedule, since, progress)
        found = CaptureSet()
        if labels is not None:
            version, found, where = self.captured(stage, since, progress)
            source += f"; capture {where}"
            predictions, truth = monitor.join_labels(found.requests, labels)
            progress(f"version {version.version}: {truth.size} labelled requests joined by id")
            if truth.size:
                quality = monitor.quality_check(
                    monitor.quality(
                        predictions, truth, self.cfg.task, self.cfg.classification.threshold
                    ),
                    version.metrics,
                    self.cfg.monitor.max_mse_increase_pct,
                    self.cfg.monitor,
                )
                rows = sum(len(r.rows) for r in found.requests)
                quality_section(sections, version.version, rows, quality)
        report = monitor.build_report(
            stage,
            name,
            self.backend,
            since,
            sections,
            requests=len(found.requests),
            corrupt=found.corrupt,
            source=source,
            first_corrupt=found.first_corrupt,
        )
        report["sagemaker_violations"] = findings
        return report

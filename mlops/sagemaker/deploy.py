"""`mlops deploy|promote --backend sagemaker`: one CloudFormation stack per stage.

`deploy_stage` renders the parameters of `model_deploy/endpoint-config-template.yml`
from the stage config, deploys them through a change set (create or update), waits,
treats "no changes" as success, prints the stack events that explain a failure,
then deploys the stage's monitoring stack (`model_deploy/monitoring-template.yml`:
the Model Monitor schedule, its baseline the version's statistics and constraints) the
same way, and smoke-tests the endpoint through `invoke_endpoint` with the held-out rows
of the run that trained the version. The stack is also the deployment record:
`live_version` reads which version a stage serves from its outputs.

Names: stack and endpoint `<model_package_group>-<stage>`, monitoring stack
`<model_package_group>-<stage>-monitoring`. Account values come from the environment
(flags have no way in: the deploy command is shared):

    MLOPS_SAGEMAKER_ROLE_ARN  the model's execution role (bootstrap output SageMakerExecutionRoleArn)
    MLOPS_ARTIFACT_BUCKET     where data capture goes (bootstrap output ArtifactBucketName)
    MLOPS_CFN_ROLE_ARN        optional: the role CloudFormation acts as (CloudFormationRoleArn)
    MLOPS_MODEL_MONITOR_IMAGE optional: Model Monitor's analyzer image (default: the region's)
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.config import Config
from mlops.core.deploy import (
    approval_of,
    check_promotable,
    endpoint_name,
    not_deployed,
    pinned_version,
    status_warnings,
)
from mlops.core.errors import MlopsError
from mlops.core.interfaces import DeployOutcome, Progress, Registry
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import ModelVersion
from mlops.core.run_layout import HELD_OUT_KEY, read_held_out
from mlops.core.smoke import SmokeRows, smoke_limit, smoke_rows, smoke_test_endpoint
from mlops.core.stages import StageConfig, load_stage_config
from mlops.sagemaker.monitor import TEMPLATE as MONITORING_TEMPLATE
from mlops.sagemaker.monitor import (
    analyzer_image,
    check_baseline,
    monitoring_stack_name,
    monitoring_stack_parameters,
)
from mlops.sagemaker.pipeline_run import BUCKET_ENV, ROLE_ENV
from mlops.sagemaker.registry import aws_errors, split_s3_uri
from mlops.sagemaker.stage_stack import (
    UNUPDATABLE,
    delete_stack,
    describe_stack,
    served_version,
    stack_outputs,
)

TEMPLATE = REPO_ROOT / "model_deploy" / "endpoint-config-template.yml"
CFN_ROLE_ENV = "MLOPS_CFN_ROLE_ARN"
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
POLL_SECONDS = 15.0
# Versions registered before `held_out_uri`: their split file beside the baseline.
LEGACY_HELD_OUT_FILE = "test.csv"


@dataclass(frozen=True)
class StackResult:
    stack_name: str
    status: str  # the final stack status, or "NO_CHANGES"
    outputs: dict[str, str]


@dataclass(frozen=True)
class SageMakerDeployment:
    stage: str
    version: int
    endpoint_name: str
    stack_name: str
    changed: bool
    smoke: Any = None  # mlops.core.smoke.SmokeResult
    monitoring: StackResult | None = None  # None: the stage has no monitoring


def stack_name(cfg: Config, stage: str) -> str:
    return endpoint_name(cfg.model_package_group, stage)


def traffic_routing(stage_config: StageConfig) -> tuple[str, int]:
    """(TrafficRouting, CanaryInstances) that SageMaker accepts for this stage's fleet.

    A canary may be at most half of the new fleet. The fleet at update time is the
    configured count, or as few as autoscaling's minimum: one canary instance needs two.
    Below that the update shifts all at once (blue/green, the alarms still roll it back
    during the baking time).
    """
    sm = stage_config.sagemaker
    smallest = (
        min(sm.instance_count, sm.autoscaling.min)
        if sm.autoscaling.enabled
        else (sm.instance_count)
    )
    return ("CANARY", 1) if smallest >= 2 else ("ALL_AT_ONCE", 1)


def stack_parameters(
    cfg: Config, stage_config: StageConfig, version: ModelVersion, role_arn: str, bucket: str
) -> dict[str, str]:
    """The template's parameters for one stage: everything but the version is its config."""
    sm = stage_config.sagemaker
    stage = stage_config.stage
    routing, canary = traffic_routing(stage_config)
    return {
        "StageName": stage,
        "EndpointName": stack_name(cfg, stage),
        "ModelPackageArn": version.arn,
        "ModelVersion": str(version.version),
        "ExecutionRoleArn": role_arn,
        "InstanceType": sm.instance_type,
        "InstanceCount": str(sm.instance_count),
        "DataCapturePercent": str(sm.data_capture_percent),
        "DataCaptureUri": f"s3://{bucket}/{cfg.model_package_group}/data-capture/{stage}",
        "AutoscalingEnabled": "true" if sm.autoscaling.enabled else "false",
        "AutoscalingMinCapacity": str(sm.autoscaling.min),
        "AutoscalingMaxCapacity": str(sm.autoscaling.max),
        "TargetInvocationsPerInstance": str(sm.autoscaling.target_invocations_per_instance),
        "TrafficRouting": routing,
        "CanaryInstances": str(canary),
        **serverless_parameters(sm),
    }


def serverless_parameters(sm) -> dict[str, str]:
    """A serverless stage's ServerlessConfig; nothing for one on instances (template default)."""
    if sm.serverless is None:
        return {}
    return {
        "ServerlessMemoryMB": str(sm.serverless.memory_mb),
        "ServerlessMaxConcurrency": str(sm.serverless.max_concurrency),
    }


_describe_stack = describe_stack


def failure_events(cloudformation: Any, name: str, since: datetime) -> list[str]:
    """The stack events since `since` that say why something failed, oldest first."""
    lines: list[str] = []
    request = {"StackName": name}
    while True:
        page = cloudformation.describe_stack_events(**request)
        for event in page.get("StackEvents", []):
            if event["Timestamp"] < since:
                continue
            reason = event.get("ResourceStatusReason", "")
            if "FAILED" in event.get("ResourceStatus", "") or "ROLLBACK" in event.get(
                "ResourceStatus", ""
            ):
                lines.append(
                    f"{event['LogicalResourceId']} {event['ResourceStatus']}"
                    + (f": {reason}" if reason else "")
                )
        if not page.get("NextToken"):
            return list(reversed(lines))
        request["NextToken"] = page["NextToken"]


def wait_for_change_set(
    cloudformation: Any, name: str, change_set: str, sleep: Callable[[float], None], poll: float
) -> dict:
    while True:
        described = cloudformation.describe_change_set(StackName=name, ChangeSetName=change_set)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED", "DELETE_FAILED"):
            return described
        sleep(poll)


def wait_for_stack(
    cloudformation: Any, name: str, sleep: Callable[[float], None], poll: float
) -> dict:
    while True:
        stack = _describe_stack(cloudformation, name)
        if stack is None:
            raise MlopsError(f"stack {name} disappeared while deploying")
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        sleep(poll)


def deploy_stack(
    cloudformation: Any,
    name: str,
    template: str,
    parameters: dict[str, str],
    progress: Progress = print,
    role_arn: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL_SECONDS,
) -> StackResult:
    """Create or update `name` through a change set; "no changes" is a success."""
    with aws_errors(f"cannot deploy stack {name}"):
        existing = _describe_stack(cloudformation, name)
        if existing is not None and existing["StackStatus"] == UNUPDATABLE:
            progress(
                f"stack {name} is {UNUPDATABLE} (its first deploy failed and CloudFormation "
                "cannot update it): deleting it to create it again"
            )
            delete_stack(cloudformation, name, progress, role_arn, sleep, poll)
            existing = None
        kind = (
            "CREATE"
            if existing is None or existing["StackStatus"] == "REVIEW_IN_PROGRESS"
            else "UPDATE"
        )
        change_set = "deploy-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        request = {
            "StackName": name,
            "ChangeSetName": change_set,
            "ChangeSetType": kind,
            "TemplateBody": template,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Tags": [{"Key": "managed-by", "Value": "mlops"}],
        }
        if role_arn:
            request["RoleARN"] = role_arn
        started = datetime.now(UTC)
        cloudformation.create_change_set(**request)
        progress(f"change set {change_set} ({kind.lower()}) for stack {name}")
        described = wait_for_change_set(cloudformation, name, change_set, sleep, poll)
        if described["Status"] != "CREATE_COMPLETE":
            reason = described.get("StatusReason", "")
            cloudformation.delete_change_set(StackName=name, ChangeSetName=change_set)
            if any(marker in reason for marker in NO_CHANGES):
                progress(f"stack {name} is up to date: no changes")
                outputs = _outputs(existing or {})
                return StackResult(name, "NO_CHANGES", outputs)
            raise MlopsError(f"change set for {name} failed: {reason}")
        for change in described.get("Changes", []):
            rc = change.get("ResourceChange", {})
            progress(f"  {rc.get('Action', '?'):<7} {rc.get('LogicalResourceId', '?')}")
        cloudformation.execute_change_set(StackName=name, ChangeSetName=change_set)
        stack = wait_for_stack(cloudformation, name, sleep, poll)
        status = stack["StackStatus"]
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            events = failure_events(cloudformation, name, started)
            for line in events:
                progress(f"  {line}")
            why = events[0] if events else stack.get("StackStatusReason", "no reason given")
            raise MlopsError(f"stack {name} ended {status}: {why}")
        progress(f"stack {name}: {status}")
        return StackResult(name, status, _outputs(stack))


_outputs = stack_outputs


def monitoring_off_reason(stage_config: StageConfig) -> str:
    """Why a stage gets no monitoring stack ("" when it gets one)."""
    sm = stage_config.sagemaker
    if not sm.monitoring.enabled:
        return "sagemaker.monitoring.enabled is false"
    if sm.data_capture_percent == 0:
        return "sagemaker.data_capture_percent is 0 (nothing captured to monitor)"
    return ""


def monitoring_parameters(
    cfg: Config, stage_config: StageConfig, version: ModelVersion, s3: Any, region: str
) -> dict[str, str] | None:
    """The monitoring stack's parameters for this deploy (None: the stage has none),
    resolved and checked before anything is deployed."""
    if monitoring_off_reason(stage_config):
        return None
    check_baseline(s3, version)
    stage = stage_config.stage
    output = f"s3://{_env(BUCKET_ENV)}/{cfg.model_package_group}/monitoring/{stage}"
    return monitoring_stack_parameters(
        cfg, stage, version, _env(ROLE_ENV), analyzer_image(region), output
    )


def deploy_monitoring(
    cloudformation: Any,
    cfg: Config,
    stage_config: StageConfig,
    parameters: dict[str, str] | None,
    progress: Progress,
    role_arn: str | None,
    sleep: Callable[[float], None],
) -> StackResult | None:
    """Create or update the stage's monitoring stack; a stage without monitoring leaves an
    existing one as it is (deleting a schedule is a decision, not a side effect)."""
    name = monitoring_stack_name(cfg.model_package_group, stage_config.stage)
    if parameters is None:
        why = monitoring_off_reason(stage_config)
        with aws_errors(f"cannot describe stack {name}"):
            existing = _describe_stack(cloudformation, name)
        if existing is None:
            progress(f"no monitoring for {stage_config.stage}: {why}")
        else:
            baseline = _outputs(existing).get("ModelVersion", "?")
            progress(
                f"monitoring of {stage_config.stage} is off ({why}), but stack {name} exists: "
                f"left as it is (its schedule compares with version {baseline}'s baseline); "
                f"delete it with: aws cloudformation delete-stack --stack-name {name}"
            )
        return None
    progress(
        f"monitoring {stage_config.stage}: baseline of version {parameters['ModelVersion']} "
        f"({parameters['BaselineStatisticsUri']})"
    )
    return deploy_stack(
        cloudformation,
        name,
        MONITORING_TEMPLATE.read_text(),
        parameters,
        progress,
        role_arn=role_arn,
        sleep=sleep,
    )


def held_out_uri(version: ModelVersion) -> tuple[str, bool]:
    """(S3 URI, legacy) of the held-out rows of the run that trained `version`.

    A version records its held-out folder in its lineage (`held_out_uri`: raw rows, CSV
    with a header, one or more files). A version registered before that (legacy) has
    them in `.../preprocess/test/test.csv` beside its registered baseline
    (`.../preprocess/baseline/baseline.json`), headerless with the target first.
    """
    recorded = version.lineage.get(HELD_OUT_KEY)
    if recorded:
        if not str(recorded).startswith("s3://"):
            raise MlopsError(
                f"model version {version.version}'s held-out rows are not in S3: {recorded}"
            )
        return str(recorded).rstrip("/"), False
    parts = version.baseline_uri.rsplit("/", 2)
    if len(parts) != 3 or not version.baseline_uri.startswith("s3://"):
        raise MlopsError(
            f"model version {version.version} has no {HELD_OUT_KEY} and no S3 baseline: "
            "cannot find its held-out rows"
        )
    return f"{parts[0]}/test/{LEGACY_HELD_OUT_FILE}", True


def held_out_keys(s3: Any, uri: str) -> list[str]:
    """The CSV objects of a held-out folder in S3, in key order (as read_split orders files)."""
    bucket, prefix = split_s3_uri(uri + "/")
    keys: list[str] = []
    with aws_errors(f"cannot list the held-out rows {uri}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".csv")]
    if not keys:
        raise MlopsError(f"no held-out rows (.csv) under {uri}")
    return sorted(keys)


def download_held_out(s3: Any, uri: str, rows: int, folder: Path) -> None:
    """Enough of a held-out folder's files for `rows` rows (a split may span many files)."""
    bucket = split_s3_uri(uri + "/")[0]
    found = 0
    for index, key in enumerate(held_out_keys(s3, uri)):
        path = folder / f"{index:06d}.csv"  # keeps the key order
        with aws_errors(f"cannot read the held-out rows s3://{bucket}/{key}"):
            s3.download_file(bucket, key, str(path))
        found += len(read_held_out(path, rows))
        if found >= rows:
            return


def legacy_smoke_rows(path: Path, cfg: Config, rows: int, source: str) -> SmokeRows:
    """The first rows of a split written before splits had a header: the target, then the
    config's features in order."""
    import pandas as pd

    frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, nrows=rows)
    columns = [cfg.data.target, *cfg.data.features]
    if frame.shape[1] != len(columns):
        raise MlopsError(
            f"{source} has {frame.shape[1]} columns; the config's target and features are "
            f"{len(columns)}: the version was trained on other columns"
        )
    frame.columns = columns
    return smoke_rows(frame, cfg.data.features, cfg.data.target, source)


def held_out_rows(s3: Any, cfg: Config, version: ModelVersion, rows: int) -> SmokeRows:
    """The smoke test's rows from the version's held-out rows in S3: what
    `mlops.core.smoke.rows_for_version` reads from $MLOPS_HOME for a local version.

    The request columns are the config's features and target (reading the model's own
    manifest would mean downloading its model.tar.gz): a version trained on other columns
    than the checkout's config names fails the smoke test, with the missing column named.
    `s3` None: a client of your AWS setup."""
    s3 = s3 or _clients()[1]
    uri, legacy = held_out_uri(version)
    with tempfile.TemporaryDirectory(prefix="mlops-held-out-") as tmp:
        folder = Path(tmp)
        if legacy:
            bucket, key = split_s3_uri(uri)
            with aws_errors(f"cannot read the held-out rows {uri}"):
                s3.download_file(bucket, key, str(folder / LEGACY_HELD_OUT_FILE))
            return legacy_smoke_rows(folder / LEGACY_HELD_OUT_FILE, cfg, rows, uri)
        download_held_out(s3, uri, rows, folder)
        frame = read_held_out(folder, rows)
    return smoke_rows(frame, cfg.data.features, cfg.data.target, uri)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise MlopsError(f"${name} is not set (an output of the bootstrap stack)")
    return value


def _clients() -> tuple[Any, Any]:
    import boto3

    with aws_errors("cannot create AWS clients"):
        return boto3.client("cloudformation"), boto3.client("s3")


def deploy_stage(
    cfg: Config,
    stage_config: StageConfig,
    version: ModelVersion,
    registry: Registry,
    progress: Progress = print,
    aws: tuple[Any, Any] | None = None,
    smoke_test: Callable | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SageMakerDeployment:
    """Deploy `version` (already resolved: Approved, with its ARN) to a stage and smoke-test it."""
    if not version.arn:
        raise MlopsError(f"model version {version.version} has no model package ARN")
    cloudformation, s3 = aws or _clients()
    stage = stage_config.stage
    cfn_role = os.environ.get(CFN_ROLE_ENV) or None
    parameters = stack_parameters(cfg, stage_config, version, _env(ROLE_ENV), _env(BUCKET_ENV))
    monitoring = monitoring_parameters(
        cfg, stage_config, version, s3, cloudformation.meta.region_name
    )
    result = deploy_stack(
        cloudformation,
        stack_name(cfg, stage),
        TEMPLATE.read_text(),
        parameters,
        progress,
        role_arn=cfn_role,
        sleep=sleep,
    )
    name = result.outputs.get("EndpointName")
    if not name:
        raise MlopsError(f"stack {result.stack_name} has no EndpointName output")
    # After the endpoint: a schedule needs its endpoint, and follows the version it serves.
    monitored = deploy_monitoring(
        cloudformation, cfg, stage_config, monitoring, progress, cfn_role, sleep
    )
    rows = held_out_rows(s3, cfg, version, cfg.smoke_test.rows)
    smoke = (smoke_test or smoke_test_endpoint)(name, rows, smoke_limit(cfg), None)
    progress(smoke.summary())
    if not smoke.passed:
        raise MlopsError(
            f"smoke test of {stage} (version {version.version}, endpoint {name}) failed: "
            f"{smoke.reason}"
        )
    return SageMakerDeployment(
        stage,
        version.version,
        name,
        result.stack_name,
        result.status != "NO_CHANGES",
        smoke,
        monitored,
    )


def live_version(
    cfg: Config, stage_config: StageConfig, registry: Registry, cloudformation: Any = None
) -> tuple[int, str] | None:
    """(version, endpoint name) a stage serves, from its stack; None when nothing is deployed."""
    if cloudformation is None:
        cloudformation = _clients()[0]
    name = stack_name(cfg, stage_config.stage)
    with aws_errors(f"cannot describe stack {name}"):
        return served_version(cloudformation, name)


def stop_stage(
    cfg: Config,
    stage: str,
    progress: Progress = print,
    cloudformation: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, str] | None:
    """Delete a stage's stacks (monitoring schedule first: it needs the endpoint; then the
    endpoint, model, alarms, scaling); what it served, or None when there was no stack."""
    if cloudformation is None:
        cloudformation = _clients()[0]
    role_arn = os.environ.get(CFN_ROLE_ENV) or None
    monitoring = monitoring_stack_name(cfg.model_package_group, stage)
    with aws_errors(f"cannot delete stack {monitoring}"):
        if _describe_stack(cloudformation, monitoring) is not None:
            delete_stack(cloudformation, monitoring, progress, role_arn, sleep)
    name = stack_name(cfg, stage)
    with aws_errors(f"cannot delete stack {name}"):
        stack = _describe_stack(cloudformation, name)
        if stack is None:
            return None
        served = served_version(cloudformation, name)
        delete_stack(cloudformation, name, progress, role_arn, sleep)
    return served


class SageMakerDeployer:
    """Stages as CloudFormation stacks of SageMaker endpoints (see the module doc)."""

    backend = "sagemaker"

    def __init__(self, cfg: Config, registry: Registry):
        self.cfg, self.registry = cfg, registry

    def current_version(self, stage: str) -> int | None:
        return None  # the stack is the record; reading it costs an AWS call per deploy

    def deploy_version(
        self, stage_config: StageConfig, version: ModelVersion, progress: Progress
    ) -> DeployOutcome:
        result = deploy_stage(self.cfg, stage_config, version, self.registry, progress)
        return DeployOutcome(
            stage_config.stage, version.version, result.endpoint_name, None, result.smoke
        )

    def live(self, stage: str) -> tuple[ModelVersion, str]:
        """The version serving a stage and its endpoint name; MlopsError if none."""
        live = live_version(self.cfg, load_stage_config(stage), self.registry)
        if live is None:
            raise MlopsError(f"nothing is deployed to {stage} on SageMaker")
        number, name = live
        return self.registry.describe(number), name

    def smoke_rows(self, version: ModelVersion, rows: int) -> SmokeRows:
        return held_out_rows(None, self.cfg, version, rows)

    def promotable_staging(self, prod_config: StageConfig, progress: Progress) -> ModelVersion:
        """The same checks as locally, with the stack telling what serves staging (read in
        staging's account when it has its own: mlops.sagemaker.accounts)."""
        from mlops.sagemaker.accounts import reading_stage

        staging = load_stage_config("staging")
        with reading_stage(staging):
            live = live_version(self.cfg, staging, self.registry)
        if live is None:
            raise MlopsError("nothing is deployed to staging on SageMaker")
        version, name = self.registry.describe(live[0]), live[1]
        check_promotable(version, prod_config)
        rows = self.smoke_rows(version, self.cfg.smoke_test.rows)
        with reading_stage(staging):
            smoke = smoke_test_endpoint(name, rows, smoke_limit(self.cfg), None)
        if not smoke.passed:
            raise MlopsError(f"refusing to promote: staging's smoke test fails now: {smoke.reason}")
        return version

    def stage_status(self, stage: str) -> dict:
        """What serves a stage, read from its CloudFormation stack."""
        pinned = pinned_version(stage)
        live = live_version(self.cfg, load_stage_config(stage), self.registry)
        if live is None:
            return not_deployed(stage, pinned)
        version, name = live
        approval = approval_of(self.registry, version)
        health = "InService"  # live_version only reports stacks that completed
        return {
            **not_deployed(stage, pinned),
            "deployed": True,
            "version": version,
            "endpoint_name": name,
            "health": health,
            "approval_status": approval,
            "warnings": status_warnings(stage, version, approval, health, pinned),
        }

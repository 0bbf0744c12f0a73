"""`mlops pipeline definition|run --backend sagemaker`: render, upload, upsert, start, wait.

Rendering (mlops.sagemaker.pipeline_definition) imports the SageMaker SDK and records the S3
objects the definition refers to; everything that talks to AWS here is plain
boto3, so tests can run it against moto or botocore's Stubber.

Where the pipeline runs comes from flags or the environment (the repository
variables the bootstrap stack's outputs fill in):

    --region    AWS_REGION / AWS_DEFAULT_REGION
    --role-arn  MLOPS_SAGEMAKER_ROLE_ARN   (the bootstrap stack's SageMakerExecutionRoleArn)
    --bucket    MLOPS_ARTIFACT_BUCKET      (its ArtifactBucketName)

`pipeline definition` falls back to clearly fake placeholders so that it prints
offline, with no account at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.config import Config
from mlops.core.errors import MlopsError, UsageError
from mlops.sagemaker.champion import resolve_champion
from mlops.sagemaker.registry import SageMakerRegistry, aws_errors, split_s3_uri

ROLE_ENV = "MLOPS_SAGEMAKER_ROLE_ARN"
BUCKET_ENV = "MLOPS_ARTIFACT_BUCKET"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDER_REGION = "us-east-1"
PLACEHOLDER_ROLE = f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/mlops-sagemaker-execution"
PLACEHOLDER_BUCKET = f"mlops-artifacts-{PLACEHOLDER_ACCOUNT}"
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
DONE = ("Succeeded", "Failed", "Stopped")
# Several processing instances share out the input's files (ShardedByS3Key): one object
# would feed one of them. A local file is uploaded in parts instead.
ONE_OBJECT_SHARDED = (
    "{uri} is one S3 object: sagemaker.processing_instance_count {count} shares out the "
    "input's files, so {idle} instance(s) would get none; pass a local file (uploaded in "
    "{count} parts) or use processing_instance_count 1"
)
POLL_SECONDS = 30.0


def region_from(args: argparse.Namespace) -> str | None:
    if getattr(args, "region", None):
        return args.region
    return next((os.environ[e] for e in REGION_ENVS if os.environ.get(e)), None)


def target_from(cfg: Config, args: argparse.Namespace, placeholders: bool = False):
    """The account-specific part of a render: region, execution role, artifact bucket."""
    from mlops.sagemaker.pipeline_definition import Target

    region = region_from(args)
    role = getattr(args, "role_arn", None) or os.environ.get(ROLE_ENV)
    bucket = getattr(args, "bucket", None) or os.environ.get(BUCKET_ENV)
    if placeholders:
        region, role, bucket = (
            region or PLACEHOLDER_REGION,
            role or PLACEHOLDER_ROLE,
            bucket or PLACEHOLDER_BUCKET,
        )
    missing = [
        hint
        for value, hint in (
            (region, "--region or $AWS_REGION"),
            (role, f"--role-arn or ${ROLE_ENV}"),
            (bucket, f"--bucket or ${BUCKET_ENV}"),
        )
        if not value
    ]
    if missing:
        raise UsageError(
            "the SageMaker backend needs " + ", ".join(missing) + " (bootstrap stack outputs)"
        )
    if not ROLE_ARN_PATTERN.match(role):
        raise UsageError(f"--role-arn must be a full IAM role ARN, not {role!r}")
    target = Target(region=region, role_arn=role, bucket=bucket, prefix=cfg.model_package_group)
    if getattr(args, "scope", "main") == "pr":
        from mlops.core.lineage import pr_number
        from mlops.sagemaker.pipeline_definition import pr_target

        number = getattr(args, "pr_number", None) or pr_number()
        if not number.isdigit():
            raise UsageError(
                "--scope pr needs the PR number: $MLOPS_PR_NUMBER, or GITHUB_REF=refs/pull/<n>/merge"
            )
        return pr_target(cfg, target, number)
    return target


def step_names(steps: list[dict]) -> list[str]:
    """Every step of a definition in order, a condition's branches after it."""
    names: list[str] = []
    for step in steps:
        names.append(step["Name"])
        arguments = step.get("Arguments", {})
        for branch in ("IfSteps", "ElseSteps"):
            names += step_names(arguments.get(branch, [])) if isinstance(arguments, dict) else []
    return names


def runs_line(name: str, definition: dict, target: Any) -> str:
    """What an execution of this definition runs and where it writes, for a reviewer."""
    from mlops.sagemaker.pipeline_definition import REGISTER_STEP

    steps = step_names(definition["Steps"])
    registers = "registers a version" if REGISTER_STEP in steps else "registers nothing"
    return f"{name}: {', '.join(steps)}; {registers}; writes under {target.uri()}/"


def print_definition(cfg: Config, args: argparse.Namespace) -> int:
    """Print the pipeline definition JSON: offline, no credentials needed."""
    from mlops.sagemaker.pipeline_definition import render_pipeline

    target = target_from(cfg, args, placeholders=True)
    if target.role_arn == PLACEHOLDER_ROLE or target.bucket == PLACEHOLDER_BUCKET:
        print(
            f"note: placeholder role/bucket (account {PLACEHOLDER_ACCOUNT}); pass --role-arn "
            "and --bucket for a definition you can upsert",
            file=sys.stderr,
        )
    rendered = render_pipeline(cfg, target)
    definition = json.loads(rendered.definition)
    print(runs_line(rendered.name, definition, target), file=sys.stderr)
    text = json.dumps(definition, indent=2) + "\n"
    if getattr(args, "out", None):
        args.out.write_text(text)
        print(f"wrote the definition of {rendered.name} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ---- run: upload, upsert, start ------------------------------------------------------------


def put_objects(s3: Any, uploads) -> int:
    """Put the objects a rendered pipeline refers to; returns how many were written."""
    with aws_errors("cannot upload pipeline code to S3"):
        for upload in uploads:
            bucket, key = split_s3_uri(upload.uri)
            s3.put_object(Bucket=bucket, Key=key, Body=upload.body)
    return len(uploads)


def upload_data(s3: Any, target, data_file: Path, data_sha256: str, parts: int = 1) -> str:
    """The input CSV at a key named after its content, so a rerun reuses the step cache;
    with `parts` > 1, as that many files under such a prefix (mlops.core.data_parts), one
    per processing instance."""
    if parts == 1:
        uri = target.uri("data", data_sha256, data_file.name)
        bucket, key = split_s3_uri(uri)
        with aws_errors(f"cannot upload {data_file} to {uri}"):
            s3.upload_file(str(data_file), bucket, key)
        return uri
    from mlops.core.data_parts import write_parts

    prefix = target.uri("data", data_sha256, f"parts-{parts}")
    with tempfile.TemporaryDirectory(prefix="mlops-data-parts-") as tmp:
        for path in write_parts(data_file, parts, Path(tmp)):
            bucket, key = split_s3_uri(f"{prefix}/{path.name}")
            with aws_errors(f"cannot upload {data_file} to {prefix}/"):
                s3.upload_file(str(path), bucket, key)
    return prefix + "/"


def s3_sha256(s3: Any, uri: str) -> str:
    """sha256 of an S3 object, streamed (lineage needs it; S3 ETags are not content hashes)."""
    bucket, key = split_s3_uri(uri)
    digest = hashlib.sha256()
    with aws_errors(f"cannot read the input data {uri} (name one CSV object)"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def input_data(s3: Any, target, data: str, parts: int = 1) -> tuple[str, str]:
    """(S3 URI, sha256) of the run's input: an s3:// object as is, a local file uploaded (as
    `parts` files when several processing instances share it out)."""
    from mlops.core.lineage import check_data_file, sha256_file

    if data.startswith("s3://"):
        if parts > 1:
            raise UsageError(ONE_OBJECT_SHARDED.format(uri=data, count=parts, idle=parts - 1))
        return data, s3_sha256(s3, data)
    data_file = Path(data)
    check_data_file(data_file)
    data_sha256 = sha256_file(data_file)
    return upload_data(s3, target, data_file, data_sha256, parts), data_sha256


def snapshot_parameters(s3: Any, target, snapshot: dict) -> dict[str, str]:
    """A feature-store snapshot's lineage as pipeline parameter values. Its query goes to S3
    under its own hash (a metadata value holds 256 characters, an Athena query more), beside
    the run's data (where the build role may write); the version records hash and URI."""
    from mlops.core.feature_store import SNAPSHOT_PREFIX, query_sha256
    from mlops.sagemaker.pipeline_definition import SNAPSHOT_PARAMETERS

    digest = query_sha256(snapshot["query"])
    uri = target.uri("data", "feature-snapshot-queries", f"{digest}.sql")
    bucket, key = split_s3_uri(uri)
    with aws_errors(f"cannot store the snapshot's query at {uri}"):
        s3.put_object(Bucket=bucket, Key=key, Body=snapshot["query"].encode())
    values = {
        "feature_group": snapshot["feature_group"],
        "as_of": snapshot["as_of"],
        "rows": str(snapshot["rows"]),
        "sha256": snapshot["sha256"],
        "query_sha256": digest,
        "query_uri": uri,
    }
    return {
        name: values[key.removeprefix(SNAPSHOT_PREFIX)] for name, key in SNAPSHOT_PARAMETERS.items()
    }


def upsert_pipeline(sagemaker: Any, name: str, definition: str, role_arn: str, description: str):
    """Create the pipeline, or update it when it exists (what the SDK's upsert does)."""
    from botocore.exceptions import ClientError

    request = {
        "PipelineName": name,
        "PipelineDefinition": definition,
        "PipelineDescription": description,
        "RoleArn": role_arn,
    }
    with aws_errors(f"cannot upsert pipeline {name}"):
        try:
            return sagemaker.create_pipeline(**request)["PipelineArn"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") != "ValidationException" or "already exists" not in error.get(
                "Message", ""
            ):
                raise
        return sagemaker.update_pipeline(**request)["PipelineArn"]


def check_metadata_values(values: dict[str, str]) -> None:
    """Lineage values end in CustomerMetadataProperties: refuse what the API would reject
    at the end of the run, before the run starts."""
    from mlops.sagemaker.pipeline_definition import METADATA_VALUE

    for name, value in values.items():
        if not METADATA_VALUE.match(value):
            raise UsageError(
                f"{name}={value!r} cannot be model package metadata "
                "(1-256 letters, digits, spaces or _.:/=+-@)"
            )


def stop_superseded(sagemaker: Any, name: str) -> list[str]:
    """Stop a PR pipeline's executions still running (a newer push supersedes them: the
    cancelled GitHub job left its SageMaker execution running, paid for and unread)."""
    import uuid

    with aws_errors(f"cannot list the executions of {name}"):
        pages = sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=name)
        running = [
            e["PipelineExecutionArn"]
            for page in pages
            for e in page["PipelineExecutionSummaries"]
            if e["PipelineExecutionStatus"] == "Executing"
        ]
    for arn in running:
        with aws_errors(f"cannot stop the superseded execution {arn}"):
            sagemaker.stop_pipeline_execution(
                PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex
            )
    return running


def start_execution(sagemaker: Any, name: str, parameters: dict[str, str]) -> str:
    with aws_errors(f"cannot start pipeline {name}"):
        response = sagemaker.start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )
    return response["PipelineExecutionArn"]


# ---- run: wait and report ------------------------------------------------------------------


@dataclass(frozen=True)
class StepStatus:
    name: str
    status: str
    reason: str = ""
    model_package_arn: str = ""
    seconds: float | None = None  # from its start to its end, once it ended (for the cost)


@dataclass(frozen=True)
class ExecutionReport:
    arn: str
    status: str
    reason: str
    steps: tuple[StepStatus, ...] = field(default_factory=tuple)

    @property
    def model_package_arn(self) -> str:
        return next((s.model_package_arn for s in self.steps if s.model_package_arn), "")

    @property
    def failed_step(self) -> StepStatus | None:
        return next((s for s in self.steps if s.status == "Failed"), None)


def execution_steps(sagemaker: Any, execution_arn: str) -> tuple[StepStatus, ...]:
    """Every step of an execution so far, in start order (the API lists newest first)."""
    steps: list[StepStatus] = []
    request: dict[str, Any] = {"PipelineExecutionArn": execution_arn}
    with aws_errors("cannot list pipeline execution steps"):
        while True:
            page = sagemaker.list_pipeline_execution_steps(**request)
            for item in page.get("PipelineExecutionSteps", []):
                register = item.get("Metadata", {}).get("RegisterModel", {})
                start, end = item.get("StartTime"), item.get("EndTime")
                steps.append(
                    StepStatus(
                        name=item["StepName"],
                        status=item.get("StepStatus", ""),
                        reason=item.get("FailureReason", ""),
                        model_package_arn=register.get("Arn", ""),
                        seconds=(end - start).total_seconds() if start and end else None,
                    )
                )
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return tuple(reversed(steps))


def wait_for_execution(
    sagemaker: Any,
    execution_arn: str,
    progress: Callable[[str], None] = print,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionReport:
    """Poll until the execution ends, reporting each step status change once."""
    seen: dict[str, str] = {}
    while True:
        with aws_errors("cannot describe the pipeline execution"):
            execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        steps = execution_steps(sagemaker, execution_arn)
        for step in steps:
            if seen.get(step.name) != step.status:
                seen[step.name] = step.status
                progress(f"  {step.name:<12} {step.status}")
        status = execution["PipelineExecutionStatus"]
        if status in DONE:
            return ExecutionReport(execution_arn, status, execution.get("FailureReason", ""), steps)
        sleep(poll_seconds)


def failure_message(report: ExecutionReport) -> str:
    step = report.failed_step
    if step is not None:
        return f"pipeline step '{step.name}' failed: {step.reason or 'no reason given'}"
    return f"pipeline execution {report.status}: {report.reason or 'no reason given'}"


def run_parameters(
    data_uri: str,
    data_sha256: str,
    git_commit: str,
    pr_number: str,
    champion_uri: str | None,
    snapshot: dict[str, str] | None = None,
) -> dict[str, str]:
    """Values for the pipeline parameters this run sets (the rest keep their defaults).
    `snapshot`: the feature-store snapshot's parameters (`snapshot_parameters`), if any."""
    from mlops.sagemaker import pipeline_definition as p

    lineage = {
        p.GIT_COMMIT: git_commit or "unknown",
        p.PR_NUMBER: pr_number or p.NO_VALUE,
        p.DATA_SHA256: data_sha256,
        **(snapshot or {}),
    }
    check_metadata_values({**lineage, p.INPUT_DATA: data_uri})
    values = {p.INPUT_DATA: data_uri, **lineage}
    if champion_uri:
        values[p.CHAMPION_MODEL] = champion_uri
    return values


def run_lineage(parameters: dict[str, str]) -> dict[str, str]:
    """The lineage a run's parameters carry, under the names the registry uses."""
    from mlops.sagemaker import pipeline_definition as p

    names = {**p.LINEAGE_PARAMETERS, **p.SNAPSHOT_PARAMETERS}
    lineage = {key: parameters[name] for name, key in names.items() if name in parameters}
    return {**lineage, "data_file": parameters[p.INPUT_DATA], "backend": "sagemaker"}


def clients(region: str) -> tuple[Any, Any, Any]:
    import boto3

    with aws_errors("cannot create AWS clients"):
        return tuple(
            boto3.client(name, region_name=region) for name in ("sagemaker", "s3", "cloudformation")
        )


def run_sagemaker_pipeline(
    cfg: Config,
    args: argparse.Namespace,
    aws: tuple | None = None,
    tracker: Any = None,
    snapshot: dict | None = None,
) -> int:
    """Render, upload, upsert, start; then wait and report unless --no-wait. Exit 1 on failure.
    A waited-for execution is tracked on the managed MLflow server, when one is configured.
    `snapshot`: the feature-store snapshot the data is (`Snapshot.lineage()`), recorded in
    the registered version's metadata."""
    from mlops.core.graph import load_pipeline
    from mlops.core.lineage import git_commit, pr_number
    from mlops.sagemaker.pipeline_definition import render_pipeline
    from mlops.sagemaker.tracking import ExecutionTracking, sagemaker_tracker

    target = target_from(cfg, args)
    pipe = load_pipeline(cfg)
    sagemaker, s3, cloudformation = _with_cloudformation(aws, target.region)
    parts = cfg.sagemaker.processing_instance_count
    data_uri, data_sha256 = input_data(s3, target, str(args.data), parts)
    rendered = render_pipeline(cfg, target, pipe)
    if rendered.missing_wheels:
        raise UsageError(
            f"step {', '.join(rendered.missing_wheels)}: its packages ship as wheels with its "
            "code (the job has no internet): run `make wheels` first"
        )
    print(
        f"pipeline {rendered.name}: {put_objects(s3, rendered.uploads)} code objects in "
        f"s3://{target.bucket}/{target.prefix}/code/"
    )
    print(f"data:     {data_uri}")
    snapshot_values = snapshot_parameters(s3, target, snapshot) if snapshot else None
    if snapshot_values:
        print(
            f"snapshot: as of {snapshot['as_of']}, {snapshot['rows']} rows; its query in "
            f"{snapshot_values['FeatureSnapshotQueryUri']}"
        )
    registry = SageMakerRegistry(cfg.model_package_group, sagemaker, s3)
    champion = resolve_champion(registry, cloudformation)
    if champion:
        print(f"champion: version {champion.version}, what prod serves ({champion.model_uri})")
    parameters = run_parameters(
        data_uri,
        data_sha256,
        getattr(args, "git_commit", None) or git_commit(),
        getattr(args, "pr_number", None) or pr_number(),
        champion.model_uri if champion else None,
        snapshot_values,
    )
    pipeline_arn = upsert_pipeline(
        sagemaker,
        rendered.name,
        rendered.definition,
        target.role_arn,
        f"{cfg.model_package_group}: {', '.join(s.name for s in pipe.steps)}, gate"
        + (", register" if target.registers else " (PR run: registers nothing)"),
    )
    if not target.registers:  # a PR's pipeline: this push supersedes its earlier runs
        for arn in stop_superseded(sagemaker, rendered.name):
            print(f"stopped:  {arn} (superseded by this run)")
    execution_arn = start_execution(sagemaker, rendered.name, parameters)
    print(f"upserted: {pipeline_arn}")
    print(f"started:  {execution_arn}")
    if not getattr(args, "wait", True):
        return 0
    tracking = ExecutionTracking(
        tracker if tracker is not None else sagemaker_tracker(cfg), cfg, pipe.evaluation
    )
    tracking.start(execution_arn, run_lineage(parameters))
    report = None
    try:
        report = wait_for_execution(
            sagemaker, execution_arn, poll_seconds=getattr(args, "poll_seconds", POLL_SECONDS)
        )
    finally:  # a failed or interrupted execution is a tracked run too
        tracking.finish(sagemaker, s3, target, execution_arn, report)
    for step in report.steps:
        print(f"{step.name:<12} {step.status}" + (f": {step.reason}" if step.reason else ""))
    from mlops.sagemaker.run_cost import report_cost

    report_cost(cfg, pipe, {s.name: s.seconds for s in report.steps if s.seconds is not None})
    if report.status != "Succeeded" or report.failed_step is not None:
        raise MlopsError(failure_message(report))
    if not target.registers:
        print(f"{rendered.name}: the gate passed; a PR run registers nothing")
        return 0
    if not report.model_package_arn:
        raise MlopsError(f"pipeline {report.status} but registered no model package")
    print(f"registered: {report.model_package_arn}")
    # The card is not attached here: UpdateModelPackage can also approve, and no CI role may
    # (bootstrap.yml's trust model); the approver, who holds that right, attaches it.
    print("next: mlops models card VERSION --backend sagemaker     # attach its model card")
    print("      mlops models approve VERSION --backend sagemaker  # a human approver's decision")
    return 0


def _with_cloudformation(aws: tuple | None, region: str) -> tuple[Any, Any, Any]:
    """(sagemaker, s3, cloudformation): given clients, with a CloudFormation one added when
    a caller passed only the first two."""
    if aws is None:
        return clients(region)
    if len(aws) == 3:
        return aws
    import boto3

    with aws_errors("cannot create AWS clients"):
        return (*aws, boto3.client("cloudformation", region_name=region))


class SageMakerPipelineRunner:
    """`mlops.core.interfaces.PipelineRunner` on SageMaker: upsert, start, wait, report."""

    def __init__(self, cfg: Config, args: argparse.Namespace):
        self.cfg, self.args = cfg, args

    def run(
        self, data: str, progress: Callable[[str], None] = print, extra_lineage: dict | None = None
    ) -> int:
        snapshot = (extra_lineage or {}).get("feature_snapshot")
        # `data` wins over --data: with --from-feature-store it is the snapshot file.
        args = argparse.Namespace(**{**vars(self.args), "data": data})
        return run_sagemaker_pipeline(self.cfg, args, snapshot=snapshot)

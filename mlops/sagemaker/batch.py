"""Batch scoring on SageMaker: a batch transform job from the version's model package.

The model is created from the registered model package (its image, its model.tar.gz
and the inference.py it was registered with), so a batch job scores with the same code
as the endpoint. The input is headerless CSV on S3, split by line and sent in
multi-record batches; with `data.id_column` configured the id is the first column:
the model sees the rest (`InputFilter $[1:]`) and the output joins the input line with
its prediction (`JoinSource Input`) and keeps the id and the prediction (`$[0,-1]`).
The job is waited on, its status changes reported, like a pipeline run.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlops.core.batch import BatchJob, BatchResult
from mlops.core.config import Config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.interfaces import Progress
from mlops.sagemaker.pipeline_run import ROLE_ARN_PATTERN, ROLE_ENV, region_from
from mlops.sagemaker.registry import aws_errors

DONE = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 30.0
MAX_PAYLOAD_MB = 6


def job_name(group: str, version: int, now: datetime | None = None) -> str:
    """`<group>-v<N>-<utc time>`, within SageMaker's 63 characters."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    suffix = f"-v{version}-{stamp}"
    return re.sub(r"[^a-zA-Z0-9-]", "-", group)[: 63 - len(suffix)] + suffix


def model_name(group: str, version: int) -> str:
    """The SageMaker model a batch job of `version` creates (63 characters at most: the
    config's group length is checked against it, mlops/core/names.py)."""
    return f"{group}-v{version}-batch"


def transform_request(job: BatchJob, name: str, model: str, cfg: Config) -> dict:
    """CreateTransformJob's arguments for a batch job."""
    for uri, flag in ((job.data, "--data"), (job.out, "--out")):
        if not str(uri).startswith("s3://"):
            raise UsageError(f"{flag} must be an s3:// URI with --backend sagemaker, not {uri}")
    processing = {"JoinSource": "Input"}
    if job.id_column:
        processing |= {"InputFilter": "$[1:]", "OutputFilter": "$[0,-1]"}
    return {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": job.data}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": job.out,
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": cfg.batch.instance_type,
            "InstanceCount": cfg.batch.instance_count,
        },
        "DataProcessing": processing,
        "Tags": [{"Key": "mlops:model-version", "Value": str(job.version.version)}],
    }


def ensure_model(sagemaker: Any, name: str, package_arn: str, role_arn: str) -> str:
    """A SageMaker model serving the model package (created once per version)."""
    with aws_errors("cannot look up the batch model"):
        found = sagemaker.list_models(NameContains=name, MaxResults=100).get("Models", [])
    if any(m["ModelName"] == name for m in found):
        return name
    with aws_errors("cannot create the batch model"):
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn=role_arn,
            Containers=[{"ModelPackageName": package_arn}],
        )
    return name


def wait_for_transform(
    sagemaker: Any,
    name: str,
    progress: Progress,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Poll until the job ends, reporting each status change once."""
    seen = ""
    while True:
        with aws_errors("cannot describe the transform job"):
            job = sagemaker.describe_transform_job(TransformJobName=name)
        status = job["TransformJobStatus"]
        if status != seen:
            seen = status
            progress(f"transform job {name}: {status}")
        if status in DONE:
            return job
        sleep(poll_seconds)


class SageMakerBatchScorer:
    """`mlops.core.batch.BatchScorer` on SageMaker (see the module doc)."""

    def __init__(self, cfg: Config, args: argparse.Namespace, sagemaker: Any = None):
        self.cfg, self.args = cfg, args
        self.sagemaker = sagemaker
        self.poll_seconds = getattr(args, "poll_seconds", POLL_SECONDS)

    def client(self) -> Any:
        if self.sagemaker is None:
            import boto3

            with aws_errors("cannot create AWS clients"):
                self.sagemaker = boto3.client("sagemaker", region_name=region_from(self.args))
        return self.sagemaker

    def predict(self, job: BatchJob, progress: Progress) -> BatchResult:
        version = job.version
        if not version.arn:
            raise MlopsError(f"model version {version.version} has no model package ARN")
        role = getattr(self.args, "role_arn", None) or os.environ.get(ROLE_ENV, "")
        if not ROLE_ARN_PATTERN.match(role):
            raise UsageError(f"a batch transform needs the execution role: set ${ROLE_ENV}")
        name = job_name(self.cfg.model_package_group, version.version)
        request = transform_request(job, name, "", self.cfg)
        sagemaker = self.client()
        start = time.monotonic()
        model = ensure_model(
            sagemaker, model_name(self.cfg.model_package_group, version.version), version.arn, role
        )
        request["ModelName"] = model
        with aws_errors("cannot start the transform job"):
            sagemaker.create_transform_job(**request)
        described = wait_for_transform(sagemaker, name, progress, self.poll_seconds)
        if described["TransformJobStatus"] != "Completed":
            raise MlopsError(
                f"transform job {name} {described['TransformJobStatus']}: "
                f"{described.get('FailureReason', 'no reason given')}"
            )
        return BatchResult(
            version=version.version,
            rows=0,
            scored=0,
            rejected=0,
            seconds=time.monotonic() - start,
            out=job.out,
            job=name,
        )

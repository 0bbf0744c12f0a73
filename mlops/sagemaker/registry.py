"""The SageMaker Model Registry behind the same interface as `mlops.core.registry.LocalRegistry`.

A model package group holds the versions; each version is a model package.
Where `ModelVersion` fields come from:

- approval_status, created_at, note: the package's ModelApprovalStatus,
  CreationTime and ApprovalDescription;
- model_uri: the inference container's ModelDataUrl (model.tar.gz in S3);
- metrics: read from the evaluation.json that ModelMetrics.ModelQuality points at
  (the pipeline registers the evaluate step's own file, so the registry shows the
  numbers the gate checked; no copy in metadata can drift from them);
- baseline_uri: ModelMetrics.ModelDataQuality (preprocess's baseline.json);
- lineage: CustomerMetadataProperties, flat string values because the API allows
  no JSON there: git_commit, pr_number, data_sha256, data_file, run_id (the
  pipeline execution id), backend, held_out_uri (the S3 folder of the run's raw
  held-out rows, which the smoke test reads; absent on versions registered before
  it), and `params.<section>.<name>` entries that are folded back into `params`.

boto3 is imported lazily; AWS errors become one-line `MlopsError`s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops.core.errors import MlopsError, UsageError
from mlops.core.feature_store import fold_snapshot
from mlops.core.lineage import NO_VALUE, PARAMS_PREFIX
from mlops.core.registry import APPROVED, REJECTED, ModelVersion, metrics_from_evaluation


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn boto errors into one line the CLI can print: `<action>: <code>: <message>`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MlopsError(
            f"{action}: {error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise MlopsError(f"{action}: {exc}") from None


def parse_value(text: str) -> int | float | str:
    """Metadata values are strings: give numbers back their type."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def lineage_from_metadata(metadata: dict[str, str]) -> dict:
    """CustomerMetadataProperties -> the lineage dict of a local version."""
    lineage: dict[str, Any] = {"params": {}}
    for key, value in metadata.items():
        if key.startswith(PARAMS_PREFIX):
            section, _, name = key.removeprefix(PARAMS_PREFIX).partition(".")
            lineage["params"].setdefault(section, {})[name] = parse_value(value)
        else:
            lineage[key] = "" if value == NO_VALUE else value
    return fold_snapshot(lineage)


def _statistics_uri(package: dict, kind: str) -> str:
    return package.get("ModelMetrics", {}).get(kind, {}).get("Statistics", {}).get("S3Uri", "")


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise UsageError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


class SageMakerRegistry:
    """Versions of one model package group in the SageMaker Model Registry."""

    def __init__(self, group: str, sagemaker_client: Any = None, s3_client: Any = None):
        self.group = group
        self._sagemaker = sagemaker_client
        self._s3 = s3_client

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            import boto3

            with aws_errors("cannot create a SageMaker client"):
                self._sagemaker = boto3.client("sagemaker")
        return self._sagemaker

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            with aws_errors("cannot create an S3 client"):
                self._s3 = boto3.client("s3")
        return self._s3

    def _summaries(self, **filters: Any) -> list[dict]:
        """Package summaries of the group, oldest first (all pages)."""
        summaries: list[dict] = []
        request = {
            "ModelPackageGroupName": self.group,
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Ascending",
            **filters,
        }
        with aws_errors(f"cannot list model packages of {self.group!r}"):
            while True:
                page = self.sagemaker.list_model_packages(**request)
                summaries.extend(page.get("ModelPackageSummaryList", []))
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
        return sorted(summaries, key=lambda s: s.get("ModelPackageVersion", 0))

    def _arn(self, version: int) -> str:
        for summary in self._summaries():
            if summary.get("ModelPackageVersion") == version:
                return summary["ModelPackageArn"]
        raise UsageError(f"model version {version} does not exist in group {self.group!r}")

    def _metrics(self, evaluation_uri: str) -> dict:
        if not evaluation_uri:
            return {}
        bucket, key = split_s3_uri(evaluation_uri)
        with aws_errors(f"cannot read {evaluation_uri}"):
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            return metrics_from_evaluation(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            raise MlopsError(f"{evaluation_uri} is not an evaluation report: {exc}") from None

    def _version(self, arn: str) -> ModelVersion:
        with aws_errors(f"cannot describe model package {arn}"):
            package = self.sagemaker.describe_model_package(ModelPackageName=arn)
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        evaluation_uri = _statistics_uri(package, "ModelQuality")
        created = package.get("CreationTime")
        return ModelVersion(
            group=self.group,
            version=int(package["ModelPackageVersion"]),
            approval_status=package.get("ModelApprovalStatus", ""),
            created_at=created.isoformat(timespec="seconds") if created else "",
            metrics=self._metrics(evaluation_uri),
            lineage=lineage_from_metadata(package.get("CustomerMetadataProperties", {})),
            model_uri=containers[0].get("ModelDataUrl", ""),
            evaluation_uri=evaluation_uri,
            baseline_uri=_statistics_uri(package, "ModelDataQuality"),
            note=package.get("ApprovalDescription", ""),
            arn=package["ModelPackageArn"],
        )

    def list(self) -> list[ModelVersion]:
        return [self._version(s["ModelPackageArn"]) for s in self._summaries()]

    def describe(self, version: int) -> ModelVersion:
        return self._version(self._arn(version))

    def set_status(self, version: int, status: str, note: str = "") -> ModelVersion:
        arn = self._arn(version)
        request = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if note:
            request["ApprovalDescription"] = note
        with aws_errors(f"cannot set model version {version} to {status}"):
            self.sagemaker.update_model_package(**request)
        return self._version(arn)

    def approve(self, version: int, note: str = "") -> ModelVersion:
        return self.set_status(version, APPROVED, note)

    def reject(self, version: int, note: str = "") -> ModelVersion:
        return self.set_status(version, REJECTED, note)

    def latest_approved(self) -> ModelVersion | None:
        approved = self._summaries(ModelApprovalStatus=APPROVED)
        return self._version(approved[-1]["ModelPackageArn"]) if approved else None

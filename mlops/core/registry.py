"""What a registered model version is, on either backend: statuses, metrics, timestamps.

The registries themselves implement `mlops.core.interfaces.Registry`: the local one is
`mlops.local.registry.LocalRegistry` (SQLite), the SageMaker one
`mlops.sagemaker.registry.SageMakerRegistry` (the Model Registry).
"""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)
METRIC_NAMES = ("mse", "rmse", "mae", "r2")


@dataclass(frozen=True)
class ModelVersion:
    group: str
    version: int
    approval_status: str
    created_at: str
    metrics: dict  # mse, rmse, mae, r2 (floats)
    lineage: dict  # git_commit, pr_number, data_sha256, params, run_id
    model_uri: str  # model.tar.gz: a local path or an s3:// URI
    evaluation_uri: str = ""
    baseline_uri: str = ""  # training-data statistics for drift checks
    note: str = ""
    arn: str = ""  # SageMaker model package ARN; empty locally

    def to_dict(self) -> dict:
        return asdict(self)


def metrics_from_evaluation(evaluation: dict) -> dict:
    """`{"regression_metrics": {"mse": {"value": v}}}` -> `{"mse": v, ...}`."""
    reg = evaluation["regression_metrics"]
    return {name: float(reg[name]["value"]) for name in METRIC_NAMES if name in reg}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

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
CLASSIFICATION_METRIC_NAMES = ("auc", "log_loss", "accuracy", "precision", "recall", "f1")


@dataclass(frozen=True)
class ModelVersion:
    group: str
    version: int
    approval_status: str
    created_at: str
    metrics: dict  # mse, rmse, mae, r2, or auc, log_loss, accuracy... (floats)
    lineage: dict  # git_commit, pr_number, data_sha256, params, run_id
    model_uri: str  # model.tar.gz: a local path or an s3:// URI
    evaluation_uri: str = ""
    baseline_uri: str = ""  # training-data statistics for drift checks
    note: str = ""
    arn: str = ""  # SageMaker model package ARN; empty locally
    model_sha256: str = ""  # the archive's digest at registration (local); checked before use

    def to_dict(self) -> dict:
        return asdict(self)


def metrics_from_evaluation(evaluation: dict) -> dict:
    """`{"regression_metrics": {"mse": {"value": v}}}` -> `{"mse": v, ...}`; the same for
    `binary_classification_metrics` (auc, log_loss, accuracy, precision, recall, f1)."""
    if "binary_classification_metrics" in evaluation:
        section, names = evaluation["binary_classification_metrics"], CLASSIFICATION_METRIC_NAMES
    else:
        section, names = evaluation["regression_metrics"], METRIC_NAMES
    return {name: float(section[name]["value"]) for name in names if name in section}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

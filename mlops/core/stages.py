"""Stage configs (`model_deploy/<stage>-config.json`) and which model version a stage gets.

Staging and prod differ only in these files. Schema (every key is required unless
marked optional; unknown keys are refused so a typo cannot be silently ignored):

    {
      "stage": "staging",              # must match the file name: <stage>-config.json
      "model_version": null,           # optional pin (an int); how rollback works
      "local": {                       # the local backend (`mlops deploy --backend local`)
        "port": 8081,                  # the stage's stable URL: http://127.0.0.1:<port>
        "workers": 1,                  # optional, default 1: server worker processes
        "data_capture_percent": 100,   # optional, default 0 (off): requests captured
        "capture_rotate_seconds": 3600 # optional: a new capture file this often
      },
      "sagemaker": {                   # the SageMaker backend (CloudFormation)
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "data_capture_percent": 100,   # 0 turns data capture off
        "autoscaling": {"enabled": false, "min": 1, "max": 2,
                        "target_invocations_per_instance": 100},
        "monitoring": {"enabled": true}, # optional, default on: the stage's Model Monitor
                                         # schedule (needs data_capture_percent > 0)
        "account": {                     # optional: the stage has its own AWS account
          "account_id": "222222222222",  # (model_deploy/accounts/, docs/multi-account.md);
          "build_account_id": "111111111111",  # absent: one account (bootstrap.yml)
          "region": "eu-west-1",         # optional, default: the credentials' region
          "role_arn": "arn:aws:iam::222222222222:role/ops",  # optional: a role to assume
                                         # when the credentials are another account's
          "promotion_read_role_arn": "..."  # optional, staging only: what prod's job assumes
        }                                # to read what staging serves (`mlops promote`)
      }
    }

The folder is `model_deploy/` in the repository unless $MLOPS_DEPLOY_DIR names
another one (tests and experiments use a copy, never the committed files).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.core.config import first_error
from mlops.core.errors import MlopsError, UsageError
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import APPROVED, ModelVersion

STAGES = ("staging", "prod")
DEPLOY_DIR_ENV = "MLOPS_DEPLOY_DIR"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalStage(_Section):
    port: int = Field(ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    data_capture_percent: int = Field(default=0, ge=0, le=100)
    capture_rotate_seconds: int = Field(default=3600, ge=1)


class Autoscaling(_Section):
    enabled: bool = False
    min: int = Field(default=1, ge=1)
    max: int = Field(default=1, ge=1)
    target_invocations_per_instance: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Monitoring(_Section):
    enabled: bool = True  # a data-quality schedule (model_deploy/monitoring-template.yml)


ACCOUNT_ID = r"^[0-9]{12}$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"


class StageAccount(_Section):
    """The stage's own AWS account (three-account layout); the registry is the build's."""

    account_id: str = Field(pattern=ACCOUNT_ID)
    build_account_id: str = Field(pattern=ACCOUNT_ID)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
    role_arn: str | None = Field(default=None, pattern=ROLE_ARN)
    promotion_read_role_arn: str | None = Field(default=None, pattern=ROLE_ARN)


SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)  # what SageMaker accepts


class Serverless(_Section):
    """A serverless endpoint (ServerlessConfig): billed per request, nothing while idle;
    cold starts of seconds. Made for staging, which waits for traffic most of the day."""

    memory_mb: int = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)

    @field_validator("memory_mb")
    @classmethod
    def _memory_size(cls, memory: int) -> int:
        if memory not in SERVERLESS_MEMORY_MB:
            raise ValueError(f"{memory} is not one of {SERVERLESS_MEMORY_MB} (MB)")
        return memory


class SageMakerStage(_Section):
    instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(ge=1)
    data_capture_percent: int = Field(ge=0, le=100)
    autoscaling: Autoscaling = Autoscaling()
    monitoring: Monitoring = Monitoring()
    account: StageAccount | None = None  # None: the single account of bootstrap.yml
    # Set: the stage is a serverless endpoint (instance_type/count and autoscaling unused).
    serverless: Serverless | None = None

    @model_validator(mode="after")
    def _serverless_has_no_capture(self) -> SageMakerStage:
        """SageMaker captures no data from a serverless endpoint, so Model Monitor has
        nothing to read: refused rather than silently dropped."""
        if self.serverless is not None and self.data_capture_percent:
            raise ValueError("serverless: set data_capture_percent to 0 (no capture there)")
        if self.serverless is not None and self.monitoring.enabled:
            raise ValueError('serverless: set "monitoring": {"enabled": false} (no capture there)')
        return self


class StageConfig(_Section):
    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    model_version: int | None = Field(default=None, ge=1)
    local: LocalStage
    sagemaker: SageMakerStage


def deploy_dir() -> Path:
    """`model_deploy/` in the repository, or $MLOPS_DEPLOY_DIR."""
    return Path(os.environ.get(DEPLOY_DIR_ENV) or REPO_ROOT / "model_deploy").resolve()


def stage_config_path(stage: str, folder: Path | None = None) -> Path:
    return (folder or deploy_dir()) / f"{stage}-config.json"


def parse_stage_config(raw: object, source: str = "stage config") -> StageConfig:
    """Validate a decoded stage config; raise UsageError naming the bad key."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source} must be a JSON object")
    try:
        return StageConfig.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"bad {source}: {first_error(exc)}") from None


def load_stage_config(stage: str, folder: Path | None = None) -> StageConfig:
    """Read `<stage>-config.json`; its `stage` field must match the file name."""
    path = stage_config_path(stage, folder)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"stage config not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read stage config {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"stage config {path} is not valid JSON: {exc}") from None
    config = parse_stage_config(raw, str(path))
    if config.stage != stage:
        raise UsageError(f"{path} says stage {config.stage!r}, expected {stage!r}")
    return config


class VersionSource(Protocol):
    """What resolve_version needs of a registry (local or SageMaker)."""

    group: str

    def describe(self, version: int) -> ModelVersion: ...
    def latest_approved(self) -> ModelVersion | None: ...


def resolve_version(
    registry: VersionSource, stage_config: StageConfig, requested: int | None
) -> ModelVersion:
    """The version a stage should serve: `requested`, else the stage's pin, else the latest
    Approved. Refuses (MlopsError) a version that is not Approved."""
    if requested is not None:
        version, why = registry.describe(requested), "requested"
    elif stage_config.model_version is not None:
        version = registry.describe(stage_config.model_version)
        why = f"pinned in {stage_config.stage}-config.json"
    else:
        version = registry.latest_approved()
        if version is None:
            raise MlopsError(
                f"no Approved model version in group {registry.group!r} to deploy to "
                f"{stage_config.stage}: approve one first (mlops models approve VERSION)"
            )
        return version
    if version.approval_status != APPROVED:
        raise MlopsError(
            f"model version {version.version} ({why}) is {version.approval_status}, not "
            f"{APPROVED}: refusing to deploy it to {stage_config.stage}"
        )
    return version


def version_reason(stage_config: StageConfig, requested: int | None) -> str:
    """Why resolve_version picked what it picked, for the deploy log."""
    if requested is not None:
        return "requested with --version"
    if stage_config.model_version is not None:
        return f"pinned in {stage_config.stage}-config.json"
    return "latest Approved version"

"""`model_build/config.yaml` loaded into small frozen, validated objects.

A bad value fails with the key path and the reason (pydantic does the checking).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT

DEFAULT_CONFIG = REPO_ROOT / "model_build" / "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    features: list[str] = Field(min_length=1)
    target: str
    expectation_suite: str
    max_file_mb: float = Field(default=2048, gt=0)
    # A column carried through batch scoring untouched (a row key); never a feature.
    id_column: str | None = None

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> DataConfig:
        if self.target in self.features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features contain duplicates")
        if self.id_column is not None and self.id_column in (*self.features, self.target):
            raise ValueError(f"id_column {self.id_column!r} is also a feature or the target")
        return self


class PreprocessConfig(_Section):
    train_ratio: float = Field(gt=0, lt=1)
    validation_ratio: float = Field(gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _leaves_a_test_split(self) -> PreprocessConfig:
        if self.train_ratio + self.validation_ratio >= 1:
            raise ValueError(
                "train_ratio + validation_ratio must leave room for a test split (< 1)"
            )
        return self


class TrainConfig(_Section):
    hyperparameters: dict[str, Any]

    @model_validator(mode="after")
    def _rounds_positive(self) -> TrainConfig:
        rounds = self.hyperparameters.get("num_round")
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise ValueError("hyperparameters.num_round must be a positive integer")
        return self


class GateConfig(_Section):
    max_mse: float = Field(gt=0)
    min_r2: float = Field(le=1)
    max_regression_pct: float = Field(ge=0)


class DriftConfig(_Section):
    statistic: Literal["psi"] = "psi"
    threshold: float = Field(gt=0)
    fail_on_drift: bool = False


class SmokeTestConfig(_Section):
    rows: int = Field(default=20, ge=1)
    max_mape_pct: float = Field(default=10.0, gt=0)


# More than one instance would do nothing useful: every processing instance would read the
# whole input and write the same outputs (the steps do not shard), and script-mode
# training with xgboost.train is not distributed. Refused rather than silently paid for.
ONE_INSTANCE = (
    "instances refused: use 1; the steps neither shard their input nor train distributed, so more "
    "instances would repeat the same work"
)


class BatchConfig(_Section):
    """`mlops batch predict`: how rows are read and when rejected rows fail the job."""

    chunk_rows: int = Field(default=50_000, ge=1)
    max_reject_pct: float = Field(default=1.0, ge=0, le=100)
    require_approved: bool = True
    # SageMaker batch transform (--backend sagemaker)
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(default=1, ge=1)


class MonitorConfig(_Section):
    """`mlops monitor`: what counts as a violation in captured traffic."""

    min_rows: int = Field(default=100, ge=1)  # fewer captured rows: too few to judge drift
    max_mse_increase_pct: float = Field(default=25.0, ge=0)  # vs the version's test MSE


class SageMakerConfig(_Section):
    processing_instance_type: str = "ml.m5.large"
    processing_instance_count: int = Field(default=1, ge=1)
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = Field(default=1, ge=1)
    sklearn_image_version: str = "1.9-0"
    xgboost_image_version: str = "3.2-0"

    @field_validator("processing_instance_count", "training_instance_count")
    @classmethod
    def _one_instance(cls, count: int) -> int:
        if count != 1:
            raise ValueError(f"{count} {ONE_INSTANCE}")
        return count


class Config(_Section):
    model_package_group: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    data: DataConfig
    preprocess: PreprocessConfig
    train: TrainConfig
    gate: GateConfig
    drift: DriftConfig
    smoke_test: SmokeTestConfig = SmokeTestConfig()
    sagemaker: SageMakerConfig = SageMakerConfig()
    batch: BatchConfig = BatchConfig()
    monitor: MonitorConfig = MonitorConfig()

    @property
    def columns(self) -> list[str]:
        """Columns of a raw data file, in order: the features, then the target."""
        return [*self.data.features, self.data.target]


def first_error(exc: ValidationError) -> str:
    """The first validation error as `key.path: reason`."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{key}: {err['msg']}"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file; raise UsageError naming the bad key."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"config {path} must be a mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"bad config {path}: {first_error(exc)}") from None

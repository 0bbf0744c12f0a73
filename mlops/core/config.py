"""`model_build/config.yaml` loaded into small frozen, validated objects.

A bad value fails with the key path and the reason (pydantic does the checking).
Relative paths in a config (the suite, the sample) are relative to its project root:
the folder that holds `model_build/` when the config sits there (the template's
layout), else the project the command runs in (the repository holding this `mlops`),
wherever the config file lives: an experiment config kept in another folder names the
project's files as the project's own config does. `load_config(path, root=...)` overrides.
$MLOPS_CONFIG names another default config, as $MLOPS_HOME names another state dir.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT

DEFAULT_CONFIG = REPO_ROOT / "model_build" / "config.yaml"
CONFIG_ENV = "MLOPS_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    features: list[str] = Field(min_length=1)
    target: str
    expectation_suite: str
    max_file_mb: float = Field(default=2048, gt=0)
    # Inputs and splits larger than this are read a chunk at a time by preprocess, train
    # and evaluate: memory stays flat whatever the data's size (docs/scale.md). Smaller
    # ones are read whole: faster, and the same result.
    stream_above_mb: float = Field(default=64.0, ge=0)
    # rows failing row-level expectations, up to this share of all rows, are quarantined
    max_quarantined_pct: float = Field(default=0.1, ge=0, lt=100)
    # a reviewed, versioned evaluation set (raw CSV with header, in the repo): challenger and
    # champion are both scored on it on every run, beside the new split
    golden: str | None = None
    # String-valued features (categories), which the model family handles natively.
    categorical_features: list[str] = []
    # Levels kept per categorical feature (the most frequent in training); rarer levels
    # are answered as missing values.
    max_categories: int = Field(default=256, ge=2)
    # A small committed data file: the demo, the project tests and PR CI run on it.
    sample: str | None = None
    # A column carried through batch scoring untouched (a row key); never a feature.
    id_column: str | None = None

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> DataConfig:
        if self.target in self.features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features contain duplicates")
        unknown = [c for c in self.categorical_features if c not in self.features]
        if unknown:
            raise ValueError(f"categorical_features {unknown} are not in features")
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


class RangeConfig(_Section):
    """One tuned hyperparameter: integer or continuous [min, max] (linear or log), or values."""

    type: Literal["integer", "continuous", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: list[str | int | float] | None = None

    @model_validator(mode="after")
    def _a_usable_range(self) -> RangeConfig:
        if self.type == "categorical":
            if not self.values or self.min is not None or self.max is not None:
                raise ValueError("a categorical range needs a non-empty `values` list, no min/max")
            if self.scale != "linear":
                raise ValueError("a categorical range has no scale")
            return self
        if self.min is None or self.max is None or self.values is not None:
            raise ValueError(f"an {self.type} range needs `min` and `max` (no values)")
        if self.min >= self.max:
            raise ValueError(f"empty or inverted range: min {self.min:g} >= max {self.max:g}")
        if self.type == "integer" and not (self.min.is_integer() and self.max.is_integer()):
            raise ValueError("an integer range needs integer min and max")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"a log range must stay above 0, got min {self.min:g}")
        return self


class ObjectiveConfig(_Section):
    # A `validation:<metric>` line the family's training reports; none: the first it reports
    # (filled in when the config loads, so every reader sees a name).
    metric: str | None = None
    direction: Literal["minimize", "maximize"] = "minimize"


class TuningConfig(_Section):
    """Hyperparameter search: Optuna locally, a SageMaker tuning job in the pipeline."""

    objective: ObjectiveConfig = ObjectiveConfig()
    ranges: dict[str, RangeConfig] = Field(min_length=1)
    n_trials: int = Field(default=16, ge=1)
    # Trials at once: locally None means one per core; SageMaker runs this many jobs at once.
    parallel: int | None = Field(default=None, ge=1)
    early_stopping: bool = (
        True  # prune trials whose validation curve lags (Optuna / SageMaker Auto)
    )
    seed: int = 42
    warm_start_from: list[str] = []  # SageMaker: parent tuning job names to start from


class TrainConfig(_Section):
    # The model family (model_build/steps/families.py); none: the first one listed there.
    model: str | None = None
    # The family's hyperparameters, checked by the family when the config loads.
    hyperparameters: dict[str, Any] = {}
    tuning: TuningConfig | None = None


class GateConfig(_Section):
    # regression: max_mse and min_r2; binary_classification: min_auc and max_log_loss.
    max_mse: float | None = Field(default=None, gt=0)
    min_r2: float | None = Field(default=None, le=1)
    max_regression_pct: float = Field(ge=0)
    min_auc: float | None = Field(default=None, ge=0, le=1)
    max_log_loss: float | None = Field(default=None, gt=0)


class DriftConfig(_Section):
    # Population stability index per feature, target and prediction: drift above this.
    threshold: float = Field(gt=0)
    fail_on_drift: bool = False


class SmokeTestConfig(_Section):
    rows: int = Field(default=20, ge=1)
    max_mape_pct: float = Field(default=10.0, gt=0)
    # binary_classification: the held-out rows' accuracy at the decision threshold.
    min_accuracy: float = Field(default=0.7, ge=0, le=1)


class ClassificationConfig(_Section):
    """binary_classification only: which label is positive, and where a probability becomes it."""

    positive_label: str | None = None  # None: the larger of the two labels (1, "yes", "true")
    threshold: float = Field(default=0.5, gt=0, lt=1)

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: object) -> object:
        if isinstance(value, bool):  # YAML reads unquoted yes/no/true/false as booleans
            raise ValueError('quote the label (e.g. "yes"): unquoted, YAML reads it as a boolean')
        return str(value) if isinstance(value, int | float) else value


class BehaviourConfig(_Section):
    """What the model must do, checked by the project tests (tests/project/)."""

    # The prediction must not go down when one of these features goes up (others fixed).
    monotonic_increasing: list[str] = []
    monotonic_decreasing: list[str] = []


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
    # A classifier with labels: vs the version's test AUC, log loss and accuracy.
    max_auc_drop: float = Field(default=0.05, ge=0, le=1)
    max_log_loss_increase_pct: float = Field(default=25.0, ge=0)
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1)


class SageMakerConfig(_Section):
    processing_instance_type: str = "ml.m5.large"
    # > 1: the steps that read the raw input (validate, preprocess) each run on that many
    # instances, its files shared out by S3 key, their results merged (docs/scale.md)
    processing_instance_count: int = Field(default=1, ge=1)
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = Field(default=1, ge=1)
    # SageMaker framework image -> version: the images steps and models run on (a model
    # family names its image; these versions match the local libraries).
    image_versions: dict[str, str] = {"sklearn": "1.9-0", "xgboost": "3.2-0"}


TASKS = ("regression", "binary_classification")
# The gate thresholds each task needs.
GATE_KEYS = {
    "regression": ("max_mse", "min_r2"),
    "binary_classification": ("min_auc", "max_log_loss"),
}


class TrackingConfig(_Section):
    """MLflow tracking: local SQLite store under $MLOPS_HOME; on SageMaker a managed server."""

    enabled: bool = True
    experiment: str = ""  # default: the model package group
    # SageMaker managed MLflow tracking server ARN (or $MLOPS_MLFLOW_TRACKING_ARN); none: skipped
    sagemaker_tracking_server_arn: str = ""


class FeatureStoreConfig(_Section):
    """The project's feature group (`mlops features ...`); unset, those commands refuse."""

    record_id: str | None = None  # the column naming a record (an entity)
    event_time: str | None = None  # the column saying when a record's values were true
    # Event times later than now + this are refused as clock or parsing errors.
    future_tolerance_seconds: float = Field(default=300, ge=0)
    feature_group: str | None = None  # default: model_package_group


class Config(_Section):
    # Lower case: SageMaker lower-cases names in ARNs, and IAM compares them case-sensitively.
    model_package_group: str = Field(pattern=r"^[a-z0-9](-*[a-z0-9]){0,62}$")
    data: DataConfig
    preprocess: PreprocessConfig
    train: TrainConfig
    gate: GateConfig
    drift: DriftConfig
    smoke_test: SmokeTestConfig = SmokeTestConfig()
    sagemaker: SageMakerConfig = SageMakerConfig()
    tracking: TrackingConfig = TrackingConfig()
    task: Literal["regression", "binary_classification"] = "regression"
    classification: ClassificationConfig = ClassificationConfig()
    behaviour: BehaviourConfig = BehaviourConfig()
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    batch: BatchConfig = BatchConfig()
    monitor: MonitorConfig = MonitorConfig()
    _root: Path = PrivateAttr(default=REPO_ROOT)

    @model_validator(mode="after")
    def _gate_fits_the_task(self) -> Config:
        missing = [k for k in GATE_KEYS[self.task] if getattr(self.gate, k) is None]
        if missing:
            raise ValueError(f"gate.{missing[0]}: Field required for task {self.task}")
        return self

    @model_validator(mode="after")
    def _group_fits_every_derived_name(self) -> Config:
        from mlops.core.names import name_length_error

        if error := name_length_error(self.model_package_group):
            raise ValueError(error)
        return self

    @model_validator(mode="after")
    def _behaviour_names_features(self) -> Config:
        b = self.behaviour
        unknown = set(b.monotonic_increasing + b.monotonic_decreasing) - set(self.data.features)
        if unknown:
            raise ValueError(f"behaviour names columns that are not features: {sorted(unknown)}")
        return self

    @property
    def columns(self) -> list[str]:
        """Columns of a raw data file, in order: the features, then the target."""
        return [*self.data.features, self.data.target]

    @property
    def experiment(self) -> str:
        """The tracking experiment: named after the project unless config says otherwise."""
        return self.tracking.experiment or self.model_package_group

    @property
    def root(self) -> Path:
        """The project root that relative paths in this config start from."""
        return self._root

    def resolve(self, path: str | Path) -> Path:
        return self._root / path

    @property
    def suite_file(self) -> Path:
        return self.resolve(self.data.expectation_suite)

    @property
    def sample_file(self) -> Path | None:
        return self.resolve(self.data.sample) if self.data.sample else None

    @property
    def golden_file(self) -> Path | None:
        return self.resolve(self.data.golden) if self.data.golden else None

    @property
    def model_family(self) -> ModuleType:
        """The model family module train.model names (model_build/steps/families.py)."""
        from mlops.core.model_family import model_family

        return model_family(self.train.model)


# Keys a later release moved or removed: a config that still has one gets the way forward
# in its error line (CHANGELOG.md, "Migrating").
MOVED_KEYS = {
    ("drift", "statistic"): "drift.statistic was removed (PSI is the only statistic): delete it",
    ("sagemaker", "sklearn_image_version"): "sagemaker.sklearn_image_version moved: "
    "write sagemaker.image_versions: {sklearn: <version>}",
    ("sagemaker", "xgboost_image_version"): "sagemaker.xgboost_image_version moved: "
    "write sagemaker.image_versions: {xgboost: <version>}",
}


def moved_key(raw: dict) -> str | None:
    for (section, key), hint in MOVED_KEYS.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            return hint
    return None


def family_problem(cfg: Config) -> str | None:
    """What the model family says about train.model, train's hyperparameters, tuning ranges
    and objective, as `key.path: reason`; None when it has nothing to say."""
    from mlops.core.model_family import config_problem

    try:
        family = cfg.model_family
    except UsageError as exc:
        return f"train.model: {exc}"
    if cfg.sagemaker.training_instance_count > 1 and not family.DISTRIBUTED:
        return (
            f"sagemaker.training_instance_count: the {family.NAME} family trains on one "
            f"instance (it cannot distribute): use 1"
        )
    tuning = cfg.train.tuning
    problem = config_problem(
        family, cfg.train.hyperparameters, cfg.task, tuning.ranges if tuning else {}
    )
    if problem or tuning is None or tuning.objective.metric is None:
        return problem
    emitted = family.emitted_metrics(dict(cfg.train.hyperparameters), cfg.task)
    if tuning.objective.metric not in emitted:
        return (
            f"train.tuning.objective.metric: {tuning.objective.metric!r} is not reported by "
            f"the {family.NAME} family's training (it reports {', '.join(emitted)})"
        )
    return None


def with_family_objective(cfg: Config) -> Config:
    """The config with a tuning objective named: the first metric the family reports when
    the config names none."""
    tuning = cfg.train.tuning
    if tuning is None or tuning.objective.metric is not None:
        return cfg
    metric = cfg.model_family.emitted_metrics(dict(cfg.train.hyperparameters), cfg.task)[0]
    objective = tuning.objective.model_copy(update={"metric": metric})
    train = cfg.train.model_copy(
        update={"tuning": tuning.model_copy(update={"objective": objective})}
    )
    return cfg.model_copy(update={"train": train})


def first_error(exc: ValidationError) -> str:
    """The first validation error as `key.path: reason`."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{key}: {err['msg'].removeprefix('Value error, ')}"


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: `line L, column C: problem` (PyYAML spreads it over several)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + (f"{problem} ({context})" if context else problem)


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def project_root(config_path: Path, project: Path = REPO_ROOT) -> Path:
    """The folder holding `model_build/` for a config inside it, else `project` (the
    repository the command runs in, whose steps and model code the run uses). Not the
    config's own folder: a copy in a temp or experiments folder would then look for the
    suite and the golden set beside itself."""
    folder = config_path.resolve().parent
    return folder.parent if folder.name == "model_build" else project.resolve()


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what it silently accepts: a repeated key (a second
    `gate:` block would override reviewed thresholds, the YAML spec says keys are unique)
    and a non-finite number (`.nan`, `.inf`: no hyperparameter or threshold means that)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a finite number", node.start_mark
            )
        return value


StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)


def load_yaml(text: str) -> Any:
    """YAML as data, with `StrictLoader`'s refusals (yaml.YAMLError)."""
    return yaml.load(text, Loader=StrictLoader)  # safe: StrictLoader is a SafeLoader


def load_config(path: str | Path | None = None, root: str | Path | None = None) -> Config:
    """Read and validate a config file; raise UsageError naming the bad key."""
    path = Path(path) if path else default_config_path()
    try:
        raw = load_yaml(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"config {path} is not valid YAML: {yaml_error_line(exc)}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"config {path} must be a mapping of sections")
    moved = moved_key(raw)
    if moved:
        raise UsageError(f"bad config {path}: {moved}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"bad config {path}: {first_error(exc)}") from None
    cfg._root = Path(root).resolve() if root else project_root(path)
    problem = family_problem(cfg)
    if problem:
        raise UsageError(f"bad config {path}: {problem}")
    return with_family_objective(cfg)

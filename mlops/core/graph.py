"""The training pipeline, declared once: steps, scripts, data flow, arguments, gate.

The local runner executes this graph; `model_build/pipeline.py` renders the same
graph into SageMaker SDK objects. Nothing here runs anything.

Paths are SageMaker container paths. A processing step's inputs and outputs are
folders under /opt/ml/processing; a training step reads channels
(SM_CHANNEL_<NAME>) and writes SM_MODEL_DIR, which becomes model.tar.gz.

Convention the runner relies on: a processing script takes one `--<name>-dir`
argument per input and output, defaulting to its container path, so the local
runner can point each at a folder of the run; SageMaker uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlops.core.config import Config, TuningConfig, emitted_metrics

STEPS_DIR = "model_build/steps"
RAW_DATA = "raw"  # source name of the pipeline's input data
SUITE = "suite"  # source name of the expectation suite file
GOLDEN = "golden"  # source name of the golden evaluation set (config data.golden)


@dataclass(frozen=True)
class Input:
    name: str
    source: str  # RAW_DATA, SUITE, or "<step>.<output>"
    container_path: str
    optional: bool = False


@dataclass(frozen=True)
class Output:
    name: str
    container_path: str


@dataclass(frozen=True)
class Step:
    name: str
    kind: Literal["processing", "training"]
    script: str  # path relative to the repository
    image: Literal["sklearn", "xgboost"]
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    arguments: tuple[str, ...] = ()  # processing: argv; training: "--name value" hyperparameters
    description: str = ""
    metrics: tuple[str, ...] = ()  # what the script reports as `<name>=<value>` log lines

    def output(self, name: str) -> Output:
        return next(o for o in self.outputs if o.name == name)


@dataclass(frozen=True)
class Gate:
    """Thresholds the condition step checks against evaluation.json (those of `task`)."""

    max_mse: float | None
    min_r2: float | None
    max_regression_pct: float
    task: str = "regression"
    min_auc: float | None = None
    max_log_loss: float | None = None


@dataclass(frozen=True)
class Graph:
    steps: tuple[Step, ...]
    gate: Gate
    model_step: str = "train"  # whose output is the registered model
    evaluation_step: str = "evaluate"  # whose output holds evaluation.json
    baseline: str = "preprocess.baseline"  # training statistics registered with the model
    extras: dict = field(default_factory=dict)
    tuning: TuningConfig | None = None  # when set, the model step is a hyperparameter search

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


PROC = "/opt/ml/processing"


def hyperparameter_args(params: dict) -> tuple[str, ...]:
    """`{"max_depth": 3}` -> `("--max_depth", "3")`, the way SageMaker passes them."""
    return tuple(item for key, value in params.items() for item in (f"--{key}", str(value)))


def named_args(**values: object) -> tuple[str, ...]:
    """`max_file_mb=5` -> `("--max-file-mb", "5")`: a processing script's argv."""
    return tuple(
        item for key, value in values.items() for item in (f"--{key.replace('_', '-')}", str(value))
    )


def build_graph(cfg: Config) -> Graph:
    """The step graph for a config: validate -> preprocess -> train -> evaluate -> gate."""
    features = ",".join(cfg.data.features)
    task_args = task_arguments(cfg)
    steps = (
        Step(
            name="validate",
            kind="processing",
            script=f"{STEPS_DIR}/validate.py",
            image="sklearn",
            inputs=(
                Input("raw", RAW_DATA, f"{PROC}/input"),
                Input("suite", SUITE, f"{PROC}/suite"),
            ),
            outputs=(
                Output("report", f"{PROC}/report"),
                Output("quarantine", f"{PROC}/quarantine"),
            ),
            arguments=named_args(
                max_file_mb=cfg.data.max_file_mb,
                max_quarantined_pct=cfg.data.max_quarantined_pct,
            ),
            description="Great Expectations suite on the raw input",
        ),
        Step(
            name="preprocess",
            kind="processing",
            script=f"{STEPS_DIR}/preprocess.py",
            image="sklearn",
            inputs=(
                Input("raw", RAW_DATA, f"{PROC}/input"),
                Input("quarantine", "validate.quarantine", f"{PROC}/quarantine"),
            ),
            outputs=tuple(
                Output(name, f"{PROC}/{name}")
                for name in ("train", "validation", "test", "baseline")
            ),
            arguments=named_args(
                features=features,
                target=cfg.data.target,
                train_ratio=cfg.preprocess.train_ratio,
                validation_ratio=cfg.preprocess.validation_ratio,
                seed=cfg.preprocess.seed,
                **{k: v for k, v in task_args.items() if k in ("task", "categorical")},
            ),
            description="split train/validation/test; training baseline statistics",
        ),
        Step(
            name="train",
            kind="training",
            script=f"{STEPS_DIR}/train.py",
            image="xgboost",
            inputs=(
                Input("train", "preprocess.train", "/opt/ml/input/data/train"),
                Input("validation", "preprocess.validation", "/opt/ml/input/data/validation"),
            ),
            outputs=(Output("model", "/opt/ml/model"),),
            arguments=hyperparameter_args(
                {
                    "features": features,
                    "target": cfg.data.target,
                    **task_args,
                    **cfg.train.hyperparameters,
                }
            ),
            description="XGBoost with early stopping",
            metrics=tuple(emitted_metrics(cfg.train.hyperparameters, cfg.task)),
        ),
        Step(
            name="evaluate",
            kind="processing",
            script=f"{STEPS_DIR}/evaluate.py",
            image="xgboost",
            inputs=(
                Input("model", "train.model", f"{PROC}/model"),
                Input("test", "preprocess.test", f"{PROC}/test"),
                Input("champion", "champion", f"{PROC}/champion", optional=True),
                *(
                    (Input("golden", GOLDEN, f"{PROC}/golden", optional=True),)
                    if cfg.data.golden
                    else ()
                ),
            ),
            outputs=(Output("evaluation", f"{PROC}/evaluation"),),
            arguments=named_args(
                max_regression_pct=cfg.gate.max_regression_pct, **evaluate_arguments(cfg)
            ),
            description="metrics on the held-out test split (and the champion's)",
        ),
    )
    g = cfg.gate
    gate = Gate(g.max_mse, g.min_r2, g.max_regression_pct, cfg.task, g.min_auc, g.max_log_loss)
    return Graph(steps=steps, gate=gate, tuning=cfg.train.tuning)


def task_arguments(cfg: Config) -> dict[str, object]:
    """Task and categorical settings for preprocess and train; none for a numeric regression,
    whose arguments (and so its SageMaker definition) stay what they always were."""
    args: dict[str, object] = {}
    if cfg.task != "regression":
        args["task"] = cfg.task
    if cfg.data.categorical_features:
        args["categorical"] = ",".join(cfg.data.categorical_features)
        args["max_categories"] = cfg.data.max_categories
    if cfg.task == "binary_classification":
        args["threshold"] = cfg.classification.threshold
        if cfg.classification.positive_label is not None:
            args["positive_label"] = cfg.classification.positive_label
    return args


def evaluate_arguments(cfg: Config) -> dict[str, object]:
    if cfg.task == "regression":
        return {}
    return {"task": cfg.task, "threshold": cfg.classification.threshold}

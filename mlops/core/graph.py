"""The pipeline's building blocks, and the loader of the project's own declaration.

A project declares its pipeline in `model_build/pipeline.py` (`pipeline(cfg)`): its
steps, their scripts and images, what flows between them, and what the quality gate
reads. Both backends read that one declaration: the local runner executes it, and
`mlops.sagemaker.pipeline_definition` renders it as a SageMaker Pipeline. Nothing here
runs anything.

Conventions, so a declaration names data, not paths (they are SageMaker's):
- a processing step's input or output `<name>` is the folder `/opt/ml/processing/<name>`,
  and its script takes `--<name>-dir` for it (the local runner points that at a folder
  of the run; SageMaker uses the default);
- a training step's input `<name>` is the channel SM_CHANNEL_<NAME>
  (`/opt/ml/input/data/<name>`); it writes SM_MODEL_DIR, packed as its output `model`
  (model.tar.gz), and gets its hyperparameters as `--name value` arguments;
- an input's source is a pipeline input (DATA, SUITE, GOLDEN, CHAMPION) or another
  step's output, `"<step>.<output>"`. GOLDEN (config data.golden) and CHAMPION (the
  model production serves) may be absent: the step then gets no such folder.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT

if TYPE_CHECKING:
    from mlops.core.config import Config, TuningConfig

CODE_ROOT = REPO_ROOT / "model_build"  # scripts are named relative to it
DECLARATION = CODE_ROOT / "pipeline.py"
DATA, SUITE, GOLDEN, CHAMPION = "data", "suite", "golden", "champion"
PIPELINE_INPUTS = (DATA, SUITE, GOLDEN, CHAMPION)
OPTIONAL_INPUTS = (GOLDEN, CHAMPION)
PROCESSING_ROOT = "/opt/ml/processing"
CHANNEL_ROOT = "/opt/ml/input/data"
MODEL_PATH = "/opt/ml/model"
MODEL_OUTPUT = "model"  # a training step's one output: its packed model.tar.gz


@dataclass(frozen=True)
class Param:
    """A number a run may override: a SageMaker pipeline parameter; locally its value."""

    name: str
    value: float

    def __str__(self) -> str:
        return repr(float(self.value))


@dataclass(frozen=True)
class Input:
    name: str
    source: str  # a pipeline input, or "<step>.<output>"

    @property
    def optional(self) -> bool:
        return self.source in OPTIONAL_INPUTS


@dataclass(frozen=True)
class Step:
    name: str
    kind: Literal["processing", "training"]
    script: str  # relative to model_build/
    image: str  # a SageMaker framework image: "sklearn", "xgboost", ...
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    arguments: tuple[str | Param, ...] = ()  # processing: its argv (besides the folders)
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # training
    description: str = ""
    metrics: tuple[str, ...] = ()  # training: the `<name>=<value>` lines its log reports
    ships: tuple[str, ...] = ()  # more files in its bundle (a .py file with what it imports)
    # processing: runs on sagemaker.processing_instance_count instances, each reading a share
    # of the raw input (DATA) files; any other step runs on one
    scale_out: bool = False

    def instances(self, processing_count: int) -> int:
        """How many instances this processing step runs on: sagemaker.processing_instance_count
        when it handles a share of the raw input (`scale_out`), else one (it reads its inputs
        whole)."""
        return processing_count if self.scale_out else 1

    @property
    def script_path(self) -> Path:
        return CODE_ROOT / self.script

    def container_path(self, name: str) -> str:
        """Where an input or output lives inside SageMaker's container."""
        if self.kind == "training":
            return MODEL_PATH if name == MODEL_OUTPUT else f"{CHANNEL_ROOT}/{name}"
        return f"{PROCESSING_ROOT}/{name}"


def args(**values: object) -> tuple[str | Param, ...]:
    """`max_file_mb=5` -> `("--max-file-mb", "5")`: a processing script's argv; a Param
    value stays a Param (rendered as a pipeline parameter on SageMaker)."""
    out: list[str | Param] = []
    for key, value in values.items():
        out += [f"--{key.replace('_', '-')}", value if isinstance(value, Param) else str(value)]
    return tuple(out)


def Processing(
    name: str,
    script: str,
    image: str,
    inputs: dict[str, str],
    outputs: tuple[str, ...],
    arguments: tuple[str | Param, ...] = (),
    description: str = "",
    ships: tuple[str, ...] = (),
    scale_out: bool = False,
) -> Step:
    """A processing step: inputs and outputs are folders under /opt/ml/processing. With
    `scale_out` it handles a share of the raw input, on each of several instances."""
    return Step(
        name, "processing", script, image, tuple(Input(k, v) for k, v in inputs.items()),
        tuple(outputs), tuple(arguments), description=description, ships=tuple(ships),
        scale_out=scale_out,
    )  # fmt: skip


def Training(
    name: str,
    script: str,
    image: str,
    inputs: dict[str, str],
    hyperparameters: dict[str, Any],
    metrics: tuple[str, ...] = (),
    description: str = "",
    ships: tuple[str, ...] = (),
) -> Step:
    """A training step: inputs are channels; its output is the model (model.tar.gz)."""
    return Step(
        name, "training", script, image, tuple(Input(k, v) for k, v in inputs.items()),
        (MODEL_OUTPUT,), hyperparameters=dict(hyperparameters), description=description,
        metrics=tuple(metrics), ships=tuple(ships),
    )  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One condition of the quality gate, on evaluation.json (what the evaluate step wrote).

    `metric` and a text `threshold` are JSON paths ("regression_metrics.mse.value",
    "champion_mse_limit"); a Param threshold is a number a run may override. The rule
    applies when the path `when` is present (locally; on SageMaker a limit that does not
    apply is the largest float, so it never binds)."""

    label: str
    metric: str
    op: Literal["<=", ">="]
    threshold: Param | str
    when: str | None = None


def hyperparameter_text(value: Any) -> str:
    """A hyperparameter as the text a training script gets: lists and mappings as JSON
    (`["rmse", "mae"]`), everything else as str() writes it."""
    return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)


def hyperparameter_args(params: dict) -> tuple[str, ...]:
    """`{"max_depth": 3}` -> `("--max_depth", "3")`, the way SageMaker passes them."""
    return tuple(
        item for key, value in params.items() for item in (f"--{key}", hyperparameter_text(value))
    )


@dataclass(frozen=True)
class Pipeline:
    """A declared pipeline: steps in order, the gate, and which outputs play which role."""

    steps: tuple[Step, ...]
    gate: tuple[Rule, ...]
    model: str = "train.model"  # the registered model
    evaluation: str = "evaluate.evaluation"  # evaluation.json and the predictions files
    held_out: str = "preprocess.test"  # the held-out rows: smoke tests, drift references
    baseline: str = "preprocess.baseline"  # training statistics registered with the model
    tuning: TuningConfig | None = None  # when set, the model step is a hyperparameter search

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    @property
    def model_step(self) -> str:
        return self.model.split(".")[0]

    @property
    def evaluation_step(self) -> str:
        return self.evaluation.split(".")[0]

    @property
    def params(self) -> dict[str, Param]:
        """Every Param of the steps' arguments and of the gate, by name."""
        found: dict[str, Param] = {}
        values = [a for s in self.steps for a in s.arguments] + [r.threshold for r in self.gate]
        for value in values:
            if isinstance(value, Param):
                if found.get(value.name, value) != value:
                    raise UsageError(f"pipeline parameter {value.name} has two values")
                found[value.name] = value
        return found


def check_pipeline(pipe: Pipeline) -> Pipeline:
    """Refuse a declaration whose data flow cannot run, with one line naming the problem."""
    seen: set[str] = set(PIPELINE_INPUTS)
    names = [s.name for s in pipe.steps]
    if len(set(names)) != len(names):
        raise UsageError(f"model_build/pipeline.py: step names repeat: {names}")
    for step in pipe.steps:
        if not step.script_path.is_file():
            raise UsageError(f"step {step.name}: script not found: {step.script_path}")
        for inp in step.inputs:
            if inp.source not in seen:
                raise UsageError(
                    f"step {step.name}: input {inp.name} reads {inp.source!r}, which no "
                    "earlier step writes (nor is it a pipeline input)"
                )
        if step.scale_out and DATA not in {inp.source for inp in step.inputs}:
            raise UsageError(
                f"step {step.name}: scale_out shares out the raw input ({DATA}), which it "
                "does not read"
            )
        seen |= {f"{step.name}.{out}" for out in step.outputs}
    for role in ("model", "evaluation", "held_out", "baseline"):
        if getattr(pipe, role) not in seen:
            raise UsageError(f"pipeline {role}={getattr(pipe, role)!r} is no step's output")
    if pipe.step(pipe.model_step).kind != "training":
        raise UsageError(f"pipeline model={pipe.model!r} is not a training step's output")
    pipe.params  # noqa: B018 (raises on a parameter with two values)
    return pipe


def load_pipeline(cfg: Config, declaration: Path = DECLARATION) -> Pipeline:
    """The project's pipeline for `cfg`, from `model_build/pipeline.py`, checked."""
    spec = importlib.util.spec_from_file_location("model_build_pipeline", declaration)
    if spec is None or not declaration.is_file():
        raise UsageError(f"pipeline declaration not found: {declaration}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "pipeline", None)):
        raise UsageError(f"{declaration} must define pipeline(cfg) -> Pipeline")
    return check_pipeline(module.pipeline(cfg))

"""The pipeline on one screen: its steps, their scripts and images, what flows between them,
and what the quality gate reads.

Both backends read this: the local runner runs it on this machine, and `mlops pipeline
run --backend sagemaker` renders it as a SageMaker Pipeline (mlops/sagemaker/). A step
input names a pipeline input (DATA, SUITE, GOLDEN, CHAMPION) or an earlier step's output
("preprocess.train"); a processing script gets `--<name>-dir` per input and output, a
training script SM_CHANNEL_<NAME> per input (conventions: mlops/core/graph.py).

FORK: add a step here and its script in steps/; nothing under mlops/ changes.
"""

from __future__ import annotations

from mlops.core.config import Config
from mlops.core.gate import param, standard_gate
from mlops.core.graph import (
    CHAMPION,
    DATA,
    GOLDEN,
    SUITE,
    Pipeline,
    Processing,
    Step,
    Training,
    args,
)


def pipeline(cfg: Config) -> Pipeline:
    family = cfg.model_family
    sharded = cfg.sagemaker.processing_instance_count > 1  # raw input on shards: docs/scale.md
    return Pipeline(
        steps=(
            Processing(
                "validate", "steps/validate.py", "sklearn",
                inputs={"raw": DATA, "suite": SUITE},
                outputs=("report", "quarantine"),
                arguments=args(**validate_args(cfg, sharded)) + part(sharded),
                description="Great Expectations suite on the raw input",
                ships=("requirements.txt",),  # Great Expectations wheels (make wheels)
                scale_out=True,
            ),
            *merged("validate", inputs={"parts": "validate.report", "suite": SUITE},
                    outputs=("report", "quarantine"), sharded=sharded,
                    description="the verdict of the whole input, from its shards' results"),
            Processing(
                "preprocess", "steps/preprocess.py", "sklearn",
                inputs={"raw": DATA,
                        "quarantine": f"{'validate_merge' if sharded else 'validate'}.quarantine"},
                outputs=("train", "validation", "test", "baseline"),
                arguments=args(**data_args(cfg), **cfg.preprocess.model_dump(),
                               stream_above_mb=cfg.data.stream_above_mb, **shards(cfg))
                          + part(sharded),
                description="split the raw rows; training baseline statistics",
                scale_out=True,
            ),
            *merged("preprocess", inputs={"parts": "preprocess.baseline"},
                    outputs=("baseline",), sharded=sharded,
                    description="the training baseline, from the shards' parts"),
            Training(
                "train", "steps/train.py", family.IMAGE,
                inputs={"train": "preprocess.train", "validation": "preprocess.validation"},
                hyperparameters=train_arguments(cfg),
                metrics=tuple(family.emitted_metrics(cfg.train.hyperparameters, cfg.task)),
                description=f"fit features.py and the {family.NAME} model",
                ships=("endpoint_handler.py",),  # the serving code goes into the artifact
            ),
            Processing(
                "evaluate", "steps/evaluate.py", family.IMAGE,
                inputs={"model": "train.model", "test": "preprocess.test",
                        "champion": CHAMPION, "golden": GOLDEN},
                outputs=("evaluation",),
                arguments=args(max_regression_pct=param(cfg, "max_regression_pct"),
                               stream_above_mb=cfg.data.stream_above_mb),
                description="challenger and champion on the held-out and golden rows",
            ),
        ),
        model="train.model",
        evaluation="evaluate.evaluation",  # evaluation.json and predictions, read by all
        held_out="preprocess.test",  # raw held-out rows: smoke tests, drift references
        baseline="preprocess_merge.baseline" if sharded else "preprocess.baseline",
        gate=standard_gate(cfg),
        tuning=cfg.train.tuning,
    )  # fmt: skip


def data_args(cfg: Config) -> dict:
    """What preprocess and train are told about the data's columns."""
    data = cfg.data
    text = {"categorical": ",".join(data.categorical_features)} if data.categorical_features else {}
    return {"features": ",".join(data.features), "target": data.target, "task": cfg.task, **text}


def validate_args(cfg: Config, sharded: bool) -> dict:
    """Row-level quarantine needs the whole input on one host: off when it is sharded."""
    quarantine = {} if sharded else {"max_quarantined_pct": cfg.data.max_quarantined_pct}
    return {"max_file_mb": cfg.data.max_file_mb, **quarantine}


def part(sharded: bool) -> tuple[str, ...]:
    """With several processing instances, each handles a share of the raw input's files."""
    return ("--part",) if sharded else ()


def merged(step: str, sharded: bool, **declared) -> tuple[Step, ...]:
    """`<step>_merge`: the step's script with --merge on one instance, after its sharded
    instances (none when the input is not sharded)."""
    if not sharded:
        return ()
    return (Processing(f"{step}_merge", f"steps/{step}.py", "sklearn", arguments=("--merge",),
                       **declared),)  # fmt: skip


def shards(cfg: Config) -> dict:
    """Files per split: one per training instance (each gets its own; docs/scale.md)."""
    count = cfg.sagemaker.training_instance_count
    return {"shards": count} if count > 1 else {}


def train_arguments(cfg: Config) -> dict:
    """The training step's hyperparameters: the family, the data, the config's own values."""
    labels = {}
    if cfg.task == "binary_classification":
        labels["threshold"] = cfg.classification.threshold
        if cfg.classification.positive_label is not None:
            labels["positive_label"] = cfg.classification.positive_label
    return {
        "model": cfg.model_family.NAME,
        **data_args(cfg),
        "max_categories": cfg.data.max_categories,
        "stream_above_mb": cfg.data.stream_above_mb,
        **labels,
        **cfg.train.hyperparameters,
    }

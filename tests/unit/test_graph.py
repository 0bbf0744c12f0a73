"""mlops.core.graph: the building blocks a project's model_build/pipeline.py declares its
pipeline with, the container-path conventions, and check_pipeline refusing a data flow
that cannot run, in one line."""

from __future__ import annotations

import pytest

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.graph import (
    CHAMPION,
    DATA,
    GOLDEN,
    Param,
    Pipeline,
    Processing,
    Rule,
    Training,
    args,
    check_pipeline,
    hyperparameter_args,
    load_pipeline,
)

GATE = (Rule("mse", "regression_metrics.mse.value", "<=", Param("MaxMse", 10.0)),)


def steps(**changes):
    """A small valid pipeline's steps; `changes` replace a step by name."""
    declared = {
        "preprocess": Processing("preprocess", "steps/preprocess.py", "sklearn",
                                 inputs={"raw": DATA}, outputs=("train", "test", "baseline")),
        "train": Training("train", "steps/train.py", "xgboost",
                          inputs={"train": "preprocess.train"}, hyperparameters={"eta": 0.1}),
        "evaluate": Processing("evaluate", "steps/evaluate.py", "xgboost",
                               inputs={"model": "train.model", "test": "preprocess.test",
                                       "champion": CHAMPION, "golden": GOLDEN},
                               outputs=("evaluation",)),
    }  # fmt: skip
    declared.update(changes)
    return tuple(declared.values())


def pipeline(**changes) -> Pipeline:
    roles = {k: changes.pop(k) for k in ("model", "held_out", "gate") if k in changes}
    return Pipeline(
        steps=steps(**changes), **{"gate": GATE, "held_out": "preprocess.test", **roles}
    )


def test_a_valid_declaration_passes_and_knows_its_roles():
    pipe = check_pipeline(pipeline())
    assert pipe.model_step == "train" and pipe.evaluation_step == "evaluate"
    assert pipe.step("evaluate").inputs[2].optional and not pipe.step("evaluate").inputs[0].optional
    assert pipe.params == {"MaxMse": Param("MaxMse", 10.0)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train": Training("train", "steps/train.py", "xgboost",
                            inputs={"train": "preprocess.validation"}, hyperparameters={})},
         "step train: input train reads 'preprocess.validation', which no earlier step writes"),
        ({"train": Training("train", "steps/train.py", "xgboost",
                            inputs={"train": "evaluate.evaluation"}, hyperparameters={})},
         "step train: input train reads 'evaluate.evaluation', which no earlier step writes"),
        ({"held_out": "preprocess.holdout"}, "pipeline held_out='preprocess.holdout' is no step's"),
        ({"model": "preprocess.train"}, "pipeline model='preprocess.train' is not a training step"),
        ({"evaluate": Processing("evaluate", "steps/evaluation.py", "xgboost", inputs={},
                                 outputs=("evaluation",))},
         "step evaluate: script not found: .*steps/evaluation.py"),
        ({"gate": (*GATE, Rule("r2", "regression_metrics.r2.value", ">=", Param("MaxMse", 0.9)))},
         "pipeline parameter MaxMse has two values"),
    ],
)  # fmt: skip
def test_a_flow_that_cannot_run_is_refused_in_one_line(changes, message):
    with pytest.raises(UsageError, match=message) as err:
        check_pipeline(pipeline(**changes))
    assert "\n" not in str(err.value)


def test_repeated_step_names_are_refused():
    twice = steps()[:1] * 2 + steps()[1:]
    with pytest.raises(UsageError, match="step names repeat"):
        check_pipeline(Pipeline(steps=twice, gate=GATE, held_out="preprocess.test"))


def test_a_param_in_arguments_and_gate_must_agree():
    evaluate = Processing("evaluate", "steps/evaluate.py", "xgboost",
                          inputs={"model": "train.model"}, outputs=("evaluation",),
                          arguments=args(limit=Param("MaxMse", 99.0)))  # fmt: skip
    with pytest.raises(UsageError, match="pipeline parameter MaxMse has two values"):
        check_pipeline(pipeline(evaluate=evaluate))
    agreeing = Processing("evaluate", "steps/evaluate.py", "xgboost",
                          inputs={"model": "train.model"}, outputs=("evaluation",),
                          arguments=args(limit=Param("MaxMse", 10.0)))  # fmt: skip
    assert check_pipeline(pipeline(evaluate=agreeing)).params["MaxMse"].value == 10.0


def test_conventions_name_data_not_paths():
    pipe = pipeline()
    assert pipe.step("preprocess").container_path("raw") == "/opt/ml/processing/raw"
    assert pipe.step("train").container_path("train") == "/opt/ml/input/data/train"
    assert pipe.step("train").container_path("model") == "/opt/ml/model"
    assert pipe.step("train").outputs == ("model",)
    assert args(max_file_mb=5, seed=Param("Seed", 1.0)) == ("--max-file-mb", "5", "--seed",
                                                            Param("Seed", 1.0))  # fmt: skip
    assert str(Param("Seed", 1)) == "1.0"
    assert hyperparameter_args({"max_depth": 3, "eta": 0.1}) == ("--max_depth", "3", "--eta", "0.1")


def test_the_projects_declaration_loads_for_a_config():
    cfg = load_config()
    pipe = load_pipeline(cfg)
    assert [s.name for s in pipe.steps] == ["validate", "preprocess", "train", "evaluate"]
    train = pipe.step(pipe.model_step)
    assert train.kind == "training" and train.image == cfg.model_family.IMAGE
    assert train.hyperparameters["model"] == cfg.model_family.NAME
    assert {k: train.hyperparameters[k] for k in cfg.train.hyperparameters} == dict(
        cfg.train.hyperparameters
    )
    assert train.metrics == tuple(cfg.model_family.emitted_metrics(cfg.train.hyperparameters,
                                                                   cfg.task))  # fmt: skip
    assert pipe.params["MaxMse"].value == cfg.gate.max_mse


def test_the_declaration_follows_the_family(config_file):
    def sklearn(raw):
        raw["train"].update(model="sklearn", hyperparameters={"max_iter": 100})

    pipe = load_pipeline(load_config(config_file(sklearn)))
    assert {s.name: s.image for s in pipe.steps} == {
        "validate": "sklearn", "preprocess": "sklearn", "train": "sklearn", "evaluate": "sklearn"
    }  # fmt: skip
    assert pipe.step("train").hyperparameters["max_iter"] == 100


def test_a_missing_or_empty_declaration_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="pipeline declaration not found"):
        load_pipeline(load_config(), tmp_path / "pipeline.py")
    (tmp_path / "pipeline.py").write_text("STEPS = []\n")
    with pytest.raises(UsageError, match=r"must define pipeline\(cfg\) -> Pipeline"):
        load_pipeline(load_config(), tmp_path / "pipeline.py")

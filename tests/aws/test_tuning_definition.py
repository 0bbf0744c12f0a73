"""Tuning on SageMaker: with train.tuning set, the graph's training step renders as a
tuning step over the same script, static hyperparameters and ranges, with the objective
the script really prints; the best job's model feeds evaluate and register. With tuning
off the definition is the golden one (tests/aws/test_golden_definition.py).

The tuned config trains the scikit-learn family: the tuning service validates jobs on the
XGBoost image as its built-in algorithm (mlops/sagemaker/pipeline_definition.py,
TUNING_BUILT_IN_IMAGES), so tuning on SageMaker runs on a framework image."""

from __future__ import annotations

import io
import json
import re
import tarfile

import numpy as np
import pandas as pd
import pytest
from _sagemaker_helpers import pipeline_steps

from mlops.core.graph import load_pipeline
from mlops.sagemaker.pipeline_definition import hyperparameters, render_pipeline

TUNING = {
    "objective": {"metric": "validation:rmse", "direction": "minimize"},
    "ranges": {
        "max_leaf_nodes": {"type": "integer", "min": 4, "max": 31},
        "learning_rate": {"type": "continuous", "min": 0.01, "max": 0.3, "scale": "log"},
        "loss": {"type": "categorical", "values": ["squared_error", "absolute_error"]},
    },
    "n_trials": 12,
    "parallel": 3,
    "warm_start_from": ["tuning-parent"],
}
STATIC = {"max_iter": 300, "n_iter_no_change": 10, "random_state": 7}


@pytest.fixture(scope="module")
def tuned_cfg(cfg):
    """The session's (fixture project) config with a tuning section, re-validated."""
    raw = cfg.model_dump()
    raw["train"].update(model="sklearn", hyperparameters=STATIC, tuning=TUNING)
    tuned = type(cfg).model_validate(raw)
    tuned._root = cfg.root
    return tuned


@pytest.fixture(scope="module")
def tuned(tuned_cfg, target):
    rendered = render_pipeline(tuned_cfg, target)
    return rendered, pipeline_steps(json.loads(rendered.definition))


def test_training_is_a_tuning_step_with_the_configured_search(tuned, tuned_cfg):
    _, steps = tuned
    assert steps["train"]["Type"] == "Tuning"
    config = steps["train"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize",
        "MetricName": "validation:rmse",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = config["ParameterRanges"]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_leaf_nodes", "MinValue": "4", "MaxValue": "31", "ScalingType": "Linear"}
    ]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.3",
         "ScalingType": "Logarithmic"}
    ]  # fmt: skip
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "loss", "Values": ["squared_error", "absolute_error"]}
    ]
    warm = steps["train"]["Arguments"]["WarmStartConfig"]
    assert warm["ParentHyperParameterTuningJobs"] == [
        {"HyperParameterTuningJobName": "tuning-parent"}
    ]


def test_static_hyperparameters_are_the_graphs_minus_the_tuned(tuned, tuned_cfg):
    _, steps = tuned
    local = load_pipeline(tuned_cfg).step("train")
    static = steps["train"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    expected = {k: v for k, v in hyperparameters(local).items() if k not in TUNING["ranges"]}
    assert {k: v for k, v in static.items() if not k.startswith("sagemaker_")} == expected
    assert static["sagemaker_program"] == "train.py"
    rendered, _ = tuned
    body = next(u.body for u in rendered.uploads if u.uri == static["sagemaker_submit_directory"])
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("train.py").read() == local.script_path.read_bytes()


def test_the_objective_regex_reads_what_train_py_prints(tuned, tmp_path, capsys):
    """Train for real on a few rows; the definition's regex must find the kept round's score."""
    import train

    _, steps = tuned
    (definition,) = steps["train"]["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"
    ]
    rng = np.random.default_rng(0)
    for channel in ("train", "validation"):
        X = rng.random((200, 2))
        rows = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": X[:, 0] * 10 + rng.random(200)})
        (tmp_path / channel).mkdir()
        rows.to_csv(tmp_path / channel / "data.csv", index=False)  # raw rows, with a header
    train.main(
        [
            "--model", "sklearn", "--features", "a,b", "--target", "y",
            "--train", str(tmp_path / "train"), "--validation", str(tmp_path / "validation"),
            "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
            "--max_iter", "60", "--n_iter_no_change", "5", "--learning_rate", "0.3",
        ]
    )  # fmt: skip
    found = [float(v) for v in re.findall(definition["Regex"], capsys.readouterr().out)]
    summary = json.loads((tmp_path / "out" / "training.json").read_text())
    assert len(found) >= 2  # per-round values (early stopping reads them), then the final one
    assert found[-1] == pytest.approx(summary["best"]["validation:rmse"], rel=1e-9)


def test_best_job_model_feeds_evaluate_and_register(tuned, target):
    _, steps = tuned
    best = {
        "Std:Join": {
            "On": "/",
            "Values": [
                target.uri("models"),
                {"Get": "Steps.train.BestTrainingJob.TrainingJobName"},
                "output",
                "model.tar.gz",
            ],
        }
    }
    inputs = {
        i["InputName"]: i["S3Input"] for i in steps["evaluate"]["Arguments"]["ProcessingInputs"]
    }
    assert inputs["model"]["S3Uri"] == best
    register = steps["register"]["Arguments"]
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == best
    metadata = register["CustomerMetadataProperties"]
    assert metadata["best_training_job"] == {"Get": "Steps.train.BestTrainingJob.TrainingJobName"}
    assert metadata["params.train.max_leaf_nodes"] == "tuned"
    assert steps["evaluate"]["DependsOn"] == ["train"]


def test_other_steps_are_unchanged_by_tuning(tuned, steps):
    _, tuned_steps = tuned
    for name in ("validate", "preprocess", "gate-failed"):
        assert tuned_steps[name] == steps[name], name


def test_tuning_on_the_xgboost_image_is_one_line_before_anything_runs(cfg, target):
    """The tuning service refuses a script's metrics and hyperparameters on the XGBoost
    image (its built-in algorithm): say so at render, not when the pipeline reaches it."""
    from mlops.core.errors import UsageError

    raw = cfg.model_dump()
    raw["train"]["tuning"] = {"ranges": {"max_depth": {"type": "integer", "min": 2, "max": 8}}}
    xgboost = type(cfg).model_validate(raw)
    xgboost._root = cfg.root
    assert xgboost.model_family.IMAGE == "xgboost"
    with pytest.raises(UsageError, match=r"^train.tuning on SageMaker: .* train.model: sklearn"):
        render_pipeline(xgboost, target)


def test_the_tuning_request_is_valid_for_the_service_model(tuned):
    """CreateHyperParameterTuningJob as SageMaker sends it for the step, parameters at their
    defaults, against botocore's model (types, required members, lengths, patterns)."""
    from test_requests_valid import STEP_OPERATIONS, check, resolved

    rendered, steps = tuned
    defaults = {p["Name"]: p["DefaultValue"] for p in json.loads(rendered.definition)["Parameters"]}
    operation, extra = STEP_OPERATIONS[steps["train"]["Type"]]
    assert operation == "CreateHyperParameterTuningJob"
    check(operation, {**resolved(steps["train"]["Arguments"], defaults), **extra})

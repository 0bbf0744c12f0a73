"""The model family is the project's choice (config train.model): switched to scikit-learn,
the definition trains, evaluates and serves on the scikit-learn image, with that family's
hyperparameters and name, and nothing of XGBoost left."""

from __future__ import annotations

import json

import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

from mlops.core.config import load_config
from mlops.core.graph import load_pipeline

SKLEARN_HYPERPARAMETERS = {
    "learning_rate": 0.1,
    "max_iter": 300,
    "max_leaf_nodes": 15,
    "early_stopping": True,
    "random_state": 7,
}


@pytest.fixture
def sklearn(config_file):
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    def use_sklearn(raw: dict) -> None:
        raw["train"] = {"model": "sklearn", "hyperparameters": SKLEARN_HYPERPARAMETERS}

    cfg = load_config(config_file(use_sklearn))
    graph = load_pipeline(cfg)
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    rendered = render_pipeline(cfg, target, graph)
    return cfg, graph, rendered, pipeline_steps(json.loads(rendered.definition))


def test_train_evaluate_and_register_use_the_sklearn_image_and_hyperparameters(sklearn):
    """One render (seconds): images, description, hyperparameters and lineage together."""
    cfg, graph, rendered, steps = sklearn
    image = f"sagemaker-scikit-learn:{cfg.sagemaker.image_versions['sklearn']}-cpu-py3"
    train = steps["train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith(image)
    assert steps["evaluate"]["Arguments"]["AppSpecification"]["ImageUri"].endswith(image)
    register = steps["register"]["Arguments"]
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["Image"].endswith(image)
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "endpoint_handler.py"
    assert register["ModelPackageDescription"] == (
        "energy-costs: sklearn model, served on the SageMaker sklearn 1.9-0 image"
    )
    assert "xgboost" not in rendered.definition.lower()

    hp = steps["train"]["Arguments"]["HyperParameters"]
    assert hp["model"] == "sklearn"
    assert {k: hp[k] for k in SKLEARN_HYPERPARAMETERS} == {
        "learning_rate": "0.1",
        "max_iter": "300",
        "max_leaf_nodes": "15",
        "early_stopping": "True",
        "random_state": "7",
    }
    assert "num_round" not in hp and "eta" not in hp
    assert graph.step("train").image == "sklearn"
    metadata = steps["register"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata["params.train.model"] == "sklearn"
    assert metadata["params.train.max_iter"] == "300"

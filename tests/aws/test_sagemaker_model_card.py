"""The SageMaker Model Card attached to a registered model package: its content follows the
model card schema (as the SDK's own classes, generated from AWS's published JSON schema, read
it) and the UpdateModelPackage request follows botocore's service model (Stubber)."""

from __future__ import annotations

import json

import boto3
import pytest
from _sagemaker_helpers import BUCKET, GROUP
from botocore.stub import ANY, Stubber
from test_sagemaker_registry import register_version

from mlops.core.card_content import MODEL_CARD_MAX_CHARS
from mlops.sagemaker.model_card import attach_card, card_content
from mlops.sagemaker.registry import SageMakerRegistry

pytestmark = pytest.mark.aws


class StubbedUpdates:
    """moto answers the reads; a Stubber checks and records the card's write."""

    def __init__(self, moto_client, stubbed_client):
        self.moto, self.stubbed = moto_client, stubbed_client

    def __getattr__(self, name):
        return getattr(self.stubbed if name == "update_model_package" else self.moto, name)


@pytest.fixture
def registry(aws, cfg):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    register_version(cfg, 1, 4.0e7, pr_number="17")
    return SageMakerRegistry(GROUP)


def schema_checked(content: dict) -> dict:
    """Parse with sagemaker-core's model card classes and give back what they kept: a key
    the schema does not know is dropped, so a round trip that loses nothing is valid."""
    from sagemaker.core.shapes.model_card_shapes import ModelCardContent

    return ModelCardContent.model_validate(content).model_dump(
        mode="json", exclude_unset=True, exclude_none=True
    )


def test_the_card_content_follows_the_model_card_schema(registry, cfg):
    version = registry.describe(1)
    evaluation = {
        "regression_metrics": {"mse": {"value": 4.0e7}, "r2": {"value": 0.93}},
        "champion": {"regression_metrics": {"mse": {"value": 4.2e7}, "r2": {"value": 0.92}}},
        "champion_mse_limit": 4.41e7,
        "intervals": {"mse": [3.5e7, 4.5e7]},
        "rows": 2000,
        "golden": {
            "regression_metrics": {"mse": {"value": 5.0e7}, "r2": {"value": 0.91}},
            "champion_mse_limit": 6.0e7,
            "rows": 100,
        },
    }
    content = json.loads(card_content(cfg, version, evaluation))
    assert schema_checked(content) == content
    assert content["model_overview"]["problem_type"] == "regression"
    assert content["additional_information"]["custom_details"]["pr_number"] == "17"
    held_out, golden = content["evaluation_details"]
    this, champion = held_out["metric_groups"]
    values = {m["name"]: m["value"] for m in this["metric_data"]}
    assert values == {"mse": 4.0e7, "mse 95% low": 3.5e7, "mse 95% high": 4.5e7, "r2": 0.93}
    assert {m["name"]: m["value"] for m in champion["metric_data"]} == {
        "champion mse": 4.2e7,
        "champion r2": 0.92,
    }
    assert "quality gate passed" in held_out["evaluation_observation"]
    assert golden["metric_groups"][0]["metric_data"] == [
        {"name": "mse", "type": "number", "value": 5.0e7},
        {"name": "r2", "type": "number", "value": 0.91},
    ]


def test_a_classifier_card_carries_its_roc_curve_as_a_graph(registry, cfg):
    from stepkit import metrics

    y = [0, 0, 1, 1, 0, 1, 1, 0]
    p = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.7, 0.3]
    evaluation = metrics.task_metrics("binary_classification", y, p, 0.5)
    content = json.loads(card_content(cfg, registry.describe(1), evaluation))
    assert schema_checked(content) == content
    (roc,) = [
        m
        for m in content["evaluation_details"][0]["metric_groups"][0]["metric_data"]
        if m["type"] == "linear_graph"
    ]
    assert roc["value"][0] == [0.0, 0.0] and roc["value"][-1] == [1.0, 1.0]


def test_attach_sends_a_valid_update_model_package(registry, cfg):
    stubbed = boto3.client("sagemaker")
    model = stubbed.meta.service_model.shape_for("ModelCardStatus")
    arn = registry.describe(1).arn
    with Stubber(stubbed) as stub:
        stub.add_response(
            "update_model_package",
            {"ModelPackageArn": arn},
            {
                "ModelPackageArn": arn,
                "ModelCard": {"ModelCardContent": ANY, "ModelCardStatus": "Draft"},
            },
        )
        registry._sagemaker = StubbedUpdates(registry.sagemaker, stubbed)
        assert attach_card(cfg, registry, 1) == arn
        stub.assert_no_pending_responses()
    assert "Draft" in model.enum
    content = card_content(
        cfg, registry.describe(1), {"regression_metrics": {"mse": {"value": 1.0}}}
    )
    assert len(content) <= MODEL_CARD_MAX_CHARS
    limit = stubbed.meta.service_model.shape_for("ModelCardContent").metadata["max"]
    assert limit == MODEL_CARD_MAX_CHARS  # the limit the card checks is botocore's

"""A serverless staging endpoint: the stage config's `serverless` section renders as the
endpoint config's ServerlessConfig (CloudFormation under moto), without data capture,
autoscaling or blue/green, and its cost is per request."""

from __future__ import annotations

import json

import boto3
import pytest
from test_templates import ENDPOINT_TEMPLATE, EXECUTION_ROLE, approved_package

from mlops.core.cost import endpoint_cost
from mlops.core.stages import load_stage_config, stage_config_path
from mlops.sagemaker.deploy import stack_parameters

pytestmark = pytest.mark.aws


def serverless_staging(tmp_path, memory_mb: int = 2048, concurrency: int = 3):
    raw = json.loads(stage_config_path("staging").read_text())
    raw["sagemaker"]["serverless"] = {"memory_mb": memory_mb, "max_concurrency": concurrency}
    raw["sagemaker"].update(data_capture_percent=0, monitoring={"enabled": False})
    (tmp_path / "staging-config.json").write_text(json.dumps(raw))
    return load_stage_config("staging", tmp_path)


def test_serverless_staging_renders_a_serverless_endpoint(aws, cfg, tmp_path):
    stage_config = serverless_staging(tmp_path)
    _, version = approved_package()
    params = stack_parameters(cfg, stage_config, version, EXECUTION_ROLE, "artifacts")
    assert (params["ServerlessMemoryMB"], params["ServerlessMaxConcurrency"]) == ("2048", "3")
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="energy-costs-staging",
        TemplateBody=ENDPOINT_TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="energy-costs-staging")["Stacks"][0][
            "Outputs"
        ]
    }
    sagemaker = boto3.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    assert "InstanceType" not in variant
    assert not config.get("DataCaptureConfig")  # SageMaker captures nothing from serverless


def test_an_instance_stage_passes_no_serverless_parameters(cfg):
    from mlops.core.registry import ModelVersion

    version = ModelVersion("energy-costs", 1, "Approved", "", {}, {}, "", arn="arn:x")
    params = stack_parameters(cfg, load_stage_config("prod"), version, EXECUTION_ROLE, "b")
    assert "ServerlessMemoryMB" not in params  # the template's default, 0: instances


def test_serverless_staging_cost_is_per_request(tmp_path):
    cost = endpoint_cost("staging", serverless_staging(tmp_path, 1024, 2).sagemaker)
    assert cost.monthly_low == 0 and cost.what == "serverless 1024 MB, max concurrency 2"

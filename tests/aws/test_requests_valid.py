"""The requests SageMaker sends on the pipeline's behalf (each step's Arguments) and the ones
this project sends itself, checked against botocore's service model: botocore's own
validator (types, required members, minimum lengths) plus maximum lengths, list sizes and
patterns, which botocore leaves to the service."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.session
import pytest
import regex
from botocore.validate import validate_parameters

MODEL = botocore.session.get_session().get_service_model("sagemaker")
STEP_OPERATIONS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "pipelines-x1-validate"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName": "pipelines-x1-train"}),
    "RegisterModel": ("CreateModelPackage", {}),
    # tuning job names are at most 32 characters
    "Tuning": ("CreateHyperParameterTuningJob", {"HyperParameterTuningJobName": "x1abcdefgh23"}),
}
EXECUTION_ID = "x1abcdefgh23"


def resolved(node, defaults: dict):
    """A step's Arguments as SageMaker resolves them at run time (parameters at defaults)."""
    if isinstance(node, list):
        return [resolved(v, defaults) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        ref = node["Get"]
        if ref.startswith("Parameters."):
            return defaults[ref.removeprefix("Parameters.")]
        if ref == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        step = ref.split(".")[1]
        return f"s3://bucket/energy-costs/runs/{EXECUTION_ID}/{step}/output"
    if set(node) == {"Std:Join"}:
        join = node["Std:Join"]
        return join["On"].join(str(resolved(v, defaults)) for v in join["Values"])
    return {k: resolved(v, defaults) for k, v in node.items()}


def strict_errors(value, shape, path: str = "") -> Iterator[str]:
    """What botocore does not check: maximum lengths and sizes, and string patterns."""
    meta = shape.metadata
    if shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: longer than {meta['max']}"
        if "pattern" in meta and not regex.fullmatch(meta["pattern"], value):
            yield f"{path}: {value!r} does not match {meta['pattern']}"
    elif shape.type_name == "structure":
        for name, member in value.items():
            yield from strict_errors(member, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: more than {meta['max']} items"
        for i, item in enumerate(value):
            yield from strict_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: more than {meta['max']} entries"
        for key, item in value.items():
            yield from strict_errors(key, shape.key, f"{path}<key>")
            yield from strict_errors(item, shape.value, f"{path}.{key}")


def request_errors(service: str, operation: str, params: dict) -> list[str]:
    """What botocore's client-side validation let through in one recorded request."""
    model = botocore.session.get_session().get_service_model(service)
    return list(strict_errors(params, model.operation_model(operation).input_shape, operation))


def check(operation: str, params: dict) -> None:
    shape = MODEL.operation_model(operation).input_shape
    validate_parameters(params, shape)  # raises ParamValidationError
    assert list(strict_errors(params, shape, operation)) == []


@pytest.mark.parametrize("name", ["validate", "preprocess", "train", "evaluate", "register"])
def test_step_requests_are_valid(name, steps, definition):
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    step = steps[name]
    operation, extra = STEP_OPERATIONS[step["Type"]]
    check(operation, {**resolved(step["Arguments"], defaults), **extra})


def test_lineage_with_real_values_fits_the_metadata_rules(steps, definition):
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    defaults.update(
        GitCommit="9f18a58f6d4ea3401d31119bfe8fd94d28685f77",
        PrNumber="1234",
        DataSha256="ab" * 32,
        InputDataUri="s3://mlops-artifacts-111111111111/energy-costs/data/"
        + "ab" * 32
        + "/energy_costs.csv",
    )
    args = {**resolved(steps["register"]["Arguments"], defaults)}
    check("CreateModelPackage", args)


def test_pipeline_upsert_request_is_valid(rendered, target):
    check(
        "CreatePipeline",
        {
            "PipelineName": rendered.name,
            "PipelineDefinition": rendered.definition,
            "RoleArn": target.role_arn,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )


def test_the_strict_check_can_fail():
    shape = MODEL.operation_model("CreateModelPackage").input_shape
    bad = {"CustomerMetadataProperties": {"params": '{"max_depth": 3}'}}
    assert [e.split(":")[0] for e in strict_errors(bad, shape)] == [
        ".CustomerMetadataProperties.params"
    ]


def test_sharded_processing_requests_are_valid(config_file):
    """processing_instance_count 3: the sharded steps and their merges are valid requests."""
    import json

    from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

    from mlops.core.config import load_config
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(config_file(lambda raw: raw["sagemaker"].update(processing_instance_count=3)))
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    definition = json.loads(render_pipeline(cfg, target).definition)
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    steps = pipeline_steps(definition)
    for name in ("validate", "validate_merge", "preprocess", "preprocess_merge"):
        operation, extra = STEP_OPERATIONS["Processing"]
        check(operation, {**resolved(steps[name]["Arguments"], defaults), **extra})

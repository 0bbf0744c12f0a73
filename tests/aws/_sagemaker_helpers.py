"""Constants and helpers shared by the AWS-API tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

GROUP = "energy-costs"

REGION = "us-east-1"
ACCOUNT = "111111111111"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-sagemaker-execution"
BUCKET = f"mlops-artifacts-{ACCOUNT}"
MOTO_ACCOUNT = "123456789012"  # moto's default account id


def pipeline_steps(definition: dict) -> dict[str, dict]:
    """Every step of a definition by name, the condition's branches included."""
    steps: dict[str, dict] = {}
    pending = list(definition["Steps"])
    while pending:
        step = pending.pop(0)
        steps[step["Name"]] = step
        if step["Type"] == "Condition":
            pending += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return steps


def strings(node: object) -> Iterator[str]:
    """Every string value in a JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def create_package(
    status: str = "Approved", model_url: str = "s3://b/model.tar.gz", group: str = GROUP
) -> str:
    """A minimal model package version in (moto's) registry, creating its group if needed;
    returns its ARN."""
    import boto3

    sagemaker = boto3.client("sagemaker")
    if not sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "xgboost", "ModelDataUrl": model_url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


def held_out_csv(cfg, rows: int, start: int = 0) -> str:
    """Held-out rows as preprocess writes them: the input's columns (features, then the
    target), a header, raw values; row i's features are i-based, its target 1000 + i."""
    lines = [",".join(cfg.columns)]
    for i in range(start, start + rows):
        features = [str(10 * i + k) for k in range(len(cfg.data.features))]
        lines.append(",".join([*features, str(1000 + i)]))
    return "\n".join(lines) + "\n"

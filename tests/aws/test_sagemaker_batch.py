"""`mlops batch predict --backend sagemaker`: the transform job's request and its wait,
against botocore's Stubber (so every request is checked against the service model)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops.core.batch import BatchJob
from mlops.core.config import load_config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.registry import APPROVED, ModelVersion
from mlops.sagemaker.batch import SageMakerBatchScorer, job_name

ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker-execution"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/grp/4"


def version() -> ModelVersion:
    return ModelVersion("grp", 4, APPROVED, "", {}, {}, "s3://b/m.tar.gz", arn=PACKAGE)


@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setenv("MLOPS_SAGEMAKER_ROLE_ARN", ROLE)
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def described(name: str, status: str, reason: str = "") -> dict:
    out = {
        "TransformJobName": name,
        "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}",
        "TransformJobStatus": status,
        "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": "s3://b/in.csv"}}},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
    }  # fmt: skip
    if reason:
        out["FailureReason"] = reason
    return out


def test_transform_job_from_the_model_package_keeps_ids(stubbed, config_file):
    client, stub = stubbed
    cfg = load_config(config_file(lambda raw: raw["data"].update(id_column="house_id")))
    model = f"{cfg.model_package_group}-v4-batch"
    stub.add_response("list_models", {"Models": []}, {"NameContains": model, "MaxResults": 100})
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{model}"},
        {"ModelName": model, "ExecutionRoleArn": ROLE,
         "Containers": [{"ModelPackageName": PACKAGE}]},
    )  # fmt: skip
    requests = []
    stub.add_response("create_transform_job", {"TransformJobArn": "arn:x"}, None)
    for status in ("InProgress", "InProgress", "Completed"):
        stub.add_response(
            "describe_transform_job", described("j", status), {"TransformJobName": ANY}
        )
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateTransformJob",
        lambda params, **_: requests.append(params),
    )
    progress = []
    scorer = SageMakerBatchScorer(cfg, argparse.Namespace(poll_seconds=0), client)
    job = BatchJob("s3://b/in/", "s3://b/out/", version(), id_column=cfg.data.id_column)
    result = scorer.predict(job, progress.append)

    (request,) = requests
    assert request["ModelName"] == model
    assert request["BatchStrategy"] == "MultiRecord"
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformInput"]["ContentType"] == "text/csv"
    assert request["DataProcessing"] == {
        "JoinSource": "Input",
        "InputFilter": "$[1:]",
        "OutputFilter": "$[0,-1]",
    }
    assert request["TransformOutput"]["S3OutputPath"] == "s3://b/out/"
    assert request["TransformResources"] == {
        "InstanceType": cfg.batch.instance_type,
        "InstanceCount": cfg.batch.instance_count,
    }
    assert progress == [
        f"transform job {request['TransformJobName']}: InProgress",
        f"transform job {request['TransformJobName']}: Completed",
    ]
    assert result.job == request["TransformJobName"] and result.version == 4
    assert "completed" in result.summary()


def test_failed_job_is_one_line_and_local_paths_are_refused(stubbed):
    client, stub = stubbed
    cfg = load_config()
    model = f"{cfg.model_package_group}-v4-batch"
    stub.add_response("list_models", {"Models": [
        {"ModelName": model, "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m",
         "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}]}, None)  # fmt: skip
    stub.add_response("create_transform_job", {"TransformJobArn": "arn:x"}, None)
    stub.add_response(
        "describe_transform_job", described("j", "Failed", "ClientError: bad row 7"), None
    )
    scorer = SageMakerBatchScorer(cfg, argparse.Namespace(poll_seconds=0), client)
    with pytest.raises(MlopsError, match="Failed: ClientError: bad row 7"):
        scorer.predict(BatchJob("s3://b/in/", "s3://b/out/", version()), lambda _: None)
    with pytest.raises(UsageError, match="--data must be an s3:// URI"):
        scorer.predict(BatchJob("in.csv", "s3://b/out/", version()), lambda _: None)


def test_job_names_fit_sagemaker():
    name = job_name("g" * 80, 12, datetime(2026, 12, 1, 2, 3, 4, tzinfo=UTC))
    assert len(name) == 63 and name.endswith("-v12-20261201-020304")

"""The SageMaker Model Registry behind the local registry's interface, against moto."""

from __future__ import annotations

import json

import boto3
import pytest
from _sagemaker_helpers import BUCKET, GROUP

from mlops.cli.backends import open_registry
from mlops.core.errors import UsageError
from mlops.core.lineage import run_parameters
from mlops.sagemaker.pipeline_definition import NO_VALUE, lineage_metadata
from mlops.sagemaker.registry import SageMakerRegistry, lineage_from_metadata


def register_version(cfg, n: int, mse: float, pr_number: str = NO_VALUE) -> str:
    """A model package as the pipeline's RegisterModel step creates it (parameters resolved)."""
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    prefix = f"{GROUP}/runs/exec{n}"
    evaluation = {"regression_metrics": {"mse": {"value": mse}, "r2": {"value": 0.9 + n / 100}}}
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{prefix}/evaluate/evaluation/evaluation.json",
        Body=json.dumps(evaluation),
    )
    params = {
        "GitCommit": f"{n:040x}",
        "PrNumber": pr_number,
        "DataSha256": f"{n:064x}",
        "InputDataUri": f"s3://{BUCKET}/{GROUP}/data/{n:064x}/houses.csv",
    }
    metadata = lineage_metadata(
        cfg, params, run_id=f"exec{n}", held_out=f"s3://{BUCKET}/{prefix}/preprocess/test"
    )
    response = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [
                {"Image": "xgboost:3.2-0", "ModelDataUrl": f"s3://{BUCKET}/{prefix}/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKET}/{prefix}/evaluate/evaluation/evaluation.json",
                }
            },
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKET}/{prefix}/preprocess/baseline/baseline.json",
                }
            },
        },
        CustomerMetadataProperties=metadata,
    )
    return response["ModelPackageArn"]


@pytest.fixture
def registry(aws, cfg):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    for n, mse in ((1, 5.0e7), (2, 4.0e7), (3, 4.5e7)):
        register_version(cfg, n, mse, pr_number="17" if n == 3 else NO_VALUE)
    return SageMakerRegistry(GROUP)


def test_list_has_versions_metrics_and_lineage(registry, cfg):
    versions = registry.list()
    assert [v.version for v in versions] == [1, 2, 3]
    assert {v.approval_status for v in versions} == {"PendingManualApproval"}
    assert [v.metrics["mse"] for v in versions] == [5.0e7, 4.0e7, 4.5e7]
    assert versions[1].metrics["r2"] == pytest.approx(0.92)
    two = versions[1]
    assert two.arn.endswith(f":model-package/{GROUP}/2")
    assert two.model_uri == f"s3://{BUCKET}/{GROUP}/runs/exec2/model.tar.gz"
    assert two.baseline_uri.endswith("/exec2/preprocess/baseline/baseline.json")
    assert two.lineage["git_commit"] == f"{2:040x}"
    assert two.lineage["data_sha256"] == f"{2:064x}"
    assert two.lineage["run_id"] == "exec2"
    assert two.lineage["backend"] == "sagemaker"
    assert two.lineage["pr_number"] == ""  # "none" on SageMaker, empty like the local registry
    assert versions[2].lineage["pr_number"] == "17"
    assert two.lineage["params"] == run_parameters(cfg)  # as a local version records them
    assert two.lineage["params"]["train"]["model"] == "xgboost"
    # where the run's held-out rows are: what deploy's smoke test reads
    assert two.lineage["held_out_uri"] == f"s3://{BUCKET}/{GROUP}/runs/exec2/preprocess/test"


def test_approve_reject_and_latest_approved(registry):
    assert registry.latest_approved() is None
    approved = registry.approve(2, note="better than 1")
    assert (approved.version, approved.approval_status, approved.note) == (
        2,
        "Approved",
        "better than 1",
    )
    assert registry.reject(3).approval_status == "Rejected"
    assert registry.latest_approved().version == 2
    registry.approve(1)
    assert registry.latest_approved().version == 2  # the newest approved, not the last approved
    registry.approve(3)
    assert registry.latest_approved().version == 3
    statuses = {v.version: v.approval_status for v in registry.list()}
    assert statuses == {1: "Approved", 2: "Approved", 3: "Approved"}


def test_unknown_version_is_a_usage_error(registry):
    with pytest.raises(UsageError, match="model version 9 does not exist in group 'energy-costs'"):
        registry.describe(9)
    with pytest.raises(UsageError, match="does not exist"):
        registry.approve(9)


def test_open_registry_and_cli_use_the_sagemaker_registry(registry, capsys):
    from mlops.cli import run

    assert isinstance(open_registry("sagemaker", GROUP, None), SageMakerRegistry)
    assert run(["models", "approve", "1", "--backend", "sagemaker", "--note", "ok"]) == 0
    assert "model version 1 is now Approved" in capsys.readouterr().out
    assert run(["models", "list", "--backend", "sagemaker", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["approval_status"]) for v in listed] == [
        (1, "Approved"),
        (2, "PendingManualApproval"),
        (3, "PendingManualApproval"),
    ]
    assert listed[1]["metrics"]["mse"] == 4.0e7


def test_aws_errors_are_one_line(aws, capsys):
    from mlops.cli import run

    # The group does not exist and the evaluation object is missing: neither is a traceback.
    assert run(["models", "list", "--backend", "sagemaker"]) == 0
    assert "no model versions" in capsys.readouterr().out
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "x", "ModelDataUrl": "s3://nowhere/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": "s3://nowhere/e.json"}
            }
        },
    )
    assert run(["models", "describe", "1", "--backend", "sagemaker"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read s3://nowhere/e.json: NoSuchBucket")
    assert "\n" not in err


def test_lineage_round_trip(cfg):
    params = {
        "GitCommit": "abc",
        "PrNumber": "12",
        "DataSha256": "f" * 64,
        "InputDataUri": "s3://b/k",
    }
    metadata = lineage_metadata(cfg, params, run_id="exec", held_out="s3://b/runs/exec/p/test")
    assert all(isinstance(v, str) and 0 < len(v) <= 256 for v in metadata.values())
    assert len(metadata) <= 50  # the API's limit on CustomerMetadataProperties
    lineage = lineage_from_metadata(metadata)
    assert lineage["pr_number"] == "12"
    assert lineage["held_out_uri"] == "s3://b/runs/exec/p/test"
    assert lineage["params"] == run_parameters(cfg)


def test_lineage_over_the_apis_entry_limit_is_refused_at_render(cfg):
    many = {f"p{i}": i for i in range(40)}
    train = cfg.train.model_copy(update={"hyperparameters": many})
    params = {"GitCommit": "a", "PrNumber": "none", "DataSha256": "f", "InputDataUri": "s3://b/k"}
    with pytest.raises(
        UsageError, match=r"would have 6[0-9] metadata entries; SageMaker allows 50"
    ):
        lineage_metadata(cfg.model_copy(update={"train": train}), params, "exec", "s3://b/t")


def with_hyperparameters(cfg, hyperparameters: dict):
    train = cfg.train.model_copy(update={"hyperparameters": hyperparameters})
    return cfg.model_copy(update={"train": train})


def test_a_list_setting_is_recorded_in_the_apis_alphabet(cfg):
    """The API allows no brackets or quotes in metadata values: a list is its items."""
    params = {"GitCommit": "a", "PrNumber": "none", "DataSha256": "f", "InputDataUri": "s3://b/k"}
    listed = with_hyperparameters(cfg, {"eval_metric": ["rmse", "mae"], "max_depth": 3})
    metadata = lineage_metadata(listed, params, "exec", "s3://b/t")
    assert metadata["params.train.eval_metric"] == "rmse mae"
    bad = with_hyperparameters(cfg, {"objective": "reg:squared(error)"})
    with pytest.raises(UsageError, match=r"^train.objective: 'reg:squared\(error\)' cannot be"):
        lineage_metadata(bad, params, "exec", "s3://b/t")

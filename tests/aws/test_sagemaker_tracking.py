"""SageMaker tracking: a waited-for pipeline execution becomes one tracked run (metrics from
the execution's evaluation.json in S3, lineage, the package ARN) and the registered package
names the run; without a tracking server, one line and no tracking. moto holds S3 and the
registry; the execution's steps come from botocore's Stubber; the MLflow store is a real
SQLite one standing in for the managed server."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import boto3
import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, create_package
from botocore.stub import Stubber

from mlops.core.errors import MlopsError
from mlops.core.mlflow_tracker import MlflowTracker
from mlops.sagemaker.pipeline_run import run_sagemaker_pipeline, wait_for_execution
from mlops.sagemaker.tracking import TRACKING_ARN_ENV, evaluation_uri, sagemaker_tracker

SERVER = f"arn:aws:sagemaker:{REGION}:123456789012:mlflow-tracking-server/mlops"
EVALUATION = {
    "regression_metrics": {"mse": {"value": 2.5e7}, "r2": {"value": 0.97}},
    "champion": {"regression_metrics": {"mse": {"value": 2.6e7}}},
}


@pytest.fixture
def prerendered(rendered, target, monkeypatch):
    monkeypatch.setattr(
        "mlops.sagemaker.pipeline_definition.render_pipeline", lambda *a, **k: rendered
    )


def run_args(data):
    return argparse.Namespace(
        data=data, region=REGION, role_arn=ROLE_ARN, bucket=BUCKET,
        git_commit="0123abcd" * 5, wait=True, poll_seconds=0.0,
    )  # fmt: skip


def steps_reported(monkeypatch, steps: list[dict], status: str, s3, target) -> None:
    """The execution moto started ends with these steps (newest first); its evaluate step
    wrote evaluation.json where the pipeline puts it."""
    real_wait = wait_for_execution

    def stubbed_wait(client, execution_arn, *args, **kwargs):
        bucket, key = (
            evaluation_uri(target, execution_arn, "evaluate.evaluation")
            .removeprefix("s3://")
            .split("/", 1)
        )
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(EVALUATION).encode())
        stubbed = boto3.client("sagemaker", region_name=REGION)
        with Stubber(stubbed) as stub:
            stub.add_response(
                "describe_pipeline_execution",
                {"PipelineExecutionStatus": status},
                {"PipelineExecutionArn": execution_arn},
            )
            stub.add_response(
                "list_pipeline_execution_steps",
                {"PipelineExecutionSteps": steps},
                {"PipelineExecutionArn": execution_arn},
            )
            return real_wait(stubbed, execution_arn, *args, **kwargs)

    monkeypatch.setattr("mlops.sagemaker.pipeline_run.wait_for_execution", stubbed_wait)


def step(name, status, arn=""):
    item = {"StepName": name, "StepStatus": status, "StartTime": datetime(2026, 1, 1, tzinfo=UTC)}
    if arn:
        item["Metadata"] = {"RegisterModel": {"Arn": arn}}
    return item


def test_a_registered_execution_is_a_run_and_the_package_links_back(
    aws, prerendered, cfg, target, data_csv, tmp_path, monkeypatch, mlflow_db
):
    from mlflow.tracking import MlflowClient

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")
    package = create_package(status="PendingManualApproval")
    steps_reported(
        monkeypatch,
        [step("register", "Succeeded", arn=package), step("gate", "Succeeded")],
        "Succeeded",
        s3,
        target,
    )
    store = f"sqlite:///{mlflow_db(tmp_path)}"
    tracker = MlflowTracker(store, cfg.experiment, where="a stand-in for the managed server")
    assert run_sagemaker_pipeline(cfg, run_args(data_csv), (sagemaker, s3), tracker) == 0

    described = sagemaker.describe_model_package(ModelPackageName=package)
    run_id = described["CustomerMetadataProperties"]["tracking_run_id"]
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"test_mse": 2.5e7, "test_r2": 0.97, "champion_test_mse": 2.6e7}
    assert run.data.tags["model_package_arn"] == package
    assert run.data.tags["git_commit"] == "0123abcd" * 5
    assert run.data.tags["backend"] == "sagemaker"
    assert run.data.tags["execution_arn"].startswith("arn:aws:sagemaker:")
    for name, value in cfg.train.hyperparameters.items():
        assert run.data.params[f"train.{name}"] == str(value)


def test_a_failed_execution_is_a_failed_run(
    aws, prerendered, cfg, target, data_csv, tmp_path, monkeypatch, mlflow_db
):
    from mlflow.tracking import MlflowClient

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    steps_reported(
        monkeypatch,
        [step("gate-failed", "Failed"), step("gate", "Succeeded")],
        "Failed",
        s3,
        target,
    )
    store = f"sqlite:///{mlflow_db(tmp_path)}"
    tracker = MlflowTracker(store, cfg.experiment)
    with pytest.raises(MlopsError):
        run_sagemaker_pipeline(cfg, run_args(data_csv), (boto3.client("sagemaker"), s3), tracker)
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name(cfg.experiment).experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["gate"] == "not passed"
    assert run.data.metrics["test_mse"] == 2.5e7


def test_without_a_server_tracking_is_skipped_with_one_line(cfg, monkeypatch):
    monkeypatch.delenv(TRACKING_ARN_ENV, raising=False)
    lines: list[str] = []
    assert sagemaker_tracker(cfg, lines.append) is None
    assert len(lines) == 1 and lines[0].startswith("tracking: skipped")
    assert TRACKING_ARN_ENV in lines[0]


def test_a_server_arn_reaches_mlflow_through_the_sagemaker_plugin(cfg, monkeypatch):
    """No request is sent: the plugin turns the ARN into the server's signed REST endpoint."""
    from mlflow.tracking._tracking_service.utils import _get_store
    from sagemaker_mlflow.mlflow_sagemaker_store import MlflowSageMakerStore

    monkeypatch.setenv(TRACKING_ARN_ENV, SERVER)
    tracker = sagemaker_tracker(cfg, pytest.fail)
    assert tracker is not None and tracker.tracking_uri == SERVER
    store = _get_store(tracker.tracking_uri)
    assert isinstance(store, MlflowSageMakerStore)
    creds = store.get_host_creds()
    assert creds.auth == "arn" and REGION in creds.host and creds.host.startswith("https://")

"""`mlops pipeline run --backend sagemaker`: upload, upsert and start against moto; waiting and
reporting with botocore's Stubber (moto has no ListPipelineExecutionSteps). Stubber and
moto both go through botocore's parameter validation, so every request checked here is
valid for the service model."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, create_package
from botocore.stub import ANY, Stubber

from mlops.core.config import load_config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.lineage import sha256_file
from mlops.sagemaker.pipeline_run import (
    ExecutionReport,
    check_metadata_values,
    run_sagemaker_pipeline,
    wait_for_execution,
)

GROUP = load_config().model_package_group  # the fixture project's (tests/conftest.py)

EXECUTION = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/energy-costs-pipeline/execution/x1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/energy-costs/4"


def run_args(data: Path, **overrides) -> argparse.Namespace:
    values = dict(
        data=data,
        region=REGION,
        role_arn=ROLE_ARN,
        bucket=BUCKET,
        git_commit="0123abcd" * 5,
        wait=False,
        poll_seconds=0.0,
    )
    return argparse.Namespace(**{**values, **overrides})


def capture_requests(client, operation: str) -> list[dict]:
    """The parameters of every `operation` call the client makes, as sent."""
    seen: list[dict] = []
    client.meta.events.register(
        f"provide-client-params.{client.meta.service_model.service_name}.{operation}",
        lambda params, **_: seen.append(dict(params)),
    )
    return seen


@pytest.fixture
def bucket(aws):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return boto3.client("s3")


@pytest.fixture
def prerendered(rendered, target, monkeypatch):
    """Runs with the session's target reuse its render (each render costs about a second)."""

    def render(cfg, run_target, *args, **kwargs):
        assert run_target == target
        return rendered

    monkeypatch.setattr("mlops.sagemaker.pipeline_definition.render_pipeline", render)


def test_run_uploads_upserts_and_starts(bucket, prerendered, cfg, data_csv, capsys, monkeypatch):
    monkeypatch.setenv("MLOPS_PR_NUMBER", "42")
    sagemaker = boto3.client("sagemaker")
    starts = capture_requests(sagemaker, "StartPipelineExecution")
    assert run_sagemaker_pipeline(cfg, run_args(data_csv), aws=(sagemaker, bucket)) == 0

    pipeline = sagemaker.describe_pipeline(PipelineName="energy-costs-pipeline")
    definition = json.loads(pipeline["PipelineDefinition"])
    assert pipeline["RoleArn"] == ROLE_ARN
    assert [s["Name"] for s in definition["Steps"]][-1] == "gate"
    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]}
    text = pipeline["PipelineDefinition"]
    code_keys = [k for k in keys if k.startswith("energy-costs/code/")]
    assert len(code_keys) >= 20
    for key in code_keys:  # each object, or a folder holding it, is named in the definition
        parts = key.split("/")
        named = [f"s3://{BUCKET}/" + "/".join(parts[:n]) for n in range(3, len(parts) + 1)]
        assert any(f'"{uri}"' in text or f'"{uri}/"' in text for uri in named), key
    digest = sha256_file(data_csv)
    data_key = f"energy-costs/data/{digest}/{data_csv.name}"
    assert data_key in keys
    body = bucket.get_object(Bucket=BUCKET, Key=data_key)["Body"].read()
    assert body == data_csv.read_bytes()

    (start,) = starts
    params = {p["Name"]: p["Value"] for p in start["PipelineParameters"]}
    assert params == {
        "InputDataUri": f"s3://{BUCKET}/{data_key}",
        "GitCommit": "0123abcd" * 5,
        "PrNumber": "42",
        "DataSha256": digest,
    }  # no champion yet: ChampionModelUri keeps its placeholder default
    out = capsys.readouterr().out
    assert (
        "upserted: arn:aws:sagemaker:us-east-1:123456789012:pipeline/energy-costs-pipeline" in out
    )
    assert "started:  arn:aws:sagemaker" in out


def test_run_on_data_already_in_s3(bucket, prerendered, cfg, data_csv):
    sagemaker = boto3.client("sagemaker")
    starts = capture_requests(sagemaker, "StartPipelineExecution")
    bucket.upload_file(str(data_csv), BUCKET, "incoming/2026-01/houses.csv")
    uri = f"s3://{BUCKET}/incoming/2026-01/houses.csv"
    assert run_sagemaker_pipeline(cfg, run_args(uri), aws=(sagemaker, bucket)) == 0
    params = {p["Name"]: p["Value"] for p in starts[0]["PipelineParameters"]}
    assert (params["InputDataUri"], params["DataSha256"]) == (uri, sha256_file(data_csv))
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert not any(k.startswith("energy-costs/data/") for k in keys)  # nothing re-uploaded
    with pytest.raises(MlopsError, match=r"cannot read the input data s3://\S+/missing\.csv"):
        run_sagemaker_pipeline(cfg, run_args(f"s3://{BUCKET}/missing.csv"), aws=(sagemaker, bucket))


def test_second_run_updates_and_passes_the_champion(bucket, prerendered, cfg, data_csv):
    sagemaker = boto3.client("sagemaker")
    creates = capture_requests(sagemaker, "CreatePipeline")
    updates = capture_requests(sagemaker, "UpdatePipeline")
    starts = capture_requests(sagemaker, "StartPipelineExecution")
    run_sagemaker_pipeline(cfg, run_args(data_csv), aws=(sagemaker, bucket))
    champion = f"s3://{BUCKET}/energy-costs/runs/old/model.tar.gz"
    create_package("Approved", model_url=champion)
    run_sagemaker_pipeline(cfg, run_args(data_csv), aws=(sagemaker, bucket))
    assert (len(creates), len(updates)) == (2, 1)  # the second create failed: "already exists"
    assert updates[0]["PipelineDefinition"] == creates[0]["PipelineDefinition"]
    params = {p["Name"]: p["Value"] for p in starts[1]["PipelineParameters"]}
    assert params["ChampionModelUri"] == champion
    assert (
        len(
            sagemaker.list_pipeline_executions(PipelineName="energy-costs-pipeline")[
                "PipelineExecutionSummaries"
            ]
        )
        == 2
    )


def test_cli_run_with_flags(bucket, data_csv, capsys):
    from mlops.cli import run

    argv = ["pipeline", "run", "--backend", "sagemaker", "--data", str(data_csv), "--no-wait"]
    target = ["--region", REGION, "--role-arn", ROLE_ARN, "--bucket", BUCKET]
    assert run([*argv, *target]) == 0
    assert "started:" in capsys.readouterr().out
    assert run([*argv, "--region", REGION, "--bucket", BUCKET]) == 2
    assert "needs --role-arn or $MLOPS_SAGEMAKER_ROLE_ARN" in capsys.readouterr().err


def test_lineage_values_the_api_would_reject_are_refused_before_the_run():
    check_metadata_values({"GitCommit": "a" * 40, "DataUri": "s3://b/k/file-1.csv"})
    with pytest.raises(UsageError, match="cannot be model package metadata"):
        check_metadata_values({"GitCommit": "abc;rm"})
    with pytest.raises(UsageError):
        check_metadata_values({"PrNumber": ""})


# ---- waiting and reporting (Stubber) ------------------------------------------------------


def step(name: str, status: str, reason: str = "", arn: str = "") -> dict:
    item = {"StepName": name, "StepStatus": status, "StartTime": datetime(2026, 1, 1, tzinfo=UTC)}
    if reason:
        item["FailureReason"] = reason
    if arn:
        item["Metadata"] = {"RegisterModel": {"Arn": arn}}
    return item


def stub_poll(stub: Stubber, status: str, newest_first: list[dict], reason: str = "") -> None:
    described = {"PipelineExecutionArn": EXECUTION, "PipelineExecutionStatus": status}
    if reason:
        described["FailureReason"] = reason
    stub.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": EXECUTION})
    stub.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": newest_first},
        {"PipelineExecutionArn": EXECUTION},
    )


def test_wait_reports_each_status_change_once_and_the_package_arn():
    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    lines: list[str] = []
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub_poll(stub, "Executing", [step("validate", "Executing")])
        stub_poll(stub, "Executing", [step("validate", "Executing")])
        stub_poll(
            stub,
            "Succeeded",
            [
                step("register", "Succeeded", arn=PACKAGE),
                step("gate", "Succeeded"),
                step("evaluate", "Succeeded"),
                step("train", "Succeeded"),
                step("preprocess", "Succeeded"),
                step("validate", "Succeeded"),
            ],
        )
        report = wait_for_execution(client, EXECUTION, lines.append, 7.0, sleeps.append)
        stub.assert_no_pending_responses()
    assert report.status == "Succeeded"
    assert report.model_package_arn == PACKAGE
    assert [s.name for s in report.steps] == [
        "validate",
        "preprocess",
        "train",
        "evaluate",
        "gate",
        "register",
    ]
    assert sleeps == [7.0, 7.0]
    assert lines[0].split() == ["validate", "Executing"]
    assert sum("validate" in line for line in lines) == 2  # Executing, then Succeeded
    assert lines[-1].split() == ["register", "Succeeded"]


def test_wait_pages_through_steps():
    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionStatus": "Succeeded"},
            {"PipelineExecutionArn": EXECUTION},
        )
        stub.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": [step("train", "Succeeded")], "NextToken": "t"},
            {"PipelineExecutionArn": EXECUTION},
        )
        stub.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": [step("preprocess", "Succeeded")]},
            {"PipelineExecutionArn": EXECUTION, "NextToken": "t"},
        )
        report = wait_for_execution(client, EXECUTION, lambda _: None, 0, lambda _: None)
    assert [s.name for s in report.steps] == ["preprocess", "train"]


def test_failed_gate_exits_1_with_the_fail_step_reason(
    bucket, prerendered, cfg, data_csv, capsys, monkeypatch
):
    sagemaker = boto3.client("sagemaker")
    message = "quality gate failed: needs mse <= 80000000.0, r2 >= 0.9 ...; got mse 9.1e7, r2 0.88"
    real_wait = wait_for_execution

    def stubbed_wait(client, execution_arn, *args, **kwargs):
        # moto started the execution; the steps it cannot list come from a Stubber.
        stubbed = boto3.client("sagemaker", region_name=REGION)
        with Stubber(stubbed) as stub:
            newest_first = [
                step("gate-failed", "Failed", reason=message),
                step("gate", "Succeeded"),
                step("evaluate", "Succeeded"),
            ]
            stub.add_response(
                "describe_pipeline_execution",
                {"PipelineExecutionStatus": "Failed", "FailureReason": "Step failure"},
                {"PipelineExecutionArn": execution_arn},
            )
            stub.add_response(
                "list_pipeline_execution_steps",
                {"PipelineExecutionSteps": newest_first},
                {"PipelineExecutionArn": execution_arn},
            )
            return real_wait(stubbed, execution_arn, *args, **kwargs)

    monkeypatch.setattr("mlops.sagemaker.pipeline_run.wait_for_execution", stubbed_wait)
    with pytest.raises(MlopsError) as raised:
        run_sagemaker_pipeline(cfg, run_args(data_csv, wait=True), aws=(sagemaker, bucket))
    assert str(raised.value) == f"pipeline step 'gate-failed' failed: {message}"
    out = capsys.readouterr().out
    assert f"gate-failed  Failed: {message}" in out
    assert "registered:" not in out


def test_report_without_a_failed_step_names_the_execution_reason():
    from mlops.sagemaker.pipeline_run import failure_message

    report = ExecutionReport(EXECUTION, "Stopped", "stopped by a user")
    assert failure_message(report) == "pipeline execution Stopped: stopped by a user"


def test_run_without_the_wheels_is_refused_before_any_upload(
    bucket, data_csv, tmp_path, monkeypatch, capsys
):
    from mlops.cli import run

    monkeypatch.setenv("MLOPS_WHEELS_DIR", str(tmp_path))  # `make wheels` never ran
    argv = ["pipeline", "run", "--backend", "sagemaker", "--data", str(data_csv), "--no-wait"]
    assert run([*argv, "--region", REGION, "--role-arn", ROLE_ARN, "--bucket", BUCKET]) == 2
    assert "run `make wheels` first" in capsys.readouterr().err
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{GROUP}/code/")


def test_a_new_pr_run_stops_the_executions_it_supersedes():
    """A push to a PR cancels its GitHub job, not the SageMaker execution: the next run stops
    the PR pipeline's executions still running (and only those)."""
    from mlops.sagemaker.pipeline_run import stop_superseded

    client = boto3.client("sagemaker", region_name="us-east-1")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/g-pr-7/execution/"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    summaries = [
        {"PipelineExecutionArn": arn + "new", "PipelineExecutionStatus": "Executing", "StartTime": now},
        {"PipelineExecutionArn": arn + "old", "PipelineExecutionStatus": "Succeeded", "StartTime": now},
        {"PipelineExecutionArn": arn + "mid", "PipelineExecutionStatus": "Stopping", "StartTime": now},
    ]  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": summaries},
                          {"PipelineName": "g-pr-7"})  # fmt: skip
        stub.add_response(
            "stop_pipeline_execution",
            {"PipelineExecutionArn": arn + "new"},
            {"PipelineExecutionArn": arn + "new", "ClientRequestToken": ANY},
        )
        assert stop_superseded(client, "g-pr-7") == [arn + "new"]
        stub.assert_no_pending_responses()


def sharded(cfg, count: int):
    return cfg.model_copy(
        update={"sagemaker": cfg.sagemaker.model_copy(update={"processing_instance_count": count})}
    )


def test_several_processing_instances_get_the_file_in_as_many_parts(
    bucket, prerendered, cfg, data_csv
):
    """One object would feed one instance (ShardedByS3Key): a local file goes up as 3 files
    under one prefix, together every row of it once, byte for byte."""
    sagemaker = boto3.client("sagemaker")
    starts = capture_requests(sagemaker, "StartPipelineExecution")
    assert run_sagemaker_pipeline(sharded(cfg, 3), run_args(data_csv), aws=(sagemaker, bucket)) == 0
    params = {p["Name"]: p["Value"] for p in starts[0]["PipelineParameters"]}
    prefix = f"energy-costs/data/{sha256_file(data_csv)}/parts-3/"
    assert params["InputDataUri"] == f"s3://{BUCKET}/{prefix}"
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert keys == [f"{prefix}{data_csv.stem}-0{k}.csv" for k in (1, 2, 3)]
    bodies = [bucket.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in keys]
    header, *rows = data_csv.read_text().splitlines()
    assert all(b.splitlines()[0] == header for b in bodies)
    assert sorted(r for b in bodies for r in b.splitlines()[1:]) == sorted(rows)


def test_one_s3_object_for_several_processing_instances_is_refused(bucket, prerendered, cfg):
    uri = f"s3://{BUCKET}/incoming/houses.csv"
    with pytest.raises(UsageError, match=r"is one S3 object: .*count 3 .* 2 instance\(s\)") as no:
        run_sagemaker_pipeline(
            sharded(cfg, 3), run_args(uri), aws=(boto3.client("sagemaker"), bucket)
        )
    assert "\n" not in str(no.value)

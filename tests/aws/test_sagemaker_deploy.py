"""`mlops deploy|promote --backend sagemaker`: version resolution against the SageMaker
registry (moto), the change-set deploy and its failure report (botocore Stubber: moto's
change sets neither keep outputs nor fail like CloudFormation), held-out rows from S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from _sagemaker_helpers import BUCKET, MOTO_ACCOUNT, REGION, create_package, held_out_csv
from botocore.stub import ANY, Stubber

from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.core.smoke import SmokeResult
from mlops.core.stages import Monitoring, load_stage_config, resolve_version
from mlops.sagemaker.deploy import (
    TEMPLATE,
    deploy_stack,
    deploy_stage,
    held_out_rows,
    held_out_uri,
    live_version,
    stack_parameters,
)
from mlops.sagemaker.registry import SageMakerRegistry

ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/mlops-sagemaker-execution"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{MOTO_ACCOUNT}:model-package/energy-costs/2"
BASELINE = f"s3://{BUCKET}/energy-costs/runs/exec2/preprocess/baseline/baseline.json"
HELD_OUT = f"s3://{BUCKET}/energy-costs/runs/exec2/preprocess/test"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{MOTO_ACCOUNT}:stack/energy-costs-staging/1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def version(number: int = 2, status: str = "Approved", held_out: str = HELD_OUT) -> ModelVersion:
    """A registered version; `held_out` "": one registered before lineage recorded it."""
    lineage = {"held_out_uri": held_out} if held_out else {}
    return ModelVersion(
        "energy-costs", number, status, "", {}, lineage, "s3://b/model.tar.gz", "", BASELINE,
        arn=PACKAGE,
    )  # fmt: skip


def cloudformation_client():
    return boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def stack(status: str, outputs: dict[str, str] | None = None) -> dict:
    return {
        "Stacks": [
            {
                "StackName": "energy-costs-staging",
                "StackId": STACK_ID,
                "CreationTime": T0,
                "StackStatus": status,
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
            }
        ]
    }


def change_set(status: str, reason: str = "", actions: tuple[str, ...] = ()) -> dict:
    return {
        "Status": status,
        "StatusReason": reason,
        "Changes": [
            {"Type": "Resource", "ResourceChange": {"Action": "Add", "LogicalResourceId": name}}
            for name in actions
        ],
    }


def missing_stack(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_stacks",
        "ValidationError",
        "Stack with id energy-costs-staging does not exist",
        expected_params={"StackName": "energy-costs-staging"},
    )


NAMED = {"StackName": "energy-costs-staging", "ChangeSetName": ANY}


def expect_change_set(stub: Stubber, kind: str, parameters: dict, role: str | None = None):
    request = {
        **NAMED,
        "ChangeSetType": kind,
        "TemplateBody": TEMPLATE.read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Tags": [{"Key": "managed-by", "Value": "mlops"}],
    }
    if role:
        request["RoleARN"] = role
    stub.add_response("create_change_set", {"Id": "cs-1", "StackId": STACK_ID}, request)


@pytest.fixture
def parameters(cfg):
    return stack_parameters(cfg, load_stage_config("staging"), version(), ROLE, BUCKET)


def test_parameters_come_from_the_stage_config(parameters):
    assert parameters == {
        "StageName": "staging",
        "EndpointName": "energy-costs-staging",
        "ModelPackageArn": PACKAGE,
        "ModelVersion": "2",
        "ExecutionRoleArn": ROLE,
        "InstanceType": "ml.m5.large",
        "InstanceCount": "1",
        "DataCapturePercent": "100",
        "DataCaptureUri": f"s3://{BUCKET}/energy-costs/data-capture/staging",
        "AutoscalingEnabled": "false",
        "AutoscalingMinCapacity": "1",
        "AutoscalingMaxCapacity": "2",
        "TargetInvocationsPerInstance": "100",
        "TrafficRouting": "ALL_AT_ONCE",  # one instance: a canary cannot be half the fleet
        "CanaryInstances": "1",
    }


def test_first_deploy_creates_through_a_change_set(parameters):
    client, lines = cloudformation_client(), []
    with Stubber(client) as stub:
        missing_stack(stub)
        expect_change_set(stub, "CREATE", parameters, role="arn:aws:iam::1:role/cfn")
        stub.add_response("describe_change_set", change_set("CREATE_PENDING"), NAMED)
        stub.add_response(
            "describe_change_set",
            change_set("CREATE_COMPLETE", actions=("Model", "EndpointConfig", "Endpoint")),
            NAMED,
        )
        stub.add_response("execute_change_set", {}, NAMED)
        stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"))
        stub.add_response(
            "describe_stacks",
            stack("CREATE_COMPLETE", {"EndpointName": "energy-costs-staging", "ModelVersion": "2"}),
        )
        result = deploy_stack(
            client,
            "energy-costs-staging",
            TEMPLATE.read_text(),
            parameters,
            lines.append,
            role_arn="arn:aws:iam::1:role/cfn",
            sleep=lambda _: None,
        )
        stub.assert_no_pending_responses()
    assert result.status == "CREATE_COMPLETE"
    assert result.outputs["EndpointName"] == "energy-costs-staging"
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["Add", "Model"],
        ["Add", "EndpointConfig"],
        ["Add", "Endpoint"],
    ]


def test_no_changes_is_a_success(parameters):
    client, lines = cloudformation_client(), []
    outputs = {"EndpointName": "energy-costs-staging", "ModelVersion": "2"}
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE", outputs))
        expect_change_set(stub, "UPDATE", parameters)
        stub.add_response(
            "describe_change_set",
            change_set(
                "FAILED",
                "The submitted information didn't contain changes. Submit different information "
                "to create a change set.",
            ),
            NAMED,
        )
        stub.add_response("delete_change_set", {}, NAMED)
        result = deploy_stack(
            client, "energy-costs-staging", TEMPLATE.read_text(), parameters, lines.append
        )
        stub.assert_no_pending_responses()
    assert (result.status, result.outputs) == ("NO_CHANGES", outputs)
    assert lines[-1] == "stack energy-costs-staging is up to date: no changes"


def test_failed_update_prints_the_events_that_explain_it(parameters):
    client, lines = cloudformation_client(), []
    reason = "Endpoint energy-costs-staging: update rolled back: alarm LatencyAlarm went into ALARM"
    started = datetime.now(UTC)
    events = [  # newest first, as CloudFormation lists them
        ("energy-costs-staging", "UPDATE_ROLLBACK_COMPLETE", "", started + timedelta(minutes=9)),
        ("Endpoint", "UPDATE_FAILED", reason, started + timedelta(minutes=8)),
        ("Model", "CREATE_COMPLETE", "", started + timedelta(minutes=1)),
        ("Endpoint", "UPDATE_FAILED", "an older failure", started - timedelta(days=2)),
    ]
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
        expect_change_set(stub, "UPDATE", parameters)
        stub.add_response("describe_change_set", change_set("CREATE_COMPLETE"), NAMED)
        stub.add_response("execute_change_set", {}, NAMED)
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    {
                        "StackId": STACK_ID,
                        "EventId": str(i),
                        "StackName": "energy-costs-staging",
                        "LogicalResourceId": logical,
                        "ResourceStatus": status,
                        "ResourceStatusReason": why,
                        "Timestamp": at,
                    }
                    for i, (logical, status, why, at) in enumerate(events)
                ]
            },
            {"StackName": "energy-costs-staging"},
        )
        with pytest.raises(MlopsError) as raised:
            deploy_stack(
                client,
                "energy-costs-staging",
                TEMPLATE.read_text(),
                parameters,
                lines.append,
                sleep=lambda _: None,
            )
    assert str(raised.value) == (
        f"stack energy-costs-staging ended UPDATE_ROLLBACK_COMPLETE: Endpoint UPDATE_FAILED: {reason}"
    )
    assert f"  Endpoint UPDATE_FAILED: {reason}" in lines
    assert "  energy-costs-staging UPDATE_ROLLBACK_COMPLETE" in lines
    assert not any("older failure" in line for line in lines)


@pytest.fixture
def held_out(aws, monkeypatch, cfg):
    """Account settings in the environment and a held-out split in (moto's) S3: two files
    under the version's held-out prefix (a split may be written in parts)."""
    monkeypatch.setenv("MLOPS_SAGEMAKER_ROLE_ARN", ROLE)
    monkeypatch.setenv("MLOPS_ARTIFACT_BUCKET", BUCKET)
    monkeypatch.delenv("MLOPS_CFN_ROLE_ARN", raising=False)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    prefix = HELD_OUT.removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-0.csv", Body=held_out_csv(cfg, 12))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-1.csv", Body=held_out_csv(cfg, 30, 12))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}-other/part-0.csv", Body=b"not,this\n")
    return s3


def deploy_unchanged_stage(cfg, s3, smoke):
    """deploy_stage on a stack that already serves the version (no changes), monitoring off
    (test_sagemaker_deploy_monitoring.py deploys with it)."""
    client = cloudformation_client()
    stage_config = without_monitoring(load_stage_config("staging"))
    parameters = stack_parameters(cfg, stage_config, version(), ROLE, BUCKET)
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE", {"EndpointName": "ep-s"}))
        expect_change_set(stub, "UPDATE", parameters)
        stub.add_response(
            "describe_change_set", change_set("FAILED", "No updates are to be performed."), NAMED
        )
        stub.add_response("delete_change_set", {}, NAMED)
        stub.add_client_error(
            "describe_stacks",
            "ValidationError",
            "Stack with id energy-costs-staging-monitoring does not exist",
            expected_params={"StackName": "energy-costs-staging-monitoring"},
        )
        return deploy_stage(cfg, stage_config, version(), None, lambda _: None, (client, s3), smoke)


def without_monitoring(stage_config):
    sagemaker = stage_config.sagemaker.model_copy(update={"monitoring": Monitoring(enabled=False)})
    return stage_config.model_copy(update={"sagemaker": sagemaker})


def test_deploy_stage_smoke_tests_held_out_rows_from_s3(held_out, cfg):
    tested = []

    def smoke(name, rows, max_mape, url):
        tested.append((name, rows, max_mape, url))
        return SmokeResult(True, "", name, len(rows.lines))

    result = deploy_unchanged_stage(cfg, held_out, smoke)
    assert (result.endpoint_name, result.version, result.changed) == ("ep-s", 2, False)
    ((name, rows, max_mape, url),) = tested
    assert (name, max_mape, url) == ("ep-s", cfg.smoke_test.max_mape_pct, None)
    # the first rows of the files in key order: all of part-0, then part-1's first
    assert cfg.smoke_test.rows == 20 and len(rows.lines) == 20
    features = len(cfg.data.features)
    assert rows.lines[0] == ",".join(str(k) for k in range(features))  # no target, no header
    assert rows.lines[12] == ",".join(str(120 + k) for k in range(features))
    assert rows.targets == [1000.0 + i for i in range(20)]
    assert rows.source == HELD_OUT


def test_deploy_stage_fails_on_a_failing_smoke_test(held_out, cfg):
    def smoke(name, rows, max_mape, url):
        return SmokeResult(False, "MAPE 31.00% exceeds 10%", name, len(rows.lines), 31.0, 10.0)

    with pytest.raises(MlopsError) as raised:
        deploy_unchanged_stage(cfg, held_out, smoke)
    assert str(raised.value) == (
        "smoke test of staging (version 2, endpoint ep-s) failed: MAPE 31.00% exceeds 10%"
    )


def test_a_version_records_where_its_held_out_rows_are():
    assert held_out_uri(version()) == (HELD_OUT, False)
    assert held_out_uri(version(held_out=HELD_OUT + "/")) == (HELD_OUT, False)
    with pytest.raises(MlopsError, match="held-out rows are not in S3: /runs/1/preprocess/test"):
        held_out_uri(version(held_out="/runs/1/preprocess/test"))


def test_an_older_version_has_its_held_out_file_beside_the_baseline():
    """Registered before lineage held `held_out_uri`: preprocess wrote test.csv next to the
    registered baseline, headerless with the target first."""
    legacy = f"s3://{BUCKET}/energy-costs/runs/exec2/preprocess/test/test.csv"
    assert held_out_uri(version(held_out="")) == (legacy, True)
    local = ModelVersion("g", 1, "Approved", "", {}, {}, "/m.tar.gz", "", "/tmp/baseline.json")
    with pytest.raises(MlopsError, match="has no held_out_uri and no S3 baseline"):
        held_out_uri(local)


def test_an_older_versions_rows_are_read_target_first(aws, cfg):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    features = len(cfg.data.features)
    rows = "".join(
        f"{500 + i}," + ",".join(str(i + k) for k in range(features)) + "\n" for i in range(30)
    )
    s3.put_object(Bucket=BUCKET, Key="energy-costs/runs/exec2/preprocess/test/test.csv", Body=rows)
    read = held_out_rows(s3, cfg, version(held_out=""), 5)
    assert read.targets == [500.0, 501.0, 502.0, 503.0, 504.0]
    assert read.lines[1] == ",".join(str(1 + k) for k in range(features))
    too_few = cfg.model_copy(update={"data": cfg.data.model_copy(update={"features": ["a"]})})
    with pytest.raises(MlopsError, match="has 9 columns; the config's target and features are 2"):
        held_out_rows(s3, too_few, version(held_out=""), 5)


def test_a_held_out_prefix_without_rows_is_one_line(aws, cfg):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    with pytest.raises(MlopsError, match=f"no held-out rows \\(.csv\\) under {HELD_OUT}$"):
        held_out_rows(s3, cfg, version(), 5)


def test_missing_account_settings_are_named(cfg, monkeypatch):
    monkeypatch.delenv("MLOPS_SAGEMAKER_ROLE_ARN", raising=False)
    with pytest.raises(MlopsError, match=r"\$MLOPS_SAGEMAKER_ROLE_ARN is not set"):
        deploy_stage(cfg, load_stage_config("staging"), version(), None, aws=(None, None))
    with pytest.raises(MlopsError, match="has no model package ARN"):
        deploy_stage(
            cfg,
            load_stage_config("staging"),
            ModelVersion("g", 1, "Approved", "", {}, {}, ""),
            None,
            aws=(None, None),
        )


# ---- which version a stage gets / serves (moto) -------------------------------------------


@pytest.fixture
def registry(aws):
    for _ in range(3):
        create_package("PendingManualApproval")
    return SageMakerRegistry("energy-costs")


def test_resolution_none_approved_is_a_clear_error(registry, capsys):
    from mlops.cli import run

    staging = load_stage_config("staging")
    with pytest.raises(MlopsError, match="no Approved model version in group 'energy-costs'"):
        resolve_version(registry, staging, None)
    assert run(["deploy", "--stage", "staging", "--backend", "sagemaker"]) == 1
    assert "no Approved model version" in capsys.readouterr().err


def test_resolution_latest_approved_and_pinned(registry):
    staging = load_stage_config("staging")
    registry.approve(1)
    registry.approve(2)
    resolved = resolve_version(registry, staging, None)
    assert (resolved.version, resolved.arn.endswith("/energy-costs/2")) == (2, True)
    pinned = staging.model_copy(update={"model_version": 1})
    assert resolve_version(registry, pinned, None).version == 1
    with pytest.raises(
        MlopsError, match=r"version 3 \(pinned in staging-config.json\) is PendingManualApproval"
    ):
        resolve_version(registry, staging.model_copy(update={"model_version": 3}), None)


def test_live_version_reads_the_stage_stack(aws, cfg):
    staging = load_stage_config("staging")
    cloudformation = boto3.client("cloudformation")
    assert live_version(cfg, staging, None, cloudformation) is None
    arn = create_package()
    deployed = ModelVersion("energy-costs", 1, "Approved", "", {}, {}, "", arn=arn)
    params = stack_parameters(cfg, staging, deployed, ROLE, BUCKET)
    cloudformation.create_stack(
        StackName="energy-costs-staging",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    number, endpoint = live_version(cfg, staging, None, cloudformation)
    assert number == 1
    assert (
        boto3.client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        == "InService"
    )

"""`mlops deploy --backend sagemaker` and the stage's monitoring stack: created after the
endpoint stack, moved to the older version's baseline by a rollback, left alone (with a
line) when the stage turns monitoring off, refused before anything changes when the
version has no baseline, deleted before the endpoint. CloudFormation is the fake of
tests/aws/_fake_aws.py (moto's change sets drop outputs); S3 is moto."""

from __future__ import annotations

import json

import boto3
import pytest
from _fake_aws import FakeCloudFormation, record_calls
from _sagemaker_helpers import BUCKET, MOTO_ACCOUNT, REGION, held_out_csv

from mlops.core.errors import MlopsError
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import ModelVersion
from mlops.core.smoke import SmokeResult
from mlops.core.stages import Monitoring, load_stage_config
from mlops.sagemaker.deploy import deploy_stage, stop_stage
from mlops.sagemaker.monitor import analyzer_image

ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/mlops-sagemaker-execution"
CFN_ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/cloudformation"
STAGING, MONITORING = "energy-costs-staging", "energy-costs-staging-monitoring"


def run_prefix(number: int) -> str:
    return f"s3://{BUCKET}/energy-costs/runs/exec{number}/preprocess"


def version(number: int) -> ModelVersion:
    arn = f"arn:aws:sagemaker:{REGION}:{MOTO_ACCOUNT}:model-package/energy-costs/{number}"
    baseline = f"{run_prefix(number)}/baseline/baseline.json"
    lineage = {"held_out_uri": f"{run_prefix(number)}/test"}
    return ModelVersion(
        "energy-costs", number, "Approved", "", {}, lineage, "", "", baseline, arn=arn
    )


@pytest.fixture
def account(aws, monkeypatch, cfg):
    """Two versions' run outputs in moto's S3 (held-out rows; Model Monitor baselines for
    both unless a test removes one), the account settings, a fake CloudFormation."""
    monkeypatch.setenv("MLOPS_SAGEMAKER_ROLE_ARN", ROLE)
    monkeypatch.setenv("MLOPS_ARTIFACT_BUCKET", BUCKET)
    monkeypatch.setenv("MLOPS_CFN_ROLE_ARN", CFN_ROLE)
    monkeypatch.delenv("MLOPS_MODEL_MONITOR_IMAGE", raising=False)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for number in (1, 2):
        run = f"energy-costs/runs/exec{number}/preprocess"
        s3.put_object(Bucket=BUCKET, Key=f"{run}/test/test.csv", Body=held_out_csv(cfg, 30))
        for name in ("statistics.json", "constraints.json"):
            s3.put_object(Bucket=BUCKET, Key=f"{run}/baseline/{name}", Body=b"{}")
    calls, fakes = record_calls(monkeypatch)
    cloudformation = FakeCloudFormation()
    fakes[("cloudformation", "*")] = cloudformation
    return cloudformation, s3, calls


def passing(name, rows, max_mape, url):
    return SmokeResult(True, "", name, len(rows.lines))


def deploy(cfg, account, number: int, stage_config=None, lines=None):
    s3 = account[1]
    client = boto3.client("cloudformation")
    return deploy_stage(
        cfg,
        stage_config or load_stage_config("staging"),
        version(number),
        None,
        (lines if lines is not None else []).append,
        (client, s3),
        passing,
        sleep=lambda _: None,
    )


def parameters(request: dict) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in request["Parameters"]}


def monitoring_off(stage_config):
    sagemaker = stage_config.sagemaker.model_copy(update={"monitoring": Monitoring(enabled=False)})
    return stage_config.model_copy(update={"sagemaker": sagemaker})


def test_first_deploy_creates_the_monitoring_stack_after_the_endpoint(cfg, account):
    cloudformation, _, calls = account
    result = deploy(cfg, account, 2)
    assert [name for name, _ in cloudformation.executed] == [STAGING, MONITORING]
    (_, request) = cloudformation.executed[1]
    assert (request["ChangeSetType"], request["RoleARN"]) == ("CREATE", CFN_ROLE)
    values = parameters(request)
    assert values["EndpointName"] == STAGING and values["ModelVersion"] == "2"
    assert values["BaselineStatisticsUri"] == f"{run_prefix(2)}/baseline/statistics.json"
    assert values["BaselineConstraintsUri"] == f"{run_prefix(2)}/baseline/constraints.json"
    assert values["MonitoringOutputUri"] == f"s3://{BUCKET}/energy-costs/monitoring/staging"
    assert values["AnalyzerImageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    assert values["ExecutionRoleArn"] == ROLE
    assert result.monitoring.stack_name == MONITORING
    assert result.monitoring.status == "CREATE_COMPLETE"
    # the baseline was checked before the first change set
    heads = [i for i, c in enumerate(calls) if c[1] == "HeadObject" and "/baseline/" in c[2]["Key"]]
    first_change = next(i for i, c in enumerate(calls) if c[1] == "CreateChangeSet")
    assert len(heads) == 2 and max(heads) < first_change


def test_rollback_moves_the_schedule_to_the_older_versions_baseline(cfg, account):
    cloudformation, _, _ = account
    deploy(cfg, account, 2)
    deploy(cfg, account, 1)  # `mlops deploy --version 1`: the rollback
    name, request = cloudformation.executed[-1]
    assert (name, request["ChangeSetType"]) == (MONITORING, "UPDATE")
    values = parameters(request)
    assert values["ModelVersion"] == "1"
    assert values["BaselineStatisticsUri"] == f"{run_prefix(1)}/baseline/statistics.json"
    assert values["BaselineConstraintsUri"] == f"{run_prefix(1)}/baseline/constraints.json"
    # a new job definition name: CloudFormation replaces a definition, never updates one
    first = parameters(cloudformation.executed[1][1])["DefinitionId"]
    assert values["DefinitionId"] != first
    assert cloudformation.stacks[MONITORING]["StackStatus"] == "UPDATE_COMPLETE"


def test_redeploying_the_same_version_changes_nothing(cfg, account):
    cloudformation, _, _ = account
    deploy(cfg, account, 2)
    lines: list[str] = []
    result = deploy(cfg, account, 2, lines=lines)
    assert len(cloudformation.executed) == 2  # only the first deploy's two stacks
    assert result.monitoring.status == "NO_CHANGES"
    assert f"stack {MONITORING} is up to date: no changes" in lines


def test_a_stage_without_monitoring_gets_none_and_an_existing_stack_is_left(cfg, account):
    cloudformation, _, _ = account
    off = monitoring_off(load_stage_config("staging"))
    lines: list[str] = []
    result = deploy(cfg, account, 2, off, lines)
    assert [name for name, _ in cloudformation.executed] == [STAGING]
    assert result.monitoring is None
    assert "no monitoring for staging: sagemaker.monitoring.enabled is false" in lines

    deploy(cfg, account, 2)  # monitoring on: the stack is created
    lines.clear()
    deploy(cfg, account, 1, off, lines)
    assert MONITORING in cloudformation.stacks
    assert parameters(cloudformation.executed[-1][1])["ModelVersion"] == "1"
    assert cloudformation.executed[-1][0] == STAGING  # the monitoring stack was not touched
    assert (
        f"monitoring of staging is off (sagemaker.monitoring.enabled is false), but stack "
        f"{MONITORING} exists: left as it is (its schedule compares with version 2's "
        f"baseline); delete it with: aws cloudformation delete-stack --stack-name {MONITORING}"
    ) in lines


def test_no_capture_means_no_monitoring(cfg, account):
    cloudformation, _, _ = account
    staging = load_stage_config("staging")
    no_capture = staging.model_copy(
        update={"sagemaker": staging.sagemaker.model_copy(update={"data_capture_percent": 0})}
    )
    lines: list[str] = []
    deploy(cfg, account, 2, no_capture, lines)
    assert [name for name, _ in cloudformation.executed] == [STAGING]
    assert (
        "no monitoring for staging: sagemaker.data_capture_percent is 0 (nothing captured to "
        "monitor)"
    ) in lines


def test_a_version_without_a_baseline_is_refused_before_anything_changes(cfg, account):
    cloudformation, s3, calls = account
    s3.delete_object(
        Bucket=BUCKET, Key="energy-costs/runs/exec1/preprocess/baseline/constraints.json"
    )
    with pytest.raises(MlopsError) as raised:
        deploy(cfg, account, 1)
    assert str(raised.value).startswith(
        f"model version 1 has no Model Monitor baseline {run_prefix(1)}/baseline/constraints.json"
    )
    assert not [c for c in calls if c[0] == "cloudformation"]
    assert cloudformation.stacks == {}


def test_stop_deletes_the_monitoring_stack_before_the_endpoint(cfg, account):
    cloudformation, _, _ = account
    deploy(cfg, account, 2)
    served = stop_stage(cfg, "staging", lambda _: None, boto3.client("cloudformation"),
                        sleep=lambda _: None)  # fmt: skip
    assert served == (2, STAGING)
    assert cloudformation.deleted == [MONITORING, STAGING]


def test_analyzer_image_is_the_sdks(monkeypatch):
    """The table is read from the SDK's files without importing the SDK: same answer."""
    from sagemaker.core import image_uris

    monkeypatch.delenv("MLOPS_MODEL_MONITOR_IMAGE", raising=False)
    for region in ("us-east-1", "eu-west-1", "cn-north-1"):
        assert analyzer_image(region) == image_uris.retrieve("model-monitor", region)
    with pytest.raises(MlopsError, match="no analyzer image in mars-north-1"):
        analyzer_image("mars-north-1")
    monkeypatch.setenv("MLOPS_MODEL_MONITOR_IMAGE", "1.dkr.ecr.x/analyzer:mirror")
    assert analyzer_image("mars-north-1") == "1.dkr.ecr.x/analyzer:mirror"


def test_the_stage_config_turns_monitoring_off():
    from mlops.core.errors import UsageError
    from mlops.core.stages import parse_stage_config
    from mlops.sagemaker.deploy import monitoring_off_reason

    raw = json.loads((REPO_ROOT / "model_deploy" / "prod-config.json").read_text())
    assert monitoring_off_reason(parse_stage_config(raw)) == ""  # on by default
    raw["sagemaker"]["monitoring"] = {"enabled": False}
    assert monitoring_off_reason(parse_stage_config(raw)) == "sagemaker.monitoring.enabled is false"
    raw["sagemaker"]["monitoring"] = {"enabeld": True}  # a typo is refused, not ignored
    with pytest.raises(UsageError, match=r"monitoring\.enabeld"):
        parse_stage_config(raw)

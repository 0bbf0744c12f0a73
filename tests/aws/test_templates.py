"""CloudFormation templates: cfn-lint clean, the endpoint stack under moto, the bootstrap
stack's security properties, and the approval function's code."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from _sagemaker_helpers import MOTO_ACCOUNT, REGION, create_package
from cfnlint.api import ManualArgs, lint
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.stages import load_stage_config
from mlops.sagemaker.deploy import stack_parameters

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = (
    "model_deploy/bootstrap.yml",
    "model_deploy/endpoint-config-template.yml",
    "model_deploy/feature-store.yml",
)
ENDPOINT_TEMPLATE = REPO_ROOT / "model_deploy" / "endpoint-config-template.yml"
BOOTSTRAP = REPO_ROOT / "model_deploy" / "bootstrap.yml"
EXECUTION_ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/mlops-sagemaker-execution"


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_passes_cfn_lint(template):
    text = (REPO_ROOT / template).read_text()
    matches = lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [str(m) for m in matches] == []


def test_cfnlintrc_lists_every_template():
    config = yaml.safe_load((REPO_ROOT / ".cfnlintrc.yaml").read_text())
    assert sorted(config["templates"]) == sorted(TEMPLATES)


def parsed(path: Path) -> dict:
    return load_cfn_yaml(path.read_text())


# ---- the endpoint stack -------------------------------------------------------------------


def approved_package() -> tuple[str, object]:
    from mlops.core.registry import ModelVersion

    arn = create_package()
    version = ModelVersion(
        "house-prices", 1, "Approved", "", {}, {}, "s3://b/model.tar.gz", arn=arn
    )
    return arn, version


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_endpoint_stack_creates_the_endpoint_and_its_outputs_resolve(aws, cfg, stage):
    """What moto covers: Model (PrimaryContainer from the package), EndpointConfig (variant,
    data capture), Endpoint, outputs. Alarms, autoscaling and the DeploymentConfig are not
    modelled by moto's CloudFormation: cfn-lint and the structure test below cover them."""
    arn, version = approved_package()
    stage_config = load_stage_config(stage)
    params = stack_parameters(cfg, stage_config, version, EXECUTION_ROLE, "artifacts")
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=f"house-prices-{stage}",
        TemplateBody=ENDPOINT_TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    stack = cloudformation.describe_stacks(StackName=f"house-prices-{stage}")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ModelVersion"] == "1"
    assert outputs["ModelPackageArn"] == arn

    sagemaker = boto3.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    sm = stage_config.sagemaker
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (
        sm.instance_type,
        sm.instance_count,
    )
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == sm.data_capture_percent
    assert capture["DestinationS3Uri"] == f"s3://artifacts/house-prices/data-capture/{stage}"
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    assert model["ExecutionRoleArn"] == EXECUTION_ROLE

    cloudformation.delete_stack(StackName=f"house-prices-{stage}")
    assert sagemaker.list_endpoints()["Endpoints"] == []


def test_stages_differ_only_by_their_config(cfg):
    from mlops.core.registry import ModelVersion

    version = ModelVersion("house-prices", 3, "Approved", "", {}, {}, "", arn="arn:x")
    staging, prod = (
        stack_parameters(cfg, load_stage_config(s), version, EXECUTION_ROLE, "b")
        for s in ("staging", "prod")
    )
    differing = {k for k in staging if staging[k] != prod[k]}
    config_keys = {
        "StageName",
        "EndpointName",
        "DataCaptureUri",
        "InstanceType",
        "InstanceCount",
        "DataCapturePercent",
        "AutoscalingEnabled",
        "AutoscalingMinCapacity",
        "AutoscalingMaxCapacity",
        "TargetInvocationsPerInstance",
    }
    assert differing and differing <= config_keys
    template = parsed(ENDPOINT_TEMPLATE)
    assert set(staging) <= set(template["Parameters"])
    required = {k for k, v in template["Parameters"].items() if "Default" not in v}
    assert required <= set(staging)


def test_blue_green_canary_rolls_back_on_its_own_alarms():
    resources = parsed(ENDPOINT_TEMPLATE)["Resources"]
    deployment = resources["Endpoint"]["Properties"]["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert routing["CanarySize"]["Type"] == "CAPACITY_PERCENT"
    alarms = [a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
    metrics = {resources[a]["Properties"]["MetricName"] for a in alarms}
    assert metrics == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in alarms:
        assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"
        dimensions = {d["Name"]: d["Value"] for d in resources[alarm]["Properties"]["Dimensions"]}
        assert dimensions == {"EndpointName": {"Ref": "EndpointName"}, "VariantName": "AllTraffic"}
    for name in ("ScalableTarget", "ScalingPolicy"):
        assert resources[name]["Condition"] == "Autoscale"
    policy = resources["ScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert "DataCaptureConfig" in resources["EndpointConfig"]["Properties"]


# ---- the bootstrap stack -----------------------------------------------------------------


def test_bootstrap_roles_trust_only_this_repository():
    resources = parsed(BOOTSTRAP)["Resources"]

    def trust(role: str) -> dict:
        (statement,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        return statement["Condition"]["StringEquals"]

    ci, prod = trust("CiRole"), trust("ProductionDeployRole")
    for condition in (ci, prod):
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        assert "StringLike" not in condition
    ci_subjects = [s["Fn::Sub"] for s in ci["token.actions.githubusercontent.com:sub"]]
    assert ci_subjects == [
        "repo:${GitHubOrg}/${GitHubRepo}:pull_request",
        "repo:${GitHubOrg}/${GitHubRepo}:ref:refs/heads/${DefaultBranch}",
    ]
    assert prod["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubOrg}/${GitHubRepo}:environment:production"
    }
    text = BOOTSTRAP.read_text()
    assert "AdministratorAccess" not in text and "FullAccess" not in text
    assert '"sagemaker:*"' not in text and 'Action: "*"' not in text


def test_bootstrap_bucket_is_encrypted_versioned_and_private():
    bucket = parsed(BOOTSTRAP)["Resources"]["ArtifactBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4


def test_approval_rule_targets_the_dispatch_function():
    resources = parsed(BOOTSTRAP)["Resources"]
    rule = resources["ApprovalRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]
    assert rule["EventPattern"]["detail"]["ModelApprovalStatus"] == ["Approved"]
    assert rule["EventPattern"]["detail"]["ModelPackageGroupName"] == [
        {"Ref": "ModelPackageGroupName"}
    ]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DispatchFunction", "Arn"]}
    permission = resources["ApprovalRulePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    statements = resources["DispatchFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    secret_access = statements["Statement"][0]
    assert secret_access == {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "DispatchTokenSecret"},
    }


def test_bootstrap_default_event_type_is_what_deploy_yml_listens_to():
    params = parsed(BOOTSTRAP)["Parameters"]
    workflow = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert f"types: [{params['DispatchEventType']['Default']}]" in workflow


# ---- the dispatch function (inline code, run here against moto and a fake GitHub) -------


def dispatch_module() -> dict:
    function = parsed(BOOTSTRAP)["Resources"]["DispatchFunction"]["Properties"]
    namespace: dict = {}
    exec(compile(function["Code"]["ZipFile"], "index.py", "exec"), namespace)
    return namespace


def approval_event(status: str = "Approved") -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": "house-prices",
            "ModelPackageVersion": 7,
            "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:1:model-package/house-prices/7",
            "ModelApprovalStatus": status,
        },
    }


class FakeResponse:
    status = 204

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_dispatch_function_posts_repository_dispatch(aws, monkeypatch):
    secret = boto3.client("secretsmanager").create_secret(
        Name="dispatch-token", SecretString="github_pat_example"
    )
    monkeypatch.setenv("TOKEN_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("REPOSITORY", "octo/house-prices")
    monkeypatch.setenv("EVENT_TYPE", "model-approved")
    sent: list[urllib.request.Request] = []

    def fake_urlopen(request, timeout):
        sent.append(request)
        return FakeResponse()

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    handler = dispatch_module()["handler"]

    assert handler(approval_event("Rejected"), None)["dispatched"] is False
    assert sent == []
    result = handler(approval_event(), None)
    assert result == {"dispatched": True, "status": 204, "version": 7}
    (request,) = sent
    assert request.full_url == "https://api.github.com/repos/octo/house-prices/dispatches"
    assert request.get_method() == "POST"
    assert request.get_header("Authorization") == "Bearer github_pat_example"
    payload = json.loads(request.data)
    assert payload["event_type"] == "model-approved"
    assert payload["client_payload"]["version"] == "7"
    assert payload["client_payload"]["model_package_arn"].endswith("/house-prices/7")

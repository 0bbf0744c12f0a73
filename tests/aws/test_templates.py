"""CloudFormation templates: cfn-lint clean, the endpoint stack under moto, the bootstrap
stack's security properties, and the approval function's code."""

from __future__ import annotations

import json
import re
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
    "model_deploy/monitoring-template.yml",
    "model_deploy/accounts/build-account.yml",
    "model_deploy/accounts/stage-account.yml",
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
        "energy-costs", 1, "Approved", "", {}, {}, "s3://b/model.tar.gz", arn=arn
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
        StackName=f"energy-costs-{stage}",
        TemplateBody=ENDPOINT_TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    stack = cloudformation.describe_stacks(StackName=f"energy-costs-{stage}")["Stacks"][0]
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
    assert capture["DestinationS3Uri"] == f"s3://artifacts/energy-costs/data-capture/{stage}"
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    assert model["ExecutionRoleArn"] == EXECUTION_ROLE

    cloudformation.delete_stack(StackName=f"energy-costs-{stage}")
    assert sagemaker.list_endpoints()["Endpoints"] == []


def test_stages_differ_only_by_their_config(cfg):
    from mlops.core.registry import ModelVersion

    version = ModelVersion("energy-costs", 3, "Approved", "", {}, {}, "", arn="arn:x")
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
        "TrafficRouting",  # derived from the instance counts (see traffic_routing)
        "CanaryInstances",
    }
    assert differing and differing <= config_keys
    template = parsed(ENDPOINT_TEMPLATE)
    assert set(staging) <= set(template["Parameters"])
    required = {k for k, v in template["Parameters"].items() if "Default" not in v}
    assert required <= set(staging)


def test_blue_green_rolls_back_on_a_5xx_rate_and_latency():
    resources = parsed(ENDPOINT_TEMPLATE)["Resources"]
    params = parsed(ENDPOINT_TEMPLATE)["Parameters"]
    serverless, no_config, deployment = resources["Endpoint"]["Properties"]["DeploymentConfig"][
        "Fn::If"
    ]  # a serverless stage has no blue/green: SageMaker updates it in place
    assert (serverless, no_config) == ("Serverless", {"Ref": "AWS::NoValue"})
    condition, canary, all_at_once = deployment["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]["Fn::If"]
    assert condition == "Canary"
    assert canary["Type"] == "CANARY"
    assert canary["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": {"Ref": "CanaryInstances"}}
    assert all_at_once["Type"] == "ALL_AT_ONCE" and "CanarySize" not in all_at_once
    alarms = [a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
    assert sorted(alarms) == ["Errors5xxAlarm", "LatencyAlarm"]

    latency = resources["LatencyAlarm"]["Properties"]
    assert latency["MetricName"] == "ModelLatency"
    dimensions = {d["Name"]: d["Value"] for d in latency["Dimensions"]}
    assert dimensions == {"EndpointName": {"Ref": "EndpointName"}, "VariantName": "AllTraffic"}

    errors = resources["Errors5xxAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in errors["Metrics"]}
    stats = {
        i: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"])
        for i, m in metrics.items()
        if "MetricStat" in m
    }
    assert stats == {"errors": ("Invocation5XXErrors", "Sum"), "requests": ("Invocations", "Sum")}
    (returned,) = [m for m in errors["Metrics"] if m["ReturnData"]]
    expression = returned["Expression"]["Fn::Sub"]
    assert expression.startswith("IF(FILL(requests, 0) >= ${MinRequestsForErrorRate},")
    assert "100 * FILL(errors, 0) / requests" in expression
    assert errors["Threshold"] == {"Ref": "MaxErrorRatePercent"}
    # One failed request must not roll a canary back: a rate above zero, over a minimum count.
    assert params["MaxErrorRatePercent"]["Default"] > 0
    assert params["MinRequestsForErrorRate"]["Default"] > 1

    for name in ("ScalableTarget", "ScalingPolicy"):
        assert resources[name]["Condition"] == "Autoscale"
    policy = resources["ScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert "DataCaptureConfig" in resources["EndpointConfig"]["Properties"]


@pytest.mark.parametrize(
    ("count", "autoscaling", "expected"),
    [
        ((1, None), None, ("ALL_AT_ONCE", 1)),
        ((2, None), None, ("CANARY", 1)),
        ((4, None), None, ("CANARY", 1)),
        ((3, (1, 4)), None, ("ALL_AT_ONCE", 1)),  # may have scaled in to one instance
        ((2, (2, 4)), None, ("CANARY", 1)),
    ],
)
def test_traffic_routing_is_valid_for_the_smallest_fleet(count, autoscaling, expected):
    from mlops.core.stages import StageConfig
    from mlops.sagemaker.deploy import traffic_routing

    instances, scaling = count
    sagemaker = {"instance_type": "ml.m5.large", "instance_count": instances}
    sagemaker["data_capture_percent"] = 0
    if scaling:
        sagemaker["autoscaling"] = {"enabled": True, "min": scaling[0], "max": scaling[1]}
    stage = StageConfig(stage="prod", local={"port": 8080}, sagemaker=sagemaker)
    routing, canary = traffic_routing(stage)
    assert (routing, canary) == expected
    smallest = min(instances, scaling[0]) if scaling else instances
    if routing == "CANARY":
        assert canary * 2 <= smallest  # SageMaker: a canary is at most half the new fleet


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_each_committed_stage_gets_a_routing_sagemaker_accepts(stage):
    from mlops.sagemaker.deploy import traffic_routing

    config = load_stage_config(stage)
    routing, canary = traffic_routing(config)
    sm = config.sagemaker
    smallest = (
        min(sm.instance_count, sm.autoscaling.min)
        if sm.autoscaling.enabled
        else (sm.instance_count)
    )
    assert routing == ("CANARY" if smallest >= 2 else "ALL_AT_ONCE")
    assert routing == "ALL_AT_ONCE" or canary * 2 <= smallest


# ---- the bootstrap stack -----------------------------------------------------------------


# Each GitHub job has its own role, trusting exactly one OIDC subject: the repository's subject
# template (bootstrap output OidcSubjectClaimKeys: repo, context, job_workflow_ref) puts the
# workflow file and its ref in the subject, so the hourly monitor job cannot assume the build
# role, and a branch that edits a workflow to claim `environment: production` gets a subject
# ending in its own ref, which no role trusts.
REPO = "repo:${GitHubOrg}/${GitHubRepo}"
WORKFLOW = "job_workflow_ref:${GitHubOrg}/${GitHubRepo}/.github/workflows"
MAIN = "@refs/heads/${DefaultBranch}"
JOB_ROLES = {
    "PrRole": (f"{REPO}:pull_request:{WORKFLOW}/pr.yml@refs/pull/*/merge", "pr.yml"),
    "BuildRole": (
        f"{REPO}:ref:refs/heads/${{DefaultBranch}}:{WORKFLOW}/build.yml{MAIN}",
        "build.yml",
    ),
    "StagingDeployRole": (f"{REPO}:environment:staging:{WORKFLOW}/deploy.yml{MAIN}", "deploy.yml"),
    "ProductionDeployRole": (
        f"{REPO}:environment:production:{WORKFLOW}/deploy.yml{MAIN}",
        "deploy.yml",
    ),
    "BatchRole": (
        f"{REPO}:ref:refs/heads/${{DefaultBranch}}:{WORKFLOW}/batch.yml{MAIN}",
        "batch.yml",
    ),
    "MonitorRole": (
        f"{REPO}:ref:refs/heads/${{DefaultBranch}}:{WORKFLOW}/monitor.yml{MAIN}",
        "monitor.yml",
    ),
}


def trust_condition(resources: dict, role: str) -> dict:
    (statement,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    return statement["Condition"]


def test_each_job_role_trusts_exactly_its_subject():
    resources = parsed(BOOTSTRAP)["Resources"]
    federated = {
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        and "Federated" in r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    }
    assert federated == set(JOB_ROLES)
    for role, (subject, _) in JOB_ROLES.items():
        condition = trust_condition(resources, role)
        assert condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == (
            "sts.amazonaws.com"
        )
        # a wildcard only where GitHub puts a number: the PR's merge ref
        operator = "StringLike" if role == "PrRole" else "StringEquals"
        assert set(condition) == {"StringEquals", operator}, role
        assert condition[operator]["token.actions.githubusercontent.com:sub"] == {
            "Fn::Sub": subject
        }
    assert parsed(BOOTSTRAP)["Outputs"]["OidcSubjectClaimKeys"]["Value"] == (
        "repo,context,job_workflow_ref"
    )
    text = BOOTSTRAP.read_text()
    assert "AdministratorAccess" not in text and "FullAccess" not in text
    assert '"sagemaker:*"' not in text and 'Action: "*"' not in text


def github_subject(context: str, workflow: str, ref: str) -> str:
    """The `sub` GitHub issues under the template repo, context, job_workflow_ref."""
    return f"repo:octo/models:{context}:job_workflow_ref:octo/models/.github/workflows/{workflow}@{ref}"


def test_a_token_assumes_only_the_role_of_its_own_workflow_job():
    """Each workflow job's token (its context, file and ref), evaluated against every role's
    trust: exactly its own role matches; a branch's edited workflow matches none."""
    from _iam import Stack, _condition_holds

    stack = Stack(parsed(BOOTSTRAP), {"GitHubOrg": "octo", "GitHubRepo": "models",
                                      "DefaultBranch": "main"})  # fmt: skip
    resources = stack.template["Resources"]

    def roles_for(subject: str) -> set[str]:
        context = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                   "token.actions.githubusercontent.com:sub": subject}  # fmt: skip
        return {
            role
            for role in JOB_ROLES
            if _condition_holds(stack.resolve(trust_condition(resources, role)), context)
        }

    main = "refs/heads/main"
    tokens = {
        github_subject("pull_request", "pr.yml", "refs/pull/12/merge"): {"PrRole"},
        github_subject(f"ref:{main}", "build.yml", main): {"BuildRole"},
        github_subject(f"ref:{main}", "batch.yml", main): {"BatchRole"},
        github_subject(f"ref:{main}", "monitor.yml", main): {"MonitorRole"},
        github_subject("environment:staging", "deploy.yml", main): {"StagingDeployRole"},
        github_subject("environment:production", "deploy.yml", main): {"ProductionDeployRole"},
        # a same-repo branch that edits deploy.yml to claim the production environment
        github_subject("environment:production", "deploy.yml", "refs/heads/evil"): set(),
        # the default subject (no template set): no role
        "repo:octo/models:ref:refs/heads/main": set(),
    }
    for subject, roles in tokens.items():
        assert roles_for(subject) == roles, subject
    # and each role's workflow file is the one whose job assumes it
    for role, (_, workflow) in JOB_ROLES.items():
        assert role_workflows(role) == {workflow}, role


def role_workflows(role: str) -> set[str]:
    """The workflow files with a job assuming `role` (its ARN's repository variable)."""
    variable = next(
        re.match(r"Repository variable (\w+)", o["Description"]).group(1)
        for o in parsed(BOOTSTRAP)["Outputs"].values()
        if o["Value"] == {"Fn::GetAtt": [role, "Arn"]}
    )
    found = set()
    for path in (REPO_ROOT / ".github" / "workflows").glob("*.yml"):
        if f"vars.{variable} " in path.read_text() or f"vars.{variable}}}" in path.read_text():
            found.add(path.name)
    return found


def test_service_roles_are_guarded_against_the_confused_deputy():
    resources = parsed(BOOTSTRAP)["Resources"]
    for role in ("SageMakerExecutionRole", "PrSageMakerExecutionRole"):
        (statement,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        condition = statement["Condition"]
        assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert "aws:SourceArn" in condition["ArnLike"]


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
            "ModelPackageGroupName": "energy-costs",
            "ModelPackageVersion": 7,
            "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:1:model-package/energy-costs/7",
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
    monkeypatch.setenv("REPOSITORY", "octo/energy-costs")
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
    assert request.full_url == "https://api.github.com/repos/octo/energy-costs/dispatches"
    assert request.get_method() == "POST"
    assert request.get_header("Authorization") == "Bearer github_pat_example"
    payload = json.loads(request.data)
    assert payload["event_type"] == "model-approved"
    assert payload["client_payload"]["version"] == "7"
    assert payload["client_payload"]["model_package_arn"].endswith("/energy-costs/7")


def test_a_failed_dispatch_lands_in_a_dead_letter_queue_and_raises_alarms():
    """An expired GitHub token used to stop every deploy silently: Lambda's async retries end,
    the approval event is dropped. Now it waits in a queue and two alarms say so."""
    resources = parsed(BOOTSTRAP)["Resources"]
    function = resources["DispatchFunction"]["Properties"]
    assert function["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["DispatchDeadLetterQueue", "Arn"]}
    }
    assert resources["DispatchDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    statements = resources["DispatchFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert {"Effect": "Allow", "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["DispatchDeadLetterQueue", "Arn"]}} in statements["Statement"]  # fmt: skip
    alarms = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"]
        for a in resources.values()
        if a["Type"] == "AWS::CloudWatch::Alarm"
    }
    errors = alarms[("AWS/Lambda", "Errors")]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "DispatchFunction"}}]
    queued = alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert queued["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["DispatchDeadLetterQueue", "QueueName"]
    }
    for alarm in (errors, queued):
        assert (
            alarm["Threshold"] == 1
            and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        )


def test_the_longest_waits_and_provisioning_fit_the_deployment_timeout():
    """SageMaker's blue/green update must finish within MaximumExecutionTimeoutInSeconds,
    which has to exceed the waits it contains (the baking times); the waits' largest
    values leave at least 10 minutes for the new fleet to start."""
    template = parsed(ENDPOINT_TEMPLATE)
    parameters = template["Parameters"]
    # the instance stage's branch (a serverless stage has no blue/green)
    _, _, deployment = template["Resources"]["Endpoint"]["Properties"]["DeploymentConfig"]["Fn::If"]
    policy = deployment["BlueGreenUpdatePolicy"]
    timeout = policy["MaximumExecutionTimeoutInSeconds"]
    longest = sum(
        parameters[p]["MaxValue"] for p in ("CanaryWaitSeconds", "TerminationWaitSeconds")
    )
    assert longest + 600 <= timeout, (longest, timeout)
    assert policy["TerminationWaitInSeconds"] == {"Ref": "TerminationWaitSeconds"}

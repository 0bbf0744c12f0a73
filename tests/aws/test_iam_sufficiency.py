"""IAM sufficiency, proven offline, against the bootstrap stack's own policies.

(a) The CloudFormation service role allows every permission that the CloudFormation
    registry schemas (shipped with cfn-lint) list for the create, read, update and delete
    handlers of each resource type in the stage templates (endpoint and monitoring),
    except permissions of features the templates do not use (each named below with why).
(b) Each GitHub job's AWS calls are allowed by that job's role: the job's `mlops` steps
    are read from the workflow, run through the real CLI against moto (fakes only where
    moto falls short, each said), every botocore call is recorded, and each one is
    evaluated against the policies of the role the job assumes (tests/aws/_iam.py).
A missing permission fails with the role, the action and the resource.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import boto3
import cfnlint
import pytest
import yaml
from _fake_aws import FakeCloudFormation, record_calls
from _iam import (
    ACCOUNT,
    BUCKET,
    REGION,
    Authorization,
    Stack,
    allowed,
    authorizations,
    denials,
    role_policies,
)
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml
from test_requests_valid import request_errors

from mlops.core.config import load_config

GROUP = load_config().model_package_group  # the fixture project's (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO_ROOT / "model_deploy" / "bootstrap.yml"
ENDPOINT_TEMPLATE = REPO_ROOT / "model_deploy" / "endpoint-config-template.yml"
MONITORING_TEMPLATE = REPO_ROOT / "model_deploy" / "monitoring-template.yml"
STAGE_TEMPLATES = (ENDPOINT_TEMPLATE, MONITORING_TEMPLATE)  # what CloudFormationRole deploys
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
AWS_ACTION = "aws-actions/configure-aws-credentials"
MLOPS = {".venv/bin/mlops", "mlops"}
PR_NUMBER = "7"


@pytest.fixture(scope="module")
def bootstrap() -> Stack:
    from mlops.core.config import load_config

    parameters = {
        "GitHubOrg": "octo",
        "GitHubRepo": "models",
        "DefaultBranch": "main",
        "ModelPackageGroupName": load_config().model_package_group,
        "ExistingOIDCProviderArn": "",
        "DispatchEventType": "model-approved",
    }
    template = load_cfn_yaml(BOOTSTRAP.read_text())
    return Stack(template, parameters, {"CreateOIDCProvider": True})


def role_arn(stack: Stack, role: str) -> str:
    return stack.ref(role, "Arn")


def denied(stack: Stack, role: str, action: str, resource: str, **context: str) -> bool:
    check = Authorization(action, resource, tuple(context.items()))
    return not allowed(role_policies(stack, role), check)


# ---- (a) the CloudFormation role against the registry schemas -------------------------------


# Handler permissions for features the endpoint template does not use.
UNUSED_FEATURES = {
    ("AWS::SageMaker::EndpointConfig", "kms:DescribeKey"): "no KmsKeyId: AWS-owned keys",
    ("AWS::SageMaker::EndpointConfig", "iam:PassRole"): "no ExecutionRoleArn on the config",
    ("AWS::ApplicationAutoScaling::ScalableTarget", "iam:PassRole"): "no RoleARN: the "
    "service-linked role is used",
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:PutScheduledAction"): (
        "no ScheduledActions"
    ),
    (
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "application-autoscaling:DeleteScheduledAction",
    ): "no ScheduledActions",
    **{
        (
            "AWS::ApplicationAutoScaling::ScalableTarget",
            f"lambda:{verb}ProvisionedConcurrencyConfig",
        ): ("ServiceNamespace is sagemaker, not lambda")
        for verb in ("Get", "Put", "Delete")
    },
}
# What the schemas do not list but the services check (SageMaker docs, "Autoscaling
# prerequisites": registering a variant needs permission to scale it; a model from a
# package needs to read the package).
NOT_IN_SCHEMAS = {
    "AWS::ApplicationAutoScaling::ScalableTarget": {
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
    },
    "AWS::SageMaker::Model": {"sagemaker:DescribeModelPackage"},
    # the schedule is created with Tags: tagging on create needs sagemaker:AddTags
    "AWS::SageMaker::MonitoringSchedule": {"sagemaker:AddTags"},
}
HANDLERS = ("create", "read", "update", "delete")


def handler_permissions(resource_type: str) -> dict[str, str]:
    """action -> the first handler of the registry schema that lists it."""
    providers = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{providers[resource_type]}.json").read_text())
    found: dict[str, str] = {}
    for handler in HANDLERS:  # a type without an update handler is replaced, never updated
        for action in schema["handlers"].get(handler, {}).get("permissions", []):
            found.setdefault(action, handler)
    for action in NOT_IN_SCHEMAS.get(resource_type, ()):
        found.setdefault(action, "SageMaker docs")
    return found


def resource_types(template: Path) -> set[str]:
    """The resource types of a template, those inside Fn::ForEach included."""
    types = set()
    pending = list(load_cfn_yaml(template.read_text())["Resources"].items())
    while pending:
        key, value = pending.pop()
        if key.startswith("Fn::ForEach::"):
            pending += list(value[2].items())  # [identifier, collection, {logical id: resource}]
        else:
            types.add(value["Type"])
    return types


def stack_resource(
    stack: Stack, resource_type: str, action: str, stage: str, template: Path = ENDPOINT_TEMPLATE
) -> Authorization:
    """The concrete resource a handler acts on in a stage's stack (<group>-<stage>, or
    <group>-<stage>-monitoring for the monitoring template)."""
    group = stack.parameters["ModelPackageGroupName"]
    endpoint = f"{group}-{stage}"
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    service = action.split(":")[0]
    if action == "iam:PassRole":
        execution = role_arn(stack, "SageMakerExecutionRole")
        return Authorization(
            action, execution, (("iam:PassedToService", "sagemaker.amazonaws.com"),)
        )
    if action == "iam:CreateServiceLinkedRole":
        service_name = "sagemaker.application-autoscaling.amazonaws.com"
        resource = (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service_name}/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
        )
        return Authorization(action, resource, (("iam:AWSServiceName", service_name),))
    if service == "sagemaker":
        kind = {
            "AWS::SageMaker::Model": f"model/{endpoint}-model-1a2b3c",
            "AWS::SageMaker::EndpointConfig": f"endpoint-config/{endpoint}-config-1a2b3c",
            # names the monitoring template gives them
            "AWS::SageMaker::DataQualityJobDefinition": (
                f"data-quality-job-definition/{endpoint}-dq-v3-0a1b2c3d"
            ),
            "AWS::SageMaker::MonitoringSchedule": f"monitoring-schedule/{endpoint}-data-quality",
        }.get(resource_type, f"endpoint/{endpoint}")
        if action == "sagemaker:DescribeModelPackage":
            kind = f"model-package/{group}/3"
        if action == "sagemaker:DescribeEndpointConfig":
            kind = f"endpoint-config/{endpoint}-config-1a2b3c"
        return Authorization(action, arn.format("sagemaker", kind))
    if service == "cloudwatch":
        if resource_type == "AWS::CloudWatch::Alarm" and template == MONITORING_TEMPLATE:
            feature = load_config().data.features[0]  # the template names its drift alarms
            return Authorization(
                action, arn.format("cloudwatch", f"alarm:{endpoint}-drift-{feature}")
            )
        if resource_type == "AWS::CloudWatch::Alarm":  # CloudFormation names it
            return Authorization(
                action, arn.format("cloudwatch", f"alarm:{endpoint}-Errors5xxAlarm-X1")
            )
        tracking = f"alarm:TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-0a1b"
        return Authorization(action, arn.format("cloudwatch", tracking))
    if service == "application-autoscaling":
        return Authorization(action, arn.format("application-autoscaling", "scalable-target/0a1b"))
    raise KeyError(f"no resource known for {action} of {resource_type}: extend stack_resource")


def cloudformation_role_gaps(stack: Stack) -> list[str]:
    policies = role_policies(stack, "CloudFormationRole")
    gaps = []
    for template in STAGE_TEMPLATES:
        for resource_type in sorted(resource_types(template)):
            for action, handler in sorted(handler_permissions(resource_type).items()):
                if (resource_type, action) in UNUSED_FEATURES:
                    continue
                for stage in ("staging", "prod"):
                    check = stack_resource(stack, resource_type, action, stage, template)
                    if not allowed(policies, check):
                        gaps.append(
                            f"CloudFormationRole lacks {check} ({resource_type} {handler}, "
                            f"{template.name})"
                        )
    return gaps


def test_cloudformation_role_allows_every_handler_permission_of_the_stage_stacks(bootstrap):
    endpoint, monitoring = (resource_types(t) for t in STAGE_TEMPLATES)
    assert {"AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget"} <= endpoint
    assert monitoring == {
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::MonitoringSchedule",
        "AWS::CloudWatch::Alarm",
    }
    assert cloudformation_role_gaps(bootstrap) == []


def test_the_schema_check_catches_what_autoscaling_needed(bootstrap):
    """A control: without the scaling permission and the target-tracking alarms (the role as
    it was), the same check names both."""
    trimmed = copy.deepcopy(bootstrap)
    statements = trimmed.template["Resources"]["CloudFormationRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    statements[:] = [
        s for s in statements if s["Action"] != "sagemaker:UpdateEndpointWeightsAndCapacities"
    ]
    for statement in statements:
        if isinstance(statement["Resource"], list):
            statement["Resource"] = [
                r for r in statement["Resource"] if "TargetTracking" not in json.dumps(r)
            ]
    gaps = "\n".join(cloudformation_role_gaps(trimmed))
    assert "sagemaker:UpdateEndpointWeightsAndCapacities on arn:aws:sagemaker" in gaps
    assert "cloudwatch:PutMetricAlarm on arn:aws:cloudwatch:" in gaps
    assert "alarm:TargetTracking-endpoint/" in gaps


def test_the_schema_check_catches_a_role_without_the_monitoring_statement(bootstrap):
    """A control: the role as it was before monitoring stacks were deployed."""
    trimmed = copy.deepcopy(bootstrap)
    statements = trimmed.template["Resources"]["CloudFormationRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    statements[:] = [
        s for s in statements if "sagemaker:CreateMonitoringSchedule" not in s["Action"]
    ]
    gaps = "\n".join(cloudformation_role_gaps(trimmed))
    assert "sagemaker:CreateMonitoringSchedule on arn:aws:sagemaker:" in gaps
    assert "data-quality-job-definition/" in gaps
    assert "endpoint-config-template.yml" not in gaps


# ---- the trust model: what each role must NOT be able to do ------------------------------


def test_no_pull_request_can_register_approve_or_deploy(bootstrap):
    group = bootstrap.parameters["ModelPackageGroupName"]
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack"
    obj = f"arn:aws:s3:::{BUCKET}/{group}"
    main_execution = role_arn(bootstrap, "SageMakerExecutionRole")
    for action, resource in (
        ("sagemaker:StartPipelineExecution", f"{sm}:pipeline/{group}-pipeline"),
        ("sagemaker:UpdatePipeline", f"{sm}:pipeline/{group}-pipeline"),
        ("sagemaker:StopPipelineExecution", f"{sm}:pipeline/{group}-pipeline/execution/x"),
        ("sagemaker:CreateModelPackage", f"{sm}:model-package/{group}/9"),
        ("sagemaker:UpdateModelPackage", f"{sm}:model-package/{group}/9"),
        ("cloudformation:CreateChangeSet", f"{stack}/{group}-staging/1"),
        ("sagemaker:InvokeEndpoint", f"{sm}:endpoint/{group}-staging"),
        ("s3:PutObject", f"{obj}/code/abc/sourcedir.tar.gz"),  # main's code prefix
        ("s3:PutObject", f"{obj}/runs/x/model.tar.gz"),
        # main's data: the splits of its runs (a PR reads the champion's metrics and baseline)
        ("s3:GetObject", f"{obj}/runs/x/preprocess/train/train.csv"),
        ("s3:GetObject", f"{obj}/runs/x/preprocess/test/test.csv"),
        ("s3:GetObject", f"{obj}/runs/x/evaluate/evaluation/predictions.csv"),
    ):
        assert denied(bootstrap, "PrRole", action, resource), f"PrRole may {action} {resource}"
    for key in ("evaluate/evaluation/evaluation.json", "preprocess/baseline/baseline.json"):
        assert not denied(bootstrap, "PrRole", "s3:GetObject", f"{obj}/runs/x/{key}"), key
    assert denied(
        bootstrap,
        "PrRole",
        "iam:PassRole",
        main_execution,
        **{"iam:PassedToService": "sagemaker.amazonaws.com"},
    )
    # The PR pipeline's own role (PR code runs as it): no registry writes, writes under pr/.
    for action, resource in (
        ("sagemaker:CreateModelPackage", f"{sm}:model-package/{group}/9"),
        ("s3:PutObject", f"{obj}/models/m/model.tar.gz"),
        ("s3:PutObject", f"{obj}/code/abc/sourcedir.tar.gz"),
    ):
        assert denied(bootstrap, "PrSageMakerExecutionRole", action, resource), action
    assert not denied(bootstrap, "PrSageMakerExecutionRole", "s3:PutObject", f"{obj}/pr/7/runs/x")


def test_each_role_reaches_only_its_own_stage(bootstrap):
    group = bootstrap.parameters["ModelPackageGroupName"]
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack"
    approve = ("sagemaker:UpdateModelPackage", f"{sm}:model-package/{group}/9")
    for role in ("PrRole", "BuildRole", "StagingDeployRole", "ProductionDeployRole"):
        assert denied(bootstrap, role, *approve), f"{role} may approve: that is a person's act"
    for role in ("PrRole", "BuildRole"):
        for stage in ("staging", "prod"):
            assert denied(
                bootstrap, role, "cloudformation:ExecuteChangeSet", f"{stack}/{group}-{stage}/1"
            )
    for action in ("cloudformation:ExecuteChangeSet", "cloudformation:DeleteStack"):
        assert denied(bootstrap, "StagingDeployRole", action, f"{stack}/{group}-prod/1")
        assert denied(bootstrap, "StagingDeployRole", action, f"{stack}/{group}-prod-monitoring/1")
        assert denied(
            bootstrap, "ProductionDeployRole", action, f"{stack}/{group}-staging-monitoring/1"
        )
        assert not denied(bootstrap, "StagingDeployRole", action, f"{stack}/{group}-staging/1")
        assert not denied(bootstrap, "ProductionDeployRole", action, f"{stack}/{group}-prod/1")
    assert denied(
        bootstrap, "StagingDeployRole", "sagemaker:InvokeEndpoint", f"{sm}:endpoint/{group}-prod"
    )


# ---- (b) each workflow job's calls against its role ---------------------------------------


def repository_variables(stack: Stack, data_file: Path) -> dict[str, str]:
    """What the README says to set: each bootstrap output named `Repository variable X`."""
    values = {"MLOPS_DATA_FILE": str(data_file)}
    for output in stack.template["Outputs"].values():
        match = re.match(r"Repository variable (\w+)", output.get("Description", ""))
        if match:
            values[match.group(1)] = str(stack.resolve(output["Value"]))
    return values


def role_of(stack: Stack, variable: str) -> str:
    """The bootstrap role whose ARN the README puts in repository variable `variable`."""
    for output in stack.template["Outputs"].values():
        if output.get("Description", "").startswith(f"Repository variable {variable} "):
            return output["Value"]["Fn::GetAtt"][0]
    raise AssertionError(f"no bootstrap output is repository variable {variable}")


def expression(
    value: str, variables: dict[str, str], outputs: dict[str, dict], needs: dict | None = None
) -> str:
    """A `${{ a || b }}` value as GitHub would give it for a run started by an approval
    event: vars from the bootstrap outputs, step outputs, literals; inputs and github.* empty."""
    match = re.fullmatch(r"\$\{\{\s*(.+?)\s*\}\}", str(value))
    if not match:
        return str(value)
    for term in (t.strip() for t in match.group(1).split("||")):
        if term.startswith("'"):
            found = term.strip("'")
        elif term.startswith("vars."):
            found = variables.get(term.removeprefix("vars."), "")
        elif term.startswith("steps."):
            _, step, _, key = term.split(".")
            found = outputs.get(step, {}).get(key, "")
        elif term.startswith("needs."):
            _, job, _, key = term.split(".")
            found = (needs or {}).get(job, {}).get(key, "")
        else:
            found = ""
        if found:
            return found
    return ""


def aws_jobs() -> list[tuple[str, str]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_id, job in yaml.safe_load(path.read_text())["jobs"].items():
            if any(s.get("uses", "").startswith(AWS_ACTION) for s in job.get("steps", [])):
                found.append((path.stem, job_id))
    return found


def test_every_aws_job_is_covered_below():
    assert sorted(aws_jobs()) == sorted(JOB_EXPECTATIONS)


@pytest.fixture
def recorded(aws, monkeypatch):
    """Every botocore call as (service, operation, params); `fakes` answers the calls moto
    cannot (tests/aws/_fake_aws.py)."""
    return record_calls(monkeypatch)


def seed(cfg, versions: int) -> dict:
    """The artifact bucket and `versions` Approved versions with their run outputs in S3
    (evaluation, baseline, held-out rows); returns the held-out line -> target map."""
    group = cfg.model_package_group
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    width = len(cfg.data.features)
    rows = [[float(i + j) for j in range(width)] + [100_000.0 + 1_000 * i] for i in range(30)]
    lines = [",".join(cfg.columns)] + [",".join(map(repr, row)) for row in rows]
    held_out = "\n".join(lines) + "\n"
    evaluation = {"regression_metrics": {"mse": {"value": 1.0}, "r2": {"value": 0.95}}}
    for version in range(1, versions + 1):
        run = f"{group}/runs/exec{version}"
        for key, body in (
            (f"{run}/evaluate/evaluation/evaluation.json", json.dumps(evaluation)),
            (f"{run}/preprocess/baseline/baseline.json", "{}"),
            (f"{run}/preprocess/baseline/statistics.json", "{}"),  # Model Monitor's baseline
            (f"{run}/preprocess/baseline/constraints.json", "{}"),
            (f"{run}/preprocess/test/test.csv", held_out),  # raw rows, with a header
        ):
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "xgboost",
                        "ModelDataUrl": f"s3://{BUCKET}/{group}/models/v{version}/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{BUCKET}/{run}/evaluate/evaluation/evaluation.json",
                    }
                },
                "ModelDataQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{BUCKET}/{run}/preprocess/baseline/baseline.json",
                    }
                },
            },
            CustomerMetadataProperties={
                "held_out_uri": f"s3://{BUCKET}/{run}/preprocess/test",
                "run_id": f"exec{version}",
            },
        )
    return {",".join(map(repr, row[:-1])): row[-1] for row in rows}


def fake_endpoint(targets: dict[str, float]):
    """InvokeEndpoint (moto answers b'body'): a model that predicts each held-out row's target."""

    def invoke(operation: str, params: dict) -> dict:
        body = params["Body"].decode() if isinstance(params["Body"], bytes) else params["Body"]
        predictions = [targets[line] for line in body.splitlines()]
        payload = json.dumps({"predictions": predictions}).encode()
        from botocore.response import StreamingBody

        return {
            "Body": StreamingBody(io.BytesIO(payload), len(payload)),
            "ContentType": "application/json",
        }

    return invoke


def fake_steps(group: str, registers: bool):
    """ListPipelineExecutionSteps (not in moto): every step Succeeded; main runs register."""

    def steps(operation: str, params: dict) -> dict:
        names = ["validate", "preprocess", "train", "evaluate", "gate"]
        items = [{"StepName": n, "StepStatus": "Succeeded"} for n in reversed(names)]
        if registers:
            packages = boto3.client("sagemaker").list_model_packages(
                ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
            )["ModelPackageSummaryList"]
            arn = packages[0]["ModelPackageArn"]
            items.insert(
                0,
                {
                    "StepName": "register",
                    "StepStatus": "Succeeded",
                    "Metadata": {"RegisterModel": {"Arn": arn}},
                },
            )
        return {"PipelineExecutionSteps": items}

    return steps


def mlops_steps(workflow: str, job_id: str):
    """(step id, argv, env expressions) of each `mlops ... --backend sagemaker` step, and of
    each `mlops` step whose outputs later steps read (an `id:`, e.g. `mlops data path`)."""
    data = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text())
    job = data["jobs"][job_id]
    for step in job["steps"]:
        if "run" not in step:
            continue
        argv = shlex.split(step["run"].replace("\\\n", " "))
        if argv[0] not in MLOPS or ("sagemaker" not in argv and "id" not in step):
            continue
        env = {**data.get("env", {}), **job.get("env", {}), **step.get("env", {})}
        yield step.get("id", ""), argv, env, job


def role_variable(job: dict) -> str:
    step = next(s for s in job["steps"] if s.get("uses", "").startswith(AWS_ACTION))
    return step["with"]["role-to-assume"].removeprefix("${{ vars.").removesuffix(" }}")


def run_job(
    workflow, job_id, variables, monkeypatch, tmp_path, needs: dict | None = None
) -> list[tuple[str, int]]:
    """Run a job's SageMaker steps through the real CLI, as GitHub would (env, outputs; the
    outputs of the jobs it needs in `needs`, filled with this job's when given)."""
    from mlops.cli import run

    outputs: dict[str, dict] = {}
    results = []
    monkeypatch.setenv(
        "GITHUB_REF", f"refs/pull/{PR_NUMBER}/merge" if workflow == "pr" else "refs/heads/main"
    )
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    for step_id, argv, env, _ in mlops_steps(workflow, job_id):
        values = {k: expression(v, variables, outputs, needs) for k, v in env.items()}
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        if ">>" in argv:
            argv = argv[: argv.index(">>")]
        expanded = [values.get(a[1:], a) if a.startswith("$") else a for a in argv[1:]]
        expanded = [
            str(tmp_path / "summary.md") if a == "$GITHUB_STEP_SUMMARY" else a for a in expanded
        ]
        if any(a == "" for a in expanded):
            continue  # its `if:` skips it in this run (no manual version, nothing to roll back)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run(expanded)
        outputs[step_id] = dict(
            line.split("=", 1) for line in out.getvalue().splitlines() if re.match(r"^\w+=", line)
        )
        results.append((" ".join(expanded[:3]), code))
    if needs is not None:
        job = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text())["jobs"][job_id]
        needs[job_id] = {
            k: expression(v, variables, outputs) for k, v in job.get("outputs", {}).items()
        }
    return results


# For each job: what its run must have called (so that a green check is not vacuous).
JOB_EXPECTATIONS = {
    ("pr", "sagemaker"): [
        ("sagemaker", "StartPipelineExecution", "PipelineName", f"{GROUP}-pr-7"),
        # the runs this push supersedes are looked up (and stopped)
        ("sagemaker", "ListPipelineExecutions", "PipelineName", f"{GROUP}-pr-7"),
    ],
    ("build", "pipeline"): [
        ("sagemaker", "StartPipelineExecution", "PipelineName", f"{GROUP}-pipeline")
    ],
    ("deploy", "staging"): [
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-staging"),
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-staging-monitoring"),
        ("sagemaker-runtime", "InvokeEndpoint", "EndpointName", f"{GROUP}-staging"),
    ],
    ("deploy", "production"): [
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-prod"),
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-prod-monitoring"),
        ("sagemaker-runtime", "InvokeEndpoint", "EndpointName", f"{GROUP}-prod"),
    ],
    ("batch", "transform"): [
        ("sagemaker", "CreateModel", "ModelName", f"{GROUP}-v1-batch"),
        ("sagemaker", "CreateTransformJob", "ModelName", f"{GROUP}-v1-batch"),
    ],
    ("monitor", "monitor"): [
        (
            "sagemaker",
            "ListMonitoringExecutions",
            "MonitoringScheduleName",
            f"{GROUP}-staging-data-quality",
        ),
        (
            "sagemaker",
            "ListMonitoringExecutions",
            "MonitoringScheduleName",
            f"{GROUP}-prod-data-quality",
        ),
    ],
}


@pytest.mark.parametrize(("workflow", "job_id"), sorted(JOB_EXPECTATIONS))
def test_each_jobs_calls_are_allowed_by_its_role(
    workflow, job_id, bootstrap, recorded, cfg, data_csv, home, monkeypatch, tmp_path
):
    calls, fakes = recorded
    targets = seed(cfg, versions=2)
    cloudformation = FakeCloudFormation()
    fakes[("cloudformation", "*")] = cloudformation
    fakes[("sagemaker-runtime", "InvokeEndpoint")] = fake_endpoint(targets)
    fakes[("sagemaker", "ListPipelineExecutionSteps")] = fake_steps(
        cfg.model_package_group, registers=workflow == "build"
    )
    # moto has no Model Monitor: no execution yet (the monitor reports "no data")
    fakes[("sagemaker", "ListMonitoringExecutions")] = lambda *_: {
        "MonitoringExecutionSummaries": []
    }
    group = cfg.model_package_group
    # prod serves version 1 (the champion; what a prod rollback returns to)
    first = boto3.client("sagemaker").list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"
    )["ModelPackageSummaryList"][0]["ModelPackageArn"]
    prod = f"{group}-prod"
    cloudformation.stacks[prod] = cloudformation.stack(
        prod,
        "UPDATE_COMPLETE",
        [
            {"ParameterKey": "EndpointName", "ParameterValue": prod},
            {"ParameterKey": "ModelVersion", "ParameterValue": "1"},
            {"ParameterKey": "ModelPackageArn", "ParameterValue": first},
        ],
    )
    needs: dict = {}
    if job_id == "production":  # the staging job ran before: staging serves the newest
        staging_calls = run_job(
            "deploy", "staging", repository_variables(bootstrap, data_csv), monkeypatch, tmp_path,
            needs,
        )  # fmt: skip
        assert all(code == 0 for _, code in staging_calls)
        assert needs["staging"] == {"version": "2"}  # what prod promotes
    calls.clear()

    variables = repository_variables(bootstrap, data_csv)
    # what a fork sets for the nightly batch job (not bootstrap outputs)
    variables["MLOPS_BATCH_INPUT"] = f"s3://{BUCKET}/{group}/batch/input.csv"
    variables["MLOPS_BATCH_OUTPUT"] = f"s3://{BUCKET}/{group}/batch/output/"
    results = run_job(workflow, job_id, variables, monkeypatch, tmp_path, needs)
    assert results and all(code == 0 for _, code in results), results

    made = {
        (s, o, p.get(k))
        for s, o, p in calls
        for (_, _, k, _) in JOB_EXPECTATIONS[(workflow, job_id)]
    }
    for service, operation, _, value in JOB_EXPECTATIONS[(workflow, job_id)]:
        assert (service, operation, value) in made, f"{workflow}/{job_id} never called {operation}"
    # every request the job sent, against the service model's lengths and patterns too
    invalid = [e for s, o, p in calls for e in request_errors(s, o, p)]
    assert invalid == [], invalid
    job = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text())["jobs"][job_id]
    role = role_of(bootstrap, role_variable(job))
    missing = denials(role_policies(bootstrap, role), calls)
    assert missing == [], f"{role} (job {workflow}/{job_id}) lacks:\n" + "\n".join(missing)


def test_a_missing_permission_names_the_action_and_the_role(bootstrap):
    """A control for the check above: the staging role without DescribeStackEvents."""
    trimmed = copy.deepcopy(bootstrap)
    statement = trimmed.template["Resources"]["StagingDeployRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"][0]
    statement["Action"].remove("cloudformation:DescribeStackEvents")
    calls = [("cloudformation", "DescribeStackEvents", {"StackName": f"{GROUP}-staging"})]
    (missing,) = denials(role_policies(trimmed, "StagingDeployRole"), calls)
    assert missing.startswith("cloudformation:DescribeStackEvents on arn:aws:cloudformation:")
    assert denials(role_policies(bootstrap, "StagingDeployRole"), calls) == []


def test_monitor_with_labels_is_allowed_by_the_monitor_role(
    bootstrap, recorded, cfg, home, monkeypatch, tmp_path
):
    """`mlops monitor --backend sagemaker --labels FILE` (run by hand or by a fork's job with
    the monitor role): the stage's stack, its endpoint's capture destination, the capture
    objects, the serving version and its metrics."""
    from mlops.cli import run
    from mlops.core.capture import capture_line

    calls, fakes = recorded
    seed(cfg, versions=2)
    group = cfg.model_package_group
    prod = f"{group}-prod"
    cloudformation = FakeCloudFormation()
    fakes[("cloudformation", "*")] = cloudformation
    cloudformation.stacks[prod] = cloudformation.stack(
        prod,
        "UPDATE_COMPLETE",
        [
            {"ParameterKey": "EndpointName", "ParameterValue": prod},
            {"ParameterKey": "ModelVersion", "ParameterValue": "1"},
        ],
    )
    now = datetime.now(UTC)
    fakes[("sagemaker", "ListMonitoringExecutions")] = lambda *_: {
        "MonitoringExecutionSummaries": []
    }
    fakes[("sagemaker", "DescribeEndpoint")] = lambda _, params: {
        "EndpointName": params["EndpointName"],
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{prod}",
        "EndpointStatus": "InService",
        "CreationTime": now,
        "LastModifiedTime": now,
        "DataCaptureConfig": {  # what the endpoint template's DataCaptureUri sets
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 20,
            "DestinationS3Uri": f"s3://{BUCKET}/{group}/data-capture/prod",
        },
    }
    row = ",".join("1" for _ in cfg.data.features).encode()
    line = capture_line(row, "text/csv", b"5.0", "text/csv", "e1", now, "id-1")
    key = f"{group}/data-capture/prod/{prod}/AllTraffic/{now:%Y/%m/%d/%H}/capture.jsonl"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=line.encode())
    labels = tmp_path / "labels.csv"
    labels.write_text(f"inference_id,{cfg.data.target}\nid-1,5.0\n")
    monkeypatch.setenv("AWS_REGION", REGION)
    calls.clear()

    code = run(["monitor", "--stage", "prod", "--backend", "sagemaker", "--labels", str(labels),
                "--since", "1h", "--report-dir", str(tmp_path / "report")])  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "report" / "monitor.json").read_text())["requests"] == 1
    operations = {(s, o) for s, o, _ in calls}
    assert {("s3", "ListObjectsV2"), ("s3", "GetObject"), ("sagemaker", "DescribeEndpoint"),
            ("cloudformation", "DescribeStacks")} <= operations  # fmt: skip
    missing = denials(role_policies(bootstrap, "MonitorRole"), calls)
    assert missing == [], "MonitorRole lacks:\n" + "\n".join(missing)
    # and no more than that: the capture of another group's endpoints stays out of reach
    assert denied(bootstrap, "MonitorRole", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/other/x")
    assert denied(bootstrap, "MonitorRole", "s3:ListBucket", f"arn:aws:s3:::{BUCKET}",
                  **{"s3:prefix": "other/data-capture/"})  # fmt: skip


def test_a_change_set_for_the_monitoring_template_is_authorized_on_its_transform(bootstrap):
    """monitoring-template.yml declares `Transform: AWS::LanguageExtensions`: CreateChangeSet
    is checked against the transform's ARN too (account `aws`), which only the stage deploy
    roles hold; the endpoint template (no transform) needs the stack ARN only."""
    transform = f"arn:aws:cloudformation:{REGION}:aws:transform/LanguageExtensions"
    for role, stack in (("StagingDeployRole", "staging"), ("ProductionDeployRole", "prod")):
        for template, extra in ((MONITORING_TEMPLATE, [transform]), (ENDPOINT_TEMPLATE, [])):
            call = {"StackName": f"{GROUP}-{stack}", "TemplateBody": template.read_text()}
            checks = authorizations("cloudformation", "CreateChangeSet", call)
            assert [c.resource for c in checks[1:]] == extra
        calls = [("cloudformation", "CreateChangeSet", call | {"TemplateBody":
                  MONITORING_TEMPLATE.read_text(), "StackName": f"{GROUP}-{stack}-monitoring"})]  # fmt: skip
        assert denials(role_policies(bootstrap, role), calls) == []
        trimmed = copy.deepcopy(bootstrap)
        statements = trimmed.template["Resources"][role]["Properties"]["Policies"][0][
            "PolicyDocument"
        ]["Statement"]
        statements[:] = [s for s in statements if "transform/" not in json.dumps(s)]
        (missing,) = denials(role_policies(trimmed, role), calls)
        assert missing.startswith(f"cloudformation:CreateChangeSet on {transform}")
    for role in ("PrRole", "BuildRole", "MonitorRole", "BatchRole"):
        assert denied(bootstrap, role, "cloudformation:CreateChangeSet", transform), role


def test_execution_roles_pull_images_only_from_sagemakers_accounts_in_the_region(bootstrap):
    """ECR reads are scoped to the accounts the SageMaker SDK lists for the images in use,
    not `repository/sagemaker-*` in any account (anyone can name a repository so)."""
    import importlib.metadata

    # the SDK's image tables, read as files (importing the SDK costs seconds)
    tables = {f.name: f for f in importlib.metadata.files("sagemaker-core") or []}
    xgboost = json.loads(tables["xgboost.json"].read_text())["training"]["versions"]["3.2-0"]
    monitor = next(iter(json.loads(tables["model-monitor.json"].read_text())["versions"].values()))
    mapping = bootstrap.template["Mappings"]["SageMakerImageAccounts"]
    for region, account in xgboost["registries"].items():
        assert mapping[region]["Framework"] == account, region
        assert mapping[region]["ModelMonitor"] == monitor["registries"].get(region, account), region
    here = mapping[REGION]["Framework"]
    analyzer = mapping[REGION]["ModelMonitor"]
    for role in ("SageMakerExecutionRole", "PrSageMakerExecutionRole"):
        repo = f"arn:aws:ecr:{REGION}:{here}:repository/sagemaker-xgboost"
        assert not denied(bootstrap, role, "ecr:BatchGetImage", repo), role
        assert not denied(bootstrap, role, "ecr:BatchGetImage",
                          f"arn:aws:ecr:{REGION}:{analyzer}:repository/sagemaker-model-monitor-analyzer")  # fmt: skip
        assert denied(bootstrap, role, "ecr:BatchGetImage",
                      f"arn:aws:ecr:{REGION}:999999999999:repository/sagemaker-xgboost"), role  # fmt: skip

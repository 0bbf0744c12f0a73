"""IAM sufficiency, proven offline, against the bootstrap stack's own policies.

(a) The CloudFormation service role allows every permission that the CloudFormation
    registry schemas (shipped with cfn-lint) list for the create, read, update and delete
    handlers of each resource type in the endpoint template, except permissions of
    features the template does not use (each named below with why).
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
from _iam import (
    ACCOUNT,
    BUCKET,
    REGION,
    Authorization,
    Stack,
    allowed,
    denials,
    role_policies,
)
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.config import load_config

GROUP = load_config().model_package_group  # the fixture project's (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO_ROOT / "model_deploy" / "bootstrap.yml"
ENDPOINT_TEMPLATE = REPO_ROOT / "model_deploy" / "endpoint-config-template.yml"
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
}
HANDLERS = ("create", "read", "update", "delete")


def handler_permissions(resource_type: str) -> dict[str, str]:
    """action -> the first handler of the registry schema that lists it."""
    providers = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{providers[resource_type]}.json").read_text())
    found: dict[str, str] = {}
    for handler in HANDLERS:
        for action in schema["handlers"][handler]["permissions"]:
            found.setdefault(action, handler)
    for action in NOT_IN_SCHEMAS.get(resource_type, ()):
        found.setdefault(action, "SageMaker docs")
    return found


def stack_resource(stack: Stack, resource_type: str, action: str, stage: str) -> Authorization:
    """The concrete resource a handler acts on in a stage stack named <group>-<stage>."""
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
        }.get(resource_type, f"endpoint/{endpoint}")
        if action == "sagemaker:DescribeModelPackage":
            kind = f"model-package/{group}/3"
        if action == "sagemaker:DescribeEndpointConfig":
            kind = f"endpoint-config/{endpoint}-config-1a2b3c"
        return Authorization(action, arn.format("sagemaker", kind))
    if service == "cloudwatch":
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
    types = sorted(
        {r["Type"] for r in load_cfn_yaml(ENDPOINT_TEMPLATE.read_text())["Resources"].values()}
    )
    gaps = []
    for resource_type in types:
        for action, handler in sorted(handler_permissions(resource_type).items()):
            if (resource_type, action) in UNUSED_FEATURES:
                continue
            for stage in ("staging", "prod"):
                check = stack_resource(stack, resource_type, action, stage)
                if not allowed(policies, check):
                    gaps.append(f"CloudFormationRole lacks {check} ({resource_type} {handler})")
    return gaps


def test_cloudformation_role_allows_every_handler_permission_of_the_endpoint_stack(bootstrap):
    types = {r["Type"] for r in load_cfn_yaml(ENDPOINT_TEMPLATE.read_text())["Resources"].values()}
    assert {"AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget"} <= types
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
        ("sagemaker:CreateModelPackage", f"{sm}:model-package/{group}/9"),
        ("sagemaker:UpdateModelPackage", f"{sm}:model-package/{group}/9"),
        ("cloudformation:CreateChangeSet", f"{stack}/{group}-staging/1"),
        ("sagemaker:InvokeEndpoint", f"{sm}:endpoint/{group}-staging"),
        ("s3:PutObject", f"{obj}/code/abc/sourcedir.tar.gz"),  # main's code prefix
        ("s3:PutObject", f"{obj}/runs/x/model.tar.gz"),
    ):
        assert denied(bootstrap, "PrRole", action, resource), f"PrRole may {action} {resource}"
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


def expression(value: str, variables: dict[str, str], outputs: dict[str, dict]) -> str:
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


class FakeCloudFormation:
    """Stands in for the CloudFormation API (moto's change sets drop the stack's outputs):
    a change set applies its parameters, and a stack's outputs are the template's, read from
    those parameters. Requests are still validated against botocore's service model."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict] = {}
        self.change_sets: dict[tuple[str, str], dict] = {}

    def stack(self, name: str, status: str, parameters: list[dict]) -> dict:
        values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
        outputs = {
            "EndpointName": values.get("EndpointName", ""),
            "ModelVersion": values.get("ModelVersion", ""),
            "ModelPackageArn": values.get("ModelPackageArn", ""),
        }
        return {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0a1b",
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            "StackStatus": status,
            "Parameters": parameters,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items() if v],
        }

    def __call__(self, operation: str, params: dict) -> dict:
        name = params.get("StackName", "")
        if operation == "DescribeStacks":
            if name not in self.stacks:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ValidationError",
                            "Message": f"Stack with id {name} does not exist",
                        }
                    },
                    operation,
                )
            return {"Stacks": [self.stacks[name]]}
        if operation == "CreateChangeSet":
            self.change_sets[(name, params["ChangeSetName"])] = params
            if params["ChangeSetType"] == "CREATE":
                self.stacks[name] = self.stack(name, "REVIEW_IN_PROGRESS", [])
            return {"Id": f"cs-{params['ChangeSetName']}", "StackId": name}
        if operation == "DescribeChangeSet":
            request = self.change_sets[(name, params["ChangeSetName"])]
            if self.stacks[name]["Parameters"] == request["Parameters"]:
                reason = "The submitted information didn't contain changes."
                return {"Status": "FAILED", "StatusReason": reason, "Changes": []}
            return {"Status": "CREATE_COMPLETE", "Changes": []}
        if operation == "ExecuteChangeSet":
            request = self.change_sets.pop((name, params["ChangeSetName"]))
            done = "CREATE_COMPLETE" if request["ChangeSetType"] == "CREATE" else "UPDATE_COMPLETE"
            self.stacks[name] = self.stack(name, done, request["Parameters"])
            return {}
        if operation == "DeleteChangeSet":
            self.change_sets.pop((name, params["ChangeSetName"]), None)
            return {}
        if operation == "DescribeStackEvents":
            return {"StackEvents": []}
        if operation == "DeleteStack":
            self.stacks.pop(name, None)
            return {}
        raise KeyError(f"FakeCloudFormation does not answer {operation}")


@pytest.fixture
def recorded(aws, monkeypatch):
    """Every botocore call as (service, operation, params); `fakes` answers the calls moto
    cannot (after validating the request, as botocore would before sending it)."""
    calls: list[tuple[str, str, dict]] = []
    fakes: dict[tuple[str, str], object] = {}
    original = BaseClient._make_api_call

    def make_api_call(client, operation, params):
        service = client.meta.service_model.service_name
        calls.append((service, operation, dict(params)))
        fake = fakes.get((service, operation)) or fakes.get((service, "*"))
        if fake is None:
            return original(client, operation, params)
        shape = client.meta.service_model.operation_model(operation).input_shape
        validate_parameters(params, shape)
        response = fake(operation, params)
        response.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return response

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    return calls, fakes


def seed(cfg, versions: int) -> dict:
    """The artifact bucket and `versions` Approved versions with their run outputs in S3
    (evaluation, baseline, held-out rows); returns the held-out line -> target map."""
    group = cfg.model_package_group
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    width = len(cfg.data.features)
    rows = [[100_000.0 + 1_000 * i] + [float(i + j) for j in range(width)] for i in range(30)]
    held_out = "\n".join(",".join(repr(v) for v in row) for row in rows) + "\n"
    evaluation = {"regression_metrics": {"mse": {"value": 1.0}, "r2": {"value": 0.95}}}
    for version in range(1, versions + 1):
        run = f"{group}/runs/exec{version}"
        for key, body in (
            (f"{run}/evaluate/evaluation/evaluation.json", json.dumps(evaluation)),
            (f"{run}/preprocess/baseline/baseline.json", "{}"),
            (f"{run}/preprocess/test/test.csv", held_out),
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
        )
    return {",".join(repr(v) for v in row[1:]): row[0] for row in rows}


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


def run_job(workflow, job_id, variables, monkeypatch, tmp_path) -> list[tuple[str, int]]:
    """Run a job's SageMaker steps through the real CLI, as GitHub would (env, outputs)."""
    from mlops.cli import run

    outputs: dict[str, dict] = {}
    results = []
    monkeypatch.setenv(
        "GITHUB_REF", f"refs/pull/{PR_NUMBER}/merge" if workflow == "pr" else "refs/heads/main"
    )
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    for step_id, argv, env, _ in mlops_steps(workflow, job_id):
        values = {k: expression(v, variables, outputs) for k, v in env.items()}
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
    return results


# For each job: what its run must have called (so that a green check is not vacuous).
JOB_EXPECTATIONS = {
    ("pr", "sagemaker"): [("sagemaker", "StartPipelineExecution", "PipelineName", f"{GROUP}-pr-7")],
    ("build", "pipeline"): [
        ("sagemaker", "StartPipelineExecution", "PipelineName", f"{GROUP}-pipeline")
    ],
    ("deploy", "staging"): [
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-staging"),
        ("sagemaker-runtime", "InvokeEndpoint", "EndpointName", f"{GROUP}-staging"),
    ],
    ("deploy", "production"): [
        ("cloudformation", "ExecuteChangeSet", "StackName", f"{GROUP}-prod"),
        ("sagemaker-runtime", "InvokeEndpoint", "EndpointName", f"{GROUP}-prod"),
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
    if job_id == "production":  # the staging job ran before: staging serves the newest
        staging_calls = run_job(
            "deploy", "staging", repository_variables(bootstrap, data_csv), monkeypatch, tmp_path
        )
        assert all(code == 0 for _, code in staging_calls)
    calls.clear()

    variables = repository_variables(bootstrap, data_csv)
    results = run_job(workflow, job_id, variables, monkeypatch, tmp_path)
    assert results and all(code == 0 for _, code in results), results

    made = {
        (s, o, p.get(k))
        for s, o, p in calls
        for (_, _, k, _) in JOB_EXPECTATIONS[(workflow, job_id)]
    }
    for service, operation, _, value in JOB_EXPECTATIONS[(workflow, job_id)]:
        assert (service, operation, value) in made, f"{workflow}/{job_id} never called {operation}"
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

"""The three-account layout (model_deploy/accounts/), proven offline.

Each deploy job's real `mlops` steps (read from .github/workflows/deploy.yml) run under
moto with the credentials of the role the job assumes, in that role's account (build
111111111111, staging 222222222222, prod 333333333333); every botocore call is recorded
with the role that made it and checked by tests/aws/_iam_cross_account.py: the identity
policy, and for another account's resource its resource policy, and for the artifact
bucket its key policy, must allow it. The calls services make for us (CloudFormation
creating the model from a package of the build account, the endpoint's model reading its
artifact) are checked the same way. Controls remove one grant and see it named.

moto cannot read another account's registry by ARN: a router (`registry_router`) answers
those calls from the owner account's moto backend. moto reads buckets across accounts
by itself. Not checked here (needs AWS): SCPs, the real S3/KMS/SageMaker evaluation.
"""

from __future__ import annotations

import copy
import json
import re

import boto3
import pytest
from _fake_aws import FakeCloudFormation
from _iam import REGION, TOLERATED, Authorization
from _iam_cross_account import (
    Accounts,
    AccountStack,
    Check,
    account_of_role,
    checks,
    denial,
    denials,
    record_role_calls,
    resource_policy_allows,
)
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml
from test_iam_sufficiency import fake_endpoint, run_job

from mlops.core.config import load_config
from mlops.core.paths import REPO_ROOT

ACCOUNTS_DIR = REPO_ROOT / "model_deploy" / "accounts"
BUILD, STAGING, PROD = "111111111111", "222222222222", "333333333333"
GROUP = load_config().model_package_group  # the fixture project's
BUILD_BUCKET = f"{GROUP}-artifacts-{BUILD}"
ORG, REPO = "octo", "models"


def stage_stack(stage: str, account: str, other: str) -> AccountStack:
    staging = stage == "staging"
    return AccountStack(
        load_cfn_yaml((ACCOUNTS_DIR / "stage-account.yml").read_text()),
        {
            "Stage": stage,
            "GitHubOrg": ORG,
            "GitHubRepo": REPO,
            "DefaultBranch": "main",
            "ModelPackageGroupName": GROUP,
            "BuildAccountId": BUILD,
            "OtherStageAccountId": other,
            "ExistingOIDCProviderArn": "",
        },
        {
            "CreateOIDCProvider": True,
            "HasOtherStage": True,
            "IsStaging": staging,
            "StagingReadByProd": staging,
            "ProdReadsStaging": not staging,
        },
        account=account,
    )


@pytest.fixture(scope="module")
def layout() -> Accounts:
    build = AccountStack(
        load_cfn_yaml((ACCOUNTS_DIR / "build-account.yml").read_text()),
        {
            "GitHubOrg": ORG,
            "GitHubRepo": REPO,
            "DefaultBranch": "main",
            "ModelPackageGroupName": GROUP,
            "StagingAccountId": STAGING,
            "ProdAccountId": PROD,
            "ExistingOIDCProviderArn": "",
            "DispatchEventType": "model-approved",
        },
        {"CreateOIDCProvider": True},
        account=BUILD,
    )
    return Accounts(
        {
            BUILD: build,
            STAGING: stage_stack("staging", STAGING, PROD),
            PROD: stage_stack("prod", PROD, STAGING),
        }
    )


def role(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


# What a person's stage config may name as role_arn: a role of their own in the stage
# account (the deploy roles trust only their GitHub job; the jobs need no role_arn).
OPERATOR = {
    "staging": f"arn:aws:iam::{STAGING}:role/operator",
    "prod": f"arn:aws:iam::{PROD}:role/operator",
}
DEPLOY = {
    "staging": role(STAGING, f"{GROUP}-staging-deploy"),
    "prod": role(PROD, f"{GROUP}-prod-deploy"),
}
STAGE_ACCOUNT = {"staging": STAGING, "prod": PROD}


# ---- templates --------------------------------------------------------------------------


def test_the_dispatch_function_is_bootstrap_yml_s():
    """The build account's approval -> repository_dispatch function is the single-account one."""

    def code(path):
        resources = load_cfn_yaml(path.read_text())["Resources"]
        return resources["DispatchFunction"]["Properties"]["Code"]["ZipFile"]

    assert code(ACCOUNTS_DIR / "build-account.yml") == code(
        REPO_ROOT / "model_deploy" / "bootstrap.yml"
    )


# ---- the trust model --------------------------------------------------------------------


def test_each_deploy_role_trusts_exactly_its_github_environment(layout):
    for stage, environment in (("staging", "staging"), ("prod", "production")):
        (statement,) = layout.trust_policy(DEPLOY[stage])["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"]["Federated"].startswith(
            f"arn:aws:iam::{STAGE_ACCOUNT[stage]}:oidc-provider/"
        )
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": f"repo:{ORG}/{REPO}:"
                f"environment:{environment}:job_workflow_ref:"
                f"{ORG}/{REPO}/.github/workflows/deploy.yml@refs/heads/main",
            }
        }
    # staging's read role: prod's deploy role only
    read = role(STAGING, f"{GROUP}-staging-promotion-read")
    (statement,) = layout.trust_policy(read)["Statement"]
    assert statement["Principal"] == {"AWS": DEPLOY["prod"]}


def allowed(
    layout: Accounts, role_arn: str, action: str, resource: str, owner: str, policy=None, **context
) -> bool:
    request = Authorization(action, resource, tuple(context.items()))
    return denial(layout, role_arn, Check(request, owner, policy)) is None


def test_stage_accounts_read_the_build_account_and_change_nothing_there(layout):
    group_policy = ("model package group policy", layout.group_policy(BUILD, GROUP))
    bucket_policy = ("bucket policy", layout.bucket_policy(BUILD_BUCKET))
    package = f"arn:aws:sagemaker:{REGION}:{BUILD}:model-package/{GROUP}/3"
    obj = f"arn:aws:s3:::{BUILD_BUCKET}/{GROUP}"
    for stage in ("staging", "prod"):
        deploy = DEPLOY[stage]
        execution = role(STAGE_ACCOUNT[stage], f"{GROUP}-{stage}-exec")
        assert allowed(
            layout, deploy, "sagemaker:DescribeModelPackage", package, BUILD, group_policy
        )
        for action in ("sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage"):
            assert not allowed(layout, deploy, action, package, BUILD, group_policy), action
        assert allowed(
            layout,
            deploy,
            "s3:GetObject",
            f"{obj}/runs/e1/preprocess/test/a.csv",
            BUILD,
            bucket_policy,
        )
        model = f"{obj}/models/job/output/model.tar.gz"
        approved = {"s3:ExistingObjectTag/mlops-approval": "Approved"}
        read = (layout, execution, "s3:GetObject", model, BUILD, bucket_policy)
        assert allowed(*read, **approved)
        assert not allowed(*read)  # an artifact not (yet) tagged Approved
        assert not allowed(*read, **{"s3:ExistingObjectTag/mlops-approval": "Rejected"})
        # ... and nothing else there: not the data, the code, PR runs, other reports
        for key in (
            "data/d.csv",
            "code/abc/sourcedir.tar.gz",
            "pr/7/runs/x",
            "runs/e1/evaluate/e.json",
        ):
            assert not allowed(
                layout, execution, "s3:GetObject", f"{obj}/{key}", BUILD, bucket_policy
            ), key
        for key in ("models/m/model.tar.gz", "runs/e1/x"):
            assert not allowed(
                layout, deploy, "s3:PutObject", f"{obj}/{key}", BUILD, bucket_policy
            ), key
    # A stage's deploy role reaches only its own account's stacks.
    stack = f"arn:aws:cloudformation:{REGION}:{PROD}:stack/{GROUP}-prod/1"
    assert not allowed(layout, DEPLOY["staging"], "cloudformation:ExecuteChangeSet", stack, PROD)
    assert allowed(layout, DEPLOY["prod"], "cloudformation:ExecuteChangeSet", stack, PROD)
    # An account the build account does not name reads nothing, whatever its own policies.
    stranger = role("444444444444", f"{GROUP}-staging-deploy")
    describe = Authorization("sagemaker:DescribeModelPackage", package)
    assert not resource_policy_allows(group_policy[1], stranger, describe)
    held_out = Authorization("s3:GetObject", f"{obj}/runs/e1/preprocess/test/a.csv")
    assert not resource_policy_allows(bucket_policy[1], stranger, held_out)


# ---- each deploy job, run in its accounts -----------------------------------------------


class Sessions:
    """moto credentials per role (what configure-aws-credentials gives a job), and which
    role each access key belongs to (AssumeRole calls made by the code are added)."""

    def __init__(self):
        self.roles_by_key: dict[str, str] = {}
        self.by_account: dict[str, boto3.Session] = {}

    def assume(self, role_arn: str) -> boto3.Session:
        c = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="github")[
            "Credentials"
        ]
        self.roles_by_key[c["AccessKeyId"]] = role_arn
        session = boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
            region_name=REGION,
        )
        self.by_account.setdefault(account_of_role(role_arn), session)
        return session


def seed(build: boto3.Session, cfg, versions: int) -> dict:
    """The build account's bucket and `versions` Approved versions with their runs' outputs;
    returns the held-out line -> target map."""
    s3, sagemaker = build.client("s3"), build.client("sagemaker")
    s3.create_bucket(Bucket=BUILD_BUCKET)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    width = len(cfg.data.features)
    rows = [[float(i + j) for j in range(width)] + [100_000.0 + 1_000 * i] for i in range(30)]
    lines = [",".join(cfg.columns)] + [",".join(map(repr, row)) for row in rows]
    evaluation = {"regression_metrics": {"mse": {"value": 1.0}, "r2": {"value": 0.95}}}
    for version in range(1, versions + 1):
        run = f"{GROUP}/runs/exec{version}"
        for key, body in (
            (f"{run}/evaluate/evaluation/evaluation.json", json.dumps(evaluation)),
            (f"{run}/preprocess/baseline/baseline.json", "{}"),
            (f"{run}/preprocess/baseline/statistics.json", "{}"),
            (f"{run}/preprocess/baseline/constraints.json", "{}"),
            (f"{run}/preprocess/test/test.csv", "\n".join(lines) + "\n"),
        ):
            s3.put_object(Bucket=BUILD_BUCKET, Key=key, Body=body.encode())
        uri = f"s3://{BUILD_BUCKET}/{run}"
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "xgboost",
                        "ModelDataUrl": f"s3://{BUILD_BUCKET}/{GROUP}/models/job{version}/output/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"{uri}/evaluate/evaluation/evaluation.json",
                    }
                },
                "ModelDataQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"{uri}/preprocess/baseline/baseline.json",
                    }
                },
            },
            CustomerMetadataProperties={
                "held_out_uri": f"{uri}/preprocess/test",
                "run_id": f"exec{version}",
            },
        )
    return {",".join(map(repr, row[:-1])): row[-1] for row in rows}


ARN_ACCOUNT = re.compile(r"^arn:aws:sagemaker:[^:]+:(\d{12}):model-package(?:-group)?/([^/]+)")


def registry_router(sessions: Sessions):
    """Registry calls naming another account's group or package by ARN (moto looks only in
    the caller's account): answered by the owner account's moto backend, by name."""

    def route(client, operation, params, original):
        name = params.get("ModelPackageGroupName") or params.get("ModelPackageName", "")
        match = ARN_ACCOUNT.match(str(name))
        if match is None:  # a name: the caller's own registry
            return original(client, operation, params)
        owner = sessions.by_account[match.group(1)].client("sagemaker")
        if operation == "ListModelPackages":
            params = {**params, "ModelPackageGroupName": match.group(2)}
        return original(owner, operation, params)

    return route


def stage_configs(tmp_path, monkeypatch) -> None:
    """The committed stage configs with the account keys a three-account fork adds."""
    folder = tmp_path / "model_deploy"
    folder.mkdir()
    for stage in ("staging", "prod"):
        config = json.loads((REPO_ROOT / "model_deploy" / f"{stage}-config.json").read_text())
        config["sagemaker"]["account"] = {
            "account_id": STAGE_ACCOUNT[stage],
            "build_account_id": BUILD,
            "region": REGION,
            "role_arn": OPERATOR[stage],
            **(
                {"promotion_read_role_arn": role(STAGING, f"{GROUP}-staging-promotion-read")}
                if stage == "staging"
                else {}
            ),
        }
        (folder / f"{stage}-config.json").write_text(json.dumps(config))
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(folder))


def job_variables(layout: Accounts, stage: str | None, data_file) -> dict[str, str]:
    """Repository variables from the build account's outputs, overridden by the stage's
    GitHub environment variables from its account's outputs (as GitHub does)."""
    values = {"MLOPS_DATA_FILE": str(data_file)}
    sources = [(layout.stacks[BUILD], "Repository")]
    if stage:
        sources.append((layout.stacks[STAGE_ACCOUNT[stage]], "Environment"))
    for stack, kind in sources:
        for name, output in stack.template["Outputs"].items():
            if not stack.conditions.get(output.get("Condition", ""), True):
                continue
            found = re.findall(rf"{kind} variable (\w+)", output.get("Description", ""))
            if name == "DeployRoleArn":
                found = ["AWS_STAGING_ROLE_ARN" if stage == "staging" else "AWS_PROD_ROLE_ARN"]
            for variable in found:
                values[variable] = str(stack.resolve(output["Value"]))
    return values


def use_credentials(monkeypatch, session: boto3.Session) -> None:
    c = session.get_credentials().get_frozen_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", c.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", c.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", c.token)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a job's process starts without one


def object_read(layout: Accounts, account: str, uri: str, tags: dict[str, str]) -> list[Check]:
    """The checks of reading an S3 object (its key's decrypt included) from `account`, with
    the object's tags in the request context (what s3:ExistingObjectTag conditions read)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    context = tuple((f"s3:ExistingObjectTag/{k}", v) for k, v in tags.items())
    found = checks(layout, account, "s3", "GetObject", {"Bucket": bucket, "Key": key})
    return [
        Check(
            Authorization(c.request.action, c.request.resource, c.request.context + context),
            c.owner,
            c.resource_policy,
        )
        if c.request.action == "s3:GetObject"
        else c
        for c in found
    ]


def service_checks(
    layout: Accounts, stage: str, executed: list[tuple[str, dict]], approval: str = "Approved"
) -> list[str]:
    """What services do for us with the deployed parameters, decided like the calls:
    CloudFormation (the stage's role) describes the version and creates the model from it;
    the endpoint's model (the execution role) reads its artifact, tagged with the version's
    `approval` status by the build account; the monitoring job reads the baseline."""
    account = STAGE_ACCOUNT[stage]
    cfn_role, execution = (
        role(account, f"{GROUP}-{stage}-cfn"),
        role(account, f"{GROUP}-{stage}-exec"),
    )
    group_policy = ("model package group policy", layout.group_policy(BUILD, GROUP))
    pairs: list[tuple[str, Check]] = []
    for _, request in executed:
        p = {x["ParameterKey"]: x["ParameterValue"] for x in request["Parameters"]}
        if "ModelPackageArn" in p:
            for action in ("sagemaker:DescribeModelPackage", "sagemaker:CreateModel"):
                check = Check(Authorization(action, p["ModelPackageArn"]), BUILD, group_policy)
                pairs.append((cfn_role, check))
            artifact = (
                f"s3://{BUILD_BUCKET}/{GROUP}/models/job{p['ModelVersion']}/output/model.tar.gz"
            )
            tags = {"mlops-approval": approval}
            pairs += [(execution, c) for c in object_read(layout, account, artifact, tags)]
        for key in ("BaselineStatisticsUri", "BaselineConstraintsUri"):
            if key in p:
                pairs += [(execution, c) for c in object_read(layout, account, p[key], {})]
    assert pairs, "no endpoint or monitoring stack was deployed"
    return [why for who, check in pairs if (why := denial(layout, who, check))]


@pytest.fixture
def three_accounts(aws, monkeypatch, tmp_path, cfg):
    """moto with the build account seeded; calls recorded with their role; fakes for what
    moto cannot do (registry by ARN across accounts, CloudFormation outputs, the endpoint)."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # enter_stage_account sets it
    sessions = Sessions()
    build = sessions.assume(role(BUILD, "BuildRole"))
    targets = seed(build, cfg, versions=2)
    for stage in ("staging", "prod"):
        sessions.assume(DEPLOY[stage])
    calls, fakes = record_role_calls(monkeypatch, sessions.roles_by_key)
    stacks = {account: FakeCloudFormation() for account in (BUILD, STAGING, PROD)}

    def cloudformation(client, operation, params, original):
        key = client._request_signer._credentials.get_frozen_credentials().access_key
        return stacks[account_of_role(sessions.roles_by_key[key])](operation, params)

    def assume_role(client, operation, params, original):
        response = original(client, operation, params)
        sessions.roles_by_key[response["Credentials"]["AccessKeyId"]] = params["RoleArn"]
        return response

    endpoint = fake_endpoint(targets)
    fakes[("cloudformation", "*")] = cloudformation
    fakes[("sts", "AssumeRole")] = assume_role
    fakes[("sagemaker-runtime", "InvokeEndpoint")] = lambda c, o, p, _: endpoint(o, p)
    for operation in ("ListModelPackages", "DescribeModelPackage"):
        fakes[("sagemaker", operation)] = registry_router(sessions)
    stage_configs(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_REGION", REGION)
    return sessions, calls, stacks, fakes


def run_deploy_job(job, layout, sessions, data_csv, monkeypatch, tmp_path):
    stage = "staging" if job == "staging" else "prod"
    use_credentials(monkeypatch, sessions.by_account[STAGE_ACCOUNT[stage]])
    # prod promotes the version staging's job recorded (its `version` output), as in deploy.yml
    needs = {"staging": {"version": "2"}} if job == "production" else None
    variables = job_variables(layout, stage, data_csv)
    results = run_job("deploy", job, variables, monkeypatch, tmp_path, needs)
    assert results and all(code == 0 for _, code in results), results


# The jobs proven in three accounts, and those that run only in the single account yet.
THREE_ACCOUNT_JOBS = {
    ("deploy", "staging"),
    ("deploy", "production"),
    ("pr", "sagemaker"),
    ("build", "pipeline"),
}
SINGLE_ACCOUNT_ONLY = {
    ("batch", "transform"): "reads the prod stack and runs in prod's account: needs a batch "
    "role there and the job's variables from the production environment",
    ("monitor", "monitor"): "reads both stages' stacks and capture with one role: needs a role "
    "per stage account",
}


def test_every_aws_job_is_proven_in_three_accounts_or_said_not_to_be():
    from test_iam_sufficiency import aws_jobs

    assert set(aws_jobs()) == THREE_ACCOUNT_JOBS | set(SINGLE_ACCOUNT_ONLY)


@pytest.mark.parametrize("job", ["staging", "production"])
def test_each_deploy_job_is_allowed_in_its_accounts(
    job, layout, three_accounts, data_csv, home, monkeypatch, tmp_path
):
    sessions, calls, stacks, _ = three_accounts
    stage = "staging" if job == "staging" else "prod"
    if job == "production":  # staging's job deployed version 2, in its account
        name = f"{GROUP}-staging"
        arn = f"arn:aws:sagemaker:{REGION}:{BUILD}:model-package/{GROUP}/2"
        served = {"EndpointName": name, "ModelVersion": "2", "ModelPackageArn": arn}
        parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in served.items()]
        stacks[STAGING].stacks[name] = stacks[STAGING].stack(name, "UPDATE_COMPLETE", parameters)
    run_deploy_job(job, layout, sessions, data_csv, monkeypatch, tmp_path)

    made = {(r, s, o) for r, s, o, _ in calls}
    deploy = DEPLOY[stage]
    # the stage's stacks, in its own account, by its own deploy role
    assert [name for name, _ in stacks[STAGE_ACCOUNT[stage]].executed] == [
        f"{GROUP}-{stage}",
        f"{GROUP}-{stage}-monitoring",
    ]
    assert stacks[BUILD].executed == []
    assert (deploy, "cloudformation", "ExecuteChangeSet") in made
    assert (deploy, "sagemaker-runtime", "InvokeEndpoint") in made
    # the registry and the held-out rows read in the build account
    group_arn = f"arn:aws:sagemaker:{REGION}:{BUILD}:model-package-group/{GROUP}"
    assert any(r == deploy and p.get("ModelPackageGroupName") == group_arn for r, _, _, p in calls)
    assert any(r == deploy and p.get("Bucket") == BUILD_BUCKET for r, s, _, p in calls if s == "s3")
    if job == "production":  # promote read staging through staging's read role
        read = role(STAGING, f"{GROUP}-staging-promotion-read")
        assert (deploy, "sts", "AssumeRole") in made
        assert {
            (read, "cloudformation", "DescribeStacks"),
            (read, "sagemaker-runtime", "InvokeEndpoint"),
        } <= made
    # capture and monitoring reports in the stage's own bucket
    (_, endpoint), _ = stacks[STAGE_ACCOUNT[stage]].executed
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in endpoint["Parameters"]}
    assert parameters["DataCaptureUri"].startswith(f"s3://{GROUP}-{stage}-{STAGE_ACCOUNT[stage]}/")
    assert parameters["ExecutionRoleArn"] == role(STAGE_ACCOUNT[stage], f"{GROUP}-{stage}-exec")

    assert {r for r, *_ in calls} <= {deploy, role(STAGING, f"{GROUP}-staging-promotion-read")}
    missing = denials(layout, calls)
    assert missing == [], f"deploy/{job} lacks:\n" + "\n".join(missing)
    executed = stacks[STAGE_ACCOUNT[stage]].executed
    assert service_checks(layout, stage, executed) == []

    # Controls: the same calls against the layout with one grant removed name that grant.
    # ... and an artifact its version's status tags otherwise: the bucket refuses it by name
    (refused,) = service_checks(layout, stage, executed, approval="PendingManualApproval")
    assert refused.startswith(
        f"the bucket policy of {BUILD_BUCKET} (account {BUILD}) does not allow"
    )
    assert "[s3:ExistingObjectTag/mlops-approval=PendingManualApproval]" in refused
    for logical, policy, sid, named in CONTROLS:
        trimmed = without_statement(layout, logical, policy, sid)
        found = "\n".join(denials(trimmed, calls) + service_checks(trimmed, stage, executed))
        assert named.format(stage=stage, group=GROUP, build=BUILD) in found, (named, found)


def _stage_policy(layout: Accounts, stage: str, logical: str, policy: str) -> dict:
    props = layout.stacks[STAGE_ACCOUNT[stage]].template["Resources"][logical]["Properties"]
    return next(p for p in props["Policies"] if p["PolicyName"] == policy)["PolicyDocument"]


def _drop_action(document: dict, action: str) -> None:
    for statement in document["Statement"]:
        if isinstance(statement, dict) and statement.get("Action") == action:
            statement["Action"] = "sagemaker:None"


# (build-account resource, its policy property, the statement removed, what the failure names)
CONTROLS = [
    (
        "ArtifactBucketPolicy",
        "PolicyDocument",
        "StageDeployRolesReadRuns",
        "the bucket policy of {group}-artifacts-{build} (account {build}) does not allow "
        "arn:aws:iam::",
    ),
    (
        "ArtifactKey",
        "KeyPolicy",
        "StageReadersDecryptThroughS3",
        "the key policy of arn:aws:kms:us-east-1:{build}:key/artifactkey-0a1b (account {build}) "
        "does not allow",
    ),
    (
        "ModelPackageGroup",
        "ModelPackageGroupPolicy",
        "StageDeployRolesReadVersions",
        "the model package group policy (account {build}) does not allow",
    ),
    (
        "ModelPackageGroup",
        "ModelPackageGroupPolicy",
        "StageCloudFormationCreatesModels",
        "-{stage}-cfn sagemaker:CreateModel on arn:aws:sagemaker:",
    ),
    (
        "ArtifactBucketPolicy",
        "PolicyDocument",
        "StageExecutionRolesReadApprovedModels",
        "-{stage}-exec s3:GetObject on arn:aws:s3:::{group}-artifacts-{build}/{group}/models/",
    ),
]


def without_statement(layout: Accounts, logical: str, policy: str, sid: str) -> Accounts:
    trimmed = copy.deepcopy(layout)
    document = trimmed.stacks[BUILD].template["Resources"][logical]["Properties"][policy]
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
    return trimmed


def test_a_missing_identity_grant_is_named_with_its_role(layout):
    """A control on the identity side: the staging deploy role without DescribeModelPackage."""
    trimmed = copy.deepcopy(layout)
    _drop_action(
        _stage_policy(trimmed, "staging", "DeployRole", "build-account-reads"),
        "sagemaker:DescribeModelPackage",
    )
    package = f"arn:aws:sagemaker:{REGION}:{BUILD}:model-package/{GROUP}/2"
    calls = [
        (DEPLOY["staging"], "sagemaker", "DescribeModelPackage", {"ModelPackageName": package})
    ]
    assert denials(layout, calls) == []
    (missing,) = denials(trimmed, calls)
    assert missing.startswith(
        f"{DEPLOY['staging']}'s identity policy does not allow sagemaker:DescribeModelPackage on {package}"
    )


@pytest.mark.parametrize(
    ("workflow", "job_id", "job_role"),
    [("pr", "sagemaker", "PrRole"), ("build", "pipeline", "BuildRole")],
)
def test_the_build_accounts_jobs_are_allowed_there(
    workflow, job_id, job_role, layout, three_accounts, cfg, data_csv, home, monkeypatch, tmp_path
):
    """The PR and main pipelines run in the build account; the prod stack is not there, so
    the champion is the newest Approved version (docs/multi-account.md)."""
    from test_iam_sufficiency import fake_steps

    sessions, calls, _, fakes = three_accounts
    job_role = role(BUILD, job_role)
    use_credentials(monkeypatch, sessions.assume(job_role))
    steps = fake_steps(GROUP, registers=workflow == "build")
    fakes[("sagemaker", "ListPipelineExecutionSteps")] = lambda c, o, p, _: steps(o, p)
    calls.clear()
    results = run_job(
        workflow, job_id, job_variables(layout, None, data_csv), monkeypatch, tmp_path
    )
    assert results and all(code == 0 for _, code in results), results

    pipeline = f"{GROUP}-pr-7" if workflow == "pr" else f"{GROUP}-pipeline"
    assert any(
        r == job_role and o == "StartPipelineExecution" and p["PipelineName"] == pipeline
        for r, _, o, p in calls
    )
    assert any(
        r == job_role and p.get("Bucket") == BUILD_BUCKET for r, s, _, p in calls if s == "s3"
    )
    # every call is the job role's (the SDK's role probe, tolerated, uses a session the
    # renderer caches per process: an earlier test's credentials)
    assert {r for r, s, o, _ in calls if (s, o) not in TOLERATED} == {job_role}
    missing = denials(layout, calls)
    assert missing == [], f"{workflow}/{job_id} lacks:\n" + "\n".join(missing)
    # a control: without the key grant in its identity policy, the uploads are refused by name
    trimmed = copy.deepcopy(layout)
    policies = trimmed.stacks[BUILD].template["Resources"][job_role.rsplit("/", 1)[1]][
        "Properties"
    ]["Policies"]
    for document in (p["PolicyDocument"] for p in policies):
        document["Statement"] = [
            s for s in document["Statement"] if "kms:GenerateDataKey" not in s["Action"]
        ]
    assert any(
        m.startswith(f"{job_role}'s identity policy does not allow kms:GenerateDataKey")
        for m in denials(trimmed, calls)
    )


# ---- mlops.sagemaker.accounts: sessions, promotion reads, read-only checks -------------------


def stage_account(**fields):
    from mlops.core.stages import StageAccount

    return StageAccount(account_id=STAGING, build_account_id=BUILD, region=REGION, **fields)


def test_the_stage_session_is_the_stage_accounts(three_accounts):
    from mlops.core.errors import MlopsError
    from mlops.sagemaker.accounts import stage_session

    sessions, *_ = three_accounts
    in_staging = sessions.by_account[STAGING]
    # the GitHub job's credentials are the stage account's already: used as they are
    assert stage_session(stage_account(), "staging", in_staging) is in_staging
    # another account's credentials: role_arn is assumed
    assumed = stage_session(
        stage_account(role_arn=OPERATOR["staging"]), "staging", sessions.by_account[BUILD]
    )
    assert assumed.client("sts").get_caller_identity()["Account"] == STAGING
    with pytest.raises(
        MlopsError,
        match=f"account {BUILD}'s, but staging-config.json puts staging in account {STAGING}",
    ):
        stage_session(stage_account(), "staging", sessions.by_account[BUILD])
    with pytest.raises(MlopsError, match=f"is in account {PROD}, not {STAGING}"):
        stage_session(
            stage_account(role_arn=OPERATOR["prod"]), "staging", sessions.by_account[BUILD]
        )


def test_promoting_across_accounts_needs_staging_read_role(three_accounts, monkeypatch):
    from mlops.core.errors import MlopsError
    from mlops.core.stages import load_stage_config
    from mlops.sagemaker.accounts import reading_stage

    sessions, *_ = three_accounts
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", sessions.by_account[PROD])
    staging = load_stage_config("staging")
    with reading_stage(staging):
        assert (
            boto3.client("sts")
            .get_caller_identity()["Arn"]
            .startswith(f"arn:aws:sts::{STAGING}:assumed-role/{GROUP}-staging-promotion-read/")
        )
    assert boto3.DEFAULT_SESSION is sessions.by_account[PROD]
    account = staging.sagemaker.account.model_copy(update={"promotion_read_role_arn": None})
    bare = staging.model_copy(
        update={"sagemaker": staging.sagemaker.model_copy(update={"account": account})}
    )
    needs = re.escape("set sagemaker.account.promotion_read_role_arn in staging-config.json")
    with pytest.raises(MlopsError, match=needs), reading_stage(bare):
        pass


def test_account_checks_read_the_wiring_and_name_the_fix(layout, three_accounts, data_csv):
    from mlops.core.stages import load_stage_config
    from mlops.sagemaker.accounts import account_checks

    sessions, calls, *_ = three_accounts
    staging = load_stage_config("staging")
    env = job_variables(layout, "staging", data_csv)
    results = account_checks(staging, GROUP, sessions.by_account[STAGING], env)
    assert [(name, ok) for name, ok, _ in results] == [
        (f"staging: $MLOPS_SAGEMAKER_ROLE_ARN is a role of account {STAGING}", True),
        (f"staging: $MLOPS_CFN_ROLE_ARN is a role of account {STAGING}", True),
        (f"staging: credentials reach account {STAGING}", True),
        (
            f"staging: lists Approved versions of arn:aws:sagemaker:{REGION}:{BUILD}:model-package-group/{GROUP}",
            True,
        ),
        ("staging: reads the held-out rows of version 2", True),
    ]
    assert {(s, o) for _, s, o, _ in calls} <= {
        ("sts", "GetCallerIdentity"), ("sagemaker", "ListModelPackages"),
        ("sagemaker", "DescribeModelPackage"), ("s3", "GetObject"), ("s3", "ListObjectsV2"),
    }  # fmt: skip
    assert denials(layout, calls) == []  # what the deploy role may do, and only reads
    # the build account's execution role left in the repository variable: named, with the fix
    env["MLOPS_SAGEMAKER_ROLE_ARN"] = str(layout.stacks[BUILD].ref("SageMakerExecutionRole", "Arn"))
    _, ok, fix = account_checks(staging, GROUP, sessions.by_account[STAGING], env)[0]
    assert not ok and fix.startswith(f"it is arn:aws:iam::{BUILD}:role/{GROUP}-build-exec: set it")
    # credentials of an account the config cannot reach from: stops there, says how
    results = account_checks(stage_account_config(staging), GROUP, sessions.by_account[BUILD], env)
    assert results[-1][:2] == (f"staging: credentials reach account {STAGING}", False)
    assert "set sagemaker.account.role_arn" in results[-1][2]


def stage_account_config(config):
    """`config` whose account names no role to assume."""
    account = config.sagemaker.account.model_copy(update={"role_arn": None})
    return config.model_copy(
        update={"sagemaker": config.sagemaker.model_copy(update={"account": account})}
    )


def test_a_stage_without_an_account_is_the_single_account_layout(monkeypatch):
    from mlops.core.errors import UsageError
    from mlops.core.stages import load_stage_config, parse_stage_config
    from mlops.sagemaker.accounts import enter_stage_account, stage_account_checks

    monkeypatch.delenv("MLOPS_DEPLOY_DIR", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    committed = load_stage_config("staging")  # the committed config: no account
    assert committed.sagemaker.account is None
    assert enter_stage_account(committed, GROUP) == GROUP and boto3.DEFAULT_SESSION is None
    assert stage_account_checks(GROUP) == [
        ("staging: single account (bootstrap.yml)", True, ""),
        ("prod: single account (bootstrap.yml)", True, ""),
    ]
    raw = json.loads((REPO_ROOT / "model_deploy" / "staging-config.json").read_text())
    raw["sagemaker"]["account"] = {"account_id": "2222", "build_account_id": BUILD}
    with pytest.raises(UsageError, match=r"sagemaker\.account\.account_id"):
        parse_stage_config(raw)


def test_the_build_account_tags_each_artifact_with_its_versions_status(aws, monkeypatch):
    """The template's approval-tag function, run under moto: approving a version tags its
    model.tar.gz Approved (what the bucket lets the stage accounts read); rejecting it
    afterwards takes that back."""
    resources = load_cfn_yaml((ACCOUNTS_DIR / "build-account.yml").read_text())["Resources"]
    namespace: dict = {}
    exec(resources["ApprovalTagFunction"]["Properties"]["Code"]["ZipFile"], namespace)
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUILD_BUCKET)
    key = f"{GROUP}/models/job1/output/model.tar.gz"
    s3.put_object(Bucket=BUILD_BUCKET, Key=key, Body=b"model")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost", "ModelDataUrl": f"s3://{BUILD_BUCKET}/{key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]

    def tag_after(status: str) -> list[dict]:
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
        # the event may say something older: the function reads the status itself
        namespace["handler"]({"detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "x"}}, None)
        return s3.get_object_tagging(Bucket=BUILD_BUCKET, Key=key)["TagSet"]

    assert tag_after("Approved") == [{"Key": "mlops-approval", "Value": "Approved"}]
    assert tag_after("Rejected") == [{"Key": "mlops-approval", "Value": "Rejected"}]


def test_stopping_a_stage_deletes_its_stacks_in_its_account(three_accounts, home, monkeypatch):
    """From a laptop with the build account's credentials: the config's role_arn (an
    operator's role in staging) is assumed and the stacks deleted there (not "nothing is
    deployed" while the endpoint bills on)."""
    from mlops.cli import run

    sessions, calls, stacks, _ = three_accounts
    name = f"{GROUP}-staging"
    served = [{"ParameterKey": "EndpointName", "ParameterValue": name},
              {"ParameterKey": "ModelVersion", "ParameterValue": "2"}]  # fmt: skip
    stacks[STAGING].stacks[name] = stacks[STAGING].stack(name, "UPDATE_COMPLETE", served)
    use_credentials(monkeypatch, sessions.by_account[BUILD])
    assert run(["endpoint", "stop", "--stage", "staging", "--backend", "sagemaker", "--yes"]) == 0
    assert stacks[STAGING].deleted == [name]
    assert (OPERATOR["staging"], "cloudformation", "DeleteStack") in {
        (r, s, o) for r, s, o, _ in calls
    }


def test_status_reads_each_stage_in_its_account(three_accounts, home, monkeypatch, capsys):
    """`mlops endpoint status --backend sagemaker` (both stages) from the build account."""
    from mlops.cli import run

    sessions, _, stacks, _ = three_accounts
    for stage, version in (("staging", "2"), ("prod", "1")):
        name = f"{GROUP}-{stage}"
        served = [{"ParameterKey": "EndpointName", "ParameterValue": name},
                  {"ParameterKey": "ModelVersion", "ParameterValue": version}]  # fmt: skip
        stacks[STAGE_ACCOUNT[stage]].stacks[name] = stacks[STAGE_ACCOUNT[stage]].stack(
            name, "UPDATE_COMPLETE", served
        )
    use_credentials(monkeypatch, sessions.by_account[BUILD])
    capsys.readouterr()
    assert run(["endpoint", "status", "--backend", "sagemaker", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {s: (r["version"], r["approval_status"]) for s, r in report.items()} == {
        "staging": (2, "Approved"),
        "prod": (1, "Approved"),
    }


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_each_stage_accounts_cloudformation_role_covers_its_stacks(stage):
    """The single-account check of the CloudFormation role against the registry schemas'
    handler permissions (test_iam_sufficiency), on the stage account's role. It names
    resources in one account, so the build account is set to the same id here (the
    cross-account package reads are checked in each deploy job above)."""
    from _iam import ACCOUNT
    from test_iam_sufficiency import cloudformation_role_gaps

    stack = stage_stack(stage, ACCOUNT, "")
    stack.parameters["BuildAccountId"] = ACCOUNT
    resources = stack.template["Resources"]
    resources["SageMakerExecutionRole"] = resources["ExecutionRole"]  # the name the check uses
    other = f"{GROUP}-{'prod' if stage == 'staging' else 'staging'}"
    gaps = [g for g in cloudformation_role_gaps(stack) if other not in g]
    assert gaps == []
    assert any(other in g for g in cloudformation_role_gaps(stack))  # the other stage: refused
    # a control: without its scaling statement, the role's gap is named
    statements = resources["CloudFormationRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    statements["Statement"] = [
        s
        for s in statements["Statement"]
        if "application-autoscaling:PutScalingPolicy" not in s["Action"]
    ]
    gaps = "\n".join(g for g in cloudformation_role_gaps(stack) if other not in g)
    assert "CloudFormationRole lacks application-autoscaling:PutScalingPolicy on arn:aws:" in gaps


def test_a_deploy_refuses_another_accounts_roles_before_any_call(tmp_path, monkeypatch):
    """The build account's execution role left in $MLOPS_SAGEMAKER_ROLE_ARN for a stage job
    (e.g. an environment variable not set): one line naming the variable and the fix, at
    once, instead of CloudFormation refusing the PassRole minutes later."""
    from mlops.core.errors import MlopsError
    from mlops.core.stages import load_stage_config
    from mlops.sagemaker.accounts import enter_stage_account

    stage_configs(tmp_path, monkeypatch)
    monkeypatch.setenv("MLOPS_SAGEMAKER_ROLE_ARN", f"arn:aws:iam::{BUILD}:role/{GROUP}-build-exec")
    monkeypatch.setenv("MLOPS_CFN_ROLE_ARN", f"arn:aws:iam::{STAGING}:role/{GROUP}-staging-cfn")
    staging = load_stage_config("staging")
    expected = (
        f"staging: $MLOPS_SAGEMAKER_ROLE_ARN must be a role of account {STAGING}; "
        f"it is arn:aws:iam::{BUILD}:role/{GROUP}-build-exec: set it in the GitHub environment"
    )
    with pytest.raises(MlopsError, match=re.escape(expected)):
        enter_stage_account(staging, GROUP, passes_roles=True)

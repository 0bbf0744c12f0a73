"""`mlops doctor --backend sagemaker`: the settings outside the repository, read-only. AWS is
moto (the bootstrap stack's outputs, its roles with the trust the real template renders, the
bucket), GitHub a table of REST answers in the shapes GitHub documents."""

from __future__ import annotations

import json

import boto3
import pytest
from _iam import Stack
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.paths import REPO_ROOT
from mlops.sagemaker import doctor

REPO, BRANCH, BUCKET, STACK = "octo/models", "main", "doctor-artifacts", "g-bootstrap"
ROLES = {  # bootstrap output -> the role resource
    "PrRoleArn": "PrRole",
    "BuildRoleArn": "BuildRole",
    "BatchRoleArn": "BatchRole",
    "MonitorRoleArn": "MonitorRole",
    "StagingDeployRoleArn": "StagingDeployRole",
    "ProductionDeployRoleArn": "ProductionDeployRole",
}


def github_settings() -> dict:
    """A repository set up as docs/aws.md says."""
    env = "/repos/octo/models/environments"
    branch_rule = {"protected_branches": False, "custom_branch_policies": True}
    return {
        "/repos/octo/models/actions/oidc/customization/sub": {
            "use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref"]},
        f"{env}/staging": {"deployment_branch_policy": branch_rule, "protection_rules": []},
        f"{env}/production": {"deployment_branch_policy": branch_rule, "protection_rules": [
            {"type": "branch_policy"},
            {"type": "required_reviewers", "reviewers": [{"type": "User", "reviewer": {}}]}]},
        f"{env}/staging/deployment-branch-policies": {"branch_policies": [{"name": "main"}]},
        f"{env}/production/deployment-branch-policies": {"branch_policies": [{"name": "main"}]},
    }  # fmt: skip


def trust_documents() -> dict[str, dict]:
    """Each job role's trust policy as the real bootstrap template renders it."""
    template = load_cfn_yaml((REPO_ROOT / "model_deploy" / "bootstrap.yml").read_text())
    stack = Stack(template, {"GitHubOrg": "octo", "GitHubRepo": "models",
                             "DefaultBranch": BRANCH}, {"CreateOIDCProvider": True})  # fmt: skip
    return {
        role: stack.resolve(template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"])
        for role in ROLES.values()
    }


@pytest.fixture
def account(aws):
    """The bootstrap stack's outputs, its job roles and a private bucket, in moto."""
    iam, s3 = boto3.client("iam"), boto3.client("s3")
    outputs = {}
    for output, (role, document) in zip(ROLES, trust_documents().items(), strict=True):
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(document))
        outputs[output] = arn["Role"]["Arn"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        k: True for k in doctor.PUBLIC_ACCESS_BLOCK})  # fmt: skip
    outputs["ArtifactBucketName"] = BUCKET
    template = {
        "Parameters": {"DefaultBranch": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},  # moto needs one resource
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=STACK, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "DefaultBranch", "ParameterValue": BRANCH}])  # fmt: skip
    return outputs


def context(settings: dict) -> doctor.DoctorContext:
    return doctor.DoctorContext(REPO, settings.get, boto3.Session(), STACK)


def test_a_repository_set_up_as_documented_passes_every_check(account):
    checks = doctor.run_checks(context(github_settings()))
    assert [c for c in checks if not c.ok] == []
    names = [c.name for c in checks]
    assert "OIDC subject template" in names and f"bucket {BUCKET}: public access block" in names
    assert sum(n.startswith("role ") for n in names) == len(ROLES)
    assert "environment production: required reviewers" in names


def test_each_setting_that_is_off_fails_with_its_fix(account):
    settings = github_settings()
    env = "/repos/octo/models/environments"
    settings["/repos/octo/models/actions/oidc/customization/sub"] = {"use_default": True}
    settings[f"{env}/production"]["protection_rules"] = []
    settings[f"{env}/staging"]["deployment_branch_policy"] = None  # any branch may deploy
    iam = boto3.client("iam")
    old = trust_documents()["MonitorRole"]  # the old default subject: any main-branch job
    old["Statement"][0]["Condition"] = {"StringEquals": {
        doctor.AUD: "sts.amazonaws.com", doctor.SUB: "repo:octo/models:ref:refs/heads/main"}}  # fmt: skip
    iam.update_assume_role_policy(RoleName="MonitorRole", PolicyDocument=json.dumps(old))
    boto3.client("s3").delete_public_access_block(Bucket=BUCKET)

    failed = {c.name: c for c in doctor.run_checks(context(settings)) if not c.ok}
    assert set(failed) == {
        "OIDC subject template",
        "environment production: required reviewers",
        "environment staging: deployment branches",
        "role MonitorRole: trust",
        f"bucket {BUCKET}: public access block",
    }
    assert "include_claim_keys" in failed["OIDC subject template"].fix
    assert failed["role MonitorRole: trust"].detail == "trusts repo:octo/models:ref:refs/heads/main"
    assert "put-public-access-block" in failed[f"bucket {BUCKET}: public access block"].fix
    assert all(c.fix for c in failed.values())
    text = doctor.format_check(failed["environment staging: deployment branches"])
    assert text.startswith("FAIL  environment staging: deployment branches: any branch")


def test_the_command_prints_each_check_and_exits_1_on_a_failure(account, monkeypatch, capsys):
    from mlops.cli import run

    settings = github_settings()
    settings["/repos/octo/models/actions/oidc/customization/sub"] = {"use_default": True}
    monkeypatch.setattr(doctor, "github_api", lambda token: settings.get)
    monkeypatch.setenv("GH_TOKEN", "t")
    code = run(["doctor", "--backend", "sagemaker", "--repo", REPO, "--stack", STACK])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    # the pass lines, one FAIL line and its fix line, the summary
    assert out[-1] == f"{len(out) - 3} passed, 1 failed"
    assert sum(line.startswith("pass  ") for line in out) == len(out) - 3
    # each stage's account wiring is checked too (the fixture's stages: one account)
    stage_lines = [line for line in out if "single account" in line]
    assert [line.split(":")[0] for line in stage_lines] == ["pass  staging", "pass  prod"]
    assert [line for line in out if line.startswith("FAIL")] == [
        "FAIL  OIDC subject template: GitHub's default (repo, context); the roles trust "
        "repo, context, job_workflow_ref"
    ]
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert run(["doctor", "--backend", "sagemaker", "--repo", REPO]) == 2


def test_more_checks_plug_in_and_may_give_tuples(account):
    """Another module's checks (e.g. cross-account ones giving (name, ok, fix)) run beside."""

    def extra(ctx):
        return [("stage account reachable", False, "assume the stage's role"), ("other", True, "")]

    checks = doctor.run_checks(context(github_settings()), [*doctor.CHECKS, extra])
    failed = [c for c in checks if not c.ok]
    assert failed == [
        doctor.Check("stage account reachable", False, "failed", "assume the stage's role")
    ]
    assert checks[-1] == doctor.Check("other", True, "ok", "")

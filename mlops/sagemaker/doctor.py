"""`mlops doctor --backend sagemaker`: read-only checks of what the repository cannot hold
and the trust model relies on: the GitHub environments' branch rules and reviewers, the
repository's OIDC subject template, each job role's trust (the bootstrap stack's roles, read
with IAM), and the artifact bucket's public-access block. Each check prints pass or fail,
what it saw and the fix.

A check is a function `(DoctorContext) -> list[Check]` in CHECKS; another module adds its own
(for example cross-account checks) by passing `[*CHECKS, *more]` to `run_checks`; a check may
also give `(name, ok, fix)` tuples.

Nothing here writes: GitHub GETs, cloudformation:DescribeStacks, iam:GetRole,
s3:GetPublicAccessBlock.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.core.errors import MlopsError, UsageError
from mlops.sagemaker.registry import aws_errors

# The repository's OIDC subject template the job roles' trust is written for (bootstrap
# output OidcSubjectClaimKeys).
CLAIM_KEYS = ("repo", "context", "job_workflow_ref")
SET_TEMPLATE = (
    "gh api -X PUT repos/{repo}/actions/oidc/customization/sub --input - <<< "
    '\'{{"use_default": false, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}}\''
)
# Each job role (its bootstrap output) and the subject it must trust: (context, workflow, ref);
# `{branch}` is the default branch, `*` the PR number.
ROLE_SUBJECTS = {
    "PrRoleArn": ("pull_request", "pr.yml", "refs/pull/*/merge"),
    "BuildRoleArn": ("ref:refs/heads/{branch}", "build.yml", "refs/heads/{branch}"),
    "BatchRoleArn": ("ref:refs/heads/{branch}", "batch.yml", "refs/heads/{branch}"),
    "MonitorRoleArn": ("ref:refs/heads/{branch}", "monitor.yml", "refs/heads/{branch}"),
    "StagingDeployRoleArn": ("environment:staging", "deploy.yml", "refs/heads/{branch}"),
    "ProductionDeployRoleArn": ("environment:production", "deploy.yml", "refs/heads/{branch}"),
}
# Environments deploy.yml's jobs run in, and whether a reviewer must approve.
ENVIRONMENTS = {"staging": False, "production": True}
SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"
PUBLIC_ACCESS_BLOCK = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
GITHUB_API = "https://api.github.com"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


GitHubGet = Callable[[str], Any]  # a REST path -> its JSON; None for 404


@dataclass
class DoctorContext:
    """What the checks read: the repository (owner/name), GitHub, AWS, the bootstrap stack."""

    repo: str
    github: GitHubGet
    aws: Any  # a boto3 Session
    stack: str
    _stack: dict | None = field(default=None, repr=False)

    def bootstrap(self) -> dict:
        """The bootstrap stack's parameters and outputs, read once."""
        if self._stack is None:
            client = self.aws.client("cloudformation")
            with aws_errors(f"cannot read the bootstrap stack {self.stack}"):
                (stack,) = client.describe_stacks(StackName=self.stack)["Stacks"]
            self._stack = {
                "parameters": {
                    p["ParameterKey"]: p.get("ParameterValue", "")
                    for p in stack.get("Parameters", [])
                },
                "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            }
        return self._stack


def github_api(token: str, base: str = GITHUB_API) -> GitHubGet:
    """GET a GitHub REST path with the token (three read-only calls: urllib rather than a
    GitHub client library the project would otherwise not need)."""

    def get(path: str) -> Any:
        request = urllib.request.Request(
            f"{base}{path}",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise MlopsError(f"GitHub GET {path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise MlopsError(f"GitHub GET {path}: {exc}") from None

    return get


def subject(repo: str, context: str, workflow: str, ref: str) -> str:
    """The `sub` GitHub issues under the template repo, context, job_workflow_ref."""
    return f"repo:{repo}:{context}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}"


def expected_subjects(repo: str, branch: str) -> dict[str, str]:
    return {
        output: subject(repo, context.format(branch=branch), workflow, ref.format(branch=branch))
        for output, (context, workflow, ref) in ROLE_SUBJECTS.items()
    }


# ---- the checks ----------------------------------------------------------------------------


def check_oidc_template(ctx: DoctorContext) -> list[Check]:
    found = ctx.github(f"/repos/{ctx.repo}/actions/oidc/customization/sub") or {}
    keys = tuple(found.get("include_claim_keys") or ())
    ok = not found.get("use_default", True) and keys == CLAIM_KEYS
    seen = "GitHub's default (repo, context)" if found.get("use_default", True) else ", ".join(keys)
    return [
        Check(
            "OIDC subject template",
            ok,
            f"{seen}; the roles trust {', '.join(CLAIM_KEYS)}",
            "" if ok else SET_TEMPLATE.format(repo=ctx.repo),
        )
    ]


def check_environments(ctx: DoctorContext) -> list[Check]:
    branch = ctx.bootstrap()["parameters"].get("DefaultBranch", "main")
    settings = f"https://github.com/{ctx.repo}/settings/environments"
    checks = []
    for name, needs_reviewer in ENVIRONMENTS.items():
        env = ctx.github(f"/repos/{ctx.repo}/environments/{name}")
        if env is None:
            checks.append(
                Check(f"environment {name}", False, "missing", f"create it in {settings}")
            )
            continue
        policy = env.get("deployment_branch_policy") or {}
        branches: list[str] = []
        if policy.get("custom_branch_policies"):
            listed = (
                ctx.github(f"/repos/{ctx.repo}/environments/{name}/deployment-branch-policies")
                or {}
            )
            branches = [p["name"] for p in listed.get("branch_policies", [])]
        # only the default branch: "protected branches" may include others
        limited = bool(policy.get("custom_branch_policies")) and branches == [branch]
        rule = (
            "any branch"
            if not policy
            else "protected branches"
            if policy.get("protected_branches")
            else ", ".join(branches) or "no branch"
        )
        checks.append(
            Check(
                f"environment {name}: deployment branches",
                bool(limited),
                f"{rule}; wanted {branch} only",
                ""
                if limited
                else f"{settings}: Deployment branches -> selected branches -> {branch}",
            )
        )
        if needs_reviewer:
            rules = env.get("protection_rules") or []
            reviewers = [
                r
                for rule in rules
                if rule.get("type") == "required_reviewers"
                for r in rule.get("reviewers", [])
            ]
            checks.append(
                Check(
                    f"environment {name}: required reviewers",
                    bool(reviewers),
                    f"{len(reviewers)} reviewer(s)",
                    "" if reviewers else f"{settings}: Required reviewers",
                )
            )
    return checks


def role_subjects(document: dict) -> tuple[set[str], bool]:
    """The subjects a trust policy accepts, and whether every statement pins the audience."""
    subjects: set[str] = set()
    audience = True
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        condition = statement.get("Condition", {})
        found = [
            v
            for op in ("StringEquals", "StringLike")
            for k, v in condition.get(op, {}).items()
            if k == SUB
        ]
        if not found:
            subjects.add("*")  # no subject condition: any repository's token
        for value in found:
            subjects.update(value if isinstance(value, list) else [value])
        audience &= condition.get("StringEquals", {}).get(AUD) == "sts.amazonaws.com"
    return subjects, audience


def check_role_trust(ctx: DoctorContext) -> list[Check]:
    stack = ctx.bootstrap()
    branch = stack["parameters"].get("DefaultBranch", "main")
    iam = ctx.aws.client("iam")
    checks = []
    for output, wanted in expected_subjects(ctx.repo, branch).items():
        arn = stack["outputs"].get(output)
        name = output.removesuffix("Arn")
        if not arn:
            checks.append(
                Check(
                    f"role {name}: trust",
                    False,
                    f"no output {output}",
                    f"update the stack {ctx.stack} from model_deploy/bootstrap.yml",
                )
            )
            continue
        with aws_errors(f"cannot read role {arn}"):
            role = iam.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
        document = role["AssumeRolePolicyDocument"]
        if isinstance(document, str):  # IAM returns it URL-encoded
            document = json.loads(urllib.parse.unquote(document))
        subjects, audience = role_subjects(document)
        ok = subjects == {wanted} and audience
        checks.append(
            Check(
                f"role {name}: trust",
                ok,
                f"trusts {', '.join(sorted(subjects))}",
                ""
                if ok
                else f"deploy model_deploy/bootstrap.yml to the stack "
                f"{ctx.stack} (it trusts {wanted})",
            )
        )
    return checks


def check_bucket(ctx: DoctorContext) -> list[Check]:
    bucket = ctx.bootstrap()["outputs"].get("ArtifactBucketName", "")
    s3 = ctx.aws.client("s3")
    from botocore.exceptions import ClientError

    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchPublicAccessBlockConfiguration":
            raise MlopsError(f"cannot read bucket {bucket}: {exc}") from None
        block = {}
    off = [k for k in PUBLIC_ACCESS_BLOCK if not block.get(k)]
    return [
        Check(
            f"bucket {bucket}: public access block",
            not off,
            "all four on" if not off else f"off: {', '.join(off)}",
            ""
            if not off
            else f"aws s3api put-public-access-block --bucket {bucket} "
            "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
            "BlockPublicPolicy=true,RestrictPublicBuckets=true",
        )
    ]


CHECKS: list[Callable[[DoctorContext], list[Check]]] = [
    check_oidc_template,
    check_environments,
    check_role_trust,
    check_bucket,
]


def as_check(result: Check | tuple) -> Check:
    """A check's result: a Check, or a (name, ok, fix) tuple as mlops.sagemaker.accounts'
    checks give (the fix may carry what was seen)."""
    if isinstance(result, Check):
        return result
    name, ok, fix = result
    return Check(name, bool(ok), "ok" if ok else "failed", "" if ok else fix)


def run_checks(ctx: DoctorContext, checks=None) -> list[Check]:
    return [as_check(c) for check in (CHECKS if checks is None else checks) for c in check(ctx)]


def format_check(check: Check) -> str:
    line = f"{'pass' if check.ok else 'FAIL'}  {check.name}: {check.detail}"
    return line + (f"\n      fix: {check.fix}" if check.fix else "")


def context_from(repo: str | None, stack: str | None, region: str | None, group: str):
    """The doctor's context from flags and the environment ($GITHUB_REPOSITORY, $GH_TOKEN or
    $GITHUB_TOKEN, the AWS credentials of the caller)."""
    import boto3

    repo = repo or os.environ.get("GITHUB_REPOSITORY", "")
    if repo.count("/") != 1:
        raise UsageError("doctor needs the repository: --repo owner/name or $GITHUB_REPOSITORY")
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not token:
        raise UsageError(
            "doctor reads GitHub settings: set $GH_TOKEN (a token that may read the "
            "repository's administration settings, e.g. `gh auth token`)"
        )
    return DoctorContext(
        repo=repo,
        github=github_api(token),
        aws=boto3.Session(region_name=region) if region else boto3.Session(),
        stack=stack or f"{group}-bootstrap",
    )

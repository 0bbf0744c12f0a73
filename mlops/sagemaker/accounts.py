"""Stages in their own AWS accounts (model_deploy/accounts/, docs/multi-account.md).

A stage config that names an account (`sagemaker.account` in `<stage>-config.json`)
puts the stage's stacks, endpoint and capture in that account and reads the registry
of the build account through its ARN. Without one, nothing here changes anything: the
single account of bootstrap.yml.

- `enter_stage_account`: for a command about one stage, the stage's account becomes
  the default of every boto3 client of the process (the current credentials when they
  are that account's already, as in the GitHub job that assumed the deploy role by OIDC;
  else `role_arn` assumed), and the registry is named by its ARN in the build account.
- `reading_stage`: within it, clients are in another stage's account through its
  read-only role (prod's job reading what staging serves, to promote it).
- `account_checks`: read-only checks of the wiring, as (name, ok, fix) results.

Switching boto3's default session (instead of passing a session to each client) keeps
the deploy code unchanged: every client it creates is then in the stage's account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops.core.errors import MlopsError
from mlops.core.stages import STAGES, StageAccount, StageConfig, load_stage_config
from mlops.sagemaker.registry import aws_errors

CheckResult = tuple[str, bool, str]  # (what was checked, ok, how to fix it)
ROLE_ENVS = ("MLOPS_SAGEMAKER_ROLE_ARN", "MLOPS_CFN_ROLE_ARN")  # must be the stage's own


def group_arn(account: StageAccount, group: str, region: str) -> str:
    """The model package group in the build account (cross-account calls need its ARN)."""
    return f"arn:aws:sagemaker:{region}:{account.build_account_id}:model-package-group/{group}"


def _caller(session: Any) -> dict:
    with aws_errors("cannot tell whose AWS credentials these are (sts get-caller-identity)"):
        return session.client("sts").get_caller_identity()


def _assume(session: Any, role_arn: str, name: str, region: str | None) -> Any:
    import boto3

    with aws_errors(f"cannot assume {role_arn}"):
        credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)
    c = credentials["Credentials"]
    return boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=region or session.region_name,
    )


def stage_session(account: StageAccount, stage: str, base: Any = None) -> Any:
    """A boto3 session in the stage's account: `base` (default: the environment's
    credentials) if it is in that account already, else `role_arn` assumed from it."""
    import boto3

    base = base or boto3.Session(region_name=account.region)
    found = _caller(base)["Account"]
    if found == account.account_id:
        if account.region and base.region_name != account.region:
            frozen = base.get_credentials().get_frozen_credentials()
            return boto3.Session(
                aws_access_key_id=frozen.access_key,
                aws_secret_access_key=frozen.secret_key,
                aws_session_token=frozen.token,
                region_name=account.region,
            )
        return base
    if not account.role_arn:
        raise MlopsError(
            f"the AWS credentials are account {found}'s, but {stage}-config.json puts {stage} "
            f"in account {account.account_id}: use that account's credentials or set "
            "sagemaker.account.role_arn to a role to assume there"
        )
    session = _assume(base, account.role_arn, f"mlops-{stage}", account.region)
    reached = _caller(session)["Account"]
    if reached != account.account_id:
        raise MlopsError(
            f"{account.role_arn} is in account {reached}, not {account.account_id} as "
            f"{stage}-config.json says"
        )
    return session


def enter_stage_account(stage_config: StageConfig, group: str, passes_roles: bool = False) -> str:
    """Make the stage's account the default of every boto3 client of this process; the
    name to read the registry by (the group's ARN in the build account, or `group`).
    `passes_roles` (a deploy): first refuse roles of another account in $MLOPS_SAGEMAKER_ROLE_ARN
    or $MLOPS_CFN_ROLE_ARN, which CloudFormation would refuse only minutes later."""
    account = stage_config.sagemaker.account
    if account is None:
        return group
    if passes_roles:
        for name, ok, fix in role_env_checks(stage_config, dict(os.environ)):
            if not ok:
                raise MlopsError(f"{name.replace(' is a role', ' must be a role')}; {fix}")
    import boto3

    session = stage_session(account, stage_config.stage)
    boto3.DEFAULT_SESSION = session
    return group_arn(account, group, session.region_name)


@contextmanager
def reading_stage(stage_config: StageConfig) -> Iterator[None]:
    """Clients created inside are in `stage_config`'s account: through its
    `promotion_read_role_arn` when the current credentials are another account's."""
    account = stage_config.sagemaker.account
    if account is None:
        yield
        return
    import boto3

    previous = boto3.DEFAULT_SESSION
    current = previous or boto3.Session()
    found = _caller(current)["Account"]
    if found == account.account_id:
        yield
        return
    if not account.promotion_read_role_arn:
        raise MlopsError(
            f"{stage_config.stage} is in account {account.account_id} and these credentials in "
            f"{found}: set sagemaker.account.promotion_read_role_arn in "
            f"{stage_config.stage}-config.json (stage-account.yml output PromotionReadRoleArn)"
        )
    session = _assume(
        current, account.promotion_read_role_arn, f"mlops-read-{stage_config.stage}", account.region
    )
    boto3.DEFAULT_SESSION = session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


# ---- read-only checks (for `mlops doctor`) -------------------------------------------------


def _check(name: str, action: Any, fix: str) -> tuple[CheckResult, Any]:
    try:
        return (name, True, ""), action()
    except MlopsError as exc:
        return (name, False, f"{exc} -> {fix}"), None


def role_env_checks(stage_config: StageConfig, env: dict[str, str]) -> list[CheckResult]:
    """The execution and CloudFormation roles the deploy job passes are the stage account's
    (a repository variable of the build account left in place is the likely mistake)."""
    account = stage_config.sagemaker.account
    results: list[CheckResult] = []
    for name in ROLE_ENVS:
        value = env.get(name, "")
        where = value.split(":")[4] if value.count(":") >= 5 else ""
        results.append(
            (
                f"{stage_config.stage}: ${name} is a role of account {account.account_id}",
                where == account.account_id,
                ""
                if where == account.account_id
                else f"it is {value or 'unset'}: set it in the GitHub environment of "
                f"{stage_config.stage} to stage-account.yml's output",
            )
        )
    return results


def stage_account_checks(
    group: str, stages: tuple[str, ...] = STAGES, base: Any = None
) -> list[CheckResult]:
    """`account_checks` of each stage, from its committed config (what `mlops doctor` runs);
    a stage config that cannot be read is one failing line."""
    results: list[CheckResult] = []
    for stage in stages:
        try:
            config = load_stage_config(stage)
        except MlopsError as exc:
            results.append((f"{stage}: stage config", False, str(exc)))
            continue
        results += account_checks(config, group, base)
    return results


def _list_held_out(s3: Any, version: Any) -> list[str]:
    """The first keys under the version's held-out folder (what the smoke test reads)."""
    from mlops.core.run_layout import HELD_OUT_KEY
    from mlops.sagemaker.registry import split_s3_uri

    uri = str(version.lineage.get(HELD_OUT_KEY) or "")
    if not uri.startswith("s3://"):
        raise MlopsError(f"version {version.version} records no S3 held-out rows")
    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    with aws_errors(f"cannot list {uri}"):
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=10)
    keys = [o["Key"] for o in page.get("Contents", [])]
    if not keys:
        raise MlopsError(f"nothing under {uri}")
    return keys


def account_checks(
    stage_config: StageConfig, group: str, base: Any = None, env: dict[str, str] | None = None
) -> list[CheckResult]:
    """Read-only checks that a stage's deploy can work across accounts: its account is
    reachable, the build account's registry lets it list and describe versions, the newest
    Approved version's metrics and held-out rows are readable, the roles it passes are its
    own. A stage without an account gets one passing line."""
    from mlops.sagemaker.registry import SageMakerRegistry

    stage, account = stage_config.stage, stage_config.sagemaker.account
    if account is None:
        return [(f"{stage}: single account (bootstrap.yml)", True, "")]
    results = role_env_checks(stage_config, dict(os.environ) if env is None else env)
    reached, session = _check(
        f"{stage}: credentials reach account {account.account_id}",
        lambda: stage_session(account, stage, base),
        "deploy stage-account.yml there and set role_arn, or use that account's credentials",
    )
    results.append(reached)
    if session is None:
        return results
    arn = group_arn(account, group, session.region_name)
    registry = SageMakerRegistry(arn, session.client("sagemaker"), session.client("s3"))
    listed, latest = _check(
        f"{stage}: lists Approved versions of {arn}",
        registry.latest_approved,
        f"deploy build-account.yml with {stage.capitalize()}AccountId={account.account_id} "
        "(the group's resource policy, the bucket and key policies name this stage's roles)",
    )
    results.append(listed)
    if latest is not None:
        results.append(
            _check(
                f"{stage}: reads the held-out rows of version {latest.version}",
                lambda: _list_held_out(session.client("s3"), latest),
                "the build account's bucket policy (StageDeployRolesReadRuns) and key policy "
                "must name this stage's deploy role",
            )[0]
        )
    return results

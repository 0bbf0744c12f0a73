"""`mlops doctor --backend sagemaker`: read-only checks of the settings the trust model relies
on that live outside the repository (mlops/sagemaker/doctor.py). Exit 0 when every check
passes, 1 when one fails (each failure prints its fix), 2 on bad input."""

from __future__ import annotations

import argparse

from mlops.cli.common import add_backend_arg, add_config_arg, config_from
from mlops.core.errors import UsageError


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.backend != "sagemaker":
        raise UsageError("doctor checks the SageMaker setup: pass --backend sagemaker")
    from mlops.sagemaker.accounts import stage_account_checks
    from mlops.sagemaker.doctor import CHECKS, context_from, format_check, run_checks

    cfg = config_from(args)
    group = cfg.model_package_group
    ctx = context_from(args.repo, args.stack, args.region, group)
    # each stage's cross-account wiring (one passing line per stage in the single-account layout)
    checks = run_checks(ctx, [*CHECKS, lambda ctx: stage_account_checks(group, base=ctx.aws)])
    for check in checks:
        print(format_check(check))
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check the GitHub and AWS settings the trust model relies on (read-only)",
        description="Read-only checks of what the repository cannot hold: the GitHub "
        "environments' branch rules and reviewers, the repository's OIDC subject template, "
        "each job role's trust, the artifact bucket's public-access block, and each stage's "
        "account wiring when its config names an account. Prints each "
        "check with pass/FAIL and the fix. Needs $GH_TOKEN (read the repository's settings) "
        "and AWS credentials that may read the bootstrap stack, its roles and its bucket.",
    )
    add_backend_arg(doctor)
    add_config_arg(doctor)
    doctor.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
    doctor.add_argument("--stack", help="the bootstrap stack (default: <group>-bootstrap)")
    doctor.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    doctor.set_defaults(func=cmd_doctor)

"""`mlops deploy`, `mlops promote`, `mlops endpoint ...`, `mlops serve`: stages and endpoints."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mlops.cli.backends import deployment_log, open_deployer, open_registry
from mlops.cli.common import (
    add_backend_arg,
    add_config_arg,
    config_from,
    home,
    port_number,
    positive_int,
    print_json,
    version_number,
)
from mlops.core.errors import MlopsError
from mlops.core.stages import STAGES, load_stage_config


def _registry(args: argparse.Namespace, cfg, stage: str | None = None, deploys: bool = False):
    """The backend's registry; on SageMaker, a stage whose config names its own AWS account
    (model_deploy/accounts/) makes that account this command's, the registry the build's."""
    backend, group = getattr(args, "backend", "local"), cfg.model_package_group
    if backend == "sagemaker" and stage:
        from mlops.sagemaker.accounts import enter_stage_account

        group = enter_stage_account(load_stage_config(stage), group, passes_roles=deploys)
    return open_registry(backend, group, home())


def cmd_deploy(args: argparse.Namespace) -> int:
    from mlops.core.deploy import deploy
    from mlops.core.stages import version_reason

    cfg = config_from(args)
    stage_config = load_stage_config(args.stage)
    print(f"version choice: {version_reason(stage_config, args.version)}")
    registry = _registry(args, cfg, args.stage, deploys=True)
    deployer = open_deployer(args.backend, cfg, registry, home())
    outcome = deploy(
        stage_config, registry, deployer, deployment_log(cfg, home()), args.version, _say
    )
    print(f"{outcome.stage} now serves model version {outcome.version} at {outcome.url}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from mlops.core.deploy import promote

    cfg = config_from(args)
    registry = _registry(args, cfg, "prod", deploys=True)
    deployer = open_deployer(args.backend, cfg, registry, home())
    outcome = promote(registry, deployer, deployment_log(cfg, home()), _say, args.version)
    print(f"promoted: prod now serves model version {outcome.version} at {outcome.url}")
    return 0


def _say(line: str) -> None:
    print(f"  {line}", flush=True)


def cmd_test(args: argparse.Namespace) -> int:
    from mlops.core.smoke import rows_for_version, smoke_limit, smoke_test_endpoint
    from mlops.local.deploy_history import record_smoke_test
    from mlops.local.endpoints import read_endpoint

    cfg = config_from(args)
    registry = _registry(args, cfg, args.stage)
    if args.backend == "sagemaker":
        deployer = open_deployer(args.backend, cfg, registry, home())
        version, name = deployer.live(args.stage)
        url = None
        rows = deployer.smoke_rows(version, cfg.smoke_test.rows)
    else:
        endpoint = read_endpoint(home(), args.stage)
        if endpoint is None:
            raise MlopsError(
                f"nothing is deployed to {args.stage}: run `mlops deploy --stage {args.stage}`"
            )
        version = registry.describe(endpoint.version)
        name, url = endpoint.endpoint_name, endpoint.url
        rows = rows_for_version(version, home(), cfg.smoke_test.rows)
    number = version.version
    print(f"smoke test of {args.stage} (version {number}, {url or name}): {rows.source}")
    result = smoke_test_endpoint(name, rows, smoke_limit(cfg), url)
    if url:
        record_smoke_test(home(), cfg.model_package_group, args.stage, number, url, result)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    if not result.passed:
        raise MlopsError(f"smoke test of {args.stage} failed: {result.reason}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    stages = [args.stage] if args.stage else list(STAGES)
    report = []
    for stage in stages:  # on SageMaker each stage may be in its own account: read it there
        registry = _registry(args, cfg, stage)
        report.append(open_deployer(args.backend, cfg, registry, home()).stage_status(stage))
    if args.json:
        print_json({s["stage"]: s for s in report})
    elif args.env:
        print("\n".join(env_lines(report, prefixed=args.stage is None)))
    else:
        print_status_table(report)
    return 0


ENV_KEYS = ("version", "url", "endpoint_name", "health", "approval_status")


def env_lines(report: list[dict], prefixed: bool) -> list[str]:
    """`key=value` lines (e.g. for $GITHUB_OUTPUT); empty values when nothing is deployed."""
    lines = []
    for s in report:
        prefix = f"{s['stage']}_" if prefixed else ""
        for key in ENV_KEYS:
            value = s.get(key)
            lines.append(f"{prefix}{key}={'' if value is None else value}")
    return lines


def print_status_table(report: list[dict]) -> None:
    print(f"{'STAGE':<8} {'VERSION':>7}  {'APPROVAL':<22} {'HEALTH':<13} {'PID':>7}  URL")
    for s in report:
        version = s["version"] if s["version"] is not None else "-"
        where = s["url"] or s["endpoint_name"] or "-"
        print(
            f"{s['stage']:<8} {version:>7}  {s['approval_status'] or '-':<22} "
            f"{s['health']:<13} {s['pid'] or '-':>7}  {where}"
        )
    for s in report:
        for warning in s["warnings"]:
            print(warning)


def cmd_stop(args: argparse.Namespace) -> int:
    if getattr(args, "backend", "local") == "sagemaker":
        return _stop_sagemaker(args)
    from mlops.local.deploy import stop_stage

    group = config_from(args).model_package_group
    endpoint, notes = stop_stage(home(), args.stage, group)
    for note in notes:
        print(note)
    if endpoint is None:
        print(f"nothing is deployed to {args.stage}" + (" (any more)" if notes else ""))
    else:
        print(
            f"stopped {args.stage}: version {endpoint.version} at {endpoint.url} (pid {endpoint.pid})"
        )
    return 0


def _stop_sagemaker(args: argparse.Namespace) -> int:
    """Delete the stage's stack after a confirmation: it takes the endpoint down for good."""
    import sys

    from mlops.core.deploy import endpoint_name
    from mlops.core.errors import UsageError
    from mlops.sagemaker.accounts import enter_stage_account
    from mlops.sagemaker.deploy import stop_stage

    cfg = config_from(args)
    name = endpoint_name(cfg.model_package_group, args.stage)
    # the stage's own account, if its config names one: that is where its stacks are
    enter_stage_account(load_stage_config(args.stage), cfg.model_package_group)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting stack {name} needs a confirmation: pass --yes")
        answer = input(
            f"Delete stack {name} (endpoint, model, alarms, scaling) of {args.stage}? "
            f"Type {args.stage} to confirm: "
        )
        if answer.strip() != args.stage:
            print("not confirmed: nothing deleted")
            return 1
    served = stop_stage(cfg, args.stage, _say)
    if served is None:
        print(f"nothing is deployed to {args.stage} on SageMaker (no stack {name})")
    else:
        print(f"stopped {args.stage}: deleted stack {name} (it served version {served[0]})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from mlops.local.deploy_history import list_deployments

    cfg = config_from(args)
    rows = list_deployments(home(), cfg.model_package_group, args.stage, args.limit)
    if args.json:
        print_json(rows)
        return 0
    print(
        f"{'ID':>4}  {'AT':<25} {'STAGE':<8} {'VERSION':>7}  {'RESULT':<9} {'USER':<10} "
        f"{'GIT':<10} REASON"
    )
    for r in rows:
        version = r["version"] if r["version"] is not None else "-"
        print(
            f"{r['id']:>4}  {r['at']:<25} {r['stage']:<8} {version:>7}  {r['result']:<9} "
            f"{r['user'][:10]:<10} {r['git_commit'][:10]:<10} {r['reason'][:80]}"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mlops.core.deploy import endpoint_name
    from mlops.core.stages import resolve_version
    from mlops.local.artifacts import unpack_version
    from mlops.local.endpoint_app import ServerSettings
    from mlops.local.server import serve

    cfg = config_from(args)
    stage_config = load_stage_config(args.stage)
    version = resolve_version(_registry(args, cfg), stage_config, args.version)
    port = stage_config.local.port if args.port is None else args.port
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as tmp:
        model_dir, _ = unpack_version(version, Path(tmp))
        print(f"handler: the serving code in version {version.version}'s artifact")
        settings = ServerSettings(
            model_dir=str(model_dir),
            endpoint_name=endpoint_name(cfg.model_package_group, args.stage),
            stage=args.stage,
            version=version.version,
            instance=f"serve-v{version.version}",
        )
        print(f"serving version {version.version} as {settings.endpoint_name} (Ctrl-C stops)")
        serve(
            settings, host=args.host, port=port, workers=args.workers or stage_config.local.workers
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    dep = sub.add_parser(
        "deploy",
        help="deploy a model version to a stage (blue/green, behind a smoke test)",
        description="Resolve the version (--version, else the stage's pin in "
        "model_deploy/<stage>-config.json, else the latest Approved), start it next to "
        "the current endpoint, smoke-test it, then switch the stage to it. Exit 1 when "
        "the version is not Approved or the smoke test fails (the old endpoint keeps serving).",
    )
    dep.add_argument("--stage", choices=STAGES, required=True)
    dep.add_argument("--version", type=version_number, default=None, help="model version to deploy")
    add_backend_arg(dep)
    add_config_arg(dep)
    dep.set_defaults(func=cmd_deploy)

    pro = sub.add_parser(
        "promote",
        help="staging's version to prod, if Approved, live in staging and passing its smoke test",
    )
    pro.add_argument(
        "--version",
        type=version_number,
        default=None,
        help="the version staging must still serve (the one a reviewer approved); refuse otherwise",
    )
    add_backend_arg(pro)
    add_config_arg(pro)
    pro.set_defaults(func=cmd_promote)

    ep = sub.add_parser("endpoint", help="smoke-test, inspect and stop stage endpoints")
    esub = ep.add_subparsers(dest="endpoint_command", required=True, metavar="COMMAND")
    test = esub.add_parser(
        "test", help="smoke test with held-out rows through a sagemaker-runtime client"
    )
    test.add_argument("--stage", choices=STAGES, required=True)
    test.add_argument("--json", action="store_true", help="machine-readable output")
    add_backend_arg(test)
    add_config_arg(test)
    test.set_defaults(func=cmd_test)

    status = esub.add_parser("status", help="per stage: version, url, pid, health, approval")
    status.add_argument("--stage", choices=STAGES, default=None, help="one stage (default: all)")
    output = status.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument(
        "--env",
        action="store_true",
        help="key=value lines (version=, url=, ...; prefixed with the stage when --stage "
        "is not given), e.g. for $GITHUB_OUTPUT",
    )
    add_backend_arg(status)
    add_config_arg(status)
    status.set_defaults(func=cmd_status)

    stop = esub.add_parser(
        "stop",
        help="stop a stage's endpoint",
        description="Stop a stage's endpoint. local: stop its server. sagemaker: delete the "
        "stage's CloudFormation stack (endpoint, model, alarms, autoscaling) after you type "
        "the stage name; --yes skips the question (CI).",
    )
    stop.add_argument("--stage", choices=STAGES, required=True)
    stop.add_argument(
        "--yes", action="store_true", help="sagemaker: delete without asking (for CI)"
    )
    add_backend_arg(stop)
    add_config_arg(stop)
    stop.set_defaults(func=cmd_stop)

    history = esub.add_parser("history", help="recorded deployments, newest first")
    history.add_argument("--stage", choices=STAGES, default=None)
    history.add_argument("--limit", type=positive_int, default=20)
    history.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_arg(history)
    history.set_defaults(func=cmd_history)

    serve = sub.add_parser(
        "serve", help="run a stage's model in the foreground (not recorded as a deployment)"
    )
    serve.add_argument("--stage", choices=STAGES, required=True)
    serve.add_argument(
        "--port", type=port_number, default=None, help="default: the stage's local.port"
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--version", type=version_number, default=None)
    serve.add_argument("--workers", type=positive_int, default=None)
    add_config_arg(serve)
    serve.set_defaults(func=cmd_serve)

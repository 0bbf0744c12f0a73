"""`make demo`: the story of a change on the local backend, from raw data to prod.

the data (the config's committed sample, or --data FILE, only ever read) -> validate -> pipeline -> approve -> deploy staging -> smoke test ->
promote -> smoke test prod -> summary. Every step is a real `mlops` command, so
what the demo shows is what a user would type. The endpoints it started are
stopped at the end unless --keep-endpoints is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from mlops.cli import run
from mlops.core.config import CONFIG_ENV, Config, load_config
from mlops.core.errors import MlopsError
from mlops.core.paths import mlops_home


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def step(argv: list[str]) -> None:
    print("$ mlops " + " ".join(argv), flush=True)
    code = run(argv)
    if code != 0:
        sys.exit(f"demo stopped: `mlops {' '.join(argv)}` exited {code}")


def has_command(*path: str) -> bool:
    """Whether `mlops <path...>` exists in this checkout (subcommands land over time)."""
    from mlops.cli import build_parser

    parser = build_parser()
    for name in path:
        choices = next((a.choices for a in parser._subparsers._group_actions if a.choices), {})
        if name not in choices:
            return False
        parser = choices[name]
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_stage_ports(home: Path) -> Path | None:
    """If a stage's port is taken by something other than this home's own endpoint, serve
    the demo from a temporary copy of the stage configs with free ports instead."""
    from mlops.core.stages import STAGES, deploy_dir, load_stage_config
    from mlops.local.endpoints import is_live, read_endpoint

    busy = []
    for stage in STAGES:
        port = load_stage_config(stage).local.port
        ours = read_endpoint(home, stage)
        if not port_is_free(port) and not (ours and ours.port == port and is_live(ours)):
            busy.append(stage)
    if not busy:
        return None
    copy = Path(tempfile.mkdtemp(prefix="mlops-demo-deploy-"))
    for stage in STAGES:
        source = deploy_dir() / f"{stage}-config.json"
        data = json.loads(source.read_text())
        if stage in busy:
            data["local"]["port"] = free_port()
            print(
                f"note: port {load_stage_config(stage).local.port} of {stage} is in use; "
                f"the demo uses {data['local']['port']} (a copy of the config in {copy})"
            )
        (copy / source.name).write_text(json.dumps(data, indent=2))
    os.environ["MLOPS_DEPLOY_DIR"] = str(copy)
    return copy


def newest_version(cfg: Config, home: Path) -> int:
    from mlops.local.registry import LocalRegistry

    versions = LocalRegistry(home, cfg.model_package_group).list()
    if not versions:
        sys.exit("demo stopped: the pipeline registered no model version")
    return versions[-1].version


def print_summary(cfg: Config, home: Path) -> None:
    from mlops.core.smoke import rows_for_version
    from mlops.local.endpoints import read_endpoint
    from mlops.local.registry import LocalRegistry

    registry = LocalRegistry(home, cfg.model_package_group)
    banner("summary")
    prod = None
    for stage in ("staging", "prod"):
        endpoint = read_endpoint(home, stage)
        if endpoint is None:
            print(f"{stage:<8} not deployed")
            continue
        version = registry.describe(endpoint.version)
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in version.metrics.items())
        print(f"{stage:<8} version {version.version} ({version.approval_status})  {endpoint.url}")
        print(f"         endpoint name {endpoint.endpoint_name}; test metrics: {metrics}")
        prod = endpoint if stage == "prod" else prod
    if prod is None:
        return
    rows = rows_for_version(registry.describe(prod.version), home, 1)
    row, target = rows.lines[0], rows.targets[0]
    print(f"\nTry it (a held-out row whose true {cfg.data.target} is {target:,.6g}):")
    print(f"  curl -s -X POST {prod.url}/invocations -H 'Content-Type: text/csv' --data '{row}'")
    print("\n  # any SageMaker Runtime client works, unmodified:")
    print("  python - <<'EOF'")
    print("  import boto3")
    print(
        f'  rt = boto3.client("sagemaker-runtime", endpoint_url="{prod.url}", '
        'region_name="us-east-1",'
    )
    print('                    aws_access_key_id="local", aws_secret_access_key="local")')
    print(
        f'  r = rt.invoke_endpoint(EndpointName="{prod.endpoint_name}", '
        f'ContentType="text/csv", Body="{row}")'
    )
    print('  print(r["Body"].read().decode())')
    print("  EOF")


def stop_endpoints(stages: list[str]) -> None:
    banner("stopping the endpoints the demo started (--keep-endpoints keeps them)")
    for stage in stages:
        step(["endpoint", "stop", "--stage", stage])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        help="CSV to train on, only ever read (default: data.sample in the config)",
    )
    p.add_argument("--config", type=Path, help="config file (default: model_build/config.yaml)")
    p.add_argument(
        "--keep-endpoints", action="store_true", help="leave staging and prod running at the end"
    )
    args = p.parse_args(argv)
    if args.config:
        os.environ[CONFIG_ENV] = str(args.config.resolve())  # every step reads the same one
    try:
        cfg = load_config()
    except MlopsError as exc:
        sys.exit(f"demo stopped: {exc}")
    home = mlops_home()
    data = args.data or cfg.sample_file
    if data is None or not data.is_file():
        sys.exit(f"demo stopped: no data file {data} (pass --data FILE or set data.sample)")
    print(f"state directory: {home}  (set MLOPS_HOME to use another)")

    banner("1. a data scientist brings data")
    print(f"data: {data} ({sum(1 for _ in data.open()) - 1} rows, read only)")
    banner("2. data checks: the Great Expectations suite")
    if has_command("data", "validate"):
        step(["data", "validate", str(data), "--report-dir", str(home / "reports")])
    else:
        print("(`mlops data validate` is not in this checkout yet; the pipeline validates too)")
    banner("3. the pipeline: validate, preprocess, train, evaluate, gate, register")
    step(["pipeline", "run", "--data", str(data)])
    step(["models", "list"])
    version = newest_version(cfg, home)
    banner("4. approval: a human approver reviews metrics and lineage, then approves")
    print("(in a real project a person runs this; CI never approves its own model)")
    step(["models", "approve", str(version), "--note", "approved in make demo"])

    temporary_configs = ensure_stage_ports(home)
    started: list[str] = []
    try:
        banner("5. deploy to staging: candidate on a free port, smoke test, then switch")
        started.append("staging")
        step(["deploy", "--stage", "staging"])
        banner("6. smoke test staging: held-out rows through a sagemaker-runtime client")
        step(["endpoint", "test", "--stage", "staging"])
        banner("7. promote: staging's version to prod (Approved, live, passing)")
        started.append("prod")
        step(["promote"])
        banner("8. smoke test prod")
        step(["endpoint", "test", "--stage", "prod"])
        step(["endpoint", "status"])
        print_summary(cfg, home)
    finally:
        if not args.keep_endpoints and started:
            stop_endpoints(started)
        if temporary_configs and not args.keep_endpoints:
            shutil.rmtree(temporary_configs, ignore_errors=True)
    print("\ndemo finished: data -> pipeline -> registry -> staging -> prod")
    return 0


if __name__ == "__main__":
    sys.exit(main())

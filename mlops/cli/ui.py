"""`mlops ui`: the local status page; `mlops ui --mlflow`: the MLflow UI. Both on 127.0.0.1.

The status page (mlops.local.status) shows the versions with their approval state and
model cards, what each stage serves and since when, the deploy history and the last
monitor result per stage; read-only, on a free port unless --port says.

The pipeline tracks runs without any server (MLflow writes $MLOPS_HOME/mlflow
directly); `--mlflow` starts MLflow's own UI server over that store, in the foreground,
until Ctrl-C. It needs the full `mlflow` package (the `ui` extra); the demo's
install carries only the lighter tracking client.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import socket
import sys
from pathlib import Path

from mlops.cli.common import home
from mlops.core.errors import MlopsError, UsageError

DEFAULT_PORT = 5000  # MLflow's own default, for --mlflow
HOST = "127.0.0.1"  # the store holds lineage and data hashes: never listen beyond this machine
INSTALL_HINT = "pip install -e '.[ui]' (or: uv pip install 'mlflow==3.17.*')"


def full_mlflow_installed() -> bool:
    """The UI ships in `mlflow`, not in `mlflow-skinny` (which the pipeline needs)."""
    try:
        importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def ui_command(home_dir: Path, port: int) -> list[str]:
    from mlops.local.tracking import artifacts_dir, store_uri

    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store_uri(home_dir),
        "--default-artifact-root",
        artifacts_dir(home_dir).resolve().as_uri(),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def cmd_status_page(args: argparse.Namespace) -> int:
    from mlops.cli.common import config_from
    from mlops.local.status import status_server

    if args.port and not port_is_free(args.port):
        raise UsageError(f"port {args.port} on {HOST} is in use: pick another with --port")
    cfg = config_from(args)
    server = status_server(cfg, home(), args.port or 0, costs=stage_costs())
    port = server.server_address[1]
    print(f"status page: http://{HOST}:{port}/  (read-only; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def stage_costs() -> list[dict]:
    """Each stage's monthly endpoint cost on SageMaker, from its config (none if unreadable)."""
    from mlops.core.cost import stage_cost_rows
    from mlops.core.errors import MlopsError as ConfigError

    try:
        return stage_cost_rows()
    except (ConfigError, OSError, ValueError):
        return []


def cmd_ui(args: argparse.Namespace) -> int:
    if not args.mlflow:
        return cmd_status_page(args)
    if not full_mlflow_installed():
        raise MlopsError(f"`mlops ui` needs the full MLflow package: {INSTALL_HINT}")
    port = args.port or DEFAULT_PORT
    if not port_is_free(port):
        raise UsageError(f"port {port} on {HOST} is in use: pick another with --port")
    home_dir = home()
    from mlops.local.tracking import tracking_dir

    tracking_dir(home_dir).mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI for {tracking_dir(home_dir)}: http://{HOST}:{port}  (Ctrl-C stops it)")
    sys.stdout.flush()
    command = ui_command(home_dir, port)
    # Become the server: Ctrl-C and signals reach it directly, and nothing is left behind.
    os.execv(command[0], command)
    return 0  # not reached


def register(sub: argparse._SubParsersAction) -> None:
    from mlops.cli.common import add_config_arg

    ui = sub.add_parser(
        "ui",
        help="the status page: versions, stages, deploys, monitor, model cards (127.0.0.1)",
        description="Serve the read-only status page of the local backend on 127.0.0.1: "
        "model versions with their approval state and model cards, what each stage serves "
        "and since when, the deploy history with outcomes, the last monitor result per stage. "
        "With --mlflow, start the MLflow UI over $MLOPS_HOME/mlflow instead (every local "
        "pipeline run and tuning trial; needs the full `mlflow` package, the `ui` extra). "
        "Foreground; Ctrl-C stops it.",
        epilog="examples:\n  mlops ui                 # prints http://127.0.0.1:PORT/\n"
        "  mlops ui --mlflow --port 5001   # then open http://127.0.0.1:5001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ui.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port (default: a free one; {DEFAULT_PORT} with --mlflow)",
    )
    ui.add_argument("--mlflow", action="store_true", help="the MLflow UI instead")
    add_config_arg(ui)
    ui.set_defaults(func=cmd_ui)

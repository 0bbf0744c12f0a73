"""`mlops ui`: the MLflow UI for the local tracking store, on 127.0.0.1.

The pipeline tracks runs without any server (MLflow writes $MLOPS_HOME/mlflow
directly); this starts MLflow's own UI server over that store, in the foreground,
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

DEFAULT_PORT = 5000
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


def cmd_ui(args: argparse.Namespace) -> int:
    if not full_mlflow_installed():
        raise MlopsError(f"`mlops ui` needs the full MLflow package: {INSTALL_HINT}")
    if not port_is_free(args.port):
        raise UsageError(f"port {args.port} on {HOST} is in use: pick another with --port")
    home_dir = home()
    from mlops.local.tracking import tracking_dir

    tracking_dir(home_dir).mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI for {tracking_dir(home_dir)}: http://{HOST}:{args.port}  (Ctrl-C stops it)")
    sys.stdout.flush()
    command = ui_command(home_dir, args.port)
    # Become the server: Ctrl-C and signals reach it directly, and nothing is left behind.
    os.execv(command[0], command)
    return 0  # not reached


def register(sub: argparse._SubParsersAction) -> None:
    ui = sub.add_parser(
        "ui",
        help="MLflow UI for the local tracking store (127.0.0.1)",
        description="Start the MLflow UI over $MLOPS_HOME/mlflow, where every local pipeline "
        "run and tuning trial is tracked. Foreground; Ctrl-C stops it. Needs the full "
        "`mlflow` package (the `ui` extra).",
        epilog="example:\n  mlops ui --port 5001   # then open http://127.0.0.1:5001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    ui.set_defaults(func=cmd_ui)

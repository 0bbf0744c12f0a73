"""Helpers for tests that run real endpoint servers on free ports of 127.0.0.1.

Every server started here (directly or through `mlops deploy`) gets
MLOPS_SERVER_WATCH_PID = this test process, so none outlives the test run even
if a teardown never runs; fixtures still stop them explicitly.
"""

from __future__ import annotations

import json
import os
import socket
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from fixtures.artifacts import pack, train_artifact

from mlops.core.paths import REPO_ROOT
from mlops.local.endpoint_app import ServerSettings
from mlops.local.server import WATCH_PID_ENV
from mlops.local.server_process import ServerProcess, spawn_server, stop_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def extract(archive: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@contextmanager
def watched_by_this_process(pid: int | None = None) -> Iterator[None]:
    """Servers started inside exit when process `pid` (default: this one) is gone."""
    old = os.environ.get(WATCH_PID_ENV)
    os.environ[WATCH_PID_ENV] = str(pid or os.getpid())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(WATCH_PID_ENV, None)
        else:
            os.environ[WATCH_PID_ENV] = old


@contextmanager
def running_server(
    model_dir: Path,
    workdir: Path,
    endpoint_name: str = "test-ep",
    version: int = 1,
    limits: dict | None = None,
    **kwargs,
) -> Iterator[ServerProcess]:
    """A real `python -m mlops.local.server` on a free port serving the unpacked artifact
    `model_dir` with its own code, stopped on exit; `limits` are ServerSettings fields
    (timeouts, size limits, connection cap)."""
    settings = ServerSettings(
        **(limits or {}),
        model_dir=str(model_dir),
        endpoint_name=endpoint_name,
        stage="test",
        version=version,
        instance=f"test-{workdir.name}",
    )
    with watched_by_this_process():
        server = spawn_server(settings, workdir, "server", **kwargs)
    try:
        yield server
    finally:
        stop_server(server.pid)


def constant_model_archive(folder: Path, rows: pd.DataFrame, target: str, price: float) -> Path:
    """A well-formed model.tar.gz (manifest, sha256, its own serving code) trained on `rows`
    with every target set to `price`: it loads and answers about `price` for any row, so a
    smoke test against the real targets must fail."""
    constant = rows.assign(**{target: price})
    params = {"objective": "reg:squarederror", "num_round": 2, "max_depth": 2}
    model_dir = train_artifact(folder, constant, target, params=params)
    return pack(model_dir, folder / "model.tar.gz")


def deploy_config_copy(folder: Path, prod_workers: int = 1) -> Path:
    """model_deploy/ copied with free ports (tests never edit the committed files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stage in ("staging", "prod"):
        data = json.loads((REPO_ROOT / "model_deploy" / f"{stage}-config.json").read_text())
        data["local"]["port"] = free_port()
        if stage == "prod":
            data["local"]["workers"] = prod_workers
        (folder / f"{stage}-config.json").write_text(json.dumps(data, indent=2))
    return folder


def set_pin(folder: Path, stage: str, version: int | None) -> None:
    path = folder / f"{stage}-config.json"
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2))

"""The on-disk state of the local backend's stages, under $MLOPS_HOME/endpoints/.

`<stage>/endpoint.json` says which server serves the stage; each server instance has
a folder beside it with its unpacked model artifact (whose code/ serves it), logs and pids; `<stage>/.lock`
keeps deployments to one stage one at a time. Kept apart from `mlops.local.deploy`
so that what serves a stage can be read without the deployment logic.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.core.stages import STAGES
from mlops.local.artifacts import unpack, version_archive
from mlops.local.server_process import SERVER_MODULE, is_server, process_cmdline, stop_server

STATE_FILE = "endpoint.json"


@dataclass(frozen=True)
class Endpoint:
    """The server serving a stage, as recorded in endpoints/<stage>/endpoint.json."""

    stage: str
    group: str
    version: int
    endpoint_name: str
    url: str
    port: int
    pid: int
    instance: str
    deployed_at: str


def stage_dir(home: Path, stage: str) -> Path:
    return home / "endpoints" / stage


def read_endpoint(home: Path, stage: str) -> Endpoint | None:
    path = stage_dir(home, stage) / STATE_FILE
    try:
        return Endpoint(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise MlopsError(f"unreadable endpoint state {path}: {exc}") from None


def write_endpoint(home: Path, endpoint: Endpoint) -> None:
    path = stage_dir(home, endpoint.stage) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(endpoint), indent=2))
    os.replace(tmp, path)


def is_live(endpoint: Endpoint) -> bool:
    """Its server process is running (health is /ping's business)."""
    return is_server(endpoint.pid, endpoint.instance)


@contextlib.contextmanager
def stage_lock(home: Path, stage: str) -> Iterator[None]:
    """One deployment per stage at a time, across processes."""
    folder = stage_dir(home, stage)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MlopsError(f"another deployment to {stage} is in progress") from None
        yield


def new_instance_id(version: int) -> str:
    return f"v{version}-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def prepare_instance(home: Path, stage: str, version: ModelVersion) -> Path:
    """A folder with the version's model: its extracted model.tar.gz, whose code/ serves it."""
    archive = version_archive(version)
    folder = stage_dir(home, stage) / new_instance_id(version.version)
    unpack(archive, folder)
    return folder


def current_version(home: Path, stage: str) -> int | None:
    endpoint = read_endpoint(home, stage)
    return endpoint.version if endpoint else None


def stop_instance(home: Path, stage: str, instance: str, pid: int) -> None:
    """Stop the instance's server (if that pid is still it) and delete its folder."""
    if is_server(pid, instance):
        stop_server(pid)
    shutil.rmtree(stage_dir(home, stage) / instance, ignore_errors=True)


def remove_stale_instances(home: Path, stage: str, keep: str) -> None:
    """Folders of failed candidates and replaced servers, once nothing of theirs runs."""
    for folder in stage_dir(home, stage).iterdir():
        if folder.is_dir() and folder.name != keep:
            pids = [int(p.read_text()) for p in folder.glob("*.pid") if p.read_text().isdigit()]
            if not any(is_server(pid, folder.name) for pid in pids):
                shutil.rmtree(folder, ignore_errors=True)


def stop_all_servers(home: Path) -> int:
    """Stop every server started under this home (a safety net for tests and the demo)."""
    stopped = 0
    for pid_file in (home / "endpoints").glob("*/*/*.pid"):
        text = pid_file.read_text().strip()
        if text.isdigit() and is_server(int(text), pid_file.parent.name):
            stopped += stop_server(int(text))
    for stage in STAGES:
        (stage_dir(home, stage) / STATE_FILE).unlink(missing_ok=True)
    return stopped


def stray_servers(home: Path, stage: str, keep: str | None) -> list[dict]:
    """Servers started for this home's stage that are not the recorded one (a deploy killed
    at the wrong moment, or a candidate still running): pid, instance, folder."""
    folder = str(stage_dir(home, stage).resolve())
    strays = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        argv = process_cmdline(int(proc.name)).split()
        if SERVER_MODULE not in argv or _arg(argv, "--stage") != stage:
            continue
        try:
            cwd = os.readlink(proc / "cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        instance = _arg(argv, "--instance")
        if cwd.startswith(folder + os.sep) and instance != keep:
            strays.append({"pid": int(proc.name), "instance": instance, "folder": cwd})
    return strays


def _arg(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None

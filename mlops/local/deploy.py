"""Stages on the local backend: blue/green deploys behind a smoke test, promotion, rollback.

A stage is served at one stable URL, `http://127.0.0.1:<local.port>` from its
`model_deploy/<stage>-config.json`. A deployment replaces the stage's server
without a gap and only after the new one passed its smoke test:

1. the candidate server starts on a free port and must answer /ping and pass the
   smoke test (held-out rows through sagemaker-runtime) while the current server
   keeps serving the stage;
2. a server of the same model and code binds the stage port *alongside* the
   current one (SO_REUSEPORT, with a reuseport program steering every new
   connection to the newest server, so the current one's accept queue drains and
   closing it resets nothing) and must answer /ping;
3. the current server is stopped gracefully (in-flight requests finish) and so is
   the candidate: the stage URL now reaches only the new version.

If anything before step 3 fails, the new servers are stopped, the current one
keeps serving, and the command exits 1. Every attempt, refused ones included, is
a row of the `deployments` table in `$MLOPS_HOME/registry.db`.

State: `$MLOPS_HOME/endpoints/<stage>/endpoint.json` says what serves the stage;
each server instance has a folder beside it with its model, inference code, logs
and pids. `LocalDeployer` is this backend's `mlops.core.interfaces.Deployer`; which version goes
where, and the record of every attempt, is `mlops.core.deploy`'s business.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.code_bundle import STEPS_DIR, handler_sources
from mlops.core.config import Config
from mlops.core.deploy import (
    approval_of,
    check_promotable,
    endpoint_name,
    not_deployed,
    pinned_version,
    status_warnings,
)
from mlops.core.errors import MlopsError
from mlops.core.interfaces import DeployOutcome, Progress, Registry
from mlops.core.lineage import git_commit
from mlops.core.registry import ModelVersion, current_user, utc_now
from mlops.core.smoke import SmokeResult, rows_for_version, smoke_test_endpoint
from mlops.core.stages import STAGES, StageConfig
from mlops.local.registry import connect
from mlops.local.server import (
    DEFAULT_HOST,
    ServerSettings,
    is_server,
    ping,
    spawn_server,
    stop_server,
)

CODE_DIR = STEPS_DIR
STATE_FILE = "endpoint.json"
SUCCEEDED, FAILED, REFUSED = "succeeded", "failed", "refused"

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    stage TEXT NOT NULL,
    backend TEXT NOT NULL,
    version INTEGER,
    previous_version INTEGER,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('succeeded', 'failed', 'refused')),
    reason TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    smoke TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS smoke_tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    stage TEXT NOT NULL,
    version INTEGER NOT NULL,
    url TEXT NOT NULL,
    at TEXT NOT NULL,
    passed INTEGER NOT NULL,
    result TEXT NOT NULL
);
"""


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


# State on disk --------------------------------------------------------------------------


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


def prepare_instance(
    home: Path, stage: str, version: ModelVersion, code_dir: Path = CODE_DIR
) -> Path:
    """A folder with the version's model (extracted model.tar.gz) and the inference code."""
    archive = Path(version.model_uri)
    if version.model_uri.startswith("s3://") or not archive.is_file():
        raise MlopsError(
            f"model of version {version.version} is not a local file: {version.model_uri}"
        )
    folder = stage_dir(home, stage) / new_instance_id(version.version)
    (folder / "model").mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "model", filter="data")
    (folder / "code").mkdir()
    for source in handler_sources(code_dir):
        shutil.copy2(source, folder / "code" / source.name)
    return folder


def check_port_free(port: int, stage: str, host: str = DEFAULT_HOST) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise MlopsError(
                f"port {port} (local.port in {stage}-config.json) is in use by another process"
            ) from None


def _stop_instance(home: Path, stage: str, instance: str, pid: int) -> None:
    if is_server(pid, instance):
        stop_server(pid)
    shutil.rmtree(stage_dir(home, stage) / instance, ignore_errors=True)


def _remove_stale_instances(home: Path, stage: str, keep: str) -> None:
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


# History --------------------------------------------------------------------------------


def _db(home: Path):
    conn = connect(home / "registry.db")
    conn.executescript(SCHEMA)
    return conn


def record_deployment(
    home: Path,
    group: str,
    stage: str,
    backend: str,
    result: str,
    version: int | None = None,
    previous_version: int | None = None,
    reason: str = "",
    url: str = "",
    smoke: SmokeResult | None = None,
) -> None:
    conn = _db(home)
    try:
        conn.execute(
            "INSERT INTO deployments (grp, stage, backend, version, previous_version, at, user,"
            " git_commit, result, reason, url, smoke) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group,
                stage,
                backend,
                version,
                previous_version,
                utc_now(),
                current_user(),
                git_commit(),
                result,
                reason,
                url,
                json.dumps(smoke.to_dict() if smoke else {}),
            ),
        )
    finally:
        conn.close()


def record_smoke_test(
    home: Path, group: str, stage: str, version: int, url: str, result: SmokeResult
) -> None:
    conn = _db(home)
    try:
        conn.execute(
            "INSERT INTO smoke_tests (grp, stage, version, url, at, passed, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                group,
                stage,
                version,
                url,
                utc_now(),
                int(result.passed),
                json.dumps(result.to_dict()),
            ),
        )
    finally:
        conn.close()


def list_deployments(
    home: Path, group: str, stage: str | None = None, limit: int = 20
) -> list[dict]:
    conn = _db(home)
    try:
        rows = conn.execute(
            "SELECT * FROM deployments WHERE grp = ? AND (? IS NULL OR stage = ?)"
            " ORDER BY id DESC LIMIT ?",
            (group, stage, stage, limit),
        ).fetchall()
    finally:
        conn.close()
    return [{**dict(r), "smoke": json.loads(r["smoke"])} for r in rows]


# Deploy, promote, stop ------------------------------------------------------------------


def deploy_local(
    cfg: Config,
    stage_config: StageConfig,
    version: ModelVersion,
    home: Path,
    progress: Progress = print,
) -> DeployOutcome:
    """Blue/green deployment of `version` to a stage on this machine (see the module doc)."""
    stage, port = stage_config.stage, stage_config.local.port
    name = endpoint_name(cfg.model_package_group, stage)
    with stage_lock(home, stage):
        current = read_endpoint(home, stage)
        if current is not None and not is_live(current):
            progress(f"the recorded {stage} server (version {current.version}) is not running")
            current = None
        if current is None:
            check_port_free(port, stage)
        rows = rows_for_version(version, home, cfg.smoke_test.rows)
        folder = prepare_instance(home, stage, version)
        settings = ServerSettings(
            model_dir=str(folder / "model"),
            code_dir=str(folder / "code"),
            endpoint_name=name,
            stage=stage,
            version=version.version,
            instance=folder.name,
        )
        keeps = (
            f"version {current.version} keeps serving {stage}"
            if current
            else f"nothing serves {stage}"
        )
        candidate = None
        try:
            candidate = spawn_server(settings, folder, "candidate")
            progress(f"candidate {folder.name} answers /ping at {candidate.url}")
            smoke = smoke_test_endpoint(name, rows, cfg.smoke_test.max_mape_pct, candidate.url)
            record_smoke_test(
                home, cfg.model_package_group, stage, version.version, candidate.url, smoke
            )
            progress(smoke.summary())
            if not smoke.passed:
                raise MlopsError(
                    f"smoke test of version {version.version} failed: {smoke.reason} "
                    f"[candidate log: {candidate.log}]"
                )
            live = spawn_server(
                settings,
                folder,
                "live",
                port=port,
                workers=stage_config.local.workers,
                reuse_port=True,
            )
        except MlopsError as exc:
            if candidate is not None:
                stop_server(candidate.pid)
            raise MlopsError(f"{exc}; {keeps}") from None
        except BaseException:
            if candidate is not None:
                stop_server(candidate.pid)
            raise
        beside = f" beside version {current.version}" if current else ""
        progress(f"version {version.version} answers on {live.url}{beside}")
        endpoint = Endpoint(
            stage=stage,
            group=cfg.model_package_group,
            version=version.version,
            endpoint_name=name,
            url=live.url,
            port=live.port,
            pid=live.pid,
            instance=folder.name,
            deployed_at=utc_now(),
        )
        try:
            write_endpoint(home, endpoint)  # from here on the stage is the new server
        except BaseException:
            stop_server(live.pid)
            stop_server(candidate.pid)
            raise
        if current is not None:
            _stop_instance(home, stage, current.instance, current.pid)
            progress(f"stopped version {current.version} (pid {current.pid})")
        stop_server(candidate.pid)
        _remove_stale_instances(home, stage, keep=folder.name)
    return DeployOutcome(
        stage, version.version, endpoint.url, current.version if current else None, smoke
    )


def current_version(home: Path, stage: str) -> int | None:
    endpoint = read_endpoint(home, stage)
    return endpoint.version if endpoint else None


def check_staging_for_promotion(
    cfg: Config, registry: Registry, home: Path, prod_config: StageConfig
) -> tuple[ModelVersion, SmokeResult]:
    """Staging's version, if it may go to prod: Approved, live, passing its smoke test now."""
    staging = read_endpoint(home, "staging")
    if staging is None:
        raise MlopsError(
            "refusing to promote: nothing is deployed to staging (mlops deploy --stage staging)"
        )
    answer = ping(staging.url)
    if not is_live(staging) or answer is None or answer.get("instance") != staging.instance:
        raise MlopsError(
            f"refusing to promote: the staging endpoint {staging.url} (version {staging.version}) "
            "is not live"
        )
    version = registry.describe(staging.version)
    check_promotable(version, prod_config)
    rows = rows_for_version(version, home, cfg.smoke_test.rows)
    smoke = smoke_test_endpoint(
        staging.endpoint_name, rows, cfg.smoke_test.max_mape_pct, staging.url
    )
    record_smoke_test(home, cfg.model_package_group, "staging", version.version, staging.url, smoke)
    if not smoke.passed:
        raise MlopsError(f"refusing to promote: staging's smoke test fails now: {smoke.reason}")
    return version, smoke


def stop_stage(home: Path, stage: str) -> Endpoint | None:
    """Stop the stage's server and forget it; None when nothing was deployed."""
    with stage_lock(home, stage):
        endpoint = read_endpoint(home, stage)
        if endpoint is None:
            return None
        _stop_instance(home, stage, endpoint.instance, endpoint.pid)
        (stage_dir(home, stage) / STATE_FILE).unlink(missing_ok=True)
        return endpoint


def stage_status(home: Path, group: str, registry: Registry, stage: str) -> dict:
    """What serves a stage on this machine, its health and approval status, and warnings."""
    pinned = pinned_version(stage)
    endpoint = read_endpoint(home, stage)
    if endpoint is None:
        return not_deployed(stage, pinned)
    answer = ping(endpoint.url) if is_live(endpoint) else None
    if answer is None:
        health = "down"
    elif answer.get("instance") == endpoint.instance:
        health = "healthy"
    else:
        health = "unexpected server"
    approval = approval_of(registry, endpoint.version)
    return {
        "stage": stage,
        "deployed": True,
        "pinned_version": pinned,
        "version": endpoint.version,
        "url": endpoint.url,
        "endpoint_name": endpoint.endpoint_name,
        "pid": endpoint.pid,
        "deployed_at": endpoint.deployed_at,
        "health": health,
        "approval_status": approval,
        "warnings": status_warnings(stage, endpoint.version, approval, health, pinned),
    }


class LocalDeploymentLog:
    """Deploy attempts as rows of the `deployments` table in $MLOPS_HOME/registry.db."""

    def __init__(self, home: Path, group: str):
        self.home, self.group = home, group

    def record(self, stage: str, backend: str, result: str, **fields: Any) -> None:
        record_deployment(self.home, self.group, stage, backend, result, **fields)


class LocalDeployer:
    """Stages served by local servers under $MLOPS_HOME (see the module doc)."""

    backend = "local"

    def __init__(self, cfg: Config, registry: Registry, home: Path):
        self.cfg, self.registry, self.home = cfg, registry, home

    def current_version(self, stage: str) -> int | None:
        return current_version(self.home, stage)

    def deploy_version(
        self, stage_config: StageConfig, version: ModelVersion, progress: Progress
    ) -> DeployOutcome:
        return deploy_local(self.cfg, stage_config, version, self.home, progress)

    def promotable_staging(self, prod_config: StageConfig, progress: Progress) -> ModelVersion:
        with stage_lock(self.home, "staging"):
            version, smoke = check_staging_for_promotion(
                self.cfg, self.registry, self.home, prod_config
            )
        progress(f"staging serves version {version.version} (Approved); {smoke.summary()}")
        return version

    def stage_status(self, stage: str) -> dict:
        return stage_status(self.home, self.cfg.model_package_group, self.registry, stage)

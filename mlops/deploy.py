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
and pids. The SageMaker backend is `mlops.sagemaker_deploy`, which provides
`deploy_stage(cfg, stage_config, version, registry)` (returns once the endpoint is
InService and its smoke test passed; raises MlopsError otherwise) and, for
`promote`, `live_version(cfg, stage_config, registry) -> (version, endpoint_name) | None`.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import Config
from mlops.errors import MlopsError
from mlops.paths import REPO_ROOT
from mlops.registry import APPROVED, ModelVersion, Registry, connect, current_user, utc_now
from mlops.server import (
    DEFAULT_HOST,
    ServerSettings,
    is_server,
    ping,
    spawn_server,
    stop_server,
)
from mlops.smoke import SmokeResult, SmokeRows, rows_for_version, smoke_test_endpoint
from mlops.stages import STAGES, StageConfig, load_stage_config, resolve_version

CODE_DIR = REPO_ROOT / "model_build" / "steps"
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

Progress = Callable[[str], None]


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


@dataclass(frozen=True)
class DeployOutcome:
    stage: str
    version: int
    url: str
    previous_version: int | None
    smoke: SmokeResult | None


def endpoint_name(group: str, stage: str) -> str:
    """The endpoint name a stage answers to (SageMaker's naming: one endpoint per stage)."""
    return f"{group}-{stage}"


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


def handler_sources(code_dir: Path, module: str = "inference") -> list[Path]:
    """inference.py and the sibling modules it imports, directly or not: what serving needs."""
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = code_dir / f"{name}.py"
        if name in found or not path.is_file():
            continue
        found[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                pending += [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pending.append(node.module.split(".")[0])
    return sorted(found.values())


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
    from mlops.runner import git_commit

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


def _sagemaker_deploy_module() -> Any:
    try:
        import mlops.sagemaker_deploy as module
    except ModuleNotFoundError as exc:
        if exc.name != "mlops.sagemaker_deploy":
            raise
        raise MlopsError(
            "the SageMaker deploy backend (mlops/sagemaker_deploy.py) is not available"
        ) from None
    return module


def deploy_sagemaker(
    cfg: Config, stage_config: StageConfig, version: ModelVersion, registry: Registry
) -> DeployOutcome:
    result = _sagemaker_deploy_module().deploy_stage(cfg, stage_config, version, registry)
    name = result if isinstance(result, str) else getattr(result, "endpoint_name", "")
    smoke = getattr(result, "smoke", None)
    return DeployOutcome(stage_config.stage, version.version, str(name or ""), None, smoke)


def sagemaker_live(cfg: Config, stage: str, registry: Registry) -> tuple[ModelVersion, str]:
    """The version serving a stage on SageMaker and its endpoint name; MlopsError if none."""
    module = _sagemaker_deploy_module()
    live = module.live_version(cfg, load_stage_config(stage), registry)
    if live is None:
        raise MlopsError(f"nothing is deployed to {stage} on SageMaker")
    number, name = live
    return registry.describe(number), name


def sagemaker_smoke_rows(version: ModelVersion, rows: int) -> SmokeRows:
    """Held-out rows of a SageMaker-trained version, read from S3 by the SageMaker backend."""
    import boto3

    return _sagemaker_deploy_module().held_out_rows(boto3.client("s3"), version, rows)


def current_version(home: Path, stage: str) -> int | None:
    endpoint = read_endpoint(home, stage)
    return endpoint.version if endpoint else None


def deploy(
    cfg: Config,
    stage_config: StageConfig,
    registry: Registry,
    home: Path,
    requested: int | None = None,
    backend: str = "local",
    progress: Progress = print,
    resolve: Callable[[], ModelVersion] | None = None,
) -> DeployOutcome:
    """Resolve the version, deploy it, and record the attempt whatever its result."""
    stage = stage_config.stage
    previous = current_version(home, stage) if backend == "local" else None

    def record(result: str, **fields: Any) -> None:
        record_deployment(
            home,
            cfg.model_package_group,
            stage,
            backend,
            result,
            previous_version=previous,
            **fields,
        )

    try:
        version = resolve() if resolve else resolve_version(registry, stage_config, requested)
    except MlopsError as exc:
        record(REFUSED, version=requested, reason=str(exc))
        raise
    progress(f"deploying model version {version.version} to {stage} ({backend} backend)")
    try:
        if backend == "local":
            outcome = deploy_local(cfg, stage_config, version, home, progress)
        else:
            outcome = deploy_sagemaker(cfg, stage_config, version, registry)
    except BaseException as exc:
        record(FAILED, version=version.version, reason=str(exc) or type(exc).__name__)
        raise
    record(SUCCEEDED, version=version.version, url=outcome.url, smoke=outcome.smoke)
    return outcome


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


def check_promotable(version: ModelVersion, prod_config: StageConfig) -> None:
    """Staging's version may go to prod only if Approved and not contradicting prod's pin."""
    if version.approval_status != APPROVED:
        raise MlopsError(
            f"refusing to promote: version {version.version} serving staging is "
            f"{version.approval_status}, not {APPROVED}"
        )
    pin = prod_config.model_version
    if pin is not None and pin != version.version:
        raise MlopsError(
            f"refusing to promote version {version.version}: prod-config.json pins version {pin} "
            "(remove the pin to promote)"
        )


def check_sagemaker_staging(
    cfg: Config, registry: Registry, prod_config: StageConfig
) -> ModelVersion:
    """The same checks as locally, with the SageMaker backend telling what serves staging."""
    version, name = sagemaker_live(cfg, "staging", registry)
    check_promotable(version, prod_config)
    rows = sagemaker_smoke_rows(version, cfg.smoke_test.rows)
    smoke = smoke_test_endpoint(name, rows, cfg.smoke_test.max_mape_pct, endpoint_url=None)
    if not smoke.passed:
        raise MlopsError(f"refusing to promote: staging's smoke test fails now: {smoke.reason}")
    return version


def promote(
    cfg: Config, registry: Registry, home: Path, backend: str = "local", progress: Progress = print
) -> DeployOutcome:
    """Staging's version to prod, if it is Approved, live in staging and passing its smoke test."""
    prod_config = load_stage_config("prod")

    def checked() -> ModelVersion:
        if backend == "local":
            with stage_lock(home, "staging"):
                version, smoke = check_staging_for_promotion(cfg, registry, home, prod_config)
            progress(f"staging serves version {version.version} (Approved); {smoke.summary()}")
            return version
        return check_sagemaker_staging(cfg, registry, prod_config)

    return deploy(
        cfg, prod_config, registry, home, backend=backend, progress=progress, resolve=checked
    )


def stop_stage(home: Path, stage: str) -> Endpoint | None:
    """Stop the stage's server and forget it; None when nothing was deployed."""
    with stage_lock(home, stage):
        endpoint = read_endpoint(home, stage)
        if endpoint is None:
            return None
        _stop_instance(home, stage, endpoint.instance, endpoint.pid)
        (stage_dir(home, stage) / STATE_FILE).unlink(missing_ok=True)
        return endpoint


def _pinned_version(stage: str) -> int | None:
    try:
        return load_stage_config(stage).model_version
    except MlopsError:
        return None


def _approval(registry: Registry, version: int) -> str:
    try:
        return registry.describe(version).approval_status
    except MlopsError:
        return "unknown"


def status_warnings(
    stage: str, version: int, approval: str, health: str, pinned: int | None
) -> list[str]:
    """What an operator should act on: a version that is not Approved, a sick endpoint, a pin
    the stage does not follow."""
    warnings = []
    if approval != APPROVED:
        warnings.append(f"WARNING: version {version} is {approval} but serving {stage}")
    if health not in ("healthy", "InService"):
        warnings.append(f"WARNING: the {stage} endpoint is {health}")
    if pinned is not None and pinned != version:
        warnings.append(
            f"WARNING: {stage}-config.json pins version {pinned} but version {version} "
            f"serves {stage}: run `mlops deploy --stage {stage}`"
        )
    return warnings


def _not_deployed(stage: str, pinned: int | None) -> dict:
    return {
        "stage": stage,
        "deployed": False,
        "pinned_version": pinned,
        "version": None,
        "url": None,
        "endpoint_name": None,
        "pid": None,
        "health": "not deployed",
        "approval_status": None,
        "warnings": [],
    }


def stage_status(home: Path, group: str, registry: Registry, stage: str) -> dict:
    """What serves a stage on this machine, its health and approval status, and warnings."""
    pinned = _pinned_version(stage)
    endpoint = read_endpoint(home, stage)
    if endpoint is None:
        return _not_deployed(stage, pinned)
    answer = ping(endpoint.url) if is_live(endpoint) else None
    if answer is None:
        health = "down"
    elif answer.get("instance") == endpoint.instance:
        health = "healthy"
    else:
        health = "unexpected server"
    approval = _approval(registry, endpoint.version)
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


def sagemaker_stage_status(cfg: Config, registry: Registry, stage: str) -> dict:
    """The same report for a SageMaker stage, read from its CloudFormation stack."""
    pinned = _pinned_version(stage)
    live = _sagemaker_deploy_module().live_version(cfg, load_stage_config(stage), registry)
    if live is None:
        return _not_deployed(stage, pinned)
    version, name = live
    approval = _approval(registry, version)
    health = "InService"  # live_version only reports stacks that completed
    return {
        **_not_deployed(stage, pinned),
        "deployed": True,
        "version": version,
        "endpoint_name": name,
        "health": health,
        "approval_status": approval,
        "warnings": status_warnings(stage, version, approval, health, pinned),
    }

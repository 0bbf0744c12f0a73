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
each server instance has a folder beside it with its unpacked model artifact (whose
code/ serves it), logs and pids (`mlops.local.endpoints`); the history of attempts and smoke tests is
`mlops.local.deploy_history`. `LocalDeployer` is this backend's
`mlops.core.interfaces.Deployer`; which version goes where, and the record of every
attempt, is `mlops.core.deploy`'s business.
"""

from __future__ import annotations

import os
from pathlib import Path

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
from mlops.core.registry import APPROVED, ModelVersion, utc_now
from mlops.core.smoke import SmokeResult, rows_for_version, smoke_limit, smoke_test_endpoint
from mlops.core.stages import StageConfig
from mlops.local.capture import stage_capture
from mlops.local.deploy_history import record_smoke_test
from mlops.local.deploy_journal import Journal, begin, end, recover
from mlops.local.endpoint_app import ServerSettings
from mlops.local.endpoints import (
    STATE_FILE,
    Endpoint,
    current_version,
    is_live,
    prepare_instance,
    read_endpoint,
    remove_stale_instances,
    stage_dir,
    stage_lock,
    stop_instance,
    stray_servers,
    write_endpoint,
)
from mlops.local.port_lock import check_port_free, claim_port, lock_path
from mlops.local.registry import LocalRegistry
from mlops.local.server_process import ping, spawn_server, stop_server


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
        for note in recover(home, stage, cfg.model_package_group):
            progress(note)
        current = read_endpoint(home, stage)
        if current is not None and not is_live(current):
            progress(f"the recorded {stage} server (version {current.version}) is not running")
            current = None
        port_claim = claim_port(port, home, stage)  # before anything starts
        try:
            if current is None:
                check_port_free(port, stage)
            return _deploy_claimed(cfg, stage_config, version, home, current, name, progress)
        finally:
            os.close(port_claim)


def _deploy_claimed(
    cfg: Config,
    stage_config: StageConfig,
    version: ModelVersion,
    home: Path,
    current: Endpoint | None,
    name: str,
    progress: Progress,
) -> DeployOutcome:
    """The deployment proper, under the stage lock with the port claimed (module doc)."""
    stage, port = stage_config.stage, stage_config.local.port
    rows = rows_for_version(version, home, cfg.smoke_test.rows)
    folder = prepare_instance(home, stage, version)
    stage_capture(home, folder, name, stage_config.local)
    begin(
        home,
        Journal(
            stage=stage,
            group=cfg.model_package_group,
            version=version.version,
            instance=folder.name,
            previous_version=current.version if current else None,
            previous_instance=current.instance if current else None,
            started_at=utc_now(),
            pid=os.getpid(),
        ),
    )
    settings = ServerSettings(
        model_dir=str(folder / "model"),
        endpoint_name=name,
        stage=stage,
        version=version.version,
        instance=folder.name,
    )
    keeps = (
        f"version {current.version} keeps serving {stage}" if current else f"nothing serves {stage}"
    )
    candidate = None
    try:
        candidate = spawn_server(settings, folder, "candidate", owned=True)
        progress(f"candidate {folder.name} answers /ping at {candidate.url}")
        smoke = smoke_test_endpoint(name, rows, smoke_limit(cfg), candidate.url)
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
            port_lock=lock_path(port),
        )
    except MlopsError as exc:
        if candidate is not None:
            stop_server(candidate.pid)
        end(home, stage)
        raise MlopsError(f"{exc}; {keeps}") from None
    except BaseException:
        if candidate is not None:
            stop_server(candidate.pid)
        end(home, stage)
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
        check_still_approved(home, cfg.model_package_group, version.version, keeps)
        write_endpoint(home, endpoint)  # from here on the stage is the new server
    except BaseException:
        stop_server(live.pid)
        stop_server(candidate.pid)
        end(home, stage)
        raise
    if current is not None:
        stop_instance(home, stage, current.instance, current.pid)
        progress(f"stopped version {current.version} (pid {current.pid})")
    stop_server(candidate.pid)
    remove_stale_instances(home, stage, keep=folder.name)
    end(home, stage)  # the caller records the history row next
    return DeployOutcome(
        stage, version.version, endpoint.url, current.version if current else None, smoke
    )


def check_still_approved(home: Path, group: str, version: int, keeps: str) -> None:
    """Approval is read again at the switch: a version rejected while its candidate was
    being smoke-tested must not go live (MlopsError; the caller stops the new servers)."""
    status = LocalRegistry(home, group).describe(version).approval_status
    if status != APPROVED:
        raise MlopsError(
            f"refusing to switch: version {version} became {status} during its deploy; {keeps}"
        )


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
    smoke = smoke_test_endpoint(staging.endpoint_name, rows, smoke_limit(cfg), staging.url)
    record_smoke_test(home, cfg.model_package_group, "staging", version.version, staging.url, smoke)
    if not smoke.passed:
        raise MlopsError(f"refusing to promote: staging's smoke test fails now: {smoke.reason}")
    return version, smoke


def stop_stage(home: Path, stage: str, group: str = "") -> tuple[Endpoint | None, list[str]]:
    """Stop the stage's server and forget it, after finishing or undoing an interrupted
    deployment and stopping this home's unrecorded servers of the stage. Returns the
    endpoint stopped (None when nothing was recorded) and what else was found and done."""
    with stage_lock(home, stage):
        notes = recover(home, stage, group)
        endpoint = read_endpoint(home, stage)
        if endpoint is None:
            return None, notes
        stop_instance(home, stage, endpoint.instance, endpoint.pid)
        (stage_dir(home, stage) / STATE_FILE).unlink(missing_ok=True)
        return endpoint, notes


def stage_status(home: Path, group: str, registry: Registry, stage: str) -> dict:
    """What serves a stage on this machine, its health and approval status, and warnings."""
    pinned = pinned_version(stage)
    endpoint = read_endpoint(home, stage)
    strays = stray_servers(home, stage, endpoint.instance if endpoint else None)
    stray_warnings = [
        f"stray server pid {s['pid']} ({s['instance']}) serves nothing recorded: "
        f"`mlops endpoint stop --stage {stage}` stops it"
        for s in strays
    ]
    if endpoint is None:
        status = not_deployed(stage, pinned)
        return {**status, "stray_servers": strays, "warnings": status["warnings"] + stray_warnings}
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
        "stray_servers": strays,
        "warnings": status_warnings(stage, endpoint.version, approval, health, pinned)
        + stray_warnings,
    }


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

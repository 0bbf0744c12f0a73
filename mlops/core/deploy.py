"""Deploying and promoting, whatever the backend: which version, the checks, the record.

A backend's `Deployer` puts a version behind a stage (local servers, or a
CloudFormation stack on SageMaker); this module decides *which* version, refuses
what must not reach a stage, and records every attempt in a `DeploymentLog`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.core.errors import MlopsError
from mlops.core.interfaces import Deployer, DeploymentLog, DeployOutcome, Progress, Registry
from mlops.core.registry import APPROVED, ModelVersion
from mlops.core.stages import StageConfig, load_stage_config, resolve_version

SUCCEEDED, FAILED, REFUSED = "succeeded", "failed", "refused"


def endpoint_name(group: str, stage: str) -> str:
    """The endpoint name a stage answers to (SageMaker's naming: one endpoint per stage)."""
    return f"{group}-{stage}"


def deploy(
    stage_config: StageConfig,
    registry: Registry,
    deployer: Deployer,
    log: DeploymentLog,
    requested: int | None = None,
    progress: Progress = print,
    resolve: Callable[[], ModelVersion] | None = None,
) -> DeployOutcome:
    """Resolve the version, deploy it, and record the attempt whatever its result."""
    stage, backend = stage_config.stage, deployer.backend
    previous = deployer.current_version(stage)

    def record(result: str, **fields: Any) -> None:
        log.record(stage, backend, result, previous_version=previous, **fields)

    try:
        version = resolve() if resolve else resolve_version(registry, stage_config, requested)
    except MlopsError as exc:
        record(REFUSED, version=requested, reason=str(exc))
        raise
    progress(f"deploying model version {version.version} to {stage} ({backend} backend)")
    try:
        outcome = deployer.deploy_version(stage_config, version, progress)
    except BaseException as exc:
        record(FAILED, version=version.version, reason=str(exc) or type(exc).__name__)
        raise
    record(SUCCEEDED, version=version.version, url=outcome.url, smoke=outcome.smoke)
    return outcome


def promote(
    registry: Registry,
    deployer: Deployer,
    log: DeploymentLog,
    progress: Progress = print,
    expected: int | None = None,
) -> DeployOutcome:
    """Staging's version to prod, if it is Approved, live in staging and passing its smoke test;
    with `expected`, only if that is still the version staging serves (the one a reviewer
    approved: a later run may have deployed another to staging meanwhile)."""
    prod_config = load_stage_config("prod")

    def resolve() -> ModelVersion:
        version = deployer.promotable_staging(prod_config, progress)
        if expected is not None and version.version != expected:
            raise MlopsError(
                f"refusing to promote: staging serves version {version.version} now, the "
                f"run under review deployed version {expected} (the later run promotes its own)"
            )
        return version

    return deploy(prod_config, registry, deployer, log, progress=progress, resolve=resolve)


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


def pinned_version(stage: str) -> int | None:
    try:
        return load_stage_config(stage).model_version
    except MlopsError:
        return None


def approval_of(registry: Registry, version: int) -> str:
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


def not_deployed(stage: str, pinned: int | None) -> dict:
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

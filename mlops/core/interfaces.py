"""The small interfaces each backend implements: registry, pipeline runner, deployer.

`mlops.local` implements them on this machine (SQLite, subprocesses, local servers);
`mlops.sagemaker` implements them with SageMaker (Model Registry, Pipelines,
CloudFormation). The command line (`mlops.cli.backends`) is the one place that
picks an implementation; nothing else knows which backend it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.core.registry import ModelVersion

Progress = Callable[[str], None]


class Registry(Protocol):
    """A model package group: numbered versions with approval status, metrics, lineage."""

    group: str

    def list(self) -> list[ModelVersion]: ...
    def describe(self, version: int) -> ModelVersion: ...
    def approve(self, version: int, note: str = "") -> ModelVersion: ...
    def reject(self, version: int, note: str = "") -> ModelVersion: ...
    def latest_approved(self) -> ModelVersion | None: ...


@dataclass(frozen=True)
class DeployOutcome:
    """A stage now serving a version; `smoke` is the smoke test it passed, if one ran."""

    stage: str
    version: int
    url: str
    previous_version: int | None
    smoke: Any = None  # mlops.core.smoke.SmokeResult


class Deployer(Protocol):
    """Puts a version behind a stage's endpoint, and says what serves a stage."""

    backend: str

    def current_version(self, stage: str) -> int | None:
        """The version serving `stage`, when this backend can tell cheaply; else None."""
        ...

    def deploy_version(
        self, stage_config: Any, version: ModelVersion, progress: Progress
    ) -> DeployOutcome:
        """Serve `version` in the stage, smoke-tested; raises MlopsError and keeps the old one."""
        ...

    def promotable_staging(self, prod_config: Any, progress: Progress) -> ModelVersion:
        """Staging's version, if it may go to prod (Approved, live, passing); else MlopsError."""
        ...

    def stage_status(self, stage: str) -> dict:
        """Per stage: version, url, endpoint name, health, approval status, warnings."""
        ...


class DeploymentLog(Protocol):
    """Where every deploy attempt is recorded, refused and failed ones included."""

    def record(self, stage: str, backend: str, result: str, **fields: Any) -> None: ...


class PipelineRunner(Protocol):
    """Runs the step graph on some data and registers the model if the gate passes."""

    def run(self, data: str, progress: Progress = print, extra_lineage: dict | None = None) -> int:
        """The exit code: 0 registered, 1 a step or the gate failed.

        `extra_lineage`: fields recorded with the version (the feature snapshot it used)."""
        ...

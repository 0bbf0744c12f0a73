"""The one place that picks a backend: registries, deployers and deployment logs by name.

Each backend is imported only when asked for, so the local path never imports boto3's
SageMaker code or the SDK.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.core.config import Config
from mlops.core.feature_store import FeatureGroupSpec, FeatureStore
from mlops.core.interfaces import Deployer, DeploymentLog, PipelineRunner, Registry

BACKENDS = ("local", "sagemaker")


def open_registry(backend: str, group: str, home: Path) -> Registry:
    """The model registry of a backend."""
    if backend == "local":
        from mlops.local.registry import LocalRegistry

        return LocalRegistry(home, group)
    from mlops.sagemaker.registry import SageMakerRegistry

    return SageMakerRegistry(group)


def open_deployer(backend: str, cfg: Config, registry: Registry, home: Path) -> Deployer:
    """What puts versions behind a backend's stage endpoints."""
    if backend == "local":
        from mlops.local.deploy import LocalDeployer

        return LocalDeployer(cfg, registry, home)
    from mlops.sagemaker.deploy import SageMakerDeployer

    return SageMakerDeployer(cfg, registry)


def deployment_log(cfg: Config, home: Path) -> DeploymentLog:
    """Every deploy attempt, on either backend, is a row in $MLOPS_HOME/registry.db
    (`mlops endpoint history`); on SageMaker the stacks are the record of what serves."""
    from mlops.local.deploy_history import LocalDeploymentLog

    return LocalDeploymentLog(home, cfg.model_package_group)


def open_pipeline_runner(
    backend: str, cfg: Config, home: Path, args: argparse.Namespace
) -> PipelineRunner:
    """What runs the step graph: the local runner, or a SageMaker Pipeline execution."""
    if backend == "local":
        from mlops.local.runner import LocalPipelineRunner

        return LocalPipelineRunner(cfg, home)
    from mlops.sagemaker.pipeline_run import SageMakerPipelineRunner

    return SageMakerPipelineRunner(cfg, args)


def open_feature_store(
    backend: str, spec: FeatureGroupSpec, home: Path, args: argparse.Namespace
) -> FeatureStore:
    """The project's feature group: Parquet/DuckDB/SQLite here, or SageMaker Feature Store."""
    if backend == "local":
        from mlops.local.feature_store import LocalFeatureStore

        return LocalFeatureStore(spec, home)
    from mlops.sagemaker.feature_store import SageMakerFeatureStore

    return SageMakerFeatureStore.from_args(spec, args)


def open_batch_scorer(backend: str, cfg: Config, args: argparse.Namespace):
    """What scores a file with a model version: local worker processes, or a batch transform."""
    if backend == "local":
        from mlops.core.paths import mlops_home
        from mlops.local.batch import LocalBatchScorer

        return LocalBatchScorer(home=mlops_home())  # each version scores with its own serving code
    from mlops.sagemaker.batch import SageMakerBatchScorer

    return SageMakerBatchScorer(cfg, args)


def open_monitor(backend: str, cfg: Config, registry: Registry, home: Path):
    """What reads a stage's captured traffic (or Model Monitor's findings) into a report."""
    if backend == "local":
        from mlops.local.monitor import LocalMonitor

        return LocalMonitor(cfg, registry, home)
    from mlops.sagemaker.monitor import SageMakerMonitor

    return SageMakerMonitor(cfg, registry)

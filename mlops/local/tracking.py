"""Local experiment tracking: an MLflow SQLite store and artifact folder under $MLOPS_HOME.

No server runs while the pipeline tracks: MLflow writes the database and copies
artifacts directly. `mlops ui --mlflow` starts the MLflow UI on 127.0.0.1 to browse them.

MLflow creates the store on first use with its alembic migrations; two runs starting
together in a fresh $MLOPS_HOME would race on them (one run untracked), so a run opens
the store holding an exclusive lock on `mlflow/mlflow.db.lock`.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops.core.config import Config
from mlops.core.mlflow_tracker import MlflowTracker

TRACKING_DIR = "mlflow"
DATABASE = "mlflow.db"
ARTIFACTS = "artifacts"
LOCK = DATABASE + ".lock"


def tracking_dir(home: Path) -> Path:
    return home / TRACKING_DIR


def store_uri(home: Path) -> str:
    """The SQLite backend store URI (`sqlite:////abs/path/mlflow.db`)."""
    return f"sqlite:///{(tracking_dir(home) / DATABASE).resolve()}"


def artifacts_dir(home: Path) -> Path:
    return tracking_dir(home) / ARTIFACTS


@contextmanager
def store_lock(home: Path) -> Iterator[None]:
    """Held while a run opens the store: its first opening creates and migrates it."""
    with (tracking_dir(home) / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def local_tracker(cfg: Config, home: Path) -> MlflowTracker:
    """The tracker of the local backend (the folder is created on first use)."""
    tracking_dir(home).mkdir(parents=True, exist_ok=True)
    return MlflowTracker(
        store_uri(home),
        cfg.experiment,
        artifact_location=artifacts_dir(home).resolve().as_uri(),
        where=f"{tracking_dir(home)} (mlops ui --mlflow)",
        store_lock=lambda: store_lock(home),
    )

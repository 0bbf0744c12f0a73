"""Local experiment tracking: an MLflow SQLite store and artifact folder under $MLOPS_HOME.

No server runs while the pipeline tracks: MLflow writes the database and copies
artifacts directly. `mlops ui --mlflow` starts the MLflow UI on 127.0.0.1 to browse them.
"""

from __future__ import annotations

from pathlib import Path

from mlops.core.config import Config
from mlops.core.mlflow_tracker import MlflowTracker

TRACKING_DIR = "mlflow"
DATABASE = "mlflow.db"
ARTIFACTS = "artifacts"


def tracking_dir(home: Path) -> Path:
    return home / TRACKING_DIR


def store_uri(home: Path) -> str:
    """The SQLite backend store URI (`sqlite:////abs/path/mlflow.db`)."""
    return f"sqlite:///{(tracking_dir(home) / DATABASE).resolve()}"


def artifacts_dir(home: Path) -> Path:
    return tracking_dir(home) / ARTIFACTS


def local_tracker(cfg: Config, home: Path) -> MlflowTracker:
    """The tracker of the local backend (the folder is created on first use)."""
    tracking_dir(home).mkdir(parents=True, exist_ok=True)
    return MlflowTracker(
        store_uri(home),
        cfg.experiment,
        artifact_location=artifacts_dir(home).resolve().as_uri(),
        where=f"{tracking_dir(home)} (mlops ui --mlflow)",
    )

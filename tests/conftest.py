"""Shared fixtures. Tests never read ../shared.

Tests of the machinery run against the fixture project in tests/fixture_project/ (its
own config, suite and data generator): $MLOPS_CONFIG points there for the whole
session, so `load_config()` and every `mlops` command read it. Only tests/project/
reads the fork's own config (model_build/config.yaml) and its committed sample.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = REPO_ROOT / "model_build" / "steps"
FIXTURE_PROJECT = Path(__file__).resolve().parent / "fixture_project"
FIXTURE_CONFIG = FIXTURE_PROJECT / "model_build" / "config.yaml"
# Set at import, before any test (and in every xdist worker): subprocesses inherit it.
os.environ["MLOPS_CONFIG"] = str(FIXTURE_CONFIG)
# Step scripts import their siblings as top-level modules, as they do in a SageMaker
# container where the source folder is the working directory.
if str(STEPS_DIR) not in sys.path:
    sys.path.insert(0, str(STEPS_DIR))

PIPELINE_ROWS = 10_000  # like the reference data; fewer rows give a noisy MSE near the gate


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, isolated $MLOPS_HOME."""
    path = tmp_path / "mlops-home"
    monkeypatch.setenv("MLOPS_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean fixture-project data file (read-only by convention: copy before corrupting)."""
    from fixture_project.generate import generate_buildings

    path = tmp_path_factory.mktemp("data") / "buildings.csv"
    generate_buildings(PIPELINE_ROWS, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def _registered_home(tmp_path_factory: pytest.TempPathFactory, data_csv: Path):
    """One pipeline run shared by the session: a home with version 1 registered."""
    from mlops.core.config import load_config
    from mlops.local.runner import run_pipeline

    path = tmp_path_factory.mktemp("registered") / "mlops-home"
    result = run_pipeline(load_config(), data_csv, path, progress=lambda _: None)
    return path, result


@pytest.fixture
def registered_home(_registered_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of a home holding one registered version (PendingManualApproval).

    Returns (home, RunResult); the run's paths point into the shared original,
    which tests must not modify.
    """
    original, result = _registered_home
    path = tmp_path / "mlops-home"
    shutil.copytree(original, path, symlinks=True)
    monkeypatch.setenv("MLOPS_HOME", str(path))
    return path, result


@pytest.fixture
def config_file(tmp_path: Path):
    """A function writing a copy of the fixture config, changed by `mutate(raw_dict)`.

    Its relative paths are made absolute first: the copy lives in another folder.
    """
    import yaml

    def write(mutate) -> Path:
        raw = yaml.safe_load(FIXTURE_CONFIG.read_text())
        for key in ("expectation_suite", "sample", "golden"):
            if raw["data"].get(key):
                raw["data"][key] = str(FIXTURE_PROJECT / raw["data"][key])
        mutate(raw)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created (the migrations cost seconds once)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_db(_mlflow_db_template: Path):
    """A function copying a ready MLflow store to `folder/mlflow.db`; returns the path."""

    def seed(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(_mlflow_db_template, folder / "mlflow.db"))

    return seed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (the template's self-tests, the demos) first: xdist then gives them to
    different workers at the start, instead of one worker running them at the end while
    the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

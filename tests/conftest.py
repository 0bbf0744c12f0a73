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


def _run_task_project(name: str, folder: Path) -> tuple[Path, str]:
    """`mlops pipeline run` on one task fixture (tests/fixtures/tasks.py) in a new home under
    `folder`; returns the home and what the run printed."""
    import contextlib
    import io

    from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame, project_config, rent_frame

    from mlops.cli import run

    config, frame, seed = {
        "churn": (CHURN_CONFIG, churn_frame, 11),
        "rent": (RENT_CONFIG, rent_frame, 12),
    }[name]
    data = folder / f"{name}.csv"
    frame(TASK_ROWS, seed=seed).to_csv(data, index=False)
    home = folder / "mlops-home"
    argv = ["pipeline", "run", "--data", str(data), "--config", str(project_config(config, folder))]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(argv)
    assert code == 0, err.getvalue()
    return home, out.getvalue()


TASK_ROWS = 4000


@pytest.fixture(scope="session")
def _task_runs(tmp_path_factory: pytest.TempPathFactory):
    """Each task fixture's pipeline run once per session, when first asked for."""
    done: dict[str, tuple[Path, str]] = {}

    def get(name: str) -> tuple[Path, str]:
        if name not in done:
            done[name] = _run_task_project(name, tmp_path_factory.mktemp(f"task-{name}"))
        return done[name]

    return get


@pytest.fixture
def task_run(_task_runs, home: Path):
    """A function `task_run(name)` ("churn": the yes/no classifier; "rent": the regression;
    TASK_ROWS rows) that fills the test's empty $MLOPS_HOME with a private copy of a home
    where that fixture's pipeline ran once (version 1, PendingManualApproval) and returns
    what the run printed. The run's paths point into the shared original: read-only."""

    def copy(name: str) -> str:
        original, printed = _task_runs(name)
        shutil.copytree(original, home, symlinks=True)
        return printed

    return copy


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

"""Lineage: where a model came from (commit, pull request, data hash, parameters).

Both backends record the same fields; the SageMaker registry stores them as flat
CustomerMetadataProperties (string values, params as `params.<section>.<name>`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from mlops.core.config import Config
from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT

# CustomerMetadataProperties values must be non-empty: this stands for "no PR".
NO_VALUE = "none"
PARAMS_PREFIX = "params."  # lineage params as flat `params.<section>.<name>` entries


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def git_commit(repo: Path = REPO_ROOT) -> str:
    """HEAD of the repository, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def pr_number() -> str:
    """The pull request number when running in CI for a PR, else ''."""
    if os.environ.get("MLOPS_PR_NUMBER"):
        return os.environ["MLOPS_PR_NUMBER"]
    ref = os.environ.get("GITHUB_REF", "")  # refs/pull/<n>/merge on pull_request events
    parts = ref.split("/")
    return parts[2] if len(parts) == 4 and parts[1] == "pull" else ""


def check_data_file(path: Path) -> None:
    """Fail early, with one line, on a data file the steps could not read."""
    if not path.exists():
        raise UsageError(f"data file not found: {path}")
    if path.is_dir():
        raise UsageError(f"data path is a directory, expected a CSV file: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"data file is not readable: {path}")
    if path.stat().st_size == 0:
        raise UsageError(f"data file is empty: {path}")


def run_parameters(cfg: Config) -> dict[str, dict]:
    """The run's settings, by config section: what lineage, tracking and the SageMaker
    registry's metadata record (the model family's name is train.model)."""
    return {
        "preprocess": cfg.preprocess.model_dump(),
        "train": {"model": cfg.model_family.NAME, **cfg.train.hyperparameters},
        "gate": cfg.gate.model_dump(exclude_none=True),
    }


def lineage(
    cfg: Config,
    data_file: Path | str,
    run_id: str,
    data_sha256: str,
    backend: str,
    extra: dict | None = None,
) -> dict:
    """What a registered version records about how it was made, on either backend.

    `extra`: more fields, e.g. `feature_snapshot` when the data came from the feature store.
    """
    return {
        **(extra or {}),
        "git_commit": git_commit(),
        "pr_number": pr_number(),
        "data_sha256": data_sha256,
        "data_file": str(data_file),
        "params": run_parameters(cfg),
        "run_id": run_id,
        "backend": backend,
    }

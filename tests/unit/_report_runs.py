"""Pipeline runs written by hand into a $MLOPS_HOME, laid out as the local runner lays them
out (found through mlops.core.run_layout), for the PR report's tests.

The evaluate outputs are real: `model_build/steps/evaluate.py`'s own `evaluate` turns
fixed predictions into evaluation.json and predictions.csv. The model archive holds its
manifest and nothing else (no model, no serving code): a report built from such a run
cannot have loaded a model.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import evaluate
import numpy as np
import pandas as pd

from mlops.core import run_layout
from mlops.core.graph import Pipeline
from mlops.core.registry import ModelVersion
from mlops.local.registry import LocalRegistry
from stepkit.artifact import MANIFEST
from stepkit.baseline import baseline_statistics
from stepkit.rows import typed_frame
from stepkit.splits import write_split


@dataclass
class Fixed:
    """An evaluate Scorer that answers fixed predictions (as a loaded model would)."""

    model: SimpleNamespace
    predictions: np.ndarray

    @property
    def manifest(self) -> dict:
        return self.model.manifest

    def missing(self, rows: pd.DataFrame) -> list[str]:
        return []

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return self.predictions


def scorer(
    predictions, target: str, task: str = "regression", class_labels=None, threshold=0.5
) -> Fixed:
    manifest = {"target": target, "task": task}
    if class_labels is not None:
        manifest.update(class_labels=list(class_labels), threshold=threshold)
    model = SimpleNamespace(
        task=task, threshold=threshold, class_labels=class_labels, manifest=manifest
    )
    return Fixed(model, np.asarray(predictions, dtype=float))


def manifest_only_archive(path: Path, manifest: dict) -> Path:
    """A model.tar.gz holding manifest.json alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def write_run(
    home: Path,
    pipeline: Pipeline,
    run_id: str,
    rows: pd.DataFrame,
    challenger: Fixed,
    champion: Fixed | None = None,
    record: dict | None = None,
    max_regression_pct: float = 5.0,
) -> Path:
    """A finished run: held-out rows, evaluate's outputs, the model archive, run.json."""
    rows = rows.astype(str)  # as the split files hold them
    evaluation, predictions = evaluate.evaluate(rows, challenger, champion, max_regression_pct)
    folder = run_layout.evaluation_folder(home, run_id, pipeline)
    folder.mkdir(parents=True)
    (folder / run_layout.EVALUATION_FILE).write_text(json.dumps(evaluation))
    predictions.to_csv(folder / run_layout.HELD_OUT_PREDICTIONS, index=False)
    write_split(rows, run_layout.held_out_folder(home, run_id, pipeline), "test")
    manifest_only_archive(run_layout.model_archive(home, run_id, pipeline), challenger.manifest)
    run_dir = run_layout.run_dir(home, run_id)
    run = {"run_id": run_id, "status": "registered", "data_file": "", **(record or {})}
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def register_champion(
    home: Path,
    group: str,
    pipeline: Pipeline,
    rows: pd.DataFrame,
    champion: Fixed,
    text: tuple[str, ...] = (),
    run_id: str = "20250101-000000-champ1",
) -> ModelVersion:
    """An approved version whose own run scored `champion`'s predictions on `rows`, with
    the training baseline of those rows (features and target)."""
    run_dir = write_run(home, pipeline, run_id, rows, champion)
    target = champion.manifest["target"]
    features = [c for c in rows.columns if c != target]
    typed, _ = typed_frame(rows[features].astype(str), features, text)
    baseline = baseline_statistics(typed, features, text, rows[target], champion.model.task)
    baseline_file = run_dir / "baseline.json"
    baseline_file.write_text(json.dumps(baseline))
    registry = LocalRegistry(home, group)
    version = registry.register(
        model_archive=run_layout.model_archive(home, run_id, pipeline),
        evaluation=run_layout.evaluation_folder(home, run_id, pipeline)
        / run_layout.EVALUATION_FILE,
        baseline=baseline_file,
        lineage={"run_id": run_id, "git_commit": "a" * 40, "params": {"train": {"eta": 0.1}}},
    )
    return registry.approve(version.version)

"""Experiment tracking: every pipeline run is a run in an experiment named after the project.

What a run records is decided here, once, for both backends: parameters, per-round
training curves, evaluation metrics (challenger and champion), data hash, commit, PR,
the registered version, artifacts, and one child run per tuning trial. Where it goes
is the backend's business: `mlops.local.tracking` (an MLflow SQLite store under
$MLOPS_HOME) and `mlops.sagemaker.tracking` (a SageMaker managed MLflow server).

Tracking never fails a run: an implementation that cannot reach its store prints one
warning line and lets the pipeline go on untracked.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlops.core.registry import metrics_from_evaluation

FINISHED, FAILED = "FINISHED", "FAILED"  # MLflow's run statuses
# Tags MLflow's UI shows as the run's source commit and parent.
GIT_COMMIT_TAG = "mlflow.source.git.commit"
PARENT_TAG = "mlflow.parentRunId"
MAX_CHILD_CURVE_POINTS = 200  # a trial's curve is thinned to this many points


@dataclass
class RunRecord:
    """What one (part of a) run logs; any field may be empty."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)  # metric per round (step)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)


class TrackedRun(Protocol):
    """One pipeline run in the tracking store. Calls never raise."""

    def run_id(self) -> str:
        """The store's id for this run ('' when tracking is off or failed)."""
        ...

    def log(self, record: RunRecord) -> None: ...

    def log_child(self, name: str, record: RunRecord, status: str = FINISHED) -> None:
        """A nested run: a tuning trial."""
        ...

    def finish(self, status: str) -> None:
        """End the run with FINISHED or FAILED ('' keeps its status); waits for pending logs."""
        ...


class Tracker(Protocol):
    """Where runs go: opens one per pipeline run."""

    experiment: str

    def start_run(self, name: str, tags: Mapping[str, str]) -> TrackedRun: ...

    def resume(self, run_id: str) -> TrackedRun:
        """A run tracked earlier, to add to it."""
        ...

    def describe(self) -> str:
        """One line: where runs are tracked (printed at the start of a run)."""
        ...


class UntrackedRun:
    """Tracking off: every call is a no-op."""

    def run_id(self) -> str:
        return ""

    def log(self, record: RunRecord) -> None:
        pass

    def log_child(self, name: str, record: RunRecord, status: str = FINISHED) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


def flatten(values: Mapping, prefix: str = "") -> dict[str, str]:
    """`{"train": {"eta": 0.05}}` -> `{"train.eta": "0.05"}` (MLflow params are flat strings)."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def metric_key(name: str) -> str:
    """`validation:rmse` -> `validation_rmse`: one spelling every tracking store accepts."""
    return name.replace(":", "_")


def evaluation_metrics(evaluation: Mapping) -> dict[str, float]:
    """evaluation.json as flat metrics: `test_mse`... and `champion_test_mse`... when scored
    (a classifier's: `test_auc`, `test_log_loss`...)."""
    if not evaluation:
        return {}
    metrics = {f"test_{k}": v for k, v in metrics_from_evaluation(dict(evaluation)).items()}
    if evaluation.get("champion"):
        champion = metrics_from_evaluation(dict(evaluation["champion"]))
        metrics.update({f"champion_test_{k}": v for k, v in champion.items()})
    return metrics


def read_curve(path: Path) -> dict[str, list[float]]:
    """train.py's curve.csv (`round,<metric>...`) as {metric key: values by round}."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    return {
        metric_key(name): [float(r[i]) for r in body]
        for i, name in enumerate(header)
        if name != "round"
    }


def thin(values: list[float], points: int = MAX_CHILD_CURVE_POINTS) -> dict[int, float]:
    """At most `points` (round, value) pairs, evenly spaced, the last round always kept."""
    if len(values) <= points:
        return dict(enumerate(values))
    last = len(values) - 1
    stride = -(-last // (points - 1))  # ceil: the last round is added on top
    kept = {i: values[i] for i in range(0, last, stride)}
    kept[len(values) - 1] = values[-1]
    return kept


def training_record(output_data: Path) -> RunRecord:
    """The training step's curve and summary (rounds, best round, best scores)."""
    record = RunRecord(curves=read_curve(output_data / "curve.csv"))
    summary_file = output_data / "training.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        record.metrics.update(
            rounds=float(summary["rounds"]), best_iteration=float(summary["best_iteration"])
        )
        record.metrics.update(
            {f"best_{metric_key(k)}": float(v) for k, v in summary.get("best", {}).items()}
        )
    return record


def lineage_tags(lineage: Mapping) -> dict[str, str]:
    """Commit, PR, data hash, backend: searchable tags (the commit also as MLflow's own tag)."""
    tags = {
        key: str(lineage[key])
        for key in ("git_commit", "pr_number", "data_sha256", "data_file", "backend")
        if lineage.get(key) not in (None, "")
    }
    if "git_commit" in tags:
        tags[GIT_COMMIT_TAG] = tags["git_commit"]
    return tags


def run_link(tracking_run_id: str, experiment_id: str = "") -> str:
    """Where a run is in the MLflow UI, relative to its root (`mlops ui --mlflow` serves it locally)."""
    if not tracking_run_id:
        return ""
    if experiment_id:
        return f"#/experiments/{experiment_id}/runs/{tracking_run_id}"
    return f"runs/{tracking_run_id}"

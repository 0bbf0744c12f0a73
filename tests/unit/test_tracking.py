"""Tracking: what a run records, written to a real MLflow SQLite store, and read back;
a store that fails costs one warning line, never the run."""

from __future__ import annotations

import json

import pytest

from mlops.core.mlflow_tracker import MlflowTracker
from mlops.core.tracking import (
    PARENT_TAG,
    RunRecord,
    evaluation_metrics,
    flatten,
    read_curve,
    thin,
    training_record,
)


def test_flatten_and_evaluation_metrics():
    assert flatten({"train": {"eta": 0.05, "n": 3}, "gate": {"x": True}}) == {
        "train.eta": "0.05",
        "train.n": "3",
        "gate.x": "True",
    }
    evaluation = {
        "regression_metrics": {"mse": {"value": 4.0}, "r2": {"value": 0.9}},
        "champion": {"regression_metrics": {"mse": {"value": 5.0}}},
        "champion_mse_limit": 5.25,
    }
    assert evaluation_metrics(evaluation) == {
        "test_mse": 4.0,
        "test_r2": 0.9,
        "champion_test_mse": 5.0,
    }


def test_curve_and_summary_from_the_training_output(tmp_path):
    (tmp_path / "curve.csv").write_text(
        "round,validation:rmse\n0,10.5\n1,8.25\n2,9.0\n3,7"
    )  # last line still being written: complete rows only count if they parse
    (tmp_path / "training.json").write_text(
        json.dumps({"rounds": 4, "best_iteration": 1, "best": {"validation:rmse": 8.25}})
    )
    record = training_record(tmp_path)
    assert record.curves == {"validation_rmse": [10.5, 8.25, 9.0, 7.0]}
    assert record.metrics == {"rounds": 4.0, "best_iteration": 1.0, "best_validation_rmse": 8.25}
    assert read_curve(tmp_path / "missing.csv") == {}


@pytest.mark.parametrize(("n", "points"), [(10, 20), (1000, 200), (1001, 200)])
def test_thin_keeps_at_most_points_and_the_last_round(n, points):
    values = [float(i) for i in range(n)]
    kept = thin(values, points)
    assert len(kept) <= points
    assert kept[n - 1] == n - 1 and kept[0] == 0
    assert all(values[i] == v for i, v in kept.items())


def test_a_run_and_its_child_in_a_real_mlflow_store(tmp_path, mlflow_db):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{mlflow_db(tmp_path)}"
    tracker = MlflowTracker(uri, "exp", artifact_location=(tmp_path / "art").as_uri())
    run = tracker.start_run("run-1", {"git_commit": "abc"})
    artifact = tmp_path / "evaluation.json"
    artifact.write_text("{}")
    curve = [5.0 - i / 1000 for i in range(1500)]  # more than one log_batch of metrics
    run.log(
        RunRecord(
            params={"train.eta": "0.05"},
            metrics={"test_mse": 12.5},
            curves={"validation:rmse": curve},
            artifacts=[artifact],
        )
    )
    run.log_child("run-1/trial-000", RunRecord(params={"train.eta": "0.1"}, curves={"v": curve}))
    run.finish("FINISHED")

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(run.run_id())
    assert parent.info.status == "FINISHED" and parent.info.run_name == "run-1"
    assert parent.data.params == {"train.eta": "0.05"}
    assert parent.data.metrics["test_mse"] == 12.5
    assert parent.data.tags["git_commit"] == "abc"
    history = client.get_metric_history(run.run_id(), "validation_rmse")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == curve
    assert [a.path for a in client.list_artifacts(run.run_id())] == ["evaluation.json"]
    experiment = client.get_experiment_by_name("exp")
    (child,) = client.search_runs(
        [experiment.experiment_id], f"tags.`{PARENT_TAG}` = '{run.run_id()}'"
    )
    assert child.data.params == {"train.eta": "0.1"}
    assert 2 <= len(client.get_metric_history(child.info.run_id, "v")) <= 200


def test_a_broken_store_warns_once_and_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    warnings: list[str] = []
    tracker = MlflowTracker(f"sqlite:///{blocker}/mlflow.db", "exp", warn=warnings.append)
    run = tracker.start_run("run-1", {})
    run.log(RunRecord(metrics={"test_mse": 1.0}))
    run.log_child("c", RunRecord())
    run.finish("FAILED")
    assert run.run_id() == ""
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: tracking stopped, the run goes on untracked")

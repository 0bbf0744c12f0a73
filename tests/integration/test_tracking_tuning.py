"""A tuned, tracked local pipeline run end to end: Optuna trials in parallel processes,
each an MLflow child run; the best trial's model is evaluated, gated and registered, and
the registered version and the tracked run point at each other. A run that fails the gate
is tracked too."""

from __future__ import annotations

import json

import pytest

from mlops.cli import run as mlops
from mlops.core.config import load_config
from mlops.core.errors import GateFailed
from mlops.core.tracking import PARENT_TAG
from mlops.local.registry import LocalRegistry
from mlops.local.runner import run_pipeline
from mlops.local.tracking import local_tracker, store_uri, tracking_dir
from stepkit.artifact import archive_manifest

pytestmark = pytest.mark.slow

TRIALS = 4


def tuned(raw):
    raw["train"]["hyperparameters"]["num_round"] = 400
    raw["train"]["tuning"] = {
        "objective": {"metric": "validation:rmse", "direction": "minimize"},
        "ranges": {
            "max_depth": {"type": "integer", "min": 2, "max": 5},
            "eta": {"type": "continuous", "min": 0.05, "max": 0.4, "scale": "log"},
        },
        "n_trials": TRIALS,
        "parallel": 2,
    }


def client_for(home):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store_uri(home))


def test_tuned_run_registers_the_best_trial_with_its_lineage(
    config_file, data_csv, home, mlflow_db
):
    cfg = load_config(config_file(tuned))  # config_file writes tmp_path / "config.yaml"
    mlflow_db(tracking_dir(home))
    lines: list[str] = []
    result = run_pipeline(cfg, data_csv, home, lines.append, tracker=local_tracker(cfg, home))

    summary = json.loads((result.run_dir / "run.json").read_text())
    tuning = summary["tuning"]
    assert tuning["trials"] == TRIALS and tuning["objective"] == "validation:rmse"
    best_name = f"trial-{tuning['best_trial']:03d}"
    assert len(tuning["trial_values"]) == TRIALS - tuning["pruned"] - tuning["failed"]
    assert tuning["best_value"] == min(tuning["trial_values"].values())
    assert tuning["trial_values"][best_name] == tuning["best_value"]
    # The registered model is the best trial's, byte for byte (the manifest's digests), and
    # each trial trained with its own values.
    kept = archive_manifest(result.version.model_uri)
    best = json.loads(
        (result.run_dir / "train" / best_name / "model" / "manifest.json").read_text()
    )
    assert kept["files"] == best["files"]
    assert kept["hyperparameters"] == {**cfg.train.hyperparameters, **tuning["best_params"]}
    trained = [
        json.loads(path.read_text())["hyperparameters"]
        for path in sorted((result.run_dir / "train").glob("trial-*/model/manifest.json"))
    ]
    assert len({(t["max_depth"], t["eta"]) for t in trained}) == len(trained) > 1
    version = LocalRegistry(home, cfg.model_package_group).describe(result.version.version)
    assert version.lineage["tuning"]["best_trial"] == tuning["best_trial"]
    for name, value in tuning["best_params"].items():
        assert version.lineage["params"]["train"][name] == value

    client = client_for(home)
    run = client.get_run(version.lineage["tracking_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["registered_version"] == str(version.version)
    assert run.data.tags["mlops.run_id"] == result.run_id
    assert run.data.metrics["test_mse"] == pytest.approx(version.metrics["mse"])
    assert run.data.params["tuned.max_depth"] == str(tuning["best_params"]["max_depth"])
    curve = client.get_metric_history(run.info.run_id, "validation_rmse")
    assert len(curve) == run.data.metrics["rounds"]
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"
    )
    assert sorted(c.data.tags["trial"] for c in children) == [str(i) for i in range(TRIALS)]
    assert any("tracked: run" in line for line in lines)

    # The PR report links the run and summarises the search; its plots join the run.
    out = home.parent / "pr.md"
    config = home.parent / "config.yaml"
    assert mlops(["report", "pr", "--out", str(out), "--report-dir", str(home.parent / "r"),
                  "--config", str(config)]) == 0  # fmt: skip
    text = out.read_text()
    assert f"Tracked as MLflow run `{run.info.run_id}`" in text
    assert "### Tuning" in text and f"{TRIALS} trials" in text
    assert f"best: trial {tuning['best_trial']}" in text
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"evaluation.json", "curve.csv", "run.json"} <= artifacts
    assert any(path.endswith(".png") for path in artifacts), artifacts


def test_a_run_failing_the_gate_is_tracked_as_failed(config_file, data_csv, home, mlflow_db):
    def strict(raw):
        raw["train"]["hyperparameters"]["num_round"] = 50
        raw["gate"]["max_mse"] = 1.0

    cfg = load_config(config_file(strict))
    mlflow_db(tracking_dir(home))
    with pytest.raises(GateFailed):
        run_pipeline(cfg, data_csv, home, lambda _: None, tracker=local_tracker(cfg, home))
    (run_dir,) = (home / "runs").iterdir()
    tracking = json.loads((run_dir / "run.json").read_text())["tracking"]
    run = client_for(home).get_run(tracking["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["gate"] == "failed" and "quality gate failed" in run.data.tags["error"]
    assert run.data.metrics["test_mse"] > cfg.gate.max_mse
    assert run.data.tags["data_sha256"] == run.data.tags["data_sha256"].lower()
    assert len(run.data.tags["data_sha256"]) == 64

"""`mlops data drift` beyond the features: the target against the training target, and the
registered version's predictions on the file (through its own serving code) against its
predictions on its held-out rows. On the fixture project and on both task fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixture_project.generate import generate_buildings
from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame, project_config, rent_frame

from mlops.cli import run
from mlops.core.config import load_config

CFG = load_config()
TARGET = CFG.data.target


def drift_of(data, tmp_path, capsys, *extra: str) -> tuple[dict, str, str]:
    reports = tmp_path / "reports"
    assert run(["data", "drift", str(data), "--report-dir", str(reports), *extra]) == 0
    out, err = capsys.readouterr()
    return json.loads((reports / "drift.json").read_text()), out, err


def drifted_features(report: dict) -> list[str]:
    return [f["feature"] for f in report["features"] if f["drifted"]]


def test_target_times_1_3_is_target_drift_alone(registered_home, tmp_path, capsys):
    data = tmp_path / "costlier.csv"
    fresh = generate_buildings(2000, seed=9)
    fresh[TARGET] *= 1.3
    fresh.to_csv(data, index=False)
    report, out, err = drift_of(data, tmp_path, capsys)
    assert drifted_features(report) == []
    assert report["target"]["feature"] == TARGET and report["target"]["drifted"]
    assert report["target"]["psi"] > 0.5  # threshold 0.2
    assert report["prediction"]["psi"] < 0.05 and not report["prediction"]["drifted"]
    assert f"target: {TARGET}" in out and "prediction: model v1" in out
    assert err.startswith(f"warning: target: {TARGET} drifted (PSI ")


def test_a_model_shifting_feature_change_is_prediction_drift(registered_home, tmp_path, capsys):
    data = tmp_path / "bigger.csv"
    fresh = generate_buildings(2000, seed=9)
    monotonic = CFG.behaviour.monotonic_increasing[0]  # a feature the model leans on
    fresh[monotonic] *= 1.5
    fresh.to_csv(data, index=False)
    report, _, err = drift_of(data, tmp_path, capsys)
    prediction = report["prediction"]
    assert prediction["drifted"] and prediction["psi"] > 0.5
    assert prediction["current_mean"] > 1.2 * prediction["baseline_mean"]
    assert not report["target"]["drifted"]  # the costs themselves did not move
    assert "prediction: model v1 drifted" in err


def test_a_file_without_the_target_says_target_drift_was_skipped(registered_home, tmp_path, capsys):
    data = tmp_path / "unlabelled.csv"
    generate_buildings(2000, seed=9).drop(columns=TARGET).to_csv(data, index=False)
    report, out, _ = drift_of(data, tmp_path, capsys)
    assert len(report["features"]) == len(CFG.data.features)
    assert report["target"] is None and report["prediction"]["psi"] < 0.05
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert skipped == [f"target drift skipped: the data has no {TARGET!r} column"]
    assert report["skipped"] == skipped
    assert (tmp_path / "reports" / "drift.md").read_text().count("skipped") == 1


def test_with_an_explicit_baseline_prediction_drift_is_skipped(registered_home, tmp_path, capsys):
    _, result = registered_home
    data = tmp_path / "same.csv"
    generate_buildings(2000, seed=9).to_csv(data, index=False)
    baseline = result.version.baseline_uri
    report, out, _ = drift_of(data, tmp_path, capsys, "--baseline", baseline)
    assert report["prediction"] is None and not report["target"]["drifted"]
    assert "prediction drift skipped: --baseline FILE names no model version" in out


def shift_churn(df):
    """More basic plans and support calls (the churn signal): the model's scores rise."""
    basic = np.arange(len(df)) % 10 < 8
    return df.assign(plan=np.where(basic, "basic", df.plan), support_calls=df.support_calls + 3)


def more_churn(df):
    return df.assign(churned=np.where(np.arange(len(df)) % 2 == 0, "yes", df.churned))


def bigger_flats(df):
    return df.assign(area_sqm=df.area_sqm * 1.6)


def dearer_rent(df):
    return df.assign(rent=df.rent * 1.3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "config", "frame", "target", "shift_model", "shift_target"),
    [
        ("churn", CHURN_CONFIG, churn_frame, "churned", shift_churn, more_churn),
        ("rent", RENT_CONFIG, rent_frame, "rent", bigger_flats, dearer_rent),
    ],
    ids=["churn", "rent"],
)
def test_target_and_prediction_drift_on_the_task_fixtures(
    task_run, tmp_path, capsys, task, config, frame, target, shift_model, shift_target
):
    """Binary classification with yes/no labels and a regression, both with string categories."""
    config_arg = ("--config", str(project_config(config, tmp_path)))
    task_run(task)  # version 1 trained on TASK_ROWS rows, shared with test_task_projects
    fresh = frame(1500, seed=5)
    cases = {"same": fresh, "model": shift_model(fresh), "target": shift_target(fresh)}
    found = {}
    for name, df in cases.items():
        path = tmp_path / f"{name}.csv"
        df.to_csv(path, index=False)
        found[name], _, _ = drift_of(path, tmp_path / name, capsys, *config_arg)
    assert not found["same"]["drifted"]
    assert found["same"]["target"]["feature"] == target
    assert found["model"]["prediction"]["drifted"] and not found["model"]["target"]["drifted"]
    assert found["target"]["target"]["drifted"] and not found["target"]["prediction"]["drifted"]
    assert drifted_features(found["target"]) == []


def test_version_picks_the_registered_version_to_compare_with(registered_home, tmp_path, capsys):
    data = tmp_path / "same.csv"
    generate_buildings(2000, seed=9).to_csv(data, index=False)
    chosen, out, _ = drift_of(data, tmp_path / "v1", capsys, "--version", "1")
    assert out.startswith("baseline: model version 1 (")
    assert chosen["model_label"] == "model v1" and chosen["prediction"]["psi"] < 0.05

    assert run(["data", "drift", str(data), "--version", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model version 7 does not exist" in err
    with pytest.raises(SystemExit) as refused:
        run(["data", "drift", str(data), "--version", "1", "--baseline", "b.json"])
    assert refused.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err

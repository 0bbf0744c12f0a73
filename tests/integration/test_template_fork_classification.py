"""The template self-test for the other task and another model family: a fork whose data
set (generated here) is a yes/no outcome with a string categorical column and a
high-cardinality string code, trained with scikit-learn's HistGradientBoosting instead
of the example's XGBoost. `mlops init --task binary_classification --model sklearn`
there, then the fork's project tests, its demo (pipeline and gate, staging deploy with
the accuracy smoke test, promotion, batch scoring, the monitor) and its PR report. Only
model_build/ and data_checks/ change."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from fixtures.tasks import subscription_data
from test_template_fork import (  # noqa: F401 (fork_env: a fixture)
    fork_env,
    in_fork,
    make_fork,
    stop_endpoints,
    story,
    touched,
)

pytestmark = pytest.mark.slow


def test_a_classification_fork_on_scikit_learn_runs_its_story(tmp_path, fork_env):  # noqa: F811
    fork = make_fork(tmp_path / "fork")
    df = subscription_data()
    data = tmp_path / "subscribers.csv"
    df.to_csv(data, index=False)

    def init(path):
        argv = ["-m", "mlops", "init", "--data", str(path), "--name", "subs", "--force"]
        task = ["--task", "binary_classification", "--model", "sklearn"]
        return in_fork(fork, fork_env, *argv, *task, "--target", "status")

    three = df.assign(status=np.where(df.months > 40, "paused", df.status))
    three.to_csv(tmp_path / "three.csv", index=False)
    refused = init(tmp_path / "three.csv")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "not binary: 3 labels (left, paused, stayed)" in refused.stderr

    done = init(data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left out code: 400 distinct strings" in done.stdout
    assert "string categories: contract, area" in done.stdout
    cfg = yaml.safe_load((fork / "model_build" / "config.yaml").read_text())
    assert cfg["task"] == "binary_classification"
    assert cfg["data"]["categorical_features"] == ["contract", "area"]
    assert cfg["classification"]["positive_label"] == "left"  # the rarer, flagged for review
    rare = (df.status == "left").sum()
    assert f"'left' is the less frequent one ({rare} rows" in done.stdout
    baseline_auc = float(re.search(r"baseline \(sklearn\): AUC ([\d.]+)", done.stdout).group(1))
    gate, smoke = cfg["gate"], cfg["smoke_test"]
    assert 0.5 < gate["min_auc"] < baseline_auc
    suite = (fork / "data_checks" / "expectations" / "subs.json").read_text()
    assert '"value_set": [\n          "north-east",\n          "south",\n          "west"' in suite

    assert cfg["train"]["model"] == "sklearn"
    assert "early_stopping" in cfg["train"]["hyperparameters"]  # the family's own defaults

    try:
        done = story(fork, fork_env, tmp_path)
    finally:
        stop_endpoints(fork, fork_env)
    demo = done["demo"].stdout
    metrics = dict(re.findall(r"\b(auc|log_loss)=([\d.]+)", demo))
    auc, log_loss = float(metrics["auc"]), float(metrics["log_loss"])
    assert auc >= gate["min_auc"] and log_loss <= gate["max_log_loss"]
    assert "fit features.py and the sklearn model" in demo
    assert "registered model version 1" in demo  # the gate passed
    found = re.findall(r"smoke test passed: \d+ rows, accuracy ([\d.]+) \(min ([\d.]+)\)", demo)
    assert len(found) >= 2 and all(float(a) >= float(m) == smoke["min_accuracy"] for a, m in found)
    assert re.search(r"scored ([\d,]+) of \1 rows", demo)  # batch scoring: no row refused
    report = (tmp_path / "pr-report.md").read_text()
    assert "✅ passing" in report and "Confusion matrix" in report
    assert touched(fork) == {
        "model_build/config.yaml",
        "model_build/data/sample.csv",
        "data_checks/expectations/subs.json",
    }
    print(
        f"classification fork (sklearn): gate min_auc {gate['min_auc']} max_log_loss "
        f"{gate['max_log_loss']}, smoke min_accuracy {smoke['min_accuracy']}; "
        f"reached AUC {auc}, log loss {log_loss}; smoke accuracy {found[-1][0]}"
    )

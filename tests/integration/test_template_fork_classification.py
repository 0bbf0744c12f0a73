"""The template self-test for the other task: a fork whose data set (generated here) is a
yes/no outcome with a string categorical column and a high-cardinality string code.
`mlops init --task binary_classification` there, then the fork's project tests, its
pipeline on the sample (gate, registry) and the staging deploy with the accuracy smoke
test."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from fixtures.tasks import subscription_data
from test_template_fork import fork_env, in_fork, make_fork  # noqa: F401 (fork_env: fixture)

pytestmark = pytest.mark.slow


def test_a_classification_fork_with_string_categories_passes_its_gate(tmp_path, fork_env):  # noqa: F811
    fork = make_fork(tmp_path / "fork")
    df = subscription_data()
    data = tmp_path / "subscribers.csv"
    df.to_csv(data, index=False)

    def init(path):
        argv = ["-m", "mlops", "init", "--data", str(path), "--name", "subs", "--force"]
        return in_fork(
            fork, fork_env, *argv, "--task", "binary_classification", "--target", "status"
        )

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
    baseline_auc = float(re.search(r"baseline \(xgboost\): AUC ([\d.]+)", done.stdout).group(1))
    gate, smoke = cfg["gate"], cfg["smoke_test"]
    assert 0.5 < gate["min_auc"] < baseline_auc
    suite = (fork / "data_checks" / "expectations" / "subs.json").read_text()
    assert '"value_set": [\n          "north-east",\n          "south",\n          "west"' in suite

    # The fork's own project tests (suite on the sample and its corruptions, the pipeline
    # and its gate) hold for a classifier with string categories too.
    argv = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/project"]
    tests = in_fork(fork, fork_env, *argv)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]

    def mlops(*argv):
        result = in_fork(fork, fork_env, "-m", "mlops", *argv)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        return result.stdout

    run = mlops("pipeline", "run")
    metrics = dict(re.findall(r"\b(auc|log_loss)\W+([\d.]+)", run))
    auc, log_loss = float(metrics["auc"]), float(metrics["log_loss"])
    assert auc >= gate["min_auc"] and log_loss <= gate["max_log_loss"]
    assert f"auc {metrics['auc']} >= {gate['min_auc']}: ok" in run
    assert f"log_loss {metrics['log_loss']} <= {gate['max_log_loss']}: ok" in run
    assert "registered model version 1" in run  # the gate passed
    mlops("models", "approve", "1", "--note", "reviewed in the template self-test")
    try:
        deployed = mlops("deploy", "--stage", "staging")
    finally:
        in_fork(fork, fork_env, "-m", "mlops", "endpoint", "stop", "--stage", "staging")
    found = re.search(r"smoke test passed: \d+ rows, accuracy ([\d.]+) \(min ([\d.]+)\)", deployed)
    assert found and float(found.group(1)) >= float(found.group(2)) == smoke["min_accuracy"]
    print(
        f"classification fork: gate min_auc {gate['min_auc']} max_log_loss "
        f"{gate['max_log_loss']}, smoke min_accuracy {smoke['min_accuracy']}; "
        f"reached AUC {auc}, log loss {log_loss}; smoke accuracy {found.group(1)}"
    )

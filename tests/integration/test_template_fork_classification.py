"""The template self-test for the other task, another model family and messy data: a fork
whose data set (generated here) is a yes/no outcome as real exports bring it: missing
numbers (at random, and a column that is mostly empty), several text columns with rare
levels (and levels the model never saw in the batch file), a high-cardinality string code,
and a few rows without a target. It trains with scikit-learn's HistGradientBoosting instead
of the example's XGBoost. `mlops init --task binary_classification --model sklearn` there
(its config passes the project's yamllint), then the fork's project tests, its demo on the
whole export (data checks and the pipeline quarantine the rows without a target; the gate;
staging deploy with the accuracy smoke test; promotion; batch scoring with labels; the
monitor with the true labels as yes/no) and its PR report. Only model_build/ and
data_checks/ change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fixtures.tasks import messy_subscription_data
from test_template_fork import (  # noqa: F401 (fork_env: a fixture)
    fork_env,
    in_fork,
    make_fork,
    stop_endpoints,
    story,
    touched,
)

from mlops.core.config import DEFAULT_CONFIG, load_config
from mlops.core.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def yamllint_problems(config: Path) -> list[str]:
    """The project's yamllint (`make lint`'s rules) on a file: what CI would say."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    rules = YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yaml"))
    return [f"{p.line}: {p.desc}" for p in linter.run(config.read_text(), rules)]


def test_a_messy_classification_fork_on_scikit_learn_runs_its_story(tmp_path, fork_env):  # noqa: F811
    fork = make_fork(tmp_path / "fork")
    example = load_config(DEFAULT_CONFIG)  # what `init --force` replaces
    df = messy_subscription_data()
    data = tmp_path / "subscribers.csv"
    df.to_csv(data, index=False)
    unlabelled = int(df.churned.isna().sum())

    def init(path):
        argv = ["-m", "mlops", "init", "--data", str(path), "--name", "subs", "--force"]
        task = ["--task", "binary_classification", "--model", "sklearn"]
        return in_fork(fork, fork_env, *argv, *task, "--target", "churned")

    three = df.assign(churned=np.where(df.months > 40, "paused", df.churned))
    three.to_csv(tmp_path / "three.csv", index=False)
    refused = init(tmp_path / "three.csv")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "not binary: 3 labels (no, paused, yes)" in refused.stderr

    done = init(data)
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout
    assert f"left out {unlabelled} row(s) without a churned" in said
    assert f"left out code: {len(df) - unlabelled} distinct strings" in said
    assert "string categories: contract, area, channel, device" in said
    assert "positive label: 'yes'" in said and "REVIEW" not in said.split("positive label")[1][:20]
    config = fork / "model_build" / "config.yaml"
    assert yamllint_problems(config) == []
    cfg = yaml.safe_load(config.read_text())
    assert cfg["task"] == "binary_classification" and cfg["train"]["model"] == "sklearn"
    assert cfg["data"]["categorical_features"] == ["contract", "area", "channel", "device"]
    assert cfg["classification"]["positive_label"] == "yes"
    assert cfg["data"]["max_quarantined_pct"] >= 100 * unlabelled / len(df)
    baseline_auc = float(re.search(r"baseline \(sklearn\): AUC ([\d.]+)", said).group(1))
    majority = float(re.search(r"naive .*accuracy ([\d.]+)", said).group(1))
    gate, smoke = cfg["gate"], cfg["smoke_test"]
    assert 0.5 < gate["min_auc"] < baseline_auc
    assert smoke["min_accuracy"] > majority  # the floor beats always answering "no"
    suite = json.loads((fork / "data_checks" / "expectations" / "subs.json").read_text())
    nulls = {
        e["kwargs"]["column"]: e["kwargs"].get("mostly")
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_not_be_null"
    }
    assert nulls["churned"] is None and nulls["contract"] is None  # never empty
    assert 0.8 < nulls["tickets"] < 0.92 and 0 < nulls["discount"] < 0.15  # from the data
    for stale in (example.suite_file, example.golden_file):  # the example's, replaced
        assert not (fork / stale.relative_to(REPO_ROOT)).exists()

    export = tmp_path / "export.csv"  # the export as the config reads it: gaps included
    df[example_free_columns(cfg)].to_csv(export, index=False)
    try:
        done = story(fork, fork_env, tmp_path, data=export)
        batch = score_unseen_levels(fork, fork_env, tmp_path)
    finally:
        stop_endpoints(fork, fork_env)
    demo = done["demo"].stdout
    assert f"{unlabelled} row(s) quarantined" in demo  # `mlops data validate`
    assert f"quarantined {unlabelled} of {len(df)} rows" in demo  # the pipeline's validate
    metrics = dict(re.findall(r"\b(auc|log_loss|accuracy)=([\d.]+)", demo))
    auc, log_loss = float(metrics["auc"]), float(metrics["log_loss"])
    assert auc >= gate["min_auc"] and log_loss <= gate["max_log_loss"]
    assert "fit features.py and the sklearn model" in demo
    assert "registered model version 1" in demo  # the gate passed
    found = re.findall(r"smoke test passed: \d+ rows, accuracy ([\d.]+) \(min ([\d.]+)\)", demo)
    assert len(found) >= 2 and all(float(a) >= float(m) == smoke["min_accuracy"] for a, m in found)
    assert re.search(r"scored ([\d,]+) of \1 rows", demo)  # batch scoring: no row refused
    joined = re.search(r"version 1: (\d+) labelled requests joined by id", demo)
    assert joined and int(joined.group(1)) > 0  # yes/no labels, joined
    monitor = json.loads(
        (Path(fork_env["MLOPS_HOME"]) / "reports/monitor-prod/monitor.json").read_text()
    )
    quality = monitor["versions"][0]["quality"]
    assert quality["auc"] == pytest.approx(auc, abs=1e-3) and not quality["violated"]
    assert set(batch.label) <= {"yes", "no"} and len(batch) == 4
    assert ((batch.prediction >= 0.5) == (batch.label == "yes")).all()
    report = (tmp_path / "pr-report.md").read_text()
    assert "✅ passing" in report and "Confusion matrix" in report
    assert touched(fork) == {
        "model_build/config.yaml",
        "model_build/data/sample.csv",
        "data_checks/expectations/subs.json",
    }
    print(
        f"messy classification fork (sklearn): init: {unlabelled} rows without a target left "
        f"out, gate min_auc {gate['min_auc']} max_log_loss {gate['max_log_loss']}, smoke "
        f"min_accuracy {smoke['min_accuracy']} on {smoke['rows']} rows (majority {majority}); "
        f"reached AUC {auc}, log loss {log_loss}; smoke accuracy {found[-1][0]}; monitor "
        f"AUC {quality['auc']:.4f} on {quality['rows']} labelled requests"
    )


def example_free_columns(cfg: dict) -> list[str]:
    return [*cfg["data"]["features"], cfg["data"]["target"]]


def score_unseen_levels(fork: Path, env: dict, folder: Path) -> pd.DataFrame:
    """`mlops batch predict` on rows with levels the model never saw and empty fields."""
    rows = pd.DataFrame(
        {
            "contract": ["monthly", "lifetime", "", "yearly"],
            "area": ["north-east", "mars", "south", ""],
            "tickets": [3, None, 1, 0],
            "months": [5, 12, None, 40],
            "channel": ["telegram", "web", "fax", None],
            "device": ["ios", "", "fridge", "tv"],
            "discount": [None, None, 12.5, None],
        }
    )
    rows.to_csv(folder / "unseen.csv", index=False)
    out = folder / "unseen-scores.csv"
    argv = ["batch", "predict", "--data", str(folder / "unseen.csv"), "--out", str(out)]
    done = in_fork(fork, env, "-m", "mlops", *argv, "--stage", "prod")
    assert done.returncode == 0, done.stdout + done.stderr
    return pd.read_csv(out)

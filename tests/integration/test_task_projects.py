"""The whole story on the two fixture projects (neither is the example's data): a binary
classifier with "yes"/"no" labels and string categories, and a regression with string
categories. Pipeline, gate, registry, staging with its smoke test, prod, and bad input."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from _serving import deploy_config_copy
from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame, project_config

from mlops.cli import run
from mlops.local.endpoints import read_endpoint, stop_all_servers
from mlops.local.server import WATCH_PID_ENV

pytestmark = pytest.mark.slow


def mlops(capsys, *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(home, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_config_copy(tmp_path / "model_deploy")))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    yield home
    stop_all_servers(home)


def invoke(url: str, body: bytes, content_type: str, accept: str) -> bytes:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=body,
        headers={"Content-Type": content_type, "Accept": accept},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def test_classifier_from_data_to_prod(project, task_run, tmp_path, capsys):
    out = task_run("churn")  # `mlops pipeline run` on 4,000 rows, shared with test_drift_rows
    config = ("--config", str(project_config(CHURN_CONFIG, tmp_path)))
    assert "gate:    auc" in out and "gate:    log_loss" in out

    code, out, _ = mlops(capsys, "models", "describe", "1", "--json", *config)
    metrics = json.loads(out)["metrics"]
    assert set(metrics) == {"auc", "log_loss", "accuracy", "precision", "recall", "f1"}
    assert metrics["auc"] >= 0.75 and metrics["log_loss"] <= 0.55

    reports = tmp_path / "reports"
    code, out, err = mlops(
        capsys, "report", "pr", "--out", str(tmp_path / "pr.md"), "--report-dir", str(reports),
        *config,
    )  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "pr.md").read_text()
    assert "| auc |" in text and "| log_loss |" in text and "| mse |" not in text
    assert "### Confusion matrix (challenger, threshold 0.5)" in text
    assert "| actual ↓ predicted → | no | yes |" in text
    assert {p.name for p in (reports / "plots").iterdir()} == {
        "roc_curve.png",
        "confusion_matrix.png",
    }

    assert mlops(capsys, "models", "approve", "1", *config)[0] == 0
    code, out, err = mlops(capsys, "deploy", "--stage", "staging", *config)
    assert code == 0, err
    assert "smoke test passed: 40 rows, accuracy" in out
    code, out, err = mlops(capsys, "promote", *config)
    assert code == 0, err

    url = read_endpoint(project, "prod").url
    labels = invoke(
        url, b"3,95,basic,south,5\n70,25,premium,north,0", "text/csv", "text/csv; labels=true"
    )
    assert labels == b"yes\nno\n"
    unseen = {"tenure_months": 3, "monthly_charges": 95, "plan": "gold", "region": "mars",
              "support_calls": 5}  # fmt: skip
    answer = json.loads(
        invoke(url, json.dumps([unseen]).encode(), "application/json", "application/json")
    )
    assert 0 < answer["predictions"][0] < 1  # never seen in training: scored as missing


def test_regression_with_string_categories_from_data_to_staging(
    project, task_run, tmp_path, capsys
):
    task_run("rent")  # `mlops pipeline run` on 4,000 rows, shared with test_drift_rows
    config = ("--config", str(project_config(RENT_CONFIG, tmp_path)))
    metrics = json.loads(mlops(capsys, "models", "describe", "1", "--json", *config)[1])["metrics"]
    assert metrics["r2"] > 0.98 and metrics["mse"] < 6000  # noise variance is 3600
    assert mlops(capsys, "models", "approve", "1", *config)[0] == 0
    code, out, err = mlops(capsys, "deploy", "--stage", "staging", *config)
    assert code == 0, err
    assert "smoke test passed: 20 rows, MAPE" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.assign(churned=df.churned.where(df.index % 7 > 0, "maybe")),
         "needs target churned to hold exactly two values (e.g. 0/1, yes/no); it holds 3"),
        (lambda df: df.assign(churned="yes"), "it holds 1: yes"),
    ],
)  # fmt: skip
def test_a_target_that_is_not_binary_is_one_line_and_exit_2(
    home, tmp_path, capsys, change, message
):
    data = tmp_path / "bad.csv"
    change(churn_frame(500, seed=1)).to_csv(data, index=False)
    code, _, err = mlops(
        capsys,
        "pipeline",
        "run",
        "--data",
        str(data),
        "--config",
        str(project_config(CHURN_CONFIG, tmp_path)),
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (home / "runs").exists()  # refused before any step ran


def test_the_suite_refuses_a_category_outside_its_set(home, tmp_path, capsys):
    data = tmp_path / "new-plan.csv"
    churn_frame(400, seed=3).assign(plan="enterprise").to_csv(data, index=False)
    config = str(project_config(CHURN_CONFIG, tmp_path))
    code, out, _ = mlops(
        capsys, "data", "validate", str(data), "--config", config,
        "--report-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert code == 1
    assert "plan" in out and "expect_column_values_to_be_in_set" in out

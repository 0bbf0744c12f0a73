"""`mlops monitor` on the local backend: real traffic to a deployed stage, captured, judged."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from _serving import deploy_config_copy

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.run_layout import local_held_out, read_held_out
from mlops.core.smoke import runtime_client
from mlops.local.capture import capture_files, captured_lines, wait_for_capture
from mlops.local.endpoints import read_endpoint, stop_all_servers
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV


@pytest.fixture
def staging(registered_home, tmp_path, monkeypatch):
    home, _ = registered_home
    cfg = load_config()
    registry = LocalRegistry(home, cfg.model_package_group)
    registry.approve(1, "test")
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_config_copy(tmp_path / "model_deploy")))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    assert run(["deploy", "--stage", "staging"]) == 0
    held_out = read_held_out(local_held_out(registry.describe(1), home)).astype(float)
    yield home, cfg, held_out
    stop_all_servers(home)


def send(home, rows: np.ndarray, prefix: str) -> None:
    """One request per row, each with an inference id, through a sagemaker-runtime client."""
    endpoint = read_endpoint(home, "staging")
    before = captured_lines(home, endpoint.endpoint_name)
    client = runtime_client(endpoint.url)
    for i, row in enumerate(rows):
        client.invoke_endpoint(
            EndpointName=endpoint.endpoint_name,
            ContentType="text/csv",
            Body=",".join(repr(float(v)) for v in row),
            InferenceId=f"{prefix}-{i}",
        )
    assert wait_for_capture(home, endpoint.endpoint_name, before + len(rows)) >= before + len(rows)


def monitor(capsys, *extra):
    code = run(["monitor", "--stage", "staging", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_monitor_judges_captured_traffic(staging, tmp_path, capsys):
    home, cfg, held_out = staging
    rows = held_out[cfg.data.features].to_numpy()[:300]
    truth = held_out[cfg.data.target].to_numpy()[:300]
    send(home, rows, "ok")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"inference_id": [f"ok-{i}" for i in range(300)], cfg.data.target: truth}).to_csv(
        labels, index=False
    )
    files = capture_files(home, f"{cfg.model_package_group}-staging")
    with files[-1].open("a") as f:
        f.write('{"captureData": "half a line\n')

    report_dir = tmp_path / "report"
    code, out, err = monitor(capsys, "--labels", str(labels), "--report-dir", str(report_dir))
    assert code == 0, err
    report = json.loads((report_dir / "monitor.json").read_text())
    assert report["status"] == "ok" and report["corrupt_lines"] == 1
    (section,) = report["versions"]
    assert section["version"] == 1 and section["rows"] >= 300  # + the smoke test's rows
    assert [f["feature"] for f in section["features"]] == cfg.data.features
    assert max(f["psi"] for f in section["features"]) < cfg.drift.threshold
    assert section["prediction_drift"]["psi"] < cfg.drift.threshold
    quality = section["quality"]
    assert quality["rows"] == 300
    assert quality["mse"] == pytest.approx(
        np.mean((_predictions(home, "ok") - truth) ** 2), rel=1e-6
    )
    assert "1 corrupt capture line(s) skipped" in out
    assert "## Monitoring staging: ✅ ok" in (report_dir / "monitor.md").read_text()

    # the same labels shifted by 3x the model's RMSE: quality violation
    shifted = pd.read_csv(labels).assign(**{cfg.data.target: truth + 3 * np.sqrt(quality["mse"])})
    shifted.to_csv(labels, index=False)
    code, _, err = monitor(capsys, "--labels", str(labels), "--report-dir", str(report_dir))
    assert code == 1 and "model quality: MSE" in err and err.count("\n") == 1

    # traffic whose first feature moved far from training: feature drift, only since then
    moved = rows.copy()
    moved[:, 0] = moved[:, 0] * 3 + 1000
    since = pd.Timestamp.now(tz="UTC").isoformat()
    send(home, moved, "moved")
    code, _, err = monitor(capsys, "--since", since, "--report-dir", str(report_dir))
    assert code == 1
    assert f"feature {cfg.data.features[0]} drifted" in err
    report = json.loads((report_dir / "monitor.json").read_text())
    assert report["versions"][0]["rows"] == 300


def _predictions(home, prefix: str) -> np.ndarray:
    """The predictions the endpoint answered for `prefix`'s requests, from the capture."""
    by_id = {}
    for path in capture_files(home, f"{load_config().model_package_group}-staging"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            inference_id = record["eventMetadata"].get("inferenceId", "")
            if inference_id.startswith(prefix + "-"):
                answer = json.loads(record["captureData"]["endpointOutput"]["data"])
                by_id[int(inference_id.split("-")[1])] = answer["predictions"][0]
    return np.array([by_id[i] for i in range(len(by_id))])


def test_no_capture_is_no_data_and_bad_since_is_usage_error(registered_home, capsys):
    assert run(["monitor", "--stage", "prod"]) == 0
    assert "no captured requests" in capsys.readouterr().out
    assert run(["monitor", "--stage", "prod", "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err

"""Monitoring a model with string categorical features: the endpoint answers requests of text
values, its capture keeps them as sent, and the monitor types them with the model's own
reader (stepkit.rows), so a category the model never saw shows up as drift. Before, every
captured request of such a model was a corrupt line and nothing was monitored."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime

import pytest
from _serving import deploy_config_copy
from fixtures.tasks import RENT_CONFIG, project_config, rent_frame

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.run_layout import local_held_out, read_held_out
from mlops.core.smoke import runtime_client
from mlops.local.capture import captured_lines, wait_for_capture
from mlops.local.endpoints import read_endpoint, stop_all_servers
from mlops.local.monitor import LocalMonitor
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV


def send(home, frame, features: list[str]) -> None:
    """Each row alone, as CSV text (quoted where needed), through sagemaker-runtime."""
    endpoint = read_endpoint(home, "staging")
    before = captured_lines(home, endpoint.endpoint_name)
    client = runtime_client(endpoint.url)
    for row in frame[features].itertuples(index=False):
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(row)
        client.invoke_endpoint(
            EndpointName=endpoint.endpoint_name, ContentType="text/csv", Body=line.getvalue()
        )
    assert wait_for_capture(home, endpoint.endpoint_name, before + len(frame)) >= before + len(
        frame
    )


@pytest.mark.slow
def test_captured_text_categories_are_monitored(home, tmp_path, monkeypatch, capsys):
    config = project_config(RENT_CONFIG, tmp_path)
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_config_copy(tmp_path / "model_deploy")))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    data = tmp_path / "train.csv"
    rent_frame(1500, seed=3).to_csv(data, index=False)
    assert run(["pipeline", "run", "--data", str(data), "--config", str(config)]) == 0
    cfg = load_config(config)
    registry = LocalRegistry(home, cfg.model_package_group)
    registry.approve(1, "test")
    try:
        assert run(["deploy", "--stage", "staging", "--config", str(config)]) == 0
        held_out = read_held_out(local_held_out(registry.describe(1), home))
        send(home, held_out, cfg.data.features)
        report_dir = tmp_path / "report"
        monitor = ["monitor", "--stage", "staging", "--report-dir", str(report_dir)]
        capsys.readouterr()
        assert run([*monitor, "--config", str(config)]) == 0, capsys.readouterr().err
        report = json.loads((report_dir / "monitor.json").read_text())
        assert report["corrupt_lines"] == 0
        (section,) = report["versions"]
        assert section["rows"] == len(held_out) + cfg.smoke_test.rows * 2  # + the smoke test's
        assert [f["feature"] for f in section["features"]] == cfg.data.features
        assert section["violations"] == []
        reference = LocalMonitor(cfg, registry, home).reference_predictions(1)
        assert section["prediction_drift"]["reference_rows"] == len(reference) == len(held_out)

        since = datetime.now(UTC).isoformat()
        unseen = held_out.assign(city="Marseille")  # never seen in training: scored as missing
        send(home, unseen, cfg.data.features)
        assert run([*monitor, "--since", since, "--config", str(config)]) == 1
        assert "feature city drifted" in capsys.readouterr().err
    finally:
        stop_all_servers(home)

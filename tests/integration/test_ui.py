"""`mlops ui --mlflow`: the real MLflow UI server starts on 127.0.0.1 over the local store, shows the
tracked runs, and stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from mlops.cli import run
from mlops.cli.ui import full_mlflow_installed
from mlops.core.config import load_config
from mlops.core.tracking import RunRecord
from mlops.local.tracking import local_tracker, tracking_dir

pytestmark = pytest.mark.slow


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.skipif(not full_mlflow_installed(), reason="the full mlflow package (ui extra)")
def test_ui_serves_the_tracked_runs_and_stops(home, mlflow_db):
    cfg = load_config()
    mlflow_db(tracking_dir(home))
    tracked = local_tracker(cfg, home).start_run("run-for-the-ui", {})
    tracked.log(RunRecord(metrics={"test_mse": 42.0}))
    tracked.finish("FINISHED")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "ui", "--mlflow", "--port", str(port)],
        env={**os.environ, "MLOPS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server's workers go with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _ = get(f"{base}/health")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the UI did not answer within 90 s"
                time.sleep(0.5)
        assert status == 200
        status, page = get(base + "/")
        assert status == 200 and b"<html" in page.lower()
        _, body = get(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={cfg.experiment}"
        )
        experiment_id = json.loads(body)["experiment"]["experiment_id"]
        _, body = get(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})
        (found,) = json.loads(body)["runs"]
        assert found["info"]["run_id"] == tracked.run_id()
        assert found["data"]["metrics"] == [
            {
                "key": "test_mse",
                "value": 42.0,
                "timestamp": found["data"]["metrics"][0]["timestamp"],
                "step": 0,
            }
        ]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode is not None


def test_ui_refuses_a_port_in_use(home, capsys):
    import socket

    if not full_mlflow_installed():
        pytest.skip("the full mlflow package (ui extra)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert run(["ui", "--mlflow", "--port", str(sock.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "in use" in err and len(err.strip().splitlines()) == 1

"""Staged deployment on the local backend: deploy, smoke test, promote, rollback, status, stop.

Each test works on a private copy of a home with version 1 registered and on a
copy of model_deploy/ with free ports; every server is stopped at teardown.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from _serving import constant_model_archive, deploy_config_copy, set_pin
from fixture_project.generate import TARGET, generate_buildings

from mlops.cli import run
from mlops.core.config import load_config
from mlops.local.champion import resolve_champion
from mlops.local.deploy_history import list_deployments
from mlops.local.endpoints import read_endpoint, stage_dir, stop_all_servers
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV
from mlops.local.server_process import is_running, ping

GROUP = "energy-costs"
ROW = "2001,2500.5,3,2.0,0.5,2,1,0"


@dataclass
class Stages:
    home: Path
    deploy_dir: Path
    registry: LocalRegistry

    def port(self, stage: str) -> int:
        return json.loads((self.deploy_dir / f"{stage}-config.json").read_text())["local"]["port"]

    def register_copy_of(self, version: int) -> int:
        """Register the same model again: a new version number with identical behaviour."""
        v = self.registry.describe(version)
        return self.registry.register(
            Path(v.model_uri), Path(v.evaluation_uri), Path(v.baseline_uri), dict(v.lineage)
        ).version

    def register_wrong_model(self, tmp: Path) -> int:
        """A model that loads and answers but predicts ~1 for every building; its lineage
        names version 1's held-out rows (the smoke test's)."""
        v1 = self.registry.describe(1)
        archive = constant_model_archive(tmp, generate_buildings(200, seed=1), TARGET, 1.0)
        lineage = {**v1.lineage, "run_id": "wrong-model-run"}  # its own registry folder
        return self.registry.register(
            archive, Path(v1.evaluation_uri), Path(v1.baseline_uri), lineage
        ).version


@pytest.fixture
def stages(registered_home, tmp_path, monkeypatch):
    home, _ = registered_home
    deploy_dir = deploy_config_copy(tmp_path / "model_deploy")
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_dir))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    yield Stages(home, deploy_dir, LocalRegistry(home, GROUP))
    stop_all_servers(home)


def mlops(capsys, *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def live_version(url: str) -> int | None:
    answer = ping(url)
    return answer["model_version"] if answer else None


def candidate_pids(home: Path, stage: str) -> list[int]:
    return [int(p.read_text()) for p in stage_dir(home, stage).glob("*/candidate.pid")]


def status_json(capsys) -> dict:
    code, out, _ = mlops(capsys, "endpoint", "status", "--json")
    assert code == 0
    return json.loads(out)


def test_an_unapproved_version_is_refused_and_recorded(stages, capsys):
    code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 1 and "no Approved model version" in err
    code, _, err = mlops(capsys, "deploy", "--stage", "staging", "--version", "1")
    assert code == 1 and "PendingManualApproval, not Approved" in err
    assert read_endpoint(stages.home, "staging") is None
    rows = list_deployments(stages.home, GROUP)
    assert [(r["result"], r["version"]) for r in rows] == [("refused", 1), ("refused", None)]
    assert all(r["user"] and r["git_commit"] for r in rows)


def test_deploy_serves_the_stage_url_and_hands_over_without_refusing_a_request(stages, capsys):
    stages.registry.approve(1)
    code, out, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 0, err
    assert "smoke test passed: 20 rows" in out
    endpoint = read_endpoint(stages.home, "staging")
    assert endpoint.version == 1 and endpoint.url == f"http://127.0.0.1:{stages.port('staging')}"
    assert live_version(endpoint.url) == 1
    assert not any(is_running(pid) for pid in candidate_pids(stages.home, "staging"))

    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    answer = client.invoke_endpoint(
        EndpointName="energy-costs-staging", ContentType="text/csv", Body=ROW
    )
    assert 100_000 < json.loads(answer["Body"].read())["predictions"][0] < 1_000_000

    code, out, _ = mlops(capsys, "endpoint", "test", "--stage", "staging")
    assert code == 0 and "MAPE" in out and "latency p50" in out
    staging = status_json(capsys)["staging"]
    assert (staging["version"], staging["health"], staging["approval_status"]) == (
        1,
        "healthy",
        "Approved",
    )
    assert staging["warnings"] == []
    deployment = list_deployments(stages.home, GROUP, "staging")[0]
    assert deployment["result"] == "succeeded" and deployment["url"] == endpoint.url
    assert deployment["smoke"]["passed"] and deployment["smoke"]["mape_pct"] < 5

    # Redeploy a new version while clients keep calling the stage URL on fresh connections.
    v2 = stages.register_copy_of(1)
    stages.registry.approve(v2)
    failures, answers, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
            try:
                conn.request("POST", "/invocations", ROW, {"Content-Type": "text/csv"})
                response = conn.getresponse()
                response.read()
                answers.append(response.status)
            except OSError as exc:
                failures.append(exc)
            finally:
                conn.close()

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    finally:
        time.sleep(0.3)
        stop.set()
        thread.join()
    assert code == 0, err
    assert live_version(endpoint.url) == v2
    assert not is_running(endpoint.pid)  # the old server is gone
    assert failures == [] and len(answers) > 20 and set(answers) == {200}
    assert [p.name for p in stage_dir(stages.home, "staging").iterdir() if p.is_dir()] == [
        read_endpoint(stages.home, "staging").instance
    ]


def test_a_failing_smoke_test_keeps_the_old_version_serving(stages, capsys, tmp_path):
    stages.registry.approve(1)
    assert mlops(capsys, "deploy", "--stage", "staging")[0] == 0
    before = read_endpoint(stages.home, "staging")
    wrong = stages.register_wrong_model(tmp_path / "wrong")
    stages.registry.approve(wrong)

    code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 1
    assert f"smoke test of version {wrong} failed: MAPE" in err
    assert "version 1 keeps serving staging" in err
    assert read_endpoint(stages.home, "staging") == before
    assert ping(before.url)["instance"] == before.instance and live_version(before.url) == 1
    assert not any(is_running(pid) for pid in candidate_pids(stages.home, "staging"))
    last = list_deployments(stages.home, GROUP, "staging")[0]
    assert (last["result"], last["version"], last["previous_version"]) == ("failed", wrong, 1)
    assert "MAPE" in last["reason"]


def test_a_version_rejected_during_its_deploy_does_not_go_live(stages, capsys, monkeypatch):
    import mlops.local.deploy as local_deploy

    stages.registry.approve(1)
    smoke_test = local_deploy.smoke_test_endpoint

    def smoke_then_reject(*args, **kwargs):  # an approver rejects while the candidate runs
        result = smoke_test(*args, **kwargs)
        stages.registry.reject(1, note="found a leak")
        return result

    monkeypatch.setattr(local_deploy, "smoke_test_endpoint", smoke_then_reject)
    code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 1 and err.count("\n") == 1
    assert "refusing to switch: version 1 became Rejected during its deploy" in err
    assert "nothing serves staging" in err
    assert read_endpoint(stages.home, "staging") is None
    assert not any(is_running(pid) for pid in candidate_pids(stages.home, "staging"))
    assert ping(f"http://127.0.0.1:{stages.port('staging')}") is None  # the live one stopped
    last = list_deployments(stages.home, GROUP, "staging")[0]
    assert (last["result"], last["version"]) == ("failed", 1)


def test_promote_refuses_unstaged_unapproved_or_dead_staging(stages, capsys):
    stages.registry.approve(1)
    code, _, err = mlops(capsys, "promote")
    assert code == 1 and "nothing is deployed to staging" in err

    assert mlops(capsys, "deploy", "--stage", "staging")[0] == 0
    stages.registry.reject(1, "found a bias")
    code, out, _ = mlops(capsys, "endpoint", "status")
    assert "WARNING: version 1 is Rejected but serving staging" in out
    code, _, err = mlops(capsys, "promote")
    assert code == 1 and "version 1 serving staging is Rejected, not Approved" in err

    stages.registry.approve(1)
    os.kill(read_endpoint(stages.home, "staging").pid, signal.SIGKILL)
    time.sleep(0.2)
    code, _, err = mlops(capsys, "promote")
    assert code == 1 and "is not live" in err
    assert status_json(capsys)["staging"]["health"] == "down"
    assert read_endpoint(stages.home, "prod") is None
    assert [r["result"] for r in list_deployments(stages.home, GROUP, "prod")] == ["refused"] * 3


def test_promote_then_roll_back_by_pinning_the_previous_version(stages, capsys):
    stages.registry.approve(1)
    v2 = stages.register_copy_of(1)
    stages.registry.approve(v2)
    assert mlops(capsys, "deploy", "--stage", "staging")[0] == 0  # latest approved: v2
    # a reviewer approved the run that staged version 1: staging has moved on since
    code, _, err = mlops(capsys, "promote", "--version", "1")
    assert code == 1 and f"staging serves version {v2} now" in err
    assert read_endpoint(stages.home, "prod") is None
    code, out, err = mlops(capsys, "promote", "--version", str(v2))
    assert code == 0, err
    prod = read_endpoint(stages.home, "prod")
    assert prod.version == v2 and live_version(prod.url) == v2
    assert prod.port == stages.port("prod")
    assert resolve_champion(load_config(), stages.home).version == v2

    stages.registry.reject(v2, "bad in production")
    warnings = status_json(capsys)["prod"]["warnings"]
    assert f"WARNING: version {v2} is Rejected but serving prod" in warnings

    set_pin(stages.deploy_dir, "prod", 1)  # the rollback is a change to prod-config.json
    code, out, err = mlops(capsys, "deploy", "--stage", "prod")
    assert code == 0, err
    assert "pinned in prod-config.json" in out
    assert live_version(prod.url) == 1 and read_endpoint(stages.home, "prod").version == 1
    assert status_json(capsys)["prod"]["warnings"] == []
    assert resolve_champion(load_config(), stages.home).version == 1
    history = [
        (r["version"], r["previous_version"], r["result"])
        for r in list_deployments(stages.home, GROUP, "prod")
    ]
    # newest first: the refused promotion of the version staging no longer served is recorded
    assert history == [(1, v2, "succeeded"), (v2, None, "succeeded"), (None, None, "refused")]

    # A promotion may not silently undo the pin, even of a version approved again.
    stages.registry.approve(v2, "fixed upstream")
    code, _, err = mlops(capsys, "promote")
    assert code == 1 and "prod-config.json pins version 1" in err

    code, out, _ = mlops(capsys, "endpoint", "stop", "--stage", "prod")
    assert code == 0 and "stopped prod" in out
    assert read_endpoint(stages.home, "prod") is None and ping(prod.url) is None


def test_a_port_taken_by_another_process_is_reported(stages, capsys):
    stages.registry.approve(1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stages.port("staging")))
        squatter.listen()
        code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 1 and f"is in use by pid {os.getpid()} (" in err  # names the holder


def test_serve_runs_in_the_foreground_until_interrupted(stages, tmp_path):
    stages.registry.approve(1)
    port = stages.port("prod")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mlops.cli import main; main()",
            "serve",
            "--stage",
            "prod",
            "--port",
            str(port),
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while live_version(f"http://127.0.0.1:{port}") != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_version(f"http://127.0.0.1:{port}") == 1
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "serving version 1 as energy-costs-prod" in out

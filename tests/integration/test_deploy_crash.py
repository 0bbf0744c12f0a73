"""A killed `mlops deploy` leaves nothing stuck: the next command finishes or undoes it.
A stage port is owned across state homes: a second home gets one line naming the owner.

Deploys here run as real `mlops deploy` processes, killed with SIGKILL at the moment
under test (found by watching the stage's state files).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _serving import deploy_config_copy
from test_deploy import Stages, mlops

from mlops.core.config import load_config
from mlops.local.deploy_history import list_deployments
from mlops.local.deploy_journal import servers_of
from mlops.local.endpoint_app import ServerSettings
from mlops.local.endpoints import read_endpoint, stage_dir, stop_all_servers
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV
from mlops.local.server_process import is_running, spawn_server

GROUP = load_config().model_package_group


@pytest.fixture
def stages(registered_home, tmp_path, monkeypatch):
    """As in test_deploy: a private home with version 1, model_deploy/ on free ports."""
    home, _ = registered_home
    deploy_dir = deploy_config_copy(tmp_path / "model_deploy")
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_dir))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    yield Stages(home, deploy_dir, LocalRegistry(home, GROUP))
    stop_all_servers(home)


def start_deploy(stages, stage: str = "staging") -> subprocess.Popen:
    env = {**os.environ, "MLOPS_HOME": str(stages.home), "MLOPS_DEPLOY_DIR": str(stages.deploy_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "deploy", "--stage", stage],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(proc: subprocess.Popen, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the deploy ended before the moment under test"
        assert time.monotonic() < deadline, "the moment under test never came"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def running_servers(stages, stage: str = "staging") -> dict[str, list[int]]:
    folder = stage_dir(stages.home, stage)
    return {
        p.name: servers_of(p.name) for p in folder.iterdir() if p.is_dir() and servers_of(p.name)
    }


def test_a_deploy_killed_during_its_smoke_test_is_undone_by_the_next_command(stages, capsys):
    stages.registry.approve(1)
    proc = start_deploy(stages)
    kill_when(proc, lambda: any(stage_dir(stages.home, "staging").glob("*/candidate.pid")))
    # The candidate watches the deploy that started it: it ends by itself.
    wait_until(lambda: running_servers(stages) == {}, 10, "the orphaned candidate to stop")

    code, out, _ = mlops(capsys, "endpoint", "stop", "--stage", "staging")
    assert code == 0
    assert "undid an interrupted deploy of version 1 to staging" in out
    assert running_servers(stages) == {}
    row = list_deployments(stages.home, GROUP, "staging")[0]
    assert (row["result"], row["version"]) == ("failed", 1) and "interrupted" in row["reason"]


def test_a_deploy_killed_after_the_handover_is_finished_by_the_next_command(stages, capsys):
    stages.registry.approve(1)
    assert mlops(capsys, "deploy", "--stage", "staging")[0] == 0
    old = read_endpoint(stages.home, "staging")
    v2 = stages.register_copy_of(1)
    stages.registry.approve(v2)
    proc = start_deploy(stages)

    def handed_over() -> bool:
        endpoint = read_endpoint(stages.home, "staging")
        return endpoint is not None and endpoint.version == v2

    kill_when(proc, handed_over)
    live = read_endpoint(stages.home, "staging")
    candidate = int(
        (stage_dir(stages.home, "staging") / live.instance / "candidate.pid").read_text()
    )
    wait_until(lambda: not is_running(candidate), 10, "the killed deploy's candidate to stop")
    assert is_running(live.pid)  # the new stage server is not the deploy's: it keeps serving
    stray = spawn_server(  # e.g. a server a crash left behind in this stage's folder
        ServerSettings(
            model_dir=str(stage_dir(stages.home, "staging") / live.instance / "model"),
            stage="staging",
            instance="v9-stray",
        ),
        stage_dir(stages.home, "staging") / "v9-stray",
        "live",
    )
    code, out, _ = mlops(capsys, "endpoint", "status", "--json")
    strays = json.loads(out)["staging"]["stray_servers"]
    assert stray.pid in [s["pid"] for s in strays] and live.pid not in [s["pid"] for s in strays]
    assert any(f"stray server pid {stray.pid}" in w for w in json.loads(out)["staging"]["warnings"])
    code, out, _ = mlops(capsys, "deploy", "--stage", "staging")  # the next command
    assert code == 0, out
    assert f"finished an interrupted deploy of version {v2} to staging" in out
    assert not is_running(old.pid)
    rows = [(r["result"], r["version"]) for r in list_deployments(stages.home, GROUP, "staging")]
    assert ("succeeded", v2) in rows[1:]  # the interrupted one, recorded by the next command
    live = read_endpoint(stages.home, "staging")
    assert list(running_servers(stages)) == [live.instance]  # the stray was stopped too


def test_a_second_state_home_is_refused_the_port_naming_its_owner(
    stages, capsys, tmp_path, monkeypatch
):
    stages.registry.approve(1)
    assert mlops(capsys, "deploy", "--stage", "staging")[0] == 0
    other = tmp_path / "other-home"
    shutil.copytree(stages.home, other, ignore=shutil.ignore_patterns("endpoints"))
    monkeypatch.setenv("MLOPS_HOME", str(other))
    code, _, err = mlops(capsys, "deploy", "--stage", "staging")
    assert code == 1
    assert f"port {stages.port('staging')}" in err and "is held by the staging endpoint" in err
    assert str(stages.home.resolve()) in err and err.count("\n") == 1
    assert not (other / "endpoints" / "staging").exists() or not any(
        p.is_dir() for p in (other / "endpoints" / "staging").iterdir()
    )
    monkeypatch.setenv("MLOPS_HOME", str(stages.home))
    assert read_endpoint(stages.home, "staging").version == 1
    assert json.loads(Path(stages.deploy_dir / "staging-config.json").read_text())

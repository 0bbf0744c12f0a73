"""`make demo` end to end on small data, on a fresh state dir."""

import os
import re
import subprocess
import sys
import textwrap

import pytest
from _serving import deploy_config_copy
from fixture_project.generate import generate_buildings

from mlops.cli import run
from mlops.local.deploy_history import list_deployments
from mlops.local.endpoints import read_endpoint, stop_all_servers
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV
from mlops.local.server_process import is_server

ROWS = 2000
STEPS = (
    "a data scientist brings data",
    "$ mlops pipeline run",
    "human approver",
    "$ mlops deploy --stage staging",
    "$ mlops endpoint test --stage staging",
    "$ mlops promote",
    "$ mlops endpoint test --stage prod",
    "smoke test passed",
)


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_config_copy(tmp_path / "model_deploy")))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    data = tmp_path / "buildings.csv"
    generate_buildings(ROWS, seed=7).to_csv(data, index=False)
    yield dict(os.environ), home, data
    stop_all_servers(home)


def demo(env, data, *extra):
    proc = subprocess.run(
        [sys.executable, "-m", "mlops.cli.demo", "--data", str(data), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def running_servers(home) -> list[int]:
    pids = []
    for pid_file in (home / "endpoints").glob("*/*/*.pid"):
        pid = int(pid_file.read_text())
        if is_server(pid, pid_file.parent.name):
            pids.append(pid)
    return pids


def test_demo_from_raw_data_to_a_smoke_tested_prod_endpoint(demo_env):
    env, home, data = demo_env
    before = data.read_bytes()
    out = demo(env, data, "--keep-endpoints")
    assert data.read_bytes() == before  # the user's file is only ever read
    for expected in STEPS:
        assert expected in out
    prod = read_endpoint(home, "prod")
    assert prod.version == 1 and read_endpoint(home, "staging").version == 1

    # The printed examples work as pasted.
    curl = re.search(r"^  (curl .*)$", out, re.M).group(1)
    price = subprocess.run(curl, shell=True, capture_output=True, text=True, check=True).stdout
    assert 50_000 < float(re.search(r"[\d.]+", price).group()) < 2_000_000
    snippet = re.search(r"python - <<'EOF'\n(.*?)\n  EOF", out, re.S).group(1)
    answer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(snippet)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"predictions"' in answer.stdout

    assert f"{prod.url}/invocations" in curl

    history = [
        (d["stage"], d["version"], d["result"]) for d in list_deployments(home, "energy-costs")
    ]
    assert history == [("prod", 1, "succeeded"), ("staging", 1, "succeeded")]
    assert [v.approval_status for v in LocalRegistry(home, "energy-costs").list()] == ["Approved"]
    assert len(running_servers(home)) == 2  # --keep-endpoints kept staging and prod
    for stage in ("staging", "prod"):
        assert run(["endpoint", "stop", "--stage", stage]) == 0
    assert running_servers(home) == []

"""A killed pipeline run leaves nothing running and nothing misleading behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlops.core.config import load_config
from mlops.local.registry import ORPHAN_MIN_AGE_S, LocalRegistry


def alive(pid: int) -> bool:
    """Running, and not a zombie (a dead step waits for its fork server to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_killing_the_runner_kills_the_running_step(data_csv, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MLOPS_HOME": str(home)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data_csv)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid_file = wait_for(
            lambda: next(iter(home.glob("runs/*/train/step.pid")), None), 120, "the train step"
        )
        step_pid = int(wait_for(lambda: pid_file.read_text().strip(), 5, "the step's pid"))
        assert alive(step_pid)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        killed_at = time.monotonic()
        wait_for(lambda: not alive(step_pid), 5, "the orphaned step to die")
        assert time.monotonic() - killed_at < 3
    finally:
        if runner.poll() is None:
            runner.kill()
    from mlops.local.report import read_run, settle_run

    run_dir = pid_file.parent.parent
    registry = LocalRegistry(home, load_config().model_package_group)
    assert settle_run(read_run(run_dir), registry).status == "killed"


def test_a_run_killed_after_registering_is_reported_as_registered(registered_home):
    from mlops.local.report import latest_run_dir, read_run, settle_run

    home, result = registered_home
    run_dir = home / "runs" / result.run_id
    record = json.loads((run_dir / "run.json").read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # What a run killed between the registry's commit and its last write leaves behind.
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": record["run_id"], "status": "running", "pid": dead.pid})
    )
    assert latest_run_dir(home) == run_dir
    registry = LocalRegistry(home, load_config().model_package_group)
    run = settle_run(read_run(run_dir), registry)
    assert (run.status, run.version) == ("registered", result.version.version)


def test_registration_collects_artifact_folders_no_version_points_to(registered_home):
    home, result = registered_home
    registry = LocalRegistry(home, load_config().model_package_group)
    ghost = registry.artifacts / "runs" / "killed-during-registration"
    ghost.mkdir(parents=True)
    (ghost / "model.tar.gz").write_bytes(b"half a copy")
    an_hour_ago = time.time() - ORPHAN_MIN_AGE_S - 60
    os.utime(ghost, (an_hour_ago, an_hour_ago))
    young = registry.artifacts / "runs" / "killed-a-minute-ago"  # too recent to be sure of
    young.mkdir()
    v1 = registry.describe(1)
    copied = home / "copied"
    copied.mkdir()
    for uri in (v1.model_uri, v1.evaluation_uri, v1.baseline_uri):
        shutil.copy2(uri, copied / Path(uri).name)
    v2 = registry.register(
        copied / "model.tar.gz",
        copied / "evaluation.json",
        copied / "baseline.json",
        {**v1.lineage, "run_id": "second-run"},
    )
    assert not ghost.exists() and young.is_dir()
    assert Path(v2.model_uri).is_file()
    assert result.version.version == 1

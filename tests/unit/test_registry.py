"""Local registry: numbering, approval, lineage, concurrency, crash consistency."""

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.core.errors import UsageError
from mlops.core.registry import APPROVED, PENDING, REJECTED
from mlops.local.registry import LocalRegistry

GROUP = "energy-costs"


def make_artifacts(folder: Path, mse: float = 2e7) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tar.gz").write_bytes(b"model bytes " + str(mse).encode())
    evaluation = {"regression_metrics": {m: {"value": v} for m, v in
                  (("mse", mse), ("rmse", mse**0.5), ("mae", 3000.0), ("r2", 0.99))}}  # fmt: skip
    (folder / "evaluation.json").write_text(json.dumps(evaluation))
    (folder / "baseline.json").write_text(json.dumps({"features": {}, "rows": 1}))
    return {
        "model_archive": folder / "model.tar.gz",
        "evaluation": folder / "evaluation.json",
        "baseline": folder / "baseline.json",
    }


def lineage(run_id: str) -> dict:
    return {"git_commit": "abc123", "pr_number": "7", "data_sha256": "f" * 64,
            "params": {"train": {"max_depth": 3}}, "run_id": run_id}  # fmt: skip


def register(home: Path, run_id: str, mse: float = 2e7):
    return LocalRegistry(home, GROUP).register(
        **make_artifacts(home.parent / "art" / run_id, mse), lineage=lineage(run_id)
    )


def test_versions_count_up_with_metrics_and_lineage(tmp_path):
    home = tmp_path / "home"
    v1, v2 = register(home, "r1", 2e7), register(home, "r2", 3e7)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.approval_status == PENDING
    assert v2.metrics == {"mse": 3e7, "rmse": pytest.approx(3e7**0.5), "mae": 3000.0, "r2": 0.99}
    assert v1.lineage["git_commit"] == "abc123" and v1.lineage["run_id"] == "r1"
    assert Path(v1.model_uri).read_bytes() == b"model bytes 20000000.0"
    assert Path(v1.model_uri).parent != Path(v2.model_uri).parent
    assert [v.version for v in LocalRegistry(home, GROUP).list()] == [1, 2]


def test_approve_reject_latest_approved_and_history(tmp_path):
    home = tmp_path / "home"
    for i in range(3):
        register(home, f"r{i}")
    reg = LocalRegistry(home, GROUP)
    assert reg.latest_approved() is None
    reg.approve(1, note="first")
    reg.approve(2)
    reg.reject(3, note="worse on holdout")
    assert reg.latest_approved().version == 2
    assert (
        reg.describe(3).approval_status == REJECTED and reg.describe(3).note == "worse on holdout"
    )
    reg.reject(2)
    assert reg.latest_approved().version == 1
    assert [h["approval_status"] for h in reg.history(2)] == [PENDING, APPROVED, REJECTED]


def test_unknown_version_and_status_are_usage_errors(tmp_path):
    reg = LocalRegistry(tmp_path / "home", GROUP)
    with pytest.raises(UsageError, match="version 5 does not exist"):
        reg.describe(5)
    with pytest.raises(UsageError, match="does not exist"):
        reg.approve(5)
    register(tmp_path / "home", "r1")
    with pytest.raises(UsageError, match="approval status"):
        reg.set_status(1, "Maybe")


def _register_after_barrier(home: str, run_id: str, barrier) -> None:
    barrier.wait()
    register(Path(home), run_id)


def test_four_concurrent_processes_get_four_distinct_versions(tmp_path):
    home = tmp_path / "home"
    register(home, "r0")  # the database exists; the race is on numbering, not creation
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_register_after_barrier, args=(str(home), f"c{i}", barrier))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    versions = LocalRegistry(home, GROUP).list()
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert sorted(v.lineage["run_id"] for v in versions[1:]) == ["c0", "c1", "c2", "c3"]


KILLER = """
import sys, json
from pathlib import Path
sys.path.insert(0, {tests!r})
from unit.test_registry import register
home = Path(sys.argv[1])
for i in range(10_000):
    register(home, f"loop{{i}}")
"""


def test_kill_9_during_registrations_leaves_a_consistent_registry(tmp_path):
    home = tmp_path / "home"
    register(home, "before")
    script = KILLER.format(tests=str(Path(__file__).parent.parent))
    proc = subprocess.Popen([sys.executable, "-c", script, str(home)])
    deadline = time.time() + 60
    while len(LocalRegistry(home, GROUP).list()) < 4 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(home / "registry.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    versions = LocalRegistry(home, GROUP).list()
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))  # no gaps
    assert versions[0].lineage["run_id"] == "before"
    assert all(Path(v.model_uri).is_file() for v in versions)  # no row without its files
    after = register(home, "after")
    assert after.version == len(versions) + 1

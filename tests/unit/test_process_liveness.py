"""`is_running` (server_process): a server that has exited is not running, even while it
waits as a zombie for a parent that is not us (PID 1, once the command that started it
has exited) to reap it; `stop_server` then returns at once instead of waiting for that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.local.server_process import is_running, stop_server

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")


def orphan(seconds: float) -> int:
    """A process in its own session whose parent has exited: it is not our child."""
    code = (
        "import subprocess, sys; p = subprocess.Popen(['sleep', sys.argv[1]], "
        "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(p.pid)"
    )
    argv = [sys.executable, "-c", code, str(seconds)]
    return int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None  # reaped


def test_an_exited_process_that_is_not_our_child_is_not_running():
    pid = orphan(30)
    assert is_running(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while state(pid) not in ("Z", None):  # exited: a zombie until its parent reaps it
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.005)
    assert not is_running(pid)


def test_stop_server_returns_when_the_process_has_exited():
    pid = orphan(30)
    started = time.monotonic()
    assert stop_server(pid)
    assert time.monotonic() - started < 5  # its timeout is 15 s
    assert state(pid) in ("Z", None)

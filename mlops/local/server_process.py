"""Running endpoint servers in the background: spawn, wait until ready, ping, stop.

This is the client side of `python -m mlops.local.server`, what `mlops deploy`, the
tests and the benchmarks use; it starts the server by module name and never imports
it, so callers do not load the serving stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlops.core.errors import MlopsError
from mlops.local.endpoint_app import ServerSettings

DEFAULT_HOST = "127.0.0.1"
SERVER_MODULE = "mlops.local.server"
WATCH_PID_ENV = "MLOPS_SERVER_WATCH_PID"  # the server exits when this process is gone


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    url: str
    port: int
    log: Path


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (our own dead children are reaped here;
    another process's dead child stays a zombie until its parent, often PID 1, reaps it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Whether `pid` has exited and waits to be reaped (Linux /proc; False elsewhere).

    A server started by an earlier command is reparented to PID 1 once that command exits;
    when it stops, it stays a zombie until PID 1 reaps it: a second or more on some
    machines, never in a container whose PID 1 is the application itself. `os.kill(pid, 0)`
    succeeds on a zombie, so without this `stop_server` waited for the reaping (or for its
    timeout, then SIGKILL) before reporting a stopped server."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")"
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


def process_cmdline(pid: int) -> str:
    """The command line of `pid`, or '' when it cannot be read."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        pass
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.strip()


def is_server(pid: int, instance: str) -> bool:
    """`pid` is alive and is the mlops server started for `instance` (pids get reused)."""
    if not pid or not is_running(pid):
        return False
    cmdline = process_cmdline(pid)
    return SERVER_MODULE in cmdline and f"--instance {instance}" in cmdline


def server_argv(
    settings: ServerSettings, host: str, port: int, workers: int, reuse_port: bool, ready: Path
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model-dir",
        settings.model_dir,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--endpoint-name",
        settings.endpoint_name,
        "--stage",
        settings.stage,
        "--instance",
        settings.instance,
        "--ready-file",
        str(ready),
        "--max-header-kb",
        str(settings.max_header_bytes // 1024),
        "--header-timeout",
        str(settings.header_timeout),
        "--body-timeout",
        str(settings.body_timeout),
        "--keep-alive",
        str(settings.keep_alive_timeout),
        "--max-connections",
        str(settings.max_connections),
    ]
    if settings.version is not None:
        argv += ["--version", str(settings.version)]
    if not settings.batching:
        argv.append("--no-batching")
    return argv + (["--reuse-port"] if reuse_port else [])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def spawn_server(
    settings: ServerSettings,
    workdir: Path,
    role: str,
    port: int = 0,
    host: str = DEFAULT_HOST,
    workers: int = 1,
    reuse_port: bool = False,
    timeout: float = 60.0,
    port_lock: Path | None = None,
    owned: bool = False,
) -> ServerProcess:
    """Start a detached server (own session, logs in workdir/<role>.log) and wait until it
    listens and answers /ping from this instance. Port 0 picks a free port. An `owned`
    server (a deployment's candidate) stops when this process is gone, killed or not."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{role}.ready.json"
    ready.unlink(missing_ok=True)
    log_path = workdir / f"{role}.log"
    argv = server_argv(settings, host, port, workers, reuse_port, ready)
    if port_lock is not None:  # held shared for the server's life (mlops.local.port_lock)
        argv += ["--port-lock", str(port_lock)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if owned:
        env[WATCH_PID_ENV] = str(os.getpid())
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (workdir / f"{role}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    try:
        info = _wait_for_ready_file(proc, ready, log_path, deadline)
        _wait_for_ping(info["url"], settings.instance, proc, log_path, deadline)
    except BaseException:
        stop_server(proc.pid)
        raise
    return ServerProcess(pid=proc.pid, url=info["url"], port=info["port"], log=log_path)


def _wait_for_ready_file(
    proc: subprocess.Popen, ready: Path, log_path: Path, deadline: float
) -> dict:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MlopsError(
                f"server exited with code {proc.returncode}: {_tail(log_path)} [log: {log_path}]"
            )
        if ready.exists():
            return json.loads(ready.read_text())
        time.sleep(0.05)
    raise MlopsError(f"server did not start listening in time [log: {log_path}]")


def _wait_for_ping(
    url: str, instance: str, proc: subprocess.Popen, log_path: Path, deadline: float
) -> None:
    """Until /ping answers from this instance (on a shared port, another may answer first)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MlopsError(
                f"server exited with code {proc.returncode}: {_tail(log_path)} [log: {log_path}]"
            )
        answer = ping(url, timeout=2.0)
        if answer is not None and answer.get("instance") == instance:
            return
        time.sleep(0.02)
    raise MlopsError(f"server at {url} did not answer /ping in time [log: {log_path}]")


def ping(url: str, timeout: float = 1.0) -> dict | None:
    """GET /ping on a fresh connection: its JSON when healthy, else None."""
    request = urllib.request.Request(f"{url}/ping", headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            return json.loads(response.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None


def stop_server(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM the server's process group (graceful: in-flight requests finish), SIGKILL after
    `timeout`. Returns False when it was not running."""
    if not is_running(pid):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    while is_running(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)
    return True

"""A stage's port is owned through a lock file on this machine, not per state home.

Two state homes (two `$MLOPS_HOME`s) can both bind one port with SO_REUSEPORT, so
a bind test cannot tell whether a port is free. Instead each stage port has a lock
file, `<lock dir>/<port>.lock` (default `/tmp/mlops-ports`, `$MLOPS_PORT_LOCK_DIR`
overrides), holding the owner (home, stage) in JSON:

- a deployment claims it with an exclusive flock; if that fails, servers hold it,
  and unless they are this home's own servers of this stage (a hand-over), the
  deployment stops before starting anything, with one line naming the owner;
- every server bound to the port holds a shared flock for its lifetime
  (`python -m mlops.local.server --port-lock FILE`), so the claim lasts exactly as
  long as something of that owner serves, and a killed owner releases it.

A port held by a process that is not an mlops server is named too (its pid and
command line, read from /proc) when the bind check finds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path

from mlops.core.errors import MlopsError

LOCK_DIR_ENV = "MLOPS_PORT_LOCK_DIR"


def lock_dir() -> Path:
    folder = Path(os.environ.get(LOCK_DIR_ENV) or "/tmp/mlops-ports")
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            folder.chmod(0o1777)  # shared by every user of the machine, like /tmp
    return folder


def lock_path(port: int) -> Path:
    return lock_dir() / f"{port}.lock"


def read_owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe_owner(owner: dict) -> str:
    if not owner:
        return "another mlops server"
    return f"the {owner.get('stage', '?')} endpoint of MLOPS_HOME={owner.get('home', '?')}"


def open_lock_file(path: Path, flags: int) -> int:
    """Open a lock file in the shared (1777) lock folder without following a link another
    user planted there (a root deploy would otherwise truncate and write the link's target);
    anything but a regular file is refused."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MlopsError(
                f"port lock {path} is a symbolic link: refusing to follow it (remove it)"
            ) from None
        raise MlopsError(f"cannot open the port lock {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MlopsError(f"port lock {path} is not a regular file: refusing it (remove it)")
    return fd


def claim_port(port: int, home: Path, stage: str) -> int:
    """Claim `port` for (home, stage) before starting servers on it; returns the lock's fd
    (held shared until the caller exits; servers take their own shared lock)."""
    path = lock_path(port)
    me = {"home": str(Path(home).resolve()), "stage": stage}
    fd = open_lock_file(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = read_owner(path)
        if {k: owner.get(k) for k in me} == me:
            fcntl.flock(fd, fcntl.LOCK_SH)  # our own servers hold it: a hand-over
            return fd
        os.close(fd)
        raise MlopsError(
            f"port {port} (local.port in {stage}-config.json) is held by {describe_owner(owner)}"
            f" (pid {owner.get('pid', '?')}): stop it there with `mlops endpoint stop --stage "
            f"{owner.get('stage', stage)}` or choose another local.port"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({**me, "pid": os.getpid(), "at": time.time()}).encode(), 0)
    fcntl.flock(fd, fcntl.LOCK_SH)  # keep the claim, let our servers share it
    return fd


def hold_port_lock(path: Path, timeout: float = 10.0) -> int:
    """In a server: a shared lock on the port's lock file for the life of the process."""
    fd = open_lock_file(path, os.O_RDONLY)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise MlopsError(f"port lock {path} stays held exclusively") from None
            time.sleep(0.05)


def listening_pids(port: int) -> list[int]:
    """Processes with a listening TCP socket on `port` (from /proc; [] where unreadable)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    pids = []
    if not inodes:
        return pids
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
    return pids


def port_holder(port: int) -> str:
    """Who listens on `port`, in words: 'pid 123 (python -m http.server 8081)' or ''."""
    from mlops.local.server_process import process_cmdline

    pids = listening_pids(port)
    return ", ".join(f"pid {pid} ({process_cmdline(pid).strip()[:80]})" for pid in pids)


def check_port_free(port: int, stage: str, host: str = "127.0.0.1") -> None:
    """Fail, naming the holder, when a process that is not ours listens on the port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            holder = port_holder(port) or "another process"
            raise MlopsError(
                f"port {port} (local.port in {stage}-config.json) is in use by {holder}"
            ) from None

"""The local endpoint server: SageMaker's serving contract on uvicorn.

This module is the server process itself (`python -m mlops.local.server`, started by
`mlops.local.server_process.spawn_server`): it loads the model, binds the port (sharing
it with SO_REUSEPORT for blue/green hand-overs), announces readiness and serves
`mlops.local.endpoint_app.EndpointApp` until stopped.

Why this stack: a raw ASGI app on uvicorn with uvloop and httptools keeps HTTP
overhead to tens of microseconds per request on keep-alive connections, where a
WSGI framework on gunicorn's sync workers pays for a new connection and a
framework dispatch on every request; and being asynchronous, it scores requests
that arrive together in one predict_fn call (`mlops.local.model_host.Batcher`), which
a sync worker, busy with one request at a time, cannot. `bench/endpoint.py` measures
both stacks.

Run `python -m mlops.local.server --help`; deployments start it through `spawn_server`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from mlops.core.errors import MlopsError
from mlops.local.endpoint_app import MAX_BODY_BYTES, EndpointApp, ServerSettings, build_app
from mlops.local.server_process import DEFAULT_HOST, WATCH_PID_ENV, is_running

log = logging.getLogger("mlops.local.server")

SETTINGS_ENV = "MLOPS_SERVER_SETTINGS"


def app_from_env() -> EndpointApp:
    """uvicorn factory for worker processes: settings come from $MLOPS_SERVER_SETTINGS."""
    settings = ServerSettings(**json.loads(os.environ[SETTINGS_ENV]))
    return build_app(settings, serving_process=True)


def bind_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening socket. With `reuse_port`, a second server can bind the same port while the
    first still serves (SO_REUSEPORT): that is how a deployment hands a stage's port over."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MlopsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    if reuse_port:
        steer_new_connections_here(sock)
    sock.set_inheritable(True)
    return sock


SO_ATTACH_REUSEPORT_CBPF = 51  # from <asm-generic/socket.h>; Python's socket module lacks it
BPF_RET_K = 0x06  # classic BPF: return the constant k


def steer_new_connections_here(sock: socket.socket) -> None:
    """Send every new connection on the shared port to this (the newest) socket.

    SO_REUSEPORT alone spreads new connections over the old and the new server,
    and closing the old one resets the connections still waiting in its accept
    queue. A one-instruction reuseport program returning index 1 (the second
    socket of the group) sends them all here instead, so the old server's queue
    drains before it stops. With one socket left, index 1 is out of range and the
    kernel falls back to its usual choice. Linux only; elsewhere this is a no-op.
    """
    import ctypes
    import struct

    program = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, 1))
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that open connections never exhaust the file descriptors."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - 64))  # room for the model, logs and the listening socket


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _watch_parent(pid: int) -> None:
    """Stop this server when process `pid` is gone (test runs leave no stray servers)."""

    def watch() -> None:
        while is_running(pid):
            time.sleep(0.5)
        log.warning("process %d is gone: shutting down", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def serve(
    settings: ServerSettings,
    host: str = DEFAULT_HOST,
    port: int = 8080,
    workers: int = 1,
    reuse_port: bool = False,
    ready_file: Path | None = None,
    access_log: bool = False,
) -> None:
    """Load the model, bind, announce readiness, then serve until SIGTERM/SIGINT."""
    import uvicorn

    # fail before binding if the model or handlers are broken
    app = build_app(settings, serving_process=True)
    sock = bind_socket(host, port, reuse_port)
    bound_port = sock.getsockname()[1]
    options = {
        "http": "mlops.local.http_guard:GuardedProtocol",
        "ws": "none",
        "proxy_headers": False,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "access_log": access_log,
        "timeout_graceful_shutdown": 10,
        "log_level": "info",
        "server_header": False,
    }
    if ready_file:
        url = f"http://{host}:{bound_port}"
        _write_json_atomic(Path(ready_file), {"pid": os.getpid(), "port": bound_port, "url": url})
    log.info(
        "serving %s (version %s) on http://%s:%d with %d worker(s)",
        settings.endpoint_name,
        settings.version,
        host,
        bound_port,
        workers,
    )
    try:
        if workers == 1:
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
        config = uvicorn.Config(
            "mlops.local.server:app_from_env", factory=True, workers=workers, **options
        )
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        log.info("stopped")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mlops.local.server", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--model-dir", type=Path, required=True, help="extracted model.tar.gz (its code/ serves it)"
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--endpoint-name", default="local")
    p.add_argument("--stage", default="")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--instance", default="", help="an id reported by /ping")
    p.add_argument("--max-body-mb", type=float, default=MAX_BODY_BYTES / (1024 * 1024))
    p.add_argument("--reuse-port", action="store_true", help="share the port (SO_REUSEPORT)")
    p.add_argument("--ready-file", type=Path, help="write {pid, port, url} here once listening")
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--port-lock", type=Path, help="hold a shared lock on this file while serving")
    p.add_argument("--max-header-kb", type=int, default=64, help="request line + headers (431)")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds to read a head")
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds to read a body")
    p.add_argument("--keep-alive", type=float, default=5.0, help="idle keep-alive seconds")
    p.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="open connections past which new ones get 503 + Retry-After "
        "(capped below the file-descriptor limit)",
    )
    p.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        help="score every request alone (default: requests that arrive together share "
        "one predict_fn call)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServerSettings(
        model_dir=str(args.model_dir.resolve()),
        endpoint_name=args.endpoint_name,
        stage=args.stage,
        version=args.version,
        instance=args.instance,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        batching=args.batching,
        max_header_bytes=args.max_header_kb * 1024,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive,
        max_connections=connection_cap(args.max_connections),
    )
    if args.port_lock:
        from mlops.local.port_lock import hold_port_lock

        try:
            hold_port_lock(args.port_lock)  # the fd stays open, and locked, until exit
        except (OSError, MlopsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if os.environ.get(WATCH_PID_ENV, "").isdigit():
        _watch_parent(int(os.environ[WATCH_PID_ENV]))
    try:
        serve(
            settings,
            host=args.host,
            port=args.port,
            workers=args.workers,
            reuse_port=args.reuse_port,
            ready_file=args.ready_file,
            access_log=args.access_log,
        )
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

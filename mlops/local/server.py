"""The local endpoint server: SageMaker's serving contract on uvicorn.

Routes, as a SageMaker model container and SageMaker Runtime answer them:

- `GET /ping`                              200 once the model is loaded (JSON: version, stage)
- `POST /invocations`                      the container's own inference route
- `POST /endpoints/{name}/invocations`     InvokeEndpoint's path, so an unmodified
  `boto3.client("sagemaker-runtime", endpoint_url=url).invoke_endpoint(...)` works

The model is loaded with `inference.py`'s handlers (`model_fn`, `input_fn`,
`predict_fn`, `output_fn`), exactly as SageMaker's XGBoost container loads them.
Bad input never costs the server: unreadable bodies get 400, unknown content types
415, bodies over the size limit 413, unknown endpoint names 404, always with a
JSON `{"message": ...}` body and an `x-amzn-ErrorType` header that botocore turns
into a ClientError (`ModelError` when the model refused the input).

Why this stack: a raw ASGI app on uvicorn with uvloop and httptools keeps HTTP
overhead to tens of microseconds per request on keep-alive connections, where a
WSGI framework on gunicorn's sync workers pays for a new connection and a
framework dispatch on every request; and being asynchronous, it scores requests
that arrive together in one predict_fn call (`Batcher`), which a sync worker,
busy with one request at a time, cannot. `bench/endpoint.py` measures both stacks.

Run `python -m mlops.local.server --help`; deployments start it through `spawn_server`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops.core.errors import MlopsError

log = logging.getLogger("mlops.local.server")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints accept up to 6 MB
INLINE_BODY_BYTES = 64 * 1024  # larger bodies are scored on a thread: /ping stays responsive
SETTINGS_ENV = "MLOPS_SERVER_SETTINGS"
WATCH_PID_ENV = "MLOPS_SERVER_WATCH_PID"  # the server exits when this process is gone
DEFAULT_HOST = "127.0.0.1"
JSON_TYPE = b"application/json"


@dataclass(frozen=True)
class ServerSettings:
    """What one server serves; JSON-serialisable so worker processes can rebuild it."""

    model_dir: str
    code_dir: str
    endpoint_name: str = "local"
    stage: str = ""
    version: int | None = None
    instance: str = ""
    max_body_bytes: int = MAX_BODY_BYTES
    batching: bool = True


@dataclass(frozen=True)
class Handlers:
    """inference.py's functions and the exceptions that mean "the client's fault"."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[bytes, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    bad_input: tuple[type[BaseException], ...]
    unsupported: tuple[type[BaseException], ...]


def _skip_unused_sklearn(code_dir: Path) -> None:
    """Serving never uses scikit-learn, but importing xgboost imports it (~2.5 s of a 3.5 s
    start). Unless the handler code mentions it, tell Python it is absent."""
    if "sklearn" in sys.modules:
        return
    sources = (p.read_text(errors="replace") for p in code_dir.glob("*.py"))
    if not any("sklearn" in text for text in sources):
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` -> ImportError


def load_handlers(code_dir: Path, module_name: str = "inference") -> Handlers:
    """Import `<code_dir>/inference.py` (siblings importable, as in a SageMaker container)."""
    code_dir = Path(code_dir).resolve()
    path = code_dir / f"{module_name}.py"
    if not path.is_file():
        raise MlopsError(f"handler module not found: {path}")
    _skip_unused_sklearn(code_dir)
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "")).resolve() != path:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    missing = [
        n for n in ("model_fn", "input_fn", "predict_fn", "output_fn") if not hasattr(module, n)
    ]
    if missing:
        raise MlopsError(f"{path} lacks handler function(s): {', '.join(missing)}")
    bad_input = getattr(module, "InvalidInput", None)
    unsupported = getattr(module, "UnsupportedContentType", None)
    return Handlers(
        model_fn=module.model_fn,
        input_fn=module.input_fn,
        predict_fn=module.predict_fn,
        output_fn=module.output_fn,
        bad_input=(bad_input,) if bad_input else (),
        unsupported=(unsupported,) if unsupported else (),
    )


def error_response(status: int, message: str, code: str) -> tuple[int, list, bytes]:
    body = json.dumps({"message": message, "code": code}).encode()
    return status, [(b"content-type", JSON_TYPE), (b"x-amzn-errortype", code.encode())], body


class EndpointApp:
    """The ASGI application: routing, body limit, handler calls, error mapping."""

    def __init__(self, settings: ServerSettings, handlers: Handlers, model: Any):
        self.settings = settings
        self.handlers = handlers
        self.model = model
        self.runtime_prefix = "/endpoints/"
        ping = {
            "status": "healthy",
            "endpoint_name": settings.endpoint_name,
            "stage": settings.stage,
            "model_version": settings.version,
            "instance": settings.instance,
        }
        self.ping_body = json.dumps(ping).encode()
        self.batcher = Batcher(handlers.predict_fn, model) if settings.batching else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        status, headers, body = await self.respond(scope, receive)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, scope: dict, receive: Callable) -> tuple[int, list, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            if method in ("GET", "HEAD"):
                return 200, [(b"content-type", JSON_TYPE)], self.ping_body
            return error_response(
                405, f"{method} is not allowed on /ping; use GET", "MethodNotAllowed"
            )
        if path.startswith(self.runtime_prefix) and path.endswith("/invocations"):
            name = path[len(self.runtime_prefix) : -len("/invocations")]
            if name != self.settings.endpoint_name:
                return error_response(
                    404,
                    f"Endpoint {name} not found: this server serves "
                    f"{self.settings.endpoint_name!r}",
                    "ValidationError",
                )
        elif path != "/invocations":
            return error_response(
                404,
                f"no route {path}: use GET /ping, POST /invocations or "
                f"POST /endpoints/{self.settings.endpoint_name}/invocations",
                "NotFound",
            )
        if method != "POST":
            return error_response(405, f"{method} is not allowed; use POST", "MethodNotAllowed")
        headers = {k.lower(): v for k, v in scope["headers"]}
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            return self.too_large()
        body = await read_body(receive, limit)
        if body is None:
            return self.too_large()
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1")
        if len(body) > INLINE_BODY_BYTES:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.invoke, body, content_type, accept)
        if self.batcher is None:
            return self.invoke(body, content_type, accept)
        try:
            data = self.handlers.input_fn(body, content_type)
            prediction = await self.batcher.submit(data)
        except Exception as exc:
            return self.failure(exc)
        return self.render(prediction, accept)

    def too_large(self) -> tuple[int, list, bytes]:
        limit_mb = self.settings.max_body_bytes / (1024 * 1024)
        return error_response(
            413, f"request body is larger than the {limit_mb:g} MB limit", "ValidationError"
        )

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[int, list, bytes]:
        """input_fn -> predict_fn -> output_fn for one request, on its own."""
        try:
            data = self.handlers.input_fn(body, content_type)
            prediction = self.handlers.predict_fn(data, self.model)
        except Exception as exc:
            return self.failure(exc)
        return self.render(prediction, accept)

    def render(self, prediction: Any, accept: str) -> tuple[int, list, bytes]:
        try:
            result = self.handlers.output_fn(prediction, accept)
        except Exception as exc:
            return self.failure(exc)
        payload, out_type = result if isinstance(result, tuple) else (result, accept or "")
        if isinstance(payload, str):
            payload = payload.encode()
        headers = [
            (b"content-type", (out_type or "application/octet-stream").encode("latin-1")),
            (b"x-amzn-invoked-production-variant", b"AllTraffic"),
        ]
        return 200, headers, bytes(payload)

    def failure(self, exc: Exception) -> tuple[int, list, bytes]:
        """The handlers' own exceptions are the client's fault (4xx); anything else is ours."""
        if isinstance(exc, self.handlers.unsupported):
            return error_response(415, str(exc), "ModelError")
        if isinstance(exc, self.handlers.bad_input):
            return error_response(400, str(exc), "ModelError")
        log.error("inference failed", exc_info=exc)
        return error_response(500, "inference failed; see the server log", "InternalFailure")


class Batcher:
    """Scores requests that arrive together with one predict_fn call (dynamic batching).

    Requests parsed in the same event-loop turn are queued; a callback scheduled behind
    them stacks their rows, calls predict_fn once and gives each request its slice.
    Nothing waits for a batch to fill: a lone request is scored at once. If the joint
    call fails (say one request holds a NaN), each request is scored alone, so every
    error stays with its own request. predict_fn must score rows independently, as
    XGBoost does; `--no-batching` turns this off.
    """

    def __init__(self, predict_fn: Callable[[Any, Any], Any], model: Any):
        self.predict_fn = predict_fn
        self.model = model
        self.pending: list[tuple[Any, asyncio.Future]] = []

    def submit(self, data: Any) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.pending:
            loop.call_soon(self.flush)
        self.pending.append((data, future))
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        parts = self.predict_together([data for data, _ in batch]) if len(batch) > 1 else None
        for index, (data, future) in enumerate(batch):
            if future.done():  # the client went away
                continue
            if parts is not None:
                future.set_result(parts[index])
                continue
            try:
                future.set_result(self.predict_fn(data, self.model))
            except Exception as exc:
                future.set_exception(exc)

    def predict_together(self, inputs: list[Any]) -> list[Any] | None:
        """One prediction slice per input, or None when they cannot be scored together."""
        joined = join_rows(inputs)
        if joined is None:
            return None
        try:
            predictions = self.predict_fn(joined, self.model)
        except Exception:
            return None
        counts = [len(data) for data in inputs]
        if len(predictions) != sum(counts):
            return None
        bounds = [0, *itertools.accumulate(counts)]
        return [predictions[a:b] for a, b in itertools.pairwise(bounds)]


def join_rows(inputs: list[Any]) -> Any:
    """Rows of several parsed requests as one input: 2-D arrays of one width, or lists."""
    import numpy as np

    if all(isinstance(x, np.ndarray) and x.ndim == 2 for x in inputs):
        if len({x.shape[1] for x in inputs}) == 1:
            return np.concatenate(inputs)
        return None
    if all(isinstance(x, list) for x in inputs):
        return [row for x in inputs for row in x]
    return None


async def read_body(receive: Callable, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def build_app(settings: ServerSettings) -> EndpointApp:
    """Load the handlers and the model (model_fn checks its sha256) into an app."""
    handlers = load_handlers(Path(settings.code_dir))
    model = handlers.model_fn(settings.model_dir)
    return EndpointApp(settings, handlers, model)


def app_from_env() -> EndpointApp:
    """uvicorn factory for worker processes: settings come from $MLOPS_SERVER_SETTINGS."""
    return build_app(ServerSettings(**json.loads(os.environ[SETTINGS_ENV])))


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

    app = build_app(settings)  # fail before binding if the model or handlers are broken
    sock = bind_socket(host, port, reuse_port)
    bound_port = sock.getsockname()[1]
    options = {
        "lifespan": "off",
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
    p.add_argument("--model-dir", type=Path, required=True, help="extracted model.tar.gz")
    p.add_argument("--code-dir", type=Path, required=True, help="folder holding inference.py")
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
        code_dir=str(args.code_dir.resolve()),
        endpoint_name=args.endpoint_name,
        stage=args.stage,
        version=args.version,
        instance=args.instance,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        batching=args.batching,
    )
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


# Running a server in the background (what `mlops deploy` and the tests do) -------------


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    url: str
    port: int
    log: Path


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (our own dead children are reaped here)."""
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
    return True


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
    return "mlops.local.server" in cmdline and f"--instance {instance}" in cmdline


def server_argv(
    settings: ServerSettings, host: str, port: int, workers: int, reuse_port: bool, ready: Path
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "mlops.local.server",
        "--model-dir",
        settings.model_dir,
        "--code-dir",
        settings.code_dir,
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
) -> ServerProcess:
    """Start a detached server (own session, logs in workdir/<role>.log) and wait until it
    listens and answers /ping from this instance. Port 0 picks a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{role}.ready.json"
    ready.unlink(missing_ok=True)
    log_path = workdir / f"{role}.log"
    argv = server_argv(settings, host, port, workers, reuse_port, ready)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
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


if __name__ == "__main__":
    sys.exit(main())

"""The local endpoint's ASGI app: SageMaker's serving contract over HTTP.

Routes, as a SageMaker model container and SageMaker Runtime answer them:

- `GET /ping`                              200 once the model is loaded (JSON: version, stage)
- `POST /invocations`                      the container's own inference route
- `POST /endpoints/{name}/invocations`     InvokeEndpoint's path, so an unmodified
  `boto3.client("sagemaker-runtime", endpoint_url=url).invoke_endpoint(...)` works

Bad input never costs the server: unreadable bodies get 400, unknown content types
415, bodies over the size limit 413, unknown endpoint names 404, always with a
JSON `{"message": ...}` body and an `x-amzn-ErrorType` header that botocore turns
into a ClientError (`ModelError` when the model refused the input).

Only the protocol lives here; the handlers and batching are `mlops.local.model_host`,
binding and serving are `mlops.local.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlops.local.capture import Capture, open_capture
from mlops.local.model_host import Batcher, Handlers, load_model

log = logging.getLogger("mlops.local.server")  # one logger name for everything in the server

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints accept up to 6 MB
# Request bodies one server process holds at once: past it a request gets 503 + Retry-After
# (100 clients each sending 6 MB would otherwise take ~2 GB and starve /ping while parsing).
MAX_BUFFERED_BYTES = 8 * MAX_BODY_BYTES
INLINE_BODY_BYTES = 64 * 1024  # larger bodies are scored on a thread: /ping stays responsive
JSON_TYPE = b"application/json"


@dataclass(frozen=True)
class ServerSettings:
    """What one server serves; JSON-serialisable so worker processes can rebuild it."""

    model_dir: str  # an unpacked model artifact: its code/ serves it
    endpoint_name: str = "local"
    stage: str = ""
    version: int | None = None
    instance: str = ""
    max_body_bytes: int = MAX_BODY_BYTES
    max_buffered_bytes: int = MAX_BUFFERED_BYTES
    batching: bool = True
    # connection limits, enforced by mlops.local.http_guard (see there) and read_body
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    drain_seconds: float = 1.0


def error_response(
    status: int, message: str, code: str, close: bool = False
) -> tuple[int, list, bytes]:
    """A JSON error; `close` ends the connection (the rest of the body is not read)."""
    body = json.dumps({"message": message, "code": code}).encode()
    headers = [(b"content-type", JSON_TYPE), (b"x-amzn-errortype", code.encode())]
    if close:
        headers.append((b"connection", b"close"))
    return status, headers, body


class EndpointApp:
    """The ASGI application: routing, body limit, handler calls, error mapping."""

    def __init__(
        self,
        settings: ServerSettings,
        handlers: Handlers,
        model: Any,
        capture: Capture | None = None,
    ):
        self.settings = settings
        self.capture = capture
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
        self.buffered = 0  # body bytes reserved by requests in progress (this process)
        self.large_bodies = ThreadPoolExecutor(1, thread_name_prefix="large-body")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        tap = self.capture.tap(scope, receive) if self.capture else None
        status, headers, body = await self.respond(scope, tap.receive if tap else receive)
        if tap is not None:
            tap.record(status, headers, body)
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
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return self.too_large()
        # A body without a length (chunked) may grow to the limit: reserve the limit.
        reserve = int(declared) if declared.isdigit() else limit
        if self.buffered + reserve > self.settings.max_buffered_bytes:
            return await self.busy(receive, limit)
        self.buffered += reserve
        try:
            return await self.invoke_body(receive, headers, limit)
        finally:
            self.buffered -= reserve

    async def invoke_body(self, receive: Callable, headers: dict, limit: int):
        """Read the body (with its timeout and limit), then score it."""
        try:  # asyncio.timeout is a timer, not a task: cheap enough for every request
            async with asyncio.timeout(self.settings.body_timeout):
                body = await read_body(receive, limit)
        except TimeoutError:
            return error_response(
                408,
                f"the request body did not arrive within {self.settings.body_timeout:g} s",
                "ValidationError",
                close=True,
            )
        if body is None:
            return self.too_large()
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1")
        if len(body) > INLINE_BODY_BYTES:
            # One large body at a time, on one thread: parsing holds the GIL in long C
            # calls, and several such threads at once starve the event loop (and /ping).
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.large_bodies, self.invoke, body, content_type, accept
            )
        if self.batcher is None:
            return self.invoke(body, content_type, accept)
        try:
            data = self.handlers.input_fn(body, content_type)
            prediction = await self.batcher.submit(data)
        except Exception as exc:
            return self.failure(exc)
        return self.render(prediction, accept)

    async def busy(self, receive: Callable, limit: int) -> tuple[int, list, bytes]:
        """503 + Retry-After: the server holds its maximum of request bodies right now. The
        body is read and dropped first (memory stays flat): a client still sending would
        otherwise see a reset instead of the 503 it can retry on."""
        drained = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.body_timeout):
                drained = await drain_body(receive, limit)
        limit_mb = self.settings.max_buffered_bytes / (1024 * 1024)
        status, headers, body = error_response(
            503,
            f"the server is holding its maximum of {limit_mb:g} MB of request bodies; "
            "retry shortly",
            "ServiceUnavailable",
            close=not drained,
        )
        return status, [*headers, (b"retry-after", b"1")], body

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


async def drain_body(receive: Callable, limit: int) -> bool:
    """Read the request body without keeping it; False when it exceeds `limit` bytes."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        if size > limit:
            return False
        if not message.get("more_body", False):
            return True


def build_app(settings: ServerSettings, serving_process: bool = False) -> EndpointApp:
    """The model and the handlers of its own code (checked against the artifact's manifest
    first, `mlops.local.model_host.load_model`) in an app.
    `serving_process`: this process only serves (it may skip importing scikit-learn)."""
    handlers, model = load_model(settings.model_dir, serving_process)
    return EndpointApp(settings, handlers, model, capture=open_capture(settings.model_dir))

"""uvicorn's httptools protocol with the limits a public endpoint needs, and a clean drain.

uvicorn offers a keep-alive timeout (`timeout_keep_alive`) and a request cap
(`limit_concurrency`, checked only once a request's headers are in), but with httptools
it has no limit on the size of a request head, no timeout for reading a head or a body,
no timeout for a connection that never sends anything, and at shutdown it closes idle
kept-alive connections at once, racing a request the client may already have sent.
`GuardedProtocol` adds, per connection:

- a cap on open connections: past it a connection gets `503` with `Retry-After` and is
  closed before it can hold a file descriptor for long;
- a head size limit (`431`) and a head read timeout (`408`), both counted from the first
  byte of a request; a connection that sends nothing is closed after the same timeout.
  Head bytes are the parser's own pieces (URL, header names and values) plus the
  unfinished line the parser still holds: bodies and pipelined requests never count,
  and a head that arrives in one read is counted too;
- a backstop body timeout (the app answers `408` itself at `body_timeout`; this closes
  connections whose body nobody reads, e.g. a body sent to `/ping`);
- a drain on shutdown: idle connections stay open `drain_seconds` so that a request
  already on its way is answered (with `Connection: close`), in-flight requests finish
  and their response carries `Connection: close`.

The limits come from the app's `ServerSettings` (fields `max_header_bytes`,
`header_timeout`, `body_timeout`, `max_connections`, `drain_seconds`), so worker
processes, which rebuild the app from settings, get the same ones.
Selected with `uvicorn.Config(http="mlops.local.http_guard:GuardedProtocol")`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

REFUSED_LINGER_SECONDS = 1.0  # read (and drop) a refused client's request before closing


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    drain_seconds: float = 1.0


def limits_of(app: object) -> Limits:
    while not hasattr(app, "settings") and hasattr(app, "app"):  # uvicorn's middleware wrappers
        app = app.app
    settings = getattr(app, "settings", None)
    fields = Limits.__dataclass_fields__
    return Limits(**{name: getattr(settings, name) for name in fields if hasattr(settings, name)})


def raw_response(status: int, message: str, extra: tuple[bytes, ...] = ()) -> bytes:
    """A complete JSON error response that closes the connection (the ASGI app never saw it)."""
    body = json.dumps({"message": message, "code": "ValidationError"}).encode()
    head = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n",
        *extra,
        b"\r\n",
    ]
    return b"".join(head) + body


class GuardedProtocol(HttpToolsProtocol):
    def __init__(self, config, server_state, app_state, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits_of(self.app)
        self.timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.draining = False
        self.in_head = False
        self.head_bytes = 0  # the current head's URL and header bytes the parser delivered
        self.pending = 0  # bytes of the head's line in progress, not yet delivered
        self.delivered = False  # the parser delivered a head piece during this read
        self.oversized = False  # a head over the limit: nothing more of this connection runs

    def arm(self, delay: float, callback) -> None:
        self.disarm()
        self.timer = self.loop.call_later(delay, callback)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.refused = True
            self.transport = transport
            transport.write(
                raw_response(
                    503,
                    f"the server holds its maximum of {self.limits.max_connections} "
                    "connections; retry shortly",
                    (b"retry-after: 1\r\n",),
                )
            )
            if transport.can_write_eof():
                transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_SECONDS, transport.close)
            return
        super().connection_made(transport)
        self.arm(self.limits.header_timeout, self.close_quietly)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self.delivered = False
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.oversized or (self.in_head and self.over_limit(self.unfinished_line(data))):
            kib = self.limits.max_header_bytes // 1024
            self.reject(431, f"the request line and headers exceed the {kib} KiB limit")

    def unfinished_line(self, data: bytes) -> int:
        """Bytes of the head the parser holds but has not delivered: the line in progress
        (after the last newline of this read), or all of this read when nothing was delivered
        (one long header arriving across reads). While the request line itself is still
        arriving, its URL counts twice (delivered and pending): at most a false 431 for a
        URL over half the limit split across reads, never an unbounded head."""
        if not self.delivered:
            self.pending += len(data)
        else:
            self.pending = len(data) - (data.rfind(b"\n") + 1)
        return self.pending

    def over_limit(self, pending: int = 0) -> bool:
        return self.head_bytes + pending > self.limits.max_header_bytes

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes, self.pending = True, 0, 0
        self.arm(self.limits.header_timeout, self.head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self.head_bytes += len(url)
        self.delivered = True

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        self.delivered = True
        self.oversized = self.oversized or self.over_limit()

    def on_headers_complete(self) -> None:
        # Checked here too: a head that arrived in one read is complete before data_received
        # can look at it, and its request must not reach the app (431 follows).
        self.in_head = False
        self.oversized = self.oversized or self.over_limit()
        if self.oversized:
            return
        super().on_headers_complete()
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False
        self.arm(self.limits.body_timeout + 1.0, self.close_quietly)

    def on_body(self, body: bytes) -> None:
        if not self.oversized:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.oversized:
            return
        super().on_message_complete()
        self.disarm()

    def head_timed_out(self) -> None:
        secs = f"{self.limits.header_timeout:g}"
        self.reject(408, f"the request headers did not arrive within {secs} s")

    def reject(self, status: int, message: str) -> None:
        self.disarm()
        if not self.transport.is_closing():
            self.transport.write(raw_response(status, message))
            self.transport.close()

    def close_quietly(self) -> None:
        self.timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        """Graceful stop: in-flight requests finish with `Connection: close`; idle connections
        stay open `drain_seconds` for a request already sent, then close."""
        self.draining = True
        if self.refused:
            return
        if self.cycle is None or self.cycle.response_complete:
            self._unset_keepalive_if_required()
            if not self.in_head:
                self.arm(self.limits.drain_seconds, self.close_quietly)
        else:
            self.cycle.keep_alive = False
        for cycle, _ in self.pipeline:
            cycle.keep_alive = False

"""The endpoint against abusive clients, over raw sockets: nothing is held forever, nothing
grows without bound, past the connection cap new clients get 503 + Retry-After, and the
server keeps answering /ping throughout.

The server here runs with short limits (1 s timeouts, 8 KiB heads, 6 connections) so
each case takes about a second; the defaults are in mlops.local.endpoint_app.ServerSettings.
"""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

import pytest
from _serving import extract, running_server

from mlops.local.server_process import is_running, ping

LIMITS = {
    "header_timeout": 1.0,
    "body_timeout": 1.0,
    "keep_alive_timeout": 1.0,
    "max_header_bytes": 8 * 1024,
    "max_connections": 6,
}


@pytest.fixture(scope="module")
def server(_registered_home, tmp_path_factory):
    _, result = _registered_home
    tmp = tmp_path_factory.mktemp("limits")
    model_dir = extract(Path(result.version.model_uri), tmp / "model")
    with running_server(model_dir, tmp / "server", limits=LIMITS) as running:
        yield running


def connect(server, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def timed_answer(server, payload: bytes, then=None) -> tuple[bytes, float]:
    start = time.monotonic()
    with connect(server) as sock:
        sock.sendall(payload)
        if then:
            then(sock)
        answer = read_all(sock)
    return answer, time.monotonic() - start


POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


def test_body_shorter_than_its_content_length_gets_408_after_the_body_timeout(server):
    answer, took = timed_answer(server, POST + b"Content-Length: 100\r\n\r\n1,2,3")
    assert status_of(answer) == 408, answer
    assert b"connection: close" in answer.lower()
    assert 0.9 <= took < 3.0


def test_unterminated_chunked_body_gets_408(server):
    answer, took = timed_answer(server, POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\n1,2,3\r\n")
    assert status_of(answer) == 408, answer
    assert took < 3.0


def test_a_body_sent_one_byte_at_a_time_is_cut_at_the_body_timeout(server):
    def trickle(sock: socket.socket) -> None:
        for _ in range(8):
            try:
                sock.sendall(b"1")
            except OSError:
                return
            time.sleep(0.3)

    answer, took = timed_answer(server, POST + b"Content-Length: 1000\r\n\r\n", trickle)
    assert status_of(answer) == 408, answer
    assert took < 4.0


def test_headers_sent_one_byte_at_a_time_get_408_after_the_header_timeout(server):
    def trickle(sock: socket.socket) -> None:
        for byte in b"X-Slow: 123456789\r\n":
            try:
                sock.send(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)

    answer, took = timed_answer(server, b"GET /ping HTTP/1.1\r\n", trickle)
    assert status_of(answer) == 408, answer
    assert took < 4.5


def test_an_oversized_head_gets_431_and_is_not_buffered(server):
    start = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 50 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the server closed the connection: what we want
        answer = read_all(sock)
    assert status_of(answer) in (431, 0), answer  # 0: a reset raced the answer
    assert sent < 5 * 1024 * 1024, f"the server read {sent} bytes of one head"
    assert time.monotonic() - start < 3.0
    assert ping(server.url)["status"] == "healthy"


def test_a_head_over_the_limit_in_one_read_gets_431(server):
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 12 * 1024 + b"\r\n\r\n"
    answer, _ = timed_answer(server, head)  # 12 KiB under an 8 KiB limit, in one packet
    assert status_of(answer) == 431, answer[:200]
    just_under = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 7 * 1024 + b"\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(just_under)
        assert status_of(sock.recv(65536)) == 200


def test_pipelined_requests_with_bodies_are_not_counted_as_a_head(server):
    body = b"2001,2500.5,3,2.0,0.5,2,1,0\n" * 4
    one = POST + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    count = 300  # ~45 KiB on one connection, 5 times the 8 KiB head limit
    stream = one * count
    cut = len(one) * (count - 1) + 20  # a read that ends inside the last request's head
    with connect(server, timeout=30) as sock:
        sock.sendall(stream[:cut])
        time.sleep(0.2)
        sock.sendall(stream[cut:])
        answers = b""
        while answers.count(b"HTTP/1.1 ") < count:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answers.count(b'HTTP/1.1 ')} answers: {answers[-300:]}"
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 ") == count


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    start = time.monotonic()
    with connect(server) as sock:
        assert read_all(sock) == b""
    assert 0.9 <= time.monotonic() - start < 3.0


def test_past_the_connection_cap_new_clients_get_503_with_retry_after(server):
    held = [connect(server) for _ in range(LIMITS["max_connections"])]
    try:
        time.sleep(0.2)
        with connect(server) as extra:
            extra.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_all(extra)
        assert status_of(answer) == 503, answer
        assert b"retry-after: 1" in answer.lower()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert ping(server.url)["status"] == "healthy"


def test_keep_alive_connections_are_closed_after_the_idle_timeout(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/ping")
    assert conn.getresponse().read()
    start = time.monotonic()
    assert conn.sock.recv(1) == b""  # the server closed the idle connection
    assert 0.9 <= time.monotonic() - start < 3.0
    conn.close()


def test_a_json_integer_past_the_conversion_limit_gets_400(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = b"[[" + b"9" * 5000 + b"]]"
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 400, response.read()
    conn.close()


def test_server_answers_after_the_abuse(server):
    assert is_running(server.pid)
    assert ping(server.url)["status"] == "healthy"

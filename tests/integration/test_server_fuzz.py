"""Property: whatever bytes and content type arrive at /invocations, the answer is never a 5xx
and the server stays alive."""

import http.client
import json
import math
from pathlib import Path

import pytest
from _serving import extract, running_server
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops.local.server_process import is_running, ping

CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "text/csv",
            "application/json",
            "text/csv; charset=utf-8",
            "APPLICATION/JSON",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
)
CSV_CELLS = st.one_of(NUMBERS.map(str), st.text(max_size=8))
CSV_BODIES = st.lists(
    st.lists(CSV_CELLS, min_size=0, max_size=12).map(",".join), min_size=0, max_size=6
).map(lambda rows: "\n".join(rows).encode())

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=9)
        | st.dictionaries(
            st.sampled_from(["INSTALL_YEAR", "FLOOR_AREA", "HAS_SHADE", "instances", "x"]), children
        )
    ),
    max_leaves=40,
)


def json_bytes(value) -> bytes:
    try:
        return json.dumps(value).encode()
    except (ValueError, OverflowError):
        return b"[]"


FINITE_ROWS = st.lists(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=8, max_size=8),
    min_size=1,
    max_size=4,
)
VALID_BODIES = FINITE_ROWS.map(
    lambda rows: "\n".join(",".join(map(repr, row)) for row in rows).encode()
) | FINITE_ROWS.map(json_bytes)

# integers past Python's 4,300-digit str->int limit (json.loads raises ValueError on them);
# built as text because json.dumps refuses them too
HUGE_INTEGERS = st.tuples(
    st.integers(4290, 6000), st.sampled_from([b"[[%s]]", b"%s", b"[%s]"])
).map(lambda case: case[1] % (b"7" * case[0]))

BODIES = st.one_of(
    st.binary(max_size=400),
    CSV_BODIES,
    JSON_VALUES.map(json_bytes),
    VALID_BODIES,
    HUGE_INTEGERS,
)


@pytest.fixture(scope="module")
def server(_registered_home, tmp_path_factory):
    _, result = _registered_home
    tmp = tmp_path_factory.mktemp("fuzz")
    model_dir = extract(Path(result.version.model_uri), tmp / "model")
    with running_server(model_dir, tmp / "server") as running:
        yield running


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_no_input_gets_a_5xx(server, body, content_type):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    event(f"HTTP {response.status}")
    assert response.status < 500, payload
    if response.status == 200:
        predictions = json.loads(payload)["predictions"]
        assert predictions and all(math.isfinite(p) for p in predictions)
    else:
        assert json.loads(payload)["message"]


def test_server_is_alive_after_the_fuzzing(server):
    assert is_running(server.pid)
    assert ping(server.url)["status"] == "healthy"

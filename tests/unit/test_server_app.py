"""The endpoint's ASGI app in process: routing, body limit, error mapping, dynamic batching."""

import asyncio
import json

import numpy as np
import pytest
from fixture_project.generate import COLUMNS, TARGET, generate_buildings
from fixtures.artifacts import train_artifact

from mlops.local.endpoint_app import EndpointApp, ServerSettings
from mlops.local.model_host import load_model

FEATURES = COLUMNS[:-1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model artifact as the train step writes it (its serving code inside)."""
    return train_artifact(tmp_path_factory.mktemp("model"), generate_buildings(400, seed=2), TARGET)


def make_app(model_dir, **settings) -> tuple[EndpointApp, list]:
    """An app whose predict_fn records the row counts it was called with."""
    handlers, model = load_model(model_dir)
    predict_fn, calls = handlers.predict_fn, []

    def counting_predict(data, model):
        calls.append(len(data))
        return predict_fn(data, model)

    handlers = type(handlers)(**{**handlers.__dict__, "predict_fn": counting_predict})
    config = ServerSettings(str(model_dir), endpoint_name="ep", version=3, **settings)
    return EndpointApp(config, handlers, model), calls


async def call(app, method, path, body=b"", content_type="text/csv", chunks=1):
    headers = [(b"content-type", content_type.encode())] if content_type else []
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await app(scope, receive, send)
    start, body_message = sent
    return start["status"], dict(start["headers"]), body_message["body"]


def rows_csv(rows) -> bytes:
    return "\n".join(",".join(map(repr, r)) for r in rows).encode()


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(6, seed=4)[FEATURES].to_numpy(float).tolist()


def test_ping_and_routes(model_dir):
    app, _ = make_app(model_dir)
    status, headers, body = asyncio.run(call(app, "GET", "/ping"))
    assert status == 200 and json.loads(body)["model_version"] == 3
    assert asyncio.run(call(app, "GET", "/nope"))[0] == 404
    assert asyncio.run(call(app, "DELETE", "/invocations"))[0] == 405
    status, headers, body = asyncio.run(call(app, "POST", "/endpoints/other/invocations", b"1"))
    assert status == 404 and headers[b"x-amzn-errortype"] == b"ValidationError"


def test_body_limit_counts_streamed_chunks(model_dir):
    app, calls = make_app(model_dir, max_body_bytes=100)
    status, _, body = asyncio.run(call(app, "POST", "/invocations", b"1," * 60, chunks=5))
    assert status == 413 and "limit" in json.loads(body)["message"]
    assert calls == []


def test_requests_arriving_together_share_one_predict_call(model_dir, rows):
    app, calls = make_app(model_dir)

    async def together():
        return await asyncio.gather(
            *(call(app, "POST", "/invocations", rows_csv([r])) for r in rows)
        )

    answers = asyncio.run(together())
    assert calls == [len(rows)]  # one call for all six requests
    alone, single_calls = make_app(model_dir, batching=False)
    for (status, _, body), row in zip(answers, rows, strict=True):
        assert status == 200
        single = asyncio.run(call(alone, "POST", "/invocations", rows_csv([row])))
        assert json.loads(body) == json.loads(single[2])
    assert single_calls == [1] * len(rows)


def test_a_bad_request_in_a_batch_fails_alone(model_dir, rows):
    app, calls = make_app(model_dir)
    bad = rows_csv([[*rows[0][:-1], float("inf")]])

    async def together(*bodies):
        return await asyncio.gather(*(call(app, "POST", "/invocations", b) for b in bodies))

    good, nan, last = asyncio.run(together(rows_csv(rows[:2]), bad, rows_csv(rows[2:3])))
    assert calls == [4, 2, 1, 1]  # the joint call failed, so each request was scored alone
    assert nan[0] == 400 and "HAS_SHADE is not finite" in json.loads(nan[2])["message"]
    assert good[0] == last[0] == 200
    handlers, model = load_model(model_dir)
    expected = handlers.predict_fn(np.array(rows[:3]), model)
    assert json.loads(good[2])["predictions"] == [float(v) for v in expected[:2]]
    assert json.loads(last[2])["predictions"] == [float(expected[2])]


def test_requests_of_different_shapes_are_not_joined(model_dir, rows):
    app, calls = make_app(model_dir)
    objects = json.dumps([dict(zip(FEATURES, rows[1], strict=True))]).encode()

    async def together():
        return await asyncio.gather(
            call(app, "POST", "/invocations", rows_csv(rows[:1])),
            call(app, "POST", "/invocations", b"1,2,3"),
            call(app, "POST", "/invocations", objects, content_type="application/json"),
        )

    first, narrow, as_objects = asyncio.run(together())
    assert calls == [1, 1, 1]
    assert narrow[0] == 400 and "needs 8 values" in json.loads(narrow[2])["message"]
    assert first[0] == as_objects[0] == 200


def test_loading_a_model_in_a_shared_process_leaves_scikit_learn_importable(model_dir):
    """Batch scoring and tests load models in their own process: hiding scikit-learn
    there (a serving process's start-up shortcut) broke later imports in that process."""
    import subprocess
    import sys

    script = (
        "from mlops.local.model_host import load_model\n"
        f"load_model({str(model_dir)!r})\n"
        "import sklearn.metrics\n"
        "print('sklearn ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and "sklearn ok" in done.stdout, done.stderr[-500:]


def test_past_the_buffered_bytes_cap_a_request_gets_503_with_retry_after(model_dir, rows):
    app, _ = make_app(model_dir, max_buffered_bytes=1000)
    body = rows_csv(rows[:1])
    release = asyncio.Event()

    async def scenario():
        async def slow_receive():  # a client still sending its 800-byte body
            await release.wait()
            return {"type": "http.request", "body": body, "more_body": False}

        sent = []

        async def send(message):
            sent.append(message)

        headers = [(b"content-type", b"text/csv"), (b"content-length", b"800")]
        scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers}
        holding = asyncio.create_task(app(scope, slow_receive, send))
        await asyncio.sleep(0.05)
        refused = await call(app, "POST", "/invocations", b"1," * 150)  # 300 more: over 1000
        pinged = await call(app, "GET", "/ping")
        release.set()
        await holding
        return refused, pinged, sent[0]["status"], app.buffered

    (status, headers, _), (ping_status, _, _), first, left = asyncio.run(scenario())
    assert status == 503 and headers[b"retry-after"] == b"1"
    assert b"connection" not in headers  # its body was read and dropped: the connection stays
    assert ping_status == 200 and first == 200 and left == 0

"""The endpoint's ASGI app in process: routing, body limit, error mapping, dynamic batching."""

import asyncio
import json
from pathlib import Path

import inference
import numpy as np
import pytest
import train
from fixture_project.generate import COLUMNS, generate_buildings

from mlops.local.endpoint_app import EndpointApp, ServerSettings
from mlops.local.model_host import load_handlers

FEATURES = COLUMNS[:-1]
STEPS = Path(inference.__file__).parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    df = generate_buildings(400, seed=2)
    X, y = df[FEATURES].to_numpy(float), df.ANNUAL_COST.to_numpy(float)
    params = {"objective": "reg:squarederror", "max_depth": 3, "num_round": 20}
    booster = train.train_model(X[:300], y[:300], X[300:], y[300:], params, FEATURES)
    path = tmp_path_factory.mktemp("model")
    train.save_model(
        booster, path, {"feature_names": FEATURES, "target": "ANNUAL_COST", "params": params}
    )
    return path


def make_app(model_dir, **settings) -> tuple[EndpointApp, list]:
    """An app whose predict_fn records the row counts it was called with."""
    handlers = load_handlers(STEPS)
    predict_fn, calls = handlers.predict_fn, []

    def counting_predict(data, model):
        calls.append(len(data))
        return predict_fn(data, model)

    handlers = type(handlers)(**{**handlers.__dict__, "predict_fn": counting_predict})
    config = ServerSettings(str(model_dir), str(STEPS), endpoint_name="ep", version=3, **settings)
    return EndpointApp(config, handlers, handlers.model_fn(str(model_dir))), calls


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
    bad = rows_csv([[*rows[0][:-1], float("nan")]])

    async def together(*bodies):
        return await asyncio.gather(*(call(app, "POST", "/invocations", b) for b in bodies))

    good, nan, last = asyncio.run(together(rows_csv(rows[:2]), bad, rows_csv(rows[2:3])))
    assert calls == [4, 2, 1, 1]  # the joint call failed, so each request was scored alone
    assert nan[0] == 400 and "NaN" in json.loads(nan[2])["message"]
    assert good[0] == last[0] == 200
    expected = inference.predict_fn(np.array(rows[:3]), inference.model_fn(str(model_dir)))
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


def test_loading_handlers_in_a_shared_process_leaves_scikit_learn_importable(tmp_path):
    """Batch scoring and tests load handlers in their own process: hiding scikit-learn
    there (a serving process's start-up shortcut) broke later imports in that process."""
    import shutil
    import subprocess
    import sys

    from mlops.core.code_bundle import handler_sources

    for source in handler_sources(STEPS):  # what a deployed version's code folder holds
        shutil.copy2(source, tmp_path / source.name)
    script = (
        "import sys; from pathlib import Path\n"
        "from mlops.local.model_host import load_handlers\n"
        f"load_handlers(Path({str(tmp_path)!r}))\n"
        "import sklearn.metrics\n"
        "print('sklearn ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and "sklearn ok" in done.stdout, done.stderr[-500:]

"""Data capture on the local endpoint: SageMaker's JSON Lines format, sampling, rotation."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.artifacts import train_artifact

from mlops.core import drift
from mlops.core.capture import CaptureSet, parse_record
from mlops.core.monitor import feature_columns
from mlops.local.capture import (
    Capture,
    CaptureSettings,
    capture_files,
    open_capture,
    read_local_capture,
    write_capture_settings,
)
from mlops.local.endpoint_app import EndpointApp, ServerSettings
from mlops.local.model_host import load_model

FEATURES = ["f_a", "f_b", "f_c"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A server instance's model folder (capture.json goes beside it)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    frame = pd.DataFrame(X, columns=FEATURES).assign(y=X @ [3.0, -2.0, 1.0] + 10)
    return train_artifact(tmp_path_factory.mktemp("instance"), frame, "y")


def app_with_capture(model_dir: Path, folder: Path, percent: int) -> EndpointApp:
    write_capture_settings(
        model_dir.parent, CaptureSettings(str(folder), "ep", "v4-20261201-000000-abcd", percent)
    )
    handlers, model = load_model(model_dir)
    settings = ServerSettings(str(model_dir), endpoint_name="ep", version=4)
    return EndpointApp(settings, handlers, model, open_capture(str(model_dir)))


async def call(app, method, path, body=b"", headers=()):
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def test_invocations_are_captured_in_sagemaker_format(model_dir, tmp_path):
    app = app_with_capture(model_dir, tmp_path / "capture", 100)
    body = b"0.5,1.0,-1.0\n2.0,0.0,0.5\n"
    csv = (b"content-type", b"text/csv")
    status, answer = asyncio.run(
        call(app, "POST", "/invocations", body, [csv, (b"x-amzn-sagemaker-inference-id", b"id-7")])
    )
    assert status == 200
    assert asyncio.run(call(app, "POST", "/invocations", b"1,2", [csv]))[0] == 400
    assert asyncio.run(call(app, "GET", "/ping"))[0] == 200
    app.capture.close()

    files = capture_files(tmp_path, "ep")
    assert len(files) == 1
    now = datetime.now(UTC)
    assert files[0].parent == tmp_path / "capture/ep/AllTraffic" / now.strftime("%Y/%m/%d/%H")
    (line,) = files[0].read_text().splitlines()
    record = json.loads(line)
    assert record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": body.decode(),
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["data"] == answer.decode()
    assert record["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert record["eventMetadata"]["inferenceId"] == "id-7"
    parsed = parse_record(line, FEATURES)
    assert parsed.rows.tolist() == [["0.5", "1.0", "-1.0"], ["2.0", "0.0", "0.5"]]  # as sent
    assert parsed.predictions.tolist() == json.loads(answer)["predictions"]
    assert abs((parsed.time - now).total_seconds()) < 60


def test_sampling_off_and_partial(model_dir, tmp_path):
    assert open_capture(str(model_dir.parent / "nowhere" / "model")) is None
    app_with_capture(model_dir, tmp_path / "capture", 0)
    assert open_capture(str(model_dir)) is None
    app = app_with_capture(model_dir, tmp_path / "capture", 30)
    csv = [(b"content-type", b"text/csv")]
    for _ in range(400):
        asyncio.run(call(app, "POST", "/invocations", b"0.5,1.0,-1.0", csv))
    app.capture.close()
    (path,) = capture_files(tmp_path, "ep")
    captured = len(path.read_text().splitlines())
    assert 70 < captured < 170  # 30 % of 400 is 120; binomial sd ~9


def test_rotation_by_time_and_corrupt_lines_counted(tmp_path):
    moments = iter(
        [
            datetime(2026, 12, 1, 1, 59, 30, tzinfo=UTC) + timedelta(seconds=s)
            for s in (0, 20, 45, 3700)
        ]
    )
    settings = CaptureSettings(str(tmp_path / "capture"), "ep", "v2-x-ab", 100, rotate_seconds=60)
    capture = Capture(settings, clock=lambda: next(moments).timestamp())
    for value in (1, 2, 3, 4):
        capture.write(f"{value},0,0".encode(), "text/csv", f"{value * 10}\n".encode(), "text/csv")
    capture.close()
    files = capture_files(tmp_path, "ep")
    assert [len(p.read_text().splitlines()) for p in files] == [2, 1, 1]
    assert [p.parent.name for p in files] == ["01", "02", "03"]
    with files[0].open("a") as f:
        f.write('{"captureData": {}}\nnot json\n')

    found = read_local_capture(tmp_path, "ep", lambda version: FEATURES)
    assert found.files == 3 and found.corrupt == 2
    assert [r.predictions.tolist() for r in found.requests] == [[10.0], [20.0], [30.0], [40.0]]
    assert {r.version for r in found.requests} == {2}
    late = read_local_capture(
        tmp_path, "ep", lambda v: FEATURES, since=datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    )
    assert len(late.requests) == 2


def test_json_requests_parse_by_feature_name():
    found = CaptureSet()
    line = json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "application/json",
                    "mode": "INPUT",
                    "data": json.dumps([{"f_c": 3, "f_a": 1, "f_b": 2}]),
                    "encoding": "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "5.5\n",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-01T00:00:00.000Z"},
            "eventVersion": "0",
        }
    )
    lines = [line + "\n", line.replace("5.5", "5.5\\n6.5") + "\n", line]  # last: unfinished
    found.add_lines(lines, FEATURES, None, None, "x")
    assert found.requests[0].rows.tolist() == [[1, 2, 3]]
    assert (
        len(found.requests) == 1
        and found.corrupt == 1
        and "1 input rows but 2 predictions" in found.first_corrupt
    )


def record(body: str, content_type: str, answer: str) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": content_type, "data": body},
                "endpointOutput": {"observedContentType": "application/json", "data": answer},
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-01T00:00:00.000Z"},
            "eventVersion": "0",
        }
    )


def test_rows_with_text_and_missing_values_are_read_and_typed_as_the_model_read_them():
    """A model with text categories answers requests of text: the capture keeps them, and
    monitoring types them with the model's own reader (stepkit.rows). Before, every such
    record was counted corrupt ("could not convert string to float") and never monitored."""
    names = ["area", "city", "rooms"]
    lines = [
        record('55.5,Lyon,2\n,"Paris, 1er",3\n', "text/csv", '{"predictions": [1.0, 2.0]}'),
        record('[{"area": 40, "city": null, "rooms": "4"}]', "application/json", "[3.0]"),
    ]
    found = CaptureSet()
    found.add_lines([line + "\n" for line in lines], names, 1, None, "x")
    assert found.corrupt == 0
    rows = np.concatenate([r.rows for r in found.requests])
    assert rows.tolist() == [["55.5", "Lyon", "2"], ["", "Paris, 1er", "3"], [40, None, "4"]]
    baseline = {
        "features": {
            "area": {"bin_edges": [], "proportions": [1.0], "mean": 50.0},
            "city": {"type": "categorical", "frequencies": {"Lyon": 1.0}},
            "rooms": {"bin_edges": [], "proportions": [1.0], "mean": 3.0},
        }
    }
    columns = feature_columns(rows, baseline)
    np.testing.assert_array_equal(columns["area"], [55.5, np.nan, 40.0])
    assert columns["city"][:2].tolist() == ["Lyon", "Paris, 1er"] and pd.isna(columns["city"][2])
    np.testing.assert_array_equal(columns["rooms"], [2.0, 3.0, 4.0])
    area, city, _ = drift.compare(columns, baseline, 0.2)
    assert (area.missing, city.missing, city.drifted) == (1, 1, True)  # 2 of 3 not Lyon

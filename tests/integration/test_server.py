"""The local endpoint server, through a real sagemaker-runtime client and raw HTTP."""

import http.client
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
from _serving import (
    constant_model_archive,
    extract,
    running_server,
    watched_by_this_process,
)
from botocore.config import Config
from botocore.exceptions import ClientError
from fixture_project.generate import COLUMNS, TARGET, generate_buildings

from mlops.core.errors import MlopsError
from mlops.core.run_layout import local_held_out, predictions_file, read_held_out
from mlops.local.endpoint_app import ServerSettings
from mlops.local.server_process import is_running, ping, spawn_server
from stepkit.splits import PREDICTION, read_predictions

FEATURES = COLUMNS[:-1]
ENDPOINT = "energy-costs-test"


@pytest.fixture(scope="module")
def served(_registered_home, tmp_path_factory):
    """One server for the module, on the model the pipeline registered."""
    _, result = _registered_home
    tmp = tmp_path_factory.mktemp("served")
    model_dir = extract(Path(result.version.model_uri), tmp / "model")
    with running_server(model_dir, tmp / "server", endpoint_name=ENDPOINT) as server:
        yield server, model_dir, result


@pytest.fixture(scope="module")
def test_rows(served):
    """The version's raw held-out rows as CSV request lines, and its evaluate step's
    predictions for them."""
    _, _, result = served
    home = result.run_dir.parent.parent
    held_out = read_held_out(local_held_out(result.version, home))
    lines = [",".join(row) for row in held_out[FEATURES].itertuples(index=False)]
    evaluated = read_predictions(Path(predictions_file(result.version.evaluation_uri)))
    return lines, evaluated[PREDICTION].to_numpy(), held_out[TARGET].astype(float).to_numpy()


def runtime(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


def post(url: str, path: str, body: bytes, content_type: str | None, method: str = "POST"):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def test_ping_reports_the_model_and_the_server_binds_loopback(served):
    server, _, _ = served
    assert server.url.startswith("http://127.0.0.1:")
    answer = ping(server.url)
    assert answer["status"] == "healthy"
    assert answer["model_version"] == 1 and answer["endpoint_name"] == ENDPOINT


def test_boto3_invoke_endpoint_answers_what_evaluate_predicted(served, test_rows):
    """An unmodified sagemaker-runtime client sends raw held-out rows, as a client would:
    each answer is the evaluate step's prediction for that row (train/serve consistency)."""
    server, _, _ = served
    lines, evaluated, truth = test_rows
    client = runtime(server.url)
    got = []
    for line in lines[:50]:
        response = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=line)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert response["InvokedProductionVariant"] == "AllTraffic"
        got.append(json.loads(response["Body"].read())["predictions"][0])
    np.testing.assert_array_equal(got, evaluated[:50])
    assert np.mean(np.abs(np.array(got) - truth[:50]) / truth[:50]) * 100 < 5


def test_json_objects_and_csv_accept(served, test_rows):
    server, _, _ = served
    lines, evaluated, _ = test_rows
    client = runtime(server.url)
    objects = [dict(zip(FEATURES, map(float, line.split(",")), strict=True)) for line in lines[:3]]
    as_json = client.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(objects)
    )
    predictions = json.loads(as_json["Body"].read())["predictions"]
    as_csv = client.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="text/csv",
        Accept="text/csv",
        Body="\n".join(lines[:3]),
    )
    assert as_csv["ContentType"] == "text/csv"
    assert [float(v) for v in as_csv["Body"].read().decode().split()] == predictions
    assert predictions == evaluated[:3].tolist()


def test_missing_values_are_scored_as_missing(served):
    """An empty CSV field, `nan` and JSON null or NaN are a missing value, which the model
    scores (the family learnt where missing values go); they all get the same answer."""
    server, _, _ = served
    answers = [
        post(server.url, "/invocations", body, content_type)
        for body, content_type in [
            (b"2001,,3,2.0,0.5,2,1,0", "text/csv"),
            (b"2001,nan,3,2.0,0.5,2,1,0", "text/csv"),
            (b"[[2001, null, 3, 2.0, 0.5, 2, 1, 0]]", "application/json"),
            (b"[[2001, NaN, 3, 2.0, 0.5, 2, 1, 0]]", "application/json"),
        ]
    ]
    assert {status for status, _, _ in answers} == {200}
    predictions = {json.loads(body)["predictions"][0] for _, body, _ in answers}
    assert len(predictions) == 1
    (missing,) = predictions
    present = json.loads(post(server.url, "/invocations", GOOD_ROW, "text/csv")[1])
    assert missing != present["predictions"][0]  # FLOOR_AREA matters: missing is not 2500.5


SIX_MB = 6 * 1024 * 1024
GOOD_ROW = b"2001,2500.5,3,2.0,0.5,2,1,0"

BAD_REQUESTS = [
    # (path, content type, body, status, part of the message)
    ("/invocations", "text/csv", b"", 400, "empty"),
    ("/invocations", "text/csv", b"1,2,3", 400, "needs 8 values"),
    ("/invocations", "text/csv", GOOD_ROW + b",9", 400, "needs 8 values"),
    ("/invocations", "text/csv", b"2001,big,3,2.0,0.5,2,1,0", 400, "FLOOR_AREA is not a number"),
    ("/invocations", "text/csv", b"2001,inf,3,2.0,0.5,2,1,0", 400, "FLOOR_AREA is not finite"),
    ("/invocations", "text/csv", b"2001,1,3,2\n2001,1,3,2,0.5,2,1,0", 400, "needs 8 values"),
    ("/invocations", "application/json", b"[[2001, 2500.5", 400, "malformed JSON"),
    ("/invocations", "application/json", b"[" * 50_000, 400, "malformed JSON"),
    ("/invocations", "application/json", b'[[1, "x", 3, 2, 0.5, 2, 1, 0]]', 400, "not a number"),
    ("/invocations", "application/json", b"[[1, [2], 3, 2, 0.5, 2, 1, 0]]", 400, "numbers or text"),
    ("/invocations", "text/plain", GOOD_ROW, 415, "not supported"),
    ("/invocations", None, GOOD_ROW, 415, "not supported"),
    ("/invocations", "text/csv", b"1," * (SIX_MB // 2 + 1), 413, "6 MB limit"),
    (f"/endpoints/{ENDPOINT}/invocations", "text/csv", b"\xff\xfe", 400, "UTF-8"),
    (
        "/endpoints/other-endpoint/invocations",
        "text/csv",
        GOOD_ROW,
        404,
        "other-endpoint not found",
    ),
    ("/predict", "text/csv", GOOD_ROW, 404, "no route /predict"),
]


@pytest.mark.parametrize(("path", "content_type", "body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_4xx_with_a_message_and_the_server_stays_up(
    served, path, content_type, body, status, message
):
    server, _, _ = served
    got, payload, headers = post(server.url, path, body, content_type)
    assert got == status
    assert message in json.loads(payload)["message"]
    assert headers["x-amzn-errortype"] in ("ModelError", "ValidationError", "NotFound")
    assert ping(server.url)["status"] == "healthy"


def test_wrong_methods_get_405(served):
    server, _, _ = served
    assert post(server.url, "/invocations", b"", None, method="GET")[0] == 405
    assert post(server.url, "/ping", b"", None, method="POST")[0] == 405
    assert post(server.url, "/ping", b"", None, method="HEAD")[0] == 200


def test_bad_requests_through_boto3_are_client_errors_with_the_reason(served):
    server, _, _ = served
    client = runtime(server.url)
    with pytest.raises(client.exceptions.ModelError, match="needs 8 values") as excinfo:
        client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=b"1,2")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError, match="nope not found") as excinfo:
        client.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body=GOOD_ROW)
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_concurrent_clients_all_get_answers(served, test_rows):
    server, _, _ = served
    lines, _, _ = test_rows
    body = "\n".join(lines[:2]).encode()
    expected = json.loads(post(server.url, "/invocations", body, "text/csv")[1])
    results, errors = [], []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(25):
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
                response = conn.getresponse()
                results.append((response.status, json.loads(response.read())))
            except Exception as exc:  # collected, asserted below
                errors.append(exc)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 200
    assert all(status == 200 and answer == expected for status, answer in results)


def test_two_workers_serve_and_stop_together(served, tmp_path):
    import psutil

    _, model_dir, _ = served
    with running_server(model_dir, tmp_path / "w2", workers=2) as server:
        children = psutil.Process(server.pid).children(recursive=True)
        assert len(children) >= 2
        status, payload, _ = post(server.url, "/invocations", GOOD_ROW, "text/csv")
        assert status == 200 and len(json.loads(payload)["predictions"]) == 1
    time.sleep(0.2)
    assert not is_running(server.pid)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def test_a_model_that_fails_its_sha256_check_never_serves(served, tmp_path):
    _, model_dir, _ = served
    tampered = shutil.copytree(model_dir, tmp_path / "tampered")
    (model_file,) = (tampered / "model").iterdir()  # the family's own file
    model_file.write_bytes(model_file.read_bytes() + b" ")
    settings = ServerSettings(model_dir=str(tampered))
    with watched_by_this_process(), pytest.raises(MlopsError, match="does not match the manifest"):
        spawn_server(settings, tmp_path / "srv", "server", timeout=30)


def test_a_wrong_model_still_serves_wrong_prices(tmp_path):
    """The server does not judge predictions: that is the smoke test's job (see test_deploy)."""
    archive = constant_model_archive(tmp_path, generate_buildings(200, seed=1), TARGET, 7.0)
    model_dir = extract(archive, tmp_path / "model")
    with running_server(model_dir, tmp_path / "srv") as server:
        status, payload, _ = post(server.url, "/invocations", GOOD_ROW, "text/csv")
    assert status == 200
    assert json.loads(payload)["predictions"][0] == pytest.approx(7.0, abs=0.5)


def test_server_exits_when_the_watched_process_is_gone(served, tmp_path):
    _, model_dir, _ = served
    sleeper = subprocess.Popen(["sleep", "60"])
    settings = ServerSettings(model_dir=str(model_dir), instance="watched")
    with watched_by_this_process(sleeper.pid):
        server = spawn_server(settings, tmp_path / "srv", "server")
    sleeper.kill()
    sleeper.wait()
    deadline = time.monotonic() + 10
    while is_running(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_running(server.pid)
